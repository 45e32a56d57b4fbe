"""Diagnostic figures for a fitted :class:`segml.models.CLVModel`.

Each function returns a :class:`matplotlib.figure.Figure` built with the object API
(no pyplot state); it never shows or saves it. Save with ``fig.savefig(path)`` or log
it with the tracking module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from segml.models._clv_metrics import cumulative_repeat_transactions, holdout_predicted_purchases

__all__ = [
    "plot_calibration_purchases",
    "plot_clv_distribution",
    "plot_cumulative_transactions",
    "plot_frequency_recency_matrix",
    "plot_p_alive_matrix",
    "plot_period_transactions",
]


def _unit_name(model) -> str:
    return {"D": "days", "W": "weeks", "M": "months", "H": "hours"}[model.time_unit]


def plot_calibration_purchases(
    model, cal_holdout: pd.DataFrame, *, max_frequency: int = 7
) -> Figure:
    """Mean holdout purchases, actual vs predicted, by calibration-period frequency.

    The standard BG/NBD check (Fader, Hardie & Lee 2005, Fig. 4): customers are grouped
    by their repeat purchases in the calibration period (the last group is
    ``max_frequency`` or more); for each group the mean number of purchases the model
    predicted for the holdout period is drawn beside the mean actually made.

    Parameters
    ----------
    model : segml.models.CLVModel
        Fitted on the calibration columns of ``cal_holdout``.
    cal_holdout : pandas.DataFrame
        From :func:`segml.features.calibration_holdout`.
    max_frequency : int, default 7
        Calibration frequencies at or above this are pooled.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> cal = pd.DataFrame({"frequency_cal": [0.0, 1.0, 4.0], "recency_cal": [0.0, 9.0, 30.0],
    ...     "T_cal": [38.0] * 3, "monetary_value_cal": [0.0, 20.0, 50.0],
    ...     "frequency_holdout": [0.0, 1.0, 2.0], "monetary_value_holdout": [0.0, 20.0, 40.0],
    ...     "duration_holdout": [39.0] * 3})
    >>> fig = plot_calibration_purchases(model, cal)
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['actual', 'model']
    """
    rfm, predicted = holdout_predicted_purchases(model, cal_holdout)
    group = np.minimum(rfm["frequency"].to_numpy(), max_frequency).astype(int)
    table = (
        pd.DataFrame(
            {
                "group": group,
                "actual": cal_holdout["frequency_holdout"].to_numpy(dtype=float),
                "model": predicted,
            }
        )
        .groupby("group")
        .agg(actual=("actual", "mean"), model=("model", "mean"), customers=("actual", "size"))
    )
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(table.index, table["actual"], "o-", color="black", label="actual")
    ax.plot(table.index, table["model"], "s--", color="tab:blue", label="model")
    labels = [str(g) if g < max_frequency else f"{max_frequency}+" for g in table.index]
    ax.set_xticks(
        table.index, [f"{lab}\n(n={n})" for lab, n in zip(labels, table["customers"], strict=True)]
    )
    ax.set_xlabel("repeat purchases in the calibration period (customers)")
    ax.set_ylabel(
        f"mean purchases in the holdout ({cal_holdout['duration_holdout'].max():g} "
        f"{_unit_name(model)})"
    )
    ax.set_title("Calibration vs holdout: purchases per customer")
    ax.legend()
    return fig


def _grid_frame(frequency, recency, T):
    f, r = np.meshgrid(frequency, recency)
    return pd.DataFrame({"frequency": f.ravel(), "recency": r.ravel(), "T": T}), f.shape


def _matrix(model, rfm, value, max_frequency, n_recency):
    T = float(rfm["T"].max())
    if max_frequency is None:
        # The 99th percentile keeps the scale readable when a few customers buy a lot.
        max_frequency = int(max(1, np.quantile(rfm["frequency"], 0.99)))
    frequency = np.arange(max_frequency + 1, dtype=float)
    recency = np.linspace(0, T, n_recency)
    grid, shape = _grid_frame(frequency, recency, T)
    # frequency 0 with recency > 0 cannot happen (recency is 0 without repeats).
    possible = (grid["frequency"] > 0) | (grid["recency"] == 0)
    values = np.full(len(grid), np.nan)
    values[possible.to_numpy()] = value(grid[possible]).to_numpy()
    return values.reshape(shape), frequency, recency, T


def plot_frequency_recency_matrix(
    model,
    rfm: pd.DataFrame,
    *,
    horizon: float | None = None,
    max_frequency: int | None = None,
    n_recency: int = 60,
) -> Figure:
    """Expected purchases over ``horizon`` for every (frequency, recency), at age T = max T.

    Shows how BG/NBD reads history: many purchases predict many more only if the last
    one was recent (high recency); a frequent buyer who stopped long ago is likely gone.

    Parameters
    ----------
    model : segml.models.CLVModel
        Fitted model.
    rfm : pandas.DataFrame
        The customers (for the range of frequency and T).
    horizon : float, optional
        Future window in ``time_unit`` periods; default ``horizon_months`` months.
    max_frequency : int, optional
        Largest frequency shown; default the 99th percentile.
    n_recency : int, default 60
        Recency grid points between 0 and T.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> rfm = pd.DataFrame({"frequency": [0.0, 3.0, 8.0], "recency": [0.0, 20.0, 30.0],
    ...                     "T": [38.0] * 3})
    >>> fig = plot_frequency_recency_matrix(model, rfm, horizon=52)
    >>> fig.axes[0].get_xlabel()
    'frequency (repeat purchases)'
    """
    if horizon is None:
        horizon = model.horizon_months * model.periods_per_month
    matrix, frequency, recency, T = _matrix(
        model, rfm, lambda g: model.expected_purchases(g, horizon=horizon), max_frequency, n_recency
    )
    unit = _unit_name(model)
    return _draw_matrix(
        matrix,
        frequency,
        recency,
        f"expected purchases in the next {horizon:.4g} {unit}",
        f"Expected purchases in the next {horizon:.4g} {unit}\n"
        f"by frequency and recency (customer age T = {T:.1f} {unit})",
        unit,
        cmap="viridis",
    )


def plot_p_alive_matrix(
    model, rfm: pd.DataFrame, *, max_frequency: int | None = None, n_recency: int = 60
) -> Figure:
    """P(alive) for every (frequency, recency), at customer age T = max T.

    Under BG/NBD the frequency-0 column is 1 by construction (no evidence of drop-out
    without a repeat purchase); the figure says so rather than paint it as safe.
    MBG/NBD and Pareto/NBD let one-time buyers drop out, so there is no such note.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> rfm = pd.DataFrame({"frequency": [0.0, 3.0, 8.0], "recency": [0.0, 20.0, 30.0],
    ...                     "T": [38.0] * 3})
    >>> fig = plot_p_alive_matrix(model, rfm)
    >>> fig.axes[0].get_title()
    'P(alive) by frequency and recency (customer age T = 38.0 weeks)'
    """
    matrix, frequency, recency, T = _matrix(model, rfm, model.p_alive, max_frequency, n_recency)
    unit = _unit_name(model)
    fig = _draw_matrix(
        matrix,
        frequency,
        recency,
        "P(alive)",
        f"P(alive) by frequency and recency (customer age T = {T:.1f} {unit})",
        unit,
        cmap="RdYlGn",
        vmin=0.0,
        vmax=1.0,
    )
    if getattr(model, "purchase_model_", "bgnbd") != "bgnbd":
        return fig
    fig.axes[0].annotate(
        "frequency 0: P(alive) = 1 by\nconstruction, not evidence",
        xy=(0, 0),
        xytext=(0.25, 0.08),
        textcoords="axes fraction",
        arrowprops={"arrowstyle": "->"},
        fontsize=8,
        bbox={"boxstyle": "round", "fc": "white", "alpha": 0.85},
    )
    return fig


def _draw_matrix(matrix, frequency, recency, value_label, title, unit, **style) -> Figure:
    fig = Figure(figsize=(7, 5.5), layout="constrained")
    ax = fig.subplots()
    step_r = recency[1] - recency[0] if len(recency) > 1 else 1.0
    image = ax.imshow(
        matrix,
        origin="lower",
        aspect="auto",
        extent=(frequency[0] - 0.5, frequency[-1] + 0.5, -step_r / 2, recency[-1] + step_r / 2),
        interpolation="nearest",
        **style,
    )
    fig.colorbar(image, ax=ax, label=value_label)
    ax.set_xlabel("frequency (repeat purchases)")
    ax.set_ylabel(f"recency (age at last purchase, {unit})")
    ax.set_title(title)
    return fig


def plot_period_transactions(model, rfm: pd.DataFrame, *, max_purchases: int = 7) -> Figure:
    """Customers by number of repeat purchases: actual vs the model's expectation.

    The model's count for ``n`` purchases is the sum over customers of
    ``P(X(T_i) = n)`` (FHL 2005 eq. 8) for each customer's own age ``T_i``, exact
    rather than simulated; the last bar pools ``max_purchases`` or more.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> rfm = pd.DataFrame({"frequency": [0.0, 0.0, 1.0, 3.0], "recency": [0.0, 0.0, 9.0, 30.0],
    ...                     "T": [38.0, 30.0, 38.0, 38.0]})
    >>> fig = plot_period_transactions(model, rfm)
    >>> [c.get_label() for c in fig.axes[0].containers]
    ['actual', 'model']
    """
    ages, counts = np.unique(rfm["T"].to_numpy(dtype=float), return_counts=True)
    expected = np.zeros(max_purchases + 1)
    for age, count in zip(ages, counts, strict=True):
        pmf = model.repeat_purchase_pmf(age, max_purchases - 1)
        expected[:max_purchases] += count * pmf
        expected[max_purchases] += count * max(0.0, 1.0 - pmf.sum())
    observed = np.bincount(
        np.minimum(rfm["frequency"].to_numpy(), max_purchases).astype(int),
        minlength=max_purchases + 1,
    )
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(max_purchases + 1)
    ax.bar(positions - 0.2, observed, width=0.4, color="black", label="actual")
    ax.bar(positions + 0.2, expected, width=0.4, color="tab:blue", label="model")
    ax.set_xticks(positions, [*map(str, range(max_purchases)), f"{max_purchases}+"])
    ax.set_xlabel("repeat purchases in the observation period")
    ax.set_ylabel("customers")
    ax.set_title(f"Repeat purchases per customer: actual vs model ({len(rfm):,} customers)")
    ax.legend()
    return fig


def plot_clv_distribution(
    predictions: pd.DataFrame, *, bins: int = 50, clip_quantile: float = 0.99
) -> Figure:
    """Histogram of predicted CLV, customers with and without a repeat purchase apart.

    CLV is heavy-tailed: the x-axis stops at the ``clip_quantile`` quantile and the
    title says how many customers lie beyond. One-time buyers are drawn separately
    because their CLV rests on population averages (mean spend by construction, and
    under BG/NBD P(alive) = 1), not on their own repeat history.

    Parameters
    ----------
    predictions : pandas.DataFrame
        From :meth:`segml.models.CLVModel.predict` (``clv``, ``has_repeat_purchase``).
    bins : int, default 50
    clip_quantile : float, default 0.99

    Examples
    --------
    >>> import pandas as pd
    >>> predictions = pd.DataFrame({"clv": [1.0, 2.0, 5.0, 40.0, 300.0],
    ...                             "has_repeat_purchase": [False, False, True, True, True]})
    >>> fig = plot_clv_distribution(predictions, bins=5)
    >>> fig.axes[0].get_xlabel()
    'CLV (discounted expected spend over the horizon)'
    """
    clv = predictions["clv"].to_numpy(dtype=float)
    repeat = (
        predictions["has_repeat_purchase"].to_numpy(dtype=bool)
        if "has_repeat_purchase" in predictions
        else np.ones(len(clv), dtype=bool)
    )
    upper = float(np.quantile(clv, clip_quantile))
    edges = np.linspace(min(0.0, clv.min()), upper if upper > 0 else 1.0, bins + 1)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.hist(
        [clv[repeat], clv[~repeat]],
        bins=edges,
        stacked=True,
        color=["tab:blue", "tab:gray"],
        label=[
            f"repeat buyers ({int(repeat.sum()):,})",
            f"no repeat purchase yet ({int((~repeat).sum()):,})",
        ],
    )
    ax.axvline(np.median(clv), color="black", linestyle="--", label=f"median {np.median(clv):,.2f}")
    ax.axvline(clv.mean(), color="tab:red", linestyle=":", label=f"mean {clv.mean():,.2f}")
    beyond = int((clv > upper).sum())
    ax.set_xlabel("CLV (discounted expected spend over the horizon)")
    ax.set_ylabel("customers")
    ax.set_title(
        f"CLV distribution ({len(clv):,} customers; {beyond:,} above {upper:,.2f} not shown)"
    )
    ax.legend()
    return fig


_MODEL_NAMES = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "paretonbd": "Pareto/NBD"}


def plot_cumulative_transactions(
    model,
    transactions: pd.DataFrame,
    *,
    calibration_end,
    observation_end,
    period_days: int = 7,
) -> Figure:
    """Tracking plot: cumulative repeat transactions by week, actual vs the model.

    Fader, Hardie & Lee (2005), Figure 2, for any purchase model: the cohort of
    customers first seen by ``calibration_end``, their repeat transactions (days with
    a purchase after the first) summed week by week, beside the model's expectation
    (:func:`segml.models._clv_metrics.cumulative_repeat_transactions`). A dashed line
    marks the end of the calibration period: to its right the model forecasts.

    Parameters
    ----------
    model : segml.models.CLVModel
        Fitted on the calibration period.
    transactions : pandas.DataFrame
        Clean transactions (``customer_id``, ``timestamp``).
    calibration_end, observation_end : date-like
        Last days of the calibration and tracked periods (inclusive).
    period_days : int, default 7

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> log = pd.DataFrame({"customer_id": ["a", "a", "b", "a"],
    ...     "timestamp": pd.to_datetime(["2020-01-01", "2020-01-09", "2020-01-03", "2020-01-20"])})
    >>> fig = plot_cumulative_transactions(model, log, calibration_end="2020-01-10",
    ...                                    observation_end="2020-01-21")
    >>> [line.get_label() for line in fig.axes[0].get_lines()[:2]]
    ['actual', 'BG/NBD']
    """
    table = cumulative_repeat_transactions(
        model,
        transactions,
        calibration_end=calibration_end,
        observation_end=observation_end,
        period_days=period_days,
    )
    name = _MODEL_NAMES.get(getattr(model, "purchase_model_", ""), "model")
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(table.index, table["actual_cumulative"], color="black", label="actual")
    ax.plot(table.index, table["expected_cumulative"], color="tab:blue", linestyle="--", label=name)
    holdout = table["holdout"].to_numpy()
    if holdout.any() and not holdout.all():
        boundary = table.index[~holdout][-1]
        ax.axvline(boundary, color="gray", linestyle=":", label="end of calibration")
    last = table.iloc[-1]
    unit = "week" if period_days == 7 else f"{period_days}-day period"
    ax.set_xlabel(unit)
    ax.set_ylabel("cumulative repeat transactions")
    ax.set_title(
        f"Cumulative repeat transactions: actual {last['actual_cumulative']:,.0f}, "
        f"{name} {last['expected_cumulative']:,.0f}"
    )
    ax.legend()
    return fig
