"""Training on Spark: the scorer's tables built by the pandas functions per bucket.

One local Spark session (``local[2]``, the one of ``test_spark.py`` when both run).
CDNOW master is the equality test bed for the tables (bit for bit: the same pandas
functions on whole customers, rows in the file's order); the CDNOW sample for the
fitted scorer; small hand-made logs for the edges (buckets without holdout rows,
sampling, the whole-log checks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason='the Spark path needs the extra: pip install -e ".[spark]"')


import segml  # noqa: E402
import segml.spark as ss  # noqa: E402
from segml.features import FeatureError  # noqa: E402
from segml.features._churn import ChurnInputError  # noqa: E402
from segml.models import CLVModel, SegmentModel  # noqa: E402
from segml.scoring import CustomerScorer, ScorerError, training_tables  # noqa: E402
from tests.test_spark import write_parquet  # noqa: E402

AS_OF = "1998-06-30"
TABLES = ("features", "cal_holdout", "churn_train_features", "churn_test_features")
LABELS = ("churn_train_labels", "churn_test_labels")


def as_spark(spark, log: pd.DataFrame, path):
    return spark.read.parquet(str(write_parquet(log, path)))


def assert_tables_identical(got, expected) -> None:
    """Every table and label of two TrainingTables, bit for bit, same index and dtypes."""
    assert got.as_of == expected.as_of and got.first_day == expected.first_day
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), check_exact=True)
    for name in LABELS:
        pd.testing.assert_series_equal(
            getattr(got, name), getattr(expected, name), check_exact=True
        )
    settings = ("churn_horizon_days", "clv_holdout_days", "windows_days", "time_unit")
    assert [getattr(got, s) for s in settings] == [getattr(expected, s) for s in settings]


@pytest.fixture(scope="module")
def master_log() -> pd.DataFrame:
    clean, _ = segml.load_transactions(segml.load_cdnow())
    return clean


def test_training_tables_equal_pandas_bit_for_bit_on_cdnow_master(spark, master_log, tmp_path):
    frame = as_spark(spark, master_log, tmp_path / "master.parquet")
    got = ss.training_tables(frame, as_of=AS_OF, time_unit="W", windows_days=(30, 90))
    expected = training_tables(master_log, as_of=AS_OF, time_unit="W", windows_days=(30, 90))

    assert isinstance(got, segml.scoring.TrainingTables)
    assert len(got.features) == got.n_customers == 23_502
    # CDNOW's customers all arrive in 1997's first quarter: known at both cutoffs.
    assert len(got.churn_train_features) == len(got.churn_test_features) == 23_502
    assert not got.sampled and got.clv_rows == {}
    assert got.describe() == "all 23,502 customers known at 1998-06-30"
    assert_tables_identical(got, expected)


def test_scorer_trained_on_spark_equals_the_pandas_scorer(spark, cdnow_sample, tmp_path):
    """A raw CSV cleaned, tabled and fitted on Spark against the pandas engine.

    The raw CDNOW sample (zero amounts, repeated rows) under an analyst's column
    names: read_training_log + fit_scorer against load_transactions + fit.
    """
    path = tmp_path / "orders.csv"
    names = {"customer_id": "cust", "timestamp": "date", "amount": "value", "quantity": "qty"}
    cdnow_sample.rename(columns=names).to_csv(path, index=False)
    options = dict(customer_id="cust", timestamp="date", amount="value")

    def unfitted():
        # random_state fixed: the predictive intervals' seed is otherwise drawn at fit.
        return CustomerScorer(
            clv=CLVModel(time_unit="W"), segments=SegmentModel(n_segments=4), random_state=0
        )

    spark.catalog.clearCache()
    log, report = ss.read_training_log(spark, path, quantity="qty", **options)
    steps = []
    scorer, tables = ss.fit_scorer(
        unfitted(), log, as_of=AS_OF, on_step=lambda name, seconds: steps.append(name)
    )
    # What read_training_log cached is the log it returned: unpersisting it frees all.
    log.unpersist()
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()
    clean, expected_report = segml.load_transactions(path, **options)
    expected = unfitted().fit(clean.rename(columns={"qty": "quantity"}), as_of=AS_OF)

    assert report.dropped == expected_report.dropped and report.dropped  # zeros, repeats
    assert report.rows_kept == expected_report.rows_kept
    assert not tables.sampled and tables.n_customers == 2_349
    assert steps[0] == "features" and list(scorer.timings_) == list(expected.timings_)
    for name in ("purchase_params_", "gamma_gamma_params_"):
        got, want = getattr(scorer.clv_, name), getattr(expected.clv_, name)
        assert list(got) == list(want)
        np.testing.assert_allclose(list(got.values()), list(want.values()), rtol=1e-6)
    # Rows reach pandas in the file's order: the tables, hence every fit, are identical.
    assert scorer.clv_.to_dict() == expected.clv_.to_dict()
    assert scorer.segments_.to_dict() == expected.segments_.to_dict()
    assert scorer.churn_source_ == expected.churn_source_
    pd.testing.assert_frame_equal(scorer.evaluation_["churn"], expected.evaluation_["churn"])
    features = tables.features
    pd.testing.assert_frame_equal(
        scorer.predict(features, as_of=AS_OF),
        expected.predict(features, as_of=AS_OF),
        check_exact=True,
    )


def _small_log() -> pd.DataFrame:
    """Ten customers over 2023-2024; only "c0" buys in the CLV holdout (2024-05-02 on).

    "c1" buys again after 2024-06-30, the as_of of the tests: the log ends 2024-07-15.
    """
    rng = np.random.default_rng(3)
    rows = []
    for i in range(10):
        days = np.sort(rng.choice(np.arange(0, 480), size=3 + i % 3, replace=False))
        start = pd.Timestamp("2023-01-01 09:15")  # a time of day: messages show the first one
        rows += [(f"c{i}", start + pd.Timedelta(days=int(d))) for d in days]
    rows += [("c0", pd.Timestamp("2024-06-01")), ("c0", pd.Timestamp("2024-06-20 13:30"))]
    rows += [("c1", pd.Timestamp("2024-07-15"))]
    log = pd.DataFrame(rows, columns=["customer_id", "timestamp"])
    log["amount"] = rng.integers(1, 500, size=len(log)) / 4
    return log


def test_buckets_without_holdout_rows_give_the_pandas_tables(spark, tmp_path):
    """Sixteen buckets of ten customers: most buckets have no CLV-holdout row."""
    log = _small_log()
    frame = as_spark(spark, log, tmp_path / "small.parquet")
    options = dict(as_of="2024-06-30", churn_horizon_days=60, clv_holdout_days=60)
    got = ss.training_tables(frame, **options, partitions=16)
    expected = training_tables(log, **options)
    assert (expected.cal_holdout["frequency_holdout"] > 0).sum() == 1
    assert_tables_identical(got, expected)


def test_tables_above_max_training_customers_are_a_stated_sample(spark, cdnow_sample, tmp_path):
    clean, _ = segml.load_transactions(cdnow_sample)
    frame = as_spark(spark, clean, tmp_path / "sample.parquet")
    got = ss.training_tables(frame, as_of=AS_OF, max_training_customers=600)
    expected = training_tables(clean, as_of=AS_OF)

    assert got.sampled and got.n_customers == 2_349
    assert got.sample_fraction == pytest.approx(600 / 2_349)
    assert 450 < len(got.features) < 750  # a hash sample: about 600
    assert got.describe().startswith(f"a sample of {len(got.features):,} of the 2,349 customers")
    # The same customers in every table (those known at each date), rows as in pandas.
    sample = got.features.index
    for name in TABLES:
        table, full = getattr(got, name), getattr(expected, name)
        assert table.index.isin(sample).all()
        pd.testing.assert_frame_equal(table, full.loc[full.index.isin(sample)], check_exact=True)
    # CLV rows: every customer, as distinct rows with counts.
    rows = got.clv_rows["as_of"]
    assert int(rows["count"].sum()) == 2_349
    distinct = (
        expected.features.groupby(["frequency", "recency", "T", "monetary_value"])
        .size()
        .rename("count")
        .reset_index()
    )
    pd.testing.assert_frame_equal(rows, distinct, check_exact=True, check_dtype=False)
    assert int(got.clv_rows["calibration"]["count"].sum()) == len(expected.cal_holdout)
    assert int(got.clv_rows["churn_train"]["count"].sum()) == len(expected.churn_train_features)
    # A weighted fit on the distinct rows is the fit on every customer (B's sample_weight).
    weighted = CLVModel().fit(rows.drop(columns="count"), sample_weight=rows["count"])
    everyone = CLVModel().fit(expected.features[["frequency", "recency", "T", "monetary_value"]])
    for name in ("purchase_params_", "gamma_gamma_params_"):
        fitted, want = getattr(weighted, name), getattr(everyone, name)
        np.testing.assert_allclose(list(fitted.values()), list(want.values()), rtol=1e-8)
    # A scorer fitted on the sampled tables fits its CLV models on every customer's
    # rows: the deployed and the calibration-period models equal the full fit.
    scorer = CustomerScorer(random_state=0).fit_tables(got, diagnostics=True)
    full = CustomerScorer(random_state=0).fit_tables(expected, diagnostics=True)
    for model in ("clv_", "clv_calibration"):
        fitted = getattr(scorer, model, None) or scorer.diagnostics_[model]
        want = getattr(full, model, None) or full.diagnostics_[model]
        for name in ("purchase_params_", "gamma_gamma_params_"):
            np.testing.assert_allclose(
                list(getattr(fitted, name).values()),
                list(getattr(want, name).values()),
                rtol=1e-6,
            )
    # The holdout is evaluated on the sampled customers.
    assert scorer.evaluation_["clv_holdout"]["n_customers"] == len(got.cal_holdout)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (dict(as_of="2023-03-01", churn_horizon_days=60), ScorerError),  # history too short
        (dict(as_of="2024-09-30", churn_horizon_days=60), ChurnInputError),  # past the data
        (dict(as_of="2024-04-30", clv_holdout_days=10), FeatureError),  # empty holdout
        (dict(as_of="2024-06-30", clv_holdout_days=600), FeatureError),  # calibration empty
    ],
)
def test_whole_log_checks_say_what_pandas_says(spark, tmp_path, options, error):
    log = _small_log()
    log = log[~log["timestamp"].between("2024-04-21", "2024-04-30 23:59")]
    frame = as_spark(spark, log, tmp_path / "small.parquet")
    with pytest.raises(error) as expected:
        training_tables(log, **options)
    with pytest.raises(error) as got:
        ss.training_tables(frame, **options)
    assert str(got.value) == str(expected.value)


def test_bad_settings_are_refused_before_spark_runs(spark, tmp_path):
    frame = as_spark(spark, _small_log(), tmp_path / "small.parquet")
    with pytest.raises(ss.SparkInputError, match="max_training_customers must be a positive"):
        ss.training_tables(frame, as_of="2024-06-30", max_training_customers=0)
    with pytest.raises(ss.SparkInputError, match="partitions must be a positive whole number"):
        ss.training_tables(frame, as_of="2024-06-30", partitions=0)
    with pytest.raises(ss.SparkInputError, match=r"lack the column\(s\) \['amount'\]"):
        ss.training_tables(frame.drop("amount"), as_of="2024-06-30")


def test_the_spark_engine_refuses_lifetimes_fitters_before_spark_runs():
    # Sampled tables fit CLV on distinct rows with counts, which lifetimes cannot take.
    scorer = CustomerScorer(clv=CLVModel(engine="lifetimes"))
    with pytest.raises(ValueError, match="clv.engine='segml' only, got engine='lifetimes'"):
        ss.fit_scorer(scorer, None, as_of=AS_OF)
