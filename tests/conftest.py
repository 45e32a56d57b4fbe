"""Shared fixtures: CDNOW and small simulated logs, loaded once per session."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from segml.datasets import load_cdnow, simulate_transactions


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    """The full CDNOW master log (23,570 customers)."""
    return load_cdnow()


@pytest.fixture(scope="session")
def cdnow_sample() -> pd.DataFrame:
    """The 2,357-customer CDNOW sample of Fader, Hardie & Lee (2005)."""
    return load_cdnow(sample=True)


@pytest.fixture(scope="session")
def simulated() -> pd.DataFrame:
    """A 5,000-customer BG/NBD + Gamma-Gamma log over 2020-2021."""
    return simulate_transactions(5_000, seed=7)


@pytest.fixture(scope="session")
def lifetimes_utils():
    """lifetimes.utils, imported quietly (it sets a deprecated pandas option on import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import lifetimes.utils

    return lifetimes.utils


@pytest.fixture(autouse=True)
def _isolated_tracking_uri(monkeypatch):
    """mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI: undo it after each test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
