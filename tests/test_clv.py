"""CLVModel: published CDNOW numbers, equality with lifetimes, persistence, failure modes."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone

from segml.datasets import load_cdnow, simulate_transactions
from segml.features import calibration_holdout, rfm_summary
from segml.models import (
    CLVConvergenceError,
    CLVInputError,
    CLVModel,
    PenalizerRetryWarning,
    SpendFrequencyCorrelationWarning,
    holdout_metrics,
    simple_clv,
)
from segml.models._distinct import distinct_rows
from segml.persistence import PersistenceError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import ConvergenceError


def _lifetimes(call):
    """Run lifetimes code with its global FutureWarning filter contained."""
    with warnings.catch_warnings():
        return call()


def _rfm_from_cal(cal: pd.DataFrame) -> pd.DataFrame:
    return cal.rename(
        columns={
            "frequency_cal": "frequency",
            "recency_cal": "recency",
            "T_cal": "T",
            "monetary_value_cal": "monetary_value",
        }
    )[["frequency", "recency", "T", "monetary_value"]]


@pytest.fixture(scope="module")
def cdnow_cal() -> pd.DataFrame:
    return calibration_holdout(
        load_cdnow(sample=True),
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        time_unit="D",
        unit_multiplier=7,
    )


@pytest.fixture(scope="module")
def cdnow_rfm(cdnow_cal) -> pd.DataFrame:
    return _rfm_from_cal(cdnow_cal)


@pytest.fixture(scope="module")
def cdnow_model(cdnow_rfm) -> CLVModel:
    return CLVModel(time_unit="W").fit(cdnow_rfm)


@pytest.fixture(scope="module")
def simulated_rfm() -> pd.DataFrame:
    log = simulate_transactions(3000, seed=7)
    return rfm_summary(log, as_of="2021-12-31")  # days


@pytest.fixture(scope="module")
def simulated_model(simulated_rfm) -> CLVModel:
    return CLVModel(time_unit="D", horizon_months=6, monthly_discount_rate=0.02).fit(simulated_rfm)


def _reference_fitters(model: CLVModel):
    """lifetimes fitters carrying the model's parameters."""
    bgf, ggf = BetaGeoFitter(), GammaGammaFitter()
    bgf.params_ = pd.Series(model.bgnbd_params_)[["r", "alpha", "a", "b"]]
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf.params_ = pd.Series(model.gamma_gamma_params_)[["p", "q", "v"]]
    return bgf, ggf


def _assert_rel(actual, expected, rtol):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)


# ------------------------------------------------------------- published numbers


@pytest.mark.parametrize("engine", ["segml", "lifetimes"])
def test_cdnow_fit_reproduces_fader_hardie_lee_2005_and_fader_hardie_2013(cdnow_rfm, engine):
    model = CLVModel(time_unit="W", engine=engine).fit(cdnow_rfm)
    bg, gg = model.bgnbd_params_, model.gamma_gamma_params_
    # FHL 2005 (BG/NBD) and Fader & Hardie 2013 (Gamma-Gamma), 3 significant digits.
    assert f"{bg['r']:.3g}" == "0.243"
    assert f"{bg['alpha']:.4g}" == "4.414"
    assert f"{bg['a']:.3g}" == "0.793"
    assert f"{bg['b']:.4g}" == "2.426"
    assert f"{gg['p']:.3g}" == "6.25"
    assert f"{gg['q']:.3g}" == "3.74"
    assert f"{gg['v']:.4g}" == "15.44"
    assert model.n_customers_ == 2357
    assert model.n_repeat_customers_ == 946


def _published_fit(purchase_model: str, **cleaning) -> CLVModel:
    from segml import load_transactions

    clean, _ = load_transactions(load_cdnow(sample=True), **cleaning)
    cal = calibration_holdout(
        clean, calibration_end="1997-09-30", observation_end="1998-06-30", unit_multiplier=7
    )
    return CLVModel(time_unit="W", purchase_model=purchase_model).fit(_rfm_from_cal(cal))


