"""Charts that show whether a churn model is worth more than its free baselines.

Each function returns a :class:`matplotlib.figure.Figure` built with the object API
(no pyplot state); nothing is shown or saved. Pass the model's ``churn_probability``
and :func:`segml.models.churn_baselines` together in ``scores`` so that every curve
is drawn on the same labels: the gap between the model and the best baseline is the
value of the model.

Examples
--------
>>> from segml.reports._churn import plot_churn_roc
>>> figure = plot_churn_roc([1, 0, 1, 0], {"model": [0.9, 0.2, 0.7, 0.4]})
>>> figure.axes[0].get_xlabel()
'false positive rate (stayers flagged)'
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from segml.models._churn_evaluation import _check_inputs, evaluate_churn, lift_table

__all__ = [
    "plot_churn_calibration",
    "plot_churn_lift",
    "plot_churn_precision_recall",
    "plot_churn_roc",
]


def _styles(names) -> dict[str, dict]:
    # The first score (the model) is drawn thick and dark; baselines thinner, dashed.
    colours = ["#1f3b73", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e"]
    styles = {}
    for i, name in enumerate(names):
        styles[name] = {
            "color": colours[i % len(colours)],
            "linewidth": 2.4 if i == 0 else 1.4,
            "linestyle": "-" if i == 0 else "--",
        }
    return styles


def _legend_below(ax, n_entries: int) -> None:
    # Below the axes, where no curve can hide under it.
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncol=2 if n_entries > 2 else n_entries,
        fontsize="small",
        frameon=False,
    )


def plot_churn_roc(y_true, scores: Mapping[str, object], *, title: str | None = None) -> Figure:
    """ROC curves of churn scores on the same labels, with their AUC in the legend.

    Parameters
    ----------
    y_true : array-like of {0, 1}
        Churn labels (1 = churned).
    scores : mapping of str to array-like
        Name -> score (higher = more likely to churn); the first is highlighted.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from segml.reports._churn import plot_churn_roc
    >>> figure = plot_churn_roc([1, 0, 1, 0], {"model": [0.9, 0.2, 0.7, 0.4],
    ...                                         "days": [30, 20, 10, 5]})
    >>> [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    ['model (AUC 1.000)', 'days (AUC 0.750)', 'chance']
    """
    metrics = evaluate_churn(y_true, scores)
    styles = _styles(scores)
    figure = Figure(figsize=(6, 6.2), layout="constrained")
    ax = figure.add_subplot()
    for name, score in scores.items():
        y, s = _check_inputs(y_true, score, name)
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {metrics.loc[name, 'roc_auc']:.3f})", **styles[name])
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":", label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (stayers flagged)")
    ax.set_ylabel("true positive rate (churners caught)")
    ax.set_title(title or "Churn ranking: ROC")
    _legend_below(ax, len(scores) + 1)
    ax.grid(alpha=0.3)
    return figure


def plot_churn_precision_recall(
    y_true, scores: Mapping[str, object], *, title: str | None = None
) -> Figure:
    """Precision-recall curves of churn scores, with average precision and the churn rate.

    The dotted horizontal line is the churn rate: the precision of flagging customers
    at random.

    Examples
    --------
    >>> from segml.reports._churn import plot_churn_precision_recall
    >>> figure = plot_churn_precision_recall([1, 0, 1, 0], {"model": [0.9, 0.2, 0.7, 0.4]})
    >>> figure.axes[0].get_ylabel()
    'precision (share of flagged who churn)'
    """
    metrics = evaluate_churn(y_true, scores)
    styles = _styles(scores)
    figure = Figure(figsize=(6, 6.2), layout="constrained")
    ax = figure.add_subplot()
    rate = float(metrics["churn_rate"].iloc[0])
    for name, score in scores.items():
        y, s = _check_inputs(y_true, score, name)
        precision, recall, _ = precision_recall_curve(y, s)
        label = f"{name} (AP {metrics.loc[name, 'pr_auc']:.3f})"
        ax.step(recall, precision, where="post", label=label, **styles[name])
    ax.axhline(rate, color="grey", linewidth=0.8, linestyle=":", label=f"churn rate {rate:.3f}")
    ax.set_xlim(0, 1)
    # Precision never falls far below the churn rate: zoom on the part above it.
    ax.set_ylim(max(0.0, rate - 0.15), 1.005)
    ax.set_xlabel("recall (share of churners caught)")
    ax.set_ylabel("precision (share of flagged who churn)")
    ax.set_title(title or "Churn ranking: precision-recall")
    _legend_below(ax, len(scores) + 1)
    ax.grid(alpha=0.3)
    return figure


def plot_churn_calibration(
    y_true,
    probabilities: Mapping[str, object],
    *,
    n_bins: int = 10,
    title: str | None = None,
) -> Figure:
    """Reliability curve: observed churn rate against predicted probability.

    Customers are put in ``n_bins`` bins at the quantiles of the predicted
    probability, so every point rests on about as many customers (tied predictions
    share a bin, so there may be fewer points); each point is a bin's mean prediction
    and its observed churn rate. On the diagonal, "0.8" means 8 in
    10. A histogram of the predictions sits below.

    Parameters
    ----------
    y_true : array-like of {0, 1}
        Churn labels.
    probabilities : mapping of str to array-like
        Name -> predicted P(churn) in [0, 1] (rankings such as days since last
        purchase are not probabilities and are refused).
    n_bins : int, default 10
        Number of quantile bins.

    Examples
    --------
    >>> from segml.reports._churn import plot_churn_calibration
    >>> y = [0, 0, 1, 0, 1, 1, 1, 1]
    >>> figure = plot_churn_calibration(y, {"model": [.1, .2, .3, .4, .6, .7, .8, .9]},
    ...                                 n_bins=4)
    >>> len(figure.axes)
    2
    """
    styles = _styles(probabilities)
    figure = Figure(figsize=(6, 6.5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot(
        [0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":", label="perfectly calibrated"
    )
    for name, probability in probabilities.items():
        y, p = _check_inputs(y_true, probability, name)
        if ((p < 0) | (p > 1)).any():
            raise ValueError(
                f"Score {name!r} is not a probability (values outside [0, 1]); a "
                "reliability curve needs probabilities."
            )
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
        bin_of = np.searchsorted(edges[1:-1], p, side="left")
        counts = np.bincount(bin_of)
        used = counts > 0
        mean_p = np.bincount(bin_of, weights=p)[used] / counts[used]
        observed = np.bincount(bin_of, weights=y)[used] / counts[used]
        brier = float(np.mean((p - y) ** 2))
        top.plot(mean_p, observed, marker="o", label=f"{name} (Brier {brier:.3f})", **styles[name])
        bottom.hist(p, bins=20, range=(0, 1), histtype="step", color=styles[name]["color"])
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("observed churn rate")
    top.set_title(title or "Churn probability calibration")
    top.legend(loc="upper left", fontsize="small")
    top.grid(alpha=0.3)
    bottom.set_xlabel("predicted churn probability")
    bottom.set_ylabel("customers")
    return figure


def plot_churn_lift(
    y_true, scores: Mapping[str, object], *, n_bins: int = 10, title: str | None = None
) -> Figure:
    """Lift per decile (left) and cumulative capture, the gains curve (right).

    Lift is a bin's churn rate over the overall rate: how much better than random the
    customers a campaign would target first are. Capture is the share of all churners
    found by targeting bins 1..i.

    Examples
    --------
    >>> from segml.reports._churn import plot_churn_lift
    >>> figure = plot_churn_lift([1, 0, 1, 0], {"model": [0.9, 0.2, 0.7, 0.4]}, n_bins=2)
    >>> [ax.get_ylabel() for ax in figure.axes]
    ['lift (churn rate / overall)', 'share of churners captured']
    """
    styles = _styles(scores)
    figure = Figure(figsize=(11, 5.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    width = 0.8 / len(scores)
    for i, (name, score) in enumerate(scores.items()):
        table = lift_table(y_true, score, n_bins=n_bins)
        bins = table.index.to_numpy()
        left.bar(
            bins + (i - (len(scores) - 1) / 2) * width,
            table["lift"],
            width=width,
            color=styles[name]["color"],
            label=name,
        )
        share = np.r_[0.0, table.index.to_numpy() / n_bins]
        right.plot(
            share, np.r_[0.0, table["cumulative_capture"]], marker=".", label=name, **styles[name]
        )
    left.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    left.set_xticks(bins)
    left.set_xlabel(f"score bin (1 = highest 1/{n_bins})")
    left.set_ylabel("lift (churn rate / overall)")
    _legend_below(left, len(scores))
    left.grid(alpha=0.3, axis="y")
    right.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":", label="random")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1.01)
    right.set_xlabel("share of customers targeted (highest scores first)")
    right.set_ylabel("share of churners captured")
    _legend_below(right, len(scores) + 1)
    right.grid(alpha=0.3)
    figure.suptitle(title or "Churn lift and capture")
    return figure
