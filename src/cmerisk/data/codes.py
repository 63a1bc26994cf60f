"""Codes used in English school and local-authority records.

Attendance codes follow the School Attendance (Pupil Registration) (England)
Regulations 2024; data from before August 2024 may carry the legacy codes
``H``, ``F`` and ``J``, which :data:`LEGACY_ATTENDANCE_CODES` maps onto current ones.

Examples
--------
>>> ATTENDANCE_CATEGORY["N"]
'unauthorised'
>>> normalise_attendance_code("J")
'J1'
>>> sorted(UNEXPLAINED_CODES)
['G', 'N', 'O', 'U']
"""

from __future__ import annotations

from typing import Final, Literal

AttendanceCategory = Literal[
    "present", "approved_activity", "authorised", "unauthorised", "not_counted"
]

#: Current (2024) attendance codes and what each session counts as.
ATTENDANCE_CATEGORY: Final[dict[str, AttendanceCategory]] = {
    # present
    "/": "present",
    "\\": "present",
    "L": "present",
    # attending an approved educational activity (counts as present)
    "K": "approved_activity",
    "V": "approved_activity",
    "P": "approved_activity",
    "W": "approved_activity",
    "B": "approved_activity",
    # authorised absence
    "C": "authorised",
    "C1": "authorised",
    "C2": "authorised",
    "E": "authorised",
    "I": "authorised",
    "J1": "authorised",
    "M": "authorised",
    "R": "authorised",
    "S": "authorised",
    "T": "authorised",
    # unauthorised absence
    "G": "unauthorised",
    "N": "unauthorised",
    "O": "unauthorised",
    "U": "unauthorised",
    # not a possible session
    "D": "not_counted",
    "Q": "not_counted",
    "X": "not_counted",
    "Y1": "not_counted",
    "Y2": "not_counted",
    "Y3": "not_counted",
    "Y4": "not_counted",
    "Y5": "not_counted",
    "Y6": "not_counted",
    "Y7": "not_counted",
    "Z": "not_counted",
    "#": "not_counted",
}

#: Pre-August-2024 codes and the current code each maps onto.
LEGACY_ATTENDANCE_CODES: Final[dict[str, str]] = {
    "H": "C",  # agreed family holiday (authorised) -> other authorised circumstance
    "F": "C",  # agreed extended family holiday (authorised)
    "J": "J1",  # interview -> leave for an interview
}

#: Every code accepted in an attendance extract (current and legacy).
ALL_ATTENDANCE_CODES: Final[frozenset[str]] = frozenset(
    ATTENDANCE_CATEGORY
) | frozenset(LEGACY_ATTENDANCE_CODES)

#: The date from which the 2024 regulations' codes apply.
CODES_2024_FROM: Final[str] = "2024-08-19"

#: Absence with no explanation: the codes that make up a "run" of unexplained
#: absence that schools must report (10 days) and may delete from roll after (20 days).
UNEXPLAINED_CODES: Final[frozenset[str]] = frozenset({"G", "N", "O", "U"})

PRESENT_CODES: Final[frozenset[str]] = frozenset(
    c
    for c, cat in ATTENDANCE_CATEGORY.items()
    if cat in ("present", "approved_activity")
)
AUTHORISED_CODES: Final[frozenset[str]] = frozenset(
    c for c, cat in ATTENDANCE_CATEGORY.items() if cat == "authorised"
) | frozenset({"H", "F", "J"})
UNAUTHORISED_CODES: Final[frozenset[str]] = frozenset(
    c for c, cat in ATTENDANCE_CATEGORY.items() if cat == "unauthorised"
)
NOT_COUNTED_CODES: Final[frozenset[str]] = frozenset(
    c for c, cat in ATTENDANCE_CATEGORY.items() if cat == "not_counted"
)
PART_TIME_TIMETABLE_CODE: Final[str] = "C2"
EXCLUDED_NO_PROVISION_CODE: Final[str] = "E"
OFF_SITE_CODES: Final[frozenset[str]] = frozenset({"K", "B"})
LATE_CODES: Final[frozenset[str]] = frozenset({"L", "U"})

SESSIONS: Final[tuple[str, str]] = ("AM", "PM")


def normalise_attendance_code(code: str) -> str:
    """Return the current (2024) code for ``code``, mapping legacy codes.

    Unknown codes are returned unchanged: validation, not this function, rejects them.
    """
    return LEGACY_ATTENDANCE_CODES.get(code, code)


# --- School census ---------------------------------------------------------

SEN_PROVISION: Final[dict[str, str]] = {
    "N": "no SEN",
    "K": "SEN support",
    "E": "EHC plan",
}

#: Primary type of SEN need, as recorded in the school census.
SEN_PRIMARY_NEEDS: Final[dict[str, str]] = {
    "SPLD": "specific learning difficulty",
    "MLD": "moderate learning difficulty",
    "SLD": "severe learning difficulty",
    "PMLD": "profound and multiple learning difficulty",
    "SEMH": "social, emotional and mental health",
    "SLCN": "speech, language and communication needs",
    "HI": "hearing impairment",
    "VI": "visual impairment",
    "MSI": "multi-sensory impairment",
    "PD": "physical disability",
    "ASD": "autistic spectrum disorder",
    "OTH": "other difficulty or disability",
    "NSA": "SEN support but no specialist assessment of type of need",
}

#: National curriculum years of compulsory school age, Reception to Year 11.
NC_YEARS: Final[tuple[str, ...]] = (
    "R",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "11",
)

SCHOOL_PHASES: Final[tuple[str, ...]] = ("primary", "secondary", "special", "ap")

#: Census enrolment status: C single registration, M main dual, S subsidiary dual,
#: plus the long forms an LA extract may use.
ENROLMENT_STATUS: Final[dict[str, str]] = {
    "C": "single",
    "M": "main dual",
    "S": "subsidiary dual",
}

SEXES: Final[tuple[str, ...]] = ("F", "M", "U")

#: Major ethnic groups used in DfE statistics.
ETHNICITY_MAJOR: Final[tuple[str, ...]] = (
    "White",
    "Mixed",
    "Asian",
    "Black",
    "Other",
    "Unclassified",
)

FIRST_LANGUAGE: Final[tuple[str, ...]] = ("English", "Other", "Unclassified")

# --- Social care, exclusions, roll changes ----------------------------------

SOCIAL_CARE_STATUS: Final[dict[str, str]] = {
    "CIN": "child in need",
    "CPP": "child protection plan",
    "CLA": "looked after by the local authority",
}

EXCLUSION_CATEGORY: Final[tuple[str, ...]] = ("suspension", "permanent")

ROLL_CHANGE: Final[tuple[str, ...]] = ("admission", "deletion")

#: Deletion grounds (a plain-word reading of regulation 9 of the 2024 regulations).
DELETION_GROUNDS: Final[dict[str, str]] = {
    "moved_school": "registered at another school",
    "ehe": "parent chose elective home education",
    "moved_away": "moved away, no longer living within reasonable distance",
    "unexplained_absence_20_days": (
        "20 continuous school days of unexplained absence after enquiries"
    ),
    "permanent_exclusion": "permanently excluded",
    "end_of_compulsory_age": "ceased to be of compulsory school age",
    "medical": "medically unfit to attend before leaving age",
    "custody": "in custody for more than four months",
    "died": "died",
    "other": "other ground",
}

CME_OUTCOMES: Final[tuple[str, ...]] = (
    "returned_to_school",
    "ehe",
    "moved_out_of_la",
    "moved_abroad",
    "other",
)
