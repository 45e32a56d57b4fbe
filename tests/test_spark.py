"""The Spark path: features and scores equal to the pandas path, on one local session.

One Spark session (``local[2]``, bound to 127.0.0.1, UI off) serves the whole file.
CDNOW master (23,502 customers after cleaning) is the equality test bed for features and scores;
a small hand-made log pins the edge cases of the definitions (several orders a day,
zero spend, times of day, purchases after ``as_of``, first purchase in ``as_of``'s
month). Nothing is mocked: the model is a real scorer exported as an MLflow folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason='the Spark path needs the extra: pip install -e ".[spark]"')


import segml  # noqa: E402
import segml.spark as ss  # noqa: E402
from segml.batch import SCORE_COLUMNS, score_transactions  # noqa: E402
from segml.models import CLVModel, SegmentModel  # noqa: E402
from segml.scoring import OUTPUT_COLUMNS, CustomerScorer, customer_features  # noqa: E402
from segml.tracking import cast_to_signature, export_model  # noqa: E402

MODEL_AS_OF = "1998-06-30"  # the model's training date and the scoring date
FEATURES_AS_OF = "1998-03-31"  # mid-log: later rows exist and must be ignored

# Integer-valued features: exactly equal. Sums, means and stds: to rounding.
EXACT = [
    "frequency",
    "recency",
    "T",
    "days_since_last_purchase",
    "n_orders",
    "tenure_days",
    "gap_mean_days",
    "gap_max_days",
    "gap_last_days",
    "days_over_mean_gap",
    "repurchase_rate",
]


def _quiet(function, *args, **kwargs):
    """Call a PySpark <-> pandas conversion without its pandas-3 notices.

    PySpark 4.3 warns that pandas >= 3 is not fully supported (FutureWarning) and
    passes pandas 3's deprecated ``copy=`` keyword (Pandas4Warning); these tests
    check the converted values, so both are silenced here and only here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        warnings.filterwarnings(
            "ignore", message="The copy keyword is deprecated", category=DeprecationWarning
        )
        return function(*args, **kwargs)


def to_pandas(frame) -> pd.DataFrame:
    """A Spark result as pandas, indexed by customer_id (sorted)."""
    return _quiet(frame.toPandas).set_index("customer_id").sort_index()


def write_parquet(log: pd.DataFrame, path: Path) -> Path:
    """Parquet that Spark reads: timestamps in microseconds (pandas writes nanoseconds).

    Logs reach Spark through files, as in production: PySpark 4.3's
    ``createDataFrame`` cannot convert pandas 3 datetimes with Arrow.
    """
    log.astype({"timestamp": "datetime64[us]"}).to_parquet(path, index=False)
    return path


@pytest.fixture(scope="session")
def master_log() -> pd.DataFrame:
    """CDNOW master, cleaned as a batch job would (segml.load_transactions)."""
    clean, _ = segml.load_transactions(segml.load_cdnow())
    return clean


@pytest.fixture(scope="session")
def master_spark(spark, master_log, tmp_path_factory):
    path = write_parquet(master_log, tmp_path_factory.mktemp("cdnow") / "master.parquet")
    return spark.read.parquet(str(path))


@pytest.fixture(scope="session")
def scorer() -> CustomerScorer:
    clean, _ = segml.load_transactions(segml.load_cdnow(sample=True))
    return CustomerScorer(clv=CLVModel(time_unit="W"), segments=SegmentModel(n_segments=4)).fit(
        clean, as_of=MODEL_AS_OF
    )


@pytest.fixture(scope="session")
def model_uri(scorer, tmp_path_factory) -> str:
    clean, _ = segml.load_transactions(segml.load_cdnow(sample=True))
    example = cast_to_signature(
        customer_features(clean, as_of=MODEL_AS_OF).head(5), scorer.feature_columns_
    )
    path = tmp_path_factory.mktemp("model") / "scoring_model"
    return str(export_model(scorer, path, input_example=example))


@pytest.fixture(scope="session")
def master_scores(master_spark, model_uri) -> pd.DataFrame:
    return to_pandas(ss.score(master_spark, model_uri, as_of=MODEL_AS_OF))