def test_which_cleaning_settings_reproduce_the_published_estimates():
    # The papers fit the CDNOW sample as it is: its 8 zero-value orders are purchases
    # and its 21 repeated rows are genuine orders. Loaded with zero_amounts="keep" and
    # drop_duplicates=False, the transaction log gives the published numbers for
    # BG/NBD (FHL 2005), Pareto/NBD (FHL 2005 note) and Gamma-Gamma (Fader & Hardie 2013).
    as_published = dict(zero_amounts="keep", drop_duplicates=False)
    bg = _published_fit("bgnbd", **as_published)
    assert [f"{bg.purchase_params_[k]:.4g}" for k in ("r", "alpha", "a", "b")] == [
        "0.2426", "4.414", "0.7929", "2.426"
    ]  # fmt: skip
    gg = bg.gamma_gamma_params_
    assert (f"{gg['p']:.3g}", f"{gg['q']:.3g}", f"{gg['v']:.4g}") == ("6.25", "3.74", "15.44")
    pareto = _published_fit("paretonbd", **as_published).purchase_params_
    assert [f"{pareto[k]:.4g}" for k in ("r", "alpha", "s", "beta")] == [
        "0.5533", "10.58", "0.6062", "11.67"
    ]  # fmt: skip
    # Dropping the zero-value orders moves BG/NBD's r off the published 0.243 ...
    no_zeros = _published_fit("bgnbd", zero_amounts="drop", drop_duplicates=False)
    assert f"{no_zeros.purchase_params_['r']:.3g}" == "0.244"
    # ... and dropping the repeated rows moves Gamma-Gamma (purchases are unchanged:
    # a repeated row falls on a day that already has a purchase).
    deduplicated = _published_fit("bgnbd", zero_amounts="keep", drop_duplicates=True)
    assert deduplicated.purchase_params_ == pytest.approx(bg.purchase_params_, rel=1e-9)
    moved = deduplicated.gamma_gamma_params_
    assert (f"{moved['p']:.3g}", f"{moved['v']:.4g}") == ("6.28", "15.35")


# ------------------------------------------------------------ engine equality


