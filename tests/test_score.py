"""Batch scoring (`segml score` and its Python twin): same numbers as the scorer,
every model URI, both formats, chunking, migration files, errors, and atomic output
under SIGKILL.

Models are real: a scorer fitted on the CDNOW sample and exported to a folder, and
the same config trained and registered in an embedded SQLite store in a temp folder.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from segml.cli import app
from segml.datasets import simulate_transactions
from segml.scoring import CustomerScorer, customer_features
from segml.scoring._segment_map import DEFAULT_ACTIONS
from segml.tracking import train
from segml.tracking._score import (
    SCORE_COLUMNS,
    ScoreError,
    atomic_output,
    score_transactions,
)
from segml.transactions import load_transactions

AS_OF = "1998-06-30"
MODEL_NAME = "segml-score-test"
runner = CliRunner()
FLOATS = ["clv", "p_alive", "expected_purchases", "churn_probability"]
LABELS = ["customer_id", "segment", "segment_name", "tier", "risk_band", "action"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A working folder holding the embedded store and the runs' artifacts."""
    folder = tmp_path_factory.mktemp("score")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield folder, f"sqlite:///{folder}/mlflow.db"


@pytest.fixture(scope="module")
def raw_csv(store, cdnow_sample) -> Path:
    """The CDNOW sample as the CSV file a batch job reads."""
    path = store[0] / "transactions.csv"
    cdnow_sample.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def clean(cdnow_sample) -> pd.DataFrame:
    return load_transactions(cdnow_sample)[0]


@pytest.fixture(scope="module")
def registered(store):
    """The sample config trained once: registered as version 1 (alias candidate) and
    exported to a folder, as a nightly job would find it."""
    folder, uri = store
    config = {
        "data": {"source": "cdnow-sample", "name": "CDNOW sample"},
        "clv": {"time_unit": "W"},
        "segments": {"n_segments": 4, "random_state": 0},
        "churn": {"random_state": 0},
        "run": {
            "as_of": AS_OF,
            "experiment_name": "segml-score-test",
            "registered_model_name": MODEL_NAME,
        },
    }
    return train(config, tracking_uri=uri, export=folder / "models" / "nightly")


@pytest.fixture(scope="module")
def fitted(registered) -> CustomerScorer:
    return registered.scorer


@pytest.fixture(scope="module")
def model_dir(registered) -> Path:
    return registered.export_path


def test_a_saved_scorer_of_another_format_version_is_refused(fitted, tmp_path):
    """Loading checks the version it reads, so a future scorer.json is not misread."""
    import json

    from segml.persistence import PersistenceError

    folder = fitted.save(tmp_path / "scorer")
    document = json.loads((folder / "scorer.json").read_text())
    document["format_version"] = 2
    (folder / "scorer.json").write_text(json.dumps(document))
    with pytest.raises(
        PersistenceError,
        match=r"scorer\.json is a segml\.CustomerScorer of format_version 2; this segml "
        r"reads version 1\. Re-fit or re-save it",
    ):
        CustomerScorer.load(folder)


def expected_scores(scorer: CustomerScorer, clean: pd.DataFrame) -> pd.DataFrame:
    return scorer.score(clean, as_of=AS_OF).rename_axis("customer_id").reset_index()


def assert_same_scores(got: pd.DataFrame, expected: pd.DataFrame, *, rtol: float = 0) -> None:
    assert len(got) == len(expected)
    for column in LABELS:
        assert got[column].tolist() == expected[column].tolist(), column
    for column in FLOATS:
        np.testing.assert_allclose(got[column], expected[column], rtol=rtol, atol=0)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(
        path, dtype={"customer_id": str, "model_version": str, "run_id": str}, keep_default_na=False
    )


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------- same numbers
def test_scores_equal_the_scorer_through_the_exported_pyfunc(
    tmp_path, raw_csv, model_dir, fitted, clean
):
    out = tmp_path / "scores.parquet"
    result = score_transactions(model_dir, raw_csv, as_of=AS_OF, out=out)
    scores = pd.read_parquet(out)
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert_same_scores(scores, expected_scores(fitted, clean))
    assert scores["customer_id"].is_monotonic_increasing
    # A folder has a name but no registry version; an export made outside a run has no run.
    assert set(scores["model_name"]) == {"nightly"}
    assert set(scores["model_version"]) == {""} and set(scores["run_id"]) == {""}
    assert set(scores["as_of"]) == {AS_OF}
    assert result.out == out and result.scores is None
    assert result.n_customers == len(scores) == clean["customer_id"].nunique()
    assert temp_files(tmp_path) == []


