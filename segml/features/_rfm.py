"""RFM features, exactly as lifetimes defines them, computed in one columnar pass.

Definitions (Fader, Hardie & Lee 2005; lifetimes ``summary_data_from_transaction_data``):
purchases are first bucketed into periods of ``time_unit`` (days or calendar weeks
starting on Monday); several purchases in one period count as one, with their amounts
summed. Then per customer:

- ``frequency``: number of periods with a purchase, minus one (repeat purchases);
- ``recency``: time from the first to the last purchase period;
- ``T``: time from the first purchase period to the period of ``as_of``;
- ``monetary_value``: mean amount of the repeat-purchase periods (0 without repeats).

Times are in units of ``time_unit`` divided by ``unit_multiplier``: ``time_unit="D",
unit_multiplier=7`` gives continuous weeks (days / 7), the unit of the published
CDNOW results.

The ids become integer codes in sorted-id order (``segml.features._codes``); then
per-code counts, sums and minima over the rows, plus one plain sort of a
(customer, period) integer key to find the orders that share a period, do the work;
nothing else is sorted or gathered. The whole-period arithmetic that defines
``frequency``, ``recency`` and ``T`` is lifetimes' own, so they are bitwise equal to
lifetimes'; ``monetary_value`` sums the same amounts in another order and agrees to
rounding (about 1e-15 relative for positive amounts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segml.features._codes import customer_codes

__all__ = ["CALENDAR_COLUMNS", "LIFETIMES_COLUMNS", "calibration_holdout", "rfm_summary"]

LIFETIMES_COLUMNS = ("frequency", "recency", "T", "monetary_value")
CALENDAR_COLUMNS = (
    "days_since_last_purchase",
    "n_orders",
    "total_spend",
    "avg_order_value",
    "tenure_days",
    "first_purchase",
    "last_purchase",
)
_REQUIRED = ("customer_id", "timestamp", "amount")
_TIME_UNITS = ("D", "W")
# 1970-01-01 is a Thursday; pandas' weekly periods ("W" = "W-SUN") start on Monday,
# so shifting day numbers by 3 makes integer division by 7 give the week.
_EPOCH_TO_MONDAY_DAYS = 3
_NS_PER_DAY = 86_400 * 10**9


class FeatureError(ValueError):
    """The transactions or arguments given to a feature function cannot be used."""


def _check_time_unit(time_unit: str, unit_multiplier: float) -> None:
    if time_unit not in _TIME_UNITS:
        raise FeatureError(
            f"time_unit must be one of {list(_TIME_UNITS)} (days or calendar weeks), got "
            f"{time_unit!r}. For weeks as days / 7, use time_unit='D', unit_multiplier=7."
        )
    if not (isinstance(unit_multiplier, int | float) and unit_multiplier > 0):
        raise FeatureError(f"unit_multiplier must be a positive number, got {unit_multiplier!r}.")


def _check_transactions(transactions: pd.DataFrame) -> None:
    if not isinstance(transactions, pd.DataFrame):
        raise FeatureError(
            f"transactions must be a pandas DataFrame, got {type(transactions).__name__}; "
            "load files with segml.load_transactions first."
        )
    missing = [c for c in _REQUIRED if c not in transactions.columns]
    if missing:
        raise FeatureError(
            f"transactions lack the column(s) {missing}; found {list(transactions.columns)}. "
            "Map your column names with segml.load_transactions(customer_id=..., "
            "timestamp=..., amount=...)."
        )
    if not pd.api.types.is_datetime64_any_dtype(transactions["timestamp"]):
        raise FeatureError(
            f"Column 'timestamp' has dtype {transactions['timestamp'].dtype}, not datetime; "
            "load the data with segml.load_transactions, which parses and checks it."
        )
    for column in _REQUIRED:
        missing = int(transactions[column].isna().sum())
        if missing:
            raise FeatureError(
                f"Column {column!r} has {missing} missing value(s); load the data with "
                "segml.load_transactions, which drops and counts them."
            )
    if not pd.api.types.is_numeric_dtype(transactions["amount"]):
        raise FeatureError(
            f"Column 'amount' has dtype {transactions['amount'].dtype}, not numeric; "
            "load the data with segml.load_transactions, which parses and checks it."
        )


def _day(value, name: str = "as_of") -> np.datetime64:
    """A date-like as a day (time of day dropped), as lifetimes' ``to_period('D')``."""
    if isinstance(value, bool | int | float | np.integer | np.floating):
        # pd.Timestamp(19980630) is 1970-01-01 plus 19,980,630 ns: a silent wrong date.
        raise FeatureError(
            f"{name}={value!r} is a number, not a date; pass a date such as '1998-06-30'."
        )
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise FeatureError(f"Cannot read {name}={value!r} as a date: {exc}") from None
    if stamp is pd.NaT:
        raise FeatureError(f"{name} must be a date, got a missing value (NaT).")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.date(), "D")


