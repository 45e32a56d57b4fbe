"""Shared fixtures: CDNOW and small simulated logs, loaded once per session."""

from __future__ import annotations

import os
import sys
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


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole test run: 2 cores, loopback only, no UI.

    Shared by every Spark test file (a session takes ~10 s to start). Skips where the
    spark extra is not installed.
    """
    pytest.importorskip("pyspark", reason='the Spark path needs: pip install -e ".[spark]"')
    from pyspark.sql import SparkSession

    previous = os.environ.get("PYSPARK_PYTHON")
    # Python workers must be this interpreter (it has segml); the context reads it once.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        with warnings.catch_warnings():
            # PySpark 4.3 warns that pandas >= 3 is not fully supported.
            warnings.filterwarnings(
                "ignore",
                message="PySpark does not yet fully support pandas",
                category=FutureWarning,
            )
            session = (
                SparkSession.builder.master("local[2]")
                .appName("segml tests")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .getOrCreate()
            )
    finally:
        if previous is None:
            del os.environ["PYSPARK_PYTHON"]
        else:
            os.environ["PYSPARK_PYTHON"] = previous
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
