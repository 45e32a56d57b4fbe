"""churn_labels: who is labelled, where the horizon starts and ends, and what is refused."""

from __future__ import annotations

import pandas as pd
import pytest

from segml.features._churn import ChurnInputError, churn_labels
from segml.features._rfm import FeatureError

AS_OF = "2024-03-31"
HORIZON_DAYS = 30  # (2024-03-31, 2024-04-30]


def _log(rows) -> pd.DataFrame:
    ids, stamps = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": list(ids),
            "timestamp": pd.to_datetime(list(stamps), format="ISO8601"),
            "amount": [10.0] * len(ids),
        }
    )


@pytest.fixture
def boundary_log() -> pd.DataFrame:
    return _log(
        [
            # bought on as_of itself, and never again: that purchase is the past -> churned
            ("on_as_of", "2024-03-31 18:30"),
            # first day of the horizon -> stayed
            ("first_day", "2024-01-10"),
            ("first_day", "2024-04-01 00:00"),
            # last day of the horizon, late in the day -> stayed (the boundary is included)
            ("last_day", "2024-02-01"),
            ("last_day", "2024-04-30 23:59"),
            # one day past the horizon -> churned
            ("day_after", "2024-02-01"),
            ("day_after", "2024-05-01"),
            # several purchases inside the horizon count once -> stayed
            ("busy", "2024-03-01"),
            ("busy", "2024-04-05"),
            ("busy", "2024-04-06"),
            # first purchase after as_of: not known at as_of -> not labelled
            ("newcomer", "2024-04-10"),
            # first purchase on the day after as_of: also not known
            ("next_day", "2024-04-01"),
            # keeps the log running past the horizon
            ("late", "2024-01-05"),
            ("late", "2024-06-30"),
        ]
    )


def test_labels_on_a_hand_made_log_include_both_horizon_boundaries(boundary_log):
    labels = churn_labels(boundary_log, as_of=AS_OF, horizon_days=HORIZON_DAYS)
    assert labels.to_dict() == {
        "busy": 0,
        "day_after": 1,
        "first_day": 0,
        "last_day": 0,
        "late": 1,
        "on_as_of": 1,
    }


def test_labels_are_int64_named_churned_indexed_by_sorted_customer_id(boundary_log):
    labels = churn_labels(boundary_log, as_of=AS_OF, horizon_days=HORIZON_DAYS)
    assert labels.name == "churned"
    assert labels.dtype == "int64"
    assert labels.index.name == "customer_id"
    assert list(labels.index) == sorted(labels.index)


def test_a_time_of_day_on_as_of_is_dropped(boundary_log):
    # as_of is a day, like rfm_summary's: 2024-03-31 12:00 means the whole of March 31.
    midday = churn_labels(boundary_log, as_of="2024-03-31 12:00", horizon_days=HORIZON_DAYS)
    pd.testing.assert_series_equal(
        midday, churn_labels(boundary_log, as_of=AS_OF, horizon_days=HORIZON_DAYS)
    )


def test_one_more_horizon_day_turns_a_churner_into_a_stayer(boundary_log):
    labels = churn_labels(boundary_log, as_of=AS_OF, horizon_days=HORIZON_DAYS + 1)
    assert labels["day_after"] == 0


def test_integer_ids_become_strings():
    log = _log([(7, "2024-01-01"), (7, "2024-02-01"), (8, "2024-01-02"), (9, "2024-03-01")])
    labels = churn_labels(log, as_of="2024-01-15", horizon_days=30)
    assert labels.to_dict() == {"7": 0, "8": 1}


def test_a_horizon_past_the_end_of_the_log_is_refused(boundary_log):
    # The log ends 2024-06-30; as_of + 91 days = 2024-06-30 is fine, 92 is not.
    assert len(churn_labels(boundary_log, as_of=AS_OF, horizon_days=91)) == 6
    with pytest.raises(
        ChurnInputError, match=r"horizon runs past the data.*2024-07-01.*2024-06-30"
    ):
        churn_labels(boundary_log, as_of=AS_OF, horizon_days=92)


def test_data_end_extends_a_log_whose_last_days_had_no_sales(boundary_log):
    labels = churn_labels(boundary_log, as_of=AS_OF, horizon_days=120, data_end="2024-07-31")
    assert labels["late"] == 0
    with pytest.raises(ChurnInputError, match="log ends 2024-07-31"):
        churn_labels(boundary_log, as_of=AS_OF, horizon_days=200, data_end="2024-07-31")


def test_no_customer_known_at_as_of_is_refused(boundary_log):
    with pytest.raises(ChurnInputError, match=r"0 customers known.*starts 2024-01-05"):
        churn_labels(boundary_log, as_of="2023-12-31", horizon_days=30)


@pytest.mark.parametrize("horizon_days", [0, -5, 2.5, "90", True])
def test_a_horizon_that_is_not_a_positive_whole_number_is_refused(boundary_log, horizon_days):
    with pytest.raises(ChurnInputError, match="horizon_days must be a positive whole number"):
        churn_labels(boundary_log, as_of=AS_OF, horizon_days=horizon_days)


def test_missing_columns_are_named(boundary_log):
    with pytest.raises(ChurnInputError, match=r"\['timestamp'\]"):
        churn_labels(boundary_log.drop(columns="timestamp"), as_of=AS_OF, horizon_days=30)


def test_errors_are_feature_errors_and_value_errors(boundary_log):
    with pytest.raises(FeatureError):
        churn_labels(boundary_log, as_of=AS_OF, horizon_days=500)
    assert issubclass(ChurnInputError, ValueError)


def test_cdnow_labels_cover_every_customer_known_at_as_of(cdnow):
    labels = churn_labels(cdnow, as_of="1997-09-30", horizon_days=90)
    # Every CDNOW customer made a first purchase in 1997 Q1, so all are known.
    assert len(labels) == 23_570
    # (1997-09-30, 1997-12-29]: customers with a purchase in the horizon, counted directly.
    inside = cdnow["timestamp"].between("1997-10-01", "1997-12-29")
    stayed = cdnow.loc[inside, "customer_id"].nunique()
    assert int((labels == 0).sum()) == stayed