@pytest.mark.parametrize("data", ["cdnow_rfm", "simulated_rfm"])
def test_both_engines_and_plain_lifetimes_give_the_same_parameters(request, data):
    rfm = request.getfixturevalue(data)
    unit = "W" if data == "cdnow_rfm" else "D"
    fast = CLVModel(time_unit=unit).fit(rfm)
    reference = CLVModel(time_unit=unit, engine="lifetimes").fit(rfm)
    _assert_rel(list(fast.bgnbd_params_.values()), list(reference.bgnbd_params_.values()), 1e-6)
    _assert_rel(
        list(fast.gamma_gamma_params_.values()),
        list(reference.gamma_gamma_params_.values()),
        1e-6,
    )
    # And against lifetimes called directly, as a user of lifetimes would.
    bgf = _lifetimes(lambda: BetaGeoFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"]))
    repeat = rfm[rfm["frequency"] > 0]
    ggf = _lifetimes(lambda: GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"]))
    _assert_rel(list(fast.bgnbd_params_.values()), bgf.params_.to_numpy(), 1e-6)
    _assert_rel(list(fast.gamma_gamma_params_.values()), ggf.params_.to_numpy(), 1e-6)
    # Standard errors: lifetimes' autograd Hessian vs central differences here.
    _assert_rel(list(fast.bgnbd_standard_errors_.values()), bgf.standard_errors_, 1e-4)
    _assert_rel(list(fast.gamma_gamma_standard_errors_.values()), ggf.standard_errors_, 1e-4)


def test_penalised_fits_match_lifetimes_penalised_fits(cdnow_rfm):
    fast = CLVModel(time_unit="W", penalizer_coef=0.01).fit(cdnow_rfm)
    bgf = _lifetimes(
        lambda: BetaGeoFitter(penalizer_coef=0.01).fit(
            cdnow_rfm["frequency"], cdnow_rfm["recency"], cdnow_rfm["T"]
        )
    )
    _assert_rel(list(fast.bgnbd_params_.values()), bgf.params_.to_numpy(), 1e-6)
    assert fast.bgnbd_penalizer_coef_ == 0.01


# ------------------------------------------------------- predictions vs lifetimes


@pytest.mark.parametrize("model_name", ["cdnow_model", "simulated_model"])
def test_predictions_equal_lifetimes_to_1e9(request, model_name):
    model = request.getfixturevalue(model_name)
    rfm = request.getfixturevalue("cdnow_rfm" if model_name == "cdnow_model" else "simulated_rfm")
    bgf, ggf = _reference_fitters(model)
    f, r, T, m = (rfm[c] for c in ("frequency", "recency", "T", "monetary_value"))
    horizon = model.horizon_months * model.periods_per_month

    predicted = model.predict(rfm)
    expected_purchases = _lifetimes(
        lambda: bgf.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, T)
    )
    _assert_rel(predicted["expected_purchases"], expected_purchases, 1e-9)
    _assert_rel(predicted["p_alive"], bgf.conditional_probability_alive(f, r, T), 1e-9)
    _assert_rel(predicted["expected_spend"], ggf.conditional_expected_average_profit(f, m), 1e-9)
    clv = _lifetimes(
        lambda: ggf.customer_lifetime_value(
            bgf,
            f,
            r,
            T,
            m,
            time=model.horizon_months,
            discount_rate=model.monthly_discount_rate,
            freq=model.time_unit,
        )
    )
    _assert_rel(predicted["clv"], clv, 1e-9)
    assert predicted.index.equals(rfm.index)


def test_expected_purchases_accepts_one_horizon_per_customer(cdnow_model, cdnow_rfm):
    bgf, _ = _reference_fitters(cdnow_model)
    horizons = np.linspace(1.0, 100.0, len(cdnow_rfm))
    got = cdnow_model.expected_purchases(cdnow_rfm, horizon=horizons)
    want = bgf.conditional_expected_number_of_purchases_up_to_time(
        horizons, cdnow_rfm["frequency"], cdnow_rfm["recency"], cdnow_rfm["T"]
    )
    _assert_rel(got, want, 1e-9)


def test_repeat_purchase_pmf_equals_lifetimes_eq8(cdnow_model):
    bgf, _ = _reference_fitters(cdnow_model)
    pmf = cdnow_model.repeat_purchase_pmf(39.0, 10)
    want = [
        _lifetimes(lambda n=n: bgf.probability_of_n_purchases_up_to_time(39.0, n))
        for n in range(11)
    ]
    _assert_rel(pmf, want, 1e-9)


def test_customers_without_repeat_purchase_are_not_presented_as_safe(cdnow_model, cdnow_rfm):
    predicted = cdnow_model.predict(cdnow_rfm)
    one_time = cdnow_rfm["frequency"] == 0
    # BG/NBD: no repeat purchase, no evidence of drop-out, P(alive) is 1 by construction.
    assert (predicted.loc[one_time, "p_alive"] == 1.0).all()
    assert not predicted.loc[one_time, "has_repeat_purchase"].any()
    assert predicted.loc[~one_time, "has_repeat_purchase"].all()
    p, q, v = cdnow_model.gamma_gamma_params_.values()
    np.testing.assert_allclose(predicted.loc[one_time, "expected_spend"], v * p / (q - 1))


# -------------------------------------------------------------------- uncertainty


def test_documents_with_the_retired_interval_settings_still_load(cdnow_model, cdnow_rfm):
    # CLVModel.clv_interval (parameter uncertainty only) is retired in favour of
    # segml.models._predictive.clv_predictive_interval (process + parameter
    # uncertainty); models saved with its settings load and predict as before.
    assert not hasattr(cdnow_model, "clv_interval")
    assert {"interval_level", "n_draws", "random_state"}.isdisjoint(cdnow_model.get_params())
    document = cdnow_model.to_dict()
    document["hyperparameters"].update(interval_level=0.9, n_draws=200, random_state=3)
    loaded = CLVModel.from_dict(document)
    pd.testing.assert_frame_equal(loaded.predict(cdnow_rfm), cdnow_model.predict(cdnow_rfm))
    assert loaded.get_params() == cdnow_model.get_params()


def test_standard_errors_shrink_with_more_customers():
    small = rfm_summary(simulate_transactions(1000, seed=1), as_of="2021-12-31")
    large = rfm_summary(simulate_transactions(4000, seed=1), as_of="2021-12-31")
    se_small = CLVModel().fit(small).bgnbd_standard_errors_
    se_large = CLVModel().fit(large).bgnbd_standard_errors_
    # Roughly 1/sqrt(n): four times the customers, about half the error.
    for name in ("r", "a", "b"):
        assert 0.3 < se_large[name] / se_small[name] < 0.75


# -------------------------------------------------------------------- persistence


def test_round_trip_through_json_predicts_identically(cdnow_model, cdnow_rfm, tmp_path):
    document = json.loads(json.dumps(cdnow_model.to_dict()))
    loaded = CLVModel.from_dict(document)
    pd.testing.assert_frame_equal(loaded.predict(cdnow_rfm), cdnow_model.predict(cdnow_rfm))
    assert loaded.bgnbd_standard_errors_ == cdnow_model.bgnbd_standard_errors_
    np.testing.assert_array_equal(
        loaded.gamma_gamma_log_covariance_, cdnow_model.gamma_gamma_log_covariance_
    )
    assert document["versions"]["numpy"] == np.__version__

    path = tmp_path / "clv.json"
    cdnow_model.save(path)
    reloaded = CLVModel.load(path)
    pd.testing.assert_series_equal(reloaded.clv(cdnow_rfm), cdnow_model.clv(cdnow_rfm))
    assert reloaded.get_params() == cdnow_model.get_params()


def test_loading_something_else_fails_clearly(tmp_path):
    with pytest.raises(PersistenceError, match="Not a saved segml.CLVModel"):
        CLVModel.from_dict({"format": "segml.SegmentModel"})
    with pytest.raises(PersistenceError, match="format_version 99"):
        CLVModel.from_dict({"format": "segml.CLVModel", "format_version": 99})
    with pytest.raises(PersistenceError, match="incomplete or damaged"):
        CLVModel.from_dict({"format": "segml.CLVModel", "format_version": 1})


def test_scikit_learn_conventions(cdnow_rfm):
    model = CLVModel(time_unit="W", penalizer_coef=0.001)
    assert clone(model).get_params() == model.get_params()
    assert model.fit(cdnow_rfm) is model
    fitted_state = [k for k in vars(model) if k.endswith("_")]
    # No copy of the training data on the model: only small parameter objects.
    assert all(not isinstance(vars(model)[k], pd.DataFrame | pd.Series) for k in fitted_state)
    assert all(np.asarray(vars(model)[k]).size <= 16 for k in fitted_state)


def test_importing_the_model_does_not_import_lifetimes():
    code = "import sys, segml.models.clv; print('lifetimes' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="."
    )
    assert out.stdout.strip() == "False"
    assert out.stderr == ""


