"""Customer lifetime value: BG/NBD purchases times Gamma-Gamma spend, discounted.

:class:`CLVModel` fits two models on an RFM table (one row per customer, lifetimes'
``frequency``, ``recency``, ``T`` and ``monetary_value``, see
:func:`segml.features.rfm_summary`):

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") for how
  many repeat purchases a customer makes and whether they are still "alive";
- Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value") for
  how much they spend per purchase, fitted on repeat buyers only.

CLV over ``horizon_months`` is then lifetimes' ``customer_lifetime_value``: for each
month, the expected purchases in that month times the expected spend per purchase,
discounted by ``(1 + monthly_discount_rate) ** month``.

lifetimes is the reference implementation. The default ``engine="segml"`` maximises
the same likelihoods with analytic gradients on distinct customer rows, and computes
the same predictions vectorised; ``engine="lifetimes"`` fits with lifetimes' own
fitters. Both agree with lifetimes to 1e-6 (parameters) and 1e-9 (predictions).

Customers with no repeat purchase (``frequency == 0``) get ``p_alive == 1``: under
BG/NBD a customer can only drop out right after a purchase, so the model has no
evidence either way. That is a property of the model, not a sign that the customer
is safe from churn; :meth:`CLVModel.predict` flags them in ``has_repeat_purchase``.
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
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from segml.models import _bgnbd, _gamma_gamma
from segml.models._distinct import distinct_rows
from segml.models._mle import MAX_ABS_LOG_PARAM

__all__ = [
    "CLVConvergenceError",
    "CLVInputError",
    "CLVModel",
    "CLVWarning",
    "PenalizerRetryWarning",
    "SpendFrequencyCorrelationWarning",
]

# Periods of each time unit per month, as lifetimes' customer_lifetime_value uses them.
PERIODS_PER_MONTH = {"D": 30.0, "W": 4.345, "M": 1.0, "H": 720.0}
_ENGINES = ("segml", "lifetimes")
_FORMAT = "segml.CLVModel"
_FORMAT_VERSION = 1
# Customers per block when drawing CLV intervals: bounds memory to ~40 MB per block.
_INTERVAL_CELLS = 5_000_000


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


class CLVModel(BaseEstimator):
    """Customer lifetime value from BG/NBD purchases and Gamma-Gamma spend.

    Parameters
    ----------
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
    interval_level : float, default 0.9
        Coverage of the CLV interval from :meth:`clv_interval`.
    n_draws : int, default 200
        Parameter draws behind the CLV interval.
    random_state : int, numpy.random.RandomState or None, default None
        Seeds the parameter draws of :meth:`clv_interval`.

    Attributes
    ----------
    bgnbd_params_ : dict
        ``r``, ``alpha`` (in ``time_unit``), ``a``, ``b``.
    gamma_gamma_params_ : dict
        ``p``, ``q``, ``v`` (``v`` is the paper's gamma).
    bgnbd_standard_errors_, gamma_gamma_standard_errors_ : dict
        Standard errors of the parameters (delta method from the log-parameter
        Hessian, as lifetimes reports them); NaN if the Hessian is singular.
    bgnbd_log_covariance_, gamma_gamma_log_covariance_ : numpy.ndarray
        Covariance of the log-parameters: the normal approximation that
        :meth:`clv_interval` samples from.
    bgnbd_penalizer_coef_, gamma_gamma_penalizer_coef_ : float
        Penalizer each fit converged with.
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
        time_unit: str = "D",
        horizon_months: int = 12,
        monthly_discount_rate: float = 0.01,
        penalizer_coef: float = 0.0,
        penalizer_retries: tuple[float, ...] = (0.001, 0.01, 0.1),
        engine: str = "segml",
        max_iter: int = 1000,
        min_repeat_customers: int = 20,
        max_spend_frequency_correlation: float = 0.3,
        interval_level: float = 0.9,
        n_draws: int = 200,
        random_state=None,
    ):
        self.time_unit = time_unit
        self.horizon_months = horizon_months
        self.monthly_discount_rate = monthly_discount_rate
        self.penalizer_coef = penalizer_coef
        self.penalizer_retries = penalizer_retries
        self.engine = engine
        self.max_iter = max_iter
        self.min_repeat_customers = min_repeat_customers
        self.max_spend_frequency_correlation = max_spend_frequency_correlation
        self.interval_level = interval_level
        self.n_draws = n_draws
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    def fit(self, rfm: pd.DataFrame, y=None) -> CLVModel:
        """Fit BG/NBD on every customer and Gamma-Gamma on the repeat buyers.

        Parameters
        ----------
        rfm : pandas.DataFrame
            One row per customer with ``frequency``, ``recency``, ``T`` (in
            ``time_unit``) and ``monetary_value``, as from
            :func:`segml.features.rfm_summary`. Not kept on the model.
        y : None
            Ignored; present for scikit-learn compatibility.

        Returns
        -------
        CLVModel
            ``self``, fitted.

        Raises
        ------
        CLVInputError
            If a column is missing or holds impossible values, if there are fewer than
            ``min_repeat_customers`` repeat buyers, or a repeat buyer has
            ``monetary_value <= 0``.
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
        frequency, recency, T, monetary = _rfm_arrays(rfm, need_monetary=True)
        repeat = frequency > 0
        n_repeat = int(repeat.sum())
        if n_repeat < self.min_repeat_customers:
            raise CLVInputError(
                f"Only {n_repeat} of {len(frequency)} customers have a repeat purchase "
                f"(frequency > 0); Gamma-Gamma needs at least min_repeat_customers="
                f"{self.min_repeat_customers}. Use a longer observation period or more "
                "customers, or lower min_repeat_customers if you accept a noisy spend model."
            )
        bad_spend = repeat & ~(monetary > 0)
        if bad_spend.any():
            raise CLVInputError(
                f"Column 'monetary_value' is <= 0 for {int(bad_spend.sum())} of {n_repeat} "
                "repeat buyers; Gamma-Gamma models positive spend only. Remove refunds and "
                "zero-value orders before computing RFM (segml.load_transactions drops them)."
            )

        bg_log, bg_scale, bg_hessian, self.bgnbd_penalizer_coef_ = self._fit_with_retries(
            "BG/NBD", lambda pen: self._fit_bgnbd(frequency, recency, T, pen)
        )
        r, alpha_scaled, a, b = np.exp(bg_log)
        self.bgnbd_params_ = {"r": r, "alpha": alpha_scaled / bg_scale, "a": a, "b": b}
        self.bgnbd_params_ = {k: float(v) for k, v in self.bgnbd_params_.items()}
        # Rescaling time shifts log(alpha) by a constant: the covariance is unchanged.
        self.bgnbd_log_covariance_ = _log_covariance(bg_hessian, len(frequency))
        self.bgnbd_standard_errors_ = _standard_errors(
            self.bgnbd_params_, self.bgnbd_log_covariance_
        )

        x_rep, m_rep = frequency[repeat], monetary[repeat]
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = float(np.corrcoef(x_rep, m_rep)[0, 1])
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
            "Gamma-Gamma", lambda pen: self._fit_gamma_gamma(x_rep, m_rep, pen)
        )
        self.gamma_gamma_params_ = dict(
            zip(_gamma_gamma.PARAM_NAMES, (float(v) for v in np.exp(gg_log)), strict=True)
        )
        self.gamma_gamma_log_covariance_ = _log_covariance(gg_hessian, n_repeat)
        self.gamma_gamma_standard_errors_ = _standard_errors(
            self.gamma_gamma_params_, self.gamma_gamma_log_covariance_
        )
        self.n_customers_ = len(frequency)
        self.n_repeat_customers_ = n_repeat
        return self

    def _check_hyperparameters(self) -> None:
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
        if not (isinstance(self.n_draws, numbers.Integral) and self.n_draws >= 2):
            raise CLVInputError(f"n_draws must be a whole number >= 2, got {self.n_draws!r}.")
        if not 0 < self.interval_level < 1:
            raise CLVInputError(f"interval_level must be in (0, 1), got {self.interval_level!r}.")

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

    def _fit_bgnbd(self, frequency, recency, T, penalizer):
        if self.engine == "segml":
            result, scale = _bgnbd.fit(
                frequency, recency, T, penalizer_coef=penalizer, max_iter=self.max_iter
            )
            if not result.converged:
                return None, result.message
            return (result.log_params, scale, result.hessian), None
        from lifetimes import BetaGeoFitter

        fitter, reason = _run_lifetimes(
            lambda: BetaGeoFitter(penalizer_coef=penalizer).fit(frequency, recency, T)
        )
        if fitter is None:
            return None, reason
        scale = 1.0 / float(np.max(T))
        params = fitter.params_.to_numpy(dtype=float).copy()
        params[1] *= scale
        log_params = np.log(params)
        if not np.all(np.abs(log_params) < MAX_ABS_LOG_PARAM):
            # lifetimes reports success while a parameter runs off to 0 or infinity.
            return None, "a parameter ran off to 0 or infinity (the data do not identify it)"
        hessian = _bgnbd.log_likelihood_hessian(
            log_params, frequency, recency, T, scale=scale, penalizer_coef=penalizer
        )
        return (log_params, scale, hessian), None

    def _fit_gamma_gamma(self, frequency, monetary, penalizer):
        if self.engine == "segml":
            result = _gamma_gamma.fit(
                frequency, monetary, penalizer_coef=penalizer, max_iter=self.max_iter
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

    def _bg(self) -> tuple[float, float, float, float]:
        check_is_fitted(self, "bgnbd_params_")
        return tuple(self.bgnbd_params_[k] for k in _bgnbd.PARAM_NAMES)

    def _gg(self) -> tuple[float, float, float]:
        check_is_fitted(self, "gamma_gamma_params_")
        return tuple(self.gamma_gamma_params_[k] for k in _gamma_gamma.PARAM_NAMES)

    def expected_purchases(self, rfm: pd.DataFrame, horizon: float | None = None) -> pd.Series:
        """Expected repeat purchases in the next ``horizon`` periods (FHL 2005, eq. 10).

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
            ``conditional_expected_number_of_purchases_up_to_time``.

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
        values = _bgnbd.expected_purchases(self._bg(), frequency, recency, T, horizon)
        return pd.Series(values, index=rfm.index, name="expected_purchases")

    def p_alive(self, rfm: pd.DataFrame) -> pd.Series:
        """Probability that each customer is still active ("alive") at the end of the data.

        Customers with ``frequency == 0`` get exactly 1: BG/NBD lets a customer drop
        out only right after a purchase, so without a repeat purchase there is no
        evidence. It is not "safe from churn" (see ``has_repeat_purchase`` in
        :meth:`predict`).

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
        values = _bgnbd.p_alive(self._bg(), frequency, recency, T)
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
        values = self._clv_values(self._bg(), self._gg(), frequency, recency, T, monetary)
        return pd.Series(values, index=rfm.index, name="clv")

    def _clv_values(self, bg, gg, frequency, recency, T, monetary):
        purchases = _bgnbd.discounted_purchases(
            bg,
            frequency,
            recency,
            T,
            periods_per_month=self.periods_per_month,
            months=int(self.horizon_months),
            discount=self.monthly_discount_rate,
        )
        return _gamma_gamma.expected_spend(gg, frequency, monetary) * purchases

    def clv_interval(self, rfm: pd.DataFrame, level: float | None = None) -> pd.DataFrame:
        """Interval of each customer's CLV from the uncertainty of the fitted parameters.

        Draws ``n_draws`` parameter sets from the normal approximation of each model's
        log-parameters at the optimum (covariance: inverse Hessian over customers,
        ``*_log_covariance_``), seeded by ``random_state``, recomputes CLV for each and
        takes the central ``level`` quantiles. It reflects estimation uncertainty only
        (how sure the model is of its parameters), not the spread of a single
        customer's future behaviour. Cost: ``n_draws`` times the hypergeometric work
        on distinct (frequency, T) pairs, plus ``n_draws`` passes over the customers.

        Returns
        -------
        pandas.DataFrame
            ``clv_lower`` and ``clv_upper``, indexed like ``rfm``.

        Examples
        --------
        >>> import pandas as pd
        >>> model = CLVModel.from_dict(_example_document()).set_params(
        ...     n_draws=50, random_state=0)
        >>> rfm = pd.DataFrame({"frequency": [4.0], "recency": [30.0], "T": [38.0],
        ...                     "monetary_value": [50.0]})
        >>> band = model.clv_interval(rfm)
        >>> bool((band["clv_lower"] < model.clv(rfm)).all() and
        ...      (model.clv(rfm) < band["clv_upper"]).all())
        True
        """
        level = self.interval_level if level is None else level
        if not 0 < level < 1:
            raise CLVInputError(f"level must be in (0, 1), got {level!r}.")
        frequency, recency, T, monetary = _rfm_arrays(rfm, need_monetary=True)
        # One generator for both draws, so the BG/NBD and Gamma-Gamma draws are
        # independent of each other and the whole interval is seeded by random_state.
        rng = check_random_state(self.random_state)
        bg_draws = _draw(self._bg(), self.bgnbd_log_covariance_, "BG/NBD", self, rng)
        gg_draws = _draw(self._gg(), self.gamma_gamma_log_covariance_, "Gamma-Gamma", self, rng)
        # The hypergeometric part depends on (frequency, T) only: once per draw and
        # distinct pair. Then customers go in blocks so that draws x block stays small.
        (x_u, T_u), pair, _ = distinct_rows(frequency, T)
        per_pair = np.stack(
            [
                _bgnbd.discounted_survival_drop(
                    bg,
                    x_u,
                    T_u,
                    periods_per_month=self.periods_per_month,
                    months=int(self.horizon_months),
                    discount=self.monthly_discount_rate,
                )
                for bg in bg_draws
            ]
        )
        n = len(frequency)
        lower, upper = np.empty(n), np.empty(n)
        block = max(1, _INTERVAL_CELLS // self.n_draws)
        quantiles = [(1 - level) / 2, (1 + level) / 2]
        for start in range(0, n, block):
            part = slice(start, start + block)
            x, t_x, age, m = frequency[part], recency[part], T[part], monetary[part]
            values = np.stack(
                [
                    _gamma_gamma.expected_spend(gg, x, m)
                    * _bgnbd.first_over_denominator(bg, x, t_x, age)
                    * drop[pair[part]]
                    for bg, gg, drop in zip(bg_draws, gg_draws, per_pair, strict=True)
                ]
            )
            lower[part], upper[part] = np.quantile(values, quantiles, axis=0)
        return pd.DataFrame({"clv_lower": lower, "clv_upper": upper}, index=rfm.index)

    def predict(self, rfm: pd.DataFrame, *, interval: bool = False) -> pd.DataFrame:
        """All predictions per customer, one column each.

        Parameters
        ----------
        rfm : pandas.DataFrame
            ``frequency``, ``recency``, ``T``, ``monetary_value`` per customer.
        interval : bool, default False
            Add ``clv_lower`` / ``clv_upper`` from :meth:`clv_interval` (slower).

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
        out = pd.DataFrame(
            {
                "expected_purchases": self.expected_purchases(rfm),
                "p_alive": self.p_alive(rfm),
                "expected_spend": self.expected_spend(rfm),
                "clv": self.clv(rfm),
                "has_repeat_purchase": rfm["frequency"].to_numpy() > 0,
            },
            index=rfm.index,
        )
        if interval:
            out = out.join(self.clv_interval(rfm))
        return out

    def parameter_summary(self) -> pd.DataFrame:
        """Fitted parameters with standard errors and 95% intervals, one row each.

        Intervals come from the normal approximation of the log-parameter (the one
        :meth:`clv_interval` samples), ``exp(log(theta) +- 1.96 se(log theta))``, so
        they stay positive; lifetimes' ``summary`` uses ``theta +- 1.96 se`` instead.

        Returns
        -------
        pandas.DataFrame
            Indexed by (``model``, ``parameter``) with ``estimate``, ``standard_error``,
            ``lower_95``, ``upper_95``.

        Examples
        --------
        >>> model = CLVModel.from_dict(_example_document())
        >>> model.parameter_summary().loc[("bgnbd", "r")].round(3).tolist()
        [0.243, 0.013, 0.219, 0.27]
        """
        check_is_fitted(self, "gamma_gamma_params_")
        rows = []
        for name, params, errors, covariance in (
            ("bgnbd", self.bgnbd_params_, self.bgnbd_standard_errors_, self.bgnbd_log_covariance_),
            (
                "gamma_gamma",
                self.gamma_gamma_params_,
                self.gamma_gamma_standard_errors_,
                self.gamma_gamma_log_covariance_,
            ),
        ):
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

        FHL 2005, eq. 8; ``t`` in ``time_unit`` periods. Used to compare the model's
        distribution of repeat purchases with the observed one.

        Examples
        --------
        >>> model = CLVModel.from_dict(_example_document())
        >>> pmf = model.repeat_purchase_pmf(38.0, 200)
        >>> round(float(pmf[0]), 3), round(float(pmf.sum()), 6)
        (0.577, 1.0)
        """
        return _bgnbd.repeat_purchase_pmf(self._bg(), float(t), int(max_purchases))

    # -------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """The fitted model as a JSON-able dict: hyperparameters, parameters, versions.

        Examples
        --------
        >>> import json
        >>> document = CLVModel.from_dict(_example_document()).to_dict()
        >>> document["format"], sorted(document["bgnbd_params"])
        ('segml.CLVModel', ['a', 'alpha', 'b', 'r'])
        >>> CLVModel.from_dict(json.loads(json.dumps(document))).bgnbd_params_["r"]
        0.243
        """
        check_is_fitted(self, "gamma_gamma_params_")
        from segml.persistence import versions

        hyper = self.get_params()
        if not (hyper["random_state"] is None or isinstance(hyper["random_state"], int)):
            raise CLVInputError(
                "random_state must be an int or None to save the model as data, got "
                f"{type(hyper['random_state']).__name__}."
            )
        hyper["penalizer_retries"] = list(hyper["penalizer_retries"])
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "hyperparameters": hyper,
            "bgnbd_params": dict(self.bgnbd_params_),
            "bgnbd_standard_errors": _nan_to_none(self.bgnbd_standard_errors_),
            "bgnbd_log_covariance": _nan_to_none(self.bgnbd_log_covariance_.tolist()),
            "bgnbd_penalizer_coef": self.bgnbd_penalizer_coef_,
            "gamma_gamma_params": dict(self.gamma_gamma_params_),
            "gamma_gamma_standard_errors": _nan_to_none(self.gamma_gamma_standard_errors_),
            "gamma_gamma_log_covariance": _nan_to_none(self.gamma_gamma_log_covariance_.tolist()),
            "gamma_gamma_penalizer_coef": self.gamma_gamma_penalizer_coef_,
            "n_customers": self.n_customers_,
            "n_repeat_customers": self.n_repeat_customers_,
            "frequency_spend_correlation": _nan_to_none(self.frequency_spend_correlation_),
            "versions": versions(),
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> CLVModel:
        """Rebuild a fitted model from :meth:`to_dict`'s output; predicts identically.

        Raises
        ------
        segml.persistence.PersistenceError
            If the document is not a saved CLVModel of a known format version.
        """
        from segml.persistence import PersistenceError, check_document

        check_document(document, _FORMAT, _FORMAT_VERSION)
        try:
            hyper = dict(document["hyperparameters"])
            hyper["penalizer_retries"] = tuple(hyper["penalizer_retries"])
            model = cls(**hyper)
            model.bgnbd_params_ = {
                k: float(document["bgnbd_params"][k]) for k in _bgnbd.PARAM_NAMES
            }
            model.gamma_gamma_params_ = {
                k: float(document["gamma_gamma_params"][k]) for k in _gamma_gamma.PARAM_NAMES
            }
            for prefix in ("bgnbd", "gamma_gamma"):
                setattr(
                    model,
                    f"{prefix}_standard_errors_",
                    _none_to_nan(document[f"{prefix}_standard_errors"]),
                )
                setattr(
                    model,
                    f"{prefix}_log_covariance_",
                    np.array(_none_to_nan(document[f"{prefix}_log_covariance"]), dtype=float),
                )
                setattr(model, f"{prefix}_penalizer_coef_", document[f"{prefix}_penalizer_coef"])
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


def _draw(params, log_covariance, name, model, rng) -> np.ndarray:
    if not np.all(np.isfinite(log_covariance)):
        raise CLVInputError(
            f"The {name} fit has no finite covariance (its Hessian is not positive definite), "
            "so there is no normal approximation to draw CLV intervals from."
        )
    draws = rng.multivariate_normal(np.log(params), log_covariance, size=model.n_draws)
    return np.exp(draws)


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
