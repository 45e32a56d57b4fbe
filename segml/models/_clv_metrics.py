"""CLV yardsticks: the practitioners' simple formula and holdout accuracy of a fitted model."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["cumulative_repeat_transactions", "holdout_metrics", "simple_clv"]

# Days per period of a CLV model's time_unit, as the RFM tables count them ("W" is days / 7).
_DAYS_PER_UNIT = {"D": 1.0, "W": 7.0}

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
    # A model without a spend model (purchases-only logs) needs no monetary columns.
    with_spend = getattr(model, "gamma_gamma_params_", None) is not None
    needed = [c for c in _HOLDOUT_COLUMNS if with_spend or not c.startswith("monetary")]
    missing = [c for c in needed if c not in cal_holdout.columns]
    if missing:
        raise ValueError(
            f"cal_holdout lacks the column(s) {missing}; build it with "
            "segml.features.calibration_holdout(..., time_unit=..., unit_multiplier=...)."
        )
    columns = [c for c in _RFM_COLUMNS if with_spend or c != "monetary_value"]
    rfm = cal_holdout[[f"{c}_cal" for c in columns]].set_axis(columns, axis=1)
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
        predicted minus total actual, in % of actual) and the same for ``spend_*``
        (absent for a model fitted with ``spend_model=None``), plus ``n_customers``.
        Floats, ready to log as metrics.

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
    actual_purchases = cal_holdout["frequency_holdout"].to_numpy(dtype=float)
    compared = [("purchases", predicted_purchases, actual_purchases)]
    if getattr(model, "gamma_gamma_params_", None) is not None:
        predicted_spend = predicted_purchases * model.expected_spend(rfm).to_numpy()
        actual_spend = actual_purchases * cal_holdout["monetary_value_holdout"].to_numpy(
            dtype=float
        )
        compared.append(("spend", predicted_spend, actual_spend))
    metrics = {"n_customers": float(len(rfm))}
    for name, predicted, actual in compared:
        error = predicted - actual
        metrics[f"{name}_mae"] = float(np.mean(np.abs(error)))
        metrics[f"{name}_rmse"] = float(np.sqrt(np.mean(error**2)))
        total = actual.sum()
        metrics[f"{name}_total_error_pct"] = (
            float(100 * error.sum() / total) if total > 0 else float("nan")
        )
    return metrics


def cumulative_repeat_transactions(
    model,
    transactions: pd.DataFrame,
    *,
    calibration_end,
    observation_end,
    period_days: int = 7,
    days_per_unit: float | None = None,
) -> pd.DataFrame:
    """Actual and expected repeat transactions of a cohort, period by period (tracking plot).

    The cohort is every customer whose first purchase is on or before
    ``calibration_end`` (the customers a calibration-period model was fitted on).
    A repeat transaction is a day with a purchase after the customer's first day
    (lifetimes' ``frequency`` counts the same). The model's expectation for the
    cohort by day ``d`` is the sum, over customers, of the expected repeat purchases
    of a new customer (``model.expected_purchases_new_customer``) over the time since
    their first purchase: Fader, Hardie & Lee (2005), Figure 2, for any purchase model.
    It depends on the first-purchase days only, so it is evaluated once per distinct
    first day and period.

    Parameters
    ----------
    model : segml.models.CLVModel
        Fitted on the calibration period (times in ``model.time_unit``).
    transactions : pandas.DataFrame
        Clean transactions with ``customer_id`` and ``timestamp``.
    calibration_end, observation_end : date-like
        Last day of the calibration period and of the tracked period (inclusive).
    period_days : int, default 7
        Width of each period (7: weeks, as in the paper).
    days_per_unit : float, optional
        Days per ``model.time_unit`` period; default 1 for ``"D"`` and 7 for ``"W"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``period`` (1, 2, ...): ``period_end`` (the last day),
        ``actual``, ``expected`` (repeat transactions in the period),
        ``actual_cumulative``, ``expected_cumulative`` and ``holdout`` (True for
        periods ending after ``calibration_end``).

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.clv import CLVModel, _example_document
    >>> model = CLVModel.from_dict(_example_document())
    >>> log = pd.DataFrame({"customer_id": ["a", "a", "b", "a"],
    ...     "timestamp": pd.to_datetime(["2020-01-01", "2020-01-09", "2020-01-03", "2020-01-20"])})
    >>> table = cumulative_repeat_transactions(model, log, calibration_end="2020-01-10",
    ...                                        observation_end="2020-01-21")
    >>> table[["actual_cumulative", "holdout"]].values.tolist()
    [[0, False], [1, True], [2, True]]
    >>> table["expected_cumulative"].round(3).tolist()
    [0.077, 0.179, 0.275]
    """
    if days_per_unit is None:
        if model.time_unit not in _DAYS_PER_UNIT:
            raise ValueError(
                f"Pass days_per_unit for a model with time_unit={model.time_unit!r} (days per "
                "period of the model's time unit)."
            )
        days_per_unit = _DAYS_PER_UNIT[model.time_unit]
    if not (isinstance(period_days, int | np.integer) and period_days >= 1):
        raise ValueError(f"period_days must be a whole number of days >= 1, got {period_days!r}.")
    missing = [c for c in ("customer_id", "timestamp") if c not in transactions.columns]
    if missing:
        raise ValueError(
            f"transactions lack the column(s) {missing}; load them with segml.load_transactions."
        )
    calibration_end = pd.Timestamp(calibration_end).normalize()
    observation_end = pd.Timestamp(observation_end).normalize()
    if observation_end < calibration_end:
        raise ValueError(
            f"observation_end {observation_end.date()} is before calibration_end "
            f"{calibration_end.date()}."
        )
    days = pd.DataFrame(
        {
            "customer_id": transactions["customer_id"].to_numpy(),
            "day": pd.to_datetime(transactions["timestamp"]).dt.normalize().to_numpy(),
        }
    ).drop_duplicates()
    first = days.groupby("customer_id", sort=False)["day"].transform("min")
    cohort = (first <= calibration_end) & (days["day"] <= observation_end)
    days, first = days[cohort], first[cohort]
    if days.empty:
        raise ValueError(
            f"No customer made a first purchase on or before calibration_end "
            f"{calibration_end.date()}; there is no cohort to track."
        )
    origin = first.min()
    n_periods = (observation_end - origin).days // period_days + 1
    period_end_day = np.minimum(
        np.arange(1, n_periods + 1) * period_days - 1, (observation_end - origin).days
    )
    repeat = days["day"] > first
    repeat_offset = (days.loc[repeat, "day"] - origin).dt.days.to_numpy()
    actual = np.bincount(repeat_offset // period_days, minlength=n_periods)[:n_periods]

    # Expected: one row per distinct first day, one column per period end.
    first_day = days.groupby("customer_id", sort=False)["day"].min()
    first_offset, first_count = np.unique(
        (first_day - origin).dt.days.to_numpy(), return_counts=True
    )
    elapsed = np.maximum(period_end_day[None, :] - first_offset[:, None], 0) / days_per_unit
    expected_cumulative = first_count @ model.expected_purchases_new_customer(elapsed)
    expected = np.diff(expected_cumulative, prepend=0.0)
    period_end = origin + pd.to_timedelta(period_end_day, unit="D")
    table = pd.DataFrame(
        {
            "period_end": period_end,
            "actual": actual,
            "expected": expected,
            "actual_cumulative": np.cumsum(actual),
            "expected_cumulative": expected_cumulative,
            "holdout": period_end > calibration_end,
        },
        index=pd.RangeIndex(1, n_periods + 1, name="period"),
    )
    return table