def test_python_twin_takes_a_dataframe_and_returns_the_scores(
    model_dir, cdnow_sample, fitted, clean
):
    result = score_transactions(model_dir, cdnow_sample, as_of=pd.Timestamp(AS_OF))
    assert list(result.scores.columns) == list(SCORE_COLUMNS)
    assert_same_scores(result.scores, expected_scores(fitted, clean))
    assert result.out is None and result.n_transactions == len(clean)


def test_label_columns_follow_the_models_and_the_segment_map(fitted, clean):
    # Each label recomputed customer by customer from the fitted parts: the scorer
    # builds these columns from integer codes.
    features = customer_features(clean, as_of=AS_OF, windows_days=fitted.windows_days)
    scores = fitted.predict(features)
    names = fitted.segments_.segment_names_
    tier_actions = fitted.segment_map_.lookup("tier", "action")
    at_risk = DEFAULT_ACTIONS["levels"]["at_risk"]  # the run configures no actions
    tiers = fitted.scorecard_.predict(features)
    bands = fitted.churn_.risk_band(scores["churn_probability"])
    # Both branches of the action: the at-risk one, and two tiers' own actions.
    assert "high" in set(bands) and len(set(tiers[bands != "high"])) >= 2
    assert scores["segment_name"].tolist() == [names[s] for s in scores["segment"]]
    assert scores["tier"].tolist() == [str(t) for t in tiers]
    assert scores["risk_band"].tolist() == bands.tolist()
    assert scores["action"].tolist() == [
        at_risk if band == "high" else tier_actions[tier]
        for band, tier in zip(bands, tiers, strict=True)
    ]
    for column in ("segment_name", "tier", "risk_band", "action"):
        assert scores[column].dtype == "str", column


def test_chunked_equals_unchunked_row_by_row(model_dir, cdnow_sample):
    whole = score_transactions(model_dir, cdnow_sample, as_of=AS_OF).scores
    seen = []
    chunked = score_transactions(
        model_dir,
        cdnow_sample,
        as_of=AS_OF,
        chunk_customers=301,
        on_progress=lambda done, total: seen.append((done, total)),
    ).scores
    pd.testing.assert_frame_equal(chunked, whole)
    total = len(whole)
    assert seen == [(0, total)] + [(min(k + 301, total), total) for k in range(0, total, 301)]


def test_transactions_after_as_of_are_ignored(model_dir, cdnow_sample):
    as_of = "1997-12-31"
    scores = score_transactions(model_dir, cdnow_sample, as_of=as_of).scores
    upto = cdnow_sample[cdnow_sample["timestamp"] <= as_of]
    again = score_transactions(model_dir, upto, as_of=as_of).scores
    pd.testing.assert_frame_equal(scores, again)
    assert set(scores["as_of"]) == {as_of}


# ------------------------------------------------------------------- registry and CLI
@pytest.mark.parametrize("reference", ["@candidate", "/1"])
def test_registered_model_by_alias_and_version(
    tmp_path, store, raw_csv, registered, clean, reference
):
    _, uri = store
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            f"models:/{MODEL_NAME}{reference}",
            "--transactions",
            str(raw_csv),
            "--as-of",
            AS_OF,
            "--out",
            str(out),
            "--tracking-uri",
            uri,
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    scores = read_csv(out)
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert_same_scores(scores, expected_scores(registered.scorer, clean), rtol=1e-15)
    assert set(scores["model_name"]) == {MODEL_NAME}
    assert set(scores["model_version"]) == {"1"}
    assert set(scores["run_id"]) == {registered.run_id}


def test_tracking_uri_comes_from_the_environment(tmp_path, store, raw_csv, registered, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store[1])
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            f"models:/{MODEL_NAME}@candidate",
            "--transactions",
            str(raw_csv),
            "--as-of",
            AS_OF,
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert set(pd.read_parquet(out)["model_version"]) == {"1"}


