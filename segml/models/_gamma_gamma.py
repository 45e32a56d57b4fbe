"""Gamma-Gamma spend model maths (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value").

A customer's ``x`` repeat-purchase amounts are i.i.d. ``Gamma(p, nu)`` around their
mean ``p / nu``; across customers ``nu ~ Gamma(q, v)`` (``v`` is the paper's gamma).
Only the mean repeat spend ``m`` and ``x`` enter the likelihood (note 025, eq. 1a),
and the model assumes spend is independent of purchase frequency.

The formulas are lifetimes 0.11.3's ``GammaGammaFitter``. The likelihood is
regrouped so that sums that depend only on the data are computed once per fit and
terms that depend only on ``x`` once per distinct ``x``: per evaluation, only
``log(x m + v)`` and ``1 / (x m + v)`` touch every customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from segml.models._distinct import levels, row_weights
from segml.models._mle import MLEResult, dot, minimize_log_params

PARAM_NAMES = ("p", "q", "v")


@dataclass(frozen=True)
class _Sums:
    x_levels: np.ndarray
    x_level_weight: np.ndarray
    xm: np.ndarray  # x * m per distinct (x, m) row
    wx: np.ndarray  # customers of the row times x
    weight: np.ndarray  # customers of the row
    total_weight: float
    sum_log_m: float  # sum of ln m over customers
    sum_x_log_xm: float  # sum of x (ln m + ln x) over customers


def _sums(frequency, monetary_value, weights=None) -> _Sums:
    """Sums over customers, on distinct (x, m) rows weighted by their customers."""
    x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    if weights is None:
        # Mean spends are continuous: customers rarely share a row, so no collapsing.
        w = np.ones(len(x))
    else:
        (x, m), w = row_weights(x, m, weights=weights)
    x_levels, x_code = levels(x)
    log_m = np.log(m)
    return _Sums(
        x_levels=x_levels,
        x_level_weight=np.bincount(x_code, weights=w, minlength=len(x_levels)),
        xm=x * m,
        wx=w * x,
        weight=w,
        total_weight=float(w.sum()),
        sum_log_m=float(dot(w, log_m)),
        sum_x_log_xm=float(dot(w * x, log_m + np.log(x))),
    )


def _objective(log_params: np.ndarray, s: _Sums, penalizer_coef: float):
    """Mean negative log-likelihood (note 025 eq. 1a) plus L2 penalty, and its gradient.

    ``log L_i = lnG(px+q) - lnG(px) - lnG(q) + q ln v + (px-1) ln m + px ln x
    - (px+q) ln(xm+v)``.
    """
    params = np.exp(log_params)
    p, q, v = params
    lv, lw, W = s.x_levels, s.x_level_weight, s.total_weight
    log_xm_v = np.log(s.xm + v)
    inv_xm_v = 1.0 / (s.xm + v)
    x_log, one_log = dot(s.wx, log_xm_v), dot(s.weight, log_xm_v)
    x_inv, one_inv = dot(s.wx, inv_xm_v), dot(s.weight, inv_xm_v)

    loglik = (
        dot(lw, gammaln(p * lv + q) - gammaln(p * lv))
        + W * (q * np.log(v) - gammaln(q))
        + p * s.sum_x_log_xm
        - s.sum_log_m
        - (p * x_log + q * one_log)
    )
    psi_pxq = digamma(p * lv + q)
    d_p = dot(lw, lv * (psi_pxq - digamma(p * lv))) + s.sum_x_log_xm - x_log
    d_q = dot(lw, psi_pxq) - W * digamma(q) + W * np.log(v) - one_log
    d_v = W * q / v - (p * x_inv + q * one_inv)
    grad_params = -np.array([d_p, d_q, d_v]) / W
    value = -loglik / W + penalizer_coef * np.sum(params**2)
    grad = params * grad_params + 2 * penalizer_coef * params**2
    return value, grad


def fit(
    frequency, monetary_value, *, penalizer_coef: float, max_iter: int, weights=None
) -> MLEResult:
    """Fit Gamma-Gamma on repeat buyers, starting where lifetimes does (log-params 0.1).

    ``weights``: whole counts of identical customers per row (None: one each).
    """
    sums = _sums(frequency, monetary_value, weights)
    return minimize_log_params(
        lambda lp: _objective(lp, sums, penalizer_coef), np.full(3, 0.1), max_iter=max_iter
    )


def log_likelihood_hessian(log_params, frequency, monetary_value, *, penalizer_coef, weights=None):
    """Hessian of the mean penalised objective at ``log_params``."""
    from segml.models._mle import numerical_hessian

    sums = _sums(frequency, monetary_value, weights)
    return numerical_hessian(lambda lp: _objective(lp, sums, penalizer_coef)[1], log_params)


def expected_spend(params, frequency, monetary_value):
    """E[M | x, m]: expected mean spend per purchase (note 025 eq. 5).

    A weighted average of the customer's own mean ``m`` (weight ``px / (px + q - 1)``)
    and the population mean ``v p / (q - 1)``. With ``x = 0`` the weight is 0 and the
    population mean is returned, whatever ``m`` holds (lifetimes returns the same
    whenever ``m`` is finite).
    """
    p, q, v = params
    individual_weight = p * frequency / (p * frequency + q - 1)
    population_mean = v * p / (q - 1)
    blended = (1 - individual_weight) * population_mean + individual_weight * monetary_value
    return np.where(frequency == 0, population_mean, blended)
