"""Figures for segments and tiers: sizes, shares, RFM scatter, profiles, silhouette, migration.

Every function returns a :class:`matplotlib.figure.Figure` built with the object
API (no pyplot state); nothing is shown or saved. Save one with
``fig.savefig("tiers.png")`` or log it with ``mlflow.log_figure``.

Segments are shown by name, not only by number: every function takes ``names``
(``{segment id: name}``, e.g. ``SegmentModel.segment_names_``) and labels a
segment ``"0: recent, frequent"``; functions given a customer table read the names
from its ``segment_name`` column when ``names`` is not given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

__all__ = [
    "plot_frequency_vs_spend",
    "plot_migration_matrix",
    "plot_segment_profiles",
    "plot_silhouette_curve",
    "plot_tier_counts",
    "plot_tier_shares",
]


def _shown(label, names: Mapping | None) -> str:
    """``"0: name"`` for a label with a name (looked up as is, then as text), else the label."""
    if names:
        name = names.get(label, names.get(str(label)))
        if name is None and isinstance(label, str) and label.lstrip("-").isdigit():
            name = names.get(int(label))
        if name is not None and str(name) != str(label):
            return f"{label}: {name}"
    return str(label)


def _names_from(customers: pd.DataFrame, segment_column: str, names: Mapping | None):
    """``names``, else ``{segment: segment_name}`` read from the table when it has both."""
    if names is not None or "segment_name" not in customers.columns:
        return names
    if segment_column == "segment_name":
        return None
    pairs = customers[[segment_column, "segment_name"]].drop_duplicates(segment_column)
    return dict(zip(pairs[segment_column], pairs["segment_name"].astype(str), strict=True))


def _counts(labels, order: Sequence | None) -> pd.Series:
    labels = pd.Series(labels)
    if order is None and isinstance(labels.dtype, pd.CategoricalDtype):
        order = list(labels.cat.categories)
    counts = labels.value_counts(sort=False)
    if order is None:
        order = sorted(counts.index, key=lambda v: (str(type(v)), v))
    return counts.reindex(list(order), fill_value=0)


def plot_tier_counts(
    labels,
    *,
    order: Sequence | None = None,
    names: Mapping | None = None,
    title: str = "Customers per tier",
) -> Figure:
    """Bar chart of customers per tier (or segment), each bar labelled with count and share.

    Parameters
    ----------
    labels : array-like
        One label per customer (e.g. ``scores["tier"]``). A categorical keeps its
        category order (best tier first).
    order : sequence, optional
        Bar order; default category order, else sorted.
    names : mapping, optional
        Name of each label, e.g. ``{0: "recent, frequent"}`` for segment ids; the
        bar is labelled ``"0: recent, frequent"``.
    title : str
        Figure title.

    Examples
    --------
    >>> from segml.reports._segments import plot_tier_counts
    >>> fig = plot_tier_counts(["VIP", "regular", "regular", "prospect"],
    ...                        order=["VIP", "regular", "prospect"])
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['VIP', 'regular', 'prospect']
    >>> fig = plot_tier_counts([0, 1, 1], names={0: "frequent", 1: "lapsed"},
    ...                        title="Customers per segment")
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['0: frequent', '1: lapsed']
    """
    counts = _counts(labels, order)
    total = max(int(counts.sum()), 1)
    names = [_shown(v, names) for v in counts.index]
    fig = Figure(figsize=(max(6.4, 0.8 * len(names) + 1.5), 4.2), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar(names, counts.to_numpy(), color=[f"C{i % 10}" for i in range(len(names))])
    ax.bar_label(bars, labels=[f"{c:,}\n{c / total:.1%}" for c in counts], padding=2, fontsize=9)
    if sum(len(n) for n in names) > 40:  # long labels would collide: slant them
        ax.tick_params(axis="x", labelrotation=30)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
    ax.set_ylabel("customers")
    ax.set_ylim(0, counts.max() * 1.2 + 1)
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_tier_shares(
    labels,
    *,
    order: Sequence | None = None,
    names: Mapping | None = None,
    title: str = "Share of customers per tier",
) -> Figure:
    """Pie chart of the share of customers in each tier (or segment).

    ``names`` labels segment ids by name in the legend, as in :func:`plot_tier_counts`.

    Examples
    --------
    >>> from segml.reports._segments import plot_tier_shares
    >>> fig = plot_tier_shares(["VIP", "regular", "regular", "prospect"])
    >>> len(fig.axes[0].patches)
    3
    """
    counts = _counts(labels, order)
    counts = counts[counts > 0]
    shares = counts / counts.sum()
    fig = Figure(figsize=(6.4, 5.0), layout="constrained")
    ax = fig.add_subplot()
    wedges, _ = ax.pie(
        counts.to_numpy(),
        startangle=90,
        counterclock=False,
        colors=[f"C{i % 10}" for i in range(len(counts))],
        wedgeprops={"linewidth": 1, "edgecolor": "white"},
    )
    # Percentages inside slices big enough to hold them; every tier's name and
    # share in the legend, so thin slices (a handful of VIPs) never overlap.
    for wedge, share in zip(wedges, shares, strict=True):
        if share >= _PIE_LABEL_MIN_SHARE:
            angle = np.deg2rad((wedge.theta1 + wedge.theta2) / 2)
            ax.text(
                0.6 * np.cos(angle),
                0.6 * np.sin(angle),
                f"{share:.1%}",
                ha="center",
                va="center",
                color="white",
                fontweight="bold",
            )
    ax.legend(
        wedges,
        [
            f"{_shown(label, names)}: {share:.1%} ({count:,})"
            for label, share, count in zip(counts.index, shares, counts, strict=True)
        ],
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )
    ax.set_aspect("equal")
    ax.set_title(title)
    return fig


_PIE_LABEL_MIN_SHARE = 0.05


def plot_frequency_vs_spend(
    customers: pd.DataFrame,
    *,
    segment_column: str = "segment",
    frequency_column: str = "n_orders",
    spend_column: str = "total_spend",
    max_points: int = 20_000,
    random_state: int = 0,
    names: Mapping | None = None,
    title: str = "Purchase frequency vs spend by segment",
) -> Figure:
    """Scatter of orders against spend (log axes), coloured by segment.

    The legend names each segment (``names``, else the table's ``segment_name``).

    Above ``max_points`` customers a seeded sample is drawn (the title says so).
    Orders are integers, so points get a small multiplicative jitter to show
    density; customers with zero spend cannot sit on a log axis and are left out.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.reports._segments import plot_frequency_vs_spend
    >>> table = pd.DataFrame({"n_orders": [1, 2, 9], "total_spend": [10.0, 30.0, 400.0],
    ...                       "segment": [1, 1, 0]})
    >>> fig = plot_frequency_vs_spend(table)
    >>> fig.axes[0].get_xscale(), fig.axes[0].get_yscale()
    ('log', 'log')
    >>> fig = plot_frequency_vs_spend(table.assign(segment_name=["lapsed", "lapsed", "best"]))
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['0: best (n=1)', '1: lapsed (n=2)']
    """
    names = _names_from(customers, segment_column, names)
    for column in (segment_column, frequency_column, spend_column):
        if column not in customers.columns:
            raise ValueError(
                f"plot_frequency_vs_spend needs the column {column!r}; "
                f"found {list(customers.columns)}."
            )
    data = customers[[segment_column, frequency_column, spend_column]]
    data = data[(data[frequency_column] > 0) & (data[spend_column] > 0)]
    sampled = len(data) > max_points
    if sampled:
        data = data.sample(n=max_points, random_state=random_state)
    rng = np.random.default_rng(random_state)
    jitter = np.exp(rng.uniform(-0.08, 0.08, size=len(data)))
    fig = Figure(figsize=(6.8, 4.8), layout="constrained")
    ax = fig.add_subplot()
    labels = data[segment_column]
    order = (
        list(labels.cat.categories)
        if isinstance(labels.dtype, pd.CategoricalDtype)
        else sorted(pd.unique(labels), key=lambda v: (str(type(v)), v))
    )
    for i, label in enumerate(order):
        mask = (labels == label).to_numpy()
        if not mask.any():
            continue
        ax.scatter(
            data[frequency_column].to_numpy()[mask] * jitter[mask],
            data[spend_column].to_numpy()[mask],
            s=8,
            alpha=0.45,
            color=f"C{i % 10}",
            label=f"{_shown(label, names)} (n={mask.sum():,})",
            linewidths=0,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{frequency_column} (log scale)")
    ax.set_ylabel(f"{spend_column} (log scale)")
    ax.set_title(title + (f"\n(random sample of {max_points:,} customers)" if sampled else ""))
    ax.legend(title=segment_column, fontsize=8, markerscale=2, loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    return fig


def plot_segment_profiles(
    customers: pd.DataFrame,
    *,
    segment_column: str = "segment",
    columns: Sequence[str] = (
        "days_since_last_purchase",
        "n_orders",
        "total_spend",
        "avg_order_value",
    ),
    names: Mapping | None = None,
    title: str = "Segment profiles",
) -> Figure:
    """Heatmap of each segment's profile: colour = how far the segment's median is
    from all customers' median (in standard deviations of ``log1p``), text = the median.

    Log units make a segment with twice the spend as far from average as one with
    half, which is how RFM differences are read. Rows are labelled
    ``"0: name (n=...)"`` from ``names``, else from the table's ``segment_name``.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.reports._segments import plot_segment_profiles
    >>> table = pd.DataFrame({"segment": [0, 0, 1, 1], "n_orders": [9, 7, 1, 2],
    ...                       "total_spend": [900.0, 700.0, 10.0, 30.0]})
    >>> fig = plot_segment_profiles(table, columns=["n_orders", "total_spend"])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['0 (n=2)', '1 (n=2)']
    >>> named = table.assign(segment_name=["best"] * 2 + ["lapsed"] * 2)
    >>> fig = plot_segment_profiles(named, columns=["n_orders"])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['0: best (n=2)', '1: lapsed (n=2)']
    """
    names = _names_from(customers, segment_column, names)
    columns = [c for c in columns if c in customers.columns]
    if not columns or segment_column not in customers.columns:
        raise ValueError(
            f"plot_segment_profiles needs {segment_column!r} and at least one profile column; "
            f"found {list(customers.columns)}."
        )
    groups = customers.groupby(segment_column, observed=True, sort=True)
    medians = groups[columns].median()
    sizes = groups.size()
    logs = np.log1p(customers[columns].clip(lower=0).astype("float64"))
    z = (np.log1p(medians.clip(lower=0)) - logs.median()) / logs.std(ddof=0).replace(0, 1)
    fig = Figure(
        # At least 6.5 inches wide: the two-line title needs it when there are few
        # columns (a purchases-only log profiles two).
        figsize=(max(1.6 * len(columns) + 2.6, 6.5), 0.55 * len(medians) + 1.6),
        layout="constrained",
    )
    ax = fig.add_subplot()
    limit = max(float(np.nanmax(np.abs(z.to_numpy()))), 0.5)
    image = ax.imshow(
        z.to_numpy(), cmap="RdBu_r", norm=TwoSlopeNorm(0, -limit, limit), aspect="auto"
    )
    for i in range(len(medians)):
        for j in range(len(columns)):
            value = medians.iloc[i, j]
            ax.text(
                j,
                i,
                f"{value:,.0f}" if abs(value) >= 10 else f"{value:.2g}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if abs(z.iloc[i, j]) > 0.6 * limit else "black",
            )
    ax.set_xticks(range(len(columns)), columns, rotation=20, ha="right")
    ax.set_yticks(
        range(len(medians)), [f"{_shown(s, names)} (n={sizes[s]:,})" for s in medians.index]
    )
    # Over the whole figure, not the (narrow) heatmap: constrained layout keeps it inside.
    fig.suptitle(title + "\n(text: median; colour: SD from overall median, log scale)", fontsize=10)
    fig.colorbar(image, ax=ax, label="SD of log1p from overall median")
    return fig


def plot_silhouette_curve(
    silhouette_scores: Mapping[int, float],
    *,
    chosen: int | None = None,
    title: str = "Choosing the number of segments",
) -> Figure:
    """Silhouette of each candidate k (higher is better), the chosen k marked.

    Parameters
    ----------
    silhouette_scores : mapping of int to float
        E.g. ``SegmentModel.silhouette_scores_``.
    chosen : int, optional
        The k used (default: the best score).

    Examples
    --------
    >>> from segml.reports._segments import plot_silhouette_curve
    >>> fig = plot_silhouette_curve({3: 0.41, 4: 0.45, 5: 0.38})
    >>> fig.axes[0].get_title()
    'Choosing the number of segments: k = 4'
    """
    if not silhouette_scores:
        raise ValueError(
            "plot_silhouette_curve needs scores for at least one k; fit SegmentModel with "
            "n_segments as a list of candidates (e.g. [3, 4, 5, 6, 7, 8])."
        )
    ks = sorted(silhouette_scores)
    scores = [silhouette_scores[k] for k in ks]
    if chosen is None:
        chosen = ks[int(np.argmax(scores))]
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(ks, scores, marker="o", color="C0")
    ax.scatter(
        [chosen],
        [silhouette_scores[chosen]],
        s=160,
        facecolors="none",
        edgecolors="C3",
        linewidths=2,
        zorder=3,
        label=f"chosen k = {chosen}",
    )
    ax.set_xticks(ks)
    ax.set_xlabel("number of segments k")
    ax.set_ylabel("silhouette (on the selection sample)")
    ax.set_title(f"{title}: k = {chosen}")
    ax.legend()
    ax.grid(True, alpha=0.3)
    return fig


def plot_migration_matrix(
    matrix: pd.DataFrame, *, names: Mapping | None = None, title: str = "Tier migration"
) -> Figure:
    """Heatmap of a migration matrix (counts, or shares when values are within [0, 1]).

    Rows are the previous label, columns the current one; new and lost customers
    are the last row and column (see :func:`segml.scoring.migration_matrix`). For
    segment migration, ``names`` (``{segment id: name}``) labels rows and columns by
    name.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.reports._segments import plot_migration_matrix
    >>> from segml.scoring import migration_matrix
    >>> m = migration_matrix(pd.Series({"a": "VIP", "b": "regular"}),
    ...                      pd.Series({"a": "VIP", "c": "VIP"}))
    >>> fig = plot_migration_matrix(m)
    >>> fig.axes[0].get_ylabel()
    'previous'
    """
    values = matrix.to_numpy(dtype="float64")
    shares = bool(np.all((values >= 0) & (values <= 1))) and not np.issubdtype(
        matrix.to_numpy().dtype, np.integer
    )
    fig = Figure(
        figsize=(1.0 * matrix.shape[1] + 2.4, 0.7 * matrix.shape[0] + 1.6), layout="constrained"
    )
    ax = fig.add_subplot()
    positive = values[values > 0]
    norm = (
        Normalize(0, 1)
        if shares
        else LogNorm(max(positive.min(), 1), max(positive.max(), 2))
        if positive.size
        else Normalize(0, 1)
    )
    shown = np.where(values > 0, values, np.nan)
    image = ax.imshow(shown, cmap="Blues", norm=norm, aspect="auto")
    top = np.nanmax(shown) if positive.size else 1
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            text = ("<1%" if 0 < v < 0.005 else f"{v:.0%}") if shares else f"{int(v):,}"
            strong = v > (0.5 if shares else np.sqrt(top))
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=9,
                color="white" if strong else "black" if v > 0 else "0.7",
            )
    ax.set_xticks(
        range(matrix.shape[1]),
        [_shown(c, names) for c in matrix.columns],
        rotation=30 if matrix.shape[1] > 5 else 0,
        ha="right" if matrix.shape[1] > 5 else "center",
    )
    ax.set_yticks(range(matrix.shape[0]), [_shown(r, names) for r in matrix.index])
    ax.set_xlabel(matrix.columns.name or "current")
    ax.set_ylabel(matrix.index.name or "previous")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of row" if shares else "customers (log scale)")
    return fig