def assert_features_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same customers, columns and order; integers exact, sums to ~1e-12 relative."""
    assert list(got.columns) == list(expected.columns)
    assert got.index.equals(expected.index)
    assert (got.dtypes == "float64").all()
    assert not got.isna().any().any()
    for column in expected.columns:
        if column in EXACT:
            np.testing.assert_array_equal(got[column], expected[column], err_msg=column)
        else:
            # atol covers differences of two sums (trends), where the relative
            # error of the difference can exceed that of the sums.
            np.testing.assert_allclose(
                got[column], expected[column], rtol=1e-12, atol=1e-9, err_msg=column
            )


# ----------------------------------------------------------------------- features
def test_features_equal_pandas_on_cdnow_master(master_spark, master_log):
    spark_features = ss.customer_features(master_spark, as_of=FEATURES_AS_OF)
    expected = customer_features(master_log, as_of=FEATURES_AS_OF)

    assert spark_features.columns == ["customer_id", *expected.columns]
    assert {t for name, t in spark_features.dtypes if name != "customer_id"} == {"double"}
    got = to_pandas(spark_features)
    assert len(got) == len(expected) > 23_000
    assert "quantity_total" in got.columns  # CDNOW has quantities
    assert_features_equal(got, expected)


def test_features_with_two_windows_and_no_quantity(spark, simulated, tmp_path):
    path = write_parquet(simulated, tmp_path / "simulated.parquet")
    windows = (30, 90)
    got = to_pandas(
        ss.customer_features(
            spark.read.parquet(str(path)), as_of="2021-06-30", windows_days=windows
        )
    )
    expected = customer_features(simulated, as_of="2021-06-30", windows_days=windows)
    assert "spend_share_last_30d" in got.columns and "quantity_total" not in got.columns
    assert_features_equal(got, expected)


def test_features_edge_cases_equal_pandas(spark, tmp_path):
    """Window edges, same-day orders, zero spend, times of day, later rows, months."""
    as_of = pd.Timestamp("2024-06-30")
    log = pd.DataFrame(
        {
            "customer_id": ["a"] * 6 + ["b", "b"] + ["c"] * 3 + ["d", "e"],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-02 08:00",  # a: two orders on the day 180 days before as_of,
                    "2024-01-02 23:59",  # a: ... which is in no window
                    "2024-01-03 12:00",  # a: 179 days before as_of (previous window)
                    "2024-04-01 00:00",  # a: exactly 90 days before (previous window)
                    "2024-04-02 00:01",  # a: 89 days before (last window)
                    "2024-07-01 00:00",  # a: after as_of, ignored
                    "2024-06-30 23:59",  # b: first and only day is as_of,
                    "2024-06-30 00:00",  # b: ... spending nothing
                    "2023-12-31 00:00",  # c: months across a new year
                    "2024-01-01 00:00",
                    "2024-06-01 00:00",
                    "2024-06-15 00:00",  # d: first purchase in as_of's month -> repurchase 0
                    "2024-07-02 00:00",  # e: first purchase after as_of -> not a customer
                ]
            ),
            "amount": [10.0, 5.5, 0.0, 7.25, 1.0, 99.0, 0.0, 0.0, 3.0, 4.0, 5.0, 2.0, 1.0],
            "quantity": [1, 2, 0, 1, 1, 9, 0, 0, 1, 1, 2, 1, 1],
        }
    )
    frame = spark.read.parquet(str(write_parquet(log, tmp_path / "log.parquet")))
    got = to_pandas(ss.customer_features(frame, as_of=as_of))
    expected = customer_features(log, as_of=as_of)
    assert list(got.index) == ["a", "b", "c", "d"]
    assert got.loc["b", "spend_share_last_90d"] == 0.0  # zero total spend: share 0
    assert got.loc["a", "orders_prev_90d"] == 2.0 and got.loc["a", "orders_last_90d"] == 1.0
    assert_features_equal(got, expected)


# ------------------------------------------------------------------------- scoring
@pytest.fixture(scope="session")
def master_features(master_spark) -> pd.DataFrame:
    """Spark features of CDNOW master at the scoring date, collected."""
    return to_pandas(ss.customer_features(master_spark, as_of=MODEL_AS_OF))


def test_scores_equal_pyfunc_on_the_same_features(model_uri, master_features, master_scores):
    """Row by row, the Spark UDF gives exactly what the pyfunc model gives in pandas."""
    import mlflow

    model = mlflow.pyfunc.load_model(model_uri)
    columns = ss.model_feature_columns(model_uri)
    # The features' day as the pyfunc's as_of: the next-purchase dates count from it.
    expected = model.predict(
        cast_to_signature(master_features, columns), params={"as_of": MODEL_AS_OF}
    )
    expected = expected.set_index("customer_id").sort_index()

    assert list(master_scores.columns) == list(OUTPUT_COLUMNS)
    assert master_scores["next_purchase_date"].notna().any()  # as_of reached the model
    assert len(master_scores) == len(expected) > 23_000
    assert master_scores["segment"].dtype == "int64"
    pd.testing.assert_frame_equal(master_scores, expected, check_dtype=False, rtol=0, atol=0)


def test_scores_match_pandas_scorer(master_log, scorer, master_features, master_scores):
    """The Spark path against CustomerScorer.score on pandas, customer by customer.

    Spark's features are the pandas function's, run per bucket of customers on the
    rows in the file's order: bitwise the pandas features, so identical scores.
    """
    expected = scorer.score(master_log, as_of=MODEL_AS_OF)
    pandas_features = customer_features(master_log, as_of=MODEL_AS_OF)
    assert master_scores.index.equals(expected.index)
    pd.testing.assert_frame_equal(master_features, pandas_features, check_exact=True)
    pd.testing.assert_frame_equal(master_scores, expected, check_dtype=False, rtol=0, atol=0)


def test_column_order_of_the_input_does_not_change_scores(master_spark, model_uri, master_scores):
    """Shuffled transaction columns and shuffled feature columns give the same scores.

    Features travel to the model as a struct, matched by name; a positional call
    would hand the model the columns in the DataFrame's order.
    """
    shuffled = master_spark.select("quantity", "amount", "timestamp", "customer_id")
    pd.testing.assert_frame_equal(
        to_pandas(ss.score(shuffled, model_uri, as_of=MODEL_AS_OF)), master_scores
    )

    features = ss.customer_features(master_spark, as_of=MODEL_AS_OF)
    columns = features.columns
    order = np.random.default_rng(0).permutation(len(columns))
    permuted = features.select(*[columns[i] for i in order])
    assert permuted.columns != columns
    pd.testing.assert_frame_equal(
        to_pandas(ss.predict(permuted, model_uri, as_of=MODEL_AS_OF)), master_scores
    )


def test_prediction_is_spread_over_every_core(master_spark, model_uri):
    scores = ss.score(master_spark, model_uri, as_of=MODEL_AS_OF)
    assert scores.rdd.getNumPartitions() == 2  # local[2]: spark.default.parallelism
    scores = ss.score(master_spark, model_uri, as_of=MODEL_AS_OF, partitions=5)
    assert scores.rdd.getNumPartitions() == 5


# --------------------------------------------------------------------------- files
@pytest.fixture(scope="session")
def sample_csv(tmp_path_factory) -> Path:
    """The CDNOW sample as an analyst's CSV: own column names, zero-padded ids."""
    clean, _ = segml.load_transactions(segml.load_cdnow(sample=True))
    path = tmp_path_factory.mktemp("files") / "orders.csv"
    clean.rename(
        columns={"customer_id": "cust", "timestamp": "date", "amount": "value", "quantity": "qty"}
    ).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def sample_scores(spark, model_uri, tmp_path_factory) -> pd.DataFrame:
    clean, _ = segml.load_transactions(segml.load_cdnow(sample=True))
    path = write_parquet(clean, tmp_path_factory.mktemp("sample") / "sample.parquet")
    frame = spark.read.parquet(str(path))
    return to_pandas(ss.score(frame, model_uri, as_of=MODEL_AS_OF))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_file_writes_one_file_equal_to_score(
    spark, sample_csv, model_uri, sample_scores, tmp_path, suffix
):
    out = tmp_path / "out" / f"scores{suffix}"
    written = ss.score_file(
        sample_csv,
        model_uri,
        as_of=MODEL_AS_OF,
        out=out,
        customer_id="cust",
        timestamp="date",
        amount="value",
        quantity="qty",
        extra_columns={"model_version": "3", "as_of": MODEL_AS_OF},
        spark=spark,
    )
    assert written.out == out and out.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temp left over
    if suffix == ".csv":
        text = ["customer_id", "model_name", "model_version", "run_id", "as_of"]
        # Text as written (ids with leading zeros, empty run id); an empty number or
        # date is a missing value.
        missing = {c: [""] for c in SCORE_COLUMNS if c not in text}
        table = pd.read_csv(
            out, dtype=dict.fromkeys(text, str), keep_default_na=False, na_values=missing
        )
    else:
        table = pd.read_parquet(out)
    # The pandas path's columns; extra_columns replace a metadata column in place.
    assert list(table.columns) == list(SCORE_COLUMNS)
    assert table["customer_id"].str.len().eq(4).all()  # "0001": leading zeros kept
    assert (table["as_of"] == MODEL_AS_OF).all() and (table["model_version"] == "3").all()
    assert (table["model_name"] == "scoring_model").all()  # the folder's name, as in pandas
    table = table.set_index("customer_id").sort_index()[list(OUTPUT_COLUMNS)]
    pd.testing.assert_frame_equal(table, sample_scores, check_dtype=False, rtol=1e-15)
    assert written.report.rows_read == written.report.rows_kept == 6_890  # a clean log
    assert written.report.dropped == {}


