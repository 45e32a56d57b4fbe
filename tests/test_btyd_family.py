"""MBG/NBD and Pareto/NBD in CLVModel: published numbers and equality with lifetimes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from segml.datasets import simulate_transactions
from segml.features import rfm_summary
from segml.models import CLVModel, _bgnbd, _mbgnbd, _paretonbd
from segml.persistence import PersistenceError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

FITTERS = {"mbgnbd": ModifiedBetaGeoFitter, "paretonbd": ParetoNBDFitter}


def _lifetimes(call):
    """Run lifetimes code with its global FutureWarning filter contained."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


def _assert_rel(actual, expected, rtol):
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=0
    )


@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    """lifetimes' CDNOW sample summary (2,357 customers, weeks), with spend for CLV."""
    return load_cdnow_summary_data_with_monetary_value().astype(float)


@pytest.fixture(scope="module")
def simulated_rfm() -> pd.DataFrame:
    return rfm_summary(simulate_transactions(2000, seed=11), as_of="2021-12-31")  # days


def _lifetimes_fit(name, rfm):
    f, r, T = rfm["frequency"], rfm["recency"], rfm["T"]
    if name == "paretonbd":
        # lifetimes' default Nelder-Mead stops at tol=1e-4 from a random start; asked to
        # converge from a fixed start it finds the same optimum as segml.
        return _lifetimes(
            lambda: ParetoNBDFitter().fit(
                f, r, T, initial_params=np.ones(4), tol=1e-12, maxiter=20000
            )
        )
    return _lifetimes(lambda: ModifiedBetaGeoFitter().fit(f, r, T))


@pytest.fixture(scope="module")
def references(cdnow_summary, simulated_rfm):
    """lifetimes fits, once per module: {(model, data): fitter}."""
    return {
        (name, data): _lifetimes_fit(name, rfm)
        for name in FITTERS
        for data, rfm in (("cdnow", cdnow_summary), ("simulated", simulated_rfm))
    }


@pytest.fixture(scope="module")
def fitted(cdnow_summary, simulated_rfm):
    return {
        (name, data): CLVModel(time_unit=unit, purchase_model=name).fit(rfm)
        for name in FITTERS
        for data, rfm, unit in (
            ("cdnow", cdnow_summary, "W"),
            ("simulated", simulated_rfm, "D"),
        )
    }


# ------------------------------------------------------------- published numbers


def test_pareto_nbd_reproduces_the_published_cdnow_estimates(fitted):
    # Fader, Hardie & Lee (2005), CDNOW sample, 39-week calibration period.
    params = fitted[("paretonbd", "cdnow")].purchase_params_
    assert f"{params['r']:.3g}" == "0.553"
    assert f"{params['alpha']:.4g}" == "10.58"
    assert f"{params['s']:.3g}" == "0.606"
    assert f"{params['beta']:.4g}" == "11.67"
    # FHL 2005 report LL = -9595.0 for Pareto/NBD (and -9582.4 for BG/NBD).
    assert fitted[("paretonbd", "cdnow")].purchase_log_likelihood_ == pytest.approx(
        -9595.0, abs=0.05
    )


# ------------------------------------------------------------ lifetimes equality


@pytest.mark.parametrize("data", ["cdnow", "simulated"])
@pytest.mark.parametrize("name", list(FITTERS))
def test_parameters_equal_lifetimes(fitted, references, name, data):
    model, reference = fitted[(name, data)], references[(name, data)]
    _assert_rel(list(model.purchase_params_.values()), reference.params_.to_numpy(), 1e-6)
    assert model.purchase_model_ == name


@pytest.mark.parametrize("data", ["cdnow", "simulated"])
def test_mbgnbd_standard_errors_equal_lifetimes(fitted, references, data):
    model, reference = fitted[("mbgnbd", data)], references[("mbgnbd", data)]
    # lifetimes' autograd Hessian vs central differences of the analytic gradient here.
    _assert_rel(list(model.purchase_standard_errors_.values()), reference.standard_errors_, 1e-4)