# ------------------------------------------------------------------ failure modes


def _tiny_rfm(**overrides):
    rfm = pd.DataFrame(
        {
            "frequency": [0.0, 2.0, 3.0],
            "recency": [0.0, 5.0, 9.0],
            "T": [10.0, 10.0, 12.0],
            "monetary_value": [0.0, 20.0, 30.0],
        }
    )
    for column, values in overrides.items():
        rfm[column] = values
    return rfm


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"T": [10.0, -1.0, 12.0]}, r"Column 'T' has 1 negative value\(s\) out of 3 rows"),
        ({"recency": [0.0, 11.0, 13.0]}, r"'recency' exceeds 'T' in 2 of 3 rows"),
        ({"frequency": [0.0, 2.5, 3.0]}, r"'frequency' has 1 non-integer value\(s\) out of 3"),
        ({"monetary_value": [0.0, np.nan, 30.0]}, r"'monetary_value' has 1 missing or infinite"),
        ({"recency": [1.0, 5.0, 9.0]}, r"non-zero for 1 customer\(s\) with frequency 0"),
    ],
)
def test_bad_rfm_values_are_named_and_counted(overrides, message):
    with pytest.raises(CLVInputError, match=message):
        CLVModel(min_repeat_customers=1).fit(_tiny_rfm(**overrides))


def test_missing_columns_are_named(cdnow_model):
    with pytest.raises(CLVInputError, match=r"lacks the column\(s\) \['monetary_value'\]"):
        cdnow_model.clv(_tiny_rfm().drop(columns="monetary_value"))
    # Purchases and P(alive) do not need spend.
    assert len(cdnow_model.p_alive(_tiny_rfm().drop(columns="monetary_value"))) == 3


