"""CustomerScorer.fit is fit_tables(training_tables(...)): same models, same scores,
and tables built with other settings (or labels that miss customers) are refused."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from segml.models.clv import CLVModel
from segml.models.segments import SegmentModel
from segml.scoring import (
    CustomerScorer,
    ScorerError,
    TrainingTables,
    customer_features,
    training_tables,
)
from segml.scoring._scorer import _frame_to_json

AS_OF = "1998-06-30"


def _scorer() -> CustomerScorer:
    return CustomerScorer(
        clv=CLVModel(time_unit="W"),
        segments=SegmentModel(n_segments=4, random_state=0),
        random_state=0,
    )


@pytest.fixture(scope="module")
def tables(cdnow_sample) -> TrainingTables:
    return training_tables(cdnow_sample, as_of=AS_OF, time_unit="W")


def test_the_tables_hold_what_the_scorer_reads(tables, cdnow_sample):
    assert tables.as_of == pd.Timestamp(AS_OF)
    assert tables.first_day == pd.Timestamp("1997-01-01")
    pd.testing.assert_frame_equal(tables.features, customer_features(cdnow_sample, as_of=AS_OF))
    pd.testing.assert_frame_equal(
        tables.churn_test_features, customer_features(cdnow_sample, as_of="1998-04-01")
    )
    # Week units: the holdout of 180 days is 180 / 7 weeks long.
    assert tables.cal_holdout["duration_holdout"].iloc[0] == pytest.approx(180 / 7)
    for name in ("train", "test"):
        labels = getattr(tables, f"churn_{name}_labels")
        assert labels.index.equals(getattr(tables, f"churn_{name}_features").index)
        assert set(labels.unique()) <= {0, 1}
    assert (tables.churn_horizon_days, tables.clv_holdout_days) == (90, 180)
    assert (tables.windows_days, tables.time_unit) == ((90,), "W")


def test_fit_equals_fit_tables_bit_for_bit(tables, cdnow_sample):
    steps = []
    by_fit = _scorer().fit(cdnow_sample, as_of=AS_OF, on_step=lambda n, s: steps.append(n))
    by_tables = _scorer().fit_tables(tables)
    pd.testing.assert_frame_equal(
        by_fit.predict(tables.features, as_of=tables.as_of),
        by_tables.predict(tables.features, as_of=tables.as_of),
        check_exact=True,
    )
    assert by_fit.predictive_settings_ == by_tables.predictive_settings_
    assert by_fit.clv_.to_dict() == by_tables.clv_.to_dict()
    assert by_fit.segments_.to_dict() == by_tables.segments_.to_dict()
    assert by_fit.scorecard_.to_dict() == by_tables.scorecard_.to_dict()
    assert by_fit.segment_map_.to_dict() == by_tables.segment_map_.to_dict()
    assert _frame_to_json(by_fit.evaluation_["churn"]) == _frame_to_json(
        by_tables.evaluation_["churn"]
    )
    assert by_fit.evaluation_["cutoffs"] == by_tables.evaluation_["cutoffs"]
    assert steps == [
        "features",
        "CLV fit and holdout evaluation",
        "churn fit and time-split evaluation",
        "segments",
        "segment map",
    ]
    assert list(by_fit.timings_) == steps


def test_tables_built_with_other_settings_are_refused(tables):
    with pytest.raises(ScorerError, match=r"built with time_unit='W' but this scorer has "):
        CustomerScorer(segments=SegmentModel(n_segments=4)).fit_tables(tables)
    with pytest.raises(ScorerError, match=r"churn_horizon_days=90 but this scorer has .*=60"):
        CustomerScorer(clv=CLVModel(time_unit="W"), churn_horizon_days=60).fit_tables(tables)


def test_labels_missing_customers_are_refused_by_count(tables):
    short = dataclasses.replace(tables, churn_test_labels=tables.churn_test_labels.iloc[10:])
    n = len(tables.churn_test_features)
    with pytest.raises(
        ScorerError, match=rf"churn_test_labels lack 10 of the {n} customers of churn_test_features"
    ):
        _scorer().fit_tables(short)


def test_too_short_a_history_is_refused_before_any_table_is_built(cdnow_sample):
    with pytest.raises(ScorerError, match=r"needs two horizons of history before as_of=1997-04-01"):
        training_tables(cdnow_sample, as_of="1997-04-01")
    with pytest.raises(ScorerError, match=r"time_unit='M'"):
        training_tables(cdnow_sample, as_of=AS_OF, time_unit="M")


def _distinct_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Distinct (frequency, recency, T, monetary_value) rows with their counts."""
    columns = ["frequency", "recency", "T", "monetary_value"]
    return table.groupby(columns).size().rename("count").reset_index()


def test_clv_fits_on_distinct_rows_with_counts_equal_the_per_customer_fits(tables):
    cal = tables.cal_holdout[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]]
    cal = cal.set_axis(["frequency", "recency", "T", "monetary_value"], axis=1)
    cal = cal.assign(recency=cal["recency"] * 7, T=cal["T"] * 7)  # weeks -> days
    rows = {
        "as_of": _distinct_rows(tables.features),
        "calibration": _distinct_rows(cal),
        "churn_train": _distinct_rows(tables.churn_train_features),
        "churn_test": _distinct_rows(tables.churn_test_features),
    }
    assert len(rows["as_of"]) < 0.6 * len(tables.features)  # one-time buyers collapse
    plain = _scorer().fit_tables(tables)
    weighted = _scorer().fit_tables(dataclasses.replace(tables, clv_rows=rows))
    for name, value in plain.clv_.purchase_params_.items():
        assert weighted.clv_.purchase_params_[name] == pytest.approx(value, rel=1e-6), name
    for name, value in plain.clv_.gamma_gamma_params_.items():
        assert weighted.clv_.gamma_gamma_params_[name] == pytest.approx(value, rel=1e-6), name
    assert weighted.evaluation_["clv_holdout"] == pytest.approx(
        plain.evaluation_["clv_holdout"], rel=1e-6
    )
    pd.testing.assert_frame_equal(
        weighted.evaluation_["churn"], plain.evaluation_["churn"], rtol=1e-6
    )


def test_clv_rows_without_a_needed_column_are_refused_by_name(tables):
    rows = {"as_of": _distinct_rows(tables.features).drop(columns="count")}
    with pytest.raises(ScorerError, match=r"clv_rows\['as_of'\] lacks the column\(s\) \['count'\]"):
        _scorer().fit_tables(dataclasses.replace(tables, clv_rows=rows))
    with pytest.raises(ScorerError, match=r"clv_rows has unknown key\(s\) \['today'\]"):
        _scorer().fit_tables(dataclasses.replace(tables, clv_rows={"today": rows["as_of"]}))