def test_csv_and_parquet_hold_the_same_table(tmp_path, raw_csv, model_dir):
    for name in ("scores.csv", "scores.parquet"):
        result = runner.invoke(
            app,
            [
                "score",
                "--model",
                str(model_dir),
                "--transactions",
                str(raw_csv),
                "--as-of",
                AS_OF,
                "--out",
                str(tmp_path / name),
                "--chunk-customers",
                "1000",
            ],
        )
        assert result.exit_code == 0, result.output
    csv = read_csv(tmp_path / "scores.csv")
    parquet = pd.read_parquet(tmp_path / "scores.parquet")
    assert list(csv.columns) == list(parquet.columns) == list(SCORE_COLUMNS)
    assert_same_scores(csv, parquet, rtol=1e-15)
    for column in ("model_name", "model_version", "run_id", "as_of"):
        assert csv[column].tolist() == parquet[column].tolist()
    assert parquet["segment"].dtype == "int64"
    assert temp_files(tmp_path) == []


def test_column_mapping_options(tmp_path, cdnow_sample, model_dir, fitted, clean):
    source = tmp_path / "renamed.parquet"
    cdnow_sample.rename(
        columns={"customer_id": "client", "timestamp": "date", "amount": "value"}
    ).to_parquet(source)
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(model_dir),
            "--transactions",
            str(source),
            "--as-of",
            AS_OF,
            "--out",
            str(out),
            "--customer-id",
            "client",
            "--timestamp",
            "date",
            "--amount",
            "value",
        ],
    )
    assert result.exit_code == 0, result.output
    assert_same_scores(pd.read_parquet(out), expected_scores(fitted, clean))


def test_config_cleans_the_log_as_training_did(tmp_path, raw_csv, model_dir, fitted, cdnow_sample):
    config = tmp_path / "run.yaml"
    config.write_text("data:\n  source: cdnow\ntransactions:\n  drop_duplicates: false\n")
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(model_dir),
            "--transactions",
            str(raw_csv),
            "--as-of",
            AS_OF,
            "--out",
            str(out),
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 0, result.output
    kept = load_transactions(cdnow_sample, drop_duplicates=False)[0]
    assert_same_scores(pd.read_parquet(out), expected_scores(fitted, kept))
    config.write_text("data:\n  source: cdnow\ntransactions:\n  customer_id: client\n")
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(model_dir),
            "--transactions",
            str(raw_csv),
            "--as-of",
            AS_OF,
            "--out",
            str(out),
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 1 and "['client'] not found" in " ".join(result.output.split())


# ------------------------------------------------------------------------ migration
def test_previous_scoring_writes_tier_and_segment_migration(
    tmp_path, raw_csv, model_dir, fitted, clean
):
    current = expected_scores(fitted, clean).set_index("customer_id")
    first, second = current.index[0], current.index[1]
    previous = pd.DataFrame(
        {
            "customer_id": [first, second, "ghost"],
            "tier": ["VIP", "prospect", "regular"],
            "segment": [0, 3, 1],
        }
    )
    old = tmp_path / "last_night.csv"
    previous.to_csv(old, index=False)
    out = tmp_path / "tonight.parquet"
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(model_dir),
            "--transactions",
            str(raw_csv),
            "--as-of",
            AS_OF,
            "--out",
            str(out),
            "--previous",
            str(old),
            "--chunk-customers",
            "700",
        ],
    )
    assert result.exit_code == 0, result.output
    tier = pd.read_csv(tmp_path / "tonight.migration_tier.csv", index_col=0)
    assert list(tier.columns) == ["VIP", "regular", "prospect", "(lost)"]
    assert list(tier.index) == ["VIP", "regular", "prospect", "(new)"]
    assert tier.loc["VIP", current.loc[first, "tier"]] == 1
    assert tier.loc["prospect", current.loc[second, "tier"]] == 1
    assert tier.loc["regular", "(lost)"] == 1
    assert tier.loc["(new)"].sum() == len(current) - 2
    assert tier.to_numpy().sum() == len(current) + 1
    segment = pd.read_csv(tmp_path / "tonight.migration_segment.csv", index_col=0)
    assert list(segment.columns) == ["0", "1", "2", "3", "(lost)"]
    assert segment.loc["0", str(current.loc[first, "segment"])] == 1
    assert segment.loc["1", "(lost)"] == 1
    assert segment.loc["(new)"].sum() == len(current) - 2
    # The same from the Python twin, from a Parquet previous scoring, without an output.
    previous.to_parquet(tmp_path / "last_night.parquet")
    twin = score_transactions(
        model_dir, clean, as_of=AS_OF, previous=tmp_path / "last_night.parquet"
    )
    pd.testing.assert_frame_equal(
        twin.migration["tier"],
        tier.rename_axis(index="previous", columns="current"),
        check_index_type=False,
        check_column_type=False,
        check_dtype=False,
    )


