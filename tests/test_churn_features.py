"""churn_features: known values, no leakage from after as_of, and clear refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segml.features import rfm_summary
from segml.features._churn import (
    CHURN_FEATURE_DESCRIPTIONS,
    ChurnInputError,
    churn_features,
)

AS_OF = "2024-06-30"


@pytest.fixture
def log() -> pd.DataFrame:
    rows = [
        # a: purchase days Jan 1, Jan 11 (two orders), Mar 1, Jun 20; then one after as_of
        ("a", "2024-01-01", 10.0, 1),
        ("a", "2024-01-11", 20.0, 2),
        ("a", "2024-01-11 15:00", 5.0, 1),
        ("a", "2024-03-01", 30.0, 3),
        ("a", "2024-06-20", 40.0, 4),
        ("a", "2024-07-15", 999.0, 50),
        # b: one purchase only, 120 days before as_of (inside the earlier 90-day window)
        ("b", "2024-03-02", 7.0, 1),
        # c: first seen after as_of
        ("c", "2024-07-01", 12.0, 1),
    ]
    ids, stamps, amounts, quantities = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": list(ids),
            "timestamp": pd.to_datetime(list(stamps), format="ISO8601"),
            "amount": list(amounts),
            "quantity": list(quantities),
        }
    )


def test_known_values_on_a_hand_made_log(log):
    features = churn_features(log, as_of=AS_OF, windows_days=(90,))
    assert list(features.index) == ["a", "b"]
    a = features.loc["a"]
    # Gaps between purchase days: 10, 50, 111 days.
    assert a["gap_mean_days"] == pytest.approx(57.0)
    assert a["gap_std_days"] == pytest.approx(np.std([10, 50, 111]))
    assert a["gap_max_days"] == 111.0
    assert a["gap_last_days"] == 111.0
    assert a["days_since_last_purchase"] == 10.0
    assert a["days_over_mean_gap"] == pytest.approx(10 - 57)
    # Last 90 days = (Apr 1, Jun 30]: the Jun 20 order; the 90 before = (Jan 2, Apr 1]:
    # the two Jan 11 orders and the Mar 1 order (Jan 1 is earlier).
    assert a["orders_last_90d"] == 1.0
    assert a["orders_prev_90d"] == 3.0
    assert a["order_trend_90d"] == -2.0
    assert a["spend_last_90d"] == 40.0
    assert a["spend_prev_90d"] == 55.0
    assert a["spend_trend_90d"] == -15.0
    assert a["spend_share_last_90d"] == pytest.approx(40 / 105)
    assert a["quantity_total"] == 11.0
    assert a["quantity_per_order"] == pytest.approx(11 / 5)
    assert a["quantity_last_90d"] == 4.0
    b = features.loc["b"]
    # A single purchase day has no gap: 0, and "overdue" by all the days since.
    assert (
        b[["gap_mean_days", "gap_std_days", "gap_max_days", "gap_last_days"]].tolist() == [0.0] * 4
    )
    assert b["days_over_mean_gap"] == b["days_since_last_purchase"] == 120.0
    assert b[["orders_last_90d", "orders_prev_90d", "spend_prev_90d"]].tolist() == [0.0, 1.0, 7.0]


def test_rfm_columns_are_those_of_rfm_summary(log):
    features = churn_features(log, as_of=AS_OF)
    rfm = rfm_summary(log, as_of=AS_OF)
    for column in ["frequency", "recency", "T", "monetary_value", "n_orders", "total_spend"]:
        np.testing.assert_array_equal(features[column], rfm[column].astype("float64"))


def test_every_column_is_described_and_float64_and_none_is_nan(cdnow_sample):
    features = churn_features(cdnow_sample, as_of="1997-09-30", windows_days=(30, 90))
    assert (features.dtypes == "float64").all()
    assert not features.isna().any().any()
    assert features.index.name == "customer_id"
    patterns = {key.replace("{w}", "") for key in CHURN_FEATURE_DESCRIPTIONS}
    extras = [c for c in features.columns if c not in rfm_summary(cdnow_sample, as_of="1997-09-30")]
    for column in extras:
        generic = column.replace("30d", "d").replace("90d", "d")
        assert generic in patterns, column


def test_no_feature_reads_a_transaction_after_as_of(cdnow_sample):
    as_of = "1997-06-30"
    before = churn_features(cdnow_sample, as_of=as_of, windows_days=(30, 90))

    later = cdnow_sample["timestamp"] > pd.Timestamp(as_of)
    assert later.sum() > 1000  # the test moves real data, not an empty set
    rng = np.random.default_rng(0)
    tampered = cdnow_sample.copy()
    # Later purchases: moved to other later days, other amounts and quantities, half of
    # them deleted, plus a burst of new purchases by known and unknown customers.
    moved = tampered.loc[later].copy()
    moved["timestamp"] = pd.Timestamp("1997-07-01") + pd.to_timedelta(
        rng.integers(0, 365, len(moved)), unit="D"
    )
    moved["amount"] = rng.uniform(1, 500, len(moved))
    moved["quantity"] = rng.integers(1, 20, len(moved))
    moved = moved.iloc[::2]
    known = tampered.loc[~later, "customer_id"].unique()[:50]
    burst = pd.DataFrame(
        {
            "customer_id": list(known) + ["new-1", "new-2"],
            "timestamp": pd.Timestamp("1997-07-01 00:00:01"),
            "amount": 1000.0,
            "quantity": 9,
        }
    )
    tampered = pd.concat([tampered.loc[~later], moved, burst], ignore_index=True)
    # ...and shuffle the rows: order must not matter either.
    tampered = tampered.sample(frac=1.0, random_state=1).reset_index(drop=True)

    after = churn_features(tampered, as_of=as_of, windows_days=(30, 90))
    pd.testing.assert_frame_equal(after, before)


def test_the_same_function_serves_training_and_scoring(cdnow_sample):
    train = churn_features(cdnow_sample, as_of="1997-09-30")
    score = churn_features(cdnow_sample, as_of="1998-06-30")
    assert list(train.columns) == list(score.columns)
    # Later, the same customers have more tenure and no fewer orders.
    assert (score["tenure_days"] - train["tenure_days"] == 273).all()
    assert (score["n_orders"] >= train["n_orders"]).all()


def test_clv_outputs_are_appended_for_the_customers_known_at_as_of(log):
    clv = pd.DataFrame(
        {"expected_purchases": [0.5, 0.1, 3.0], "p_alive": [0.9, 1.0, 1.0]},
        index=pd.Index(["b", "a", "c"], name="customer_id"),  # any order, extra c ignored
    )
    features = churn_features(log, as_of=AS_OF, clv_outputs=clv)
    assert features.loc[["a", "b"], "expected_purchases"].tolist() == [0.1, 0.5]
    assert features.columns.get_loc("expected_purchases") == 9  # right after the RFM columns


def test_clv_outputs_missing_customers_are_counted(log):
    clv = pd.DataFrame({"p_alive": [0.9]}, index=["a"])
    with pytest.raises(ChurnInputError, match=r"no row for 1 of 2 customers.*\['b'\]"):
        churn_features(log, as_of=AS_OF, clv_outputs=clv)


def test_clv_outputs_with_nan_are_refused_naming_the_column_and_count(log):
    clv = pd.DataFrame({"p_alive": [0.9, np.nan], "clv": [1.0, 2.0]}, index=["a", "b"])
    with pytest.raises(ChurnInputError, match=r"NaN values: \{'p_alive': 1\}"):
        churn_features(log, as_of=AS_OF, clv_outputs=clv)


def test_clv_outputs_that_are_not_numeric_or_clash_with_rfm_are_refused(log):
    text = pd.DataFrame({"segment_name": ["x", "y"]}, index=["a", "b"])
    with pytest.raises(ChurnInputError, match=r"\['segment_name'\] are not numeric"):
        churn_features(log, as_of=AS_OF, clv_outputs=text)
    clash = pd.DataFrame({"frequency": [1.0, 2.0]}, index=["a", "b"])
    with pytest.raises(ChurnInputError, match=r"\['frequency'\] that are already RFM"):
        churn_features(log, as_of=AS_OF, clv_outputs=clash)


def test_without_quantity_there_are_no_quantity_features(log):
    features = churn_features(log.drop(columns="quantity"), as_of=AS_OF)
    assert not [c for c in features.columns if c.startswith("quantity")]


def test_missing_quantity_values_are_refused(log):
    log.loc[0, "quantity"] = np.nan
    with pytest.raises(ChurnInputError, match="'quantity' has 1 missing"):
        churn_features(log, as_of=AS_OF)


@pytest.mark.parametrize("windows", [(), (0,), (30, 30), (7.5,)])
def test_bad_windows_are_refused(log, windows):
    with pytest.raises(ChurnInputError, match="windows_days"):
        churn_features(log, as_of=AS_OF, windows_days=windows)


def test_an_as_of_before_the_log_is_refused(log):
    with pytest.raises(ChurnInputError, match=r"0 customers known.*starts 2024-01-01"):
        churn_features(log, as_of="2023-06-30")
