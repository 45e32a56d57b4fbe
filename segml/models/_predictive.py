"""Per-customer predictive distributions from a fitted :class:`~segml.models.CLVModel`.

A point CLV says what a customer is worth on average; these functions say how sure
that is and when the next purchase is due, for BG/NBD, MBG/NBD and Pareto/NBD:

- :func:`purchase_probability`: P(at least one purchase in the next N days), in
  closed form, ``1 - P(X(t) = 0 | x, t_x, T)``;
- :func:`next_purchase`: the waiting time to the next purchase given the history
  (its 10%, 50% and 90% quantiles, as day offsets and dates) and ``p_buy_again``,
  the probability of ever buying again;
- :func:`clv_predictive_interval`: the predictive interval of each customer's
  discounted value over the model's horizon, simulated from the model's own
  conditional process (process uncertainty) with parameters drawn from their
  asymptotic normal (parameter uncertainty);
- :func:`conditional_purchase_pmf`: P(X(t) = n | history), n = 0, 1, ...;
- :func:`predictive_calibration`: how well those distributions cover what happened
  in a holdout period.

**Posterior of an alive customer.** All three models share one fact: given the
history ``(x, t_x, T)`` *and* that the customer is alive at ``T``, the purchase rate
is ``lambda ~ Gamma(r + x, alpha + T)``, independent of the drop-out side, which is
``p ~ Beta(a, b + x)`` for BG/NBD (Fader, Hardie & Lee 2005, "Counting your
customers the easy way", eq. 6: the "alive" branch of the likelihood is
``(1-p)^x lambda^x e^(-lambda T)``), ``p ~ Beta(a, b + x + 1)`` for MBG/NBD
(Batislam, Denizel & Filiztekin 2007: one more survived drop-out chance at time
zero) and ``mu ~ Gamma(s, beta + T)`` for Pareto/NBD (Fader, Hardie & Lee 2005, "A
note on deriving the Pareto/NBD model", eq. 18: ``e^(-mu T)``). A dead customer
never buys again, and ``P(alive | history)`` is each model's ``p_alive``. Every
formula below mixes these two cases.

Times are in the model's ``time_unit``; windows and offsets reported in days use
:data:`DAYS_PER_UNIT` (a week is 7 days, a month 30, as :data:`PERIODS_PER_MONTH`
counts a month of days).
"""

from __future__ import annotations

import math
import numbers
import threading

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, hyp2f1, roots_legendre

from segml.models import _bgnbd, _mbgnbd, _paretonbd
from segml.models._distinct import distinct_rows, levels
from segml.models._estimator import check_fitted, random_state_instance
from segml.models.clv import PERIODS_PER_MONTH, CLVInputError, _rfm_arrays

__all__ = [
    "DAYS_PER_UNIT",
    "clv_predictive_interval",
    "conditional_purchase_pmf",
    "next_purchase",
    "p_buy_again",
    "predictive_calibration",
    "predictive_summary",
    "purchase_probability",
]

# Days per period of each time unit (a month is 30 days, as in PERIODS_PER_MONTH["D"]).
DAYS_PER_UNIT = {"D": 1.0, "W": 7.0, "M": 30.0, "H": 1.0 / 24.0}
_MODULES = {"bgnbd": _bgnbd, "mbgnbd": _mbgnbd, "paretonbd": _paretonbd}
# Offsets beyond this (100 years) are "never" for a date: pandas' dates end in 2262.
_MAX_OFFSET_DAYS = 36_525.0
# Customer x draw cells per simulation block: ~40 MB per float64 array of a block.
_BLOCK_CELLS = 5_000_000
# Log-spaced times per (x, T) pair on which Pareto/NBD's waiting-time cdf is tabulated.
_GRID_POINTS = 49
# Gauss-Legendre nodes of the Pareto/NBD conditional pmf (integral over the death time).
_QUADRATURE_NODES = 64


# ------------------------------------------------------------------ validation


def _fitted(model):
    """(purchase model name, its parameter tuple) of a fitted CLVModel."""
    check_fitted(model, "purchase_params_")
    name = model.purchase_model_
    if name not in _MODULES:
        raise CLVInputError(
            f"No predictive distributions for purchase model {name!r}; known: {list(_MODULES)}."
        )
    module = _MODULES[name]
    return name, tuple(float(model.purchase_params_[k]) for k in module.PARAM_NAMES)


def _gamma_gamma(model):
    if getattr(model, "gamma_gamma_params_", None) is None:
        raise CLVInputError(
            "This model has no spend model (spend_model=None): there is no CLV, so no CLV "
            "interval. Fit it with spend_model='gamma_gamma' on a log with amounts."
        )
    return tuple(float(model.gamma_gamma_params_[k]) for k in ("p", "q", "v"))


def _days_to_periods(model, days, name):
    days = np.atleast_1d(np.asarray(days, dtype=float))
    if days.ndim != 1 or days.size == 0 or not np.all(np.isfinite(days) & (days > 0)):
        raise CLVInputError(f"{name} must be one or more positive numbers of days, got {days!r}.")
    return days / DAYS_PER_UNIT[model.time_unit]


def _check_level(level, name="level"):
    if not (isinstance(level, numbers.Real) and 0 < level < 1):
        raise CLVInputError(f"{name} must be in (0, 1), got {level!r}.")


# ---------------------------------------------- closed forms given the history


def _pareto_share(r1, s, rate_lambda, rate_mu):
    """``E[lambda / (lambda + mu)]`` for independent gamma rates of purchase and death.

    ``lambda ~ Gamma(r1, rate_lambda)``, ``mu ~ Gamma(s, rate_mu)``.
    With ``W = U / (U + V) ~ Beta(r1, s)`` (``U``, ``V`` the unit-rate gammas) and
    ``c = rate_lambda / rate_mu``: ``lambda / (lambda + mu) = W / (c - (c - 1) W)``,
    whose Beta mean is Euler's integral of ``2F1``:
    ``(r1 / (r1 + s)) / c * 2F1(1, r1 + 1; r1 + s + 1; 1 - 1/c)``; for ``c < 1`` the
    Pfaff transformation gives ``(r1 / (r1 + s)) 2F1(1, s; r1 + s + 1; 1 - c)``. Each
    branch keeps the argument in [0, 1), as the Pareto/NBD likelihood's eq. 19-20 do.
    """
    r1, s, rate_lambda, rate_mu = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (r1, s, rate_lambda, rate_mu))
    )
    mean_w = r1 / (r1 + s)
    c = rate_lambda / rate_mu
    out = np.empty(c.shape)
    big = c >= 1
    out[big] = mean_w[big] / c[big] * hyp2f1(1.0, r1[big] + 1, r1[big] + s[big] + 1, 1 - 1 / c[big])
    small = ~big
    out[small] = mean_w[small] * hyp2f1(1.0, s[small], r1[small] + s[small] + 1, 1 - c[small])
    return out


def _buy_given_alive(name, params, x, T, t):
    """P(at least one purchase in ``(T, T + t]`` | history, alive at ``T``).

    BG/NBD and MBG/NBD: a live customer cannot drop out before the next purchase, so
    it is ``1 - E[exp(-lambda t)] = 1 - ((alpha + T) / (alpha + T + t))^(r + x)``.
    Pareto/NBD: a purchase comes first iff the next Poisson arrival precedes both
    death and ``t``: ``E[lambda / (lambda + mu) (1 - exp(-(lambda + mu) t))]``; the
    exponential tilts both gamma posteriors to rates ``+ t``, so it is
    ``share(alpha + T, beta + T) - ((alpha+T)/(alpha+T+t))^(r+x) ((beta+T)/(beta+T+t))^s
    share(alpha + T + t, beta + T + t)`` (:func:`_pareto_share`).
    """
    if name == "paretonbd":
        r, alpha, s, beta = params
        r1, a1, b1 = r + x, alpha + T, beta + T
        tilt = np.exp(r1 * np.log(a1 / (a1 + t)) + s * np.log(b1 / (b1 + t)))
        return _pareto_share(r1, s, a1, b1) - tilt * _pareto_share(r1, s, a1 + t, b1 + t)
    r, alpha, _, _ = params
    return -np.expm1((r + x) * np.log((alpha + T) / (alpha + T + t)))


def _buy_ever_given_alive(name, params, x, T):
    """The limit of :func:`_buy_given_alive` as ``t`` grows: 1, or Pareto/NBD's share.

    Pareto/NBD's share (a 2F1) is evaluated once per distinct (x, T) pair.
    """
    if name == "paretonbd":
        r, alpha, s, beta = params
        (x_u, T_u), pair, _ = distinct_rows(np.asarray(x, dtype=float), np.asarray(T, dtype=float))
        return _pareto_share(r + x_u, s, alpha + T_u, beta + T_u)[pair]
    return np.ones(np.broadcast(x, T).shape)


