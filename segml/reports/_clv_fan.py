"""Figures of per-customer predictive distributions: the CLV fan chart and reliability.

Each function returns a :class:`matplotlib.figure.Figure` built with the object API
(no pyplot state); it never shows or saves it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

__all__ = ["plot_clv_fan", "plot_purchase_reliability"]


def plot_clv_fan(
    clv: pd.Series,
    interval: pd.DataFrame,
    *,
    n_customers: int = 200,
    random_state=0,
    log_scale: bool = False,
) -> Figure:
    """Customer-level "fan" chart: each customer's CLV interval, sorted by point CLV.

    A random sample of ``n_customers`` customers is drawn (seeded), sorted by point
    CLV from left to right; each gets a vertical bar from ``clv_low`` to
    ``clv_high`` and a dot at its point CLV. How to read it: the dots rise along the
    ranking; the bars show how far one customer's actual value over the horizon may
    land from the dot (process and parameter uncertainty, see
    :func:`segml.models._predictive.clv_predictive_interval`). Bars that start at 0
    are customers who may well never buy again; long bars over high dots are the
    valuable but uncertain ones.

    Parameters
    ----------
    clv : pandas.Series
        Point CLV per customer (:meth:`segml.models.CLVModel.clv`).
    interval : pandas.DataFrame
        ``clv_low`` and ``clv_high``, indexed like ``clv``.
    n_customers : int, default 200
        Customers drawn (all of them if fewer).
    random_state : int or None, default 0
        Seeds the sample.
    log_scale : bool, default False
        A symlog y-axis, for heavy-tailed values.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> clv = pd.Series([10.0, 50.0, 5.0], index=["a", "b", "c"])
    >>> band = pd.DataFrame({"clv_low": [0.0, 20.0, 0.0], "clv_high": [30.0, 90.0, 12.0]},
    ...                     index=clv.index)
    >>> fig = plot_clv_fan(clv, band)
    >>> fig.axes[0].get_ylabel()
    'CLV over the horizon'
    """
    missing = [c for c in ("clv_low", "clv_high") if c not in interval.columns]
    if missing:
        raise ValueError(
            f"interval lacks the column(s) {missing}; pass the output of "
            "clv_predictive_interval (clv_low, clv_high)."
        )
    joined = pd.concat([clv.rename("clv"), interval[["clv_low", "clv_high"]]], axis=1, join="inner")
    if len(joined) < len(clv):
        raise ValueError(
            f"{len(clv) - len(joined)} of {len(clv)} customers of clv have no interval; "
            "index clv and interval alike."
        )
    if n_customers < len(joined):
        joined = joined.sample(n=n_customers, random_state=random_state)
    joined = joined.sort_values("clv", kind="stable")
    rank = np.arange(len(joined))
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    segments = np.stack(
        [
            np.column_stack([rank, joined["clv_low"].to_numpy()]),
            np.column_stack([rank, joined["clv_high"].to_numpy()]),
        ],
        axis=1,
    )
    ax.add_collection(
        LineCollection(
            segments, colors="tab:blue", alpha=0.45, linewidths=2, label="predictive interval"
        )
    )
    ax.plot(rank, joined["clv"].to_numpy(), "o", color="black", markersize=2.5, label="point CLV")
    ax.set_xlim(-1, len(joined))
    top = float(max(joined["clv_high"].max(), joined["clv"].max()))
    ax.set_ylim(min(0.0, float(joined["clv_low"].min())), top * 1.05 if top > 0 else 1.0)
    if log_scale:
        ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel(f"customers, sorted by point CLV ({len(joined):,} shown)")
    ax.set_ylabel("CLV over the horizon")
    ax.set_title("Customer CLV with its predictive interval")
    ax.legend(loc="upper left")
    return fig


def plot_purchase_reliability(
    reliability: pd.DataFrame,
    *,
    brier: float,
    brier_baseline: float,
    window_days: float,
) -> Figure:
    """Reliability chart of P(buy in the next N days): mean predicted vs observed per bin.

    Points on the diagonal are calibrated; their size shows the customers per bin.
    The title gives the Brier score beside the constant baseline's.

    Parameters
    ----------
    reliability : pandas.DataFrame
        ``n``, ``mean_predicted`` and ``observed_rate`` per bin, as in the
        ``reliability`` entry of :func:`segml.models._predictive.predictive_calibration`.
    brier, brier_baseline : float
    window_days : float

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"n": [90, 10], "mean_predicted": [0.05, 0.6],
    ...                       "observed_rate": [0.07, 0.5]})
    >>> fig = plot_purchase_reliability(table, brier=0.1, brier_baseline=0.12, window_days=90)
    >>> fig.axes[0].get_xlabel()
    'predicted P(buy within 90 days)'
    """
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    n = reliability["n"].to_numpy(dtype=float)
    ax.scatter(
        reliability["mean_predicted"],
        reliability["observed_rate"],
        s=20 + 300 * n / max(n.max(), 1.0),
        color="tab:blue",
        label="customers binned by prediction",
    )
    ax.plot(reliability["mean_predicted"], reliability["observed_rate"], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"predicted P(buy within {window_days:g} days)")
    ax.set_ylabel("observed share who bought")
    ax.set_title(f"Brier {brier:.3f} (constant baseline {brier_baseline:.3f})")
    ax.legend(loc="upper left")
    return fig
