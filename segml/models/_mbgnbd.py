"""MBG/NBD model maths (Batislam, Denizel & Filiztekin 2007), vectorised over distinct rows.

The BG/NBD story (Fader, Hardie & Lee 2005) with one change: a customer may also drop
out *at time zero*, right after the first purchase, so a customer with no repeat
purchase can be dead. Purchases of a live customer follow a Poisson process with rate
``lambda ~ Gamma(r, alpha)``; at time zero and after each purchase the customer drops
out with probability ``p ~ Beta(a, b)``.

The formulas are the ones lifetimes 0.11.3's ``ModifiedBetaGeoFitter`` implements
(Batislam et al. 2007, eq. 4-5 and appendix A, with the erratum of Wagner & Hoppe
2008 for the conditional expectation). Work that depends only on ``x`` is done once
per distinct ``x``; logs of ``alpha + T`` and ``alpha + t_x`` once per distinct time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln, hyp2f1

from segml.models._distinct import levels, row_weights
from segml.models._mle import MLEResult, PurchaseLikelihood, dot

PARAM_NAMES = ("r", "alpha", "a", "b")
# Parameters measured in the time unit (rescaled with time).
TIME_PARAMS = ("alpha",)


@dataclass(frozen=True)
class _Rows:
    """Distinct (x, t_x, T) rows with counts; times as codes into their distinct levels."""

    x_levels: np.ndarray
    x_level_weight: np.ndarray
    x: np.ndarray
    x_code: np.ndarray
    weight: np.ndarray
    T_levels: np.ndarray
    T_code: np.ndarray
    T_weight: np.ndarray  # customers per T level
    T_weight_x: np.ndarray  # their summed frequency per T level
    t_x_levels: np.ndarray
    t_x_code: np.ndarray
    total_weight: float


def _rows(frequency, recency, T, scale, weights=None) -> _Rows:
    (x, t_x, age), counts = row_weights(frequency, recency, T, weights=weights)
    w = counts.astype(float)
    x_levels, x_code = levels(x)
    T_levels, T_code = levels(age)
    t_x_levels, t_x_code = levels(t_x)
    return _Rows(
        x_levels=x_levels,
        x_level_weight=np.bincount(x_code, weights=w),
        x=x,
        x_code=x_code.astype(np.intp),
        weight=w,
        T_levels=T_levels * scale,
        T_code=T_code.astype(np.intp),
        T_weight=np.bincount(T_code, weights=w, minlength=len(T_levels)),
        T_weight_x=np.bincount(T_code, weights=w * x, minlength=len(T_levels)),
        t_x_levels=t_x_levels * scale,
        t_x_code=t_x_code.astype(np.intp),
        total_weight=float(w.sum()),
    )


def _objective(log_params: np.ndarray, rows: _Rows, penalizer_coef: float):
    """Mean negative log-likelihood plus L2 penalty, and its gradient in log-parameters.

    Batislam et al. (2007) eq. 4 (lifetimes' form): ``log L_i = A1 + A2 + A3 +
    softplus(D)`` with ``A1 = lnG(r+x) - lnG(r) + r ln(alpha)``,
    ``A2 = lnG(a+b) + lnG(b+x+1) - lnG(b) - lnG(a+b+x+1)``,
    ``A3 = -(r+x) ln(alpha+T)`` and
    ``D = ln(a) - ln(b+x) + (r+x) (ln(alpha+T) - ln(alpha+t_x))``. Unlike BG/NBD the
    "dropped out" branch exists for ``x = 0`` too (drop-out at time zero).
    """
    params = np.exp(log_params)
    r, alpha, a, b = params
    lv, lw = rows.x_levels, rows.x_level_weight
    W = rows.total_weight

    sum_a1a2 = dot(lw, gammaln(r + lv) + gammaln(b + lv + 1) - gammaln(a + b + lv + 1)) + W * (
        -gammaln(r) + r * np.log(alpha) + gammaln(a + b) - gammaln(b)
    )
    log_T_lv, inv_T_lv = np.log(alpha + rows.T_levels), 1.0 / (alpha + rows.T_levels)
    log_tx_lv, inv_tx_lv = np.log(alpha + rows.t_x_levels), 1.0 / (alpha + rows.t_x_levels)
    x, w = rows.x, rows.weight
    rx = r + x
    log_ratio = log_T_lv[rows.T_code] - log_tx_lv[rows.t_x_code]  # >= 0
    inv_b_x = 1.0 / (b + lv)
    gap = (np.log(a) + np.log(inv_b_x))[rows.x_code] + rx * log_ratio
    # softplus(gap) and expit(gap) from one exp(-|gap|), stable for either sign.
    e = np.exp(-np.abs(gap))
    softplus = np.maximum(gap, 0.0) + np.log1p(e)
    ws4 = w * (np.where(gap >= 0, 1.0, e) / (1.0 + e))  # weight of the "dropped out" branch
    sum_w_rx_logT = r * dot(rows.T_weight, log_T_lv) + dot(rows.T_weight_x, log_T_lv)
    sum_w_rx_invT = r * dot(rows.T_weight, inv_T_lv) + dot(rows.T_weight_x, inv_T_lv)
    loglik = sum_a1a2 - sum_w_rx_logT + dot(w, softplus)

    psi_abx1 = digamma(a + b + lv + 1)
    d_r = (
        dot(lw, digamma(r + lv))
        + W * (np.log(alpha) - digamma(r))
        - dot(rows.T_weight, log_T_lv)
        + dot(ws4, log_ratio)
    )
    inv_diff = inv_T_lv[rows.T_code] - inv_tx_lv[rows.t_x_code]
    d_alpha = W * r / alpha - sum_w_rx_invT + dot(ws4 * rx, inv_diff)
    d_a = W * digamma(a + b) - dot(lw, psi_abx1) + ws4.sum() / a
    d_b = (
        W * (digamma(a + b) - digamma(b))
        + dot(lw, digamma(b + lv + 1) - psi_abx1)
        - dot(ws4, inv_b_x[rows.x_code])
    )
    grad_params = -np.array([d_r, d_alpha, d_a, d_b]) / W
    value = -loglik / W + penalizer_coef * np.sum(params**2)
    grad = params * grad_params + 2 * penalizer_coef * params**2
    return value, grad


_LIKELIHOOD = PurchaseLikelihood(_rows, _objective, PARAM_NAMES, TIME_PARAMS, default_start=0.1)


def fit(frequency, recency, T, **options) -> tuple[MLEResult, float]:
    """Fit MBG/NBD; returns the result (log-params in rescaled time) and the time scale.

    Options as :meth:`segml.models._mle.PurchaseLikelihood.fit`. As lifetimes
    (whose ``ModifiedBetaGeoFitter`` inherits ``BetaGeoFitter.fit``): time rescaled
    so that the oldest customer has ``T = 1``, start at log-params 0.1, penalty on
    the rescaled parameters.
    """
    return _LIKELIHOOD.fit(frequency, recency, T, **options)


def log_likelihood_hessian(log_params, frequency, recency, T, **options) -> np.ndarray:
    """Hessian of the mean penalised objective at ``log_params`` (rescaled time)."""
    return _LIKELIHOOD.hessian(log_params, frequency, recency, T, **options)


def log_likelihood(params, frequency, recency, T, weights=None) -> float:
    """Total (unpenalised) log-likelihood of the customers, times in the data's unit."""
    return _LIKELIHOOD.log_likelihood(params, frequency, recency, T, weights)


def _log_hyp(a_, b_, c_, z):
    """``ln 2F1(a_, b_; c_; z)``, switching to Euler's transformation where it overflows."""
    with np.errstate(divide="ignore", over="ignore"):
        ln_hyp = np.log(hyp2f1(a_, b_, c_, z))
    overflow = ~np.isfinite(ln_hyp)
    if overflow.any():
        za, zb, zc, zz = (np.broadcast_to(v, ln_hyp.shape)[overflow] for v in (a_, b_, c_, z))
        ln_hyp = ln_hyp.copy()
        # 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)
        ln_hyp[overflow] = np.log(hyp2f1(zc - za, zc - zb, zc, zz)) + (zc - za - zb) * np.log(
            1 - zz
        )
    return ln_hyp


def survival_term(params, x, T, t):
    """``2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t)) ((alpha+T)/(alpha+T+t))^(r+x)``.

    One minus it is the bracket of the conditional expectation (Wagner & Hoppe 2008).
    """
    r, alpha, a, b = params
    z = t / (alpha + T + t)
    ln_hyp = _log_hyp(r + x, b + x + 1, a + b + x, z)
    return np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T)))