def _period_of_day(day_number, time_unit: str):
    """Period number of a day number (days since 1970-01-01) for the time unit."""
    if time_unit == "D":
        return day_number
    return (day_number + _EPOCH_TO_MONDAY_DAYS) // 7


def _stamps_ns(timestamps: pd.Series) -> np.ndarray:
    if getattr(timestamps.dt, "tz", None) is not None:
        timestamps = timestamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return timestamps.to_numpy(dtype="datetime64[ns]")


def rfm_summary(
    transactions: pd.DataFrame,
    *,
    as_of,
    time_unit: str = "D",
    unit_multiplier: float = 1,
) -> pd.DataFrame:
    """One row of RFM features per customer, as of a date.

    Parameters
    ----------
    transactions : pandas.DataFrame
        Clean transactions with ``customer_id``, ``timestamp`` and ``amount``
        (see :func:`segml.load_transactions`). Rows after the day ``as_of`` are
        ignored; customers whose first purchase is after ``as_of`` do not appear.
    as_of : date-like
        End of the observation period (inclusive, whole day). Required: features
        depend on it, and an implicit "today" makes runs irreproducible.
    time_unit : {"D", "W"}, default "D"
        Period that purchases are bucketed into and that times are measured in:
        days, or calendar weeks starting on Monday (lifetimes' ``freq``).
    unit_multiplier : float, default 1
        Times are divided by this (lifetimes' ``freq_multiplier``): ``"D"`` with 7
        gives continuous weeks, the unit of the published CDNOW estimates.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (sorted), with float64 ``frequency``, ``recency``,
        ``T``, ``monetary_value`` (lifetimes' definitions, see the module docstring)
        and the calendar columns ``days_since_last_purchase`` (int64),
        ``n_orders`` (int64, transactions), ``total_spend`` (float64, every
        purchase), ``avg_order_value`` (``total_spend / n_orders``),
        ``tenure_days`` (int64, first purchase to ``as_of``), ``first_purchase`` and
        ``last_purchase`` (timestamps).

    Notes
    -----
    With ``time_unit="W"`` lifetimes keeps every purchase in the week of its
    ``observation_period_end``, even the days after it; segml never reads past
    ``as_of``. The two agree when ``as_of`` is a Sunday (the end of its week).

    Examples
    --------
    >>> import pandas as pd
    >>> from segml import rfm_summary
    >>> log = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-11", "2024-01-05"]),
    ...     "amount": [10.0, 5.0, 20.0, 8.0],
    ... })
    >>> rfm = rfm_summary(log, as_of="2024-01-31")
    >>> rfm[["frequency", "recency", "T", "monetary_value", "n_orders", "total_spend"]]
                 frequency  recency     T  monetary_value  n_orders  total_spend
    customer_id
    a                  1.0     10.0  30.0            20.0         3         35.0
    b                  0.0      0.0  26.0             0.0         1          8.0
    """
    _check_transactions(transactions)
    _check_time_unit(time_unit, unit_multiplier)
    as_of_day = _day(as_of)
    as_of_day_number = int(as_of_day.astype("int64"))
    as_of_period = int(_period_of_day(as_of_day_number, time_unit))
    if transactions.empty:
        raise FeatureError("transactions has 0 rows; there is nothing to summarise.")

    stamps = _stamps_ns(transactions["timestamp"]).view("int64")
    # Floor division gives the day number (also before 1970), in one pass.
    days = stamps // _NS_PER_DAY
    inside = days <= as_of_day_number
    if not inside.any():
        raise FeatureError(
            f"No transaction on or before as_of={as_of_day} (the first is on "
            f"{transactions['timestamp'].min()}); choose a later as_of."
        )
    if not inside.all():
        transactions = transactions.loc[inside]
        stamps, days = stamps[inside], days[inside]
    codes, sorted_ids = customer_codes(transactions["customer_id"])
    n_customers = len(sorted_ids)
    amounts = transactions["amount"].to_numpy(dtype="float64")

    # Counts, sums and first/last timestamps per customer code, straight from the
    # rows: nothing is sorted or gathered along with them.
    n_orders = np.bincount(codes, minlength=n_customers)
    first_purchase = np.full(n_customers, np.iinfo(np.int64).max)
    np.minimum.at(first_purchase, codes, stamps)
    last_purchase = np.full(n_customers, np.iinfo(np.int64).min)
    np.maximum.at(last_purchase, codes, stamps)
    first_day = first_purchase // _NS_PER_DAY
    last_day = last_purchase // _NS_PER_DAY
    first_p = _period_of_day(first_day, time_unit)
    last_p = _period_of_day(last_day, time_unit)

    # Purchase periods: a customer's orders in one period count once. Sorting one
    # integer key per row, (customer, period), puts equal pairs next to each other;
    # every row equal to its predecessor is a repeat order in a counted period.
    periods = _period_of_day(days, time_unit)
    first_possible = int(periods.min())
    span = as_of_period - first_possible + 1
    keys = codes * span
    keys += periods
    keys -= first_possible
    keys.sort()
    same_period = keys[1:] == keys[:-1]
    n_periods = n_orders - np.bincount(keys[1:][same_period] // span, minlength=n_customers)

    # lifetimes' monetary value is the mean over the periods after the first of the
    # period sums, i.e. the repeat periods' orders summed and divided by their count.
    # Summing rows in row order instead of period by period changes only rounding.
    # The sorted keys are spent; their memory takes each row's first period, then the
    # repeat amounts (fresh memory costs as much as the arithmetic here).
    in_first_period = periods == np.take(first_p, codes, out=keys)
    repeat_amounts = keys.view(np.float64)
    np.copyto(repeat_amounts, amounts)
    repeat_amounts[in_first_period] = 0.0
    repeat_sum = np.bincount(codes, weights=repeat_amounts, minlength=n_customers)
    total_spend = np.bincount(codes, weights=amounts, minlength=n_customers)

    frequency = (n_periods - 1).astype("float64")
    # Same arithmetic as lifetimes: whole periods as float, then / freq_multiplier.
    recency = (last_p - first_p).astype("float64") / unit_multiplier
    T = (as_of_period - first_p).astype("float64") / unit_multiplier
    repeats = n_periods - 1
    monetary_value = np.zeros(repeats.size)
    np.divide(repeat_sum, repeats, out=monetary_value, where=repeats > 0)
    # Every id left after the as_of filter has purchases, so the codes present are
    # 0..n-1 and the sorted ids line up with the customer rows.
    index = pd.Index(pd.array(sorted_ids, dtype="str"), name="customer_id")
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": recency,
            "T": T,
            "monetary_value": monetary_value,
            "days_since_last_purchase": as_of_day_number - last_day,
            "n_orders": n_orders,
            "total_spend": total_spend,
            "avg_order_value": total_spend / n_orders,
            "tenure_days": as_of_day_number - first_day,
            "first_purchase": first_purchase.view("datetime64[ns]"),
            "last_purchase": last_purchase.view("datetime64[ns]"),
        },
        index=index,
        copy=False,  # the arrays are ours alone: skip consolidating them into a block
    )