def test_too_few_repeat_customers_for_gamma_gamma():
    with pytest.raises(CLVInputError, match=r"Only 2 of 3 customers have a repeat purchase"):
        CLVModel().fit(_tiny_rfm())


def test_non_positive_spend_among_repeat_buyers(cdnow_rfm):
    rfm = cdnow_rfm.copy()
    repeat_ids = rfm.index[rfm["frequency"] > 0][:3]
    rfm.loc[repeat_ids, "monetary_value"] = [0.0, -5.0, 0.0]
    with pytest.raises(CLVInputError, match=r"'monetary_value' is <= 0 for 3 of 946 repeat"):
        CLVModel(time_unit="W").fit(rfm)


def test_spend_that_grows_with_frequency_is_warned_and_reported(cdnow_rfm):
    rfm = cdnow_rfm.copy()
    repeat = rfm["frequency"] > 0
    # Same spend values, handed out so that the most frequent buyers spend the most.
    ranked = np.sort(rfm.loc[repeat, "monetary_value"].to_numpy())
    order = np.argsort(rfm.loc[repeat, "frequency"].to_numpy(), kind="stable")
    spend = np.empty_like(ranked)
    spend[order] = ranked
    rfm.loc[repeat, "monetary_value"] = spend
    correlation = np.corrcoef(rfm.loc[repeat, "frequency"], spend)[0, 1]
    with pytest.warns(SpendFrequencyCorrelationWarning, match=f"correlation {correlation:.3f}"):
        model = CLVModel(time_unit="W").fit(rfm)
    assert model.frequency_spend_correlation_ == pytest.approx(correlation)
    assert correlation > 0.3
    # CDNOW itself: weak correlation (0.11), no warning (warnings are errors here).
    assert abs(CLVModel(time_unit="W").fit(cdnow_rfm).frequency_spend_correlation_) < 0.3


def _homogeneous_rate_rfm(n=300, seed=1, rate_per_week=0.3, T_weeks=52.0):
    """Every customer buys at the same rate: r and alpha run off to infinity unpenalised."""
    rng = np.random.default_rng(seed)
    p_drop = rng.beta(2, 6, n)
    frequency, recency = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while (t := t + rng.exponential(1 / rate_per_week)) <= T_weeks:
            frequency[i] += 1
            recency[i] = t
            if rng.random() < p_drop[i]:
                break
    monetary = np.where(frequency > 0, rng.gamma(6.0, 4.0, n), 0.0)
    return pd.DataFrame(
        {"frequency": frequency, "recency": recency, "T": T_weeks, "monetary_value": monetary}
    )


