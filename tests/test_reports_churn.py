"""Churn charts: each returns a Figure drawn from the same numbers as evaluate_churn.

The charts were rendered to PNG on CDNOW (model vs the three baselines) and looked at;
these tests pin what each figure contains, not how it looks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from segml.models._churn_evaluation import lift_table
from segml.reports._churn import (
    plot_churn_calibration,
    plot_churn_lift,
    plot_churn_precision_recall,
    plot_churn_roc,
)


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(5)
    n = 400
    risk = rng.uniform(size=n)
    y = (rng.uniform(size=n) < risk).astype("int64")
    scores = {
        "model": np.clip(risk + rng.normal(0, 0.1, n), 0, 1),
        "days_since_last_purchase": np.round(risk * 300 + rng.normal(0, 80, n)),
    }
    return y, scores


def _legend(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_roc_has_one_curve_per_score_plus_chance_with_auc_labels(scored):
    y, scores = scored
    figure = plot_churn_roc(y, scores, title="CDNOW")
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    assert ax.get_title() == "CDNOW"
    labels = _legend(ax)
    from sklearn.metrics import roc_auc_score

    assert labels[0] == f"model (AUC {roc_auc_score(y, scores['model']):.3f})"
    assert labels[-1] == "chance"
    assert len(ax.lines) == 3
    # Every ROC curve runs from (0, 0) to (1, 1).
    for line in ax.lines[:2]:
        x, t = line.get_data()
        assert (x[0], t[0], x[-1], t[-1]) == (0, 0, 1, 1)


def test_precision_recall_marks_the_churn_rate(scored):
    y, scores = scored
    ax = plot_churn_precision_recall(y, scores).axes[0]
    labels = _legend(ax)
    assert labels[-1] == f"churn rate {y.mean():.3f}"
    assert labels[0].startswith("model (AP ")
    from sklearn.metrics import average_precision_score

    assert labels[0] == f"model (AP {average_precision_score(y, scores['model']):.3f})"
    days = scores["days_since_last_purchase"]
    assert labels[1] == f"days_since_last_purchase (AP {average_precision_score(y, days):.3f})"
    # The dotted line sits at the churn rate.
    assert ax.lines[-1].get_ydata()[0] == pytest.approx(y.mean())


def test_calibration_points_are_bin_means(scored):
    y, scores = scored
    figure = plot_churn_calibration(y, {"model": scores["model"]}, n_bins=5)
    top, bottom = figure.axes
    x, observed = top.lines[1].get_data()
    assert len(x) == 5
    assert np.all(np.diff(x) > 0)
    # Weighted by bin size, the points average back to the overall churn rate.
    assert np.mean(observed) == pytest.approx(y.mean(), abs=0.01)
    assert bottom.get_xlabel() == "predicted churn probability"
    # Bins at the quintiles of the prediction, closed on the right (the lowest value
    # in the first bin): pandas' qcut makes the same bins independently.
    p = scores["model"]
    bins = pd.qcut(p, 5, labels=False, duplicates="drop")
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y}).groupby("bin")
    np.testing.assert_allclose(x, frame["p"].mean(), rtol=1e-12)
    np.testing.assert_allclose(observed, frame["y"].mean(), rtol=1e-12)
    # 400 distinct predictions: 80 customers per bin.
    assert frame.size().tolist() == [80] * 5


def test_calibration_keeps_tied_predictions_in_one_bin():
    # 1 - P(alive) is exactly 0 for most one-time buyers: one point, not a column of them.
    p = np.r_[np.zeros(60), np.linspace(0.1, 0.9, 40)]
    y = np.r_[np.ones(45), np.zeros(15), (np.linspace(0.1, 0.9, 40) > 0.5).astype(int)]
    x, observed = (
        plot_churn_calibration(y, {"1 - p_alive": p}, n_bins=10).axes[0].lines[1].get_data()
    )
    assert x[0] == 0.0 and observed[0] == pytest.approx(45 / 60)
    assert np.all(np.diff(x) > 0)


def test_calibration_refuses_scores_that_are_not_probabilities(scored):
    y, scores = scored
    with pytest.raises(ValueError, match="'days_since_last_purchase' is not a probability"):
        plot_churn_calibration(y, scores)


def test_lift_chart_draws_the_lift_table(scored):
    y, scores = scored
    figure = plot_churn_lift(y, scores)
    left, right = figure.axes
    heights = [patch.get_height() for patch in left.patches[:10]]
    np.testing.assert_allclose(heights, lift_table(y, scores["model"])["lift"])
    share, capture = right.lines[0].get_data()
    assert share[0] == capture[0] == 0 and capture[-1] == pytest.approx(1.0)
    assert _legend(right)[-1] == "random"


def test_charts_leave_pyplot_alone(scored):
    import matplotlib
    import matplotlib.pyplot as plt

    y, scores = scored
    before = matplotlib.get_backend()
    figures_before = plt.get_fignums()
    for plot in (plot_churn_roc, plot_churn_precision_recall, plot_churn_lift):
        plot(y, scores)
    plot_churn_calibration(y, {"model": scores["model"]})
    assert plt.get_fignums() == figures_before
    assert matplotlib.get_backend() == before
    # Figures are not registered with pyplot: nothing to close, nothing shown.
    import sys

    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
