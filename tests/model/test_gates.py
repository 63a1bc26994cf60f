"""Champion gates."""

from __future__ import annotations

import pytest

from cmerisk.config import GateConfig
from cmerisk.model.gates import check_gates


class _Audit:
    def __init__(self, failures):
        self.failures = failures

    def gate_failures(self, gates):
        return self.failures


def test_gates_block_a_model_that_loses_to_a_baseline() -> None:
    result = check_gates(
        {"logistic": True, "points_rule": False},
        gates=GateConfig(),
        metric="precision_at_200",
        audit=_Audit([]),
    )
    assert not result.passed
    assert result.failures == [
        "beats baselines: the model does not beat points_rule on precision_at_200"
    ]
    assert "points_rule" in result.reason


def test_gates_pass_a_model_that_beats_both_and_is_fair() -> None:
    result = check_gates(
        {"logistic": True, "points_rule": True},
        gates=GateConfig(),
        metric="precision_at_200",
        audit=_Audit([]),
    )
    assert result.passed and result.reason == "all gates passed"


def test_fairness_failures_are_named() -> None:
    msg = "missed-children ratio for sen_provision=E is 1.62 (95% CI 1.31-2.01) > 1.25"
    result = check_gates(
        {"logistic": True}, gates=GateConfig(), metric="m", audit=_Audit([msg])
    )
    assert not result.passed and result.failures == [f"fairness: {msg}"]


@pytest.mark.parametrize(("require", "passed"), [(True, False), (False, True)])
def test_missing_audit(require, passed) -> None:
    result = check_gates(
        {"logistic": True},
        gates=GateConfig(),
        metric="m",
        audit=None,
        audit_unavailable="no audit columns",
        require_audit=require,
    )
    assert result.passed is passed
    assert "no audit columns" in (result.reason if not passed else result.notes[0])


def test_switched_off_gates_pass() -> None:
    gates = GateConfig(must_beat_baselines=False, max_missed_ratio=None)
    assert check_gates({"logistic": False}, gates=gates, metric="m").passed