@pytest.mark.parametrize("engine", ["segml", "lifetimes"])
def test_non_convergence_retries_with_a_penalizer_and_says_so(engine):
    rfm = _homogeneous_rate_rfm()
    # lifetimes itself fails on these data without a penalizer.
    with pytest.raises(ConvergenceError):
        _lifetimes(lambda: BetaGeoFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"]))
    with pytest.warns(
        PenalizerRetryWarning, match=r"BG/NBD did not converge with penalizer_coef=0\.0"
    ):
        model = CLVModel(time_unit="W", engine=engine).fit(rfm)
    assert model.bgnbd_penalizer_coef_ == 0.001
    assert model.gamma_gamma_penalizer_coef_ == 0.0
    reference = _lifetimes(
        lambda: BetaGeoFitter(penalizer_coef=0.001).fit(rfm["frequency"], rfm["recency"], rfm["T"])
    )
    for name in ("r", "alpha", "a", "b"):
        assert model.bgnbd_params_[name] == pytest.approx(reference.params_[name], rel=1e-5)


def test_no_convergence_at_all_fails_clearly(cdnow_rfm):
    with pytest.raises(
        CLVConvergenceError, match=r"penalizer_coef=0\.0: no optimum within max_iter=2"
    ):
        CLVModel(time_unit="W", max_iter=2).fit(cdnow_rfm)
    with pytest.raises(CLVConvergenceError, match="with any penalizer tried"):
        CLVModel(penalizer_retries=()).fit(_homogeneous_rate_rfm())


def test_bad_hyperparameters_are_rejected_at_fit(cdnow_rfm):
    with pytest.raises(CLVInputError, match="time_unit must be one of"):
        CLVModel(time_unit="weeks").fit(cdnow_rfm)
    with pytest.raises(CLVInputError, match="horizon_months must be a positive whole number"):
        CLVModel(horizon_months=1.5).fit(cdnow_rfm)
    with pytest.raises(CLVInputError, match="engine must be one of"):
        CLVModel(engine="pymc").fit(cdnow_rfm)


def test_horizon_must_fit_the_customers(cdnow_model, cdnow_rfm):
    with pytest.raises(CLVInputError, match=r"one per customer \(2357\), got shape \(3,\)"):
        cdnow_model.expected_purchases(cdnow_rfm, horizon=[1.0, 2.0, 3.0])
    with pytest.raises(CLVInputError, match="horizon must be finite and >= 0"):
        cdnow_model.expected_purchases(cdnow_rfm, horizon=-1.0)


# ------------------------------------------------------ holdout and simple formula


def test_holdout_metrics_match_a_direct_computation(cdnow_model, cdnow_cal):
    metrics = holdout_metrics(cdnow_model, cdnow_cal)
    bgf, ggf = _reference_fitters(cdnow_model)
    predicted = bgf.conditional_expected_number_of_purchases_up_to_time(
        39.0, cdnow_cal["frequency_cal"], cdnow_cal["recency_cal"], cdnow_cal["T_cal"]
    )
    actual = cdnow_cal["frequency_holdout"]
    assert metrics["purchases_mae"] == pytest.approx(np.mean(np.abs(predicted - actual)), rel=1e-9)
    assert metrics["purchases_rmse"] == pytest.approx(
        np.sqrt(np.mean((predicted - actual) ** 2)), rel=1e-9
    )
    assert metrics["purchases_total_error_pct"] == pytest.approx(
        100 * (predicted.sum() - actual.sum()) / actual.sum(), rel=1e-9
    )
    spend = predicted * ggf.conditional_expected_average_profit(
        cdnow_cal["frequency_cal"], cdnow_cal["monetary_value_cal"]
    )
    actual_spend = actual * cdnow_cal["monetary_value_holdout"]
    assert metrics["spend_total_error_pct"] == pytest.approx(
        100 * (spend.sum() - actual_spend.sum()) / actual_spend.sum(), rel=1e-9
    )
    assert metrics["n_customers"] == 2357


def test_simple_clv_formula():
    assert simple_clv(50.0, 4.0, 3.0, acquisition_cost=100.0) == 500.0
    series = simple_clv(pd.Series([10.0, 20.0], index=["a", "b"]), 2.0, 1.0)
    pd.testing.assert_series_equal(series, pd.Series([20.0, 40.0], index=["a", "b"]))
    with pytest.raises(ValueError, match=r"purchases_per_year has 1 negative or non-finite"):
        simple_clv(10.0, [1.0, -1.0], 2.0)


def test_distinct_rows_reconstructs_and_counts():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 500).astype(float)
    b = rng.integers(0, 3, 500) * 0.5
    (ua, ub), inverse, counts = distinct_rows(a, b)
    np.testing.assert_array_equal(ua[inverse], a)
    np.testing.assert_array_equal(ub[inverse], b)
    assert counts.sum() == 500
    assert len(ua) == len(set(zip(a.tolist(), b.tolist(), strict=True)))


# ------------------------------------------------ property: any history, any parameters


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    params=st.tuples(
        st.floats(0.05, 5.0), st.floats(0.1, 200.0), st.floats(0.1, 5.0), st.floats(0.1, 10.0)
    ),
    frequency=arrays(np.int64, 20, elements=st.integers(0, 300)),
    age=arrays(np.float64, 20, elements=st.floats(1.0, 1500.0)),
    share=arrays(np.float64, 20, elements=st.floats(0.0, 1.0)),
    horizon=st.floats(0.0, 1000.0),
)
def test_predictions_equal_lifetimes_for_any_history(params, frequency, age, share, horizon):
    """Includes histories where lifetimes' hypergeometric series overflows (its fallback)."""
    from segml.models import _bgnbd

    x = frequency.astype(float)
    recency = np.where(x > 0, share * age, 0.0)
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(params, index=["r", "alpha", "a", "b"])
    with np.errstate(all="ignore"):
        want = bgf.conditional_expected_number_of_purchases_up_to_time(horizon, x, recency, age)
        got = _bgnbd.expected_purchases(params, x, recency, age, horizon)
        want_alive = bgf.conditional_probability_alive(x, recency, age)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300, equal_nan=True)
    np.testing.assert_allclose(
        _bgnbd.p_alive(params, x, recency, age), want_alive, rtol=1e-9, atol=0
    )