def test_score_file_failure_leaves_the_previous_output(spark, sample_csv, model_uri, tmp_path):
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"previous output")
    with pytest.raises(ss.SparkInputError, match="No transaction on or before as_of 1990-01-01"):
        ss.score_file(
            sample_csv,
            model_uri,
            as_of="1990-01-01",
            out=out,
            customer_id="cust",
            timestamp="date",
            amount="value",
            quantity="qty",
            spark=spark,
        )
    assert out.read_bytes() == b"previous output"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]


# -------------------------------------------------------------------------- errors
def test_missing_columns_are_named(spark, master_spark, model_uri, sample_csv, tmp_path):
    without_amount = master_spark.drop("amount")
    with pytest.raises(ss.SparkInputError, match=r"lack the column\(s\) \['amount'\]"):
        ss.customer_features(without_amount, as_of=MODEL_AS_OF)
    with pytest.raises(ss.SparkInputError, match="uses quantity features .* no 'quantity'"):
        ss.score(master_spark.drop("quantity"), model_uri, as_of=MODEL_AS_OF)
    with pytest.raises(ss.SparkInputError, match=r"lack 1 column\(s\) the model needs"):
        ss.predict(
            ss.customer_features(master_spark, as_of=MODEL_AS_OF).drop("gap_std_days"), model_uri
        )
    with pytest.raises(segml.TransactionsError, match=r"column\(s\) \['customer'\] not found"):
        ss.score_file(
            sample_csv,
            model_uri,
            as_of=MODEL_AS_OF,
            out=tmp_path / "x.csv",
            customer_id="customer",
            timestamp="date",
            amount="value",
            spark=spark,
        )


