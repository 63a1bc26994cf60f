"""Unique Pupil Numbers (UPNs): format, check letter, and generation for synthetic data.

A UPN is 13 characters: a check letter, the 3-digit LA number of the issuing
school, its 4-digit DfE establishment number, 2 digits for the year of issue
and a 3-digit serial (a temporary UPN ends in a letter instead of the last
digit). The check letter is the weighted sum of characters 2-13 modulo 23; the
arithmetic comes from :mod:`stdnum.gb.upn`.

We do not check the LA number against a list: LAs created since 2019 (for
example Dorset 838) issue valid UPNs that older lists reject.

Examples
--------
>>> is_valid_upn("B801200005001")
True
>>> is_valid_upn("A801200005001")
False
>>> upn_problem("A801200005001")
'wrong check letter'
>>> make_upn(la_number=801, establishment=2000, year=5, serial=1)
'B801200005001'
"""

from __future__ import annotations

import re

import numpy as np
from stdnum.gb.upn import calc_check_digit

_UPN_PATTERN = re.compile(r"^[A-HJ-NP-RT-Z][0-9]{11}[0-9A-HJ-NP-RT-Z]$")


def upn_problem(upn: object) -> str | None:
    """Return why ``upn`` is not a valid UPN, or ``None`` when it is valid."""
    if not isinstance(upn, str):
        return "not a string"
    if len(upn) != 13:
        return f"length {len(upn)}, expected 13"
    if not _UPN_PATTERN.match(upn):
        return "bad format (check letter, 11 digits, digit or letter; no I, O or S)"
    if calc_check_digit(upn[1:]) != upn[0]:
        return "wrong check letter"
    return None


def is_valid_upn(upn: object) -> bool:
    """Return whether ``upn`` has the UPN format and a correct check letter."""
    return upn_problem(upn) is None


def make_upn(*, la_number: int, establishment: int, year: int, serial: int) -> str:
    """Build a permanent UPN (with its check letter) from its parts."""
    body = f"{la_number:03d}{establishment:04d}{year % 100:02d}{serial:03d}"
    return calc_check_digit(body) + body


def random_upns(n: int, *, rng: np.random.Generator, la_number: int) -> list[str]:
    """Draw ``n`` distinct valid UPNs issued in LA ``la_number``.

    >>> upns = random_upns(3, rng=np.random.default_rng(0), la_number=801)
    >>> all(is_valid_upn(u) for u in upns), len(set(upns))
    (True, 3)
    """
    if n > 9_999 * 100 * 1_000:
        raise ValueError(f"cannot draw {n} distinct UPNs from one LA number")
    # Draw distinct integers over (establishment, year, serial) without replacement.
    codes = rng.choice(9_999 * 100 * 1_000, size=n, replace=False)
    establishment, rest = np.divmod(codes, 100 * 1_000)
    year, serial = np.divmod(rest, 1_000)
    return [
        make_upn(
            la_number=la_number, establishment=int(e) + 1, year=int(y), serial=int(s)
        )
        for e, y, s in zip(establishment, year, serial, strict=True)
    ]
