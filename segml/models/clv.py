"""Customer lifetime value: a BTYD purchase model times Gamma-Gamma spend, discounted.

:class:`CLVModel` fits two models on an RFM table (one row per customer, lifetimes'
``frequency``, ``recency``, ``T`` and ``monetary_value``, see
:func:`segml.features.rfm_summary`):

- a purchase model for how many repeat purchases a customer makes and whether they
  are still "alive": BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the
  easy way", the default), MBG/NBD (Batislam, Denizel & Filiztekin 2007) or
  Pareto/NBD (Schmittlein, Morrison & Colombo 1987), or ``"auto"``: the one of them
  that predicts a holdout period best (:func:`select_purchase_model`);
- Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value") for
  how much they spend per purchase, fitted on repeat buyers only.

CLV over ``horizon_months`` is then lifetimes' ``customer_lifetime_value``: for each
month, the expected purchases in that month times the expected spend per purchase,
discounted by ``(1 + monthly_discount_rate) ** month``.

lifetimes is the reference implementation. The default ``engine="segml"`` maximises
the same likelihoods with analytic gradients (for Pareto/NBD, central differences in
the hypergeometric function's parameters) on distinct customer rows, and computes the
same predictions vectorised; ``engine="lifetimes"`` fits with lifetimes' own fitters.
Both agree with lifetimes to 1e-6 (parameters) and 1e-9 (predictions); lifetimes'
Pareto/NBD stops Nelder-Mead at ``tol=1e-4``, so its default fit agrees to about 1e-4
and a converged one (smaller ``tol``) to 1e-6.

Under BG/NBD, customers with no repeat purchase (``frequency == 0``) get
``p_alive == 1``: a customer can only drop out right after a purchase, so the model
has no evidence either way. That is a property of the model, not a sign that the
customer is safe from churn; :meth:`CLVModel.predict` flags them in
``has_repeat_purchase``. MBG/NBD (drop-out also at time zero) and Pareto/NBD
(drop-out at any time) give one-time buyers ``p_alive < 1``.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import os
import warnings
from typing import Any

import numpy as np
import pandas as pd

from segml.models import _bgnbd, _gamma_gamma, _mbgnbd, _paretonbd
from segml.models._distinct import distinct_rows, row_weights
from segml.models._estimator import Estimator, check_fitted
from segml.models._mle import MAX_ABS_LOG_PARAM

__all__ = [
    "CLVConvergenceError",
    "CLVInputError",
    "CLVModel",
    "CLVWarning",
    "PenalizerRetryWarning",
    "PURCHASE_MODELS",
    "SpendFrequencyCorrelationWarning",
    "describe_selection",
    "select_purchase_model",
]

# Periods of each time unit per month, as lifetimes' customer_lifetime_value uses them.
PERIODS_PER_MONTH = {"D": 30.0, "W": 4.345, "M": 1.0, "H": 720.0}
_ENGINES = ("segml", "lifetimes")
# The purchase models CLVModel can fit, by the name of its purchase_model parameter.
PURCHASE_MODELS = ("bgnbd", "mbgnbd", "paretonbd")
_MODULES = {"bgnbd": _bgnbd, "mbgnbd": _mbgnbd, "paretonbd": _paretonbd}
_DISPLAY = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "paretonbd": "Pareto/NBD"}
_LIFETIMES_FITTERS = {
    "bgnbd": "BetaGeoFitter",
    "mbgnbd": "ModifiedBetaGeoFitter",
    "paretonbd": "ParetoNBDFitter",
}
_FORMAT = "segml.CLVModel"
# Version 2 names the purchase model; version 1 documents (BG/NBD only) still load.
_FORMAT_VERSION = 2
# Hyperparameters of the retired parameter-only CLVModel.clv_interval, dropped when
# an older document is loaded.
_RETIRED_HYPERPARAMETERS = ("interval_level", "n_draws", "random_state")


class CLVInputError(ValueError):
    """The RFM table or a hyperparameter given to :class:`CLVModel` cannot be used."""


class CLVConvergenceError(ValueError):
    """No fit converged, even with the penalizer schedule."""


class CLVWarning(UserWarning):
    """Something about the fit that the user should know."""


class PenalizerRetryWarning(CLVWarning):
    """The unpenalised fit did not converge; a penalised one was used instead."""


class SpendFrequencyCorrelationWarning(CLVWarning):
    """Spend per purchase correlates with frequency, which Gamma-Gamma assumes it does not."""


class CLVModel(Estimator):
    """Customer lifetime value from a BTYD purchase model and Gamma-Gamma spend.

    Parameters
    ----------
    purchase_model : {"bgnbd", "mbgnbd", "paretonbd", "auto"}, default "bgnbd"
        The purchase model: BG/NBD, MBG/NBD or Pareto/NBD. ``"auto"`` fits each on
        the calibration period of ``cal_holdout`` (passed to :meth:`fit`), keeps the
        one with the lowest mean absolute error of holdout repeat purchases per
        customer (MAEs within ``selection_tie_rtol`` of the best tie; the lowest BIC
        among those wins) and refits it on ``rfm``: see :func:`select_purchase_model`.
    spend_model : {"gamma_gamma", None}, default "gamma_gamma"
        The spend model, fitted on repeat buyers' ``monetary_value``. ``None`` fits the
        purchase model alone, for purchases-only logs (no amounts): the model then
        predicts ``expected_purchases`` and ``p_alive`` but no ``expected_spend`` or
        ``clv``, and ``rfm`` needs no ``monetary_value``.
    selection_tie_rtol : float, default 1e-9
        ``"auto"`` only: candidates whose holdout MAE is within this relative
        distance of the best MAE count as tied, and BIC decides among them. Raise it
        (e.g. to 0.01) to let BIC choose when holdout accuracy is nearly equal.
    time_unit : {"D", "W", "M", "H"}, default "D"
        Unit of ``recency`` and ``T`` in the RFM table: days, weeks, months or hours
        (lifetimes' ``freq``). Tables built with ``rfm_summary(time_unit="D",
        unit_multiplier=7)`` are in weeks: use ``"W"``.
    horizon_months : int, default 12
        CLV horizon in months. Months are ``PERIODS_PER_MONTH[time_unit]`` periods
        (30 days, 4.345 weeks), as in lifetimes. Also the default horizon of
        :meth:`expected_purchases`.
    monthly_discount_rate : float, default 0.01
        Discount rate per month: month ``k``'s cash flow is divided by
        ``(1 + monthly_discount_rate) ** k``.
    penalizer_coef : float, default 0.0
        L2 penalty on the parameters, added to the mean negative log-likelihood
        (lifetimes' ``penalizer_coef``; for BG/NBD on parameters with time rescaled so
        that the oldest customer has ``T = 1``, as lifetimes does).
    penalizer_retries : tuple of float, default (0.001, 0.01, 0.1)
        Penalizers tried in turn when a fit does not converge. A
        :class:`PenalizerRetryWarning` names the one used; if none converges,
        :class:`CLVConvergenceError` is raised.
    engine : {"segml", "lifetimes"}, default "segml"
        ``"segml"``: analytic-gradient fit on distinct rows (fast). ``"lifetimes"``:
        lifetimes' own fitters on the full table (the reference; slow at scale).
    max_iter : int, default 1000
        Iteration limit of each optimisation (``"segml"`` engine).
    min_repeat_customers : int, default 20
        Fewest repeat buyers Gamma-Gamma is fitted on.
    max_spend_frequency_correlation : float, default 0.3
        Above this absolute Pearson correlation between ``frequency`` and
        ``monetary_value`` among repeat buyers, a
        :class:`SpendFrequencyCorrelationWarning` is issued.

    Attributes
    ----------
    purchase_model_ : str
        The fitted purchase model (``"auto"`` resolved to the one chosen).
    purchase_params_ : dict
        Its parameters: ``r``, ``alpha`` (in ``time_unit``), ``a``, ``b`` for BG/NBD
        and MBG/NBD; ``r``, ``alpha``, ``s``, ``beta`` (both rates in ``time_unit``)
        for Pareto/NBD.
    gamma_gamma_params_ : dict or None
        ``p``, ``q``, ``v`` (``v`` is the paper's gamma); None (as are the other
        ``gamma_gamma_*`` attributes) with ``spend_model=None``.
    purchase_standard_errors_, gamma_gamma_standard_errors_ : dict
        Standard errors of the parameters (delta method from the log-parameter
        Hessian, as lifetimes reports them); NaN if the Hessian is singular.
    purchase_log_covariance_, gamma_gamma_log_covariance_ : numpy.ndarray
        Covariance of the log-parameters: the normal approximation that
        :func:`segml.models._predictive.clv_predictive_interval` draws parameters from
        (the CLV interval: process and parameter uncertainty).
    purchase_penalizer_coef_, gamma_gamma_penalizer_coef_ : float
        Penalizer each fit converged with.
    purchase_log_likelihood_ : float
        Log-likelihood of the purchase model on the training customers (unpenalised,
        times in ``time_unit``), the one behind its BIC.
    bgnbd_params_, bgnbd_standard_errors_, bgnbd_log_covariance_, bgnbd_penalizer_coef_
        The ``purchase_*`` attributes under their BG/NBD names, when the purchase
        model is BG/NBD (kept for code written before the other models existed).
    model_selection_ : pandas.DataFrame or None
        ``"auto"`` only: the comparison of the candidates on the holdout, from
        :func:`select_purchase_model`; None otherwise.
    n_customers_, n_repeat_customers_ : int
        Customers the models were fitted on (repeat buyers for Gamma-Gamma).
    frequency_spend_correlation_ : float
        Pearson correlation of ``frequency`` and ``monetary_value`` among repeat buyers.

    Examples
    --------
    >>> from segml.datasets import load_cdnow
    >>> from segml.features import rfm_summary
    >>> rfm = rfm_summary(load_cdnow(sample=True), as_of="1997-09-30",
    ...                   time_unit="D", unit_multiplier=7)
    >>> model = CLVModel(time_unit="W").fit(rfm)
    >>> {k: round(v, 3) for k, v in model.bgnbd_params_.items()}
    {'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426}
    >>> model.predict(rfm).drop(columns="has_repeat_purchase").loc["0001"].round(2)
    expected_purchases     1.56
    p_alive                0.73
    expected_spend        24.65
    clv                   36.27
    Name: 0001, dtype: float64
    """

    def __init__(
        self,
        *,
        purchase_model: str = "bgnbd",
        spend_model: str | None = "gamma_gamma",
        selection_tie_rtol: float = 1e-9,
        time_unit: str = "D",
        horizon_months: int = 12,
        monthly_discount_rate: float = 0.01,
        penalizer_coef: float = 0.0,
        penalizer_retries: tuple[float, ...] = (0.001, 0.01, 0.1),
        engine: str = "segml",
        max_iter: int = 1000,
        min_repeat_customers: int = 20,
        max_spend_frequency_correlation: float = 0.3,
    ):
        self.purchase_model = purchase_model
        self.spend_model = spend_model
        self.selection_tie_rtol = selection_tie_rtol
        self.time_unit = time_unit
        self.horizon_months = horizon_months
        self.monthly_discount_rate = monthly_discount_rate
        self.penalizer_coef = penalizer_coef
        self.penalizer_retries = penalizer_retries
        self.engine = engine
        self.max_iter = max_iter
        self.min_repeat_customers = min_repeat_customers
        self.max_spend_frequency_correlation = max_spend_frequency_correlation

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        rfm: pd.DataFrame,
        y=None,
        *,
        cal_holdout: pd.DataFrame | None = None,
        sample_weight=None,
    ) -> CLVModel:
        """Fit the purchase model on every customer and Gamma-Gamma on the repeat buyers.

        Parameters
        ----------
        rfm : pandas.DataFrame
            One row per customer with ``frequency``, ``recency``, ``T`` (in
            ``time_unit``) and ``monetary_value``, as from
            :func:`segml.features.rfm_summary`. Not kept on the model.
        y : None
            Ignored; present for scikit-learn compatibility.
        cal_holdout : pandas.DataFrame, optional
            Required by ``purchase_model="auto"`` (ignored otherwise): a
            :func:`segml.features.calibration_holdout` table in ``time_unit``, on
            which :func:`select_purchase_model` chooses the purchase model; the
            chosen one is then fitted on ``rfm`` (all the data).
        sample_weight : array-like of whole numbers >= 0, optional
            How many identical customers each row of ``rfm`` stands for (e.g. the
            counts of distinct ``(frequency, recency, T, monetary_value)`` rows, as a
            Spark job sends them). Every fit (purchase model and Gamma-Gamma) equals
            the fit on the expanded table; ``n_customers_`` counts customers. Rows of
            weight 0 are left out. With ``"auto"`` the choice is still made on
            ``cal_holdout`` (one row per customer); the weights apply to the fit on
            ``rfm``. Only with ``engine="segml"``.

        Returns
        -------
        CLVModel
            ``self``, fitted.

        Raises
        ------
        CLVInputError
            If a column is missing or holds impossible values, if there are fewer than
            ``min_repeat_customers`` repeat buyers, a repeat buyer has
            ``monetary_value <= 0``, or ``"auto"`` is given no ``cal_holdout``.
        CLVConvergenceError
            If no penalizer in the schedule gives a converged fit.

        Warns
        -----
        PenalizerRetryWarning
            A penalised fit had to be used.
        SpendFrequencyCorrelationWarning
            Spend and frequency correlate more than ``max_spend_frequency_correlation``.

        Examples
        --------
        >>> import pandas as pd
        >>> rfm = pd.DataFrame({"frequency": [0.0, 2.0], "recency": [0.0, 5.0],
        ...                     "T": [3.0, -1.0], "monetary_value": [0.0, 10.0]})
        >>> CLVModel().fit(rfm)
        Traceback (most recent call last):
        ...
        segml.models.clv.CLVInputError: Column 'T' has 1 negative value(s) out of 2 rows; ...
        """
        self._check_hyperparameters()
        with_spend = self.spend_model is not None
        frequency, recency, T, monetary = _rfm_arrays(rfm, need_monetary=with_spend)
        weights = self._check_sample_weight(sample_weight, len(frequency))
        if weights is not None:
            # Weight-0 rows stand for no customer: the expanded table has no such row.
            keep = weights > 0
            frequency, recency, T = frequency[keep], recency[keep], T[keep]
            monetary = monetary[keep] if with_spend else monetary
            weights = weights[keep]
        repeat = frequency > 0
        n_customers = len(frequency) if weights is None else int(weights.sum())
        n_repeat = int(repeat.sum()) if weights is None else int(weights[repeat].sum())
        if with_spend and n_repeat < self.min_repeat_customers:
            raise CLVInputError(
                f"Only {n_repeat} of {n_customers} customers have a repeat purchase "
                f"(frequency > 0); Gamma-Gamma needs at least min_repeat_customers="
                f"{self.min_repeat_customers}. Use a longer observation period or more "
                "customers, or lower min_repeat_customers if you accept a noisy spend model."
            )
        bad_spend = repeat & ~(monetary > 0) if with_spend else np.zeros(len(repeat), dtype=bool)
        if bad_spend.any():
            raise CLVInputError(
                f"Column 'monetary_value' is <= 0 for {int(bad_spend.sum())} of "
                f"{int(repeat.sum())} repeat buyers (rows of rfm); Gamma-Gamma models "
                "positive spend only. Remove refunds and zero-value orders before computing "
                "RFM (segml.load_transactions drops them)."
            )

        if self.purchase_model == "auto":
            if cal_holdout is None:
                raise CLVInputError(
                    'purchase_model="auto" chooses the model on a holdout period: pass '
                    "cal_holdout=segml.features.calibration_holdout(...) (in time_unit) to "
                    "fit, or name the model (purchase_model='bgnbd', 'mbgnbd' or 'paretonbd')."
                )
            self.model_selection_, calibrated = _select_purchase_model(cal_holdout, self)
            name = str(self.model_selection_.index[self.model_selection_["chosen"]][0])
            # The calibration-period optimum is a close start for the fit on all data,
            # and its Hessian a good guess of the curvature there (the optimum itself
            # does not depend on where or how the optimiser starts).
            start = tuple(calibrated[name]["purchase_params_"].values())
            cal_covariance = calibrated[name]["purchase_log_covariance_"]
            hessian_guess = (
                np.linalg.inv(cal_covariance) / len(cal_holdout)
                if np.all(np.isfinite(cal_covariance))
                else None
            )
        else:
            self.model_selection_ = None
            name, start, hessian_guess = self.purchase_model, None, None
        # The purchase likelihood depends on (frequency, recency, T) only: fit on the
        # distinct rows, weighted by their customers (exact; a few hundred thousand
        # rows for a million customers with daily data). lifetimes gets the table.
        if self.engine == "segml":
            (x_u, t_x_u, T_u), row_weight = row_weights(frequency, recency, T, weights=weights)
        else:
            x_u, t_x_u, T_u, row_weight = frequency, recency, T, None
        state = self._fit_purchase(
            name, x_u, t_x_u, T_u, start=start, weights=row_weight, hessian_guess=hessian_guess
        )
        for key, value in state.items():
            setattr(self, key, value)
        self.n_customers_ = n_customers
        self.n_repeat_customers_ = n_repeat
        if not with_spend:
            self.frequency_spend_correlation_ = math.nan
            self.gamma_gamma_params_ = self.gamma_gamma_standard_errors_ = None
            self.gamma_gamma_log_covariance_ = self.gamma_gamma_penalizer_coef_ = None
            return self

        x_rep, m_rep = frequency[repeat], monetary[repeat]
        w_rep = None if weights is None else weights[repeat]
        with np.errstate(invalid="ignore", divide="ignore"):
            if w_rep is None:
                correlation = float(np.corrcoef(x_rep, m_rep)[0, 1])
            else:
                covariance = np.cov(x_rep, m_rep, fweights=w_rep.astype(np.int64))
                correlation = float(covariance[0, 1] / np.sqrt(covariance[0, 0] * covariance[1, 1]))
        self.frequency_spend_correlation_ = correlation
        if abs(correlation) > self.max_spend_frequency_correlation:
            warnings.warn(
                f"Among the {n_repeat} repeat buyers, frequency and monetary_value have "
                f"correlation {correlation:.3f} (above max_spend_frequency_correlation="
                f"{self.max_spend_frequency_correlation}). Gamma-Gamma assumes spend per "
                "purchase is independent of frequency, so expected_spend and clv may be "
                "biased; check frequency_spend_correlation_ and consider segmenting.",
                SpendFrequencyCorrelationWarning,
                stacklevel=2,
            )
        gg_log, gg_hessian, self.gamma_gamma_penalizer_coef_ = self._fit_with_retries(
            "Gamma-Gamma", lambda pen: self._fit_gamma_gamma(x_rep, m_rep, pen, w_rep)
        )
        self.gamma_gamma_params_ = dict(
            zip(_gamma_gamma.PARAM_NAMES, (float(v) for v in np.exp(gg_log)), strict=True)
        )
        self.gamma_gamma_log_covariance_ = _log_covariance(gg_hessian, n_repeat)
        self.gamma_gamma_standard_errors_ = _standard_errors(
            self.gamma_gamma_params_, self.gamma_gamma_log_covariance_
        )
        return self

    def _check_sample_weight(self, sample_weight, n_rows):
        """``sample_weight`` as floats (whole counts >= 0), or None; a clear error else."""
        if sample_weight is None:
            return None
        if self.engine != "segml":
            raise CLVInputError(
                "sample_weight is supported with engine='segml' only (lifetimes' Pareto/NBD "
                "normalises weighted likelihoods differently); expand the rows or use "
                "engine='segml'."
            )
        try:
            weights = np.asarray(sample_weight, dtype=float)
        except (TypeError, ValueError):
            raise CLVInputError(
                "sample_weight must hold numbers (counts of identical customers per row); "
                f"got values of type {np.asarray(sample_weight).dtype}."
            ) from None
        if weights.ndim != 1 or len(weights) != n_rows:
            raise CLVInputError(
                f"sample_weight must have one value per row of rfm ({n_rows}), got shape "
                f"{weights.shape}."
            )
        bad = ~np.isfinite(weights) | (weights < 0) | (weights != np.round(weights))
        if bad.any():
            example = float(weights[np.flatnonzero(bad)[0]])
            raise CLVInputError(
                f"sample_weight must be whole numbers >= 0 (counts of identical customers); "
                f"{int(bad.sum())} of {n_rows} values are not (e.g. {example!r}). Pass the "
                "number of customers each row stands for."
            )
        if not (weights > 0).any():
            raise CLVInputError(
                f"sample_weight is 0 for all {n_rows} rows: there are no customers to fit."
            )
        return weights

    def _fit_purchase(
        self, name, frequency, recency, T, *, start=None, weights=None, hessian_guess=None
    ) -> dict[str, Any]:
        """Fit one purchase model; its fitted attributes, by name."""
        module = _MODULES[name]
        log_params, scale, hessian, penalizer = self._fit_with_retries(
            _DISPLAY[name],
            lambda pen: self._fit_purchase_once(
                name, frequency, recency, T, pen, start, weights, hessian_guess
            ),
        )
        values = np.exp(log_params)
        params = {
            k: float(v / scale if k in module.TIME_PARAMS else v)
            for k, v in zip(module.PARAM_NAMES, values, strict=True)
        }
        # Rescaling time shifts log(alpha) (and log(beta)) by a constant: the covariance
        # of the log-parameters is unchanged.
        n_customers = len(frequency) if weights is None else float(np.sum(weights))
        log_covariance = _log_covariance(hessian, n_customers)
        return {
            "purchase_model_": name,
            "purchase_params_": params,
            "purchase_log_covariance_": log_covariance,
            "purchase_standard_errors_": _standard_errors(params, log_covariance),
            "purchase_penalizer_coef_": penalizer,
            "purchase_log_likelihood_": module.log_likelihood(
                tuple(params.values()), frequency, recency, T, weights
            ),
        }

    def _check_hyperparameters(self) -> None:
        if self.purchase_model not in (*PURCHASE_MODELS, "auto"):
            raise CLVInputError(
                f"purchase_model must be one of {[*PURCHASE_MODELS, 'auto']}, got "
                f"{self.purchase_model!r}."
            )
        if self.spend_model not in ("gamma_gamma", None):
            raise CLVInputError(
                f"spend_model must be 'gamma_gamma' or None (purchases only), got "
                f"{self.spend_model!r}."
            )
        if not self.selection_tie_rtol >= 0:
            raise CLVInputError(
                f"selection_tie_rtol must be >= 0, got {self.selection_tie_rtol!r}."
            )
        if self.time_unit not in PERIODS_PER_MONTH:
            raise CLVInputError(
                f"time_unit must be one of {list(PERIODS_PER_MONTH)}, got {self.time_unit!r}."
            )
        if self.engine not in _ENGINES:
            raise CLVInputError(f"engine must be one of {list(_ENGINES)}, got {self.engine!r}.")
        if not (isinstance(self.horizon_months, numbers.Integral) and self.horizon_months >= 1):
            raise CLVInputError(
                f"horizon_months must be a positive whole number of months (lifetimes sums "
                f"month by month), got {self.horizon_months!r}."
            )
        if not (self.monthly_discount_rate > -1):
            raise CLVInputError(
                f"monthly_discount_rate must be > -1, got {self.monthly_discount_rate!r}."
            )
        if not all(p >= 0 for p in (self.penalizer_coef, *self.penalizer_retries)):
            raise CLVInputError("penalizer_coef and penalizer_retries must be >= 0.")

    def _fit_with_retries(self, name, fit_one):
        schedule = [self.penalizer_coef] + sorted(
            p for p in self.penalizer_retries if p > self.penalizer_coef
        )
        failures = []
        for penalizer in schedule:
            outcome, reason = fit_one(penalizer)
            if outcome is not None:
                if failures:
                    warnings.warn(
                        f"{name} did not converge with penalizer_coef={schedule[0]} "
                        f"({failures[0][1]}); it converged with penalizer_coef={penalizer}, "
                        "which shrinks the parameters. Check the data (too little history "
                        f"or no visible churn?) or set penalizer_coef={penalizer} to accept it.",
                        PenalizerRetryWarning,
                        stacklevel=3,
                    )
                return (*outcome, penalizer)
            failures.append((penalizer, reason))
        tried = "; ".join(f"penalizer_coef={p}: {why}" for p, why in failures)
        raise CLVConvergenceError(
            f"{name} did not converge with any penalizer tried ({tried}). The data may not "
            "identify the model (e.g. too few customers, no repeat purchases or no drop-out "
            "visible); inspect the RFM table or pass larger penalizer_retries."
        )

    def _fit_purchase_once(
        self, name, frequency, recency, T, penalizer, start=None, weights=None, hessian_guess=None
    ):
        module = _MODULES[name]
        if self.engine == "segml":
            result, scale = module.fit(
                frequency,
                recency,
                T,
                penalizer_coef=penalizer,
                max_iter=self.max_iter,
                start=start,
                weights=weights,
                # A guess made for the unpenalised problem is only used there.
                hessian_guess=hessian_guess if penalizer == self.penalizer_coef else None,
            )
            if not result.converged:
                return None, result.message
            return (result.log_params, scale, result.hessian), None
        import lifetimes

        fitter_class = getattr(lifetimes, _LIFETIMES_FITTERS[name])
        if name == "paretonbd":
            # lifetimes starts Pareto/NBD at random parameters (unseeded): start it at
            # all parameters 1, as segml does, so that the reference is reproducible.
            fitter, reason = _run_lifetimes(
                lambda: fitter_class(penalizer_coef=penalizer).fit(
                    frequency, recency, T, initial_params=np.ones(4)
                )
            )
        else:
            fitter, reason = _run_lifetimes(
                lambda: fitter_class(penalizer_coef=penalizer).fit(frequency, recency, T)
            )
        if fitter is None:
            return None, reason
        scale = 1.0 / float(np.max(T))
        params = fitter.params_[list(module.PARAM_NAMES)].to_numpy(dtype=float).copy()
        for k, param in enumerate(module.PARAM_NAMES):
            if param in module.TIME_PARAMS:
                params[k] *= scale
        log_params = np.log(params)
        if not np.all(np.abs(log_params) < MAX_ABS_LOG_PARAM):
            # lifetimes reports success while a parameter runs off to 0 or infinity.
            return None, "a parameter ran off to 0 or infinity (the data do not identify it)"
        hessian = module.log_likelihood_hessian(
            log_params, frequency, recency, T, scale=scale, penalizer_coef=penalizer
        )
        return (log_params, scale, hessian), None

    def _fit_gamma_gamma(self, frequency, monetary, penalizer, weights=None):
        if self.engine == "segml":
            result = _gamma_gamma.fit(
                frequency,
                monetary,
                penalizer_coef=penalizer,
                max_iter=self.max_iter,
                weights=weights,
            )
            if not result.converged:
                return None, result.message
            return (result.log_params, result.hessian), None
        from lifetimes import GammaGammaFitter

        fitter, reason = _run_lifetimes(
            lambda: GammaGammaFitter(penalizer_coef=penalizer).fit(frequency, monetary)
        )
        if fitter is None:
            return None, reason
        log_params = np.log(fitter.params_.to_numpy(dtype=float))
        if not np.all(np.abs(log_params) < MAX_ABS_LOG_PARAM):
            return None, "a parameter ran off to 0 or infinity (the data do not identify it)"
        hessian = _gamma_gamma.log_likelihood_hessian(
            log_params, frequency, monetary, penalizer_coef=penalizer
        )
        return (log_params, hessian), None

    # -------------------------------------------------------------- predicting

    @property
    def periods_per_month(self) -> float:
        """Periods of ``time_unit`` per month (30 days, 4.345 weeks), as lifetimes uses."""
        return PERIODS_PER_MONTH[self.time_unit]

    def _purchase(self):
        """(module, parameter tuple) of the fitted purchase model."""
        check_fitted(self, "purchase_params_")
        module = _MODULES[self.purchase_model_]
        return module, tuple(self.purchase_params_[k] for k in module.PARAM_NAMES)

    def _bgnbd_only(self, attribute):
        check_fitted(self, "purchase_params_")
        if self.purchase_model_ != "bgnbd":
            raise AttributeError(
                f"bgnbd_{attribute}_ exists only for a BG/NBD purchase model; this model is "
                f"{_DISPLAY[self.purchase_model_]}: use purchase_{attribute}_."
            )
        return getattr(self, f"purchase_{attribute}_")

    @property
    def bgnbd_params_(self) -> dict[str, float]:
        """``purchase_params_`` of a BG/NBD model (the name used before issue 12)."""
        return self._bgnbd_only("params")

    @property
    def bgnbd_standard_errors_(self) -> dict[str, float]:
        """``purchase_standard_errors_`` of a BG/NBD model."""
        return self._bgnbd_only("standard_errors")

    @property
    def bgnbd_log_covariance_(self) -> np.ndarray:
        """``purchase_log_covariance_`` of a BG/NBD model."""
        return self._bgnbd_only("log_covariance")

    @property
    def bgnbd_penalizer_coef_(self) -> float:
        """``purchase_penalizer_coef_`` of a BG/NBD model."""
        return self._bgnbd_only("penalizer_coef")

    def _gg(self) -> tuple[float, float, float]:
        check_fitted(self, "purchase_params_")
        if self.gamma_gamma_params_ is None:
            raise CLVInputError(
                "This model was fitted without a spend model (spend_model=None, e.g. on a "
                "purchases-only log without amounts): it predicts expected_purchases and "
                "p_alive, not expected_spend, clv or CLV intervals."
            )
        return tuple(self.gamma_gamma_params_[k] for k in _gamma_gamma.PARAM_NAMES)

    def expected_purchases(self, rfm: pd.DataFrame, horizon: float | None = None) -> pd.Series:
        """Expected repeat purchases in the next ``horizon`` periods, given each history.

        BG/NBD: FHL 2005 eq. 10; MBG/NBD: Batislam et al. 2007 with Wagner & Hoppe's
        2008 erratum; Pareto/NBD: FHL 2005 note eq. 41.

        Parameters
        ----------
        rfm : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` per customer, in ``time_unit``.
        horizon : float or array-like, optional
            Length of the future window in ``time_unit`` periods (one value, or one per
            customer). Default: ``horizon_months`` months.

        Returns
        -------
        pandas.Series
            ``expected_purchases``, indexed like ``rfm``. Equal to lifetimes'
            ``conditional_expected_number_of_purchases_up_to_time`` of the same model.

        Examples
        --------
        >>> import pandas as pd
        >>> model = CLVModel.from_dict(_example_document())
        >>> rfm = pd.DataFrame({"frequency": [0.0, 4.0], "recency": [0.0, 30.0],
        ...                     "T": [38.0, 38.0]}, index=["new", "loyal"])
        >>> model.expected_purchases(rfm, horizon=52).round(3).to_dict()
        {'new': 0.257, 'loyal': 2.944}
        """
        frequency, recency, T, _ = _rfm_arrays(rfm, need_monetary=False)
        if horizon is None:
            horizon = self.horizon_months * self.periods_per_month
        horizon = np.asarray(horizon, dtype=float)
        if horizon.ndim > 1 or (horizon.ndim == 1 and len(horizon) != len(frequency)):
            raise CLVInputError(
                f"horizon must be one number or one per customer ({len(frequency)}), got shape "
                f"{horizon.shape}."
            )
        if not np.all(np.isfinite(horizon) & (horizon >= 0)):
            raise CLVInputError("horizon must be finite and >= 0 (periods of time_unit).")
        values = _conditional_expected_purchases(*self._purchase(), frequency, recency, T, horizon)
        return pd.Series(values, index=rfm.index, name="expected_purchases")

    def p_alive(self, rfm: pd.DataFrame) -> pd.Series:
        """Probability that each customer is still active ("alive") at the end of the data.

        Under BG/NBD, customers with ``frequency == 0`` get exactly 1: BG/NBD lets a
        customer drop out only right after a purchase, so without a repeat purchase
        there is no evidence. It is not "safe from churn" (see ``has_repeat_purchase``
        in :meth:`predict`). MBG/NBD and Pareto/NBD give them less than 1.

        Examples
        --------
        >>> import pandas as pd
        >>> model = CLVModel.from_dict(_example_document())
        >>> rfm = pd.DataFrame({"frequency": [0.0, 4.0, 4.0], "recency": [0.0, 30.0, 5.0],
        ...                     "T": [38.0, 38.0, 38.0]}, index=["new", "recent", "lapsed"])
        >>> model.p_alive(rfm).round(3).to_dict()
        {'new': 1.0, 'recent': 0.738, 'lapsed': 0.011}
        """
        frequency, recency, T, _ = _rfm_arrays(rfm, need_monetary=False)
        module, params = self._purchase()
        values = module.p_alive(params, frequency, recency, T)
        return pd.Series(values, index=rfm.index, name="p_alive")

    def expected_spend(self, rfm: pd.DataFrame) -> pd.Series:
        """Expected spend per future purchase (Fader & Hardie 2013, eq. 5).

        A weighted average of the customer's own ``monetary_value`` and the population
        mean ``v p / (q - 1)``, leaning on the customer's own mean the more repeat
        purchases they made; the population mean for ``frequency == 0``.

        Examples
        --------
        >>> import pandas as pd
        >>> model = CLVModel.from_dict(_example_document())
        >>> rfm = pd.DataFrame({"frequency": [0.0, 1.0, 10.0], "recency": [0.0, 5.0, 30.0],
        ...                     "T": [38.0] * 3, "monetary_value": [0.0, 100.0, 100.0]})
        >>> model.expected_spend(rfm).round(2).tolist()
        [35.22, 80.26, 97.28]
        """
        frequency, _, _, monetary = _rfm_arrays(rfm, need_monetary=True)
        values = _gamma_gamma.expected_spend(self._gg(), frequency, monetary)
        return pd.Series(values, index=rfm.index, name="expected_spend")

    def clv(self, rfm: pd.DataFrame) -> pd.Series:
        """Discounted expected spend over the next ``horizon_months`` months.

        Month ``k`` contributes ``expected_spend * (E[purchases by month k] -
        E[purchases by month k-1]) / (1 + monthly_discount_rate) ** k``; equal to
        lifetimes' ``GammaGammaFitter.customer_lifetime_value``.

        Examples
        --------
        >>> import pandas as pd
        >>> model = CLVModel.from_dict(_example_document())
        >>> rfm = pd.DataFrame({"frequency": [0.0, 4.0], "recency": [0.0, 30.0],
        ...                     "T": [38.0, 38.0], "monetary_value": [0.0, 50.0]})
        >>> model.clv(rfm).round(2).tolist()
        [8.52, 134.99]
        """
        frequency, recency, T, monetary = _rfm_arrays(rfm, need_monetary=True)
        module, params = self._purchase()
        (x_u, T_u), inverse, _ = distinct_rows(frequency, T)
        per_pair = _discounted_survival_drop(
            module,
            params,
            x_u,
            T_u,
            periods_per_month=self.periods_per_month,
            months=int(self.horizon_months),
            discount=self.monthly_discount_rate,
        )
        purchases = module.purchase_factor(params, frequency, recency, T) * per_pair[inverse]
        values = _gamma_gamma.expected_spend(self._gg(), frequency, monetary) * purchases
        return pd.Series(values, index=rfm.index, name="clv")

    def predict(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """All predictions per customer, one column each.

        Parameters
        ----------
        rfm : pandas.DataFrame
            ``frequency``, ``recency``, ``T``, ``monetary_value`` per customer.

        Returns
        -------
        pandas.DataFrame
            ``expected_purchases`` (over ``horizon_months``), ``p_alive``,
            ``expected_spend``, ``clv`` and ``has_repeat_purchase`` (False where
            ``p_alive`` is 1 by construction, see :meth:`p_alive`), indexed like ``rfm``.

        Examples
        --------
        >>> import pandas as pd
        >>> model = CLVModel.from_dict(_example_document())
        >>> rfm = pd.DataFrame({"frequency": [0.0, 4.0], "recency": [0.0, 30.0],
        ...                     "T": [38.0, 38.0], "monetary_value": [0.0, 50.0]})
        >>> model.predict(rfm).columns.tolist()
        ['expected_purchases', 'p_alive', 'expected_spend', 'clv', 'has_repeat_purchase']
        """
        columns = {
            "expected_purchases": self.expected_purchases(rfm),
            "p_alive": self.p_alive(rfm),
        }
        if self.gamma_gamma_params_ is not None:
            columns["expected_spend"] = self.expected_spend(rfm)
            columns["clv"] = self.clv(rfm)
        columns["has_repeat_purchase"] = rfm["frequency"].to_numpy() > 0
        return pd.DataFrame(columns, index=rfm.index)

    def parameter_summary(self) -> pd.DataFrame:
        """Fitted parameters with standard errors and 95% intervals, one row each.

        Intervals come from the normal approximation of the log-parameter (the one
        CLV intervals draw parameters from), ``exp(log(theta) +- 1.96 se(log theta))``, so
        they stay positive; lifetimes' ``summary`` uses ``theta +- 1.96 se`` instead.

        Returns
        -------
        pandas.DataFrame
            Indexed by (``model``, ``parameter``) with ``estimate``, ``standard_error``,
            ``lower_95``, ``upper_95``; ``model`` is the purchase model's name
            (``purchase_model_``) or ``"gamma_gamma"``.

        Examples
        --------
        >>> model = CLVModel.from_dict(_example_document())
        >>> model.parameter_summary().loc[("bgnbd", "r")].round(3).tolist()
        [0.243, 0.013, 0.219, 0.27]
        """
        check_fitted(self, "purchase_params_")
        rows = []
        for name, params, errors, covariance in (
            (
                self.purchase_model_,
                self.purchase_params_,
                self.purchase_standard_errors_,
                self.purchase_log_covariance_,
            ),
            (
                "gamma_gamma",
                self.gamma_gamma_params_,
                self.gamma_gamma_standard_errors_,
                self.gamma_gamma_log_covariance_,
            ),
        ):
            if params is None:  # spend_model=None: no spend model to summarise
                continue
            se_log = np.sqrt(np.diag(covariance))
            for (parameter, value), error, spread in zip(
                params.items(), errors.values(), se_log, strict=True
            ):
                rows.append(
                    {
                        "model": name,
                        "parameter": parameter,
                        "estimate": value,
                        "standard_error": error,
                        "lower_95": value * math.exp(-1.96 * spread),
                        "upper_95": value * math.exp(1.96 * spread),
                    }
                )
        return pd.DataFrame(rows).set_index(["model", "parameter"])

    def repeat_purchase_pmf(self, t: float, max_purchases: int) -> np.ndarray:
        """P(X(t) = n), n = 0..max_purchases: repeat purchases of a new customer in ``t``.

        BG/NBD: FHL 2005 eq. 8; MBG/NBD: Batislam et al. 2007 eq. 7; Pareto/NBD: Fader,
        Hardie & Lee's 2006 note on P(X(t) = x). ``t`` in ``time_unit`` periods. Used
        to compare the model's distribution of repeat purchases with the observed one.

        Examples
        --------
        >>> model = CLVModel.from_dict(_example_document())
        >>> pmf = model.repeat_purchase_pmf(38.0, 200)
        >>> round(float(pmf[0]), 3), round(float(pmf.sum()), 6)
        (0.577, 1.0)
        """
        module, params = self._purchase()
        return module.repeat_purchase_pmf(params, float(t), int(max_purchases))

    def expected_purchases_new_customer(self, t) -> np.ndarray:
        """E[X(t)]: expected repeat purchases in ``t`` periods of a customer just acquired.

        BG/NBD: FHL 2005 eq. 9; MBG/NBD: Batislam et al. 2007 eq. 6; Pareto/NBD: FHL
        2005 note eq. 27. Equal to lifetimes' ``expected_number_of_purchases_up_to_time``.

        Examples
        --------
        >>> model = CLVModel.from_dict(_example_document())
        >>> model.expected_purchases_new_customer([39.0, 78.0]).round(3).tolist()
        [1.197, 1.861]
        """
        module, params = self._purchase()
        t = np.asarray(t, dtype=float)
        if not np.all(np.isfinite(t) & (t >= 0)):
            raise CLVInputError("t must be finite and >= 0 (periods of time_unit).")
        return module.expected_purchases_new_customer(params, t)

    def log_likelihood(self, rfm: pd.DataFrame) -> float:
        """Log-likelihood of the purchase model on ``rfm`` (unpenalised, times in ``time_unit``).

        The likelihood of each model's paper (BG/NBD: FHL 2005 eq. 6; MBG/NBD:
        Batislam et al. 2007 eq. 4; Pareto/NBD: FHL 2005 note eq. 18), summed over
        customers. All three are densities of the same data, so they compare across
        models on one table (:meth:`bic`).

        Examples
        --------
        >>> import pandas as pd
        >>> model = CLVModel.from_dict(_example_document())
        >>> rfm = pd.DataFrame({"frequency": [0.0, 4.0], "recency": [0.0, 30.0],
        ...                     "T": [38.0, 38.0]})
        >>> round(model.log_likelihood(rfm), 3)
        -15.791
        """
        frequency, recency, T, _ = _rfm_arrays(rfm, need_monetary=False)
        module, params = self._purchase()
        return module.log_likelihood(params, frequency, recency, T)

    def bic(self, rfm: pd.DataFrame) -> float:
        """Bayesian information criterion of the purchase model on ``rfm``: ``k ln n - 2 LL``.

        Examples
        --------
        >>> import pandas as pd
        >>> model = CLVModel.from_dict(_example_document())
        >>> rfm = pd.DataFrame({"frequency": [0.0, 4.0], "recency": [0.0, 30.0],
        ...                     "T": [38.0, 38.0]})
        >>> round(model.bic(rfm), 3)
        34.355
        """
        module, _ = self._purchase()
        return len(module.PARAM_NAMES) * math.log(len(rfm)) - 2 * self.log_likelihood(rfm)

    # -------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """The fitted model as a JSON-able dict: hyperparameters, parameters, versions.

        Examples
        --------
        >>> import json
        >>> document = CLVModel.from_dict(_example_document()).to_dict()
        >>> document["format"], document["purchase_model"], sorted(document["purchase_params"])
        ('segml.CLVModel', 'bgnbd', ['a', 'alpha', 'b', 'r'])
        >>> CLVModel.from_dict(json.loads(json.dumps(document))).purchase_params_["r"]
        0.243
        """
        check_fitted(self, "purchase_params_")
        from segml.persistence import versions

        hyper = self.get_params()
        hyper["penalizer_retries"] = list(hyper["penalizer_retries"])
        selection = getattr(self, "model_selection_", None)
        spend = self.gamma_gamma_params_
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "hyperparameters": hyper,
            "purchase_model": self.purchase_model_,
            "purchase_params": dict(self.purchase_params_),
            "purchase_standard_errors": _nan_to_none(self.purchase_standard_errors_),
            "purchase_log_covariance": _nan_to_none(self.purchase_log_covariance_.tolist()),
            "purchase_penalizer_coef": self.purchase_penalizer_coef_,
            "purchase_log_likelihood": _nan_to_none(
                getattr(self, "purchase_log_likelihood_", math.nan)
            ),
            "model_selection": None
            if selection is None
            else _nan_to_none(selection.reset_index().to_dict(orient="list")),
            # All None with spend_model=None (a purchases-only model).
            "gamma_gamma_params": None if spend is None else dict(spend),
            "gamma_gamma_standard_errors": _nan_to_none(self.gamma_gamma_standard_errors_),
            "gamma_gamma_log_covariance": None
            if spend is None
            else _nan_to_none(self.gamma_gamma_log_covariance_.tolist()),
            "gamma_gamma_penalizer_coef": self.gamma_gamma_penalizer_coef_,
            "n_customers": self.n_customers_,
            "n_repeat_customers": self.n_repeat_customers_,
            "frequency_spend_correlation": _nan_to_none(self.frequency_spend_correlation_),
            "versions": versions(),
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> CLVModel:
        """Rebuild a fitted model from :meth:`to_dict`'s output; predicts identically.

        Format version 1 (written before MBG/NBD and Pareto/NBD existed, keys
        ``bgnbd_*``) loads as a BG/NBD model.

        Raises
        ------
        segml.persistence.PersistenceError
            If the document is not a saved CLVModel of a known format version.
        """
        from segml.persistence import PersistenceError, check_document

        version = document.get("format_version") if isinstance(document, dict) else None
        check_document(document, _FORMAT, 1 if version == 1 else _FORMAT_VERSION)
        try:
            hyper = dict(document["hyperparameters"])
            hyper["penalizer_retries"] = tuple(hyper["penalizer_retries"])
            # Documents written before the parameter-only CLV interval was retired (in
            # favour of clv_predictive_interval) carry its settings: nothing uses them.
            for retired in _RETIRED_HYPERPARAMETERS:
                hyper.pop(retired, None)
            model = cls(**hyper)
            if version == 1:
                name, prefix = "bgnbd", "bgnbd"
            else:
                name, prefix = document["purchase_model"], "purchase"
            if name not in PURCHASE_MODELS:
                raise ValueError(f"unknown purchase_model {name!r}")
            model.purchase_model_ = name
            model.purchase_params_ = {
                k: float(document[f"{prefix}_params"][k]) for k in _MODULES[name].PARAM_NAMES
            }
            model.purchase_log_likelihood_ = _none_to_nan(document.get("purchase_log_likelihood"))
            selection = document.get("model_selection")
            model.model_selection_ = (
                None
                if selection is None
                else pd.DataFrame(_none_to_nan(selection)).set_index("purchase_model")
            )
            spend = document["gamma_gamma_params"]
            model.gamma_gamma_params_ = (
                None if spend is None else {k: float(spend[k]) for k in _gamma_gamma.PARAM_NAMES}
            )
            saved_models = [(prefix, "purchase")]
            if spend is None:
                model.gamma_gamma_standard_errors_ = model.gamma_gamma_log_covariance_ = None
                model.gamma_gamma_penalizer_coef_ = None
            else:
                saved_models.append(("gamma_gamma", "gamma_gamma"))
            for saved, attribute in saved_models:
                setattr(
                    model,
                    f"{attribute}_standard_errors_",
                    _none_to_nan(document[f"{saved}_standard_errors"]),
                )
                setattr(
                    model,
                    f"{attribute}_log_covariance_",
                    np.array(_none_to_nan(document[f"{saved}_log_covariance"]), dtype=float),
                )
                setattr(model, f"{attribute}_penalizer_coef_", document[f"{saved}_penalizer_coef"])
            model.n_customers_ = int(document["n_customers"])
            model.n_repeat_customers_ = int(document["n_repeat_customers"])
            model.frequency_spend_correlation_ = _none_to_nan(
                document["frequency_spend_correlation"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PersistenceError(f"Saved {_FORMAT} is incomplete or damaged: {exc!r}.") from None
        return model

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically)."""
        from segml.persistence import write_json

        write_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CLVModel:
        """Read a model written by :meth:`save`.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "clv.json"
        >>> CLVModel.from_dict(_example_document()).save(path)
        >>> CLVModel.load(path).gamma_gamma_params_
        {'p': 6.25, 'q': 3.74, 'v': 15.44}
        """
        from segml.persistence import read_json

        return cls.from_dict(read_json(path))


# ------------------------------------------------------------ model selection

_CAL_COLUMNS = ("frequency_cal", "recency_cal", "T_cal")
_SELECTION_COLUMNS = [
    "holdout_mae",
    "holdout_rmse",
    "holdout_total_error_pct",
    "log_likelihood",
    "n_parameters",
    "bic",
    "parameters",
    "converged",
    "note",
    "chosen",
]


def select_purchase_model(
    cal_holdout: pd.DataFrame,
    model: CLVModel | None = None,
    *,
    candidates: tuple[str, ...] = PURCHASE_MODELS,
) -> pd.DataFrame:
    """Fit each purchase model on a calibration period and compare them on the holdout.

    The criterion: the lowest mean absolute error, over customers, between the repeat
    purchases each model predicts for the holdout period (given the customer's
    calibration history, over ``duration_holdout``) and those made. Candidates whose
    MAE is within ``model.selection_tie_rtol`` (relative) of the best are tied; among
    them the lowest BIC (``k ln n - 2 LL`` on the calibration period) wins. A
    candidate that does not converge (even with the penalizer schedule) is listed
    with the reason and not chosen.

    Parameters
    ----------
    cal_holdout : pandas.DataFrame
        From :func:`segml.features.calibration_holdout`, times in ``model.time_unit``:
        ``frequency_cal``, ``recency_cal``, ``T_cal``, ``frequency_holdout`` and
        ``duration_holdout``.
    model : CLVModel, optional
        Supplies the fitting settings (``engine``, ``penalizer_coef``,
        ``penalizer_retries``, ``max_iter``, ``selection_tie_rtol``); default
        ``CLVModel()``.
    candidates : tuple of str, default all of ``PURCHASE_MODELS``

    Returns
    -------
    pandas.DataFrame
        One row per candidate, indexed by ``purchase_model``: ``holdout_mae``,
        ``holdout_rmse`` (repeat purchases per customer), ``holdout_total_error_pct``
        (total predicted minus total actual, in % of actual), ``log_likelihood``,
        ``n_parameters``, ``bic`` (calibration period), ``parameters`` (text),
        ``converged``, ``note`` and ``chosen`` (True on exactly one row). The
        reason in words: :func:`describe_selection`.

    Raises
    ------
    CLVConvergenceError
        If no candidate converges.

    Examples
    --------
    >>> from segml.datasets import load_cdnow
    >>> from segml.features import calibration_holdout
    >>> split = calibration_holdout(load_cdnow(sample=True), calibration_end="1997-09-30",
    ...     observation_end="1998-06-30", time_unit="D", unit_multiplier=7)
    >>> table = select_purchase_model(split, CLVModel(time_unit="W"))
    >>> table[["holdout_mae", "bic", "chosen"]].round(3)
                    holdout_mae        bic  chosen
    purchase_model
    bgnbd                 0.785  19195.919   False
    mbgnbd                0.765  19195.332   False
    paretonbd             0.755  19221.013    True
    >>> print(describe_selection(table))  # doctest: +NORMALIZE_WHITESPACE
    Pareto/NBD: lowest mean absolute error of holdout repeat purchases per customer
    (0.7545; BG/NBD 0.7855, MBG/NBD 0.7648).
    """
    return _select_purchase_model(cal_holdout, model, candidates=candidates)[0]


def _select_purchase_model(cal_holdout, model=None, *, candidates=PURCHASE_MODELS):
    """:func:`select_purchase_model`, plus each candidate's fitted attributes by name."""
    template = model if model is not None else CLVModel()
    template._check_hyperparameters()
    unknown = [c for c in candidates if c not in PURCHASE_MODELS]
    if unknown or not candidates:
        raise CLVInputError(
            f"candidates must be a non-empty subset of {list(PURCHASE_MODELS)}, got "
            f"{list(candidates)}."
        )
    if not isinstance(cal_holdout, pd.DataFrame):
        raise CLVInputError(
            f"cal_holdout must be a pandas DataFrame, got {type(cal_holdout).__name__}; build "
            "it with segml.features.calibration_holdout."
        )
    needed = [*_CAL_COLUMNS, "frequency_holdout", "duration_holdout"]
    missing = [c for c in needed if c not in cal_holdout.columns]
    if missing:
        raise CLVInputError(
            f"cal_holdout lacks the column(s) {missing}; build it with "
            "segml.features.calibration_holdout(..., time_unit=..., unit_multiplier=...)."
        )
    rfm = cal_holdout[list(_CAL_COLUMNS)].set_axis(["frequency", "recency", "T"], axis=1)
    frequency, recency, T, _ = _rfm_arrays(rfm, need_monetary=False)
    actual = cal_holdout["frequency_holdout"].to_numpy(dtype=float)
    duration = cal_holdout["duration_holdout"].to_numpy(dtype=float)
    bad = ~(np.isfinite(actual) & (actual >= 0) & np.isfinite(duration) & (duration >= 0))
    if bad.any():
        raise CLVInputError(
            f"cal_holdout has {int(bad.sum())} of {len(actual)} rows with a missing or negative "
            "frequency_holdout or duration_holdout; rebuild it with calibration_holdout."
        )
    horizon = duration[0] if np.all(duration == duration[0]) else duration
    n = len(frequency)
    # Every candidate is fitted on the distinct (frequency, recency, T) rows with their
    # counts (exact), and predicts once per distinct row (and horizon).
    if template.engine != "segml":  # lifetimes fits the table as it is
        x_u, t_x_u, T_u, h_u, inverse, row_weight = frequency, recency, T, horizon, None, None
    elif np.ndim(horizon) == 0:
        (x_u, t_x_u, T_u), inverse, counts = distinct_rows(frequency, recency, T)
        h_u, row_weight = horizon, counts.astype(float)
    else:
        (x_u, t_x_u, T_u, h_u), inverse, counts = distinct_rows(frequency, recency, T, horizon)
        row_weight = counts.astype(float)
    rows, states = {}, {}
    for name in candidates:
        module = _MODULES[name]
        try:
            start = hessian_guess = None
            if name == "mbgnbd" and "bgnbd" in states and template.engine == "segml":
                # MBG/NBD has BG/NBD's parameters and nearly its optimum: start there,
                # with BG/NBD's curvature as the first guess of its own.
                start = tuple(states["bgnbd"]["purchase_params_"].values())
                covariance = states["bgnbd"]["purchase_log_covariance_"]
                if np.all(np.isfinite(covariance)):
                    hessian_guess = np.linalg.inv(covariance) / n
            state = states[name] = template._fit_purchase(
                name, x_u, t_x_u, T_u, weights=row_weight, start=start, hessian_guess=hessian_guess
            )
        except CLVConvergenceError as exc:
            rows[name] = {
                **dict.fromkeys(_SELECTION_COLUMNS, math.nan),
                "n_parameters": len(module.PARAM_NAMES),
                "parameters": "",
                "converged": False,
                "note": str(exc),
                "chosen": False,
            }
            continue
        params = tuple(state["purchase_params_"].values())
        predicted = _conditional_expected_purchases(module, params, x_u, t_x_u, T_u, h_u)
        error = (predicted if inverse is None else predicted[inverse]) - actual
        log_likelihood = state["purchase_log_likelihood_"]
        k = len(module.PARAM_NAMES)
        penalizer = state["purchase_penalizer_coef_"]
        rows[name] = {
            "holdout_mae": float(np.mean(np.abs(error))),
            "holdout_rmse": float(np.sqrt(np.mean(error**2))),
            "holdout_total_error_pct": float(100 * error.sum() / actual.sum())
            if actual.sum() > 0
            else math.nan,
            "log_likelihood": log_likelihood,
            "n_parameters": k,
            "bic": k * math.log(n) - 2 * log_likelihood,
            "parameters": ", ".join(f"{p}={v:.4g}" for p, v in state["purchase_params_"].items()),
            "converged": True,
            "note": "" if penalizer == template.penalizer_coef else f"penalizer_coef={penalizer}",
            "chosen": False,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")[_SELECTION_COLUMNS]
    table.index.name = "purchase_model"
    table["n_parameters"] = table["n_parameters"].astype(int)
    table["converged"] = table["converged"].astype(bool)
    fitted = table[table["converged"]]
    if fitted.empty:
        raise CLVConvergenceError(
            "No purchase model converged on the calibration period: "
            + "; ".join(f"{_DISPLAY[k]}: {v}" for k, v in table["note"].items())
        )
    best = fitted["holdout_mae"].min()
    tied = fitted[fitted["holdout_mae"] <= best * (1 + template.selection_tie_rtol)]
    table["chosen"] = table.index == tied["bic"].idxmin()
    return table, states


def describe_selection(table: pd.DataFrame) -> str:
    """One sentence: which purchase model :func:`select_purchase_model` chose, and why.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"holdout_mae": [0.70, 0.70], "bic": [100.0, 90.0],
    ...     "converged": [True, True], "chosen": [False, True]},
    ...     index=pd.Index(["bgnbd", "paretonbd"], name="purchase_model"))
    >>> print(describe_selection(table))  # doctest: +NORMALIZE_WHITESPACE
    Pareto/NBD: tied on mean absolute error of holdout repeat purchases per customer
    (0.7; BG/NBD 0.7) and lowest BIC (90; BG/NBD 100).
    """
    chosen = table.index[table["chosen"]][0]
    others = table[~table["chosen"] & table["converged"]]
    mae = table.loc[chosen, "holdout_mae"]
    mae_others = ", ".join(f"{_DISPLAY[k]} {v:.4g}" for k, v in others["holdout_mae"].items())
    if (others["holdout_mae"] > mae).all():
        return (
            f"{_DISPLAY[chosen]}: lowest mean absolute error of holdout repeat purchases per "
            f"customer ({mae:.4g}; {mae_others})."
        )
    bic_others = ", ".join(f"{_DISPLAY[k]} {v:.6g}" for k, v in others["bic"].items())
    return (
        f"{_DISPLAY[chosen]}: tied on mean absolute error of holdout repeat purchases per "
        f"customer ({mae:.4g}; {mae_others}) and lowest BIC "
        f"({table.loc[chosen, 'bic']:.6g}; {bic_others})."
    )


def _conditional_expected_purchases(module, params, frequency, recency, T, t):
    """E[Y(t) | history] = factor(x, t_x, T) (1 - survival(x, T, t)) for any purchase model.

    With one ``t`` the survival term (the hypergeometric work for BG/NBD and
    MBG/NBD) is evaluated once per distinct (x, T) pair.
    """
    t = np.asarray(t, dtype=float)
    if t.ndim == 0:
        (x_u, T_u), inverse, _ = distinct_rows(frequency, T)
        survival = module.survival_term(params, x_u, T_u, float(t))[inverse]
    else:
        survival = module.survival_term(params, frequency, T, t)
    return module.purchase_factor(params, frequency, recency, T) * (1 - survival)


def _discounted_survival_drop(module, params, x, T, *, periods_per_month, months, discount):
    """``sum_m (S(t_{m-1}) - S(t_m)) / (1 + discount)^m`` per (x, T).

    lifetimes' ``customer_lifetime_value`` evaluates the conditional expectation twice
    per month for every customer; since ``E[Y(t)] = F (1 - S(t))``, each month's
    increment is ``F (S(t_{m-1}) - S(t_m))``: the survival work is done once per
    distinct (x, T) pair and month, and per customer only ``F`` is left.
    """
    steps = np.arange(1, months + 1)
    t_grid = steps * periods_per_month  # lifetimes' grid: t = step * factor
    survival = module.survival_term(params, x[:, None], T[:, None], t_grid[None, :])
    start = module.survival_term(params, x[:, None], T[:, None], np.zeros((1, 1)))
    previous = np.concatenate([np.broadcast_to(start, (len(x), 1)), survival[:, :-1]], axis=1)
    discount_factors = 1.0 / (1 + discount) ** (t_grid / periods_per_month)
    return np.einsum("ij,j->i", previous - survival, discount_factors)


# ---------------------------------------------------------------------- helpers


def _rfm_arrays(rfm: pd.DataFrame, *, need_monetary: bool):
    """Validated float arrays (frequency, recency, T, monetary_value or None)."""
    if not isinstance(rfm, pd.DataFrame):
        raise CLVInputError(
            f"rfm must be a pandas DataFrame, got {type(rfm).__name__}; build it with "
            "segml.features.rfm_summary."
        )
    columns = ["frequency", "recency", "T"] + (["monetary_value"] if need_monetary else [])
    missing = [c for c in columns if c not in rfm.columns]
    if missing:
        raise CLVInputError(
            f"rfm lacks the column(s) {missing}; found {list(rfm.columns)}. Build it with "
            "segml.features.rfm_summary (or calibration_holdout, renaming the *_cal columns)."
        )
    n = len(rfm)
    if n == 0:
        raise CLVInputError("rfm has no rows; there is no customer to fit or score.")
    arrays = {}
    for column in columns:
        values = rfm[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise CLVInputError(f"Column {column!r} has dtype {values.dtype}; it must be numeric.")
        values = values.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise CLVInputError(
                f"Column {column!r} has {int(bad.sum())} missing or infinite value(s) out of "
                f"{n} rows; drop or fill those customers first."
            )
        if column != "monetary_value" and (values < 0).any():
            raise CLVInputError(
                f"Column {column!r} has {int((values < 0).sum())} negative value(s) out of "
                f"{n} rows; times and counts cannot be negative (was as_of before the first "
                "purchase?)."
            )
        arrays[column] = values
    frequency, recency, T = arrays["frequency"], arrays["recency"], arrays["T"]
    fractional = frequency != np.round(frequency)
    if fractional.any():
        raise CLVInputError(
            f"Column 'frequency' has {int(fractional.sum())} non-integer value(s) out of {n} "
            "rows; it counts repeat purchase periods."
        )
    late = recency > T
    if late.any():
        raise CLVInputError(
            f"Column 'recency' exceeds 'T' in {int(late.sum())} of {n} rows; the last purchase "
            "cannot be after the end of observation. Recompute RFM with one as_of date."
        )
    stray = (frequency == 0) & (recency != 0)
    if stray.any():
        raise CLVInputError(
            f"Column 'recency' is non-zero for {int(stray.sum())} customer(s) with frequency 0 "
            "(lifetimes' definition: recency is 0 without a repeat purchase)."
        )
    return frequency, recency, T, arrays.get("monetary_value")


def _run_lifetimes(fit):
    """Run a lifetimes fit; returns (fitter, None) or (None, reason) on ConvergenceError.

    lifetimes sets a global FutureWarning filter inside its likelihood and prints the
    optimiser state on failure: both are contained here.
    """
    from lifetimes.utils import ConvergenceError

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        try:
            return fit(), None
        except ConvergenceError:
            return None, "lifetimes raised ConvergenceError"


def _log_covariance(hessian: np.ndarray, n_customers: int) -> np.ndarray:
    """Covariance of the log-parameters: inverse Hessian of the mean objective over n.

    NaN when the Hessian is not positive definite (no local normal approximation).
    """
    try:
        np.linalg.cholesky(hessian)
        return np.linalg.inv(hessian) / n_customers
    except np.linalg.LinAlgError:
        return np.full_like(hessian, np.nan)


def _standard_errors(params: dict[str, float], log_covariance: np.ndarray) -> dict[str, float]:
    # Delta method: se(theta) = theta * se(log theta).
    variances = np.diag(log_covariance)
    return {
        name: float(value * math.sqrt(var)) if np.isfinite(var) else math.nan
        for (name, value), var in zip(params.items(), variances, strict=True)
    }


def _nan_to_none(value):
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def _none_to_nan(value):
    if isinstance(value, dict):
        return {k: _none_to_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_none_to_nan(v) for v in value]
    return math.nan if value is None else value


def _example_document() -> dict[str, Any]:
    """A saved model with the published CDNOW estimates (weeks), for the examples."""
    return {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "hyperparameters": {**CLVModel(time_unit="W").get_params(), "penalizer_retries": []},
        "purchase_model": "bgnbd",
        "purchase_params": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
        "purchase_standard_errors": {"r": 0.013, "alpha": 0.378, "a": 0.186, "b": 0.705},
        "purchase_log_covariance": np.diag([0.0027, 0.0073, 0.055, 0.085]).tolist(),
        "purchase_penalizer_coef": 0.0,
        "purchase_log_likelihood": None,
        "model_selection": None,
        "gamma_gamma_params": {"p": 6.25, "q": 3.74, "v": 15.44},
        "gamma_gamma_standard_errors": {"p": 1.19, "q": 0.29, "v": 4.16},
        "gamma_gamma_log_covariance": np.diag([0.036, 0.006, 0.073]).tolist(),
        "gamma_gamma_penalizer_coef": 0.0,
        "n_customers": 2357,
        "n_repeat_customers": 946,
        "frequency_spend_correlation": 0.11,
        "versions": {},
    }
