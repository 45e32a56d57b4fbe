"""BG/NBD model maths (Fader, Hardie & Lee 2005), vectorised over distinct customer rows.

Notation of the paper: ``x`` repeat purchases (frequency), ``t_x`` time of the last
one (recency), ``T`` time since the first purchase, all in one time unit. Purchases
of a live customer follow a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
after each purchase the customer drops out with probability ``p ~ Beta(a, b)``.

Every formula here is the one lifetimes 0.11.3 implements (its ``BetaGeoFitter``),
written so that work that depends only on ``x`` is done once per distinct ``x`` and
work that depends only on ``(x, T, t)`` (the hypergeometric function) once per
distinct pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, expit, gammaln, hyp2f1

from segml.models._distinct import distinct_rows, levels, row_weights
from segml.models._mle import MLEResult, PurchaseLikelihood, dot

PARAM_NAMES = ("r", "alpha", "a", "b")
# Parameters measured in the time unit (rescaled with time).
TIME_PARAMS = ("alpha",)


@dataclass(frozen=True)
class _Rows:
    """Customers as distinct rows with counts, time rescaled, split by x = 0 or not.

    Times enter the likelihood only through ``log(alpha + T)``, ``log(alpha + t_x)``
    and their reciprocals; with daily data there are a few hundred distinct values of
    each, so those are evaluated per distinct value and gathered by code.
    """

    x_levels: np.ndarray  # distinct frequencies (all customers)
    x_level_weight: np.ndarray  # customers per distinct frequency
    zero_T: np.ndarray  # distinct T of customers with x = 0
    zero_weight: np.ndarray  # customers per such T
    x: np.ndarray  # repeat rows: frequency
    x_code: np.ndarray  # index into x_levels
    weight: np.ndarray  # customers per repeat row
    T_levels: np.ndarray
    T_code: np.ndarray
    T_weight: np.ndarray  # repeat customers per T level
    T_weight_x: np.ndarray  # their summed frequency per T level
    t_x_levels: np.ndarray
    t_x_code: np.ndarray
    total_weight: float


def _rows(frequency, recency, T, scale, weights=None) -> _Rows:
    (x, t_x, age), counts = row_weights(frequency, recency, T, weights=weights)
    weight = counts.astype(float)
    x_levels, x_code = levels(x)
    repeat = x > 0
    zero_T, zero_code = levels(age[~repeat])
    T_levels, T_code = levels(age[repeat])
    t_x_levels, t_x_code = levels(t_x[repeat])
    w = weight[repeat]
    return _Rows(
        x_levels=x_levels,
        x_level_weight=np.bincount(x_code, weights=weight),
        zero_T=zero_T * scale,
        zero_weight=np.bincount(zero_code, weights=weight[~repeat], minlength=len(zero_T)),
        x=x[repeat],
        x_code=x_code[repeat].astype(np.intp),
        weight=w,
        T_levels=T_levels * scale,
        T_code=T_code.astype(np.intp),
        T_weight=np.bincount(T_code, weights=w, minlength=len(T_levels)),
        T_weight_x=np.bincount(T_code, weights=w * x[repeat], minlength=len(T_levels)),
        t_x_levels=t_x_levels * scale,
        t_x_code=t_x_code.astype(np.intp),
        total_weight=float(weight.sum()),
    )


def _objective(log_params: np.ndarray, rows: _Rows, penalizer_coef: float):
    """Mean negative log-likelihood (FHL 2005 eq. 6) plus L2 penalty, and its gradient.

    ``log L_i = A1 + A2 + log(exp(A3) + [x > 0] exp(A4))`` with (Hardie's note 004)
    ``A1 = lnG(r+x) - lnG(r) + r ln(alpha)``,
    ``A2 = lnG(a+b) + lnG(b+x) - lnG(b) - lnG(a+b+x)``,
    ``A3 = -(r+x) ln(alpha+T)``, ``A4 = ln(a) - ln(b+x-1) - (r+x) ln(alpha+t_x)``.
    For repeat buyers ``log(exp(A3) + exp(A4)) = A3 + softplus(D)`` with
    ``D = A4 - A3 = ln(a) - ln(b+x-1) + (r+x) (ln(alpha+T) - ln(alpha+t_x))``; the
    weight of the "dropped out" branch is ``expit(D)``.
    """
    params = np.exp(log_params)
    r, alpha, a, b = params
    lv, lw = rows.x_levels, rows.x_level_weight
    W = rows.total_weight

    # A1 + A2 depend on x only: once per distinct x, weighted by its customers.
    sum_a1a2 = dot(lw, gammaln(r + lv) + gammaln(b + lv) - gammaln(a + b + lv)) + W * (
        -gammaln(r) + r * np.log(alpha) + gammaln(a + b) - gammaln(b)
    )
    psi_rx, psi_bx, psi_abx = digamma(r + lv), digamma(b + lv), digamma(a + b + lv)
    inv_b_x1 = 1.0 / (b + np.maximum(lv, 1) - 1)

    # x = 0: log L = A1 + A2 + A3, and A3 depends on T only.
    log_alpha_T0 = np.log(alpha + rows.zero_T)
    loglik = sum_a1a2 - r * dot(rows.zero_weight, log_alpha_T0)
    d_r = -dot(rows.zero_weight, log_alpha_T0)
    d_alpha = -r * dot(rows.zero_weight, 1.0 / (alpha + rows.zero_T))

    # x > 0: per-level logs and reciprocals, gathered per row.
    log_T_lv, inv_T_lv = np.log(alpha + rows.T_levels), 1.0 / (alpha + rows.T_levels)
    log_tx_lv, inv_tx_lv = np.log(alpha + rows.t_x_levels), 1.0 / (alpha + rows.t_x_levels)
    x, w = rows.x, rows.weight
    rx = r + x
    log_ratio = log_T_lv[rows.T_code] - log_tx_lv[rows.t_x_code]  # >= 0
    gap = (np.log(a) + np.log(inv_b_x1))[rows.x_code] + rx * log_ratio
    # softplus(gap) and expit(gap) from one exp(-|gap|), stable for either sign
    # (np.logaddexp and scipy's expit are several times slower on long vectors).
    e = np.exp(-np.abs(gap))
    softplus = np.maximum(gap, 0.0) + np.log1p(e)
    s4 = np.where(gap >= 0, 1.0, e) / (1.0 + e)  # share of the "dropped out" branch A4
    ws4 = w * s4
    # sum w A3 = -sum_T (r W_T + (W x)_T) log(alpha + T): per T level.
    sum_w_rx_logT = r * dot(rows.T_weight, log_T_lv) + dot(rows.T_weight_x, log_T_lv)
    sum_w_rx_invT = r * dot(rows.T_weight, inv_T_lv) + dot(rows.T_weight_x, inv_T_lv)
    loglik += -sum_w_rx_logT + dot(w, softplus)

    d_r += (
        dot(lw, psi_rx)
        + W * (np.log(alpha) - digamma(r))
        - dot(rows.T_weight, log_T_lv)
        + dot(ws4, log_ratio)
    )
    inv_diff = inv_T_lv[rows.T_code] - inv_tx_lv[rows.t_x_code]
    d_alpha += W * r / alpha - sum_w_rx_invT + dot(ws4 * rx, inv_diff)
    d_a = W * digamma(a + b) - dot(lw, psi_abx) + ws4.sum() / a
    d_b = (
        W * (digamma(a + b) - digamma(b))
        + dot(lw, psi_bx - psi_abx)
        - dot(ws4, inv_b_x1[rows.x_code])
    )
    grad_params = -np.array([d_r, d_alpha, d_a, d_b]) / W
    value = -loglik / W + penalizer_coef * np.sum(params**2)
    # Chain rule to log-parameters: d/d(log theta) = theta * d/d(theta).
    grad = params * grad_params + 2 * penalizer_coef * params**2
    return value, grad


_LIKELIHOOD = PurchaseLikelihood(_rows, _objective, PARAM_NAMES, TIME_PARAMS, default_start=0.1)


def fit(frequency, recency, T, **options) -> tuple[MLEResult, float]:
    """Fit BG/NBD; returns the result (log-params in rescaled time) and the time scale.

    Options as :meth:`segml.models._mle.PurchaseLikelihood.fit`. ``start``
    (parameters in the data's time unit, e.g. a fit on a shorter period) replaces
    lifetimes' starting point; the optimum does not depend on it. As lifetimes does,
    the optimiser starts from all log-parameters 0.1 and the penalty applies to the
    rescaled parameters, so penalised fits match lifetimes too.
    """
    return _LIKELIHOOD.fit(frequency, recency, T, **options)


def log_likelihood_hessian(log_params, frequency, recency, T, **options) -> np.ndarray:
    """Hessian of the mean penalised objective at ``log_params`` (rescaled time)."""
    return _LIKELIHOOD.hessian(log_params, frequency, recency, T, **options)


def log_likelihood(params, frequency, recency, T, weights=None) -> float:
    """Total (unpenalised) log-likelihood of the customers (FHL 2005 eq. 6), data's time unit."""
    return _LIKELIHOOD.log_likelihood(params, frequency, recency, T, weights)


def expected_purchases_new_customer(params, t):
    """E[X(t)] of a customer just acquired (FHL 2005 eq. 9).

    ``(a+b-1)/(a-1) (1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t)))``.
    """
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    hyp = hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return (a + b - 1) / (a - 1) * (1 - hyp * (alpha / (alpha + t)) ** r)


def _log_hyp_term(r, alpha, a, b, x, T, t):
    """``ln 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))`` exactly as lifetimes evaluates it.

    Where the series overflows, lifetimes switches to Euler's transformation
    ``2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)``; so does this.
    """
    _a, _b, _c = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore"):
        ln_hyp = np.log(hyp2f1(_a, _b, _c, z))
    overflow = np.isinf(ln_hyp)
    if overflow.any():
        za, zb, zc, zz = (np.broadcast_to(v, ln_hyp.shape)[overflow] for v in (_a, _b, _c, z))
        ln_hyp = ln_hyp.copy()
        ln_hyp[overflow] = np.log(hyp2f1(zc - za, zc - zb, zc, zz)) + (zc - za - zb) * np.log(
            1 - zz
        )
    return ln_hyp


def _survival_term(params, x, T, t):
    """``2F1(...) ((alpha+T)/(alpha+T+t))^(r+x)``: one minus it is FHL eq. 10's bracket."""
    r, alpha, a, b = params
    ln_hyp = _log_hyp_term(r, alpha, a, b, x, T, t)
    return np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T)))


