"""Fixtures of the modelling tests: the tiny generated frame in ``toy.py``."""

from __future__ import annotations

import pandas as pd
import pytest
from toy import make_config, make_frame, make_spec

from cmerisk.config import ExperimentConfig
from cmerisk.spec import DatasetSpec


@pytest.fixture(scope="session")
def toy_frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="session")
def toy_spec() -> DatasetSpec:
    return make_spec()


@pytest.fixture(scope="session")
def toy_config() -> ExperimentConfig:
    return make_config()