def test_pareto_nbd_standard_errors_are_finite_and_shrink_with_data(fitted, simulated_rfm):
    # lifetimes reports no standard errors for Pareto/NBD; the Hessian here must be a bowl.
    errors = fitted[("paretonbd", "simulated")].purchase_standard_errors_
    assert all(np.isfinite(v) and v > 0 for v in errors.values())
    half = CLVModel(purchase_model="paretonbd").fit(simulated_rfm.iloc[::2])
    for name in ("r", "alpha"):
        assert 1.1 < half.purchase_standard_errors_[name] / errors[name] < 1.8


def _with_params(model, reference):
    """The model carrying lifetimes' own parameters, so predictions compare exactly."""
    document = model.to_dict()
    document["purchase_params"] = {k: float(v) for k, v in reference.params_.items()}
    return CLVModel.from_dict(document)


@pytest.mark.parametrize("data", ["cdnow", "simulated"])
@pytest.mark.parametrize("name", list(FITTERS))
def test_predictions_equal_lifetimes_to_1e9(
    fitted, references, cdnow_summary, simulated_rfm, name, data
):
    rfm = cdnow_summary if data == "cdnow" else simulated_rfm
    reference = references[(name, data)]
    model = _with_params(fitted[(name, data)], reference)
    f, r, T, m = (rfm[c] for c in ("frequency", "recency", "T", "monetary_value"))
    horizon = model.horizon_months * model.periods_per_month
    predicted = model.predict(rfm)
    _assert_rel(
        predicted["expected_purchases"],
        _lifetimes(
            lambda: reference.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, T)
        ),
        1e-9,
    )
    _assert_rel(
        predicted["p_alive"],
        _lifetimes(lambda: reference.conditional_probability_alive(f, r, T)),
        1e-9,
    )
    # One horizon per customer.
    horizons = np.linspace(1.0, 100.0, len(rfm))
    _assert_rel(
        model.expected_purchases(rfm, horizon=horizons),
        _lifetimes(
            lambda: reference.conditional_expected_number_of_purchases_up_to_time(horizons, f, r, T)
        ),
        1e-9,
    )
    _assert_rel(
        model.expected_purchases_new_customer([10.0, 39.0, 78.0]),
        [reference.expected_number_of_purchases_up_to_time(t) for t in (10.0, 39.0, 78.0)],
        1e-9,
    )
    # CLV: lifetimes' customer_lifetime_value with the same Gamma-Gamma parameters.
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series(model.gamma_gamma_params_)[["p", "q", "v"]]
    reference.predict = reference.conditional_expected_number_of_purchases_up_to_time
    clv = _lifetimes(
        lambda: ggf.customer_lifetime_value(
            reference,
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


def test_mbgnbd_pmf_equals_lifetimes(fitted, references):
    reference = references[("mbgnbd", "cdnow")]
    model = _with_params(fitted[("mbgnbd", "cdnow")], reference)
    want = [
        _lifetimes(lambda n=n: reference.probability_of_n_purchases_up_to_time(39.0, n))
        for n in range(11)
    ]
    _assert_rel(model.repeat_purchase_pmf(39.0, 10), want, 1e-9)


def test_pareto_nbd_pmf_sums_to_one_with_the_model_mean(fitted):
    model = fitted[("paretonbd", "cdnow")]
    pmf = model.repeat_purchase_pmf(39.0, 400)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert (pmf >= 0).all()
    mean = float(np.dot(np.arange(401), pmf))
    assert mean == pytest.approx(float(model.expected_purchases_new_customer(39.0)), rel=1e-9)


def test_one_time_buyers_can_be_dead_under_mbgnbd_and_pareto_nbd(fitted, cdnow_summary):
    one_time = cdnow_summary["frequency"] == 0
    for name in FITTERS:
        p_alive = fitted[(name, "cdnow")].p_alive(cdnow_summary)
        assert (p_alive[one_time] < 1).all()
        # The longer since the first purchase, the less likely alive.
        ordered = p_alive[one_time].groupby(cdnow_summary.loc[one_time, "T"]).first()
        assert ordered.is_monotonic_decreasing


def test_log_likelihood_is_the_one_the_fit_maximised(fitted, cdnow_summary):
    model = fitted[("mbgnbd", "cdnow")]
    assert model.log_likelihood(cdnow_summary) == pytest.approx(
        model.purchase_log_likelihood_, rel=1e-12
    )
    # Moving any parameter lowers it.
    base = model.purchase_log_likelihood_
    for key, value in model.purchase_params_.items():
        document = model.to_dict()
        document["purchase_params"] = {**model.purchase_params_, key: value * 1.01}
        assert CLVModel.from_dict(document).log_likelihood(cdnow_summary) < base


def test_fitting_distinct_rows_equals_fitting_every_customer():
    # The likelihood summed over distinct rows with counts is the per-customer sum.
    rfm = rfm_summary(simulate_transactions(400, seed=5), as_of="2021-12-31")
    f, r, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    for module, params in ((_mbgnbd, (0.5, 30.0, 0.8, 2.0)), (_paretonbd, (0.6, 40.0, 0.7, 200.0))):
        total = module.log_likelihood(params, f, r, T)
        one_by_one = sum(
            module.log_likelihood(params, f[i : i + 1], r[i : i + 1], T[i : i + 1])
            for i in range(len(f))
        )
        assert total == pytest.approx(one_by_one, rel=1e-10)


def test_pareto_nbd_both_hypergeometric_branches_agree_at_the_boundary():
    # eq. 19 (alpha >= beta) and eq. 20 (beta > alpha) are the same function.
    f, r, T = np.array([0.0, 2.0, 7.0]), np.array([0.0, 10.0, 30.0]), np.array([40.0, 40.0, 40.0])
    above = _paretonbd.log_likelihood((0.5, 10.0 + 1e-9, 0.6, 10.0), f, r, T)
    below = _paretonbd.log_likelihood((0.5, 10.0, 0.6, 10.0 + 1e-9), f, r, T)
    assert above == pytest.approx(below, rel=1e-9)


# -------------------------------------------------------------------- persistence


@pytest.mark.parametrize("name", list(FITTERS))
def test_round_trip_names_the_model_and_predicts_identically(fitted, cdnow_summary, name):
    model = fitted[(name, "cdnow")]
    document = json.loads(json.dumps(model.to_dict()))
    assert document["format_version"] == 2
    assert document["purchase_model"] == name
    loaded = CLVModel.from_dict(document)
    pd.testing.assert_frame_equal(loaded.predict(cdnow_summary), model.predict(cdnow_summary))
    assert loaded.purchase_standard_errors_ == model.purchase_standard_errors_
    with pytest.raises(AttributeError, match="exists only for a BG/NBD purchase model"):
        loaded.bgnbd_params_  # noqa: B018


def test_version_1_documents_still_load_as_bgnbd(cdnow_summary):
    version_1 = {
        "format": "segml.CLVModel",
        "format_version": 1,
        "hyperparameters": {
            "time_unit": "W",
            "horizon_months": 12,
            "monthly_discount_rate": 0.01,
            "penalizer_coef": 0.0,
            "penalizer_retries": [],
            "engine": "segml",
            "max_iter": 1000,
            "min_repeat_customers": 20,
            "max_spend_frequency_correlation": 0.3,
            "interval_level": 0.9,
            "n_draws": 200,
            "random_state": None,
        },
        "bgnbd_params": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
        "bgnbd_standard_errors": {"r": 0.013, "alpha": 0.378, "a": 0.186, "b": 0.705},
        "bgnbd_log_covariance": np.diag([0.0027, 0.0073, 0.055, 0.085]).tolist(),
        "bgnbd_penalizer_coef": 0.0,
        "gamma_gamma_params": {"p": 6.25, "q": 3.74, "v": 15.44},
        "gamma_gamma_standard_errors": {"p": 1.19, "q": 0.29, "v": 4.16},
        "gamma_gamma_log_covariance": np.diag([0.036, 0.006, 0.073]).tolist(),
        "gamma_gamma_penalizer_coef": 0.0,
        "n_customers": 2357,
        "n_repeat_customers": 946,
        "frequency_spend_correlation": 0.11,
        "versions": {},
    }
    model = CLVModel.from_dict(version_1)
    assert model.purchase_model_ == "bgnbd" and model.purchase_model == "bgnbd"
    assert "n_draws" not in model.get_params()  # the retired clv_interval's settings
    assert model.bgnbd_params_ == version_1["bgnbd_params"]
    assert model.to_dict()["format_version"] == 2
    assert model.predict(cdnow_summary)["p_alive"].notna().all()
    with pytest.raises(PersistenceError, match="format_version 3"):
        CLVModel.from_dict({**version_1, "format_version": 3})
    with pytest.raises(PersistenceError, match="unknown purchase_model 'nbd'"):
        CLVModel.from_dict({**CLVModel.from_dict(version_1).to_dict(), "purchase_model": "nbd"})


@pytest.mark.parametrize("name", list(FITTERS))
def test_engine_lifetimes_gives_the_same_model(cdnow_summary, fitted, name):
    reference = CLVModel(time_unit="W", purchase_model=name, engine="lifetimes").fit(cdnow_summary)
    # lifetimes' own stopping rules: MBG/NBD tol 1e-7, Pareto/NBD Nelder-Mead tol 1e-4.
    rtol = 1e-6 if name == "mbgnbd" else 1e-3
    _assert_rel(
        list(reference.purchase_params_.values()),
        list(fitted[(name, "cdnow")].purchase_params_.values()),
        rtol,
    )


def test_unknown_purchase_model_is_refused(cdnow_summary):
    from segml.models import CLVInputError

    with pytest.raises(CLVInputError, match=r"purchase_model must be one of \['bgnbd', "):
        CLVModel(purchase_model="pareto").fit(cdnow_summary)


# --------------------------------------------------------------------------- BG/BB


@pytest.fixture(scope="module")
def donations():
    """Fader, Hardie & Shang's (2010) donation data as lifetimes ships it (22 rows, counts)."""
    from lifetimes.datasets import load_donations

    return load_donations().rename(columns={"periods": "n_periods", "weights": "count"})


@pytest.fixture(scope="module")
def bgbb(donations):
    from segml.models import BGBBModel

    return BGBBModel().fit(donations)


@pytest.fixture(scope="module")
def bgbb_reference(donations):
    from lifetimes import BetaGeoBetaBinomFitter

    d = donations
    return _lifetimes(
        lambda: BetaGeoBetaBinomFitter().fit(
            d["frequency"], d["recency"], d["n_periods"], weights=d["count"]
        )
    )


def test_bgbb_reproduces_the_published_donation_estimates(bgbb):
    # Fader, Hardie & Shang (2010), Table 2.
    p = bgbb.params_
    assert [f"{p[k]:.4g}" for k in ("alpha", "beta", "gamma", "delta")] == [
        "1.204", "0.7497", "0.6567", "2.783",
    ]  # fmt: skip
    assert (round(p["beta"], 3), round(p["gamma"], 3)) == (0.750, 0.657)
    assert bgbb.log_likelihood_ == pytest.approx(-33225.6, abs=0.05)
    assert bgbb.n_customers_ == 11104


def test_bgbb_equals_lifetimes(bgbb, bgbb_reference, donations):
    _assert_rel(list(bgbb.params_.values()), bgbb_reference.params_.to_numpy(), 1e-6)
    # Standard errors: lifetimes' autograd Hessian vs second differences here.
    _assert_rel(list(bgbb.standard_errors_.values()), bgbb_reference.standard_errors_, 1e-3)
    from segml.models import BGBBModel

    document = bgbb.to_dict()
    document["params"] = {k: float(v) for k, v in bgbb_reference.params_.items()}
    model = BGBBModel.from_dict(json.loads(json.dumps(document)))
    d = donations
    for m in (1, 5, 10):
        _assert_rel(
            model.expected_purchases(d, m),
            bgbb_reference.conditional_expected_number_of_purchases_up_to_time(
                m, d["frequency"], d["recency"], d["n_periods"]
            ),
            1e-9,
        )
        _assert_rel(
            model.p_alive(d, m),
            bgbb_reference.conditional_probability_alive(
                m, d["frequency"], d["recency"], d["n_periods"]
            ),
            1e-9,
        )
    expected_counts = bgbb_reference.expected_number_of_transactions_in_first_n_periods(6)
    _assert_rel(model.frequency_pmf(6) * 11104, expected_counts["model"], 1e-9)
    # The pmf's mean is the new-customer expectation (FHS eq. 9).
    assert float(np.dot(np.arange(7), model.frequency_pmf(6))) == pytest.approx(
        float(model.expected_purchases_new_customer(6)), rel=1e-12
    )


def test_bgbb_counts_equal_one_row_per_customer(donations, bgbb):
    from segml.models import BGBBModel

    expanded = donations.loc[donations.index.repeat(donations["count"] // 50)].drop(columns="count")
    counted = donations.assign(count=donations["count"] // 50)
    one_by_one = BGBBModel().fit(expanded)
    grouped = BGBBModel().fit(counted)
    _assert_rel(list(one_by_one.params_.values()), list(grouped.params_.values()), 1e-6)
    assert bgbb.log_likelihood(donations) == pytest.approx(bgbb.log_likelihood_, rel=1e-12)


def test_bgbb_bad_rows_are_named_and_counted(donations):
    from segml.models import BGBBInputError, BGBBModel

    bad = donations.copy()
    bad.loc[bad.index[:2], "recency"] = 9
    with pytest.raises(BGBBInputError, match=r"2 of 22 rows break frequency <= recency"):
        BGBBModel().fit(bad)
    with pytest.raises(BGBBInputError, match=r"lacks the column\(s\) \['n_periods'\]"):
        BGBBModel().fit(donations.drop(columns="n_periods"))


# ------------------------------------------------------------ cumulative tracking


@pytest.fixture(scope="module")
def cdnow_log_split():
    from segml.datasets import load_cdnow
    from segml.features import calibration_holdout

    log = load_cdnow(sample=True)
    split = calibration_holdout(
        log,
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        time_unit="D",
        unit_multiplier=7,
    )
    return log, split


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd", "paretonbd"])
def test_cumulative_tracking_counts_and_expectation(cdnow_log_split, name):
    from matplotlib.figure import Figure

    from segml.models._clv_metrics import cumulative_repeat_transactions
    from segml.reports._clv import plot_cumulative_transactions

    log, split = cdnow_log_split
    cal = split[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]]
    model = CLVModel(time_unit="W", purchase_model=name).fit(
        cal.set_axis(["frequency", "recency", "T", "monetary_value"], axis=1)
    )
    ends = {"calibration_end": "1997-09-30", "observation_end": "1998-06-30"}
    daily = cumulative_repeat_transactions(model, log, period_days=1, **ends)
    at_calibration_end = daily.loc[daily["period_end"] == "1997-09-30"].iloc[0]
    # The same repeat purchases lifetimes' frequency counts, in and after calibration.
    assert at_calibration_end["actual_cumulative"] == split["frequency_cal"].sum() == 2457
    assert (
        daily["actual_cumulative"].iloc[-1]
        == (split["frequency_cal"] + split["frequency_holdout"]).sum()
    )
    # Expected: each customer's new-customer expectation over their time since first purchase.
    first_day = log.groupby("customer_id")["timestamp"].min().dt.normalize()
    age_weeks = (pd.Timestamp("1997-09-30") - first_day).dt.days / 7
    assert at_calibration_end["expected_cumulative"] == pytest.approx(
        model.expected_purchases_new_customer(age_weeks.to_numpy()).sum(), rel=1e-10
    )
    weekly = cumulative_repeat_transactions(model, log, **ends)
    assert len(weekly) == 78 and weekly["holdout"].sum() == 39
    # A model fitted on calibration tracks it closely (within 3% at its end).
    assert weekly["expected_cumulative"].iloc[38] == pytest.approx(2457, rel=0.03)
    fig = plot_cumulative_transactions(model, log, **ends)
    assert isinstance(fig, Figure)
    actual, expected = fig.axes[0].get_lines()[:2]
    np.testing.assert_array_equal(actual.get_ydata(), weekly["actual_cumulative"])
    np.testing.assert_allclose(expected.get_ydata(), weekly["expected_cumulative"])


@pytest.mark.parametrize("name", list(FITTERS))
def test_clv_interval_and_parameter_summary_for_every_purchase_model(fitted, cdnow_summary, name):
    from segml.models._predictive import clv_predictive_interval

    model = fitted[(name, "cdnow")]
    head = cdnow_summary.iloc[:200]
    band = clv_predictive_interval(model, head, n_draws=60, random_state=4)
    pd.testing.assert_frame_equal(
        band, clv_predictive_interval(model, head, n_draws=60, random_state=4)
    )  # seeded
    assert ((band["clv_low"] >= 0) & (band["clv_low"] <= band["clv_high"])).all()
    # The draws' mean estimates the point CLV (60 draws: a loose check on the total).
    assert band["clv_draws_mean"].sum() == pytest.approx(model.clv(head).sum(), rel=0.15)
    summary = model.parameter_summary()
    assert list(summary.index.get_level_values("model").unique()) == [name, "gamma_gamma"]
    assert summary.loc[name, "standard_error"].tolist() == list(
        model.purchase_standard_errors_.values()
    )


@pytest.mark.parametrize("name", list(FITTERS))
def test_existing_diagnostics_draw_every_purchase_model(fitted, cdnow_summary, name):
    from segml.reports._clv import (
        plot_frequency_recency_matrix,
        plot_p_alive_matrix,
        plot_period_transactions,
    )

    model = fitted[(name, "cdnow")]
    fig = plot_period_transactions(model, cdnow_summary)
    actual, expected = fig.axes[0].containers
    # Expected customers per count: P(X(T_i) = n) summed over customers; all of them.
    assert sum(bar.get_height() for bar in expected) == pytest.approx(len(cdnow_summary), rel=1e-9)
    assert actual[0].get_height() == (cdnow_summary["frequency"] == 0).sum()
    # No "P(alive) = 1 by construction" note: these models let one-time buyers drop out.
    p_alive_figure = plot_p_alive_matrix(model, cdnow_summary)
    assert len(p_alive_figure.axes[0].texts) == 0
    image = p_alive_figure.axes[0].get_images()[0].get_array()
    assert float(image[0, 0]) < 1.0  # frequency 0, recency 0
    assert plot_frequency_recency_matrix(model, cdnow_summary).axes[0].get_images()


@pytest.mark.parametrize("module", [_bgnbd, _mbgnbd, _paretonbd], ids=lambda m: m.__name__)
def test_a_hessian_guess_reaches_the_same_optimum_in_fewer_steps(cdnow_summary, module):
    # "auto" refits the chosen model on all data from its calibration optimum with the
    # calibration Hessian as a guess (quasi-Newton steps instead of L-BFGS-B): the
    # optimum must be the cold fit's; a bad guess falls back to L-BFGS-B.
    f, r, T = (cdnow_summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    cold, scale = module.fit(f, r, T, penalizer_coef=0.0, max_iter=1000)
    params = np.exp(cold.log_params)
    start = [
        v / scale if k in module.TIME_PARAMS else v
        for k, v in zip(module.PARAM_NAMES, params, strict=True)
    ]
    nearby = np.array(start) * np.exp(0.05 * np.array([1, -1, 1, -1]))
    warm, _ = module.fit(
        f, r, T, penalizer_coef=0.0, max_iter=1000, start=nearby, hessian_guess=1.5 * cold.hessian
    )
    assert warm.converged
    np.testing.assert_allclose(warm.log_params, cold.log_params, rtol=0, atol=1e-9)
    assert warm.n_iterations < cold.n_iterations
    useless = -np.eye(4)  # not positive definite: ignored
    fallback, _ = module.fit(
        f, r, T, penalizer_coef=0.0, max_iter=1000, start=nearby, hessian_guess=useless
    )
    np.testing.assert_allclose(fallback.log_params, cold.log_params, rtol=0, atol=1e-9)