def _p_alive(name, params, x, t_x, T):
    return _MODULES[name].p_alive(params, x, t_x, T)


def purchase_probability(model, rfm: pd.DataFrame, windows_days=(30, 90)) -> pd.DataFrame:
    """P(at least one purchase in the next N days), per customer and window.

    ``P(X(t) > 0 | x, t_x, T) = P(alive) * P(purchase within t | alive)``: BG/NBD and
    MBG/NBD ``p_alive (1 - ((alpha+T)/(alpha+T+t))^(r+x))`` (Fader, Hardie & Lee
    2005, "Computing P(X(t) = x | x, t_x, T)", the ``x = 0`` term); Pareto/NBD the
    same with the probability that the next purchase precedes death (see the module
    docstring and :func:`_buy_given_alive`), which is 1 minus lifetimes'
    ``ParetoNBDFitter.conditional_probability_of_n_purchases_up_to_time(0, ...)``.

    Parameters
    ----------
    model : segml.models.CLVModel
        Fitted.
    rfm : pandas.DataFrame
        ``frequency``, ``recency``, ``T`` in the model's ``time_unit``.
    windows_days : sequence of float, default (30, 90)
        Window lengths in days, converted with :data:`DAYS_PER_UNIT`.

    Returns
    -------
    pandas.DataFrame
        One column ``p_buy_<N>d`` per window, indexed like ``rfm``.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())  # BG/NBD, weeks
    >>> rfm = pd.DataFrame({"frequency": [0.0, 4.0, 4.0], "recency": [0.0, 30.0, 5.0],
    ...                     "T": [38.0] * 3}, index=["new", "recent", "lapsed"])
    >>> purchase_probability(model, rfm).round(3)
            p_buy_30d  p_buy_90d
    new         0.023      0.062
    recent      0.248      0.498
    lapsed      0.004      0.008
    """
    name, params = _fitted(model)
    frequency, recency, T, _ = _rfm_arrays(rfm, need_monetary=False)
    windows = _days_to_periods(model, windows_days, "windows_days")
    alive = _p_alive(name, params, frequency, recency, T)
    (x_u, T_u), pair, _ = distinct_rows(frequency, T)
    columns = {}
    for days, t in zip(np.atleast_1d(windows_days), windows, strict=True):
        label = f"p_buy_{float(days):g}d"
        columns[label] = alive * _buy_given_alive(name, params, x_u, T_u, t)[pair]
    return pd.DataFrame(columns, index=rfm.index)


def p_buy_again(model, rfm: pd.DataFrame) -> pd.Series:
    """P(ever buying again | history): the limit of P(buy within t) as t grows.

    ``p_alive`` for BG/NBD and MBG/NBD (a live customer buys again before dropping
    out); ``p_alive * E[lambda / (lambda + mu)]`` for Pareto/NBD (the next purchase
    must come before death).

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> rfm = pd.DataFrame({"frequency": [4.0], "recency": [30.0], "T": [38.0]})
    >>> round(float(p_buy_again(model, rfm).iloc[0]), 3)
    0.738
    """
    name, params = _fitted(model)
    frequency, recency, T, _ = _rfm_arrays(rfm, need_monetary=False)
    values = _p_alive(name, params, frequency, recency, T) * _buy_ever_given_alive(
        name, params, frequency, T
    )
    return pd.Series(values, index=rfm.index, name="p_buy_again")


# ------------------------------------------------------------ waiting times


def _waiting_quantiles(name, params, x, t_x, T, levels, alive, ever):
    """Quantiles (rows x levels) of the waiting time in periods; inf where never reached.

    ``P(W <= s) = p_alive * G(s)``, ``G`` = :func:`_buy_given_alive`, so quantile ``q``
    solves ``G(s) = q / p_alive``. BG/NBD and MBG/NBD invert in closed form,
    ``s = (alpha + T) ((1 - q/p_alive)^(-1/(r+x)) - 1)``; Pareto/NBD numerically, over
    distinct (x, t_x, T) rows (a grid per (x, T) pair, then regula falsi). ``alive`` and ``ever``
    are ``p_alive`` and ``p_buy_again`` per row. Never reached: inf or NaN.
    """
    levels = np.asarray(levels, dtype=float)
    if name != "paretonbd":
        r, alpha, _, _ = params
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            # ln(1 - q / p_alive) for all levels at once: -inf where q = p_alive (inf
            # offset) and NaN where q > p_alive (never reached; p_buy_again = p_alive).
            shrink = np.log1p(-levels[None, :] / alive[:, None])
            shrink /= -(r + x)[:, None]
            out = np.expm1(shrink, out=shrink)
            out *= (alpha + T)[:, None]
        return out
    out = np.full((len(x), len(levels)), np.inf)
    # Pareto/NBD: G(s) = share(alpha', beta') - tilt(s) share(alpha' + s, beta' + s) depends
    # on the (x, T) pair only; the target q / p_alive on the customer. G is tabulated per
    # pair on a log grid of s, each target is bracketed between two grid points, and
    # the root refined by safeguarded Newton steps with exact G and its closed-form
    # derivative: two or three 2F1 per customer and level instead of a bisection's dozens.
    r, alpha, s_, beta = params
    (xu, txu, Tu), inv, _ = distinct_rows(x, t_x, T)
    a_u = np.empty(len(xu))
    a_u[inv] = alive  # customers of one row share their p_alive
    (xp, Tp), pair, _ = distinct_rows(xu, Tu)
    r1, a1, b1 = r + xp, alpha + Tp, beta + Tp
    share0 = _pareto_share(r1, s_, a1, b1)

    def given_alive(time, p):
        tilt = np.exp(r1[p] * np.log(a1[p] / (a1[p] + time)) + s_ * np.log(b1[p] / (b1[p] + time)))
        return share0[p] - tilt * _pareto_share(r1[p], s_, a1[p] + time, b1[p] + time)

    # Offsets past _MAX_OFFSET_DAYS are reported as never: no need to search beyond.
    log_grid = np.linspace(math.log(1e-6), math.log(2 * _MAX_OFFSET_DAYS * 24), _GRID_POINTS)
    table = given_alive(np.exp(log_grid)[None, :], np.arange(len(xp))[:, None])
    table = np.maximum.accumulate(table, axis=1)  # monotone despite rounding
    flat = (table + 2.0 * np.arange(len(xp))[:, None]).ravel()
    for k, q in enumerate(levels):
        rows = np.flatnonzero(a_u * share0[pair] > q)
        p, target = pair[rows], q / a_u[rows]
        # First grid point with G >= target (shifted rows laid end to end stay sorted).
        at = np.searchsorted(flat, target + 2.0 * p, side="left") - p * _GRID_POINTS
        values = np.full(len(xu), np.inf)
        values[rows[at == 0]] = math.exp(log_grid[0])  # reached at once (within 1e-6)
        inner = (at > 0) & (at < _GRID_POINTS)
        rows, p, target, at = rows[inner], p[inner], target[inner], at[inner]
        lo, hi = log_grid[at - 1], log_grid[at]
        f_lo, f_hi = table[p, at - 1] - target, table[p, at] - target  # < 0 <= f_hi
        # Safeguarded Newton in u = ln s from the linear interpolation of the table:
        # G's derivative is the density of the first purchase given alive,
        # E[lambda e^(-lambda s)] E[e^(-mu s)] = (r+x)/(alpha'+s) (alpha'/(alpha'+s))^(r+x)
        # (beta'/(beta'+s))^s', in closed form, so each step costs one G (one 2F1)
        # and converges quadratically; a step leaving the bracket bisects it.
        u = np.where(
            f_hi > f_lo, (lo * f_hi - hi * f_lo) / np.where(f_hi > f_lo, f_hi - f_lo, 1), hi
        )
        result = hi.copy()
        active = np.arange(len(rows))  # rows still refining: only those are evaluated
        for _ in range(60):
            pa, ua = p[active], u[active]
            time = np.exp(ua)
            f = given_alive(time, pa) - target[active]
            right = f >= 0  # the root is at or left of u
            hi[active] = np.where(right, ua, hi[active])
            lo[active] = np.where(right, lo[active], ua)
            a_t, b_t = a1[pa] + time, b1[pa] + time
            slope = time * np.exp(
                np.log(r1[pa] / a_t) + r1[pa] * np.log(a1[pa] / a_t) + s_ * np.log(b1[pa] / b_t)
            )  # dG/du = s G'(s)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = ua - f / slope
            inside = (step > lo[active]) & (step < hi[active])
            step = np.where(inside, step, 0.5 * (lo[active] + hi[active]))
            # Converged: G hits the target to 1e-11, or the step (or the bracket) is
            # below 1e-10 in ln s: offsets good to a ten-millionth of a second per day.
            done = (np.abs(f) < 1e-11 * target[active]) | (np.abs(step - ua) < 1e-10)
            done |= hi[active] - lo[active] < 1e-10
            result[active] = np.where(
                done, np.where(np.abs(f) < 1e-11 * target[active], ua, step), 0
            )
            u[active] = step
            active = active[~done]
            if active.size == 0:
                break
        values[rows] = np.exp(result)
        out[:, k] = values[inv]
    return out


