from __future__ import annotations

from pathlib import Path

import pytest

from cmerisk.config import ExperimentConfig, load_config, load_spec
from cmerisk.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_mirrors_code_defaults() -> None:
    assert load_config(ROOT / "configs" / "default.yaml") == ExperimentConfig()


def test_config_round_trips_through_json() -> None:
    cfg = ExperimentConfig()
    assert ExperimentConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("evaluation: {capacities: [0]}", "evaluation.capacities.0"),
        ("lightgbm: {learning_rate: fast}", "lightgbm.learning_rate"),
        ("unknown_section: 1", "unknown_section"),
        ("fairness: {parity_band: [1.2, 0.8]}", "parity_band"),
        ("dataset: [", "not valid YAML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config(p)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_spec_rejects_protected_feature(tmp_path: Path) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text(
        "id: pid\ntarget: y\nfeatures:\n  - {name: ethnicity_major, group: context, reason: x}\n"
    )
    with pytest.raises(ConfigError, match="protected characteristic"):
        load_spec(p)
