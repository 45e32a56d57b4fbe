"""Champion and challenger: `segml compare` and `segml promote` on a real SQLite MLflow store.

Two training runs of the CDNOW sample (as of 1998-03-31, promoted to champion, and
as of 1998-06-30, the candidate) are registered as versions 1 and 2. ``train`` logs
their gates: version 1 runs with the default bounds and fails the churn gate (its
churn model loses to a baseline on the sample), so it is registered with
``allow_failed_gates=True`` (the override is tagged); version 2 tolerates a loss of
up to 0.02 ROC AUC (``gates: {churn_min_lead: -0.02}``) and passes every gate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from segml.cli import app
from segml.scoring import customer_features
from segml.tracking import KEY_METRICS, train
from segml.tracking._champion import (
    GateRefusal,
    compare_models,
    population_stability_index,
    promote_version,
)
from segml.transactions import load_transactions

EXPERIMENT = "segml-champion-test"
NAME = "segml-champion-test"


def _config(as_of: str, **gates) -> dict:
    return {
        "gates": gates,
        "data": {"source": "cdnow-sample", "name": "CDNOW sample"},
        "transactions": {"drop_duplicates": False},
        "clv": {"time_unit": "W"},
        "segments": {"n_segments": 4, "random_state": 0},
        "churn": {"random_state": 0, "calibration_method": "sigmoid"},
        "scorer": {"churn_horizon_days": 90, "clv_holdout_days": 273},
        "run": {"as_of": as_of, "experiment_name": EXPERIMENT, "registered_model_name": NAME},
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory, cdnow_sample):
    folder = tmp_path_factory.mktemp("champion")
    uri = f"sqlite:///{folder}/mlflow.db"
    clean, _ = load_transactions(cdnow_sample, drop_duplicates=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        # Version 1 with the default bounds: its churn model loses to a baseline.
        old = train(_config("1998-03-31"), tracking_uri=uri, promote=True, allow_failed_gates=True)
        # Version 2 with a churn margin of -0.02 (a loss of up to 0.02 AUC tolerated).
        new = train(_config("1998-06-30", churn_min_lead=-0.02), tracking_uri=uri)
        old_gates, new_gates = old.gates, new.gates
        yield {
            "uri": uri,
            "folder": folder,
            "old": old,
            "new": new,
            "old_gates": old_gates,
            "new_gates": new_gates,
            "clean": clean,
        }


def test_the_fixture_runs_have_the_expected_gate_results(store):
    assert (store["old"].version, store["new"].version) == ("1", "2")
    old = store["old_gates"].set_index("gate")
    assert not old.loc["churn_lead", "passed"] and old.drop("churn_lead")["passed"].all()
    assert store["new_gates"]["passed"].all()


@pytest.fixture(scope="module")
def comparison(store):
    return compare_models(
        f"models:/{NAME}@candidate",
        f"models:/{NAME}@champion",
        "cdnow-sample",
        as_of="1998-06-30",
        tracking_uri=store["uri"],
    )


def test_compare_reports_metric_deltas_of_the_two_runs(store, comparison):
    client = MlflowClient(tracking_uri=store["uri"])
    old = client.get_run(store["old"].run_id).data.metrics
    new = client.get_run(store["new"].run_id).data.metrics
    assert comparison.champion["version"] == "1" and comparison.candidate["version"] == "2"
    assert comparison.champion["as_of"] == "1998-03-31"
    for metric in ("churn.model.roc_auc", "clv_holdout.purchases_mae", "data.rows_kept"):
        assert metric in KEY_METRICS
        row = comparison.metrics.loc[metric]
        assert row["champion"] == old[metric] and row["candidate"] == new[metric]
        assert row["delta"] == new[metric] - old[metric]


def test_compare_reports_tier_and_segment_migration(comparison):
    n = comparison.n_customers
    assert n == 2349  # every customer of the cleaned sample, scored by both models
    for column in ("tier", "segment_name"):
        counts = comparison.migration[column]
        assert counts.to_numpy().sum() == n  # no one new or lost: the same customers
        assert counts["(lost)"].sum() == 0 and counts.loc["(new)"].sum() == 0
        shares = comparison.migration[f"{column}_shares"]
        assert shares.to_numpy().sum() == pytest.approx(1.0)
        stayed = sum(counts.loc[label, label] for label in counts.index if label in counts)
        assert comparison.moved_share[column] == pytest.approx(1 - stayed / n)


def test_compare_detects_the_drift_since_the_champion_was_trained(store, comparison):
    drift = comparison.drift.set_index(["variable", "model"])
    champion = store["old"].scorer
    features = set(champion.feature_columns_)
    assert set(drift.xs("", level="model").index) == features
    assert set(drift.loc[drift["kind"] == "score"].index) == {
        (score, model)
        for score in ("clv", "churn_probability")
        for model in ("champion", "candidate")
    }
    # Recomputed on its own: the features of the log at both dates.
    clean = store["clean"]
    before = customer_features(clean, as_of="1998-03-31")
    after = customer_features(clean, as_of="1998-06-30")
    for column in ("days_since_last_purchase", "n_orders"):
        assert drift.loc[(column, ""), "psi"] == pytest.approx(
            population_stability_index(before[column], after[column])
        )
    # A cohort acquired in early 1997 that mostly stopped buying: three more months
    # since the last purchase for almost everyone is a significant shift; tenure too.
    assert drift.loc[("days_since_last_purchase", ""), "level"] == "significant"
    assert drift.loc[("tenure_days", ""), "level"] == "significant"
    assert "days_since_last_purchase" in comparison.verdict


def test_compare_gives_a_verdict_and_logs_to_the_candidate_run(store, comparison):
    assert comparison.gates_source == "run" and comparison.passed
    assert comparison.verdict.startswith(
        "the candidate passed every gate and may replace the champion"
    )
    client = MlflowClient(tracking_uri=store["uri"])
    run = client.get_run(store["new"].run_id)
    assert comparison.logged_to == store["new"].run_id
    assert run.data.metrics["compare.gates_passed"] == 1.0
    assert run.data.metrics["compare.n_customers"] == 2349
    assert run.data.metrics["compare.psi.days_since_last_purchase"] == pytest.approx(
        comparison.drift.set_index("variable").loc["days_since_last_purchase", "psi"]
    )
    assert run.data.tags["compare.champion"] == f"{NAME}/1"
    names = {a.path for a in client.list_artifacts(run.info.run_id, "comparison")}
    assert {
        "comparison/summary.json",
        "comparison/metrics.csv",
        "comparison/psi.csv",
        "comparison/gates.csv",
        "comparison/migration_tier.csv",
        "comparison/migration_segment_name.csv",
    } <= names
    local = client.download_artifacts(run.info.run_id, "comparison/summary.json", store["folder"])
    summary = json.loads(Path(local).read_text())
    assert summary["verdict"] == comparison.verdict and summary["passed"] is True
    # The candidate's tier report with the migration from the champion, beside it.
    assert "comparison/report.html" in names
    page = Path(
        client.download_artifacts(run.info.run_id, "comparison/report.html", store["folder"])
    ).read_text()
    assert "candidate against champion" in page
    # The tier migration table holds the comparison's matrix, cell by cell, row by row.
    moved = comparison.migration["tier"]
    table = re.search(r'<table id="migration-tier">(.*?)</table>', page, re.S)
    assert table is not None
    body = table.group(1).split("<tbody>")[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert [row[0] for row in cells] == [str(label) for label in moved.index]
    assert [row[1:] for row in cells] == [
        [f"{int(v):,}" for v in values] for values in moved.to_numpy()
    ]


def test_compare_command(store):
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "--candidate",
            f"models:/{NAME}/2",
            "--champion",
            f"models:/{NAME}/1",
            "--transactions",
            "cdnow-sample",
            "--as-of",
            "1998-06-30",
            "--tracking-uri",
            store["uri"],
            "--no-log",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tier migration (rows: champion, columns: candidate" in result.output
    assert "population stability index" in result.output
    assert "verdict: the candidate passed every gate" in result.output
    unknown = CliRunner().invoke(
        app,
        [
            "compare",
            "--candidate",
            f"models:/{NAME}@nobody",
            "--champion",
            f"models:/{NAME}@champion",
            "--transactions",
            "cdnow-sample",
            "--as-of",
            "1998-06-30",
            "--tracking-uri",
            store["uri"],
        ],
    )
    assert unknown.exit_code == 1
    # The batch scorer's message: it names the alias and lists those that exist.
    assert " ".join(unknown.output.split()).startswith(
        f"error: The registered model '{NAME}' has no alias 'nobody' (aliases: "
        "@candidate -> version 2, @champion -> version 1; versions: 1, 2)."
    )


def test_promote_refuses_a_failed_gate_then_allows_the_override(store):
    client = MlflowClient(tracking_uri=store["uri"])
    runner = CliRunner()
    # Version 2 passed: champion moves from 1 to 2.
    result = runner.invoke(app, ["promote", NAME, "--version", "2", "--tracking-uri", store["uri"]])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{NAME} version 2 is now champion (was version 1)"
    assert str(client.get_registered_model(NAME).aliases["champion"]) == "2"
    # Version 1 failed its churn gate: refused, one error line naming gate, value, bound.
    refused = runner.invoke(
        app, ["promote", NAME, "--version", "1", "--tracking-uri", store["uri"]]
    )
    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: version 1 of")
    churn_line = store["old_gates"].set_index("gate").loc["churn_lead", "message"]
    assert churn_line in refused.output.replace("\n", "")
    assert "bound >= 0.005" in lines[0]
    assert str(client.get_registered_model(NAME).aliases["champion"]) == "2"
    # The override moves it, and is tagged on the version.
    allowed = promote_version(NAME, 1, tracking_uri=store["uri"], allow_failed_gates=True)
    assert allowed.previous == "2" and allowed.overridden == [churn_line]
    tags = client.get_model_version(NAME, "1").tags
    assert tags["promote.allow_failed_gates"] == "true"
    assert tags["promote.override_reason"] == churn_line
    assert str(client.get_registered_model(NAME).aliases["champion"]) == "1"


def test_promote_refuses_a_version_without_gate_results(store):
    client = MlflowClient(tracking_uri=store["uri"])
    # A real version whose run logged nothing (as versions trained before gates).
    bare = client.create_run(client.get_run(store["new"].run_id).info.experiment_id)
    client.set_terminated(bare.info.run_id)
    source = client.get_model_version(NAME, "2").source
    version = client.create_model_version(NAME, source=source, run_id=bare.info.run_id).version
    with pytest.raises(GateRefusal, match=f"version {version} of '{NAME}' has no gate results"):
        promote_version(NAME, version, tracking_uri=store["uri"])
    with pytest.raises(Exception, match=r"has no version 99; its versions are \[1, 2, 3\]"):
        promote_version(NAME, 99, tracking_uri=store["uri"])
    result = promote_version(NAME, version, tracking_uri=store["uri"], allow_failed_gates=True)
    assert "no gate results" in result.overridden[0]
    assert client.get_model_version(NAME, version).tags["promote.allow_failed_gates"] == "true"


def test_compare_needs_the_log_back_to_the_champions_training(store, cdnow_sample):
    from segml.batch import ScoreError

    recent = cdnow_sample[cdnow_sample["timestamp"] >= "1998-04-15"]
    with pytest.raises(ScoreError, match=r"starts 1998-04-15, after the champion's training date"):
        compare_models(
            f"models:/{NAME}/2",
            f"models:/{NAME}/1",
            recent,
            as_of="1998-06-30",
            tracking_uri=store["uri"],
            log=False,
        )
