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


# ------------------------------------------------------------- in the scorer
@pytest.fixture(scope="module")
def sample_fit(cdnow_sample):
    from segml import CLVModel, CustomerScorer, SegmentModel, load_transactions
    from segml.scoring import customer_features

    clean, _ = load_transactions(cdnow_sample, drop_duplicates=False)
    settings = dict(
        clv=CLVModel(time_unit="W"),
        segments=SegmentModel(n_segments=4, random_state=0),
        clv_holdout_days=273,
    )
    fallback = CustomerScorer(**settings).fit(clean, as_of="1998-06-30")
    classifier = CustomerScorer(**settings, churn_fallback=False).fit(clean, as_of="1998-06-30")
    return fallback, classifier, customer_features(clean, as_of="1998-06-30")


def test_a_classifier_that_loses_to_a_baseline_is_not_deployed(sample_fit):
    # On the CDNOW sample the classifier's time-split ROC AUC (0.8228) is below
    # -expected_purchases' (0.8343): the scorer deploys the calibrated baseline and says so.
    from segml.models import ChurnModel

    fallback, classifier, features = sample_fit
    churn = fallback.evaluation_["churn"]["roc_auc"]
    assert churn["model"] < churn.drop("model").max()
    assert isinstance(fallback.churn_, BaselineChurnModel)
    assert fallback.churn_.baseline == "-expected_purchases" == churn.drop("model").idxmax()
    assert fallback.churn_source_.startswith("calibrated baseline '-expected_purchases'")
    assert f"{churn['model']:.4f}" in fallback.churn_source_
    # The deployed score ranks customers exactly as the baseline does (the churn
    # inputs' expected purchases are over the churn horizon, not the CLV horizon).
    scores = fallback.predict(features)
    inputs = fallback._churn_inputs(features, fallback.clv_, fallback.clv_.time_unit)
    np.testing.assert_allclose(
        scores["churn_probability"].to_numpy(),
        fallback.churn_.churn_probability(inputs).to_numpy(),
        rtol=1e-12,
    )
    order = scores["churn_probability"].rank(method="dense").to_numpy()
    baseline = (-inputs["expected_purchases"]).rank(method="dense").to_numpy()
    np.testing.assert_array_equal(order, baseline)
    assert scores["churn_probability"].between(0, 1).all()
    # Asked not to, the scorer keeps the classifier.
    assert isinstance(classifier.churn_, ChurnModel)
    assert classifier.churn_source_ == "churn classifier"


def test_the_deployed_baseline_is_saved_as_data_and_scores_alike(sample_fit, tmp_path):
    from segml.scoring import CustomerScorer
    from segml.tracking._load import load_scoring_model
    from segml.tracking._model import cast_to_signature, export_model, predict_with_ids

    fallback, _, features = sample_fit
    folder = fallback.save(tmp_path / "scorer")
    assert sorted(p.name for p in folder.iterdir()) == ["scorer.json"]  # no skops folder
    document = json.loads((folder / "scorer.json").read_text())
    assert document["churn_baseline"]["params"]["baseline"] == "-expected_purchases"
    loaded = CustomerScorer.load(folder)
    assert loaded.churn_source_ == fallback.churn_source_
    pd.testing.assert_frame_equal(loaded.predict(features), fallback.predict(features))
    # Through the exported MLflow model and segml's safe loader too.
    model_input = cast_to_signature(features, fallback.feature_columns_)
    exported = export_model(fallback, tmp_path / "model", input_example=model_input.head(3))
    pd.testing.assert_frame_equal(
        load_scoring_model(exported).predict(model_input),
        predict_with_ids(fallback, model_input),
    )
