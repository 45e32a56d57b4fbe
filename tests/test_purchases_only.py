"""Purchases-only logs (issue 12 point 8): a log without amounts trains a scorer
whose scores are expected purchases, P(alive), P(buy), the next purchase, churn,
segments and tiers, with no CLV column and the reason stated once.

The log is lifetimes' ``example_transactions.csv`` (5,000 customers of 2014, columns
``date`` and ``id``), read from the installed package without importing it.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segml.batch import score_transactions
from segml.batch._score import METADATA_COLUMNS
from segml.models._predictive import predictive_summary
from segml.models.churn import early_warning
from segml.models.clv import CLVModel
from segml.models.segments import SegmentModel
from segml.scoring import OUTPUT_COLUMNS, CustomerScorer, ScorerError, customer_features
from segml.scoring._scorer import CLV_OUTPUT_COLUMNS, PURCHASE_SEGMENT_FEATURES
from segml.tracking._model import cast_to_signature, export_model, model_signature
from segml.transactions import load_transactions

AS_OF = "2014-12-31"
SPEND = ("monetary_value", "total_spend", "avg_order_value")


@pytest.fixture(scope="module")
def csv_path() -> Path:
    """lifetimes' example log, found without importing lifetimes (its import warns)."""
    folder = Path(find_spec("lifetimes").submodule_search_locations[0])
    return folder / "datasets" / "example_transactions.csv"


@pytest.fixture(scope="module")
def loaded(csv_path):
    return load_transactions(csv_path, customer_id="id", timestamp="date", amount=None)


@pytest.fixture(scope="module")
def log(loaded) -> pd.DataFrame:
    """The clean purchases-only log: customer_id and timestamp, no amount."""
    clean = loaded[0]
    assert list(clean.columns) == ["customer_id", "timestamp"]
    return clean


@pytest.fixture(scope="module")
def fitted(log, loaded) -> CustomerScorer:
    scorer = CustomerScorer(
        segments=SegmentModel(n_segments=4, random_state=0),
        random_state=0,
        cleaning=loaded[1].settings,
    )
    return scorer.fit(log, as_of=AS_OF)


@pytest.fixture(scope="module")
def features(log) -> pd.DataFrame:
    return customer_features(log, as_of=AS_OF)


@pytest.fixture(scope="module")
def scores(fitted, features) -> pd.DataFrame:
    return fitted.predict(features, as_of=AS_OF)


def test_the_features_have_no_spend_column(features):
    assert len(features) == 5000  # 14,270 transactions once 1,003 duplicate rows are dropped
    assert not [c for c in features.columns if c in SPEND or c.startswith("spend_")]
    assert {"frequency", "recency", "T", "n_orders", "orders_last_90d"} <= set(features.columns)


def test_the_scores_have_no_clv_column_and_say_why_once(fitted, scores):
    expected = [c for c in OUTPUT_COLUMNS if c not in CLV_OUTPUT_COLUMNS]
    assert fitted.output_columns_ == expected == list(scores.columns)
    assert len(fitted.notices_) == 1
    assert fitted.notices_[0].startswith("The log has no amount column (purchases only)")
    assert "clv, clv_low and clv_high are not scored" in fitted.notices_[0]
    assert fitted.clv_.spend_model is None and fitted.clv_.gamma_gamma_params_ is None
    assert scores.notna().all()[["expected_purchases", "p_alive", "churn_probability"]].all()


def test_the_purchase_columns_equal_the_purchase_model(fitted, features, scores):
    rfm = fitted.clv_features(features)
    assert list(rfm.columns) == ["frequency", "recency", "T"]
    pd.testing.assert_series_equal(
        scores["expected_purchases"], fitted.clv_.expected_purchases(rfm), check_exact=True
    )
    pd.testing.assert_series_equal(scores["p_alive"], fitted.clv_.p_alive(rfm), check_exact=True)
    summary = predictive_summary(fitted.clv_, rfm, random_state=0)
    assert "clv_low" not in summary.columns  # no spend model, no value interval
    for name in ("p_buy_30d", "p_buy_90d", "p_buy_again", "next_purchase_days"):
        pd.testing.assert_series_equal(scores[name], summary[name], check_exact=True)
    assert scores["next_purchase_date"].isna().equals(scores["p_buy_again"] <= 0.5)


def test_segments_and_tiers_use_counts(fitted, scores):
    segments = fitted.segments_
    assert segments.features_ == list(PURCHASE_SEGMENT_FEATURES)
    assert segments.value_column_ == "expected_purchases"
    # Segment 0 is the best: ordered by mean expected purchases.
    means = scores.groupby("segment")["expected_purchases"].mean()
    assert means.index.tolist() == [0, 1, 2, 3]
    assert means.is_monotonic_decreasing
    measures = [c.measure for c in fitted.scorecard_.criteria_]
    assert measures == ["purchases_per_month", "n_orders", "repurchase_rate"]
    assert set(scores["tier"]) == {"VIP", "regular", "prospect"}
    profile = fitted.segment_map_.to_dict()
    assert "total_spend" not in json.dumps(profile) and "clv" not in json.dumps(profile)


