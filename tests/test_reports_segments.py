"""Segment and tier figures: what each one draws (counts, shares, sample size, k, cells)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from segml.reports._segments import (
    plot_frequency_vs_spend,
    plot_migration_matrix,
    plot_segment_profiles,
    plot_silhouette_curve,
    plot_tier_counts,
    plot_tier_shares,
)
from segml.scoring import migration_matrix

TIERS = pd.Categorical(
    ["regular", "VIP", "regular", "prospect", "prospect", "prospect"],
    categories=["VIP", "regular", "prospect"],
)


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_tier_counts_bars_follow_category_order_with_labels():
    fig = plot_tier_counts(TIERS)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [1, 2, 3]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["VIP", "regular", "prospect"]
    assert _texts(ax) == ["1\n16.7%", "2\n33.3%", "3\n50.0%"]


def test_tier_shares_pie():
    fig = plot_tier_shares(TIERS)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts if "%" in t.get_text()] == ["16.7%", "33.3%", "50.0%"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["VIP: 16.7% (1)", "regular: 33.3% (2)", "prospect: 50.0% (3)"]


def test_thin_slices_are_named_in_the_legend_only():
    labels = ["VIP"] * 3 + ["regular"] * 100 + ["prospect"] * 23_397
    ax = plot_tier_shares(pd.Categorical(labels, categories=["VIP", "regular", "prospect"])).axes[0]
    assert [t.get_text() for t in ax.texts if t.get_text()] == ["99.6%"]  # none on thin slices
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "VIP: 0.0% (3)",
        "regular: 0.4% (100)",
        "prospect: 99.6% (23,397)",
    ]


def test_scatter_is_log_log_and_sampled_when_large():
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "n_orders": rng.integers(1, 20, 500),
            "total_spend": rng.uniform(1, 1000, 500),
            "segment": rng.integers(0, 3, 500),
        }
    )
    table.loc[0, "total_spend"] = 0.0  # cannot sit on a log axis: left out
    fig = plot_frequency_vs_spend(table, max_points=100)
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert sum(len(c.get_offsets()) for c in ax.collections) == 100
    assert "random sample of 100 customers" in ax.get_title()
    full = plot_frequency_vs_spend(table).axes[0]
    assert sum(len(c.get_offsets()) for c in full.collections) == 499


def test_segment_profiles_show_medians():
    table = pd.DataFrame(
        {
            "segment": [0, 0, 1, 1],
            "n_orders": [9, 7, 1, 3],
            "total_spend": [900.0, 700.0, 10.0, 30.0],
        }
    )
    fig = plot_segment_profiles(
        table, columns=["n_orders", "total_spend"], names={0: "best", 1: "rest"}
    )
    ax = fig.axes[0]
    assert _texts(ax) == ["8", "800", "2", "20"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0: best (n=2)", "1: rest (n=2)"]
    image = ax.images[0].get_array()
    assert image[0, 0] > 0 > image[1, 0]  # segment 0 above the overall median on orders


def test_silhouette_curve_marks_the_chosen_k():
    fig = plot_silhouette_curve({3: 0.41, 4: 0.45, 5: 0.38}, chosen=3)
    ax = fig.axes[0]
    assert list(ax.lines[0].get_xdata()) == [3, 4, 5]
    assert ax.get_title().endswith("k = 3")
    with pytest.raises(ValueError, match="n_segments as a list"):
        plot_silhouette_curve({})


def test_migration_heatmap_counts_and_shares():
    before = pd.Series({"a": "VIP", "b": "regular", "c": "regular"})
    after = pd.Series({"a": "VIP", "b": "VIP", "d": "regular"})
    counts = migration_matrix(before, after, order=["VIP", "regular"])
    ax = plot_migration_matrix(counts).axes[0]
    assert _texts(ax) == ["1", "0", "0", "1", "0", "1", "0", "1", "0"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["VIP", "regular", "(new)"]
    shares = migration_matrix(before, after, order=["VIP", "regular"], normalize="row")
    ax = plot_migration_matrix(shares).axes[0]
    assert _texts(ax)[3:6] == ["50%", "0%", "50%"]


def test_no_pyplot_state_is_touched():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_tier_counts(TIERS)
    plot_silhouette_curve({3: 0.4, 4: 0.5})
    assert plt.get_fignums() == before


def test_every_segment_chart_labels_segments_by_name():
    table = pd.DataFrame(
        {
            "segment": [0, 0, 1, 1, 2],
            "segment_name": ["best", "best", "lapsed", "lapsed", "gone"],
            "n_orders": [9, 7, 2, 1, 1],
            "total_spend": [900.0, 700.0, 30.0, 10.0, 5.0],
            "days_since_last_purchase": [3, 5, 200, 300, 500],
        }
    )
    names = {0: "best", 1: "lapsed", 2: "gone"}
    shown = ["0: best", "1: lapsed", "2: gone"]

    def texts(items):
        return [t.get_text() for t in items]

    scatter = plot_frequency_vs_spend(table)  # names from the segment_name column
    assert texts(scatter.axes[0].get_legend().get_texts()) == [
        "0: best (n=2)",
        "1: lapsed (n=2)",
        "2: gone (n=1)",
    ]
    profiles = plot_segment_profiles(table)
    assert texts(profiles.axes[0].get_yticklabels()) == [
        "0: best (n=2)",
        "1: lapsed (n=2)",
        "2: gone (n=1)",
    ]
    counts = plot_tier_counts(table["segment"], names=names)
    assert texts(counts.axes[0].get_xticklabels()) == shown
    shares = plot_tier_shares(table["segment"], names=names)
    assert [
        t.split(":")[0] + ":" + t.split(":")[1]
        for t in texts(shares.axes[0].get_legend().get_texts())
    ] == shown
    # A migration matrix read back from CSV has text labels: "0" still finds its name.
    matrix = migration_matrix(
        pd.Series({"a": 0, "b": 1, "c": 2}), pd.Series({"a": 0, "b": 0, "d": 2})
    )
    matrix = matrix.rename(index=str, columns=str)
    heat = plot_migration_matrix(matrix, names=names)
    assert texts(heat.axes[0].get_yticklabels())[:3] == shown
    assert texts(heat.axes[0].get_xticklabels())[:3] == shown


def test_segment_profiles_title_fits_with_two_columns():
    # A purchases-only log profiles two columns: the two-line title must not be cut.
    table = pd.DataFrame({"segment": [0, 0, 1, 1], "n_orders": [9, 7, 1, 3],
                          "days_since_last_purchase": [3, 5, 300, 200]})  # fmt: skip
    fig = plot_segment_profiles(
        table, columns=["days_since_last_purchase", "n_orders"], names={0: "best", 1: "rest"}
    )
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays the figure out (constrained layout)
    # Everything drawn (title, labels, colour bar) lies inside the figure.
    drawn = fig.get_tightbbox(canvas.get_renderer())
    width, height = fig.get_size_inches()
    assert drawn.x0 >= 0 and drawn.y0 >= 0 and drawn.x1 <= width and drawn.y1 <= height
    assert fig.get_suptitle().startswith("Segment profiles\n")