def test_bad_values_and_inputs_are_refused_clearly(spark, model_uri, tmp_path):
    log = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "timestamp": ["2024-01-01", "not a date", "2024-01-03"],
            "amount": ["1.5", "2", "$3"],
        }
    )
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    frame = ss.read_transactions(spark, path)
    with pytest.raises(
        ss.SparkInputError, match=r"unparseable values: \{'timestamp': 1, 'amount': 1\}"
    ):
        ss.customer_features(frame, as_of="2024-02-01")
    with pytest.raises(ss.SparkInputError, match="not timestamp or date"):
        ss.customer_features(spark.read.csv(str(path), header=True), as_of="2024-02-01")
    with pytest.raises(ss.SparkInputError, match="from its extension"):
        ss.score_file(path, model_uri, as_of="2024-02-01", out=tmp_path / "out.xlsx", spark=spark)
    with pytest.raises(ss.SparkInputError, match="not a segml scoring model|Cannot load"):
        ss.score(frame, str(tmp_path), as_of="2024-02-01")
    nanos = tmp_path / "nanos.parquet"
    stamps = pd.Series(pd.Timestamp("2024-01-01"), index=log.index).astype("datetime64[ns]")
    log.assign(timestamp=stamps, amount=1.0).to_parquet(nanos)
    with pytest.raises(ss.SparkInputError, match="nanoseconds"):
        ss.read_transactions(spark, nanos)


def test_read_transactions_reads_every_format_the_loader_reads(spark, tmp_path):
    log = pd.DataFrame(
        {
            "customer_id": ["007", "a"],
            "timestamp": ["2024-01-01", "2024-01-02"],
            "amount": ["1.5", "2"],
        }
    )
    log.to_csv(tmp_path / "log.csv", index=False)
    log.to_csv(tmp_path / "log.tsv", sep="\t", index=False)
    log.to_csv(tmp_path / "log.csv.gz", index=False)
    expected = [tuple(row) for row in ss.read_transactions(spark, tmp_path / "log.csv").collect()]
    assert [(i, a) for i, _, a in expected] == [("007", 1.5), ("a", 2.0)]  # ids stay text
    for name in ("log.tsv", "log.csv.gz"):
        rows = ss.read_transactions(spark, tmp_path / name).collect()
        assert [tuple(row) for row in rows] == expected
    with pytest.raises(
        ss.SparkInputError, match=r"use \.csv, \.csv\.gz, \.tsv, \.txt, \.xlsx or \.parquet"
    ):
        ss.read_transactions(spark, tmp_path / "log.json")