def survival_term(params, x, T, t):
    """The survival term under the name every purchase model module uses."""
    return _survival_term(params, x, T, t)


def purchase_factor(params, x, t_x, T):
    """:func:`first_over_denominator` under the name every purchase model module uses."""
    return first_over_denominator(params, x, t_x, T)


def first_over_denominator(params, x, t_x, T):
    """``((a+b+x-1)/(a-1)) / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``."""
    r, alpha, a, b = params
    first_term = (a + b + x - 1) / (a - 1)
    denominator = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return first_term / denominator


def expected_purchases(params, frequency, recency, T, t):
    """E[Y(t) | x, t_x, T]: expected repeat purchases in the next ``t`` (FHL 2005 eq. 10).

    ``t`` is a scalar or one value per customer. With a scalar the hypergeometric term
    is evaluated once per distinct (x, T) pair.
    """
    t = np.asarray(t, dtype=float)
    if t.ndim == 0:
        (x_u, T_u), inverse, _ = distinct_rows(frequency, T)
        survival = _survival_term(params, x_u, T_u, float(t))[inverse]
    else:
        survival = _survival_term(params, frequency, T, t)
    return first_over_denominator(params, frequency, recency, T) * (1 - survival)


def p_alive(params, frequency, recency, T):
    """P(alive | x, t_x, T) (Fader, Hardie & Lee 2008, note 021); 1 when x = 0.

    A customer can only drop out right after a purchase, so with no repeat purchase
    the model has no evidence of drop-out and returns exactly 1.
    """
    r, alpha, a, b = params
    log_div = (r + frequency) * np.log((alpha + T) / (alpha + recency)) + np.log(
        a / (b + np.maximum(frequency, 1) - 1)
    )
    return np.where(frequency == 0, 1.0, expit(-log_div))


