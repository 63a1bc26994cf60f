from __future__ import annotations

import pandas as pd
import pytest

from cmerisk.data.pseudonymise import (
    DEMO_KEY,
    KEY_ENV_VAR,
    MISSING_KEY_MESSAGE,
    get_key,
    looks_pseudonymised,
    pseudonymise_series,
    pseudonymise_upn,
)
from cmerisk.errors import PseudonymKeyError

KEY = b"test-key-0123456789abcdef"


def test_same_upn_same_key_same_id_and_keys_differ() -> None:
    a = pseudonymise_upn("B801200005001", key=KEY)
    assert a == pseudonymise_upn("b801200005001 ", key=KEY)  # case and blanks ignored
    assert a != pseudonymise_upn("B801200005001", key=b"other-key-0123456789")
    assert looks_pseudonymised(a)
    assert not looks_pseudonymised("B801200005001")


def test_series_matches_one_at_a_time_and_keeps_missing() -> None:
    s = pd.Series(
        ["B801200005001", None, "B801200005001", "X801200000001"], index=[5, 6, 7, 8]
    )
    out = pseudonymise_series(s, key=KEY)
    assert list(out.index) == [5, 6, 7, 8]
    assert out[5] == out[7] == pseudonymise_upn("B801200005001", key=KEY)
    assert pd.isna(out[6])
    assert out[8] == pseudonymise_upn("X801200000001", key=KEY)
    assert not any(str(v).startswith(("B8", "X8")) for v in out.dropna())


def test_no_key_refuses_unless_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    with pytest.raises(PseudonymKeyError, match="No pseudonymisation key"):
        get_key()
    assert MISSING_KEY_MESSAGE.startswith("No pseudonymisation key")
    assert get_key(demo=True) == DEMO_KEY


def test_env_key_is_used_and_short_keys_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, "a-real-secret-of-enough-length")
    assert get_key() == b"a-real-secret-of-enough-length"
    assert get_key(demo=True) == b"a-real-secret-of-enough-length"
    monkeypatch.setenv(KEY_ENV_VAR, "short")
    with pytest.raises(PseudonymKeyError, match="too short"):
        get_key()
