"""A calibrated synthetic local authority: every raw table of the contract, as Parquet.

:func:`generate_la` simulates pupils' school lives week by week (rolls,
census, social care, exclusions, moves, disengagement, elective home
education and children missing education), paints their session marks chunk
by chunk, and writes the tables; :func:`calibration_report` measures a folder
against the published targets in :mod:`.targets`.

Modules: :mod:`.targets` (what it aims at, with sources) and :mod:`.reference`
(one LA's published rates); :mod:`.params` (the knobs); the simulation:
:mod:`.timeline`, :mod:`.schools`, :mod:`.population`, :mod:`.world`,
:mod:`.hazards`, :mod:`.weekly`, :mod:`.disengagement`, :mod:`.summer`,
:mod:`.lifecourse`; the marks: :mod:`.spells`, :mod:`.attendance`,
:mod:`.termly`; the output: :mod:`.contract_tables`, :mod:`.writer`,
:mod:`.generate`; and the check: :mod:`.measures`, :mod:`.report`.
"""

from cmerisk.data.synthetic.generate import SynthSummary, generate_la
from cmerisk.data.synthetic.report import (
    CalibrationReport,
    CalibrationRow,
    calibration_report,
)
from cmerisk.data.synthetic.targets import Target, targets_for

__all__ = [
    "CalibrationReport",
    "CalibrationRow",
    "SynthSummary",
    "Target",
    "calibration_report",
    "generate_la",
    "targets_for",
]