def calibration_holdout(
    transactions: pd.DataFrame,
    *,
    calibration_end,
    observation_end,
    time_unit: str = "D",
    unit_multiplier: float = 1,
) -> pd.DataFrame:
    """Split the log into a calibration summary and what happened in the holdout.

    Equal to lifetimes' ``calibration_and_holdout_data`` with a monetary column,
    for day-resolution timestamps (lifetimes compares raw timestamps with the
    calibration end; here both ends are whole days, inclusive).

    Parameters
    ----------
    transactions : pandas.DataFrame
        Clean transactions (``customer_id``, ``timestamp``, ``amount``).
    calibration_end : date-like
        Last day of the calibration period (inclusive).
    observation_end : date-like
        Last day of the holdout period (inclusive); after ``calibration_end``.
    time_unit, unit_multiplier
        As in :func:`rfm_summary`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (customers first seen in calibration):
        ``frequency_cal``, ``recency_cal``, ``T_cal``, ``monetary_value_cal``;
        ``frequency_holdout`` (periods with a purchase in the holdout),
        ``monetary_value_holdout`` (mean holdout transaction amount, 0 if none) and
        ``duration_holdout`` (holdout length in time units).

    Examples
    --------
    >>> from segml import calibration_holdout, load_cdnow
    >>> split = calibration_holdout(
    ...     load_cdnow(sample=True), calibration_end="1997-09-30",
    ...     observation_end="1998-06-30", unit_multiplier=7)
    >>> len(split), float(split["duration_holdout"].iloc[0])
    (2357, 39.0)
    """
    _check_transactions(transactions)
    _check_time_unit(time_unit, unit_multiplier)
    cal_day = _day(calibration_end, "calibration_end")
    obs_day = _day(observation_end, "observation_end")
    if obs_day <= cal_day:
        raise FeatureError(
            f"observation_end ({obs_day}) must be after calibration_end ({cal_day})."
        )
    calibration = rfm_summary(
        transactions, as_of=cal_day, time_unit=time_unit, unit_multiplier=unit_multiplier
    )[list(LIFETIMES_COLUMNS)]
    calibration.columns = [f"{c}_cal" for c in LIFETIMES_COLUMNS]

    days = _stamps_ns(transactions["timestamp"]).astype("datetime64[D]").astype("int64")
    cal_n, obs_n = int(cal_day.astype("int64")), int(obs_day.astype("int64"))
    in_holdout = (days > cal_n) & (days <= obs_n)
    if not in_holdout.any():
        raise FeatureError(
            f"No transactions between calibration_end={cal_day} and observation_end={obs_day}; "
            "the holdout period is empty."
        )
    holdout = pd.DataFrame(
        {
            "customer_id": transactions["customer_id"].to_numpy()[in_holdout],
            "period": _period_of_day(days[in_holdout], time_unit),
            "amount": transactions["amount"].to_numpy(dtype="float64")[in_holdout],
        }
    )
    # As lifetimes: purchase periods counted, but the mean is over raw transactions.
    grouped = holdout.groupby("customer_id", sort=False)
    holdout_frame = pd.DataFrame(
        {
            "frequency_holdout": grouped["period"].nunique().astype("float64"),
            "monetary_value_holdout": grouped["amount"].mean(),
        }
    )
    combined = calibration.join(holdout_frame, how="left")
    combined[["frequency_holdout", "monetary_value_holdout"]] = combined[
        ["frequency_holdout", "monetary_value_holdout"]
    ].fillna(0.0)
    holdout_periods = _period_of_day(obs_n, time_unit) - _period_of_day(cal_n, time_unit)
    combined["duration_holdout"] = float(holdout_periods) / unit_multiplier
    return combined
