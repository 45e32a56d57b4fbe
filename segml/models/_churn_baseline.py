"""The churn score to deploy when the classifier loses to a free baseline.

A churn classifier that ranks next quarter's churners worse than ``1 - p_alive``,
``-expected_purchases`` or the days since the last purchase
(:func:`segml.models._churn_evaluation.churn_baselines`) should not score customers:
the baseline should. A baseline is a ranking, not a probability, so it is turned
into one by Platt scaling (Platt 1999): a logistic regression of the churn label on
the standardised baseline score,

    P(churn | s) = 1 / (1 + exp(-(coef * (s - mean) / scale + intercept))).

The map is strictly monotone, so the calibrated score ranks customers exactly as
the baseline does (same ROC AUC); two numbers are fitted, saved as JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from segml.models._churn_evaluation import _BASELINES, churn_baselines
from segml.models._estimator import Estimator, check_fitted
from segml.models.churn import RISK_BANDS

__all__ = ["BaselineChurnModel"]

_FORMAT = "segml.BaselineChurnModel"
_FORMAT_VERSION = 1


class BaselineChurnModel(Estimator):
    """P(churn) from one free baseline score, calibrated by Platt scaling.

    Parameters
    ----------
    baseline : {"1 - p_alive", "-expected_purchases", "days_since_last_purchase"}
        The baseline of :func:`~segml.models._churn_evaluation.churn_baselines`.
    high_risk_threshold, medium_risk_threshold : float, default 0.8, 0.5
        Risk bands, as :class:`~segml.models.churn.ChurnModel`.

    Attributes
    ----------
    coef_, intercept_ : float
        The logistic map of the standardised score.
    score_mean_, score_scale_ : float
        Mean and standard deviation of the baseline score at fitting.
    n_customers_ : int
    churn_rate_ : float

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"p_alive": [0.9, 0.8, 0.3, 0.1],
    ...                   "expected_purchases": [2.0, 1.0, 0.2, 0.1],
    ...                   "days_since_last_purchase": [10.0, 40.0, 200.0, 300.0]})
    >>> model = BaselineChurnModel(baseline="days_since_last_purchase").fit(X, [0, 0, 1, 1])
    >>> p = model.churn_probability(X)
    >>> bool(p.is_monotonic_increasing), model.risk_band_codes(p).tolist()
    (True, [2, 2, 0, 0])
    """

    def __init__(
        self,
        *,
        baseline: str = "-expected_purchases",
        high_risk_threshold: float = 0.8,
        medium_risk_threshold: float = 0.5,
    ):
        self.baseline = baseline
        self.high_risk_threshold = high_risk_threshold
        self.medium_risk_threshold = medium_risk_threshold

    def _score(self, X: pd.DataFrame) -> np.ndarray:
        if self.baseline not in _BASELINES:
            raise ValueError(f"baseline must be one of {list(_BASELINES)}, got {self.baseline!r}.")
        return churn_baselines(X)[self.baseline].to_numpy(dtype="float64")

    def fit(self, X: pd.DataFrame, y) -> BaselineChurnModel:
        """Fit the logistic map of the baseline score to churn labels ``y`` (0/1).

        Raises
        ------
        ValueError
            Unknown baseline, missing feature columns, non-finite scores, labels
            other than 0/1 or of one class, or a length that differs from ``X``.
        """
        score = self._score(X)
        labels = np.asarray(y)
        if len(labels) != len(score):
            raise ValueError(f"y has {len(labels)} labels for {len(score)} customers in X.")
        if not np.isin(labels, (0, 1)).all() or len(np.unique(labels)) < 2:
            raise ValueError(
                f"y must hold both 0 and 1 (churn labels); got the values {np.unique(labels)[:5]}."
            )
        bad = ~np.isfinite(score)
        if bad.any():
            raise ValueError(
                f"The baseline {self.baseline!r} is missing or infinite for {int(bad.sum())} of "
                f"{len(score)} customers; fill the CLV outputs before fitting."
            )
        self.score_mean_ = float(score.mean())
        self.score_scale_ = float(score.std()) or 1.0
        z = ((score - self.score_mean_) / self.score_scale_).reshape(-1, 1)
        # Imported here: scoring with a saved baseline model needs no scikit-learn.
        from sklearn.linear_model import LogisticRegression

        # Almost no penalty: two parameters on thousands of labels need none, and a
        # finite C keeps a perfectly separating baseline from diverging.
        fitted = LogisticRegression(C=1e4).fit(z, labels.astype("int64"))
        self.coef_ = float(fitted.coef_[0, 0])
        self.intercept_ = float(fitted.intercept_[0])
        self.n_customers_ = len(score)
        self.churn_rate_ = float(labels.mean())
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``[P(stay), P(churn)]`` per customer, as scikit-learn classifiers return."""
        check_fitted(self, "coef_")
        z = (self._score(X) - self.score_mean_) / self.score_scale_
        churn = 1.0 / (1.0 + np.exp(-(self.coef_ * z + self.intercept_)))
        return np.column_stack([1.0 - churn, churn])

    def churn_probability(self, X: pd.DataFrame) -> pd.Series:
        """P(churn) per customer, a Series named ``churn_probability`` indexed like ``X``."""
        return pd.Series(self.predict_proba(X)[:, 1], index=X.index, name="churn_probability")

    def risk_band_codes(self, churn_probability) -> np.ndarray:
        """Position of each probability's band in :data:`~segml.models.churn.RISK_BANDS`."""
        p = np.asarray(churn_probability, dtype="float64")
        return np.where(
            p >= self.high_risk_threshold, 0, np.where(p >= self.medium_risk_threshold, 1, 2)
        )

    def risk_band(self, churn_probability) -> np.ndarray:
        """``"high"``, ``"medium"`` or ``"low"`` per probability."""
        return np.asarray(RISK_BANDS, dtype=object)[self.risk_band_codes(churn_probability)]

    def to_dict(self) -> dict[str, Any]:
        """The fitted model as JSON-ready data."""
        check_fitted(self, "coef_")
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "params": self.get_params(),
            "coef": self.coef_,
            "intercept": self.intercept_,
            "score_mean": self.score_mean_,
            "score_scale": self.score_scale_,
            "n_customers": self.n_customers_,
            "churn_rate": self.churn_rate_,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BaselineChurnModel:
        """Rebuild a model from :meth:`to_dict`; predicts identically."""
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise ValueError(f"Not a {_FORMAT} document (format {document.get('format')!r}).")
        if document.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{_FORMAT} format_version {document.get('format_version')!r} is not readable "
                f"by this segml (reads {_FORMAT_VERSION})."
            )
        model = cls(**document["params"])
        model.coef_ = float(document["coef"])
        model.intercept_ = float(document["intercept"])
        model.score_mean_ = float(document["score_mean"])
        model.score_scale_ = float(document["score_scale"])
        model.n_customers_ = int(document["n_customers"])
        model.churn_rate_ = float(document["churn_rate"])
        if model.baseline not in _BASELINES:
            raise ValueError(f"baseline must be one of {list(_BASELINES)}, got {model.baseline!r}.")
        return model