def repeat_purchase_pmf(params, t, max_purchases):
    """P(X(t) = n) for n = 0..max_purchases, a customer observed for ``t`` (FHL eq. 8)."""
    r, alpha, a, b = params
    n = np.arange(max_purchases + 1, dtype=float)
    log_beta_ab = gammaln(a) + gammaln(b) - gammaln(a + b)
    log_beta_a_bn = gammaln(a) + gammaln(b + n) - gammaln(a + b + n)
    log_first = (
        log_beta_a_bn
        - log_beta_ab
        + gammaln(r + n)
        - gammaln(r)
        - gammaln(n + 1)
        + r * np.log(alpha / (alpha + t))
        + n * np.log(t / (alpha + t))
    )
    # Finite sum of NBD probabilities for j < n, as a cumulative sum.
    log_terms = gammaln(r + n) - gammaln(r) - gammaln(n + 1) + n * np.log(t / (alpha + t))
    partial = np.concatenate([[0.0], np.cumsum(np.exp(log_terms))[:-1]])
    log_beta_a1_bn1 = gammaln(a + 1) + gammaln(b + n[1:] - 1) - gammaln(a + b + n[1:])
    second = np.zeros_like(n)
    second[1:] = np.exp(log_beta_a1_bn1 - log_beta_ab) * (
        1 - (alpha / (alpha + t)) ** r * partial[1:]
    )
    return np.exp(log_first) + second
