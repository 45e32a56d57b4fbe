"""Training runs in MLflow: what a run logs, the registry, the pickle-free model, errors.

Everything runs against a real MLflow store: the embedded SQLite store in a temporary
folder here, and a real `mlflow server` in test_tracking_server.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from typer.testing import CliRunner

import segml
from segml._config import ConfigError
from segml.cli import app
from segml.datasets import load_cdnow
from segml.scoring import OUTPUT_COLUMNS, customer_features
from segml.tracking import (
    TrackingError,
    cast_to_signature,
    diff_runs,
    export_model,
    runs_table,
    train,
)
from segml.transactions import load_transactions

EXPERIMENT = "segml-test"
MODEL_NAME = "segml-test-scorer"


def sample_config(**run_overrides) -> dict:
    """The CDNOW sample run, small enough for tests."""
    return {
        "data": {"source": "cdnow-sample", "name": "CDNOW sample"},
        "transactions": {"drop_duplicates": False},
        "clv": {"time_unit": "W"},
        "segments": {"n_segments": [3, 4, 5], "random_state": 0},
        "churn": {"random_state": 0, "calibration_method": "sigmoid"},
        "scorer": {"churn_horizon_days": 90, "clv_holdout_days": 273},
        "run": {
            "as_of": "1998-06-30",
            "experiment_name": EXPERIMENT,
            "registered_model_name": MODEL_NAME,
            **run_overrides,
        },
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A working folder with the embedded store, where runs write their artifacts."""
    folder = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield folder, f"sqlite:///{folder}/mlflow.db"


@pytest.fixture(scope="module")
def first_run(store):
    folder, uri = store
    return train(sample_config(), tracking_uri=uri, export=folder / "models" / "scorer")


@pytest.fixture(scope="module")
def second_run(store, first_run):
    _, uri = store
    config = sample_config()
    config["segments"]["n_segments"] = 4
    return train(config, tracking_uri=uri, promote=True)


@pytest.fixture(scope="module")
def features():
    clean, _ = load_transactions(load_cdnow(sample=True), drop_duplicates=False)
    return customer_features(clean, as_of="1998-06-30")


def test_a_run_logs_params_metrics_tags_and_dataset(store, first_run):
    _, uri = store
    run = MlflowClient(tracking_uri=uri).get_run(first_run.run_id)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED"
    assert params["clv.time_unit"] == "W"
    assert params["run.as_of"] == "1998-06-30"
    assert params["segments.n_segments"] == "[3, 4, 5]"
    assert metrics["setting.scorer.churn_horizon_days"] == 90.0
    assert metrics["data.rows_read"] == 6919.0
    raw = load_cdnow(sample=True)
    assert metrics["data.dropped.zero_amount"] == float((raw["amount"] == 0).sum())
    silhouettes = first_run.scorer.segments_.silhouette_scores_
    assert metrics["segments.k"] == float(max(silhouettes, key=silhouettes.get))
    churn = first_run.scorer.evaluation_["churn"]
    assert metrics["churn.model.roc_auc"] == pytest.approx(churn.loc["model", "roc_auc"])
    assert metrics["churn.1_minus_p_alive.roc_auc"] == pytest.approx(
        churn.loc["1 - p_alive", "roc_auc"]
    )
    assert metrics["clv.param.r"] == pytest.approx(first_run.scorer.clv_.bgnbd_params_["r"])
    shares = [v for k, v in metrics.items() if k.startswith("share.tier.")]
    assert sum(shares) == pytest.approx(1.0)
    assert tags["as_of"] == "1998-06-30"
    assert tags["segml_version"] == segml.__version__
    assert len(tags["data_digest"]) == 16
    dataset = run.inputs.dataset_inputs[0].dataset
    assert dataset.name == "CDNOW sample" and dataset.digest == tags["data_digest"]


def test_a_run_logs_the_segment_map_report_and_every_figure(store, first_run):
    _, uri = store
    client = MlflowClient(tracking_uri=uri)
    top = {a.path for a in client.list_artifacts(first_run.run_id)}
    assert {
        "segment_map.json",
        "segment_map.csv",
        "data_quality.json",
        "churn_evaluation.csv",
        "early_warning.csv",
        "cutoffs.json",
        "figures",
    } <= top
    figures = set()
    for folder in ("figures/clv", "figures/segments", "figures/churn"):
        figures |= {Path(a.path).name for a in client.list_artifacts(first_run.run_id, folder)}
    assert {
        "calibration_vs_holdout_purchases.png",
        "p_alive_matrix.png",
        "clv_distribution.png",
        "tier_counts.png",
        "tier_shares.png",
        "frequency_vs_spend.png",
        "segment_profiles.png",
        "silhouette_curve.png",
        "roc.png",
        "precision_recall.png",
        "calibration.png",
        "lift.png",
    } <= figures
    local = client.download_artifacts(first_run.run_id, "data_quality.json", str(store[0]))
    assert '"rows_read": 6919' in Path(local).read_text()
    local = client.download_artifacts(first_run.run_id, "early_warning.csv", str(store[0]))
    warning = pd.read_csv(local, dtype={"customer_id": str}).set_index("customer_id")
    assert len(warning) == 100
    assert warning["value_at_risk"].is_monotonic_decreasing
    assert set(warning["risk_band"]) <= {"high", "medium"}
    np.testing.assert_allclose(
        warning["value_at_risk"], warning["clv"] * warning["churn_probability"], rtol=1e-12
    )