def purchase_factor(params, x, t_x, T):
    """``((a+b+x)/(a-1)) / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))``."""
    r, alpha, a, b = params
    return ((a + b + x) / (a - 1)) * p_alive(params, x, t_x, T)


def p_alive(params, frequency, recency, T):
    """P(alive | x, t_x, T) (Batislam et al. 2007, appendix A eq. 5); below 1 for x = 0."""
    r, alpha, a, b = params
    return 1.0 / (1 + (a / (b + frequency)) * ((alpha + T) / (alpha + recency)) ** (r + frequency))


def expected_purchases_new_customer(params, t):
    """E[X(t)] of a customer just acquired: ``b/(a-1) (1 - 2F1(r, b+1; a+b; t/(alpha+t))
    (alpha/(alpha+t))^r)`` (Batislam et al. 2007, eq. 6)."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    hyp = hyp2f1(r, b + 1, a + b, t / (alpha + t))
    return b / (a - 1) * (1 - hyp * (alpha / (alpha + t)) ** r)


def repeat_purchase_pmf(params, t, max_purchases):
    """P(X(t) = n) for n = 0..max_purchases (Batislam et al. 2007, eq. 7; lifetimes' form)."""
    r, alpha, a, b = params
    n = np.arange(max_purchases + 1, dtype=float)
    log_beta_ab = gammaln(a) + gammaln(b) - gammaln(a + b)
    log_nbd = (
        gammaln(r + n)
        - gammaln(r)
        - gammaln(n + 1)
        + r * np.log(alpha / (alpha + t))
        + n * np.log(t / (alpha + t))
    )
    first = np.exp(gammaln(a) + gammaln(b + n + 1) - gammaln(a + b + n + 1) - log_beta_ab + log_nbd)
    log_terms = gammaln(r + n) - gammaln(r) - gammaln(n + 1) + n * np.log(t / (alpha + t))
    partial = np.concatenate([[0.0], np.cumsum(np.exp(log_terms))[:-1]])
    log_beta_a1_bn = gammaln(a + 1) + gammaln(b + n) - gammaln(a + b + n + 1)
    second = np.exp(log_beta_a1_bn - log_beta_ab) * (1 - (alpha / (alpha + t)) ** r * partial)
    return first + second