@pytest.mark.parametrize("as_of", ["not a date", None])
def test_a_bad_as_of_reads_the_same_on_every_path(spark, as_of):
    """pandas features, the batch scorer and Spark share one as_of rule and message."""
    from segml.batch import ScoreError
    from segml.batch._score import _as_day
    from segml.features._rfm import FeatureError, _day

    with pytest.raises(FeatureError) as features_error:
        _day(as_of)
    with pytest.raises(ScoreError) as score_error:
        _as_day(as_of)
    with pytest.raises(ss.SparkInputError) as spark_error:
        ss.customer_features(
            spark.createDataFrame([("a", 1.0)], ["customer_id", "amount"]), as_of=as_of
        )
    message = str(features_error.value)
    assert message.startswith(("Cannot read as_of=", "as_of must be a date"))
    assert str(score_error.value) == f"{message} Use YYYY-MM-DD."
    assert str(spark_error.value) == message


def test_import_without_pyspark_says_how_to_install():
    code = "import sys; sys.modules['pyspark'] = None; import segml.spark"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert 'pip install -e ".[spark]"' in result.stderr


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """One SQLite store for the tests that need a registry or runs (made once: slow)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def test_score_file_resolves_a_registered_model_and_restores_the_tracking_uri(
    spark, sample_csv, model_uri, sample_scores, tracking_uri, tmp_path
):
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri
    client = MlflowClient(tracking_uri=uri)
    client.create_registered_model("segml-spark-test")
    version = client.create_model_version("segml-spark-test", source=model_uri)
    client.set_registered_model_alias("segml-spark-test", "champion", version.version)
    before = mlflow.get_tracking_uri()

    out = ss.score_file(
        sample_csv,
        "models:/segml-spark-test@champion",
        as_of=MODEL_AS_OF,
        out=tmp_path / "scores.parquet",
        customer_id="cust",
        timestamp="date",
        amount="value",
        quantity="qty",
        tracking_uri=uri,
        spark=spark,
    )
    table = pd.read_parquet(out.out).set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(table[list(OUTPUT_COLUMNS)], sample_scores, check_dtype=False)
    # The alias is resolved once, and recorded as the pandas path records it.
    assert (out.model_name, out.model_version, out.run_id) == ("segml-spark-test", "1", "")
    assert table[
        ["model_name", "model_version", "run_id", "as_of"]
    ].drop_duplicates().values.tolist() == [["segml-spark-test", "1", "", MODEL_AS_OF]]
    assert mlflow.get_tracking_uri() == before
    assert "MLFLOW_TRACKING_URI" not in os.environ


# ------------------------------------------------------------------------ security
def test_spark_runs_no_code_from_the_model_folder(
    spark, model_uri, tracking_uri, tmp_path, monkeypatch
):
    """A folder whose entry script was replaced passes segml's checks (they never read
    the script) and must still run only the installed segml under Spark.

    ``mlflow.pyfunc.spark_udf`` executes the entry script of the folder it is given in
    every Python worker; score, predict and score_file hand it a copy written by the
    installed segml instead. The replaced script writes a marker file when imported,
    then does what the original does (so scores alone cannot tell).
    """
    import mlflow
    from mlflow import MlflowClient

    from segml.tracking._model import ENTRY_POINT

    marker = tmp_path / "ran"
    tampered = Path(shutil.copytree(model_uri, tmp_path / "tampered"))
    entry = tampered / "_pyfunc_entry.py"
    entry.write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n" + entry.read_text()
    )
    log = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c"],
            "timestamp": pd.to_datetime(
                ["1997-01-05", "1997-06-01", "1998-05-20", "1997-03-10", "1997-04-02", "1998-02-01"]
            ),
            "amount": [12.5, 30.0, 8.0, 55.0, 20.0, 15.0],
            "quantity": [1, 3, 1, 4, 2, 1],
        }
    )
    csv = tmp_path / "log.csv"
    log.to_csv(csv, index=False)
    frame = spark.read.parquet(str(write_parquet(log, tmp_path / "log.parquet")))
    expected = to_pandas(ss.score(frame, model_uri, as_of=MODEL_AS_OF))
    assert list(expected.index) == ["a", "b", "c"]

    temp = tmp_path / "temp"
    temp.mkdir()
    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "tempdir", str(temp))  # where the copies for Spark go
        lazy = ss.score(frame, str(tampered), as_of=MODEL_AS_OF)
        result = ss.score_file(
            csv, str(tampered), as_of=MODEL_AS_OF, out=tmp_path / "scores.parquet", spark=spark
        )
    scored = to_pandas(lazy)
    written = pd.read_parquet(result.out).set_index("customer_id").sort_index()

    # predict, with the folder logged to a run and loaded as runs:/RUN_ID/model.
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.create_experiment(
        "tampered", artifact_location=(tmp_path / "runs").as_uri()
    )
    run_id = client.create_run(experiment).info.run_id
    client.log_artifacts(run_id, str(tampered), "model")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    features = ss.customer_features(frame, as_of=MODEL_AS_OF)
    predicted = to_pandas(ss.predict(features, f"runs:/{run_id}/model", as_of=MODEL_AS_OF))

    assert not marker.exists()
    pd.testing.assert_frame_equal(scored, expected)
    pd.testing.assert_frame_equal(predicted, expected)
    pd.testing.assert_frame_equal(written[list(OUTPUT_COLUMNS)], expected, check_dtype=False)
    # The metadata come from the checked model: the folder's name, no version or run.
    assert (result.model_name, result.model_version, result.run_id) == ("tampered", "", "")
    assert written[["model_name", "model_version", "run_id"]].drop_duplicates().values.tolist() == [
        ["tampered", "", ""]
    ]
    # Spark got segml's own script. score's copy stays for its lazy DataFrame (until
    # the process exits); score_file's went with its job.
    copies = list(temp.glob("segml-spark-model-*/model-*"))
    assert len(copies) == 1
    assert (copies[0] / "_pyfunc_entry.py").read_bytes() == Path(ENTRY_POINT).read_bytes()

    # The control: MLflow loading the folder itself runs the replaced script.
    mlflow.pyfunc.load_model(str(tampered))
    assert marker.read_text() == "ran"


# ------------------------------------------------------------------------ cleaning
# A log breaking every rule of segml.load_transactions, as an analyst's CSV.
MESSY = pd.DataFrame(
    {
        "cust": ["00042", "00042", " 7 ", None, "", "a", "a", "a", "a", "a"]
        + ["b", "b", "c", "c", "d", "d", "d", "e", "e", "e", "f", "f", "f"],
        "date": [
            "2024-01-02",  # 00042: "$1,200.50" and "1200.5" are the same row
            "2024-01-02",
            "2024-02-30",  # unparseable_timestamp
            "2024-01-05",  # missing_customer_id
            "2024-01-05",  # missing_customer_id (blank)
            "2024-01-01",  # zero_amount
            "2024-01-03",  # unparseable_amount
            "",  # missing_timestamp
            "2024-01-04",  # infinite_amount
            "2024-12-01",  # after_as_of (with as_of)
            "2024-01-01 10:00:00+01:00",  # b: zone-aware, 09:00 UTC ...
            "2024-01-01T09:00:00Z",  # ... a return at the same moment: netted
            "01/02/2024",  # c: not ISO (month first); an accounting return, no purchase
            "Jan 5 2024",
            "2024-03-01",  # d: purchase fully returned (excess 5), then an orphan-free
            "2024-03-01",  # return on the next day nets the same purchase
            "2024-03-02",
            "2024-02-01",  # e: two equal purchases, a return nets the second, which is
            "2024-02-01",  # then no longer a duplicate of the first
            "2024-02-01",
            "2024-04-01",  # f: exact duplicates and a zero
            "2024-04-01",
            "2024-04-02",
        ],
        "value": ["$1,200.50", "1200.5", "3", "4", "5", "0", "abc", "2", "inf", "7"]
        + ["10", "-4", "(3)", "USD12", "20", "-25", "-1", "10", "10", "-3", "8", "8", "0"],
        "channel": ["web"] * 22 + ["shop"],
    }
)


@pytest.fixture(scope="session")
def messy_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("messy") / "messy.csv"
    MESSY.to_csv(path, index=False)
    return path


def assert_cleaned_like_the_loader(spark_frame, spark_report, expected, report) -> None:
    """Same kept rows (as a multiset), values and types; same counts, notes."""
    got = to_pandas_rows(spark_frame)
    assert list(got.columns) == list(expected.columns)
    assert dict(spark_frame.dtypes)["timestamp"] == "timestamp_ntz"
    order = list(expected.columns)
    got = got.sort_values(order, ignore_index=True)
    expected = expected.sort_values(order, ignore_index=True)
    pd.testing.assert_frame_equal(
        got.astype({"timestamp": "datetime64[ns]"}), expected, check_dtype=False
    )
    assert spark_report.dropped == report.dropped
    assert list(spark_report.dropped) == list(report.dropped)  # in the rules' order
    assert (spark_report.rows_read, spark_report.rows_kept) == (report.rows_read, report.rows_kept)
    assert spark_report.notes == report.notes
    assert {k: len(v) for k, v in spark_report.examples.items()} == {
        k: len(v) for k, v in report.examples.items()
    }


def to_pandas_rows(frame) -> pd.DataFrame:
    return _quiet(frame.toPandas)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"returns": "net"},
        {"returns": "net", "as_of": "2024-06-30", "zero_amounts": "keep"},
        {"zero_amounts": "keep", "drop_duplicates": False},
    ],
    ids=["defaults", "net", "net-as_of-keep-zeros", "keep-zeros-and-duplicates"],
)
def test_clean_transactions_applies_every_rule_as_the_loader(spark, messy_csv, options):
    names = dict(customer_id="cust", timestamp="date", amount="value")
    expected, report = segml.load_transactions(messy_csv, **names, **options)
    raw = spark.read.csv(str(messy_csv), header=True, escape='"')
    clean, spark_report = ss.clean_transactions(raw, **names, **options, source=str(messy_csv))
    assert_cleaned_like_the_loader(clean, spark_report, expected, report)
    assert spark_report.source == str(messy_csv)
    if options == {"returns": "net"}:  # every reason of the netting is exercised
        assert {"return_without_purchase", "return_netted", "fully_returned"} <= set(report.dropped)
        assert report.dropped["duplicate_row"] == 2  # 00042 and f; not e (netted)


def test_clean_transactions_on_typed_parquet_as_the_loader(spark, tmp_path):
    """Float ids, zone-aware timestamps (Spark TIMESTAMP) and numeric amounts."""
    log = pd.DataFrame(
        {
            "customer_id": [42.0, 42.0, 7.5, np.nan, 3.0, 3.0],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-01 23:30",
                    "2024-01-01 23:30",
                    "2024-01-02 00:00",
                    "2024-01-02 00:00",
                    "2024-01-03 00:00",
                    None,
                ]
            )
            .tz_localize("UTC")
            .astype("datetime64[us, UTC]"),
            "amount": [1.0, 1.0, np.inf, 2.0, 0.0, 3.0],
        }
    )
    path = tmp_path / "typed.parquet"
    log.to_parquet(path, index=False)
    for timezone in ("UTC", "Asia/Tokyo"):  # Tokyo: 23:30 UTC is the next day there
        expected, report = segml.load_transactions(path, timezone=timezone)
        clean, spark_report = ss.clean_transactions(
            spark.read.parquet(str(path)), timezone=timezone, source=str(path)
        )
        assert_cleaned_like_the_loader(clean, spark_report, expected, report)
        assert expected["customer_id"].tolist() == ["42"]


def test_clean_transactions_refuses_invalid_values_when_asked(spark, messy_csv):
    names = dict(customer_id="cust", timestamp="date", amount="value")
    raw = spark.read.csv(str(messy_csv), header=True, escape='"')
    with pytest.raises(
        segml.TransactionsError,
        match=r"Column 'date': 1 value\(s\) are not dates, "
        r"e.g. \['2024-02-30'\]. Pass timestamp_format=",
    ):
        ss.clean_transactions(raw, **names, on_invalid="raise")
    good_dates = raw.where("date != '2024-02-30' OR date IS NULL")
    with pytest.raises(
        segml.TransactionsError,
        match=r"Column 'value': 1 value\(s\) are not numbers, "
        r"e.g. \['abc'\]",
    ) as caught:
        ss.clean_transactions(good_dates, **names, on_invalid="raise")
    assert caught.value.report.dropped["missing_customer_id"] == 2
    with pytest.raises(segml.TransactionsError, match="returns must be 'drop' or 'net'"):
        ss.clean_transactions(raw, **names, returns="keep")
    with pytest.raises(segml.TransactionsError, match=r"No transactions left after cleaning 3 row"):
        ss.clean_transactions(raw.where("cust = 'd'"), **names, returns="net")


@pytest.fixture(scope="session")
def raw_sample(tmp_path_factory) -> dict[str, Path]:
    """The CDNOW sample as shipped (zero amounts, exact duplicates) as CSV and Parquet."""
    raw = segml.load_cdnow(sample=True)
    folder = tmp_path_factory.mktemp("raw_sample")
    raw.to_csv(folder / "raw.csv", index=False)
    return {".csv": folder / "raw.csv", ".parquet": write_parquet(raw, folder / "raw.parquet")}


@pytest.mark.parametrize(
    "suffix, options, n_rows",
    [(".csv", {}, 6_890), (".parquet", {"drop_duplicates": False}, 6_911)],
    ids=["csv-defaults", "parquet-keep-duplicates"],
)
def test_score_file_equals_the_pandas_path_row_by_row(
    spark, raw_sample, model_uri, tmp_path, suffix, options, n_rows
):
    """Same customers, columns, metadata and numbers as segml.batch.score_transactions.

    The cleaned rows keep their places in the file through Spark's shuffles, so the
    features add each customer's amounts in the file's order, as pandas does: the
    scores are identical, not only close.
    """
    source = raw_sample[suffix]
    expected = score_transactions(model_uri, source, as_of=MODEL_AS_OF, columns=options).scores
    result = ss.score_file(
        source,
        model_uri,
        as_of=MODEL_AS_OF,
        out=tmp_path / "scores.parquet",
        spark=spark,
        **options,
    )
    _, report = segml.load_transactions(source, **options)
    assert result.report.dropped == report.dropped
    assert result.report.rows_kept == report.rows_kept == n_rows
    got = pd.read_parquet(result.out)
    assert list(got.columns) == list(SCORE_COLUMNS)
    got = got.sort_values("customer_id", ignore_index=True)
    expected = expected.sort_values("customer_id", ignore_index=True)
    assert len(got) == len(expected) == 2_349  # not 2,357: zero-only customers dropped
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=0, atol=0)


def test_cli_spark_engine_cleans_with_the_config_and_matches_pandas(
    spark, raw_sample, model_uri, tmp_path
):
    """``segml score --engine spark --config``: the config's cleaning, the pandas table."""
    from typer.testing import CliRunner

    from segml.cli import app

    config = tmp_path / "run.yaml"
    config.write_text(
        "data:\n  source: cdnow\ntransactions:\n  amount: price\n  drop_duplicates: false\n"
        "  zero_amounts: keep\n"
    )
    source = tmp_path / "orders.csv"
    pd.read_csv(raw_sample[".csv"], dtype=str).rename(columns={"amount": "price"}).to_csv(
        source, index=False
    )
    outputs = {}
    runner = CliRunner()
    for engine in ("pandas", "spark"):
        out = tmp_path / f"{engine}.parquet"
        result = runner.invoke(
            app,
            [
                "score",
                "--model",
                model_uri,
                "--transactions",
                str(source),
                "--as-of",
                MODEL_AS_OF,
                "--out",
                str(out),
                "--config",
                str(config),
                "--engine",
                engine,
            ],
        )
        assert result.exit_code == 0, result.output
        outputs[engine] = pd.read_parquet(out).sort_values("customer_id", ignore_index=True)
    message = " ".join(result.output.split())
    assert "6,919 read, 6,919 kept" in message  # nothing dropped with these options
    got, expected = outputs["spark"], outputs["pandas"]
    assert len(got) == len(expected) == 2_357  # zero-only customers kept, as asked
    assert list(got.columns) == list(expected.columns) == list(SCORE_COLUMNS)
    pd.testing.assert_frame_equal(
        got[["customer_id", "segment", "tier", "model_name", "as_of"]],
        expected[["customer_id", "segment", "tier", "model_name", "as_of"]],
    )
    np.testing.assert_allclose(got["clv"], expected["clv"], rtol=1e-12, atol=1e-12)

    config.write_text("data:\n  source: cdnow\ntransactions:\n  as_of: 1998-01-01\n")
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            model_uri,
            "--transactions",
            str(source),
            "--as-of",
            MODEL_AS_OF,
            "--out",
            str(tmp_path / "x.parquet"),
            "--config",
            str(config),
            "--engine",
            "spark",
        ],
    )
    assert result.exit_code == 1
    assert "transactions.as_of (in --config) is not supported" in " ".join(result.output.split())