def test_one_model_is_registered_with_the_candidate_alias(store, first_run, second_run):
    _, uri = store
    client = MlflowClient(tracking_uri=uri)
    assert first_run.aliases == ["candidate"]
    assert (first_run.version, second_run.version) == ("1", "2")
    model = client.get_registered_model(MODEL_NAME)
    assert {k: str(v) for k, v in model.aliases.items()} == {"candidate": "2", "champion": "2"}
    artifacts = {a.path for a in client.list_artifacts(first_run.run_id)}
    assert not any(path.endswith((".pkl", ".pickle")) for path in artifacts)


def test_registered_model_predicts_without_pickle(
    store, first_run, second_run, features, monkeypatch
):
    _, uri = store
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@candidate")
    scored = model.predict(cast_to_signature(features, second_run.scorer.feature_columns_))
    expected = second_run.scorer.predict(features)
    assert list(scored.columns) == ["customer_id", *OUTPUT_COLUMNS]
    assert scored["customer_id"].tolist() == expected.index.tolist()
    np.testing.assert_allclose(scored["clv"], expected["clv"], rtol=1e-12)
    np.testing.assert_allclose(scored["churn_probability"], expected["churn_probability"])
    assert scored["tier"].tolist() == expected["tier"].tolist()
    version_one = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/1")
    assert version_one.metadata.run_id == first_run.run_id


def test_signature_types_and_integer_inputs_are_cast(first_run, features):
    signature = mlflow.models.get_model_info(str(first_run.export_path)).signature
    inputs = {c["name"]: c["type"] for c in signature.inputs.to_dict()}
    outputs = {c["name"]: c["type"] for c in signature.outputs.to_dict()}
    assert inputs["customer_id"] == "string"
    assert {inputs[c] for c in first_run.scorer.feature_columns_} == {"double"}
    assert outputs["segment"] == "long" and outputs["tier"] == "string"
    assert outputs["clv"] == "double"
    counts = features.astype({"n_orders": "int64"})  # as rfm_summary returns it
    model = mlflow.pyfunc.load_model(str(first_run.export_path))
    scored = model.predict(cast_to_signature(counts, first_run.scorer.feature_columns_))
    assert len(scored) == len(features)
    # Cast, the integer counts score exactly as the float features and the scorer do.
    from_floats = model.predict(cast_to_signature(features, first_run.scorer.feature_columns_))
    expected = first_run.scorer.predict(features)
    assert scored["customer_id"].tolist() == expected.index.tolist()
    for reference in (from_floats, expected.reset_index()):
        np.testing.assert_allclose(scored["clv"], reference["clv"], rtol=1e-12)
        np.testing.assert_allclose(
            scored["churn_probability"], reference["churn_probability"], rtol=1e-12
        )
        assert scored["tier"].tolist() == reference["tier"].tolist()
        assert scored["segment"].tolist() == reference["segment"].tolist()


def test_exported_folder_matches_the_registered_model(first_run, features):
    folder = first_run.export_path
    assert (folder / "MLmodel").exists()
    assert not list(folder.rglob("*.pkl"))
    model = mlflow.pyfunc.load_model(str(folder))
    scored = model.predict(cast_to_signature(features, first_run.scorer.feature_columns_))
    expected = first_run.scorer.predict(features)
    np.testing.assert_allclose(scored["p_alive"], expected["p_alive"], rtol=1e-12)
    assert scored["segment_name"].tolist() == expected["segment_name"].tolist()


