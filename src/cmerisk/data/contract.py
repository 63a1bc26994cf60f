"""The raw-table contract: what ``load`` accepts and ``synthetic`` produces.

Each table is declared once here; the pandera schemas (:mod:`cmerisk.data.schemas`),
the SQL checks on session marks, the synthetic writer and the docs all read
these declarations.

Examples
--------
>>> [c.name for c in TABLES["ehe"].columns]
['pupil_id', 'start_date', 'end_date']
>>> TABLES["attendance"].key
('pupil_id', 'date', 'session')
>>> sorted(REQUIRED_TABLES)
['census', 'pupils']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from cmerisk.data import codes

ColumnKind = Literal["id", "string", "date", "int", "float", "bool"]


@dataclass(frozen=True)
class Column:
    """One column of a raw table.

    ``required`` columns must be present; optional ones may be absent. ``allowed``
    lists the permitted values of a code column; ``low``/``high`` bound numbers.
    """

    name: str
    kind: ColumnKind
    description: str
    required: bool = True
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Table:
    """One raw table: its columns, key, and the date that places a record in time.

    ``event_date`` is the column a point-in-time cut compares with ``as_of``
    (``None`` for ``pupils``, which has no time); ``end_date`` marks the end of an
    episode, when the table holds episodes.
    """

    name: str
    grain: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] | None = None
    event_date: str | None = None
    end_date: str | None = None
    references_pupils: bool = True
    large: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


_PUPIL = Column(
    "pupil_id",
    "id",
    "pseudonymised UPN (a keyed hash; a raw UPN before pseudonymisation)",
)
_URN = Column("school_urn", "string", "school unique reference number (URN)")

TABLES: Final[dict[str, Table]] = {
    t.name: t
    for t in (
        Table(
            "pupils",
            "one row per pupil",
            (
                _PUPIL,
                Column("date_of_birth", "date", "date of birth"),
                Column(
                    "sex",
                    "string",
                    "sex as recorded in the census",
                    allowed=codes.SEXES,
                ),
                Column(
                    "ethnicity_major",
                    "string",
                    "major ethnic group",
                    nullable=True,
                    allowed=codes.ETHNICITY_MAJOR,
                ),
                Column(
                    "idaci_decile",
                    "int",
                    "home-area IDACI decile (1 = most deprived 10%)",
                    nullable=True,
                    low=1,
                    high=10,
                ),
                Column(
                    "first_language",
                    "string",
                    "first language group",
                    required=False,
                    nullable=True,
                    allowed=codes.FIRST_LANGUAGE,
                ),
                Column(
                    "la_code",
                    "string",
                    "3-digit LA number",
                    required=False,
                    nullable=True,
                ),
            ),
            key=("pupil_id",),
            references_pupils=False,
        ),
        Table(
            "census",
            "pupil x census day (autumn, spring, summer)",
            (
                _PUPIL,
                Column("census_date", "date", "census day"),
                _URN,
                Column(
                    "school_phase",
                    "string",
                    "phase of the school",
                    allowed=codes.SCHOOL_PHASES,
                ),
                Column(
                    "nc_year",
                    "string",
                    "national curriculum year, R or 1-11",
                    allowed=codes.NC_YEARS,
                ),
                Column("fsm_eligible", "bool", "eligible for free school meals"),
                Column(
                    "sen_provision",
                    "string",
                    "SEN provision: N none, K SEN support, E EHC plan",
                    allowed=tuple(codes.SEN_PROVISION),
                ),
                Column(
                    "sen_primary_need",
                    "string",
                    "primary type of SEN need",
                    nullable=True,
                    allowed=tuple(codes.SEN_PRIMARY_NEEDS),
                ),
                Column(
                    "enrolment_status",
                    "string",
                    "C single, M main dual, S subsidiary dual registration",
                    allowed=tuple(codes.ENROLMENT_STATUS),
                ),
            ),
            key=("pupil_id", "census_date", "school_urn"),
            event_date="census_date",
        ),
        Table(
            "attendance",
            "pupil x school day x session (AM/PM)",
            (
                _PUPIL,
                _URN,
                Column("date", "date", "school day"),
                Column("session", "string", "AM or PM", allowed=codes.SESSIONS),
                Column(
                    "code",
                    "string",
                    "attendance code (2024 regulations; legacy H, F, J before August 2024)",
                    allowed=tuple(sorted(codes.ALL_ATTENDANCE_CODES)),
                ),
            ),
            key=("pupil_id", "date", "session"),
            event_date="date",
            large=True,
        ),
        Table(
            "attendance_termly",
            "pupil x school x term (for LAs without session marks)",
            (
                _PUPIL,
                _URN,
                Column("term_start", "date", "first day of the term"),
                Column("sessions_possible", "int", "possible sessions", low=0),
                Column(
                    "sessions_authorised", "int", "authorised absence sessions", low=0
                ),
                Column(
                    "sessions_unauthorised",
                    "int",
                    "unauthorised absence sessions",
                    low=0,
                ),
            ),
            key=("pupil_id", "school_urn", "term_start"),
            event_date="term_start",
            notes=(
                "A term's counts are known only once the term has ended; features use a term "
                "only when as_of is after its end.",
            ),
        ),
        Table(
            "social_care",
            "social-care episode",
            (
                _PUPIL,
                Column(
                    "status",
                    "string",
                    "CIN, CPP or CLA",
                    allowed=tuple(codes.SOCIAL_CARE_STATUS),
                ),
                Column("start_date", "date", "episode start"),
                Column(
                    "end_date", "date", "episode end (empty while open)", nullable=True
                ),
            ),
            event_date="start_date",
            end_date="end_date",
        ),
        Table(
            "exclusions",
            "suspension or permanent exclusion",
            (
                _PUPIL,
                _URN,
                Column("start_date", "date", "first day of the exclusion"),
                Column(
                    "category",
                    "string",
                    "suspension or permanent",
                    allowed=codes.EXCLUSION_CATEGORY,
                ),
                Column("sessions", "int", "sessions lost", low=0),
            ),
            event_date="start_date",
        ),
        Table(
            "roll_changes",
            "admission to or deletion from a school roll",
            (
                _PUPIL,
                _URN,
                Column("date", "date", "date of the change"),
                Column(
                    "change",
                    "string",
                    "admission or deletion",
                    allowed=codes.ROLL_CHANGE,
                ),
                Column(
                    "deletion_ground",
                    "string",
                    "ground for deletion (deletions only)",
                    nullable=True,
                    allowed=tuple(codes.DELETION_GROUNDS),
                ),
                Column(
                    "destination_known",
                    "bool",
                    "whether the pupil's next school or destination is known",
                    nullable=True,
                ),
            ),
            event_date="date",
        ),
        Table(
            "ehe",
            "elective home education episode",
            (
                _PUPIL,
                Column("start_date", "date", "start of elective home education"),
                Column("end_date", "date", "end (empty while open)", nullable=True),
            ),
            event_date="start_date",
            end_date="end_date",
        ),
        Table(
            "secondary_offers",
            "the secondary school place offered to a Year 6 pupil (LA admissions)",
            (
                _PUPIL,
                Column("school_urn", "string", "URN of the secondary school offered"),
                Column(
                    "offer_date",
                    "date",
                    "date of the offer (national offer day, or later)",
                ),
            ),
            key=("pupil_id", "offer_date"),
            event_date="offer_date",
            notes=(
                "Not in DfE's list of returns, but every LA runs secondary admissions and knows "
                "the offered school; it lets the transition list name the receiving school.",
            ),
        ),
        Table(
            "cme_episodes",
            "the LA's own children-missing-education cases",
            (
                _PUPIL,
                Column("start_date", "date", "date the child became known as missing"),
                Column(
                    "end_date",
                    "date",
                    "date the case closed (empty while open)",
                    nullable=True,
                ),
                Column(
                    "outcome",
                    "string",
                    "how the case closed",
                    nullable=True,
                    allowed=codes.CME_OUTCOMES,
                ),
            ),
            event_date="start_date",
            end_date="end_date",
        ),
    )
}

#: Tables without which nothing can be built.
REQUIRED_TABLES: Final[frozenset[str]] = frozenset({"pupils", "census"})

#: Event tables, in the order features and docs list them.
EVENT_TABLES: Final[tuple[str, ...]] = tuple(
    name for name, t in TABLES.items() if t.event_date is not None
)
