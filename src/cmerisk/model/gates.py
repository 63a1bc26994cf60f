"""Champion gates: what a model must pass before it may be used to call families.

From ``config.gates``:

- ``must_beat_baselines``: the model's estimate on the gate metric (precision
  at the primary capacity by default) must be better than EVERY baseline's on
  the same test rows. A baseline that could not be scored is noted, not
  counted as beaten.
- fairness gates (``max_missed_ratio``, ``max_false_positive_ratio``), checked
  by the fairness audit itself (``audit.gate_failures(gates)``). Without an
  audit they are recorded as NOT CHECKED, and with ``require_audit`` that
  fails the gate: the pipeline requires the audit whenever
  :mod:`cmerisk.fairness` is installed, so data without audit columns can
  only produce a champion when the fairness gates are switched off
  explicitly (set both ratios to null).

Examples
--------
>>> from cmerisk.config import GateConfig
>>> r = check_gates({"logistic": True, "points_rule": False}, gates=GateConfig(),
...                 metric="precision_at_200", audit=None, require_audit=False)
>>> r.passed, r.failures
(False, ['beats baselines: the model does not beat points_rule on precision_at_200'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cmerisk.config import GateConfig


class _Audit(Protocol):
    def gate_failures(self, gates: GateConfig) -> list[str]: ...


@dataclass(frozen=True)
class GateResult:
    """Whether the model may take the champion alias, and why not if it may not."""

    passed: bool
    failures: list[str]
    checks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """One line for logs, tags and the console."""
        if self.passed:
            return "all gates passed"
        return "; ".join(self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": self.failures,
            "checks": self.checks,
            "notes": self.notes,
        }


def fairness_gates_configured(gates: GateConfig) -> bool:
    return (
        gates.max_missed_ratio is not None or gates.max_false_positive_ratio is not None
    )


def check_gates(
    beats_baselines: Mapping[str, bool],
    *,
    gates: GateConfig,
    metric: str,
    audit: _Audit | None = None,
    audit_unavailable: str | None = None,
    require_audit: bool = True,
) -> GateResult:
    """Apply the champion gates.

    Parameters
    ----------
    beats_baselines
        Baseline name -> whether the model is better on ``metric``
        (:attr:`cmerisk.model.evaluate.Evaluation.beats_baselines`).
    gates
        The gates section of the config.
    metric
        The metric key compared (for messages).
    audit
        A fairness audit with ``gate_failures(gates)``, or None.
    audit_unavailable
        Why there is no audit (for the record).
    require_audit
        Fail when fairness gates are configured but no audit was run.
    """
    failures: list[str] = []
    checks: list[dict[str, Any]] = []
    notes: list[str] = []
    if gates.must_beat_baselines:
        if not beats_baselines:
            notes.append(
                "no baseline could be scored; the baseline gate was not checked"
            )
        for baseline, ok in beats_baselines.items():
            checks.append({"gate": f"beats {baseline} on {metric}", "passed": ok})
            if not ok:
                failures.append(
                    f"beats baselines: the model does not beat {baseline} on {metric}"
                )
    if fairness_gates_configured(gates):
        if audit is not None:
            fairness = list(audit.gate_failures(gates))
            checks.append(
                {"gate": "fairness", "passed": not fairness, "details": fairness}
            )
            failures.extend(f"fairness: {f}" for f in fairness)
        else:
            why = audit_unavailable or "no fairness audit was run"
            checks.append({"gate": "fairness", "passed": None, "details": [why]})
            if require_audit:
                failures.append(f"fairness: gates not checked ({why})")
            else:
                notes.append(f"fairness gates not checked: {why}")
    return GateResult(
        passed=not failures, failures=failures, checks=checks, notes=notes
    )
