from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmerisk.data.upn import is_valid_upn, make_upn, random_upns, upn_problem

# Check letters worked by hand: sum of weight * value over characters 2-13, mod 23,
# mapped onto A-Z without I, O and S.
#  B801200005001: 8*2+0*3+1*4+2*5+0*6+0*7+0*8+0*9+5*10+0*11+0*12+1*13 = 93 = 4*23+1 -> B
KNOWN = ["B801200005001"]


@pytest.mark.parametrize("upn", KNOWN)
def test_known_upns_are_valid(upn: str) -> None:
    assert is_valid_upn(upn)


@pytest.mark.parametrize(
    ("upn", "problem"),
    [
        ("A801200005001", "wrong check letter"),
        ("B80120000500", "length 12, expected 13"),
        (
            "I801200005001",
            "bad format (check letter, 11 digits, digit or letter; no I, O or S)",
        ),
        (
            "B8012000A5001",
            "bad format (check letter, 11 digits, digit or letter; no I, O or S)",
        ),
        (None, "not a string"),
    ],
)
def test_invalid_upns_say_why(upn: object, problem: str) -> None:
    assert upn_problem(upn) == problem


@given(
    la=st.integers(201, 999),
    est=st.integers(0, 9999),
    year=st.integers(0, 99),
    serial=st.integers(0, 999),
)
def test_made_upns_validate(la: int, est: int, year: int, serial: int) -> None:
    upn = make_upn(la_number=la, establishment=est, year=year, serial=serial)
    assert is_valid_upn(upn)


@given(
    la=st.integers(201, 999),
    est=st.integers(0, 9999),
    serial=st.integers(0, 999),
    pos=st.integers(1, 12),
    delta=st.integers(1, 9),
)
def test_a_single_changed_digit_breaks_the_check_letter(
    la: int, est: int, serial: int, pos: int, delta: int
) -> None:
    upn = make_upn(la_number=la, establishment=est, year=24, serial=serial)
    digit = (int(upn[pos]) + delta) % 10
    changed = upn[:pos] + str(digit) + upn[pos + 1 :]
    # weights 2..13 are all coprime with 23, so any one-digit change moves the sum mod 23
    assert not is_valid_upn(changed)


def test_random_upns_are_distinct_valid_and_reproducible() -> None:
    a = random_upns(2000, rng=np.random.default_rng(1), la_number=330)
    b = random_upns(2000, rng=np.random.default_rng(1), la_number=330)
    assert a == b
    assert len(set(a)) == 2000
    assert all(is_valid_upn(u) and u[1:4] == "330" for u in a)