def test_the_output_can_be_its_own_previous_scoring(tmp_path, model_dir, cdnow_sample):
    """The nightly recipe: --previous and --out name the same rolling file."""
    out = tmp_path / "latest.parquet"
    score_transactions(model_dir, cdnow_sample, as_of="1998-03-31", out=out)
    last_night = pd.read_parquet(out)
    result = score_transactions(model_dir, cdnow_sample, as_of=AS_OF, out=out, previous=out)
    tonight = pd.read_parquet(out)
    assert set(tonight["as_of"]) == {AS_OF}
    tier = pd.read_csv(result.migration_paths["tier"], index_col=0)
    assert tier.drop(index="(new)").sum(axis=1).sum() == len(last_night)
    assert tier.loc["(new)"].sum() == len(tonight) - len(last_night)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest.migration_segment.csv",
        "latest.migration_tier.csv",
        "latest.parquet",
    ]


# ---------------------------------------------------------------------------- errors
def score_cli(*args: str, out: Path, model: str, transactions: str, as_of: str = AS_OF):
    return runner.invoke(
        app,
        [
            "score",
            "--model",
            model,
            "--transactions",
            transactions,
            "--as-of",
            as_of,
            "--out",
            str(out),
            *args,
        ],
    )


@pytest.fixture
def old_output(tmp_path) -> Path:
    """Last night's output, which a failed run must leave as it was."""
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"last night")
    return out


def assert_failed(result, old_output: Path, *needles: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    message = " ".join(result.output.split())
    for needle in needles:
        assert needle in message, message
    assert old_output.read_bytes() == b"last night"
    assert temp_files(old_output.parent) == []


def test_unknown_registered_model_lists_the_registered_ones(old_output, store, raw_csv, registered):
    result = score_cli(
        "--tracking-uri",
        store[1],
        out=old_output,
        model="models:/nope@champion",
        transactions=str(raw_csv),
    )
    assert_failed(
        result, old_output, "No registered model named 'nope'", f"registered models: {MODEL_NAME}"
    )


def test_unknown_alias_or_version_lists_those_that_exist(old_output, store, raw_csv, registered):
    for reference, needle in (("@champion", "no alias 'champion'"), ("/7", "no version '7'")):
        result = score_cli(
            "--tracking-uri",
            store[1],
            out=old_output,
            model=f"models:/{MODEL_NAME}{reference}",
            transactions=str(raw_csv),
        )
        assert_failed(result, old_output, needle, "aliases: @candidate -> version 1", "versions: 1")


def test_a_folder_without_a_model_is_named(old_output, tmp_path, raw_csv):
    result = score_cli(out=old_output, model=str(tmp_path / "nowhere"), transactions=str(raw_csv))
    assert_failed(
        result, old_output, f"No MLflow model at {tmp_path / 'nowhere'}", "segml train --export"
    )


def test_transactions_lacking_a_column_the_model_needs(
    old_output, tmp_path, cdnow_sample, model_dir
):
    source = tmp_path / "no_quantity.csv"
    cdnow_sample.drop(columns="quantity").to_csv(source, index=False)
    result = score_cli(out=old_output, model=str(model_dir), transactions=str(source))
    assert_failed(
        result, old_output, "needs 3 feature(s)", "quantity_total", "the transactions need one too"
    )


def test_as_of_before_the_data(old_output, raw_csv, model_dir):
    result = score_cli(
        out=old_output, model=str(model_dir), transactions=str(raw_csv), as_of="1990-01-01"
    )
    assert_failed(
        result,
        old_output,
        "as_of 1990-01-01 is before the first transaction (1997-01-01): no customer is known then",
        "on or after 1997-01-01",
    )


def test_nothing_left_to_score(old_output, tmp_path, model_dir):
    source = tmp_path / "zeros.csv"
    pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "timestamp": ["1997-01-01", "1997-02-01"],
            "amount": [0, 0],
            "quantity": [1, 1],
        }
    ).to_csv(source, index=False)
    result = score_cli(out=old_output, model=str(model_dir), transactions=str(source))
    assert_failed(result, old_output, "No transactions left after cleaning", "zero_amount: 2")


