"""The calibrated baseline a scorer deploys when its churn classifier loses to it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segml.models._churn_baseline import BaselineChurnModel
from segml.models._churn_evaluation import evaluate_churn


@pytest.fixture(scope="module")
def known():
    """Labels drawn from P(churn) = 1 / (1 + exp(-(2 z - 0.5))), z the standardised days."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=20_000)
    X = pd.DataFrame(
        {
            "p_alive": rng.uniform(size=z.size),
            "expected_purchases": rng.uniform(size=z.size),
            "days_since_last_purchase": 100 + 30 * z,
        },
        index=pd.Index([f"c{i}" for i in range(z.size)], name="customer_id"),
    )
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-(2 * z - 0.5)))).astype(int)
    return X, y


def test_platt_scaling_recovers_the_known_map(known):
    X, y = known
    model = BaselineChurnModel(baseline="days_since_last_purchase").fit(X, y)
    assert model.coef_ == pytest.approx(2.0, abs=0.1)
    assert model.intercept_ == pytest.approx(-0.5, abs=0.1)
    assert model.churn_rate_ == pytest.approx(y.mean())


def test_the_calibrated_baseline_ranks_as_the_baseline(known):
    X, y = known
    model = BaselineChurnModel(baseline="days_since_last_purchase").fit(X, y)
    table = evaluate_churn(
        y,
        {"calibrated": model.churn_probability(X), "raw": X["days_since_last_purchase"]},
    )
    assert table.loc["calibrated", "roc_auc"] == table.loc["raw", "roc_auc"]
    # As a probability it is better calibrated than the constant churn rate.
    constant = np.mean((y - y.mean()) ** 2)
    assert table.loc["calibrated", "brier"] < constant


def test_round_trip_and_errors(known):
    X, y = known
    model = BaselineChurnModel(baseline="-expected_purchases", high_risk_threshold=0.6).fit(X, y)
    again = BaselineChurnModel.from_dict(json.loads(json.dumps(model.to_dict())))
    pd.testing.assert_series_equal(again.churn_probability(X), model.churn_probability(X))
    assert again.high_risk_threshold == 0.6
    assert again.risk_band([0.7, 0.55, 0.1]).tolist() == ["high", "medium", "low"]
    with pytest.raises(ValueError, match="baseline must be one of"):
        BaselineChurnModel(baseline="tenure").fit(X, y)
    with pytest.raises(ValueError, match="y must hold both 0 and 1"):
        BaselineChurnModel().fit(X, np.zeros(len(X), dtype=int))
    with pytest.raises(ValueError, match="lack the column"):
        BaselineChurnModel().fit(X.drop(columns="p_alive"), y)
