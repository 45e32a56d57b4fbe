"""Pareto/NBD model maths (Schmittlein, Morrison & Colombo 1987), vectorised over distinct rows.

While alive, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; lifetimes
are exponential with rate ``mu ~ Gamma(s, beta)``, so a customer can die at any time,
not only after a purchase. The likelihood is Fader, Hardie & Lee's (2005) note
"A note on deriving the Pareto/NBD model and related expressions", eq. 18-20:

``L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s
+ s/(r+s+x) A0 ]`` with ``A0 = g(t_x) - g(T)`` and
``g(u) = 2F1(r+s+x, c; r+s+x+1; |alpha-beta| / (m+u)) / (m+u)^(r+s+x)``,
``m = max(alpha, beta)``, ``c = s+1`` if ``alpha >= beta`` else ``c = r+x`` (the two
branches of eq. 19-20 keep the hypergeometric argument in [0, 1)).

``g`` depends on ``(x, u)`` only, so it is evaluated once per distinct ``(x, t_x)``
and ``(x, T)`` pair, not per customer: that is where lifetimes spends its time. The
gradient of ``2F1`` in its parameters has no closed form; the fit uses central
differences of the (cheap, vectorised) likelihood. The formulas for the predictions
are the ones lifetimes 0.11.3's ``ParetoNBDFitter`` implements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from segml.models._distinct import distinct_rows, levels, row_weights
from segml.models._mle import MLEResult, PurchaseLikelihood, dot

PARAM_NAMES = ("r", "alpha", "s", "beta")
TIME_PARAMS = ("alpha", "beta")
# Relative step of the central-difference gradient in log-parameters: balances the
# truncation error (step^2) against rounding in the likelihood (1e-13 / step).
_GRADIENT_STEP = 1e-5


@dataclass(frozen=True)
class _Rows:
    """Distinct (x, t_x, T) rows with counts, and the distinct (x, time) pairs of g."""

    x_levels: np.ndarray
    x_level_weight: np.ndarray
    x: np.ndarray
    x_code: np.ndarray
    weight: np.ndarray
    T_levels: np.ndarray
    T_code: np.ndarray
    pair_x: np.ndarray  # g's distinct (x, u) pairs, u a recency or an age
    pair_u: np.ndarray
    tx_pair: np.ndarray  # row -> pair of (x, t_x)
    T_pair: np.ndarray  # row -> pair of (x, T)
    T_pair_weight: np.ndarray  # customers per pair, as the (x, T) of their row
    total_weight: float


def _rows(frequency, recency, T, scale, weights=None) -> _Rows:
    (x, t_x, age), counts = row_weights(frequency, recency, T, weights=weights)
    w = counts.astype(float)
    x_levels, x_code = levels(x)
    T_levels, T_code = levels(age)
    n = len(x)
    (pair_x, pair_u), pair_code, _ = distinct_rows(
        np.concatenate([x, x]), np.concatenate([t_x, age])
    )
    return _Rows(
        x_levels=x_levels,
        x_level_weight=np.bincount(x_code, weights=w),
        x=x,
        x_code=x_code.astype(np.intp),
        weight=w,
        T_levels=T_levels * scale,
        T_code=T_code.astype(np.intp),
        pair_x=pair_x,
        pair_u=pair_u * scale,
        tx_pair=pair_code[:n],
        T_pair=pair_code[n:],
        T_pair_weight=np.bincount(pair_code[n:], weights=w, minlength=len(pair_x)),
        total_weight=float(w.sum()),
    )


def _log_g(params, x, u):
    """``ln g(x, u)`` of the module docstring (eq. 19 if alpha >= beta, else eq. 20)."""
    r, alpha, s, beta = params
    if alpha >= beta:
        big, small, c = alpha, beta, s + 1
    else:
        big, small, c = beta, alpha, r + x
    rsx = r + s + x
    return np.log(hyp2f1(rsx, c, rsx + 1, (big - small) / (big + u))) - rsx * np.log(big + u)


# Largest hypergeometric argument for which ln g and its gradient are summed as a
# series (terms shrink at least like z^n once n > c z / (1 - z)); above it, scipy.
_SERIES_MAX_Z = 0.5
# ... and largest index of the series' peak term, c z / (1 - z): beyond, scipy.
_SERIES_MAX_PEAK = 100.0
_SERIES_MAX_TERMS = 5000


def _hyp_series(a, c, z):
    """``F = 2F1(a, c; a+1; z)`` and ``dF/da``, ``dF/dc``, ``dF/dz`` by their series.

    ``F = sum_n a/(a+n) q_n`` with ``q_n = (c)_n z^n / n!`` (Gauss's series with
    ``(a)_n / (a+1)_n = a / (a+n)``), so term by term ``dF/da = sum_n n/(a+n)^2 q_n``,
    ``dF/dc = sum_n a/(a+n) q_n (psi(c+n) - psi(c))`` and ``dF/dz = sum_n a/(a+n) n
    q_n / z``. Every term is >= 0 (``a, c > 0``, ``0 <= z < 1``): no cancellation, so
    the sums are good to rounding. Returns None when a sum does not converge within
    ``_SERIES_MAX_TERMS`` terms.
    """
    a, c, z = (np.ravel(v).astype(float) for v in np.broadcast_arrays(a, c, z))
    out = np.empty((4, a.size))
    index = np.arange(a.size)  # positions of the sums still running
    # Running sums; the n = 0 terms: F = 1, dF/da = dF/dc = 0; and dF/dz's n = 1 term.
    f, f_a, f_c, f_z = np.ones(a.size), np.zeros(a.size), np.zeros(a.size), a * c / (a + 1)
    q, harmonic = np.ones(a.size), np.zeros(a.size)  # q_n; psi(c+n) - psi(c)
    for n in range(1, _SERIES_MAX_TERMS):
        harmonic += 1.0 / (c + (n - 1))
        step = (c + (n - 1)) / n * z  # q_n / q_{n-1}
        share = a / (a + n)
        if n > 1:
            # dF/dz's n-th term a/(a+n) n q_n / z = a/(a+n) n q_{n-1} (c+n-1) / n.
            f_z += share * q * (c + (n - 1))
        q *= step
        term = share * q
        f += term
        f_a += n / (a + n) ** 2 * q
        f_c += term * harmonic
        # A sum is done once its terms shrink by ``step < 1`` from here on and the
        # rest, at most ``term * step / (1 - step)``, no longer moves it.
        tail = np.where(step < 1, step / (1 - step), np.inf)
        done = (term * tail <= 1e-16 * f) & (n * term * tail <= 1e-16 * f_z * np.maximum(z, 1e-300))
        if done.any():
            out[:, index[done]] = f[done], f_a[done], f_c[done], f_z[done]
            keep = ~done
            index, a, c, z, f, f_a, f_c, f_z, q, harmonic = (
                v[keep] for v in (index, a, c, z, f, f_a, f_c, f_z, q, harmonic)
            )
            if index.size == 0:
                return tuple(out)
    return None


def _d_log_hyp_dz(a, c, z, log_f):
    """``d ln F / dz`` for ``F = 2F1(a, c; a+1; z)``, given ``ln F``.

    ``z^a F = a int_0^z t^(a-1) (1-t)^(-c) dt`` (Euler's integral with ``b = a``,
    ``c' = a + 1``), so ``d(z^a F)/dz = a z^(a-1) (1-z)^(-c)`` and ``F' = (a / z)
    ((1-z)^(-c) - F)``: no second hypergeometric function. The difference is of
    order ``c z``; below ``c z = 1e-2`` it loses digits, and there seven terms of the
    series ``F' = sum_n a/(a+n) n (c)_n z^(n-1) / n!`` are exact to rounding.
    """
    a, c, z, log_f = np.broadcast_arrays(a, c, z, log_f)
    out = np.empty(z.shape)
    tiny = c * z < 1e-2
    big = ~tiny
    ab, cb, zb = a[big], c[big], z[big]
    # (1-z)^(-c) / F - 1 = expm1(-c ln(1-z) - ln F), without cancellation in the logs.
    out[big] = ab / zb * np.expm1(-cb * np.log1p(-zb) - log_f[big])
    at, ct, zt = a[tiny], c[tiny], z[tiny]
    # F' = sum_{n>=1} a/(a+n) n (c)_n / n! z^(n-1); the n-th term is O((c z)^(n-1)).
    term, series = ct.copy(), np.zeros(len(at))  # term: (c)_n z^(n-1) / (n-1)!
    for n in range(1, 8):
        series += at / (at + n) * term
        term = term * (ct + n) * zt / n
    out[tiny] = series / np.exp(log_f[tiny])
    return out


def _log_g_and_gradient(log_params, x, u):
    """``ln g`` and its derivatives in the four log-parameters, per (x, u) pair.

    ``ln g = ln F - a ln(m+u)``, ``F = 2F1(a, c; a+1; z)``, ``a = r+s+x``,
    ``z = |alpha-beta| / (m+u)``. Where every ``z <= 0.5`` (rates of similar size, the
    usual case) and the series' largest term comes early, ``F`` and its derivatives
    in ``a``, ``c`` and ``z`` come from one pass of the series (:func:`_hyp_series`),
    exact to rounding. Else ``alpha`` and
    ``beta``'s derivatives are analytic (:func:`_d_log_hyp_dz`) and ``r`` and ``s``'s
    (they enter the parameters of ``2F1``) central differences.
    """
    params = np.exp(log_params)
    r, alpha, s, beta = params
    a = r + s + x
    if alpha >= beta:
        big, small, c = alpha, beta, s + 1 + 0 * x
    else:
        big, small, c = beta, alpha, r + x
    z = (big - small) / (big + u)
    gradient = np.empty((4, len(z)))
    series = None
    if z.size and z.max() <= _SERIES_MAX_Z and np.max(c * z / (1 - z)) <= _SERIES_MAX_PEAK:
        series = _hyp_series(a, c, z)
    if series is not None:
        f, f_a, f_c, f_z = series
        log_m_u = np.log(big + u)
        log_g = np.log(f) - a * log_m_u
        d_a = f_a / f - log_m_u  # d ln g / d a
        d_c = f_c / f
        # r and s enter a; c is s + 1 (alpha >= beta) or r + x.
        gradient[0] = r * (d_a + (d_c if alpha < beta else 0.0))
        gradient[2] = s * (d_a + (d_c if alpha >= beta else 0.0))
        d_log_f_dz = f_z / f
    else:
        log_g = _log_g(params, x, u)
        for k in (0, 2):
            step = np.zeros(4)
            step[k] = _GRADIENT_STEP
            gradient[k] = (
                _log_g(np.exp(log_params + step), x, u) - _log_g(np.exp(log_params - step), x, u)
            ) / (2 * _GRADIENT_STEP)
        d_log_f_dz = _d_log_hyp_dz(a, c, z, log_g + a * np.log(big + u))
    # dz and d ln(m+u) with respect to the larger and the smaller rate.
    d_big = d_log_f_dz * (small + u) / (big + u) ** 2 - a / (big + u)
    d_small = -d_log_f_dz / (big + u)
    if alpha >= beta:
        gradient[1], gradient[3] = alpha * d_big, beta * d_small
    else:
        gradient[1], gradient[3] = alpha * d_small, beta * d_big
    return log_g, gradient


def _log_a0(params, x, t_x, T):
    """``ln A0 = ln(g(t_x) - g(T))``; -inf when t_x == T.

    ``g`` is evaluated once per distinct (x, time) pair of the customers.
    """
    x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
    shape, n = x.shape, x.size
    (pair_x, pair_u), pair, _ = distinct_rows(
        np.concatenate([x.ravel(), x.ravel()]), np.concatenate([t_x.ravel(), T.ravel()])
    )
    log_g = _log_g(params, pair_x, pair_u)
    log_g_tx, log_g_T = log_g[pair[:n]], log_g[pair[n:]]
    with np.errstate(divide="ignore"):
        return (log_g_tx + np.log1p(-np.exp(log_g_T - log_g_tx))).reshape(shape)


def _row_log_likelihood(params, x, log_a0, log_alpha_T, log_beta_T):
    r, alpha, s, beta = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * log_alpha_T - s * log_beta_T
    return a1 + np.logaddexp(alive, np.log(s) + log_a0 - np.log(r + s + x))


def _mean_nll(log_params, rows: _Rows, penalizer_coef: float) -> float:
    """Total negative log-likelihood per customer, plus lifetimes' penalty.

    lifetimes divides the summed negative log-likelihood by the *mean* weight (1 on
    a customer table), so its penalty is added to the total; the optimum of
    ``(total + penalty) / n`` is the same.
    """
    params = np.exp(log_params)
    r, alpha, s, beta = params
    log_g = _log_g(params, rows.pair_x, rows.pair_u)
    with np.errstate(divide="ignore"):
        log_a0 = log_g[rows.tx_pair] + np.log1p(-np.exp(log_g[rows.T_pair] - log_g[rows.tx_pair]))
    log_alpha_T = np.log(alpha + rows.T_levels)[rows.T_code]
    log_beta_T = np.log(beta + rows.T_levels)[rows.T_code]
    ll = _row_log_likelihood(params, rows.x, log_a0, log_alpha_T, log_beta_T)
    W = rows.total_weight
    return -dot(rows.weight, ll) / W + penalizer_coef * np.sum(params**2) / W


def _objective(log_params, rows: _Rows, penalizer_coef: float):
    """Objective and its gradient in log-parameters.

    ``log L = A1 + logaddexp(P, Q)`` with ``A1 = lnG(r+x) - lnG(r) + r ln(alpha) +
    s ln(beta)``, ``P = -(r+x) ln(alpha+T) - s ln(beta+T)`` (alive at T) and
    ``Q = K + ln A0``, ``K = ln(s) - ln(r+s+x)`` (died between t_x and T). So
    ``log L = A1 + P + softplus(Q - P)`` and, with ``omega = expit(Q - P)``,
    ``d log L = dA1 + dP + omega (dK - dP + d ln A0)``, where
    ``d ln A0 = (d ln g(t_x) - rho d ln g(T)) / (1 - rho)``, ``rho = g(T) / g(t_x)``.

    ``P`` and ``K`` depend on (x, T) only and ``ln g`` on (x, time) only: they are
    evaluated per distinct pair, and the sums over customers of their derivatives
    are sums over pairs of per-pair weights (bincounts). Per customer row only
    ``rho``, ``softplus`` and ``omega`` remain. The derivatives of ``ln g`` in ``r``
    and ``s`` (the parameters of the hypergeometric function, no closed form) are
    central differences; the rest is analytic.
    """
    params = np.exp(log_params)
    r, alpha, s, beta = params
    lv, lw, W = rows.x_levels, rows.x_level_weight, rows.total_weight
    w = rows.weight
    px, pu = rows.pair_x, rows.pair_u

    log_g, d_log_g = _log_g_and_gradient(log_params, px, pu)
    # Per pair (x, u), read as (x, T) where a row's T is u.
    log_alpha_u, log_beta_u = np.log(alpha + pu), np.log(beta + pu)
    alive = -(r + px) * log_alpha_u - s * log_beta_u
    inv_rsx = 1.0 / (r + s + px)
    k_term = np.log(s) + np.log(inv_rsx)

    log_g_tx, log_g_T = log_g[rows.tx_pair], log_g[rows.T_pair]
    rho = np.exp(log_g_T - log_g_tx)  # in [0, 1]; 1 when t_x == T (A0 = 0)
    with np.errstate(divide="ignore"):
        gap = log_g_tx + np.log1p(-rho) + (k_term - alive)[rows.T_pair]
    # softplus(gap) and expit(gap) from one exp(-|gap|), stable for either sign.
    e = np.exp(-np.abs(gap))
    softplus = np.maximum(gap, 0.0) + np.log1p(e)
    w_omega = w * np.where(gap >= 0, 1.0, e) / (1.0 + e)

    loglik = (
        dot(lw, gammaln(r + lv))
        + W * (-gammaln(r) + r * np.log(alpha) + s * np.log(beta))
        + dot(rows.T_pair_weight, alive)
        + dot(w, softplus)
    )

    # Per-pair weights of the per-row terms.
    n_pairs = len(px)
    live = rho < 1  # rows with A0 > 0; the others put no weight on the dead branch
    inv_one_minus_rho = np.where(live, 1.0 / np.where(live, 1.0 - rho, 1.0), 0.0)
    omega_T = np.bincount(rows.T_pair, weights=w_omega, minlength=n_pairs)
    a0_tx = np.bincount(rows.tx_pair, weights=w_omega * inv_one_minus_rho, minlength=n_pairs)
    a0_T = np.bincount(rows.T_pair, weights=w_omega * rho * inv_one_minus_rho, minlength=n_pairs)
    # dP and dK per pair, in the natural parameters (r, alpha, s, beta).
    inv_alpha_u, inv_beta_u = 1.0 / (alpha + pu), 1.0 / (beta + pu)
    d_p = (-log_alpha_u, -(r + px) * inv_alpha_u, -log_beta_u, -s * inv_beta_u)
    d_k = (-inv_rsx, 0.0, 1.0 / s - inv_rsx, 0.0)
    d_a1 = (
        dot(lw, digamma(r + lv)) + W * (np.log(alpha) - digamma(r)),
        W * r / alpha,
        W * np.log(beta),
        W * s / beta,
    )
    grad_loglik = np.empty(4)
    for k in range(4):
        per_pair = dot(rows.T_pair_weight, d_p[k]) + dot(omega_T, d_k[k] - d_p[k])
        grad_loglik[k] = params[k] * (d_a1[k] + per_pair) + (
            dot(a0_tx, d_log_g[k]) - dot(a0_T, d_log_g[k])
        )
    value = -loglik / W + penalizer_coef * np.sum(params**2) / W
    grad = -grad_loglik / W + 2 * penalizer_coef * params**2 / W
    return value, grad


_LIKELIHOOD = PurchaseLikelihood(
    _rows, _objective, PARAM_NAMES, TIME_PARAMS, default_start=0.0, value=_mean_nll
)


def fit(frequency, recency, T, **options) -> tuple[MLEResult, float]:
    """Fit Pareto/NBD; returns the result (log-params in rescaled time) and the time scale.

    Options as :meth:`segml.models._mle.PurchaseLikelihood.fit`. Time is rescaled
    as lifetimes does (oldest customer ``T = 1``). lifetimes starts Nelder-Mead at
    random parameters near 1 and stops at ``tol=1e-4``; here the start is all
    parameters 1 (log 0) and the optimum is polished by Newton steps.
    """
    return _LIKELIHOOD.fit(frequency, recency, T, **options)


def log_likelihood_hessian(log_params, frequency, recency, T, **options) -> np.ndarray:
    """Hessian of the mean penalised objective at ``log_params`` (rescaled time)."""
    return _LIKELIHOOD.hessian(log_params, frequency, recency, T, **options)


def log_likelihood(params, frequency, recency, T, weights=None) -> float:
    """Total (unpenalised) log-likelihood of the customers, times in the data's unit."""
    return _LIKELIHOOD.log_likelihood(params, frequency, recency, T, weights)


def p_alive(params, frequency, recency, T):
    """P(alive | x, t_x, T) (FHL 2005 note, eq. 36-37)."""
    r, alpha, s, beta = params
    log_a0 = _log_a0(params, frequency, recency, T)
    with np.errstate(over="ignore"):
        return 1.0 / (
            1.0
            + np.exp(
                np.log(s)
                - np.log(r + s + frequency)
                + (r + frequency) * np.log(alpha + T)
                + s * np.log(beta + T)
                + log_a0
            )
        )


def survival_term(params, x, T, t):
    """``((beta+T)/(beta+T+t))^(s-1)``: eq. 41's bracket is ``1`` minus it."""
    r, alpha, s, beta = params
    # Depends on T only; "+ 0 * x" gives it the (x, T) shape the callers broadcast to.
    return ((beta + T) / (beta + T + t)) ** (s - 1) + 0.0 * x


def purchase_factor(params, x, t_x, T):
    """``P(alive) (r+x)(beta+T) / ((alpha+T)(s-1))``: eq. 41 without its bracket."""
    r, alpha, s, beta = params
    return p_alive(params, x, t_x, T) * (r + x) * (beta + T) / ((alpha + T) * (s - 1))


def expected_purchases_new_customer(params, t):
    """E[X(t)] of a customer just acquired: ``r beta / (alpha (s-1)) (1 - (beta/(beta+t))^(s-1))``
    (FHL 2005 note, eq. 27)."""
    r, alpha, s, beta = params
    t = np.asarray(t, dtype=float)
    return r * beta / alpha / (s - 1) * (1 - (beta / (beta + t)) ** (s - 1))


def repeat_purchase_pmf(params, t, max_purchases):
    """P(X(t) = n), n = 0..max_purchases, for a customer observed for ``t``.

    Fader, Hardie & Lee (2006), "Deriving an expression for P(X(t) = x) under the
    Pareto/NBD model", eq. 17-19: alive throughout (an NBD count times the
    probability of surviving ``t``) plus dead at some ``tau < t`` after ``n``
    purchases, the integral in closed form with the same ``2F1`` branches as the
    likelihood.
    """
    r, alpha, s, beta = params
    t = float(t)
    n = np.arange(max_purchases + 1, dtype=float)
    log_nbd = (
        gammaln(r + n)
        - gammaln(r)
        - gammaln(n + 1)
        + r * np.log(alpha / (alpha + t))
        + n * np.log(t / (alpha + t))
    )
    alive = np.exp(log_nbd + s * np.log(beta / (beta + t)))
    if alpha >= beta:
        big, small = alpha, beta
        c = np.full_like(n, s + 1)
    else:
        big, small = beta, alpha
        c = r + n
    rs = r + s
    out = np.empty_like(n)
    for k, count in enumerate(n):
        # B1 - sum_i Gamma(r+s+i)/(Gamma(r+s) i!) t^i B2_i (eq. 18-19).
        b1 = hyp2f1(rs, c[k], rs + count + 1, (big - small) / big) / big**rs
        i = np.arange(count + 1)
        log_b2 = np.log(hyp2f1(rs + i, c[k], rs + count + 1, (big - small) / (big + t))) - (
            rs + i
        ) * np.log(big + t)
        terms = np.exp(gammaln(rs + i) - gammaln(rs) - gammaln(i + 1) + i * np.log(t) + log_b2)
        dead = np.exp(
            r * np.log(alpha) + s * np.log(beta) + betaln(r + count, s + 1) - betaln(r, s)
        ) * (b1 - terms.sum())
        out[k] = alive[k] + dead
    # For large n, B1 - sum cancels to the rounding of B1 (~1e-17 absolute), which can
    # come out a hair below zero: a probability is not negative.
    return np.maximum(out, 0.0)
