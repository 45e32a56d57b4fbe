"""CLV yardsticks: the practitioners' simple formula and holdout accuracy of a fitted model."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["holdout_metrics", "simple_clv"]

# The RFM columns of a calibration_holdout table, without their "_cal" suffix.
_RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
_HOLDOUT_COLUMNS = (
    "frequency_cal",
    "recency_cal",
    "T_cal",
    "monetary_value_cal",
    "frequency_holdout",
    "monetary_value_holdout",
    "duration_holdout",
)


def simple_clv(avg_order_value, purchases_per_year, lifetime_years, acquisition_cost=0.0):
    """The back-of-envelope CLV: order value x purchase rate x lifetime - acquisition cost.

    ``CLV = avg_order_value * purchases_per_year * lifetime_years - acquisition_cost``.
    It is undiscounted and assumes every customer keeps buying at the same rate for the
    whole lifetime, so it overstates customers who have already lapsed; compare it with
    :meth:`segml.models.CLVModel.clv`, which estimates who is still active. A common
    lifetime estimate is ``1 / annual churn rate``. Any period works if the rate and
    the lifetime use the same one.

    Parameters
    ----------
    avg_order_value : float or array-like
        Mean spend per order (currency).
    purchases_per_year : float or array-like
        Orders per year.
    lifetime_years : float or array-like
        Expected remaining (or total) customer lifetime, in years.
    acquisition_cost : float or array-like, default 0.0
        Cost of acquiring the customer (CAC), subtracted once.

    Returns
    -------
    float, numpy.ndarray or pandas.Series
        CLV in currency, broadcast over the inputs.

    Raises
    ------
    ValueError
        If an order value, rate, lifetime or cost is negative or not finite.

    Examples
    --------
    >>> simple_clv(50.0, purchases_per_year=4, lifetime_years=3, acquisition_cost=100.0)
    500.0
    >>> simple_clv([20.0, 80.0], [12, 2], 1.5).tolist()
    [360.0, 240.0]
    """
    named = {
        "avg_order_value": avg_order_value,
        "purchases_per_year": purchases_per_year,
        "lifetime_years": lifetime_years,
        "acquisition_cost": acquisition_cost,
    }
    arrays = {}
    for name, value in named.items():
        array = value if isinstance(value, pd.Series) else np.asarray(value, dtype=float)
        values = np.asarray(array, dtype=float)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            raise ValueError(
                f"{name} has {int(bad.sum())} negative or non-finite value(s); order values, "
                "rates, lifetimes and costs must be finite and >= 0."
            )
        arrays[name] = array
    result = (
        arrays["avg_order_value"] * arrays["purchases_per_year"] * arrays["lifetime_years"]
        - arrays["acquisition_cost"]
    )
    if np.ndim(result) == 0:
        return float(result)
    return result


def holdout_predicted_purchases(
    model, cal_holdout: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    """The calibration RFM table and the purchases the model predicts for the holdout.

    The horizon is the holdout's length (``duration_holdout``), one per customer when
    they differ. Shared by :func:`holdout_metrics` and the calibration chart, so
    both judge the model on the same predictions.
    """
    missing = [c for c in _HOLDOUT_COLUMNS if c not in cal_holdout.columns]
    if missing:
        raise ValueError(
            f"cal_holdout lacks the column(s) {missing}; build it with "
            "segml.features.calibration_holdout(..., time_unit=..., unit_multiplier=...)."
        )
    rfm = cal_holdout[[f"{c}_cal" for c in _RFM_COLUMNS]].set_axis(list(_RFM_COLUMNS), axis=1)
    duration = cal_holdout["duration_holdout"].to_numpy(dtype=float)
    horizon = duration[0] if np.all(duration == duration[0]) else duration
    return rfm, model.expected_purchases(rfm, horizon=horizon).to_numpy()


def holdout_metrics(model, cal_holdout: pd.DataFrame) -> dict[str, float]:
    """Accuracy of a fitted CLV model on a holdout period: purchases and spend.

    The model, fitted on the calibration period, predicts each customer's repeat
    purchases over the holdout (``duration_holdout`` periods) and their spend
    (purchases times expected spend per purchase). Actual spend is
    ``frequency_holdout * monetary_value_holdout``.

    Parameters
    ----------
    model : segml.models.CLVModel
        Fitted on the calibration columns.
    cal_holdout : pandas.DataFrame
        From :func:`segml.features.calibration_holdout` (lifetimes'
        ``calibration_and_holdout_data`` columns).

    Returns
    -------
    dict
        ``purchases_mae``, ``purchases_rmse``, ``purchases_total_error_pct`` (total
        predicted minus total actual, in % of actual) and the same for ``spend_*``,
        plus ``n_customers``. Floats, ready to log as metrics.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> cal = pd.DataFrame({"frequency_cal": [0.0, 4.0], "recency_cal": [0.0, 30.0],
    ...     "T_cal": [38.0, 38.0], "monetary_value_cal": [0.0, 50.0],
    ...     "frequency_holdout": [0.0, 2.0], "monetary_value_holdout": [0.0, 40.0],
    ...     "duration_holdout": [39.0, 39.0]})
    >>> metrics = holdout_metrics(model, cal)
    >>> round(metrics["purchases_mae"], 3), round(metrics["spend_total_error_pct"], 1)
    (0.265, 50.2)
    """
    rfm, predicted_purchases = holdout_predicted_purchases(model, cal_holdout)
    predicted_spend = predicted_purchases * model.expected_spend(rfm).to_numpy()
    actual_purchases = cal_holdout["frequency_holdout"].to_numpy(dtype=float)
    actual_spend = actual_purchases * cal_holdout["monetary_value_holdout"].to_numpy(dtype=float)
    metrics = {"n_customers": float(len(rfm))}
    for name, predicted, actual in (
        ("purchases", predicted_purchases, actual_purchases),
        ("spend", predicted_spend, actual_spend),
    ):
        error = predicted - actual
        metrics[f"{name}_mae"] = float(np.mean(np.abs(error)))
        metrics[f"{name}_rmse"] = float(np.sqrt(np.mean(error**2)))
        total = actual.sum()
        metrics[f"{name}_total_error_pct"] = (
            float(100 * error.sum() / total) if total > 0 else float("nan")
        )
    return metrics
