"""BG/BB: purchases at discrete opportunities (Fader, Hardie & Shang 2010).

For businesses where a customer can transact only at fixed occasions (a yearly
fundraising appeal, an annual event, a subscription box): at each of ``n``
opportunities a live customer transacts with probability ``p ~ Beta(alpha, beta)``
and, before each later opportunity, dies with probability ``theta ~ Beta(gamma,
delta)``. A customer is summarised by ``frequency`` (opportunities with a
transaction, ``x``), ``recency`` (the opportunity of the last one, ``t_x``) and
``n_periods`` (``n``); customers with equal rows are one row with a count, as in
the paper's donation data.

The likelihood is Fader, Hardie & Shang (2010) eq. 5, the predictions eq. 13
(expected transactions in the next ``m`` opportunities), A10 (P(alive)) and eq. 7
(distribution of ``x`` in the first ``n``); all as lifetimes 0.11.3's
``BetaGeoBetaBinomFitter`` computes them. The paper's estimates for the donation
data that lifetimes ships (``load_donations``) are reproduced by the tests.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, logsumexp

from segml.models._distinct import distinct_rows
from segml.models._estimator import Estimator, check_fitted
from segml.models._fitted_document import fitted_document, restore_fitted
from segml.models._mle import minimize_log_params, numerical_hessian

__all__ = ["BGBBInputError", "BGBBModel"]

PARAM_NAMES = ("alpha", "beta", "gamma", "delta")
_FORMAT = "segml.BGBBModel"
_FORMAT_VERSION = 1
_GRADIENT_STEP = 1e-5


class BGBBInputError(ValueError):
    """The table or a hyperparameter given to :class:`BGBBModel` cannot be used."""


def _log_likelihood_rows(params, x, t_x, n):
    """Per-row log-likelihood, FHS 2010 eq. 5.

    ``L = B(a+x, b+n-x)/B(a,b) B(g, d+n)/B(g,d) + sum_{i=0}^{n-t_x-1}
    B(a+x, b+t_x-x+i)/B(a,b) B(g+1, d+t_x+i)/B(g,d)``: alive through all ``n``
    opportunities, or died just after opportunity ``t_x + i``. The sum runs over a
    (rows x opportunities) grid: ``n`` is small in this setting.
    """
    alpha, beta, gamma, delta = params
    log_norm = betaln(alpha, beta) + betaln(gamma, delta)
    alive = betaln(alpha + x, beta + n - x) + betaln(gamma, delta + n)
    i = np.arange(max(int(np.max(n - t_x)), 1))[None, :]
    terms = betaln(alpha + x[:, None], beta + (t_x - x)[:, None] + i) + betaln(
        gamma + 1, delta + t_x[:, None] + i
    )
    terms = np.where(i < (n - t_x)[:, None], terms, -np.inf)
    return logsumexp(np.column_stack([alive, terms]), axis=1) - log_norm


class BGBBModel(Estimator):
    """Beta-geometric/beta-Bernoulli model of transactions at discrete opportunities.

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        L2 penalty on the parameters added to the mean negative log-likelihood
        (lifetimes' ``penalizer_coef``).
    max_iter : int, default 1000
        Iteration limit of the optimisation.

    Attributes
    ----------
    params_ : dict
        ``alpha``, ``beta`` (transaction probability ``p ~ Beta(alpha, beta)``),
        ``gamma``, ``delta`` (drop-out probability ``theta ~ Beta(gamma, delta)``).
    standard_errors_ : dict
        Delta-method standard errors from the log-parameter Hessian.
    log_covariance_ : numpy.ndarray
        Covariance of the log-parameters.
    log_likelihood_ : float
        Log-likelihood at the optimum, summed over customers.
    n_customers_ : int
        Customers fitted on (sum of the counts).

    Examples
    --------
    The paper's donation data (11,104 first-time donors of 1995, six yearly
    opportunities), as lifetimes ships it:

    >>> import importlib.util, pathlib
    >>> import pandas as pd
    >>> root = pathlib.Path(importlib.util.find_spec("lifetimes").origin).parent
    >>> donations = pd.read_csv(root / "datasets" / "donations.csv").rename(
    ...     columns={"periods": "n_periods", "weights": "count"})
    >>> model = BGBBModel().fit(donations)
    >>> {k: round(v, 3) for k, v in model.params_.items()}
    {'alpha': 1.204, 'beta': 0.75, 'gamma': 0.657, 'delta': 2.783}
    """

    def __init__(self, *, penalizer_coef: float = 0.0, max_iter: int = 1000):
        self.penalizer_coef = penalizer_coef
        self.max_iter = max_iter

    def fit(self, data: pd.DataFrame, y=None) -> BGBBModel:
        """Fit on ``frequency``, ``recency``, ``n_periods`` and an optional ``count`` column.

        Parameters
        ----------
        data : pandas.DataFrame
            One row per customer, or per distinct (frequency, recency, n_periods)
            with the number of customers in ``count``.
        y : None
            Ignored.

        Returns
        -------
        BGBBModel
            ``self``, fitted.

        Raises
        ------
        BGBBInputError
            A column is missing, not whole numbers, or inconsistent
            (``frequency <= recency <= n_periods``, ``recency = 0`` iff no
            transaction), or the fit did not converge.
        """
        if not self.penalizer_coef >= 0:
            raise BGBBInputError(f"penalizer_coef must be >= 0, got {self.penalizer_coef!r}.")
        x, t_x, n, w = _arrays(data, need_count=True)
        # Customers with equal rows share a likelihood term: fit on distinct rows with
        # summed counts (exact), however the table came.
        (x, t_x, n), inverse, _ = distinct_rows(x, t_x, n)
        w = np.bincount(inverse, weights=w)
        W = float(w.sum())

        def mean_nll(log_params):
            params = np.exp(log_params)
            ll = _log_likelihood_rows(params, x, t_x, n)
            return -np.dot(w, ll) / W + self.penalizer_coef * np.sum(params**2)

        def objective(log_params):
            grad = np.empty(4)
            for k in range(4):
                step = np.zeros(4)
                step[k] = _GRADIENT_STEP
                grad[k] = (mean_nll(log_params + step) - mean_nll(log_params - step)) / (
                    2 * _GRADIENT_STEP
                )
            return mean_nll(log_params), grad

        # lifetimes starts at log-parameters 0.1 too.
        result = minimize_log_params(objective, np.full(4, 0.1), max_iter=self.max_iter)
        if not result.converged:
            raise BGBBInputError(
                f"BG/BB did not converge ({result.message}); try a penalizer_coef > 0 or "
                "check the data (every customer alive, or none?)."
            )
        values = np.exp(result.log_params)
        self.params_ = {k: float(v) for k, v in zip(PARAM_NAMES, values, strict=True)}
        hessian = numerical_hessian(lambda lp: objective(lp)[1], result.log_params)
        try:
            np.linalg.cholesky(hessian)
            self.log_covariance_ = np.linalg.inv(hessian) / W
        except np.linalg.LinAlgError:
            self.log_covariance_ = np.full((4, 4), np.nan)
        self.standard_errors_ = {
            k: float(v * math.sqrt(var)) if np.isfinite(var) else math.nan
            for (k, v), var in zip(self.params_.items(), np.diag(self.log_covariance_), strict=True)
        }
        self.log_likelihood_ = float(np.dot(w, _log_likelihood_rows(values, x, t_x, n)))
        self.n_customers_ = int(W)
        return self

    def _params(self):
        check_fitted(self, "params_")
        return tuple(self.params_[k] for k in PARAM_NAMES)

    def log_likelihood(self, data: pd.DataFrame) -> float:
        """Log-likelihood of ``data`` (summed over customers, counts applied), FHS eq. 5.

        Examples
        --------
        >>> import pandas as pd
        >>> model = BGBBModel.from_dict(_example_document())
        >>> table = pd.DataFrame({"frequency": [0, 6], "recency": [0, 6], "n_periods": [6, 6]})
        >>> round(model.log_likelihood(table), 4)
        -3.3495
        """
        x, t_x, n, w = _arrays(data, need_count=False)
        return float(np.dot(w, _log_likelihood_rows(self._params(), x, t_x, n)))

    def expected_purchases(self, data: pd.DataFrame, n_future_periods: int) -> pd.Series:
        """Expected transactions in the next ``n_future_periods`` opportunities (FHS eq. 13).

        Examples
        --------
        >>> import pandas as pd
        >>> model = BGBBModel.from_dict(_example_document())
        >>> table = pd.DataFrame({"frequency": [0, 6], "recency": [0, 6], "n_periods": [6, 6]})
        >>> model.expected_purchases(table, 5).round(3).tolist()
        [0.073, 3.752]
        """
        alpha, beta, gamma, delta = self._params()
        x_all, t_x_all, n_all, _ = _arrays(data, need_count=False)
        # Evaluated once per distinct (x, t_x, n) row: few in a discrete setting.
        (x, t_x, n), inverse, _ = distinct_rows(x_all, t_x_all, n_all)
        m = float(n_future_periods)
        ll = _log_likelihood_rows(self._params(), x, t_x, n)
        log_p2 = betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta)
        p3 = delta / (gamma - 1) * np.exp(gammaln(gamma + delta) - gammaln(1 + delta))
        p4 = np.exp(gammaln(1 + delta + n) - gammaln(gamma + delta + n))
        p5 = np.exp(gammaln(1 + delta + n + m) - gammaln(gamma + delta + n + m))
        values = np.exp(log_p2 - ll) * p3 * (p4 - p5)
        return pd.Series(values[inverse], index=data.index, name="expected_purchases")

    def p_alive(self, data: pd.DataFrame, n_future_periods: int = 0) -> pd.Series:
        """P(alive at opportunity ``n + n_future_periods`` | history) (FHS eq. A10).

        Examples
        --------
        >>> import pandas as pd
        >>> model = BGBBModel.from_dict(_example_document())
        >>> table = pd.DataFrame({"frequency": [0, 6], "recency": [0, 6], "n_periods": [6, 6]})
        >>> model.p_alive(table).round(3).tolist()
        [0.116, 1.0]
        """
        alpha, beta, gamma, delta = self._params()
        x_all, t_x_all, n_all, _ = _arrays(data, need_count=False)
        (x, t_x, n), inverse, _ = distinct_rows(x_all, t_x_all, n_all)
        m = float(n_future_periods)
        log_p = (
            betaln(alpha + x, beta + n - x)
            - betaln(alpha, beta)
            + betaln(gamma, delta + n + m)
            - betaln(gamma, delta)
            - _log_likelihood_rows(self._params(), x, t_x, n)
        )
        return pd.Series(np.exp(log_p)[inverse], index=data.index, name="p_alive")

    def expected_purchases_new_customer(self, n_periods) -> np.ndarray:
        """E[X(n)]: expected transactions in the first ``n`` opportunities (FHS eq. 9).

        Examples
        --------
        >>> model = BGBBModel.from_dict(_example_document())
        >>> model.expected_purchases_new_customer([1, 6]).round(3).tolist()
        [0.498, 2.22]
        """
        alpha, beta, gamma, delta = self._params()
        n = np.asarray(n_periods, dtype=float)
        ratio = np.exp(gammaln(gamma + delta) + gammaln(1 + delta + n))
        ratio = ratio / np.exp(gammaln(gamma + delta + n) + gammaln(1 + delta))
        return alpha / (alpha + beta) * delta / (gamma - 1) * (1 - ratio)

    def frequency_pmf(self, n_periods: int) -> np.ndarray:
        """P(X(n) = x), x = 0..n: transactions in the first ``n`` opportunities (FHS eq. 7).

        Examples
        --------
        >>> model = BGBBModel.from_dict(_example_document())
        >>> round(float(model.frequency_pmf(6).sum()), 12)
        1.0
        """
        alpha, beta, gamma, delta = self._params()
        n = int(n_periods)
        x = np.arange(n + 1, dtype=float)
        log_binom = gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)
        first = np.exp(
            log_binom
            + betaln(alpha + x, beta + n - x)
            - betaln(alpha, beta)
            + betaln(gamma, delta + n)
            - betaln(gamma, delta)
        )
        # Died after opportunity i (x <= i <= n - 1) with x transactions by then.
        i = np.arange(n, dtype=float)[None, :]
        xx = x[:, None]
        with np.errstate(invalid="ignore"):
            log_terms = (
                gammaln(i + 1)
                - gammaln(xx + 1)
                - gammaln(np.maximum(i - xx, 0) + 1)
                + betaln(alpha + xx, beta + i - xx)
                - betaln(alpha, beta)
                + betaln(gamma + 1, delta + i)
                - betaln(gamma, delta)
            )
        second = np.where(i >= xx, np.exp(log_terms), 0.0).sum(axis=1)
        return first + second

    # ----------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """The fitted model as a JSON-able dict.

        Examples
        --------
        >>> BGBBModel.from_dict(_example_document()).to_dict()["params"]["delta"]
        2.783
        """
        check_fitted(self, "params_")
        return fitted_document(self, _FORMAT, _FORMAT_VERSION)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BGBBModel:
        """Rebuild a fitted model from :meth:`to_dict`'s output."""
        return restore_fitted(cls, document, _FORMAT, _FORMAT_VERSION, PARAM_NAMES)

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically)."""
        from segml.persistence import write_json

        write_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BGBBModel:
        """Read a model written by :meth:`save`."""
        from segml.persistence import read_json

        return cls.from_dict(read_json(path))


def _arrays(data: pd.DataFrame, *, need_count: bool):
    if not isinstance(data, pd.DataFrame):
        raise BGBBInputError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    columns = ["frequency", "recency", "n_periods"]
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise BGBBInputError(
            f"data lacks the column(s) {missing}; found {list(data.columns)}. BG/BB needs "
            "frequency (opportunities with a transaction), recency (the last one) and "
            "n_periods (opportunities observed), plus an optional count per row."
        )
    if len(data) == 0:
        raise BGBBInputError("data has no rows.")
    out = []
    for column in [*columns, "count"]:
        if column == "count" and column not in data.columns:
            out.append(np.ones(len(data)))
            continue
        values = data[column].to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values) | (values < 0) | (values != np.round(values))
        if bad.any():
            raise BGBBInputError(
                f"Column {column!r} has {int(bad.sum())} of {len(data)} values that are not "
                "whole numbers >= 0."
            )
        out.append(values)
    x, t_x, n, w = out
    inconsistent = (x > t_x) | (t_x > n) | ((x == 0) != (t_x == 0))
    if inconsistent.any():
        raise BGBBInputError(
            f"{int(inconsistent.sum())} of {len(data)} rows break frequency <= recency <= "
            "n_periods with recency = 0 exactly when frequency = 0; recount them."
        )
    if need_count and w.sum() == 0:
        raise BGBBInputError("Column 'count' sums to 0: no customer to fit.")
    return x, t_x, n, w


def _example_document() -> dict[str, Any]:
    """A saved model with the paper's donation estimates, for the examples."""
    return {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "hyperparameters": BGBBModel().get_params(),
        "params": {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783},
        "standard_errors": dict.fromkeys(PARAM_NAMES),
        "log_covariance": [[None] * 4] * 4,
        "log_likelihood": -33225.6,
        "n_customers": 11104,
        "versions": {},
    }
