"""`segml.train(engine="spark")`: the log read, cleaned and tabled on Spark, the run
logged and registered as the pandas engine's, into a real SQLite store.

One local Spark session (``local[2]``; the one of the other Spark tests when they run
together). Both engines train on the same file (the CDNOW sample written as CSV).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pyspark", reason='the Spark path needs the extra: pip install -e ".[spark]"')

from mlflow import MlflowClient  # noqa: E402

from segml._config import ConfigError  # noqa: E402
from segml.datasets import load_cdnow  # noqa: E402
from segml.tracking import train  # noqa: E402

# What needs the raw log, which the Spark engine keeps on the cluster.
PANDAS_ONLY_METRICS = {
    "predictive.count_coverage",
    "predictive.count_interval_mass",
    "predictive.spend_coverage",
    "predictive.spend_interval_mass",
    "predictive.p_buy_90d_brier",
    "predictive.p_buy_90d_brier_baseline",
}


def config(source: str) -> dict:
    return {
        "data": {"source": source, "name": "CDNOW sample"},
        "transactions": {"drop_duplicates": False},
        "clv": {"time_unit": "W"},
        "segments": {"n_segments": [3, 4], "random_state": 0},
        "churn": {"random_state": 0, "calibration_method": "sigmoid"},
        "scorer": {"churn_horizon_days": 90, "clv_holdout_days": 273, "random_state": 0},
        "gates": {"churn_min_lead": -0.02},
        "run": {"as_of": "1998-06-30", "experiment_name": "spark", "registered_model_name": "sp"},
    }


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark_train")
    source = str(folder / "sample.csv")
    load_cdnow(sample=True).to_csv(source, index=False)
    uri = f"sqlite:///{folder}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        on_pandas = train(config(source), tracking_uri=uri)
        notices = []
        on_spark = train(
            config(source), tracking_uri=uri, engine="spark", spark=spark, on_notice=notices.append
        )
    return uri, on_pandas, on_spark, notices


def test_a_spark_run_logs_and_registers_as_the_pandas_run(runs):
    uri, on_pandas, on_spark, notices = runs
    client = MlflowClient(tracking_uri=uri)
    a, b = client.get_run(on_pandas.run_id), client.get_run(on_spark.run_id)
    assert b.info.status == "FINISHED"
    # Every metric the two runs share is the same number (same tables, same fits);
    # the Spark run lacks only the predictive calibration, which needs the raw log.
    assert set(a.data.metrics) - set(b.data.metrics) == PANDAS_ONLY_METRICS
    assert set(b.data.metrics) <= set(a.data.metrics)
    for key, value in b.data.metrics.items():
        assert value == pytest.approx(a.data.metrics[key], rel=1e-6, abs=1e-12), key
    assert b.data.tags["predictive.skipped"].endswith("(Spark engine)")
    assert a.data.params["engine"] == "pandas" and b.data.params["engine"] == "spark"
    assert b.data.params["spark.n_customers"] == "2349"
    assert b.data.params["spark.sample_fraction"] == "1.0"
    assert b.data.tags["spark.tables"] == "all 2,349 customers known at 1998-06-30"
    assert "Spark engine: the models were fitted on all 2,349 customers" in notices[0]
    # The history gate reads the first day from the tables, not the log.
    assert b.data.metrics["gate.history_days.value"] == 545.0
    # Registered like the pandas run's: one version each, the candidate alias on the last.
    assert (on_pandas.version, on_spark.version) == ("1", "2")
    assert on_spark.aliases == ["candidate"]
    assert on_spark.scorer.clv_.purchase_params_ == pytest.approx(
        on_pandas.scorer.clv_.purchase_params_, rel=1e-6
    )


def test_a_spark_run_logs_every_figure_but_the_one_that_needs_the_log(runs):
    uri, on_pandas, on_spark, _ = runs
    client = MlflowClient(tracking_uri=uri)

    def figures(run_id):
        found = set()
        for folder in ("figures/clv", "figures/segments", "figures/churn"):
            found |= {a.path for a in client.list_artifacts(run_id, folder)}
        return found

    missing = figures(on_pandas.run_id) - figures(on_spark.run_id)
    assert missing == {
        "figures/clv/cumulative_repeat_transactions.png",
        "figures/clv/p_buy_reliability.png",  # drawn from the predictive calibration
    }
    top = {Path(a.path).name for a in client.list_artifacts(on_spark.run_id)}
    assert {"report.html", "segment_map.json", "early_warning.csv", "gates.csv"} <= top
    assert "predictive_reliability.csv" not in top
    tags = client.get_run(on_spark.run_id).data.tags
    assert tags["figures.skipped"].startswith("clv/cumulative_repeat_transactions.png")


def test_the_spark_engine_reads_files_and_names_the_engines(spark, tmp_path):
    with pytest.raises(ConfigError, match="the Spark engine reads files"):
        train(config("cdnow-sample"), tracking_uri=f"sqlite:///{tmp_path}/m.db", engine="spark")
    with pytest.raises(ConfigError, match="engine must be 'pandas' or 'spark', got 'dask'"):
        train(config("cdnow-sample"), tracking_uri=f"sqlite:///{tmp_path}/m.db", engine="dask")


def test_segml_train_engine_spark_on_the_command_line(runs, tmp_path):
    # The command line's --engine spark is the Python twin's engine="spark": the same
    # metrics as the run trained from Python on the same file.
    import yaml
    from typer.testing import CliRunner

    from segml.cli import app

    uri, _, on_spark, _ = runs
    source = MlflowClient(tracking_uri=uri).get_run(on_spark.run_id).data.params["data.source"]
    path = tmp_path / "spark.yaml"
    path.write_text(yaml.safe_dump(config(str(Path(uri[len("sqlite:///") :]).parent / source))))
    result = CliRunner().invoke(
        app, ["train", "--config", str(path), "--tracking-uri", uri, "--engine", "spark"]
    )
    assert result.exit_code == 0, result.output
    assert "Spark engine: the models were fitted on all 2,349 customers" in result.output
    run_id = result.output.strip().splitlines()[-1]
    client = MlflowClient(tracking_uri=uri)
    got, want = client.get_run(run_id).data, client.get_run(on_spark.run_id).data
    assert got.params["engine"] == "spark"
    assert got.metrics == pytest.approx(want.metrics, rel=1e-9)
