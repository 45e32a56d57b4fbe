"""Batch scoring (`segml score` and its Python twin): same numbers as the scorer,
every model URI, both formats, chunking, migration files, errors, cleaning as
trained, and atomic output under SIGKILL and failures.

Models are real: the CDNOW sample config trained once, registered in an embedded
SQLite store in a temp folder and exported to a folder. Like the CDNOW run config,
it keeps duplicate rows (the sample has 21), so scoring with the loader's defaults
would clean differently from training.
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

from segml.batch import (
    SCORE_COLUMNS,
    ScoreError,
    atomic_output,
    score_transactions,
)
from segml.cli import app
from segml.datasets import simulate_transactions
from segml.scoring import OUTPUT_COLUMNS, CustomerScorer, customer_features
from segml.tracking import train
from segml.transactions import load_transactions

AS_OF = "1998-06-30"
MODEL_NAME = "segml-score-test"
runner = CliRunner()
FLOATS = [
    "clv",
    "p_alive",
    "expected_purchases",
    "churn_probability",
    # The predictive columns (issue 13); NaN where a quantile does not exist.
    "p_buy_30d",
    "p_buy_90d",
    "p_buy_again",
    "next_purchase_days",
    "next_purchase_low_days",
    "next_purchase_high_days",
    "clv_low",
    "clv_high",
]
# ISO dates counted from the scoring day; missing where the customer has none.
DATES = ["next_purchase_date", "next_purchase_low", "next_purchase_high"]
LABELS = [
    "customer_id",
    "segment",
    "segment_name",
    "tier",
    "risk_band",
    "action",
    "action_reason",
]


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
    """The sample cleaned as training cleaned it (duplicates kept)."""
    return load_transactions(cdnow_sample, drop_duplicates=False)[0]


TRAINING_CONFIG = {
    "data": {"source": "cdnow-sample", "name": "CDNOW sample"},
    "transactions": {"drop_duplicates": False},
    "clv": {"time_unit": "W"},
    "segments": {"n_segments": 4, "random_state": 0},
    "churn": {"random_state": 0},
    # On the sample the churn classifier trails the best baseline (the default gate
    # wants a lead of 0.005); these tests are about scoring, so the gate is lowered.
    "gates": {"churn_min_lead": -0.02},
    "run": {
        "as_of": AS_OF,
        "experiment_name": "segml-score-test",
        "registered_model_name": MODEL_NAME,
    },
}


@pytest.fixture(scope="module")
def registered(store):
    """The sample config trained once: registered as version 1 (alias candidate) and
    exported to a folder, as a nightly job would find it."""
    folder, uri = store
    return train(TRAINING_CONFIG, tracking_uri=uri, export=folder / "models" / "nightly")


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
    document["format_version"] = 4
    (folder / "scorer.json").write_text(json.dumps(document))
    with pytest.raises(
        PersistenceError,
        match=r"scorer\.json is a segml\.CustomerScorer of format_version 4; this segml "
        r"reads version 3\. Re-fit or re-save it",
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
    for column in DATES:
        # A missing date: null in Parquet and in the scorer, an empty field in CSV.
        assert got[column].fillna("").tolist() == expected[column].fillna("").tolist(), column
    assert expected[DATES[0]].notna().any() and expected[DATES[0]].isna().any()


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(
        path,
        dtype={"customer_id": str, "model_version": str, "run_id": str},
        keep_default_na=False,
        na_values={column: [""] for column in FLOATS},  # NaN is an empty field
    )


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------- same numbers
def test_scores_equal_the_scorer_through_the_exported_pyfunc(
    tmp_path, raw_csv, model_dir, fitted, clean, registered
):
    out = tmp_path / "scores.parquet"
    result = score_transactions(model_dir, raw_csv, as_of=AS_OF, out=out)
    scores = pd.read_parquet(out)
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert_same_scores(scores, expected_scores(fitted, clean))
    assert scores["customer_id"].is_monotonic_increasing
    # The exported folder keeps its origin: the registered name, version and run.
    assert set(scores["model_name"]) == {MODEL_NAME}
    assert set(scores["model_version"]) == {"1"}
    assert set(scores["run_id"]) == {registered.run_id}
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
    from segml.scoring._segment_map import risk_actions

    features = customer_features(clean, as_of=AS_OF, windows_days=fitted.windows_days)
    scores = fitted.predict(features)
    names = fitted.segments_.segment_names_
    # The run configures no actions: one action per (tier, churn risk band) of the
    # default table.
    table = risk_actions(None, fitted.scorecard_.tier_labels_)
    tiers = fitted.scorecard_.predict(features)
    bands = fitted.churn_.risk_band(scores["churn_probability"])
    # Several tiers and bands, so the action table is read in more than one cell.
    assert "high" in set(bands) and len(set(tiers[bands != "high"])) >= 2
    assert scores["segment_name"].tolist() == [names[s] for s in scores["segment"]]
    assert scores["tier"].tolist() == [str(t) for t in tiers]
    assert scores["risk_band"].tolist() == bands.tolist()
    pairs = list(zip(bands, tiers, strict=True))
    assert scores["action"].tolist() == [table[str(tier)][band] for band, tier in pairs]
    assert scores["action_reason"].tolist() == [f"tier {tier}, risk {band}" for band, tier in pairs]
    for column in ("segment_name", "tier", "risk_band", "action", "action_reason"):
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
    assert "warning" not in result.output  # the config agrees with the model
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


# ------------------------------------------------------------- cleaning as trained
def training_metric(store, registered, name: str) -> float:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store[1]).get_run(registered.run_id).data.metrics[name]


def test_the_model_remembers_how_its_training_log_was_cleaned(registered, model_dir):
    from segml.tracking._load import load_scoring_model

    assert registered.scorer.cleaning["drop_duplicates"] is False
    # Saved with the model: the exported folder's scorer carries the same settings.
    loaded = load_scoring_model(model_dir).scorer
    assert loaded.cleaning == registered.scorer.cleaning


def test_scoring_without_a_config_keeps_what_training_kept(
    tmp_path, store, raw_csv, registered, model_dir, fitted, clean
):
    """Issue 11.6: today the loader's defaults drop the 21 duplicates training kept."""
    rows_kept = training_metric(store, registered, "data.rows_kept")
    assert rows_kept == 6_911
    result = score_transactions(model_dir, raw_csv, as_of=AS_OF)
    assert result.n_transactions == rows_kept  # AS_OF is the end of the log
    assert "duplicate_row" not in result.report.dropped
    assert result.n_customers == clean["customer_id"].nunique()
    assert_same_scores(result.scores, expected_scores(fitted, clean))
    assert result.cleaning_conflicts == []

    out = tmp_path / "scores.parquet"
    cli = score_cli(out=out, model=str(model_dir), transactions=str(raw_csv))
    assert cli.exit_code == 0, cli.output
    assert "6,911 transactions" in cli.output and "warning" not in cli.output
    assert_same_scores(pd.read_parquet(out), expected_scores(fitted, clean))