def test_hypergeometric_overflow_uses_lifetimes_fallback(cdnow_model):
    from scipy.special import hyp2f1

    r, alpha, a, b = cdnow_model.bgnbd_params_.values()
    x, T, horizon = 331.0, 152.0, 1600.0
    assert np.isinf(hyp2f1(r + x, b + x, a + b + x - 1, horizon / (alpha + T + horizon)))
    rfm = pd.DataFrame({"frequency": [x], "recency": [150.0], "T": [T]})
    bgf, _ = _reference_fitters(cdnow_model)
    want = bgf.conditional_expected_number_of_purchases_up_to_time(horizon, x, 150.0, T)
    got = cdnow_model.expected_purchases(rfm, horizon=horizon).iloc[0]
    assert np.isfinite(got)
    assert got == pytest.approx(want, rel=1e-9)


# ------------------------------------------------------------- sample_weight


@pytest.mark.parametrize("purchase_model", ["bgnbd", "mbgnbd", "paretonbd"])
def test_distinct_rows_with_counts_fit_as_the_expanded_table(cdnow_rfm, purchase_model):
    # A Spark job fits from distinct (frequency, recency, T, monetary_value) rows with
    # their counts: the same fit, to rounding, as one row per customer.
    rows = cdnow_rfm.iloc[:800]
    counts = np.random.default_rng(0).integers(0, 5, len(rows))  # some rows stand for none
    expanded = rows.loc[rows.index.repeat(counts)]
    weighted = CLVModel(time_unit="W", purchase_model=purchase_model).fit(
        rows, sample_weight=counts
    )
    plain = CLVModel(time_unit="W", purchase_model=purchase_model).fit(expanded)
    _assert_rel(
        list(weighted.purchase_params_.values()), list(plain.purchase_params_.values()), 1e-8
    )
    _assert_rel(
        list(weighted.gamma_gamma_params_.values()), list(plain.gamma_gamma_params_.values()), 1e-8
    )
    assert weighted.n_customers_ == len(expanded) == counts.sum()
    assert weighted.n_repeat_customers_ == plain.n_repeat_customers_
    assert weighted.purchase_log_likelihood_ == pytest.approx(
        plain.purchase_log_likelihood_, rel=1e-10
    )
    assert weighted.frequency_spend_correlation_ == pytest.approx(
        plain.frequency_spend_correlation_, rel=1e-10
    )
    np.testing.assert_allclose(
        weighted.purchase_log_covariance_, plain.purchase_log_covariance_, rtol=1e-4
    )
    np.testing.assert_allclose(
        weighted.gamma_gamma_log_covariance_, plain.gamma_gamma_log_covariance_, rtol=1e-4
    )


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.full(10, 1.5), r"whole numbers >= 0.*10 of 10 values are not \(e\.g\. 1\.5\)"),
        (np.r_[-1.0, np.ones(9)], r"whole numbers >= 0.*1 of 10 values"),
        (np.r_[np.nan, np.ones(9)], r"whole numbers >= 0.*1 of 10 values"),
        (np.ones(9), r"one value per row of rfm \(10\), got shape \(9,\)"),
        (np.zeros(10), r"0 for all 10 rows"),
        (np.array(["a"] * 10), r"must hold numbers"),
    ],
)
def test_bad_sample_weight_is_named(cdnow_rfm, weights, message):
    with pytest.raises(CLVInputError, match=message):
        CLVModel(time_unit="W").fit(cdnow_rfm.iloc[:10], sample_weight=weights)


def test_sample_weight_needs_the_segml_engine(cdnow_rfm):
    with pytest.raises(CLVInputError, match="engine='segml' only"):
        CLVModel(time_unit="W", engine="lifetimes").fit(
            cdnow_rfm, sample_weight=np.ones(len(cdnow_rfm))
        )