def test_unreadable_transactions_give_the_loader_error(old_output, tmp_path, raw_csv, model_dir):
    result = score_cli(
        out=old_output, model=str(model_dir), transactions=str(tmp_path / "missing.csv")
    )
    assert_failed(result, old_output, "No file at", "missing.csv")
    result = score_cli(
        "--customer-id", "client", out=old_output, model=str(model_dir), transactions=str(raw_csv)
    )
    assert_failed(result, old_output, "Required column(s) ['client'] not found")


def test_bad_previous_scoring(old_output, tmp_path, raw_csv, model_dir):
    previous = tmp_path / "old.csv"
    pd.DataFrame({"customer_id": ["a"], "tier": ["VIP"]}).to_csv(previous, index=False)
    result = score_cli(
        "--previous", str(previous), out=old_output, model=str(model_dir), transactions=str(raw_csv)
    )
    assert_failed(result, old_output, "lacks the column(s) ['segment']")


def test_usage_errors_exit_2(old_output, raw_csv, model_dir):
    result = score_cli(
        out=old_output.with_suffix(".xlsx"), model=str(model_dir), transactions=str(raw_csv)
    )
    assert_failed(result, old_output, "must end in .parquet or .csv", code=2)
    result = score_cli(
        "--chunk-customers", "0", out=old_output, model=str(model_dir), transactions=str(raw_csv)
    )
    assert_failed(result, old_output, code=2)
    result = score_cli(
        "--engine", "dask", out=old_output, model=str(model_dir), transactions=str(raw_csv)
    )
    assert_failed(result, old_output, code=2)
    with pytest.raises(ScoreError, match=r"must end in \.parquet or \.csv"):
        score_transactions(model_dir, raw_csv, as_of=AS_OF, out=old_output.with_suffix(".json"))


@pytest.mark.skipif(
    find_spec("pyspark") is not None and find_spec("segml.spark") is not None,
    reason="the Spark extra is installed",
)
def test_spark_engine_without_the_extra_says_how_to_install(old_output, raw_csv, model_dir):
    result = score_cli(
        "--engine", "spark", out=old_output, model=str(model_dir), transactions=str(raw_csv)
    )
    assert_failed(result, old_output, 'pip install -e ".[spark]"')


# -------------------------------------------------------------------- atomic output
def test_atomic_output_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert temp_files(tmp_path) == []


def test_a_killed_run_leaves_the_previous_output_then_a_full_run_replaces_it(tmp_path, model_dir):
    log = simulate_transactions(4000, seed=3).assign(quantity=1)
    source = tmp_path / "log.parquet"
    log.to_parquet(source)
    out = tmp_path / "scores.parquet"
    score_transactions(model_dir, source, as_of="2021-06-30", out=out)
    before = out.read_bytes()

    command = [
        sys.executable,
        "-c",
        "from segml.cli import app; app()",
        "score",
        "--model",
        str(model_dir),
        "--transactions",
        str(source),
        "--as-of",
        "2021-12-31",
        "--out",
        str(out),
        "--chunk-customers",
        "100",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    written = []
    try:
        while process.poll() is None and time.monotonic() < deadline:
            written = [
                p for p in tmp_path.glob(".scores.parquet.*.tmp") if p.stat().st_size > 4
            ]  # more than the Parquet magic: rows are in
            if written:
                break
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert written, "the scoring run ended before it started writing"
    assert process.returncode == -signal.SIGKILL
    assert out.read_bytes() == before  # the previous output, byte for byte
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == ["log.parquet", "scores.parquet"]
    assert len(temp_files(tmp_path)) == 1  # the killed run's hidden temp file, not the output

    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(model_dir),
            "--transactions",
            str(source),
            "--as-of",
            "2021-12-31",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(out)
    assert len(scores) == log["customer_id"].nunique()
    assert set(scores["as_of"]) == {"2021-12-31"}
    assert temp_files(tmp_path) == []  # the next run removed the dead run's temp file
    assert list(scores.columns) == list(SCORE_COLUMNS)