def test_an_option_contradicting_the_model_wins_with_a_warning_naming_both(
    tmp_path, raw_csv, model_dir, fitted, cdnow_sample
):
    from segml.batch import CleaningWarning

    dropped = load_transactions(cdnow_sample)[0]  # duplicates dropped
    out = tmp_path / "scores.parquet"
    result = score_cli(
        "--drop-duplicates", out=out, model=str(model_dir), transactions=str(raw_csv)
    )
    assert result.exit_code == 0, result.output
    message = " ".join(result.output.split())
    assert (
        "warning: --drop-duplicates contradicts the model, which was trained with "
        "--keep-duplicates; --drop-duplicates is used" in message
    )
    assert "6,890 transactions" in message
    assert_same_scores(pd.read_parquet(out), expected_scores(fitted, dropped))

    with pytest.warns(
        CleaningWarning,
        match=r"drop_duplicates=True contradicts .* trained with "
        r"drop_duplicates=False",
    ) as caught:
        twin = score_transactions(
            model_dir, raw_csv, as_of=AS_OF, columns={"drop_duplicates": True}
        )
    assert caught[0].message.model_value is False and caught[0].message.given_value is True
    assert twin.n_transactions == len(dropped)


def test_a_scorer_saved_before_cleaning_was_recorded_still_loads(fitted, tmp_path, clean):
    """A version-1 scorer.json (no settings.cleaning) loads, with cleaning None."""
    import json

    folder = fitted.save(tmp_path / "scorer")
    document = json.loads((folder / "scorer.json").read_text())
    assert document["format_version"] == 3
    assert document["settings"]["cleaning"] == fitted.cleaning
    document["format_version"] = 1
    del document["settings"]["cleaning"]
    # Version 1 also predates the predictive columns (version 3).
    for key in ("predictive", "notices"):
        del document[key]
    for key in ("p_buy_windows_days", "interval_level", "n_draws", "random_state"):
        del document["settings"][key]
    (folder / "scorer.json").write_text(json.dumps(document))
    old = CustomerScorer.load(folder)
    assert old.cleaning is None
    features = customer_features(clean, as_of=AS_OF, windows_days=fitted.windows_days)
    base = list(OUTPUT_COLUMNS[:10])
    assert old.output_columns_ == base
    pd.testing.assert_frame_equal(old.predict(features), fitted.predict(features)[base])


def test_a_bundled_dataset_name_is_a_transaction_log(tmp_path, model_dir, fitted, clean):
    out = tmp_path / "scores.parquet"
    result = score_cli(out=out, model=str(model_dir), transactions="cdnow-sample")
    assert result.exit_code == 0, result.output
    assert_same_scores(pd.read_parquet(out), expected_scores(fitted, clean))


