"""Retention of contract customers: the shifted-beta-geometric model (Fader & Hardie 2007).

For subscriptions and contracts, where a customer's departure is observed: at the
end of each period a customer renews or cancels; each has their own constant
cancellation probability ``theta ~ Beta(alpha, beta)``. Heterogeneity alone makes
the cohort's retention rate rise over time (the fickle leave first), which a single
churn rate cannot project. Fader & Hardie (2007), "How to project customer
retention", Journal of Interactive Marketing 21 (1):

- eq. 3: ``P(T = t) = B(alpha+1, beta+t-1) / B(alpha, beta)``, t = 1, 2, ...
- eq. 4: ``S(t) = B(alpha, beta+t) / B(alpha, beta)``
- eq. 6: retention rate ``r_t = S(t)/S(t-1) = (beta+t-1) / (alpha+beta+t-1)``
- eq. 7: the log-likelihood of a cohort's survivor counts, churners of period t
  contributing ``ln P(T = t)`` and the survivors of the last period ``ln S(T)``.

The discounted expected residual lifetime (DERL) of a customer who has renewed
``tenure`` times is Fader & Hardie (2010), "Customer-base valuation in a contractual
setting: the perils of ignoring heterogeneity", eq. 6.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, hyp2f1

from segml.models._estimator import Estimator, check_fitted
from segml.models._fitted_document import fitted_document, restore_fitted
from segml.models._mle import minimize_log_params, numerical_hessian

__all__ = ["RetentionInputError", "RetentionModel", "survivors_to_tenure"]

PARAM_NAMES = ("alpha", "beta")
_FORMAT = "segml.RetentionModel"
_FORMAT_VERSION = 1
_GRADIENT_STEP = 1e-6


class RetentionInputError(ValueError):
    """The table or a hyperparameter given to :class:`RetentionModel` cannot be used."""


def survivors_to_tenure(survivors) -> pd.DataFrame:
    """A cohort's survivor counts as a (tenure, churned, count) table.

    ``survivors[t]`` is the number still active at the end of period ``t``;
    ``survivors[0]`` is the cohort's size. Customers lost in period ``t`` have
    ``tenure = t`` and ``churned = True``; those still active at the end have the last
    period as tenure and ``churned = False``.

    Examples
    --------
    >>> survivors_to_tenure([1000, 631, 468])
       tenure  churned  count
    0       1     True    369
    1       2     True    163
    2       2    False    468
    """
    counts = np.asarray(survivors, dtype=float)
    if counts.ndim != 1 or len(counts) < 2:
        raise RetentionInputError(
            "survivors must list the cohort size and at least one period's survivors, e.g. "
            "[1000, 631, 468]."
        )
    lost = -np.diff(counts)
    if not np.all(np.isfinite(counts)) or (counts < 0).any() or (lost < 0).any():
        raise RetentionInputError(
            f"survivors must be non-negative and never increase; got {counts.tolist()}."
        )
    periods = len(counts) - 1
    return pd.DataFrame(
        {
            "tenure": np.append(np.arange(1, periods + 1), periods).astype(int),
            "churned": np.append(np.ones(periods, dtype=bool), False),
            "count": np.append(lost, counts[-1]).astype(int),
        }
    )


def _log_likelihood_rows(params, tenure, churned):
    """FH 2007 eq. 7 per row: ``ln P(T = t)`` if churned in period t, else ``ln S(t)``."""
    alpha, beta = params
    log_norm = betaln(alpha, beta)
    lost = betaln(alpha + 1, beta + np.maximum(tenure, 1) - 1) - log_norm
    alive = betaln(alpha, beta + tenure) - log_norm
    return np.where(churned, lost, alive)


class RetentionModel(Estimator):
    """Shifted-beta-geometric retention model for contracts and subscriptions.

    Parameters
    ----------
    max_iter : int, default 1000
        Iteration limit of the optimisation.

    Attributes
    ----------
    params_ : dict
        ``alpha``, ``beta`` of the cancellation probability ``theta ~ Beta(alpha, beta)``.
    standard_errors_ : dict
        Delta-method standard errors from the log-parameter Hessian.
    log_covariance_ : numpy.ndarray
    log_likelihood_ : float
    n_customers_ : int

    Examples
    --------
    Fader & Hardie (2007): the "regular" cohort, years 0-7:

    >>> survivors = [1000, 631, 468, 382, 326, 289, 262, 241]
    >>> model = RetentionModel().fit_survivors(survivors)
    >>> {k: round(v, 3) for k, v in model.params_.items()}
    {'alpha': 0.704, 'beta': 1.182}
    >>> (1000 * model.survival([8, 12])).round(0).tolist()
    [220.0, 170.0]
    """

    def __init__(self, *, max_iter: int = 1000):
        self.max_iter = max_iter

    def fit(self, data: pd.DataFrame, y=None) -> RetentionModel:
        """Fit on one row per customer (``tenure``, ``churned``), or per group with ``count``.

        Parameters
        ----------
        data : pandas.DataFrame
            ``tenure``: whole periods the customer has been a customer (for a churned
            customer, the period in which they cancelled, >= 1; for an active one, the
            renewals made so far, >= 0); ``churned``: bool; optional ``count``.
        y : None
            Ignored.

        Returns
        -------
        RetentionModel
            ``self``, fitted.
        """
        tenure, churned, w = _arrays(data, need_churned=True)
        if w.sum() == 0:
            raise RetentionInputError("Column 'count' sums to 0: no customer to fit.")
        if not churned[w > 0].any():
            raise RetentionInputError(
                f"None of the {int(w.sum())} customers churned: the cancellation "
                "probability is not identified. Fit once some customers have cancelled."
            )
        W = float(w.sum())

        def mean_nll(log_params):
            return -np.dot(w, _log_likelihood_rows(np.exp(log_params), tenure, churned)) / W

        def objective(log_params):
            grad = np.empty(2)
            for k in range(2):
                step = np.zeros(2)
                step[k] = _GRADIENT_STEP
                grad[k] = (mean_nll(log_params + step) - mean_nll(log_params - step)) / (
                    2 * _GRADIENT_STEP
                )
            return mean_nll(log_params), grad

        result = minimize_log_params(objective, np.zeros(2), max_iter=self.max_iter)
        if not result.converged:
            raise RetentionInputError(
                f"The sBG fit did not converge ({result.message}); with very few churners or "
                "periods the parameters may not be identified."
            )
        values = np.exp(result.log_params)
        self.params_ = {k: float(v) for k, v in zip(PARAM_NAMES, values, strict=True)}
        hessian = numerical_hessian(lambda lp: objective(lp)[1], result.log_params)
        try:
            np.linalg.cholesky(hessian)
            self.log_covariance_ = np.linalg.inv(hessian) / W
        except np.linalg.LinAlgError:
            self.log_covariance_ = np.full((2, 2), np.nan)
        self.standard_errors_ = {
            k: float(v * math.sqrt(var)) if np.isfinite(var) else math.nan
            for (k, v), var in zip(self.params_.items(), np.diag(self.log_covariance_), strict=True)
        }
        self.log_likelihood_ = float(np.dot(w, _log_likelihood_rows(values, tenure, churned)))
        self.n_customers_ = int(W)
        return self

    def fit_survivors(self, survivors) -> RetentionModel:
        """Fit on a cohort's survivor counts (``survivors[0]`` = cohort size).

        Examples
        --------
        >>> model = RetentionModel().fit_survivors([1000, 869, 743, 653, 593, 551, 517, 491])
        >>> {k: round(v, 3) for k, v in model.params_.items()}
        {'alpha': 0.668, 'beta': 3.806}
        """
        return self.fit(survivors_to_tenure(survivors))

    def _params(self):
        check_fitted(self, "params_")
        return self.params_["alpha"], self.params_["beta"]

    def log_likelihood(self, data: pd.DataFrame) -> float:
        """Log-likelihood of ``data`` (FH 2007 eq. 7), counts applied.

        Examples
        --------
        >>> model = RetentionModel.from_dict(_example_document())
        >>> round(model.log_likelihood(survivors_to_tenure([1000, 631, 468])), 1)
        -1019.3
        """
        tenure, churned, w = _arrays(data, need_churned=True)
        return float(np.dot(w, _log_likelihood_rows(self._params(), tenure, churned)))

    def survival(self, periods) -> np.ndarray:
        """S(t): share of a new cohort still active after ``t`` periods (FH 2007 eq. 4).

        Examples
        --------
        >>> model = RetentionModel.from_dict(_example_document())
        >>> model.survival([0, 1, 2]).round(3).tolist()
        [1.0, 0.627, 0.474]
        """
        alpha, beta = self._params()
        t = _periods(periods)
        return np.exp(betaln(alpha, beta + t) - betaln(alpha, beta))

    def retention_rate(self, periods) -> np.ndarray:
        """r_t = S(t) / S(t-1): share of period t-1's survivors who renew (FH 2007 eq. 6).

        Examples
        --------
        >>> model = RetentionModel.from_dict(_example_document())
        >>> model.retention_rate([1, 2, 10]).round(3).tolist()
        [0.627, 0.756, 0.935]
        """
        alpha, beta = self._params()
        t = _periods(periods)
        if (t < 1).any():
            raise RetentionInputError("retention_rate is defined for periods t >= 1.")
        return (beta + t - 1) / (alpha + beta + t - 1)

    def churn_pmf(self, periods) -> np.ndarray:
        """P(T = t): share of a new cohort that cancels in period t (FH 2007 eq. 3).

        Examples
        --------
        >>> model = RetentionModel.from_dict(_example_document())
        >>> model.churn_pmf([1, 2]).round(3).tolist()
        [0.373, 0.153]
        """
        alpha, beta = self._params()
        t = _periods(periods)
        if (t < 1).any():
            raise RetentionInputError("churn_pmf is defined for periods t >= 1.")
        return np.exp(betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta))

    def derl(self, data: pd.DataFrame, discount_rate: float) -> pd.Series:
        """Discounted expected residual lifetime of each customer, in periods.

        For an active customer who has renewed ``tenure`` times, the expected number
        of further periods as a customer, the next one undiscounted and period ``k``
        after it discounted by ``(1 + discount_rate) ** k`` (Fader & Hardie 2010,
        eq. 6 with ``n = tenure + 1``):
        ``B(alpha, beta+n) / B(alpha, beta+n-1) 2F1(1, beta+n; alpha+beta+n; 1/(1+d))``.
        Multiply by the margin per period for residual value. Churned customers get 0.

        Examples
        --------
        >>> import pandas as pd
        >>> model = RetentionModel.from_dict(_example_document())
        >>> table = pd.DataFrame({"tenure": [0, 1, 5, 3], "churned": [False, False, False, True]})
        >>> model.derl(table, discount_rate=0.1).round(2).tolist()
        [2.96, 4.1, 6.26, 0.0]
        """
        if not discount_rate > 0:
            raise RetentionInputError(
                f"discount_rate must be > 0 (the sum diverges without discounting), got "
                f"{discount_rate!r}."
            )
        alpha, beta = self._params()
        tenure, churned, _ = _arrays(data, need_churned="churned" in data.columns)
        n = tenure + 1
        values = np.exp(betaln(alpha, beta + n) - betaln(alpha, beta + n - 1)) * hyp2f1(
            1.0, beta + n, alpha + beta + n, 1.0 / (1.0 + discount_rate)
        )
        return pd.Series(np.where(churned, 0.0, values), index=data.index, name="derl")

    # ----------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """The fitted model as a JSON-able dict.

        Examples
        --------
        >>> RetentionModel.from_dict(_example_document()).to_dict()["params"]
        {'alpha': 0.704, 'beta': 1.182}
        """
        check_fitted(self, "params_")
        return fitted_document(self, _FORMAT, _FORMAT_VERSION)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> RetentionModel:
        """Rebuild a fitted model from :meth:`to_dict`'s output."""
        return restore_fitted(cls, document, _FORMAT, _FORMAT_VERSION, PARAM_NAMES)

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically)."""
        from segml.persistence import write_json

        write_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RetentionModel:
        """Read a model written by :meth:`save`."""
        from segml.persistence import read_json

        return cls.from_dict(read_json(path))


def _periods(periods) -> np.ndarray:
    t = np.asarray(periods, dtype=float)
    if not np.all(np.isfinite(t) & (t >= 0) & (t == np.round(t))):
        raise RetentionInputError("periods must be whole numbers >= 0.")
    return t


def _arrays(data: pd.DataFrame, *, need_churned: bool):
    if not isinstance(data, pd.DataFrame):
        raise RetentionInputError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    columns = ["tenure", "churned"] if need_churned else ["tenure"]
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise RetentionInputError(
            f"data lacks the column(s) {missing}; found {list(data.columns)}. The sBG model "
            "needs tenure (whole periods) and churned (bool) per customer, or use "
            "RetentionModel.fit_survivors for cohort survivor counts."
        )
    n = len(data)
    tenure = data["tenure"].to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(tenure) | (tenure < 0) | (tenure != np.round(tenure))
    if bad.any():
        raise RetentionInputError(
            f"Column 'tenure' has {int(bad.sum())} of {n} values that are not whole numbers >= 0."
        )
    if need_churned:
        if data["churned"].isna().any() or not pd.api.types.is_bool_dtype(data["churned"]):
            raise RetentionInputError(
                f"Column 'churned' must be bool without missing values, got dtype "
                f"{data['churned'].dtype}."
            )
        churned = data["churned"].to_numpy(dtype=bool)
    else:
        churned = np.zeros(n, dtype=bool)
    early = churned & (tenure < 1)
    if early.any():
        raise RetentionInputError(
            f"{int(early.sum())} of {n} churned customers have tenure 0; a cancellation "
            "happens in period 1 at the earliest."
        )
    if "count" in data.columns:
        w = data["count"].to_numpy(dtype=float, na_value=np.nan)
        if not np.all(np.isfinite(w) & (w >= 0)):
            raise RetentionInputError("Column 'count' must be finite and >= 0.")
    else:
        w = np.ones(n)
    return tenure, churned, w


def _example_document() -> dict[str, Any]:
    """A saved model with Fader & Hardie's (2007) "regular" estimates, for the examples."""
    return {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "hyperparameters": RetentionModel().get_params(),
        "params": {"alpha": 0.704, "beta": 1.182},
        "standard_errors": {"alpha": None, "beta": None},
        "log_covariance": [[None, None], [None, None]],
        "log_likelihood": -1680.3,
        "n_customers": 1000,
        "versions": {},
    }
