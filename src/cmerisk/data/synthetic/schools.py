"""The schools of a synthetic LA: primaries, secondaries, special schools, an AP unit.

Sizes follow English averages: a primary has about 40 pupils a year group
(Reception to Year 6, ~280 on roll), a secondary about 200 (Years 7-11, ~1,000
on roll); about 1.5% of pupils attend all-through special schools of ~150; one
alternative-provision (AP) unit takes permanently excluded and part-time
placed pupils. Each school serves an area with its own deprivation level, and
each primary mostly feeds one secondary (its nearest in deprivation order).

Examples
--------
>>> import numpy as np
>>> s = make_schools(pupils=12_000, rng=np.random.default_rng(0))
>>> sorted(set(s.phase))
['ap', 'primary', 'secondary', 'special']
>>> all(len(u) == 6 and u.isdigit() for u in s.urn), len(set(s.urn)) == len(s.urn)
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRIMARY_PER_YEAR = 40.0
SECONDARY_PER_YEAR = 200.0
SPECIAL_SHARE = 0.015
SPECIAL_SIZE = 150.0
#: School phases in sorted order (``phase_code`` indexes this).
PHASES = ("ap", "primary", "secondary", "special")


@dataclass(frozen=True)
class Schools:
    """Parallel arrays, one entry per school."""

    urn: np.ndarray  # str, 6 digits
    phase: np.ndarray  # str: primary / secondary / special / ap
    size: np.ndarray  # float: relative intake weight
    deprivation: (
        np.ndarray
    )  # float: area deprivation (standard-normal scale, high = deprived)
    feeder: np.ndarray  # int: a primary's usual secondary (-1 for others)
    absence_effect: np.ndarray  # float: school's effect on absence (logit scale)

    def __len__(self) -> int:
        return len(self.urn)

    @property
    def phase_code(self) -> np.ndarray:
        """Phase as an index into :data:`PHASES` (fast to compare)."""
        return np.searchsorted(np.array(PHASES), self.phase.astype(str))

    def of_phase(self, phase: str) -> np.ndarray:
        return np.flatnonzero(self.phase == phase)

    @property
    def ap(self) -> int:
        return int(self.of_phase("ap")[0])


def make_schools(
    *, pupils: int, rng: np.random.Generator, deprivation_shift: float = 0.0
) -> Schools:
    """Draw the schools for an LA of about ``pupils`` pupils a year.

    ``deprivation_shift`` moves every area's deprivation (positive = more deprived).
    """
    per_year = pupils / 12
    n_pri = max(2, round(per_year * 7 * (1 - SPECIAL_SHARE) / (7 * PRIMARY_PER_YEAR)))
    n_sec = max(1, round(per_year * 5 * (1 - SPECIAL_SHARE) / (5 * SECONDARY_PER_YEAR)))
    n_spe = max(1, round(pupils * SPECIAL_SHARE / SPECIAL_SIZE))
    n_ap = 1 + pupils // 200_000
    phase = np.array(
        ["primary"] * n_pri
        + ["secondary"] * n_sec
        + ["special"] * n_spe
        + ["ap"] * n_ap,
        dtype=object,
    )
    n = len(phase)
    size = np.where(
        phase == "primary",
        rng.gamma(
            6.0, 1 / 6.0, n
        ),  # primaries vary a lot (one to three forms of entry)
        rng.gamma(12.0, 1 / 12.0, n),
    )
    deprivation = rng.normal(0.0, 0.8, n)
    for ph in ("primary", "secondary", "special"):
        # Centre each phase so the LA's overall deprivation is the shift, not chance.
        m = phase == ph
        deprivation[m] -= np.average(deprivation[m], weights=size[m])
    deprivation += deprivation_shift
    feeder = np.full(n, -1)
    pri, sec = np.flatnonzero(phase == "primary"), np.flatnonzero(phase == "secondary")
    # Primaries feed the secondary nearest in deprivation rank (areas cluster).
    sec_sorted = sec[np.argsort(deprivation[sec])]
    pri_rank = np.argsort(np.argsort(deprivation[pri] + rng.normal(0, 0.3, len(pri))))
    feeder[pri] = sec_sorted[np.minimum(pri_rank * len(sec) // len(pri), len(sec) - 1)]
    absence_effect = rng.normal(0.0, 0.12, n)
    urns = rng.choice(np.arange(100_000, 150_000), size=n, replace=False)
    return Schools(
        urn=np.array([str(u) for u in urns], dtype=object),
        phase=phase,
        size=size,
        deprivation=deprivation,
        feeder=feeder,
        absence_effect=absence_effect,
    )


def choose_school(
    candidates: np.ndarray, n: int, *, schools: Schools, rng: np.random.Generator
) -> np.ndarray:
    """Pick ``n`` schools among ``candidates`` with probability proportional to size."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    w = schools.size[candidates]
    return candidates[rng.choice(len(candidates), size=n, p=w / w.sum())]