def test_a_saved_purchases_only_scorer_scores_identically(fitted, tmp_path, features, scores):
    loaded = CustomerScorer.load(fitted.save(tmp_path / "scorer"))
    assert loaded.output_columns_ == fitted.output_columns_
    assert loaded.notices_ == fitted.notices_
    pd.testing.assert_frame_equal(loaded.predict(features, as_of=AS_OF), scores, check_exact=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, fitted, features) -> Path:
    model_input = cast_to_signature(features, fitted.feature_columns_)
    folder = tmp_path_factory.mktemp("purchases-only") / "model"
    return export_model(fitted, folder, input_example=model_input.head(3))


def test_the_pyfunc_and_its_signature_have_the_purchase_columns(fitted, exported, features, scores):
    import mlflow

    model_input = cast_to_signature(features, fitted.feature_columns_)
    model = mlflow.pyfunc.load_model(str(exported))
    theirs = model.predict(model_input, params={"as_of": AS_OF})
    pd.testing.assert_frame_equal(
        theirs, scores.rename_axis("customer_id").reset_index(), check_exact=True
    )
    outputs = [spec.name for spec in model.metadata.get_output_schema().inputs]
    inputs = [spec.name for spec in model_signature(fitted).inputs.inputs]
    assert outputs == ["customer_id", *fitted.output_columns_]
    assert not set(CLV_OUTPUT_COLUMNS) & set(outputs)
    assert inputs == ["customer_id", *fitted.feature_columns_]


def test_segml_score_writes_the_purchase_columns(exported, csv_path, tmp_path, scores):
    out = tmp_path / "scores.parquet"
    result = score_transactions(exported, csv_path, as_of=AS_OF, out=out)
    written = pd.read_parquet(out).set_index("customer_id")
    assert result.n_customers == 5000
    assert list(written.columns) == [*scores.columns, *METADATA_COLUMNS]
    expected = scores.loc[written.index]
    for name in ("expected_purchases", "p_alive", "p_buy_90d", "next_purchase_days"):
        np.testing.assert_array_equal(written[name].to_numpy(), expected[name].to_numpy())
    assert written["next_purchase_date"].tolist() == expected["next_purchase_date"].tolist()


def test_spend_model_none_on_a_log_with_amounts_drops_the_clv_columns(cdnow_sample):
    scorer = CustomerScorer(
        clv=CLVModel(time_unit="W", spend_model=None),
        segments=SegmentModel(n_segments=4, random_state=0),
        random_state=0,
    ).fit(cdnow_sample, as_of="1998-06-30")
    assert not set(CLV_OUTPUT_COLUMNS) & set(scorer.output_columns_)
    assert scorer.notices_ == [
        "The CLV model has no spend model (spend_model=None): clv, clv_low and clv_high "
        "are not scored, and segments are ranked by expected_purchases."
    ]
    # The log has amounts: segments keep the spend feature, ranked by expected purchases.
    assert scorer.segments_.features_ == ["days_since_last_purchase", "n_orders", "total_spend"]
    assert scorer.segments_.value_column_ == "expected_purchases"


def test_segment_features_needing_spend_are_refused_on_a_purchases_only_log(log):
    scorer = CustomerScorer(
        segments=SegmentModel(n_segments=4, features=["n_orders", "avg_order_value"])
    )
    with pytest.raises(
        ScorerError, match=r"segment features \['n_orders', 'avg_order_value'\] include"
    ):
        scorer.fit(log, as_of=AS_OF)


def test_the_purchases_only_run_config_reads_this_log_and_fits_without_clv(log):
    from segml._config import load_config, read_source, section_kwargs

    config = load_config(Path(__file__).parents[1] / "configs" / "purchases_only.yaml")
    assert config["transactions"]["amount"] is None
    clean, report = read_source(config["data"]["source"], section_kwargs(config, "transactions"))
    pd.testing.assert_frame_equal(clean, log)
    assert report.settings["amount"] is None
    scorer = CustomerScorer(
        clv=CLVModel(**section_kwargs(config, "clv")),
        segments=SegmentModel(**section_kwargs(config, "segments")),
        **section_kwargs(config, "scorer"),
    ).fit(clean, as_of=config["run"]["as_of"])
    assert scorer.clv_.purchase_model_ in ("bgnbd", "mbgnbd", "paretonbd")
    assert not set(CLV_OUTPUT_COLUMNS) & set(scorer.output_columns_)
    assert len(scorer.notices_) == 1 and "purchases only" in scorer.notices_[0]


def test_the_early_warning_list_ranks_purchases_at_risk(scores):
    table = early_warning(scores, top_n=20)
    assert list(table.columns[:2]) == ["purchases_at_risk", "expected_purchases"]
    expected = scores["expected_purchases"] * scores["churn_probability"]
    assert table["purchases_at_risk"].tolist() == expected.loc[table.index].tolist()
    assert table["purchases_at_risk"].is_monotonic_decreasing
    assert set(table["risk_band"]) <= {"high", "medium"}
    assert "next_purchase_date" in table.columns and "clv" not in table.columns