def next_purchase(
    model,
    rfm: pd.DataFrame,
    *,
    as_of=None,
    interval_level: float = 0.8,
) -> pd.DataFrame:
    """When each customer buys next: the waiting time's median and interval, as dates.

    The waiting time ``W`` from ``as_of`` (the end of the data, time ``T``) to the next
    purchase has, given the history, ``P(W <= s) = P(X(s) > 0 | x, t_x, T)``
    (:func:`purchase_probability`) and ``P(W = infinity) = 1 - p_buy_again``: a dead
    customer, or (Pareto/NBD) one who dies before buying, never buys again. So ``W``
    has a *defective* distribution, and its quantiles are defined on it, not on the
    waiting time of those who do buy: the ``q`` quantile is the smallest ``s`` with
    ``P(W <= s) >= q``, which exists exactly when ``p_buy_again > q``.

    - ``next_purchase_days``: the median (``q = 0.5``); a customer with
      ``p_buy_again <= 0.5`` is more likely never to buy again than to buy at all,
      and gets no median (NaN days, NaT date): ``p_buy_again`` says why.
    - ``next_purchase_low_days`` / ``next_purchase_high_days``: the ``(1 -
      interval_level) / 2`` and ``(1 + interval_level) / 2`` quantiles (10% and 90%
      by default); the high end exists only when ``p_buy_again > 0.9``, else NaN/NaT.
      Offsets beyond 100 years count as never reached.

    BG/NBD and MBG/NBD invert ``P(W <= s)`` in closed form; Pareto/NBD numerically,
    vectorised over all customers at once (no per-customer solver): ``P(W <= s | alive)``
    is tabulated on a log grid of ``s`` per distinct ``(x, T)``, each customer's level
    bracketed between two grid points and the root refined by regula falsi (Illinois)
    to a relative error below 1e-10.

    Parameters
    ----------
    model : segml.models.CLVModel
        Fitted.
    rfm : pandas.DataFrame
        ``frequency``, ``recency``, ``T`` in the model's ``time_unit``.
    as_of : date-like, optional
        The date the RFM table was computed at. Given, the offsets are also returned
        as dates: ``next_purchase_date``, ``next_purchase_low`` and
        ``next_purchase_high``, the first whole day by which the probability reaches
        the level (``as_of`` plus the offset rounded up to whole days).
    interval_level : float, default 0.8

    Returns
    -------
    pandas.DataFrame
        ``p_buy_again``, ``next_purchase_days``, ``next_purchase_low_days``,
        ``next_purchase_high_days`` (days after ``as_of``) and, with ``as_of``, the
        three dates; indexed like ``rfm``.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> rfm = pd.DataFrame({"frequency": [4.0, 4.0], "recency": [30.0, 5.0],
    ...                     "T": [38.0, 38.0]}, index=["recent", "lapsed"])
    >>> out = next_purchase(model, rfm, as_of="1997-09-30")
    >>> out[["p_buy_again", "next_purchase_days", "next_purchase_low_days"]].round(2)
            p_buy_again  next_purchase_days  next_purchase_low_days
    recent         0.74               90.72                   10.36
    lapsed         0.01                 NaN                     NaN
    >>> out["next_purchase_date"].tolist()
    [Timestamp('1997-12-30 00:00:00'), NaT]
    """
    _check_level(interval_level, "interval_level")
    name, params = _fitted(model)
    frequency, recency, T, _ = _rfm_arrays(rfm, need_monetary=False)
    levels = [(1 - interval_level) / 2, 0.5, (1 + interval_level) / 2]
    if name == "paretonbd":
        # Pareto/NBD's P(alive) and quantiles cost 2F1s per row: once per distinct
        # (x, t_x, T) row, broadcast to its customers.
        (x_u, t_x_u, T_u), row, _ = distinct_rows(frequency, recency, T)
        alive = _p_alive(name, params, x_u, t_x_u, T_u)
        ever = alive * _buy_ever_given_alive(name, params, x_u, T_u)
        periods = _waiting_quantiles(name, params, x_u, t_x_u, T_u, levels, alive, ever)[row]
        ever = ever[row]
    else:
        alive = _p_alive(name, params, frequency, recency, T)
        ever = alive * _buy_ever_given_alive(name, params, frequency, T)
        periods = _waiting_quantiles(name, params, frequency, recency, T, levels, alive, ever)
    days = periods * DAYS_PER_UNIT[model.time_unit]
    days[~(days <= _MAX_OFFSET_DAYS)] = np.nan  # never reached, or beyond 100 years
    out = pd.DataFrame(
        {
            "p_buy_again": ever,
            "next_purchase_days": days[:, 1],
            "next_purchase_low_days": days[:, 0],
            "next_purchase_high_days": days[:, 2],
        },
        index=rfm.index,
    )
    if as_of is not None:
        start = pd.Timestamp(as_of).normalize().as_unit("ns").value
        # Whole days after as_of, as nanoseconds since the epoch; NaN -> NaT.
        whole_days = np.ceil(days)
        missing = np.isnan(whole_days)
        whole_days[missing] = 0.0
        stamps = whole_days.astype(np.int64)
        stamps *= 86_400 * 10**9
        stamps += start
        stamps[missing] = np.iinfo(np.int64).min
        dates = stamps.view("datetime64[ns]")
        for column, k in (
            ("next_purchase_date", 1),
            ("next_purchase_low", 0),
            ("next_purchase_high", 2),
        ):
            out[column] = dates[:, k]
    return out


# ---------------------------------------------------- conditional count pmf


def conditional_purchase_pmf(model, rfm: pd.DataFrame, t: float, max_purchases: int) -> np.ndarray:
    """P(X(t) = n | x, t_x, T) for n = 0..max_purchases: repeat purchases in the next ``t``.

    ``(1 - p_alive) [n = 0] + p_alive P(n | alive)``. Given alive, BG/NBD and MBG/NBD
    count ``min(N, K)``: ``N`` Poisson arrivals in ``t`` (negative binomial over the
    posterior ``Gamma(r + x, alpha + T)``) and ``K`` the purchase after which the
    customer drops out (beta-geometric over the posterior ``Beta(a, b')``, ``b' = b +
    x`` or ``b + x + 1``), independent given alive: ``P(N = n) P(K >= n) + P(N > n)
    P(K = n)``; this is the Fader, Hardie & Lee (2005) note's ``P(X(t) = x | x, t_x,
    T)`` in product form. Pareto/NBD: the count is Poisson over ``min(tau, t)``, the
    remaining lifetime ``tau`` Pareto (Lomax) with ``P(tau > u) = ((beta+T)/(beta+T+u))^s``:
    ``P(tau > t) NB(n; t) + int_0^t NB(n; u) f_tau(u) du`` (64-node Gauss-Legendre),
    which equals lifetimes' ``conditional_probability_of_n_purchases_up_to_time``.

    ``t`` in ``time_unit`` periods. Returns an array (customers x ``max_purchases + 1``);
    rows sum to 1 minus the mass above ``max_purchases``.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> rfm = pd.DataFrame({"frequency": [4.0], "recency": [30.0], "T": [38.0]})
    >>> pmf = conditional_purchase_pmf(model, rfm, 39.0, 60)
    >>> pmf[0, :4].round(3).tolist(), round(float(pmf.sum()), 6)
    ([0.308, 0.16, 0.147, 0.12], 1.0)
    """
    name, params = _fitted(model)
    frequency, recency, T, _ = _rfm_arrays(rfm, need_monetary=False)
    t = float(t)
    if not (math.isfinite(t) and t > 0):
        raise CLVInputError(f"t must be a positive number of periods, got {t!r}.")
    alive = _p_alive(name, params, frequency, recency, T)
    (x_u, T_u), pair, _ = distinct_rows(frequency, T)
    given_alive = _pmf_given_alive(name, params, x_u, T_u, t, int(max_purchases))[pair]
    out = alive[:, None] * given_alive
    out[:, 0] += 1 - alive
    return out