def test_export_never_leaves_a_half_written_folder(first_run, tmp_path, features):
    target = tmp_path / "model"
    export_model(
        first_run.scorer,
        target,
        input_example=cast_to_signature(features.head(2), first_run.scorer.feature_columns_),
    )
    before = sorted(p.relative_to(target) for p in target.rglob("*"))
    wrong_example = pd.DataFrame({"customer_id": ["x"], "not_a_feature": [1.0]})
    with pytest.raises(MlflowException, match="not_a_feature"):  # fails mid-way
        export_model(first_run.scorer, target, input_example=wrong_example)
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_runs_table_and_diff(store, first_run, second_run):
    _, uri = store
    table = runs_table(tracking_uri=uri, experiment_name=EXPERIMENT)
    assert table["run_id"].tolist()[:2] == [second_run.run_id, first_run.run_id]
    assert {"churn.model.roc_auc", "segments.k", "as_of"} <= set(table.columns)
    diff = diff_runs(first_run.run_id, second_run.run_id, tracking_uri=uri)
    assert diff["params"].loc["segments.n_segments"].tolist() == ["[3, 4, 5]", "4"]
    assert "churn.model.roc_auc" in diff["metrics"].index
    # Same scorecard, so every tier is the same; k went from the silhouette's choice to 4.
    statuses = diff["segment_map"]["status"]
    assert set(statuses.loc["tier"]) == {"same"}
    k_first = first_run.scorer.segments_.n_segments_
    expected = {"added"} if k_first < 4 else {"removed"} if k_first > 4 else set()
    assert expected <= set(statuses.loc["segment"])
    assert len(statuses.loc["segment"]) == max(k_first, 4)
    # random_state 0 fixes the first run's k: the silhouette picks 3 of [3, 4, 5] by a
    # wide margin (measured 0.49 against 0.42 and 0.42).
    silhouettes = first_run.scorer.segments_.silhouette_scores_
    assert k_first == max(silhouettes, key=silhouettes.get) == 3
    # 3 -> 4 segments: refitting moves customers between all of them, so each of the
    # three old segments changes size and segment 3 is new; nothing is removed.
    assert statuses.loc["segment"].to_dict() == {
        "0": "changed",
        "1": "changed",
        "2": "changed",
        "3": "added",
    }
    assert statuses.loc["tier"].to_dict() == {"VIP": "same", "regular": "same", "prospect": "same"}
    # Both runs score the same customers: every grouping sums to the same total.
    sizes = diff["segment_map"][["size_before", "size_after"]]
    total = sizes.loc["tier", "size_before"].sum()
    assert sizes.loc["tier", "size_after"].sum() == total
    assert sizes.loc["segment", "size_before"].sum() == total
    assert sizes.loc["segment", "size_after"].sum() == total


def test_runs_commands(store, first_run, second_run):
    _, uri = store
    runner = CliRunner()
    listed = runner.invoke(app, ["runs", "--experiment", EXPERIMENT, "--tracking-uri", uri])
    assert listed.exit_code == 0, listed.output
    assert first_run.run_id in listed.stdout and second_run.run_id in listed.stdout
    diffed = runner.invoke(
        app, ["runs", "diff", first_run.run_id, second_run.run_id, "--tracking-uri", uri]
    )
    assert diffed.exit_code == 0, diffed.output
    assert "segments.n_segments" in diffed.stdout and "segment map:" in diffed.stdout
    missing = runner.invoke(app, ["runs", "--experiment", "nope", "--tracking-uri", uri])
    assert missing.exit_code == 1 and "No experiment named 'nope'" in missing.output
    wrong = store[0] / "elsewhere" / "mlflow.db"
    missing = runner.invoke(app, ["runs", "--tracking-uri", f"sqlite:///{wrong}"])
    assert missing.exit_code == 1 and "No MLflow store at" in " ".join(missing.output.split())
    assert not wrong.exists()  # listing runs never creates a store


def test_a_tracking_server_that_is_down_is_a_clear_error(tmp_path):
    with pytest.raises(
        TrackingError, match=r"Cannot reach the MLflow tracking server at http://127\.0\.0\.1:9"
    ):
        train(sample_config(), tracking_uri="http://127.0.0.1:9")


def test_the_file_store_is_never_used(tmp_path):
    with pytest.raises(TrackingError, match="plain file store"):
        train(sample_config(), tracking_uri=str(tmp_path / "mlruns"))


def test_config_errors_name_the_key(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("data: {source: cdnow-sample}\nclv: {horizon_month: 12}\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['horizon_month'\] in section 'clv'"):
        train(config, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


def test_another_signature_under_the_same_name_is_refused(store, first_run, second_run):
    _, uri = store
    config = sample_config()
    config["scorer"]["windows_days"] = [30, 90]  # other inputs than versions 1 and 2
    with pytest.raises(TrackingError, match="takes other inputs"):
        train(config, tracking_uri=uri)
    versions = MlflowClient(tracking_uri=uri).search_model_versions(f"name='{MODEL_NAME}'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]


def test_an_interrupted_run_is_failed_and_moves_no_alias(store, first_run, second_run, monkeypatch):
    _, uri = store
    import segml.tracking._train as train_module

    def interrupted(scorer):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_figures", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(sample_config(), tracking_uri=uri, promote=True)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    latest = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"]
    )[0]
    assert latest.info.status == "FAILED"
    aliases = client.get_registered_model(MODEL_NAME).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"candidate": "2", "champion": "2"}


def test_train_command_on_the_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = tmp_path / "run.yaml"
    import yaml

    config.write_text(
        yaml.safe_dump(sample_config(experiment_name="cli", registered_model_name="cli"))
    )
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mlflow.db").exists()  # the default embedded store
    assert "registered cli version 1 as ['candidate']" in " ".join(result.output.split())
    assert os.path.isdir(tmp_path / "mlruns")
