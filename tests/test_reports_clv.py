"""CLV diagnostic figures: they draw the model's own numbers and leave pyplot alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from segml.datasets import load_cdnow
from segml.features import calibration_holdout
from segml.models import CLVModel
from segml.reports import (
    plot_calibration_purchases,
    plot_clv_distribution,
    plot_frequency_recency_matrix,
    plot_p_alive_matrix,
    plot_period_transactions,
)


@pytest.fixture(scope="module")
def cdnow():
    cal = calibration_holdout(
        load_cdnow(sample=True),
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        time_unit="D",
        unit_multiplier=7,
    )
    rfm = cal.rename(
        columns={
            "frequency_cal": "frequency",
            "recency_cal": "recency",
            "T_cal": "T",
            "monetary_value_cal": "monetary_value",
        }
    )[["frequency", "recency", "T", "monetary_value"]]
    return CLVModel(time_unit="W").fit(rfm), rfm, cal


def test_every_figure_is_a_figure_outside_pyplot(cdnow, tmp_path):
    model, rfm, cal = cdnow
    figures = [
        plot_calibration_purchases(model, cal),
        plot_frequency_recency_matrix(model, rfm),
        plot_p_alive_matrix(model, rfm),
        plot_period_transactions(model, rfm),
        plot_clv_distribution(model.predict(rfm)),
    ]
    assert all(isinstance(fig, Figure) for fig in figures)
    # Object API only: nothing registered with pyplot, nothing shown or written.
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []
    assert list(tmp_path.iterdir()) == []
    for fig in figures:
        fig.savefig(tmp_path / "check.png")  # renders without error


def test_calibration_figure_draws_group_means(cdnow):
    model, rfm, cal = cdnow
    fig = plot_calibration_purchases(model, cal, max_frequency=7)
    actual, predicted = fig.axes[0].get_lines()[:2]
    group = np.minimum(cal["frequency_cal"], 7)
    np.testing.assert_allclose(actual.get_ydata(), cal.groupby(group)["frequency_holdout"].mean())
    expected = model.expected_purchases(rfm, horizon=39.0).groupby(group.to_numpy()).mean()
    np.testing.assert_allclose(predicted.get_ydata(), expected)


def test_period_transactions_counts_every_customer(cdnow):
    model, rfm, _ = cdnow
    fig = plot_period_transactions(model, rfm, max_purchases=7)
    actual, expected = fig.axes[0].containers
    heights_actual = [bar.get_height() for bar in actual]
    heights_model = [bar.get_height() for bar in expected]
    assert heights_actual[0] == (rfm["frequency"] == 0).sum() == 1411
    assert sum(heights_actual) == len(rfm)
    # The model's expected counts are probabilities summed over customers.
    assert sum(heights_model) == pytest.approx(len(rfm), rel=1e-9)
    # BG/NBD fits CDNOW's zero class closely (FHL 2005, Fig. 2).
    assert heights_model[0] == pytest.approx(1411, rel=0.02)


def test_p_alive_matrix_holds_model_values_and_marks_impossible_cells(cdnow):
    model, rfm, _ = cdnow
    fig = plot_p_alive_matrix(model, rfm, max_frequency=5, n_recency=11)
    matrix = fig.axes[0].get_images()[0].get_array()
    T = rfm["T"].max()
    recency = np.linspace(0, T, 11)
    cell = pd.DataFrame({"frequency": [3.0], "recency": [recency[7]], "T": [T]})
    assert matrix[7, 3] == pytest.approx(model.p_alive(cell).iloc[0], rel=1e-12)
    # frequency 0 with recency > 0 cannot occur: masked, not painted as "alive".
    assert np.ma.getmaskarray(matrix)[1:, 0].all()
    assert matrix[0, 0] == 1.0


def test_frequency_recency_matrix_holds_expected_purchases_at_the_plotted_horizon(cdnow):
    model, rfm, _ = cdnow
    fig = plot_frequency_recency_matrix(model, rfm, horizon=26.0, max_frequency=5, n_recency=11)
    ax = fig.axes[0]
    matrix = ax.get_images()[0].get_array()
    assert matrix.shape == (11, 6)  # rows: recency grid, columns: frequency 0..5
    T = rfm["T"].max()
    recency = np.linspace(0, T, 11)
    cell = pd.DataFrame({"frequency": [3.0], "recency": [recency[7]], "T": [T]})
    expected = model.expected_purchases(cell, horizon=26.0).iloc[0]
    assert matrix[7, 3] == pytest.approx(expected, rel=1e-12)
    # Another horizon gives another number: the cell is at the horizon asked for.
    assert model.expected_purchases(cell, horizon=52.0).iloc[0] != pytest.approx(expected)
    # frequency 0 with recency > 0 cannot occur: masked, as in the P(alive) matrix.
    assert np.ma.getmaskarray(matrix)[1:, 0].all()
    assert ax.get_title().startswith("Expected purchases in the next 26 weeks\n")
    assert f"customer age T = {T:.1f} weeks" in ax.get_title()
    # Default horizon: horizon_months (12) months of 4.345 weeks, as lifetimes counts them.
    default = plot_frequency_recency_matrix(model, rfm, max_frequency=5, n_recency=11).axes[0]
    assert default.get_title().startswith("Expected purchases in the next 52.14 weeks\n")
    expected = model.expected_purchases(cell, horizon=12 * 4.345).iloc[0]
    assert default.get_images()[0].get_array()[7, 3] == pytest.approx(expected, rel=1e-12)


def test_clv_distribution_counts_customers_in_range():
    predictions = pd.DataFrame(
        {"clv": np.arange(100.0), "has_repeat_purchase": np.arange(100) % 2 == 0}
    )
    fig = plot_clv_distribution(predictions, bins=10, clip_quantile=0.9)
    ax = fig.axes[0]
    assert "10 above 89.10 not shown" in ax.get_title()
    tops = [sum(bar.get_height() for bar in container) for container in ax.containers]
    # Both layers together count everyone inside the range, half of them repeat buyers.
    assert tops == [45, 45]