def _log_nbd(r1, rate, n, t):
    """log P(N = n), N Poisson over ``t`` with rate ``Gamma(r1, rate)`` (columns n)."""
    return (
        gammaln(r1 + n)
        - gammaln(r1)
        - gammaln(n + 1)
        + r1 * np.log(rate / (rate + t))
        + n * np.log(t / (rate + t))
    )


def _pmf_given_alive(name, params, x, T, t, max_purchases):
    n = np.arange(max_purchases + 1, dtype=float)[None, :]
    x, T = x[:, None], T[:, None]
    if name == "paretonbd":
        r, alpha, s, beta = params
        r1, a1, b1 = r + x, alpha + T, beta + T
        survive = np.exp(s * np.log(b1 / (b1 + t)) + _log_nbd(r1, a1, n, t))
        nodes, weights = roots_legendre(_QUADRATURE_NODES)
        u = 0.5 * t * (nodes + 1)  # nodes on (0, t)
        w = 0.5 * t * weights
        out = survive
        for uk, wk in zip(u, w, strict=True):
            density = s / (b1 + uk) * np.exp(s * np.log(b1 / (b1 + uk)))
            out = out + wk * density * np.exp(_log_nbd(r1, a1, n, uk))
        return out
    r, alpha, a, b = params
    b1 = b + x + (1 if name == "mbgnbd" else 0)
    log_nb = _log_nbd(r + x, alpha + T, n, t)
    nb = np.exp(log_nb)
    nb_above = np.clip(1 - np.cumsum(nb, axis=1), 0.0, None)  # P(N > n)
    # K >= n is surviving n - 1 drop-out chances: E[(1-p)^(n-1)] = B(a, b'+n-1)/B(a, b').
    survived = np.maximum(n - 1, 0)
    log_beta = betaln(a, b1)
    k_at_least = np.where(n == 0, 1.0, np.exp(betaln(a, b1 + survived) - log_beta))
    k_equal = np.where(n == 0, 0.0, np.exp(betaln(a + 1, b1 + survived) - log_beta))
    return nb * k_at_least + nb_above * k_equal


# ----------------------------------------------------- simulation machinery


def _parameter_draws(params, log_covariance, n_draws, rng, label):
    params = np.asarray(params, dtype=float)
    if log_covariance is None or not np.all(np.isfinite(log_covariance)):
        raise CLVInputError(
            f"The {label} fit has no finite log-parameter covariance (its Hessian is not "
            "positive definite), so parameter uncertainty cannot be drawn; pass "
            "parameter_uncertainty=False for process uncertainty only."
        )
    return np.exp(rng.multivariate_normal(np.log(params), log_covariance, size=n_draws))


def _discount_table(model):
    """Month length in periods, horizon, and the cumulative discounted length table.

    Month ``m`` (1-based) covers ``((m-1) P, m P]`` and is discounted by ``(1 + d)^-m``,
    as :meth:`CLVModel.clv` does.
    """
    months = int(model.horizon_months)
    period = PERIODS_PER_MONTH[model.time_unit]
    factors = (1.0 + model.monthly_discount_rate) ** -np.arange(1, months + 1)
    cumulative = np.concatenate([[0.0], np.cumsum(factors)])
    return period, months, factors, cumulative


def _discount_at(u, period, months, factors):
    """Discount factor of a purchase at time ``u`` in ``(0, horizon]``."""
    month = np.clip(np.ceil(u / period), 1, months).astype(np.intp)
    return factors[month - 1]


def _discounted_length(u, period, months, factors, cumulative):
    """``D(u) = int_0^u discount(v) dv`` for ``u`` in ``[0, horizon]`` (piecewise linear)."""
    whole = np.clip(np.floor(u / period), 0, months - 1).astype(np.intp)
    return period * cumulative[whole] + (u - whole * period) * factors[whole]


def _geometric(u, p):
    """Geometric(p) on 1, 2, ... by inversion of uniforms ``u`` in [0, 1).

    The purchase after which a customer with drop-out probability ``p`` drops out:
    ``ceil(ln(1 - u) / ln(1 - p))``, at least 1 (and at most 2^62, for ``p`` that
    underflows to 0).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.ceil(np.log1p(-u) / np.log1p(-p))
    return np.clip(np.nan_to_num(k, nan=1.0), 1.0, 2.0**62).astype(np.int64)


def _future_of_pair(name, bg, gg, x, T, rng, discount):
    """Discounted value of a live customer of one (x, T) pair per draw, in spend units.

    Returns ``Y`` (one value per draw) such that a customer of the pair with mean
    spend ``m`` is worth ``(v + x m) Y`` in that draw if alive: given alive at ``T``,
    the purchase process depends on ``(x, T)`` only (module docstring), and so does
    the Gamma-Gamma posterior ``nu ~ Gamma(p x + q, v + x m)`` up to its scale.
    ``bg`` (draws x 4) purchase parameters, ``gg`` (draws x 3) Gamma-Gamma ones,
    ``rng`` the pair's own generator (:func:`_pair_generator`).
    """
    period, months, factors, cumulative = discount
    horizon = period * months
    n_draws = len(bg)
    lam = rng.standard_gamma(bg[:, 0] + x) / (bg[:, 1] + T)
    if name == "paretonbd":
        mu = rng.standard_gamma(bg[:, 2]) / (bg[:, 3] + T)
        window = np.minimum(rng.standard_exponential(n_draws) / mu, horizon)
        count = rng.poisson(lam * window)
        # Arrivals are uniform on (0, window): their mean discount is D(window)/window.
        weight = _discounted_length(window, period, months, factors, cumulative) / window
    else:
        b1 = bg[:, 3] + x + (1.0 if name == "mbgnbd" else 0.0)
        drop = rng.beta(bg[:, 2], b1)
        last = _geometric(rng.random(n_draws), drop)
        arrivals = rng.poisson(lam * horizon)
        count = np.minimum(arrivals, last)
        # No drop-out in the horizon: purchases uniform on (0, horizon]. Drop-out at
        # purchase K <= arrivals: it is the K-th of the arrivals (horizon * Beta(K,
        # arrivals - K + 1)) and the K - 1 before it are uniform on (0, t_K).
        weight = np.full(n_draws, cumulative[months] * period / horizon)
        early = last <= arrivals
        if early.any():
            k_e = last[early].astype(float)
            t_k = horizon * rng.beta(k_e, arrivals[early] - k_e + 1)
            weight[early] = (
                _discount_at(t_k, period, months, factors)
                + (k_e - 1) * _discounted_length(t_k, period, months, factors, cumulative) / t_k
            ) / k_e
    p, q = gg[:, 0], gg[:, 1]
    # Spend per purchase ~ Gamma(p, nu), nu | x, m ~ Gamma(p x + q, v + x m) (Fader &
    # Hardie 2013, eq. 4): ``count`` purchases total Gamma(count p, nu), i.e.
    # (v + x m) Gamma(count p, 1) / Gamma(p x + q, 1).
    return weight * rng.standard_gamma(count * p) / rng.standard_gamma(p * x + q)


# Stream numbers under one seed: parameter draws, alive uniforms, per-pair futures.
_PARAMETER_STREAM, _ALIVE_STREAM, _FUTURE_STREAM = 0, 1, 2


def _pair_masks(seed):
    """Two 64-bit words from the seed that key the pairs' generators (:func:`_pair_generator`)."""
    words = np.random.SeedSequence([seed, _FUTURE_STREAM]).generate_state(2, np.uint64)
    return int(words[0]), int(words[1])


def _pair_generator(masks, x_bits, T_bits):
    """The generator of one (x, T) pair: keyed by the seed and the pair's own values.

    ``x_bits``, ``T_bits``: the float64 bit patterns of ``x`` and ``T`` as integers;
    ``masks``: :func:`_pair_masks` of the seed. Philox is a counter-based generator
    whose key names the stream: the 128-bit key ``(x_bits ^ mask0, T_bits ^ mask1)``
    differs for every pair, so pairs get independent streams, and a pair draws the
    same future whichever other pairs are in the call.
    """
    key = ((x_bits ^ masks[0]) << 64) | (T_bits ^ masks[1])
    return np.random.Generator(np.random.Philox(key=key))


def _float_bits(values):
    """Bit patterns of float64 values as Python ints (-0.0 read as 0.0)."""
    return (np.asarray(values, dtype=np.float64) + 0.0).view(np.uint64).tolist()


