"""A tiny, valid LA written by hand: three pupils, every contract table.

Tests start from :func:`tiny_tables` and break one thing at a time.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

P1, P2, P3 = (
    "a1b2c3d4e5f6a7b8c9d0e1f2",
    "0123456789abcdef01234567",
    "fedcba9876543210fedcba98",
)
SCHOOL_A, SCHOOL_B = "100001", "100002"


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Valid raw tables (as text, the way a CSV extract holds them)."""
    return {
        "pupils": pd.DataFrame(
            {
                "pupil_id": [P1, P2, P3],
                "date_of_birth": ["2012-10-01", "2013-01-15", "2008-05-30"],
                "sex": ["F", "M", "F"],
                "ethnicity_major": ["White", "Asian", None],
                "idaci_decile": ["1", "7", ""],
                "first_language": ["English", "Other", "English"],
                "la_code": ["330", "330", "330"],
            }
        ),
        "census": pd.DataFrame(
            {
                "pupil_id": [P1, P2, P3, P1],
                "census_date": ["2023-10-05", "2023-10-05", "2023-10-05", "2024-01-18"],
                "school_urn": [SCHOOL_A, SCHOOL_A, SCHOOL_B, SCHOOL_A],
                "school_phase": ["primary", "primary", "secondary", "primary"],
                "nc_year": ["6", "5", "10", "6"],
                "fsm_eligible": ["true", "false", "Y", "1"],
                "sen_provision": ["N", "K", "E", "N"],
                "sen_primary_need": [None, "SEMH", "ASD", None],
                "enrolment_status": ["C", "C", "C", "C"],
            }
        ),
        "attendance": pd.DataFrame(
            {
                "pupil_id": [P1, P1, P2, P2, P3, P3],
                "school_urn": [
                    SCHOOL_A,
                    SCHOOL_A,
                    SCHOOL_A,
                    SCHOOL_A,
                    SCHOOL_B,
                    SCHOOL_B,
                ],
                "date": [
                    "2023-09-04",
                    "2023-09-04",
                    "2023-09-04",
                    "2023-09-04",
                    "2024-09-09",
                    "2024-09-09",
                ],
                "session": ["AM", "PM", "AM", "PM", "AM", "PM"],
                "code": ["/", "\\", "N", "I", "/", "C2"],
            }
        ),
        "attendance_termly": pd.DataFrame(
            {
                "pupil_id": [P1, P2],
                "school_urn": [SCHOOL_A, SCHOOL_A],
                "term_start": ["2023-09-04", "2023-09-04"],
                "sessions_possible": ["140", "140"],
                "sessions_authorised": ["4", "10"],
                "sessions_unauthorised": ["0", "12"],
            }
        ),
        "social_care": pd.DataFrame(
            {
                "pupil_id": [P2],
                "status": ["CIN"],
                "start_date": ["2023-02-01"],
                "end_date": [None],
            }
        ),
        "exclusions": pd.DataFrame(
            {
                "pupil_id": [P3],
                "school_urn": [SCHOOL_B],
                "start_date": ["2023-11-06"],
                "category": ["suspension"],
                "sessions": ["4"],
            }
        ),
        "roll_changes": pd.DataFrame(
            {
                "pupil_id": [P1, P3],
                "school_urn": [SCHOOL_A, SCHOOL_B],
                "date": ["2023-09-01", "2022-09-01"],
                "change": ["admission", "admission"],
                "deletion_ground": [None, None],
                "destination_known": [None, "true"],
            }
        ),
        "ehe": pd.DataFrame(
            {"pupil_id": [P3], "start_date": ["2024-02-01"], "end_date": ["2024-06-30"]}
        ),
        "secondary_offers": pd.DataFrame(
            {"pupil_id": [P1], "school_urn": [SCHOOL_B], "offer_date": ["2024-03-01"]}
        ),
        "cme_episodes": pd.DataFrame(
            {
                "pupil_id": [P3],
                "start_date": ["2024-07-01"],
                "end_date": [None],
                "outcome": [None],
            }
        ),
    }


def write_folder(
    tables: dict[str, pd.DataFrame],
    folder: Path,
    *,
    fmt: str = "csv",
    parts: tuple[str, ...] = (),
) -> Path:
    """Write tables as ``<name>.<fmt>``; names in ``parts`` as a folder of two parts."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if name in parts:
            (folder / name).mkdir(exist_ok=True)
            half = (len(frame) + 1) // 2
            chunks = [frame.iloc[:half], frame.iloc[half:]]
            targets = [folder / name / f"part-{i:05d}.{fmt}" for i in range(2)]
        else:
            chunks, targets = [frame], [folder / f"{name}.{fmt}"]
        for chunk, target in zip(chunks, targets, strict=True):
            if fmt == "csv":
                chunk.to_csv(target, index=False)
            else:
                chunk.to_parquet(target, index=False)
    return folder
