"""Quality gates: known answers on CDNOW and on simulated logs, the config section, PSI."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from segml._config import ConfigError, check_config
from segml.datasets import simulate_transactions
from segml.models._churn_evaluation import evaluate_churn
from segml.models.churn import ChurnModel
from segml.models.clv import CLVModel
from segml.models.segments import SegmentModel
from segml.scoring import CustomerScorer
from segml.tracking._champion import population_stability_index, psi_level
from segml.tracking._gates import (
    GATE_COLUMNS,
    GateSettings,
    decide_aliases,
    evaluate_gates,
    failed_gate_lines,
    gate_metrics,
    gate_tags,
    gates_from_metrics,
    settings_from_params,
)
from segml.transactions import load_transactions


def _scorer(clv_holdout_days: int = 273) -> CustomerScorer:
    """The CDNOW-sample scorer of tests/test_tracking.py (39-week CLV holdout)."""
    return CustomerScorer(
        clv=CLVModel(time_unit="W"),
        segments=SegmentModel(n_segments=4, random_state=0),
        churn=ChurnModel(random_state=0, calibration_method="sigmoid"),
        churn_horizon_days=90,
        clv_holdout_days=clv_holdout_days,
    )


@pytest.fixture(scope="module")
def cdnow_run(cdnow_sample):
    clean, _ = load_transactions(cdnow_sample, drop_duplicates=False)
    return _scorer().fit(clean, as_of="1998-06-30"), clean


def test_gates_on_the_cdnow_sample(cdnow_run):
    scorer, clean = cdnow_run
    gates = evaluate_gates(scorer, clean).set_index("gate")
    assert list(gates.reset_index().columns) == list(GATE_COLUMNS)
    # CLV: the 39-week holdout's total repeat purchases are under-predicted by 12.1%.
    expected_error = abs(scorer.evaluation_["clv_holdout"]["purchases_total_error_pct"]) / 100
    assert gates.loc["clv_aggregate_error", "value"] == pytest.approx(expected_error)
    assert gates.loc["clv_aggregate_error", "value"] == pytest.approx(0.1215, abs=5e-4)
    assert gates.loc["clv_aggregate_error", "passed"]
    # Enough data: 2,349 customers (the sample's 2,357 less those cleaning drops),
    # 1,139 repeat buyers, 545 days from 1997-01-01 to 1998-06-30.
    assert gates.loc["customers", "value"] == scorer.clv_.n_customers_ == 2349
    assert gates.loc["repeat_customers", "value"] == scorer.clv_.n_repeat_customers_ == 1139
    assert gates.loc["history_days", "value"] == 545
    assert gates.loc[["customers", "repeat_customers", "history_days"], "passed"].all()
    # Churn: on the sample the classifier (ROC AUC 0.8266) loses to the free
    # -expected_purchases baseline (0.8343), so the gate fails and says so.
    churn = scorer.evaluation_["churn"]["roc_auc"]
    lead = churn["model"] - churn.drop("model").max()
    assert gates.loc["churn_lead", "value"] == pytest.approx(lead)
    assert gates.loc["churn_lead", "value"] == pytest.approx(-0.0077, abs=5e-4)
    assert not gates.loc["churn_lead", "passed"]
    assert gates.loc["churn_lead", "message"] == (
        "gate churn_lead FAILED: churn model ROC AUC 0.8266 minus best baseline "
        "'-expected_purchases' 0.8343 = -0.007727, bound >= 0.005"
    )
    assert failed_gate_lines(gates.reset_index()) == [gates.loc["churn_lead", "message"]]


def test_the_first_day_measures_the_history_without_the_log(cdnow_run):
    # A Spark run has the first transaction day in its tables, not the log.
    scorer, clean = cdnow_run
    with_log = evaluate_gates(scorer, clean)
    with_day = evaluate_gates(scorer, first_day="1997-01-01")
    pd.testing.assert_frame_equal(with_day, with_log)
    without = evaluate_gates(scorer).set_index("gate").loc["history_days"]
    assert not without["passed"] and "needs the transactions" in without["message"]


def test_a_churn_model_that_loses_to_a_perfect_baseline_fails(cdnow_run):
    scorer, clean = cdnow_run
    y = pd.Series([1, 0] * 50)
    # A constant model ranks no one (ROC AUC 0.5); the baseline is the label itself (1.0).
    table = evaluate_churn(
        y, {"model": np.full(100, 0.3), "days_since_last_purchase": y.astype(float) * 100}
    )
    losing = copy.copy(scorer)
    losing.evaluation_ = {**scorer.evaluation_, "churn": table}
    gate = evaluate_gates(losing, clean).set_index("gate").loc["churn_lead"]
    assert gate["value"] == -0.5 and gate["bound"] == 0.005 and not gate["passed"]
    assert "'days_since_last_purchase' 1.0000 = -0.5" in gate["message"]


def test_gates_on_a_simulated_log_with_known_counts():
    log = simulate_transactions(1500, seed=11)
    as_of = pd.Timestamp("2021-06-30")
    scorer = _scorer(clv_holdout_days=182).fit(log, as_of=as_of)
    known = log[log["timestamp"] <= as_of]
    days = known.assign(day=known["timestamp"].dt.normalize()).groupby("customer_id")["day"]
    n_customers = days.nunique().size
    n_repeat = int((days.nunique() > 1).sum())
    history = (as_of - known["timestamp"].min().normalize()).days
    settings = GateSettings(
        min_customers=n_customers + 1,  # one more than the log has: must fail
        min_repeat_customers=n_repeat,  # exactly the count: passes (>=)
        min_history_days=history + 1,  # a day more than the log covers: must fail
    )
    gates = evaluate_gates(scorer, log, settings=settings).set_index("gate")
    assert gates.loc["customers", "value"] == n_customers == 1500
    assert not gates.loc["customers", "passed"]
    assert gates.loc["customers", "message"] == (
        f"gate customers FAILED: customers known at as_of {n_customers:,}, bound >= "
        f"{n_customers + 1:,}"
    )
    assert gates.loc["repeat_customers", "value"] == n_repeat
    assert gates.loc["repeat_customers", "passed"]
    assert gates.loc["history_days", "value"] == history and not gates.loc["history_days", "passed"]
    # Without the log the history is not measured, and an unmeasured gate fails.
    unmeasured = evaluate_gates(scorer).set_index("gate").loc["history_days"]
    assert math.isnan(unmeasured["value"]) and not unmeasured["passed"]
    assert "not measured" in unmeasured["message"]


def test_gate_metrics_and_tags_round_trip(cdnow_run):
    scorer, clean = cdnow_run
    gates = evaluate_gates(scorer, clean)
    metrics, tags = gate_metrics(gates), gate_tags(gates)
    assert metrics["gate.churn_lead.passed"] == 0.0
    assert metrics["gate.customers.value"] == 2349.0
    assert tags["gates.passed"] == "false" and tags["gates.failed"] == "churn_lead"
    back = gates_from_metrics({**metrics, "unrelated.metric": 1.0}, tags)
    pd.testing.assert_frame_equal(back, gates)
    assert len(gates_from_metrics({"churn.model.roc_auc": 0.8})) == 0


def test_gate_settings_in_a_config():
    config = check_config({"data": {"source": "cdnow"}, "gates": {"min_customers": 500}})
    assert GateSettings(**config["gates"]).min_customers == 500
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['min_customer'\] in section"):
        check_config({"data": {"source": "cdnow"}, "gates": {"min_customer": 500}})
    with pytest.raises(ConfigError, match="gates.min_customers must be int"):
        check_config({"data": {"source": "cdnow"}, "gates": {"min_customers": "many"}})
    with pytest.raises(ValueError, match="gates.min_history_days must be >= 0"):
        GateSettings(min_history_days=-1)
    logged = {"gates.min_customers": "500", "gates.churn_min_lead": "0.01"}
    assert settings_from_params(logged) == GateSettings(min_customers=500, churn_min_lead=0.01)


# ----------------------------------------------------------------------- PSI
def test_psi_of_identical_distributions_is_zero():
    values = np.random.default_rng(0).gamma(2.0, 50.0, size=2000)
    assert population_stability_index(values, values) == 0.0
    assert population_stability_index(values, values[::-1].copy()) == 0.0


def test_psi_of_a_shift_matches_the_hand_computation():
    reference = np.arange(1000.0)  # deciles at 99.9, 199.8, ..., 899.1: 100 values per bin
    current = reference + 100  # bin 1 empties, the top bin doubles, the rest keep 10%
    # sum (q - p) ln(q / p): empty bin (1e-4 - 0.1) ln(1e-4 / 0.1), top bin 0.1 ln 2.
    expected = (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (0.2 - 0.1) * math.log(2)
    assert population_stability_index(reference, current) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.7594, abs=1e-4)


def test_psi_detects_drift_and_not_sampling_noise():
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 1, 20_000)
    same = rng.normal(0, 1, 20_000)
    shifted = rng.normal(1, 1, 20_000)  # the mean moves by one standard deviation
    assert psi_level(population_stability_index(reference, same)) == "stable"
    assert population_stability_index(reference, same) < 0.01
    assert psi_level(population_stability_index(reference, shifted)) == "significant"


def test_psi_bins_ties_and_missing_values():
    reference = np.array([1.0] * 60 + [2.0] * 30 + [np.nan] * 10)  # tied deciles merge
    current = np.array([1.0] * 30 + [2.0] * 30 + [np.nan] * 40)
    expected = sum((q - p) * math.log(q / p) for p, q in ((0.6, 0.3), (0.3, 0.3), (0.1, 0.4)))
    assert population_stability_index(reference, current) == pytest.approx(expected)
    with pytest.raises(ValueError, match="PSI needs values on both sides"):
        population_stability_index([], [1.0])


def test_aliases_move_only_when_every_gate_passes(cdnow_run):
    scorer, clean = cdnow_run
    failing = evaluate_gates(scorer, clean)  # churn_lead fails on the sample
    passing = evaluate_gates(scorer, clean, settings=GateSettings(churn_min_lead=-0.02))
    assert decide_aliases(passing, promote=True).aliases == ["candidate", "champion"]
    assert decide_aliases(passing).notices == []
    held = decide_aliases(failing, promote=True)
    assert held.aliases == [] and held.tags["gates.passed"] == "false"
    churn_line = failing.set_index("gate").loc["churn_lead", "message"]
    assert held.notices[0] == churn_line
    assert held.notices[-1] == f"--promote refused: {churn_line}"
    forced = decide_aliases(failing, allow_failed_gates=True)
    assert forced.aliases == ["candidate"] and forced.tags["gates.override"] == "true"
