"""purchase_model="auto": candidates fitted on calibration, judged on the holdout, refitted."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from segml.datasets import load_cdnow
from segml.features import calibration_holdout, rfm_summary
from segml.models import (
    PURCHASE_MODELS,
    CLVInputError,
    CLVModel,
    describe_selection,
    holdout_metrics,
    select_purchase_model,
)


@pytest.fixture(scope="module")
def split():
    return calibration_holdout(
        load_cdnow(sample=True),
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        time_unit="D",
        unit_multiplier=7,
    )


@pytest.fixture(scope="module")
def full_rfm():
    return rfm_summary(
        load_cdnow(sample=True), as_of="1998-06-30", time_unit="D", unit_multiplier=7
    )


@pytest.fixture(scope="module")
def auto_model(split, full_rfm):
    return CLVModel(time_unit="W", purchase_model="auto").fit(full_rfm, cal_holdout=split)


def _calibration_rfm(split):
    cal = split[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]]
    return cal.set_axis(["frequency", "recency", "T", "monetary_value"], axis=1)


def test_table_holds_each_candidate_judged_on_the_holdout(split):
    table = select_purchase_model(split, CLVModel(time_unit="W"))
    assert list(table.index) == list(PURCHASE_MODELS)
    assert table["chosen"].sum() == 1
    n = len(split)
    for name, row in table.iterrows():
        calibrated = CLVModel(time_unit="W", purchase_model=name).fit(_calibration_rfm(split))
        # The same numbers holdout_metrics reports for a model fitted on calibration.
        metrics = holdout_metrics(calibrated, split)
        assert row["holdout_mae"] == pytest.approx(metrics["purchases_mae"], rel=1e-12)
        assert row["holdout_rmse"] == pytest.approx(metrics["purchases_rmse"], rel=1e-12)
        assert row["holdout_total_error_pct"] == pytest.approx(
            metrics["purchases_total_error_pct"], rel=1e-12
        )
        assert row["log_likelihood"] == pytest.approx(calibrated.purchase_log_likelihood_)
        assert row["bic"] == pytest.approx(4 * math.log(n) - 2 * row["log_likelihood"])
        assert row["converged"]
    # FHL 2005's calibration log-likelihoods: BG/NBD -9582.4, Pareto/NBD -9595.0.
    assert table.loc["bgnbd", "log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    assert table.loc["paretonbd", "log_likelihood"] == pytest.approx(-9595.0, abs=0.05)


def test_lowest_holdout_mae_wins_and_the_reason_says_so(split):
    table = select_purchase_model(split, CLVModel(time_unit="W"))
    best = table["holdout_mae"].idxmin()
    assert table.index[table["chosen"]][0] == best == "paretonbd"
    reason = describe_selection(table)
    assert reason.startswith("Pareto/NBD: lowest mean absolute error of holdout repeat")
    assert f"{table.loc['bgnbd', 'holdout_mae']:.4g}" in reason


def test_ties_on_mae_are_broken_by_bic(split):
    # A tolerance of 100% ties every candidate: BIC decides (MBG/NBD has the lowest here).
    table = select_purchase_model(split, CLVModel(time_unit="W", selection_tie_rtol=1.0))
    assert table.loc[table["chosen"]].index[0] == table["bic"].idxmin() == "mbgnbd"
    assert "and lowest BIC" in describe_selection(table)


def test_auto_deploys_the_chosen_model_refitted_on_all_data(auto_model, split, full_rfm):
    assert auto_model.purchase_model == "auto"
    assert auto_model.purchase_model_ == "paretonbd"
    direct = CLVModel(time_unit="W", purchase_model="paretonbd").fit(full_rfm)
    # Warm-started from the calibration optimum: the same optimum to the optimiser's precision.
    np.testing.assert_allclose(
        list(auto_model.purchase_params_.values()),
        list(direct.purchase_params_.values()),
        rtol=1e-8,
    )
    assert auto_model.gamma_gamma_params_ == direct.gamma_gamma_params_
    assert auto_model.n_customers_ == len(full_rfm)
    # The comparison kept on the model is the calibration-period one.
    calibration = select_purchase_model(split, CLVModel(time_unit="W"))
    assert auto_model.model_selection_.equals(calibration)


def test_auto_round_trips_with_its_comparison(auto_model, full_rfm):
    document = json.loads(json.dumps(auto_model.to_dict()))
    assert document["purchase_model"] == "paretonbd"
    assert document["hyperparameters"]["purchase_model"] == "auto"
    loaded = CLVModel.from_dict(document)
    np.testing.assert_array_equal(loaded.clv(full_rfm), auto_model.clv(full_rfm))
    assert loaded.model_selection_.equals(auto_model.model_selection_)


def test_auto_without_a_holdout_says_what_to_pass(full_rfm):
    with pytest.raises(CLVInputError, match=r"pass cal_holdout=segml.features.calibration_holdout"):
        CLVModel(time_unit="W", purchase_model="auto").fit(full_rfm)


def test_a_holdout_table_without_its_columns_is_named(split):
    with pytest.raises(CLVInputError, match=r"lacks the column\(s\) \['frequency_holdout'\]"):
        select_purchase_model(split.drop(columns="frequency_holdout"))
    with pytest.raises(CLVInputError, match="non-empty subset"):
        select_purchase_model(split, candidates=("bgnbd", "nbd"))


def test_fixed_models_have_no_comparison(full_rfm):
    model = CLVModel(time_unit="W").fit(full_rfm)
    assert model.model_selection_ is None
    assert model.to_dict()["model_selection"] is None


# ------------------------------------------------------ purchases-only (no spend)


def test_purchases_only_model_predicts_purchases_and_says_why_not_clv(split):
    cal = _calibration_rfm(split).drop(columns="monetary_value")
    model = CLVModel(time_unit="W", spend_model=None).fit(cal)
    with_spend = CLVModel(time_unit="W").fit(_calibration_rfm(split))
    # The purchase model is the same with or without amounts.
    assert model.purchase_params_ == with_spend.purchase_params_
    predicted = model.predict(cal)
    assert list(predicted.columns) == ["expected_purchases", "p_alive", "has_repeat_purchase"]
    with pytest.raises(CLVInputError, match=r"fitted without a spend model \(spend_model=None"):
        model.clv(cal.assign(monetary_value=1.0))
    assert model.parameter_summary().index.get_level_values("model").unique().tolist() == ["bgnbd"]
    loaded = CLVModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert loaded.gamma_gamma_params_ is None
    assert loaded.predict(cal).equals(predicted)
    # Holdout accuracy of purchases only, without the monetary columns.
    metrics = holdout_metrics(
        model, split.drop(columns=["monetary_value_cal", "monetary_value_holdout"])
    )
    assert set(metrics) == {
        "n_customers",
        "purchases_mae",
        "purchases_rmse",
        "purchases_total_error_pct",
    }
    assert metrics["purchases_mae"] == pytest.approx(
        holdout_metrics(with_spend, split)["purchases_mae"], rel=1e-12
    )
    # auto works without amounts too.
    auto = CLVModel(time_unit="W", spend_model=None, purchase_model="auto").fit(
        cal, cal_holdout=split
    )
    assert auto.purchase_model_ == "paretonbd"