def test_validate_with_the_training_config_reports_what_training_kept(tmp_path, store, registered):
    """Issue 11.7: the same options and config give the same cleaning in every command."""
    import yaml

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(TRAINING_CONFIG))
    result = runner.invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    rows_kept = int(training_metric(store, registered, "data.rows_kept"))
    assert f"rows kept: {rows_kept:,}" in result.stdout
    # An option on the command line beats the config's value.
    result = runner.invoke(app, ["validate", "--config", str(config), "--drop-duplicates"])
    assert result.exit_code == 0, result.output
    assert "rows kept: 6,890" in result.stdout and "duplicate_row: 21" in result.stdout


# ------------------------------------------------------------ all outputs or none
def scored_with_migration(tmp_path, model_dir, raw_csv, previous: Path) -> Path:
    """A first nightly run with --previous: the outputs a failed run must leave alone."""
    out = tmp_path / "tonight.csv"
    result = score_cli(
        "--previous", str(previous), out=out, model=str(model_dir), transactions=str(raw_csv)
    )
    assert result.exit_code == 0, result.output
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_migration_that_fails_leaves_the_previous_scoring_in_place(tmp_path, raw_csv, model_dir):
    """Issue 11.9: today --out is replaced, then the migration fails with exit 1."""
    previous = tmp_path / "last_night.csv"
    pd.DataFrame({"customer_id": ["0001"], "tier": ["VIP"], "segment": [0]}).to_csv(
        previous, index=False
    )
    scored_with_migration(tmp_path, model_dir, raw_csv, previous)
    before = snapshot(tmp_path)
    assert set(before) == {
        "last_night.csv",
        "tonight.csv",
        "tonight.migration_tier.csv",
        "tonight.migration_segment.csv",
    }
    # A previous scoring listing a customer twice: the migration matrix refuses it
    # after every customer was scored.
    repeated = tmp_path / "repeated.csv"
    pd.DataFrame(
        {"customer_id": ["0001", "0001"], "tier": ["VIP", "VIP"], "segment": [0, 0]}
    ).to_csv(repeated, index=False)
    before["repeated.csv"] = repeated.read_bytes()
    result = score_cli(
        "--previous",
        str(repeated),
        out=tmp_path / "tonight.csv",
        model=str(model_dir),
        transactions=str(raw_csv),
        as_of="1998-03-31",
    )
    assert result.exit_code == 1
    assert "repeated customer_id" in " ".join(result.output.split())
    assert snapshot(tmp_path) == before  # every output as the first run left it
    assert temp_files(tmp_path) == []


def test_an_output_that_cannot_be_replaced_leaves_every_output_as_it_was(
    tmp_path, raw_csv, model_dir
):
    previous = tmp_path / "last_night.csv"
    pd.DataFrame({"customer_id": ["0001"], "tier": ["VIP"], "segment": [0]}).to_csv(
        previous, index=False
    )
    scored_with_migration(tmp_path, model_dir, raw_csv, previous)
    # The segment migration's name is taken by a folder: nothing can be committed.
    (tmp_path / "tonight.migration_segment.csv").unlink()
    (tmp_path / "tonight.migration_segment.csv").mkdir()
    before = snapshot(tmp_path)
    result = score_cli(
        "--previous",
        str(previous),
        out=tmp_path / "tonight.csv",
        model=str(model_dir),
        transactions=str(raw_csv),
        as_of="1998-03-31",
    )
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "error: Cannot write" in message and "tonight.migration_segment.csv" in message
    assert "is a folder" in message and "Nothing was replaced" in message
    assert "Traceback" not in result.output
    assert snapshot(tmp_path) == before  # the tier migration and the scores too
    assert temp_files(tmp_path) == []


FULL_DISK = """
import resource, signal, sys
# Writes past the limit fail with EFBIG as a full disk fails with ENOSPC (SIGXFSZ
# ignored, so the write raises instead of killing the process).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
sys.argv = ["segml", *sys.argv[2:]]
from segml.cli import app
app()
"""


def test_a_full_disk_is_one_error_line_and_replaces_nothing(tmp_path, raw_csv, model_dir):
    import os

    out = tmp_path / "scores.csv"
    out.write_text("last night\n")
    limit = 50_000  # bytes: a fraction of the 2,349-customer table
    command = [sys.executable, "-c", FULL_DISK, str(limit), "score", "--model", str(model_dir)]
    command += ["--transactions", str(raw_csv), "--as-of", AS_OF, "--out", str(out)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("error: Cannot write") and "File too large" in errors[0]
    assert "Nothing was replaced" in errors[0]
    assert out.read_text() == "last night\n"
    assert temp_files(tmp_path) == []


def test_cleaning_that_is_not_json_is_refused_by_name(fitted, tmp_path):
    from segml.scoring import ScorerError

    original = fitted.cleaning
    try:
        fitted.cleaning = {"drop_duplicates": False, "as_of": pd.Timestamp("1998-06-30")}
        with pytest.raises(ScorerError, match=r"cleaning\['as_of'\] = Timestamp\('1998-06-30"):
            fitted.save(tmp_path / "scorer")
    finally:
        fitted.cleaning = original
    assert not (tmp_path / "scorer").exists()  # refused before anything was written