# Futures of (x, T) pairs already drawn, by context (model, parameter draws, seed,
# discounting): a pair's row depends on nothing else, so a scoring job that predicts
# chunk by chunk draws each pair once, not once per chunk (1M customers in five
# chunks: 16,000 pair draws became 4,800, and the interval 3.6 s of CPU 1.9 s).
# Bounded: the two newest contexts, each emptied when it holds more than
# _FUTURE_MEMO_VALUES floats or _FUTURE_MEMO_PAIRS pairs; a lock keeps threads that
# predict at once (a model server) from evicting under each other.
_FUTURE_MEMO: dict[bytes, dict[tuple[int, int], np.ndarray]] = {}
_FUTURE_MEMO_VALUES = 16_000_000  # 64 MB of float32
_FUTURE_MEMO_PAIRS = 200_000
_FUTURE_MEMO_LOCK = threading.Lock()


def _future_memo(name, bg, gg, seed, discount) -> dict[tuple[int, int], np.ndarray]:
    """The memo of one context (see :data:`_FUTURE_MEMO`), emptied when it grows too big."""
    import hashlib

    digest = hashlib.blake2b(f"{name}|{seed}|{bg.shape}|{gg.shape}".encode(), digest_size=16)
    for part in (bg, gg, *discount):
        digest.update(np.ascontiguousarray(part, dtype=np.float64).tobytes())
    key = digest.digest()
    with _FUTURE_MEMO_LOCK:
        memo = _FUTURE_MEMO.pop(key, None)
        if memo is None:
            memo = {}
        while len(_FUTURE_MEMO) >= 2:  # keep the newest contexts only
            del _FUTURE_MEMO[next(iter(_FUTURE_MEMO))]
        _FUTURE_MEMO[key] = memo
    return memo


