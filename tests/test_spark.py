"""The Spark path: features and scores equal to the pandas path, on one local session.

One Spark session (``local[2]``, bound to 127.0.0.1, UI off) serves the whole file.
CDNOW master (23,502 customers after cleaning) is the equality test bed for features and scores;
a small hand-made log pins the edge cases of the definitions (several orders a day,
zero spend, times of day, purchases after ``as_of``, first purchase in ``as_of``'s
month). Nothing is mocked: the model is a real scorer exported as an MLflow folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason='the Spark path needs the extra: pip install -e ".[spark]"')

from pyspark.sql import SparkSession  # noqa: E402

import segml  # noqa: E402
import segml.spark as ss  # noqa: E402
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
def spark():
    """One local Spark session for the file: 2 cores, loopback only, no UI."""
    previous = os.environ.get("PYSPARK_PYTHON")
    # Python workers must be this interpreter (it has segml); the context reads it once.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        session = _quiet(
            SparkSession.builder.master("local[2]")
            .appName("segml tests")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate
        )
    finally:
        if previous is None:
            del os.environ["PYSPARK_PYTHON"]
        else:
            os.environ["PYSPARK_PYTHON"] = previous
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


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
    expected = model.predict(cast_to_signature(master_features, columns))
    expected = expected.set_index("customer_id").sort_index()

    assert list(master_scores.columns) == list(OUTPUT_COLUMNS)
    assert len(master_scores) == len(expected) > 23_000
    assert master_scores["segment"].dtype == "int64"
    pd.testing.assert_frame_equal(master_scores, expected, check_dtype=False, rtol=0, atol=0)


def test_scores_match_pandas_scorer(master_log, scorer, master_features, master_scores):
    """The Spark path against CustomerScorer.score on pandas, customer by customer.

    Money sums are added in another order, so they may differ in the last bit; the
    churn model bins features at fixed edges, and such a difference can move a
    customer to the neighbouring bin. So: customers whose features are bitwise
    equal get identical scores; the others agree on CLV, segment and tier, and
    rarely differ in churn.
    """
    expected = scorer.score(master_log, as_of=MODEL_AS_OF)
    pandas_features = customer_features(master_log, as_of=MODEL_AS_OF)
    assert master_scores.index.equals(expected.index)

    for column in ("clv", "p_alive", "expected_purchases"):
        np.testing.assert_allclose(
            master_scores[column], expected[column], rtol=1e-12, atol=1e-12, err_msg=column
        )
    for column in ("segment", "segment_name", "tier"):
        np.testing.assert_array_equal(master_scores[column], expected[column], err_msg=column)

    same_features = (master_features.to_numpy() == pandas_features.to_numpy()).all(axis=1)
    assert same_features.mean() > 0.5
    pd.testing.assert_frame_equal(
        master_scores[same_features], expected[same_features], check_dtype=False, rtol=0, atol=0
    )
    churn_differs = master_scores["churn_probability"] != expected["churn_probability"]
    # Measured on CDNOW master: 0 customers at 1998-06-30, 6 at 1998-03-31, 1 at 1997-12-31.
    assert churn_differs.sum() <= len(expected) // 1000


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
    pd.testing.assert_frame_equal(to_pandas(ss.predict(permuted, model_uri)), master_scores)


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
    assert written == out and out.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temp left over
    if suffix == ".csv":
        table = pd.read_csv(out, dtype={"customer_id": str, "model_version": str})
    else:
        table = pd.read_parquet(out)
    assert list(table.columns) == ["customer_id", *OUTPUT_COLUMNS, "model_version", "as_of"]
    assert table["customer_id"].str.len().eq(4).all()  # "0001": leading zeros kept
    assert (table["as_of"] == MODEL_AS_OF).all()
    table = table.set_index("customer_id").sort_index()[list(OUTPUT_COLUMNS)]
    pd.testing.assert_frame_equal(table, sample_scores, check_dtype=False, rtol=1e-15)


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
    with pytest.raises(ss.SparkInputError, match=r"lacks the column\(s\) \['customer'\]"):
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


def test_import_without_pyspark_says_how_to_install():
    code = "import sys; sys.modules['pyspark'] = None; import segml.spark"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert 'pip install -e ".[spark]"' in result.stderr


def test_score_file_resolves_a_registered_model_and_restores_the_tracking_uri(
    spark, sample_csv, model_uri, sample_scores, tmp_path
):
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
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
    table = pd.read_parquet(out).set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(table, sample_scores, check_dtype=False)
    assert mlflow.get_tracking_uri() == before
    assert "MLFLOW_TRACKING_URI" not in os.environ
