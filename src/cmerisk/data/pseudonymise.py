"""Keyed pseudonymisation of pupil identifiers.

A UPN has little entropy (an LA number, a school number, a year and a serial),
so a plain hash of it can be reversed by trying every UPN. cmerisk stores only
HMAC-SHA256 of the UPN under a secret key the LA holds
(``CMERISK_PSEUDONYM_KEY``); the same UPN and key always give the same id, so
records still join across tables and years.

Examples
--------
>>> key = b"an example key, never use this one"
>>> pid = pseudonymise_upn("B801200005001", key=key)
>>> len(pid), pid == pseudonymise_upn("B801200005001", key=key)
(24, True)
>>> pid == pseudonymise_upn("B801200005001", key=b"another key")
False
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable

import pandas as pd

from cmerisk.errors import PseudonymKeyError

__all__ = ["PseudonymKeyError", "get_key", "pseudonymise_series", "pseudonymise_upn"]

KEY_ENV_VAR = "CMERISK_PSEUDONYM_KEY"

#: The key used only when a command is run with ``--demo``: published here, so
#: it protects nothing. Ids made with it must never leave a test machine.
DEMO_KEY = b"cmerisk-demo-key-NOT-SECRET-do-not-use-with-real-data"

#: Length (hex characters) of a pseudonymised id: 96 bits, so that collisions
#: among England's ~9 million pupils are vanishingly unlikely (p ~ 1e-12).
ID_LENGTH = 24

_ID_PATTERN = re.compile(rf"^[0-9a-f]{{{ID_LENGTH}}}$")

MISSING_KEY_MESSAGE = (
    f"No pseudonymisation key: set the environment variable {KEY_ENV_VAR} to the "
    "LA's secret key (at least 16 characters), or pass --demo to use the public "
    "demo key on synthetic data only."
)
SHORT_KEY_MESSAGE = (
    f"The key in {KEY_ENV_VAR} is too short: use at least 16 characters."
)
DEMO_KEY_WARNING = (
    "USING THE PUBLIC DEMO PSEUDONYMISATION KEY: ids are NOT protected. "
    "Use it only with synthetic data."
)


def get_key(*, demo: bool = False) -> bytes:
    """Return the LA's pseudonymisation key from ``CMERISK_PSEUDONYM_KEY``.

    With ``demo=True`` and no key set, return the public :data:`DEMO_KEY`; the
    caller must say so loudly (see :data:`DEMO_KEY_WARNING`).

    Raises
    ------
    PseudonymKeyError
        When no key is set (and ``demo`` is false) or the key is too short.
    """
    value = os.environ.get(KEY_ENV_VAR)
    if not value:
        if demo:
            return DEMO_KEY
        raise PseudonymKeyError(MISSING_KEY_MESSAGE)
    if len(value) < 16:
        raise PseudonymKeyError(SHORT_KEY_MESSAGE)
    return value.encode("utf-8")


def pseudonymise_upn(upn: str, *, key: bytes) -> str:
    """Return the pseudonymised id of one UPN (or any identifier)."""
    digest = hmac.new(key, upn.strip().upper().encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:ID_LENGTH]


def pseudonymise_many(upns: Iterable[str], *, key: bytes) -> list[str]:
    """Pseudonymise many identifiers (same result as one at a time)."""
    return [pseudonymise_upn(u, key=key) for u in upns]


def pseudonymise_series(upns: pd.Series, *, key: bytes) -> pd.Series:
    """Pseudonymise a column, hashing each distinct value once."""
    codes, uniques = pd.factorize(upns, use_na_sentinel=True)
    hashed = pseudonymise_many((str(u) for u in uniques), key=key)
    out = pd.Series(pd.array(hashed, dtype="string"), dtype="string")
    result = out.take(codes).reset_index(drop=True) if len(codes) else out.iloc[:0]
    result[codes < 0] = pd.NA
    result.index = upns.index
    result.name = upns.name
    return result


def looks_pseudonymised(value: object) -> bool:
    """Return whether ``value`` has the shape of an id made by this module."""
    return isinstance(value, str) and bool(_ID_PATTERN.match(value))