def _future_table(name, bg, gg, x, T, seed, discount):
    """:func:`_future_of_pair` for the distinct (x, T) pairs: (pairs x draws), pair codes.

    Pairs drawn before in the same context come from :data:`_FUTURE_MEMO`; the others
    are drawn by :func:`_draw_futures`. Either way a pair's row is the same, bit for
    bit.
    """
    (x_u, T_u), pair, _ = distinct_rows(x, T)
    keys = list(zip(_float_bits(x_u), _float_bits(T_u), strict=True))
    memo = _future_memo(name, bg, gg, seed, discount)
    known = {k: memo.get(key) for k, key in enumerate(keys)}
    new = [k for k, row in known.items() if row is None]
    future = np.empty((len(keys), len(bg)), dtype=np.float32)
    if new:
        future[new] = _draw_futures(
            name, bg, gg, x_u[new], T_u[new], [keys[k] for k in new], seed, discount
        )
    for k, row in known.items():
        if row is not None:
            future[k] = row
    if len(memo) + len(new) > min(_FUTURE_MEMO_PAIRS, _FUTURE_MEMO_VALUES // len(bg)):
        memo.clear()  # too many to keep: this call's pairs only
    for k in new:
        memo[keys[k]] = future[k].copy()
    return future, pair


def _draw_futures(name, bg, gg, x_u, T_u, bits, seed, discount):
    """Each distinct (x, T) pair's future given alive, (pairs x draws).

    One generator per pair (:func:`_pair_generator`; ``bits``: the pairs' float bit
    patterns), so a pair's row depends on the seed and the pair only. The work is
    staged: each stage loops over the pairs only for the random draws (each
    generator makes the same calls in the same order as :func:`_future_of_pair`, so
    the values are the same, bit for bit), and the arithmetic between the stages
    runs on all pairs at once.
    """
    period, months, factors, cumulative = discount
    horizon = period * months
    n_pairs, n_draws = len(x_u), len(bg)
    masks = _pair_masks(seed)
    generators = [_pair_generator(masks, xb, Tb) for xb, Tb in bits]
    xc, Tc = x_u[:, None], T_u[:, None]
    shape_lam = bg[None, :, 0] + xc
    rate_lam = bg[None, :, 1] + Tc
    count = np.empty((n_pairs, n_draws), dtype=np.int64)
    if name == "paretonbd":
        shape_mu, rate_mu = bg[:, 2], bg[None, :, 3] + Tc
        window = np.empty((n_pairs, n_draws))
        for k, rng in enumerate(generators):
            lam = rng.standard_gamma(shape_lam[k]) / rate_lam[k]
            mu = rng.standard_gamma(shape_mu) / rate_mu[k]
            window[k] = np.minimum(rng.standard_exponential(n_draws) / mu, horizon)
            count[k] = rng.poisson(lam * window[k])
        weight = _discounted_length(window, period, months, factors, cumulative) / window
    else:
        a = bg[:, 2]
        b1 = bg[None, :, 3] + xc + (1.0 if name == "mbgnbd" else 0.0)
        drop, uniform = np.empty((n_pairs, n_draws)), np.empty((n_pairs, n_draws))
        arrivals = np.empty((n_pairs, n_draws), dtype=np.int64)
        for k, rng in enumerate(generators):
            lam = rng.standard_gamma(shape_lam[k]) / rate_lam[k]
            drop[k] = rng.beta(a, b1[k])
            uniform[k] = rng.random(n_draws)
            arrivals[k] = rng.poisson(lam * horizon)
        last = _geometric(uniform, drop)
        np.minimum(arrivals, last, out=count)
        weight = np.full((n_pairs, n_draws), cumulative[months] * period / horizon)
        early = last <= arrivals
        t_k = np.empty((n_pairs, n_draws))
        for k in np.flatnonzero(early.any(axis=1)):
            row = early[k]
            k_e = last[k, row].astype(float)
            t_k[k, row] = horizon * generators[k].beta(k_e, arrivals[k, row] - k_e + 1)
        k_e, t_e = last[early].astype(float), t_k[early]
        weight[early] = (
            _discount_at(t_e, period, months, factors)
            + (k_e - 1) * _discounted_length(t_e, period, months, factors, cumulative) / t_e
        ) / k_e
    spend_shape = count * gg[None, :, 0]
    nu_shape = gg[None, :, 0] * xc + gg[None, :, 1]
    future = np.empty((n_pairs, n_draws), dtype=np.float32)
    for k, rng in enumerate(generators):
        future[k] = weight[k] * rng.standard_gamma(spend_shape[k]) / rng.standard_gamma(nu_shape[k])
    return future


def _pareto_log_g_table(bg, x, t_x, T):
    """Pareto/NBD's ``ln g(x, u)`` per distinct (x, u) pair and draw, u = t_x or T.

    Returns the table (pairs x draws) and, per customer, the pair of its ``(x, t_x)``
    and of its ``(x, T)``: the hypergeometric work of ``p_alive`` once per pair and
    draw, not per customer.
    """
    n = len(x)
    (px, pu), code, _ = distinct_rows(np.concatenate([x, x]), np.concatenate([t_x, T]))
    table = np.stack([_paretonbd._log_g(tuple(row), px, pu) for row in bg], axis=1)
    return table, code[:n], code[n:]


def _alive_threshold(u):
    """``ln((1 - u) / u)`` per draw: ``u < p_alive = 1 / (1 + e^g)`` iff ``g`` is below it."""
    with np.errstate(divide="ignore"):
        return (np.log1p(-u) - np.log(u)).astype(np.float32)


def _alive_draws(name, bg, x, t_x, T, u, log_g=None):
    """Alive (True) or dead per (customer, draw): ``u[d] < p_alive`` under draw ``d``.

    ``u`` holds one uniform per draw, shared by all customers: each customer's alive
    draws are independent Bernoulli(``p_alive``) across draws, and no customer's draw
    depends on which other customers are in the call. ``p_alive = 1 / (1 + e^g)``,
    so the test is ``g < ln((1 - u) / u)``, with the logs in ``g`` taken once per
    distinct time (or pair) and draw and gathered per customer. BG/NBD and MBG/NBD:
    ``g = ln a - ln(b + x - 1) + (r + x) (ln(alpha + T) - ln(alpha + t_x))`` (MBG/NBD:
    ``b + x``; BG/NBD with ``x = 0``: ``p_alive = 1``). Pareto/NBD (FHL 2005 note, eq.
    36-37): ``g = ln s - ln(r + s + x) + (r + x) ln(alpha + T) + s ln(beta + T) +
    ln(g(t_x) - g(T))``, ``ln g`` from ``log_g`` (table, tx pair, T pair of
    :func:`_pareto_log_g_table`) or computed here.
    """
    threshold = _alive_threshold(np.asarray(u, dtype=float))[None, :]
    if name == "paretonbd":
        table, tx_pair, T_pair = log_g if log_g is not None else _pareto_log_g_table(bg, x, t_x, T)
        r, alpha, s, beta = (bg[None, :, k] for k in range(4))
        T_levels, T_code = levels(T)
        x_levels, x_code = levels(x)
        log_alpha_T = np.log(alpha + T_levels[:, None]).astype(np.float32)
        s_log_beta_T = (s * np.log(beta + T_levels[:, None])).astype(np.float32)
        k_term = (np.log(s) - np.log(r + s + x_levels[:, None])).astype(np.float32)
        lg_tx = table[tx_pair].astype(np.float32)
        g = table[T_pair].astype(np.float32)
        g -= lg_tx
        with np.errstate(divide="ignore", over="ignore"):
            np.exp(g, out=g)
            np.log1p(-g, out=g)  # ln(1 - g(T)/g(t_x)); -inf when t_x == T
        g += lg_tx
        g += k_term[x_code]
        g += s_log_beta_T[T_code]
        g += (r.astype(np.float32) + x[:, None].astype(np.float32)) * log_alpha_T[T_code]
        return g < threshold
    r, alpha, a, b = (bg[None, :, k] for k in range(4))
    T_levels, T_code = levels(T)
    t_levels, t_code = levels(t_x)
    log_T = np.log(alpha + T_levels[:, None])
    log_t = np.log(alpha + t_levels[:, None])
    x_levels, x_code = levels(x)
    offset = 1.0 if name == "bgnbd" else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = np.log(a) - np.log(b + x_levels[:, None] - offset)
    if name == "bgnbd":
        log_odds[x_levels == 0] = -np.inf  # no repeat purchase: alive for sure
    log_odds, log_T, log_t = (v.astype(np.float32) for v in (log_odds, log_T, log_t))
    # In place, in single precision: this is the per-(customer, draw) hot loop.
    g = log_T[T_code]
    g -= log_t[t_code]
    g *= r.astype(np.float32) + x[:, None].astype(np.float32)
    g += log_odds[x_code]
    return g < threshold


def _alive_future(name, bg, gg, x, t_x, T, seed, discount, future=None, pair=None, log_g=None):
    """``alive * Y`` per (distinct (x, t_x, T) cell, draw): a cell's value in units of
    ``v + x m``.

    ``seed`` (an int) seeds the alive uniforms and each (x, T) pair's future.
    ``future`` (pairs x draws) and ``pair`` (cell -> pair) may come precomputed
    (:func:`_future_table`); else they are drawn for these cells. ``log_g``: Pareto/NBD's
    precomputed table (:func:`_pareto_log_g_table`) for these cells, or None.
    """
    if future is None:
        future, pair = _future_table(name, bg, gg, x, T, seed, discount)
    u = np.random.default_rng([seed, _ALIVE_STREAM]).random(len(bg))
    values = future[pair]
    values *= _alive_draws(name, bg, x, t_x, T, u, log_g)
    return values


def _value_draws(name, bg, gg, x, t_x, T, m, seed, discount):
    """Discounted value per (customer, draw) of a few customers (all draws in memory)."""
    values = _alive_future(name, bg, gg, x, t_x, T, seed, discount)
    values *= gg[None, :, 2].astype(np.float32) + (x * m)[:, None].astype(np.float32)
    return values


def clv_predictive_interval(
    model,
    rfm: pd.DataFrame,
    *,
    level: float = 0.8,
    n_draws: int = 200,
    parameter_uncertainty: bool = True,
    random_state=None,
    block_cells: int = _BLOCK_CELLS,
) -> pd.DataFrame:
    """Predictive interval of each customer's discounted value over the CLV horizon.

    **Method.** Each of ``n_draws`` draws per customer simulates the customer's
    future from the model's conditional process given the history:

    1. parameters (if ``parameter_uncertainty``): the purchase model's and
       Gamma-Gamma's, drawn from the asymptotic normal of their log-parameters
       (``purchase_log_covariance_``, ``gamma_gamma_log_covariance_``: inverse
       Hessian of the log-likelihood), one set per draw, shared by all customers;
    2. alive or dead at ``T``: Bernoulli(``p_alive``) under the drawn parameters; a
       dead customer is worth 0;
    3. the purchases of a live customer over ``horizon_months`` months: rate
       ``lambda ~ Gamma(r + x, alpha + T)`` and BG/NBD ``p ~ Beta(a, b + x)`` (MBG/NBD
       ``b + x + 1``), the customer buying at the Poisson arrivals up to the
       geometric(p) purchase after which they drop out; Pareto/NBD: ``mu ~ Gamma(s,
       beta + T)``, an exponential remaining lifetime, Poisson purchases until it
       ends (the module docstring gives these posteriors);
    4. spend: the customer's ``nu ~ Gamma(p x + q, v + x m)`` (Fader & Hardie 2013,
       "The Gamma-Gamma model of monetary value", eq. 4 posterior) and each
       purchase ``Gamma(p, nu)``; the total of ``n`` purchases is ``Gamma(n p, nu)``;
    5. discounting as :meth:`CLVModel.clv`: a purchase in month ``k`` is divided by
       ``(1 + monthly_discount_rate)^k``. Purchase times enter through their mean
       discount given the simulated count and lifetime (arrival times are uniform
       given their number), which is exact in expectation and leaves out only the
       spread of the discount factor within the horizon (at most ``1 - (1+d)^-H``).

    ``clv_low`` and ``clv_high`` are the ``(1 - level)/2`` and ``(1 + level)/2``
    quantiles of the draws; ``clv_draws_mean`` their mean, which estimates the
    point CLV (exactly its expectation without parameter uncertainty; with it,
    the mean of CLV over the parameter draws, which differs from the CLV at the
    estimate by the curvature of CLV in the parameters).

    **Assumptions.** The model's own: Poisson purchasing while alive, the model's
    drop-out process, gamma/beta heterogeneity, spend independent of the purchase
    process and i.i.d. across a customer's purchases, and for parameter
    uncertainty a log-normal approximation that ignores the (small) correlation
    between the purchase and spend estimates. The interval covers one customer's
    future value: with many customers, a few land outside by design.

    **Computation.** Given alive, steps 3-4 depend on the customer only through
    ``(x, T)`` and, for spend, the scale ``v + x m`` of the ``nu`` posterior: a
    draw's value is ``alive * (v + x m) * Y`` with ``Y = weight * Gamma(n p, 1) /
    Gamma(p x + q, 1)``. ``Y`` is simulated once per draw and distinct ``(x, T)``
    pair (a few thousand pairs for a million customers with daily data), and per
    customer only the alive test and a product remain.

    **What is shared, and why a customer's interval does not depend on the others.**
    Everything is seeded from one integer drawn from ``random_state``; no draw
    depends on which other customers are in the call, their order, or the block or
    chunk (or Spark partition) a customer is scored in, so scoring a customer alone,
    in any subset or in chunks gives the same values, bit for bit:

    - the parameter draws (step 1) come from their own stream and are shared by all
      customers (as they must be: one model, uncertain parameters);
    - the future given alive ``Y`` of each ``(x, T)`` pair comes from a generator
      seeded by the seed and the pair's own values: customers with the same
      ``(x, T)`` share it within a draw; different pairs are independent;
    - the alive test uses one uniform ``u_d`` per draw shared by all customers
      (alive iff ``u_d < p_alive``), independent of ``Y``.

    Each customer's draws therefore have exactly the distribution above, i.i.d.
    across draws. Across customers they are dependent (a common ``u_d`` and shared
    ``Y``): irrelevant to each one's interval, but do not sum draws across
    customers to get an interval of a total.

    Customers go in blocks of ``block_cells // n_draws`` (ordered by their
    ``(x, t_x, T)``, whose ``alive * Y`` is formed once per block for all its
    customers), so memory stays bounded (a few arrays of ``block_cells`` floats,
    plus ``Y``: at most ``4 * block_cells`` values, else ``Y`` is drawn block by
    block) whatever the number of customers. Each pair's ``Y`` is simulated by a
    few vectorised calls of its own generator (a Philox stream keyed by the seed and
    the pair), so the per-pair cost is small next to the per-customer work.

    Parameters
    ----------
    model : segml.models.CLVModel
        Fitted with a spend model.
    rfm : pandas.DataFrame
        ``frequency``, ``recency``, ``T``, ``monetary_value`` in ``time_unit``.
    level : float, default 0.8
    n_draws : int, default 200
    parameter_uncertainty : bool, default True
    random_state : int, numpy.random.Generator, RandomState or None
    block_cells : int, default 5,000,000

    Returns
    -------
    pandas.DataFrame
        ``clv_low``, ``clv_high``, ``clv_draws_mean``, indexed like ``rfm``.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> rfm = pd.DataFrame({"frequency": [4.0], "recency": [30.0], "T": [38.0],
    ...                     "monetary_value": [50.0]})
    >>> band = clv_predictive_interval(model, rfm, n_draws=4000, random_state=0)
    >>> band.round(0).to_dict(orient="records")
    [{'clv_low': 0.0, 'clv_high': 345.0, 'clv_draws_mean': 134.0}]
    >>> round(float(model.clv(rfm).iloc[0]), 0)
    135.0
    """
    _check_level(level)
    if not (isinstance(n_draws, numbers.Integral) and n_draws >= 2):
        raise CLVInputError(f"n_draws must be a whole number >= 2, got {n_draws!r}.")
    if not (isinstance(block_cells, numbers.Integral) and block_cells >= 1):
        raise CLVInputError(f"block_cells must be a positive whole number, got {block_cells!r}.")
    name, params = _fitted(model)
    gg = _gamma_gamma(model)
    frequency, recency, T, monetary = _rfm_arrays(rfm, need_monetary=True)
    seed = _seed(random_state)
    if parameter_uncertainty:
        rng = np.random.default_rng([seed, _PARAMETER_STREAM])
        bg_draws = _parameter_draws(params, model.purchase_log_covariance_, n_draws, rng, name)
        gg_draws = _parameter_draws(
            gg, model.gamma_gamma_log_covariance_, n_draws, rng, "Gamma-Gamma"
        )
    else:
        bg_draws = np.tile(params, (n_draws, 1))
        gg_draws = np.tile(gg, (n_draws, 1))
    discount = _discount_table(model)
    # Customers with the same (x, t_x, T) and, for repeat buyers, the same mean spend
    # have the same distribution: one set of draws per distinct row (one-time buyers,
    # often half the base, collapse to one row per T).
    spend = np.where(frequency > 0, monetary, 0.0)
    (x, t_x, age, m), row, _ = distinct_rows(frequency, recency, T, spend)
    n = len(x)
    low, high, mean = np.empty(n), np.empty(n), np.empty(n)
    block = max(1, block_cells // n_draws)
    # Smallest k-th order statistics with at least (1 -+ level)/2 of the draws at or
    # below them.
    kth = [
        max(0, math.ceil((1 - level) / 2 * n_draws) - 1),
        min(n_draws - 1, math.ceil((1 + level) / 2 * n_draws) - 1),
    ]
    # The future given alive depends on (x, T) only: drawn once per distinct pair for
    # all customers when the pairs are few (the usual case), else block by block
    # (the same values: each pair's draws come from its own generator).
    # Alive and the future given alive depend on the cell (x, t_x, T) only, the spend
    # scale v + x m on the customer: alive * Y is formed per cell, and rows go in
    # blocks ordered by cell so that a block needs a contiguous range of cells.
    (cx, ctx, cT), cell, _ = distinct_rows(x, t_x, age)
    order = np.argsort(cell, kind="stable")
    scale = (x * m).astype(np.float32)
    v_draws = gg_draws[None, :, 2].astype(np.float32)
    n_pairs = len(distinct_rows(cx, cT)[2])
    if n_pairs * n_draws <= 4 * block_cells:
        future, pair = _future_table(name, bg_draws, gg_draws, cx, cT, seed, discount)
    else:
        future = pair = None
    log_g = None
    if name == "paretonbd":
        # Pareto/NBD's p_alive needs a 2F1 per (x, t_x) and (x, T) pair and draw: once
        # for all cells when the pairs are few, else per block.
        n_g_pairs = len(distinct_rows(np.concatenate([cx, cx]), np.concatenate([ctx, cT]))[2])
        if n_g_pairs * n_draws <= 4 * block_cells:
            log_g = _pareto_log_g_table(bg_draws, cx, ctx, cT)
    for start in range(0, n, block):
        rows = order[start : start + block]
        cells = cell[rows]
        first, stop = int(cells[0]), int(cells[-1]) + 1
        span = slice(first, stop)
        per_cell = _alive_future(
            name,
            bg_draws,
            gg_draws,
            cx[span],
            ctx[span],
            cT[span],
            seed,
            discount,
            future,
            None if pair is None else pair[span],
            None if log_g is None else (log_g[0], log_g[1][span], log_g[2][span]),
        )
        values = per_cell[cells - first]
        values *= v_draws + scale[rows, None]
        # Order statistics (the "inverted_cdf" quantiles). A full sort of each row is
        # several times faster than a two-sided partition: numpy sorts float32 rows
        # with SIMD instructions.
        values.sort(axis=1)
        low[rows], high[rows] = values[:, kth[0]], values[:, kth[1]]
        mean[rows] = values.mean(axis=1, dtype=np.float64)
    return pd.DataFrame(
        {"clv_low": low[row], "clv_high": high[row], "clv_draws_mean": mean[row]},
        index=rfm.index,
    )


def _seed(random_state) -> int:
    """One integer seed from ``random_state`` (an int, Generator, RandomState or None)."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    return int(random_state_instance(random_state).randint(0, 2**31 - 1))


def _generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    seed = random_state_instance(random_state).randint(0, 2**31 - 1)
    return np.random.default_rng(seed)


def predictive_summary(
    model,
    rfm: pd.DataFrame,
    *,
    as_of=None,
    windows_days=(30, 90),
    level: float = 0.8,
    n_draws: int = 200,
    random_state=None,
) -> pd.DataFrame:
    """All predictive columns in one table: the ones a scorer adds beside ``clv``.

    :func:`purchase_probability` (``p_buy_<N>d``), :func:`next_purchase`
    (``p_buy_again``, ``next_purchase_*``) and, if the model has a spend model,
    :func:`clv_predictive_interval` (``clv_low``, ``clv_high``).

    A customer's row does not depend on the other customers in the call: scored
    alone, in chunks, in any order or on a Spark partition, it is the same, bit for
    bit, given the same int ``random_state`` (a Generator or None draws a new seed
    per call, so chunks scored with one shared Generator would differ).

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> rfm = pd.DataFrame({"frequency": [4.0], "recency": [30.0], "T": [38.0],
    ...                     "monetary_value": [50.0]})
    >>> predictive_summary(model, rfm, as_of="1997-09-30", random_state=0).columns.tolist()
    ... # doctest: +NORMALIZE_WHITESPACE
    ['p_buy_30d', 'p_buy_90d', 'p_buy_again', 'next_purchase_days', 'next_purchase_low_days',
     'next_purchase_high_days', 'next_purchase_date', 'next_purchase_low',
     'next_purchase_high', 'clv_low', 'clv_high']
    """
    parts = [
        purchase_probability(model, rfm, windows_days),
        next_purchase(model, rfm, as_of=as_of, interval_level=level),
    ]
    if getattr(model, "gamma_gamma_params_", None) is not None:
        band = clv_predictive_interval(
            model, rfm, level=level, n_draws=n_draws, random_state=random_state
        )
        parts.append(band[["clv_low", "clv_high"]])
    return pd.concat(parts, axis=1)


# ---------------------------------------------------------------- calibration


def _count_interval(pmf, level):
    """Equal-tailed interval [lo, hi] of each row's count pmf and its actual mass.

    ``lo`` is the largest ``n`` with ``P(X < n) <= (1 - level)/2`` and ``hi`` the
    smallest with ``P(X > hi) <= (1 - level)/2``: a central set holding at least
    ``level`` (counts are discrete, so usually more).
    """
    tail = (1 - level) / 2
    cdf = np.cumsum(pmf, axis=1)
    eps = 1e-12  # rounding in the cumulative sums must not move an edge
    lo = np.argmax(cdf > tail + eps, axis=1)
    hi = np.argmax(cdf >= 1 - tail - eps, axis=1)
    rows = np.arange(len(pmf))
    below = np.where(lo > 0, cdf[rows, np.maximum(lo - 1, 0)], 0.0)
    return lo, hi, cdf[rows, hi] - below


def _inverse_cdf_draws(cdf, u):
    """Counts drawn by inverting each row's cdf at the uniforms ``u`` (draws x rows).

    One ``searchsorted`` over all rows: row ``j``'s cdf (values in [0, 1]) is shifted
    by ``2 j`` so that the rows, laid end to end, stay sorted.
    """
    n_rows, width = cdf.shape
    shift = 2.0 * np.arange(n_rows)
    flat = (cdf + shift[:, None]).ravel()
    position = np.searchsorted(flat, (u + shift[None, :]).ravel(), side="right")
    counts = position.reshape(u.shape) - width * np.arange(n_rows)[None, :]
    return np.minimum(counts, width - 1).astype(float)


def predictive_calibration(
    model,
    cal_holdout: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    calibration_end,
    observation_end,
    level: float = 0.8,
    window_days: float = 90,
    n_bins: int = 10,
    n_spend_draws: int = 1000,
    max_purchases: int = 150,
    random_state=0,
) -> dict:
    """Measure the predictive distributions on a holdout period.

    ``model`` must be fitted on the calibration columns of ``cal_holdout`` (renamed
    ``frequency``, ``recency``, ``T``, ``monetary_value``); ``transactions`` is the
    log it came from (``customer_id``, ``timestamp``, ``amount``), used for what
    ``cal_holdout`` does not keep: each customer's total holdout spend and whether
    they bought within ``window_days`` of ``calibration_end``. Customers first seen
    in the holdout are not in ``cal_holdout`` and are left out. Parameters are the
    point estimates (parameter uncertainty is small next to process uncertainty at
    this size).

    - **Count**: the ``level`` equal-tailed interval of each customer's holdout
      repeat purchases (:func:`conditional_purchase_pmf` over ``duration_holdout``;
      counts are discrete, so it holds at least ``level``), its empirical coverage
      (share of customers whose ``frequency_holdout`` falls inside) beside the mean
      mass the model gives the intervals. A calibrated model has the two equal.
    - **Spend**: the same for total holdout spend, whose predictive distribution
      (count from the pmf, spend per purchase from the Gamma-Gamma posterior; an atom
      at 0) is simulated with ``n_spend_draws`` draws per customer; the interval is
      its ``(1 -+ level)/2`` quantiles and its mass the share of draws inside.
    - **P(buy within window_days)**: Brier score beside that of the constant
      baseline (the observed rate, the best constant), and a reliability table:
      customers binned by predicted probability (``n_bins`` equal-width bins), mean
      predicted vs observed per bin.

    Returns
    -------
    dict
        Floats ``count_coverage``, ``count_interval_mass``, ``spend_coverage``,
        ``spend_interval_mass`` (absent for a model with no spend model, whose
        ``transactions`` need no ``amount``), ``p_buy_brier``, ``p_buy_brier_baseline``,
        ``p_buy_observed_rate``, ``n_customers``, ``level``, ``window_days``; and
        ``reliability`` (pandas.DataFrame: ``bin``, ``n``, ``mean_predicted``,
        ``observed_rate``).

    Examples
    --------
    >>> from segml.datasets import load_cdnow
    >>> from segml.features import calibration_holdout
    >>> from segml.models import CLVModel
    >>> log = load_cdnow(sample=True)
    >>> split = calibration_holdout(log, calibration_end="1997-09-30",
    ...     observation_end="1998-06-30", time_unit="D", unit_multiplier=7)
    >>> rfm = split[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]]
    >>> rfm.columns = ["frequency", "recency", "T", "monetary_value"]
    >>> model = CLVModel(time_unit="W").fit(rfm)
    >>> report = predictive_calibration(model, split, log, calibration_end="1997-09-30",
    ...     observation_end="1998-06-30")
    >>> round(report["count_coverage"], 3), round(report["count_interval_mass"], 3)
    (0.928, 0.944)
    """
    _check_level(level)
    name, params = _fitted(model)
    columns = [
        "frequency_cal",
        "recency_cal",
        "T_cal",
        "monetary_value_cal",
        "frequency_holdout",
        "duration_holdout",
    ]
    # A purchases-only model (no spend model) is measured on counts and P(buy) only.
    with_spend = getattr(model, "gamma_gamma_params_", None) is not None
    if not with_spend:
        columns = [c for c in columns if c != "monetary_value_cal"]
    missing = [c for c in columns if c not in cal_holdout.columns]
    if missing:
        raise CLVInputError(
            f"cal_holdout lacks the column(s) {missing}; build it with "
            "segml.features.calibration_holdout in the model's time_unit."
        )
    needed = [
        c
        for c in ("customer_id", "timestamp", "amount")[: 3 if with_spend else 2]
        if c not in transactions.columns
    ]
    if needed:
        raise CLVInputError(
            f"transactions lack the column(s) {needed}; pass the log cal_holdout was built "
            "from, in segml's columns (segml.load_transactions)."
        )
    names = ["frequency", "recency", "T", "monetary_value"][: len(columns) - 2]
    rfm = cal_holdout[columns[:-2]].set_axis(names, axis=1)
    duration = cal_holdout["duration_holdout"].to_numpy(dtype=float)
    if not np.all(duration == duration[0]):
        raise CLVInputError("duration_holdout differs between customers; expected one holdout.")
    start = pd.Timestamp(calibration_end).normalize()
    end = pd.Timestamp(observation_end).normalize()
    stamps = pd.to_datetime(transactions["timestamp"]).dt.normalize()
    ids = transactions["customer_id"].astype(str)
    in_holdout = (stamps > start) & (stamps <= end)
    in_window = in_holdout & (stamps <= start + pd.Timedelta(days=float(window_days)))
    bought = pd.Index(cal_holdout.index.astype(str)).isin(ids[in_window].unique()).astype(float)

    # Counts.
    pmf = conditional_purchase_pmf(model, rfm, duration[0], max_purchases)
    pmf[:, -1] += np.clip(1 - pmf.sum(axis=1), 0, None)  # the tail beyond max_purchases
    lo, hi, mass = _count_interval(pmf, level)
    actual = cal_holdout["frequency_holdout"].to_numpy(dtype=float)
    count_inside = (actual >= lo) & (actual <= hi)

    result = {
        "count_coverage": float(count_inside.mean()),
        "count_interval_mass": float(mass.mean()),
    }
    if with_spend:
        result.update(
            _spend_calibration(
                model,
                rfm,
                transactions,
                cal_holdout,
                pmf,
                ids,
                in_holdout,
                level,
                n_spend_draws,
                random_state,
            )
        )

    # P(buy within the window).
    predicted = purchase_probability(model, rfm, [window_days]).iloc[:, 0].to_numpy()
    rate = bought.mean()
    bins = np.minimum((predicted * n_bins).astype(int), n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "predicted": predicted, "observed": bought})
    reliability = (
        frame.groupby("bin")
        .agg(
            n=("predicted", "size"),
            mean_predicted=("predicted", "mean"),
            observed_rate=("observed", "mean"),
        )
        .reset_index()
    )
    reliability["bin"] = [f"[{b / n_bins:.1f}, {(b + 1) / n_bins:.1f})" for b in reliability["bin"]]
    return {
        **result,
        "p_buy_brier": float(np.mean((predicted - bought) ** 2)),
        "p_buy_brier_baseline": float(np.mean((rate - bought) ** 2)),
        "p_buy_observed_rate": float(rate),
        "n_customers": int(len(rfm)),
        "level": float(level),
        "window_days": float(window_days),
        "reliability": reliability,
    }


def _spend_calibration(
    model,
    rfm,
    transactions,
    cal_holdout,
    pmf,
    ids,
    in_holdout,
    level,
    n_spend_draws,
    random_state,
):
    """Coverage of the ``level`` intervals of holdout spend, and their simulated mass."""
    spend = transactions["amount"][in_holdout].groupby(ids[in_holdout]).sum()
    holdout_spend = spend.reindex(cal_holdout.index.astype(str), fill_value=0.0).to_numpy()
    # Spend: count drawn from its pmf, spend from the posterior of nu.
    rng = _generator(random_state)
    p, q, v = _gamma_gamma(model)
    x = rfm["frequency"].to_numpy(dtype=float)
    m = np.where(x > 0, rfm["monetary_value"].to_numpy(dtype=float), 0.0)
    cdf = np.cumsum(pmf, axis=1)
    tail = (1 - level) / 2
    spend_lo, spend_hi, spend_mass = (np.empty(len(x)) for _ in range(3))
    block = max(1, _BLOCK_CELLS // n_spend_draws)
    for s0 in range(0, len(x), block):
        part = slice(s0, s0 + block)
        u = rng.random((n_spend_draws, len(x[part])))
        counts = _inverse_cdf_draws(cdf[part], u)
        nu = rng.standard_gamma(np.broadcast_to(p * x[part] + q, u.shape)) / (v + x[part] * m[part])
        draws = rng.standard_gamma(counts * p) / nu
        edges = np.quantile(draws, [tail, 1 - tail], axis=0, method="inverted_cdf")
        spend_lo[part], spend_hi[part] = edges
        spend_mass[part] = ((draws >= edges[0]) & (draws <= edges[1])).mean(axis=0)
    spend_inside = (holdout_spend >= spend_lo) & (holdout_spend <= spend_hi)
    return {
        "spend_coverage": float(spend_inside.mean()),
        "spend_interval_mass": float(spend_mass.mean()),
    }
