"""Churn labels and churn features, computed without looking past ``as_of``.

A churn model learns from the past and is judged on the future, so two things must
never mix: the *features* of a customer at ``as_of`` read only transactions up to
and including the day ``as_of``, and the *label* reads only the ``horizon_days``
days after it.
:func:`churn_labels` and :func:`churn_features` enforce that split; the same
:func:`churn_features` call builds the training table (an earlier ``as_of``) and the
scoring table (today), so a model never sees features computed two different ways.

Examples
--------
>>> import pandas as pd
>>> from segml.features._churn import churn_labels
>>> log = pd.DataFrame({
...     "customer_id": ["a", "a", "b", "c"],
...     "timestamp": pd.to_datetime(["2024-01-05", "2024-03-10", "2024-01-20", "2024-02-25"]),
...     "amount": [10.0, 20.0, 15.0, 8.0],
... })
>>> churn_labels(log, as_of="2024-01-31", horizon_days=39).to_dict()
{'a': 0, 'b': 1}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from segml.features._codes import (
    _segment_starts,
    customer_codes,
    distinct_periods,
    sum_by_customer,
)
from segml.features._rfm import (
    FeatureError,
    _day,
    _stamps_ns,
    rfm_summary,
)

__all__ = [
    "CHURN_FEATURE_DESCRIPTIONS",
    "ChurnInputError",
    "churn_features",
    "churn_labels",
]


class ChurnInputError(FeatureError):
    """Churn labels, features or training data that cannot be used as given."""


# The calendar and lifetimes columns of rfm_summary that describe a customer. The
# first/last purchase dates are left out: as absolute dates they would let a model
# learn the calendar of the training cutoff instead of customer behaviour.
_RFM_COLUMNS = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "days_since_last_purchase",
    "n_orders",
    "total_spend",
    "avg_order_value",
    "tenure_days",
)

#: What each churn feature means (``{w}`` is a window length from ``windows_days``).
CHURN_FEATURE_DESCRIPTIONS = {
    "gap_mean_days": "mean days between consecutive purchase days (0 for a single purchase day)",
    "gap_std_days": "standard deviation of those gaps (0 with fewer than two gaps)",
    "gap_max_days": "longest gap between purchase days (0 for a single purchase day)",
    "gap_last_days": "the most recent gap between purchase days (0 for a single purchase day)",
    "days_over_mean_gap": "days since the last purchase minus the mean gap: > 0 means overdue",
    "orders_last_{w}d": "orders in the last w days up to as_of",
    "orders_prev_{w}d": "orders in the w days before that",
    "order_trend_{w}d": "orders_last_{w}d - orders_prev_{w}d",
    "spend_last_{w}d": "spend in the last w days up to as_of",
    "spend_prev_{w}d": "spend in the w days before that",
    "spend_trend_{w}d": "spend_last_{w}d - spend_prev_{w}d",
    "spend_share_last_{w}d": "share of all spend to date made in the last w days",
    "quantity_total": "units bought to date (only when the log has a quantity column)",
    "quantity_per_order": "units per order (only with quantity)",
    "quantity_last_{w}d": "units bought in the last w days (only with quantity)",
}


def _as_day(value, name: str = "as_of") -> pd.Timestamp:
    """A date-like as midnight of its day, read exactly as :func:`rfm_summary` reads it."""
    try:
        return pd.Timestamp(_day(value, name))
    except FeatureError as exc:
        raise ChurnInputError(str(exc)) from None


def _check_datetime(timestamps: pd.Series) -> None:
    if not pd.api.types.is_datetime64_any_dtype(timestamps):
        raise ChurnInputError(
            f"Column 'timestamp' has dtype {timestamps.dtype}, not datetime; load the data "
            "with segml.load_transactions, which parses and checks it."
        )


def _days(timestamps: pd.Series) -> pd.Series:
    """Timestamps as days (midnight), naive UTC, as :func:`rfm_summary` buckets them."""
    _check_datetime(timestamps)
    if getattr(timestamps.dt, "tz", None) is not None:
        timestamps = timestamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return timestamps.dt.normalize()


def _day_stamps(timestamps: pd.Series) -> np.ndarray:
    """The days of :func:`_days` as a ``datetime64[D]`` array (NaT stays NaT)."""
    _check_datetime(timestamps)
    return _stamps_ns(timestamps).astype("datetime64[D]")


def _check_columns(transactions: pd.DataFrame, required: Iterable[str]) -> None:
    if not isinstance(transactions, pd.DataFrame):
        raise ChurnInputError(
            f"transactions must be a pandas DataFrame, got {type(transactions).__name__}."
        )
    missing = [column for column in required if column not in transactions.columns]
    if missing:
        raise ChurnInputError(
            f"transactions lack the column(s) {missing}; map your column names onto "
            "customer_id, timestamp and amount when loading (segml.load_transactions)."
        )


def churn_labels(
    transactions: pd.DataFrame,
    *,
    as_of,
    horizon_days: int,
    data_end=None,
) -> pd.Series:
    """Label each customer known at ``as_of``: 1 if they buy nothing in the horizon after it.

    Time is counted in days, as in :func:`segml.features.rfm_summary`: ``as_of`` is a
        day, and its purchases belong to the past. A customer is *known* at ``as_of`` if
        their first purchase is on or before that day; customers first seen later are not
        in the result (they could not have been scored at ``as_of``). A known customer
        *churned* (label 1) if they make no purchase on a day ``d`` with
        ``as_of < d <= as_of + horizon_days``: a purchase on ``as_of`` itself is in the
        past, one on the last day of the horizon still counts as staying.

        Parameters
        ----------
        transactions : pandas.DataFrame
            Columns ``customer_id`` and ``timestamp`` (naive datetimes); other columns
            are ignored.
        as_of : str or pandas.Timestamp
            The scoring day (a time of day is dropped).
        horizon_days : int
            Number of days after ``as_of`` in which a purchase means "stayed".
        data_end : str or pandas.Timestamp, optional
            Last day the log covers. Defaults to the day of the latest timestamp in
            ``transactions``. A horizon ending after it is refused: customers would be
            labelled churned only because their purchases were not recorded yet.

        Returns
        -------
        pandas.Series
            int64 named ``churned``, indexed by ``customer_id`` (sorted).

        Raises
        ------
        ChurnInputError
            If columns are missing, ``horizon_days`` is not a positive integer, the
            horizon runs past ``data_end``, or no customer is known at ``as_of``.

        Examples
        --------
        ``a`` buys again on the last day of the horizon (stays); ``b`` does not (churns);
        ``c`` first buys after ``as_of`` (not labelled).

        >>> import pandas as pd
        >>> log = pd.DataFrame({
        ...     "customer_id": ["a", "a", "b", "c"],
        ...     "timestamp": pd.to_datetime(
        ...         ["2024-01-01", "2024-01-31", "2024-01-02", "2024-01-15"]),
        ... })
        >>> churn_labels(log, as_of="2024-01-10", horizon_days=21)
        customer_id
        a    0
        b    1
        Name: churned, dtype: int64
    """
    _check_columns(transactions, ("customer_id", "timestamp"))
    as_of = _as_day(as_of)
    if (
        isinstance(horizon_days, bool)
        or not isinstance(horizon_days, int | np.integer | float)
        or not float(horizon_days).is_integer()
        or horizon_days < 1
    ):
        raise ChurnInputError(
            f"horizon_days must be a positive whole number of days, got {horizon_days!r}."
        )
    horizon_end = as_of + pd.Timedelta(days=int(horizon_days))
    days = _days(transactions["timestamp"])
    end = days.max() if data_end is None else _as_day(data_end, "data_end")
    if horizon_end > end:
        raise ChurnInputError(
            f"The horizon runs past the data: as_of {as_of.date()} + horizon_days="
            f"{horizon_days} ends {horizon_end.date()}, but the log ends {end.date()}. "
            "Every customer would look churned for lack of data; choose an earlier as_of "
            "or a shorter horizon."
        )
    ids = transactions["customer_id"].astype(str)
    known = pd.Index(ids[days <= as_of].unique(), dtype="str").sort_values()
    if len(known) == 0:
        raise ChurnInputError(
            f"No customer has a purchase on or before as_of {as_of.date()} (0 customers "
            f"known); the log starts {days.min().date()}. Choose a later as_of."
        )
    in_horizon = (days > as_of) & (days <= horizon_end)
    stayed = pd.Index(ids[in_horizon].unique())
    labels = pd.Series(
        np.where(known.isin(stayed), 0, 1).astype("int64"),
        index=known.rename("customer_id"),
        name="churned",
    )
    return labels


def churn_features(
    transactions: pd.DataFrame,
    *,
    as_of,
    clv_outputs: pd.DataFrame | None = None,
    windows_days: Sequence[int] = (90,),
) -> pd.DataFrame:
    """Build one row of churn features per customer known at ``as_of``.

    The same function builds the training table (at a past cutoff, beside
    :func:`churn_labels`) and the scoring table (at today's date). It reads only
    transactions on or before the day ``as_of`` (days as in
    :func:`segml.features.rfm_summary`); later ones are dropped before anything is
    computed, so moving, adding or deleting them cannot change a feature.

    The columns are, in order:

    - the RFM summary of :func:`segml.features.rfm_summary` (``frequency``,
      ``recency``, ``T``, ``monetary_value``, ``days_since_last_purchase``,
      ``n_orders``, ``total_spend``, ``avg_order_value``, ``tenure_days``);
    - the numeric columns of ``clv_outputs`` (e.g. ``expected_purchases`` over the
      churn horizon and ``p_alive`` from :class:`segml.models.CLVModel`), which must
      have been computed at the same ``as_of``;
    - behaviour over time that RFM averages away: gaps between purchase days
      (``gap_mean_days``, ``gap_std_days``, ``gap_max_days``, ``gap_last_days``,
      ``days_over_mean_gap``) and, for each window ``w`` in ``windows_days``, orders
      and spend in the last ``w`` days against the ``w`` days before
      (``orders_last_{w}d``, ``orders_prev_{w}d``, ``order_trend_{w}d``,
      ``spend_last_{w}d``, ``spend_prev_{w}d``, ``spend_trend_{w}d``,
      ``spend_share_last_{w}d``);
    - when the log has a ``quantity`` column: ``quantity_total``,
      ``quantity_per_order`` and ``quantity_last_{w}d``.

    :data:`CHURN_FEATURE_DESCRIPTIONS` says what each one means. Every column is
    float64 and none is NaN: quantities that do not exist for a customer with a single
    purchase day (gaps) are 0, which the model tells apart through ``frequency``.

    Parameters
    ----------
    transactions : pandas.DataFrame
        Columns ``customer_id``, ``timestamp``, ``amount`` and optionally ``quantity``.
    as_of : str or pandas.Timestamp
        Features describe customers as they were at the end of this day.
    clv_outputs : pandas.DataFrame, optional
        Indexed by ``customer_id``; must cover every customer known at ``as_of``
        (extra customers are ignored). Its numeric columns are appended as they are.
    windows_days : sequence of int, default (90,)
        Lengths of the recent windows for the trend features.

    Returns
    -------
    pandas.DataFrame
        float64 features indexed by ``customer_id`` (sorted).

    Raises
    ------
    ChurnInputError
        If columns are missing, no customer is known at ``as_of``, ``clv_outputs``
        misses customers, has non-numeric, NaN or clashing columns, or a window is
        not a positive integer.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.features._churn import churn_features
    >>> log = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(
    ...         ["2024-01-01", "2024-01-11", "2024-03-01", "2024-02-20"]),
    ...     "amount": [10.0, 20.0, 30.0, 5.0],
    ... })
    >>> features = churn_features(log, as_of="2024-03-30", windows_days=(30,))
    >>> features.loc["a", ["gap_mean_days", "gap_last_days", "orders_last_30d"]].tolist()
    [30.0, 50.0, 1.0]
    >>> features.loc["b", ["days_since_last_purchase", "gap_mean_days", "spend_prev_30d"]].tolist()
    [39.0, 0.0, 5.0]
    """
    _check_columns(transactions, ("customer_id", "timestamp", "amount"))
    as_of = _as_day(as_of)
    windows = _check_windows(windows_days)

    # Everything below reads ``past`` only: this one mask is the leakage guard. (NaT
    # compares False, so rows without a time are not in the past either.)
    day_stamps = _day_stamps(transactions["timestamp"])
    inside = day_stamps <= as_of.to_datetime64().astype("datetime64[D]")
    if not inside.any():
        raise ChurnInputError(
            f"No transaction on or before as_of {as_of.date()} (0 customers known); the log "
            f"starts {_days(transactions['timestamp']).min().date()}. Choose a later as_of."
        )
    past = transactions if inside.all() else transactions.loc[inside]
    ids = past["customer_id"].astype(str)
    past = past.assign(customer_id=ids)

    rfm = rfm_summary(past, as_of=as_of)
    customers = rfm.index
    # Columns are collected as arrays on the customer axis and framed once: joining
    # frames on a million-string index costs more than computing the features.
    columns = {name: rfm[name].to_numpy(dtype="float64") for name in _RFM_COLUMNS}
    if clv_outputs is not None:
        outputs = _check_clv_outputs(clv_outputs, customers)
        columns.update({name: outputs[name].to_numpy() for name in outputs.columns})

    # The same ids give the same codes as inside rfm_summary: code i is row i of
    # ``customers`` (sorted ids), and every code 0..n-1 has at least one row.
    codes, _ = customer_codes(ids)
    n_customers = len(customers)
    as_of_number = int(as_of.to_datetime64().astype("datetime64[D]").astype("int64"))
    day_number = day_stamps[inside].astype("int64")
    days_ago = as_of_number - day_number
    amounts = past["amount"].to_numpy(dtype="float64")
    if np.isnan(amounts).any():
        # As pandas' groupby sums, which these features were defined with: a missing
        # amount adds nothing.
        amounts = np.where(np.isnan(amounts), 0.0, amounts)

    behaviour = _gap_features(codes, n_customers, day_number, as_of_number)
    total_spend = sum_by_customer(codes, n_customers, amounts)
    for window in windows:
        behaviour.update(_window_features(codes, days_ago, amounts, total_spend, window))
    if "quantity" in past.columns:
        n_orders = sum_by_customer(codes, n_customers)
        behaviour.update(_quantity_features(past["quantity"], codes, days_ago, n_orders, windows))
    clashing = [name for name in behaviour if name in columns]
    if clashing:
        raise ChurnInputError(
            f"clv_outputs has column(s) {clashing} that churn_features computes itself; "
            "pass only the CLV model's outputs (e.g. CLVModel.predict(rfm))."
        )
    columns.update(behaviour)
    # copy=False: the arrays are this call's own; consolidating ~25 of them into one
    # block would copy every feature once more (0.4 s for a million customers).
    return pd.DataFrame(columns, index=customers, copy=False)


def _check_windows(windows_days: Sequence[int]) -> list[int]:
    windows = list(windows_days)
    bad = [w for w in windows if isinstance(w, bool) or not float(w).is_integer() or w < 1]
    if not windows or bad:
        raise ChurnInputError(
            f"windows_days must be positive whole numbers of days, got {windows_days!r}."
        )
    if len(set(windows)) != len(windows):
        raise ChurnInputError(f"windows_days repeats a window: {windows_days!r}.")
    return [int(w) for w in windows]


def _check_clv_outputs(clv_outputs: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
    if not isinstance(clv_outputs, pd.DataFrame):
        raise ChurnInputError(
            f"clv_outputs must be a DataFrame indexed by customer_id, got "
            f"{type(clv_outputs).__name__}."
        )
    clashing = [column for column in clv_outputs.columns if column in _RFM_COLUMNS]
    if clashing:
        raise ChurnInputError(
            f"clv_outputs has column(s) {clashing} that are already RFM features; "
            "pass only the CLV model's outputs (e.g. CLVModel.predict(rfm))."
        )
    repeated = clv_outputs.columns[clv_outputs.columns.duplicated()].unique().tolist()
    if repeated:
        raise ChurnInputError(
            f"clv_outputs repeats the column(s) {repeated}; names must be unique."
        )
    non_numeric = [
        column
        for column in clv_outputs.columns
        if not pd.api.types.is_numeric_dtype(clv_outputs[column])
    ]
    if non_numeric:
        raise ChurnInputError(
            f"clv_outputs column(s) {non_numeric} are not numeric; drop them or "
            "encode them before passing the table."
        )
    index = clv_outputs.index.astype(str)
    missing = customers.difference(index)
    if len(missing):
        raise ChurnInputError(
            f"clv_outputs has no row for {len(missing)} of {len(customers)} customers known "
            f"at as_of (e.g. {list(missing[:3])}); compute it from rfm_summary at the same "
            "as_of."
        )
    outputs = clv_outputs.set_axis(index).loc[customers].astype("float64")
    nan_counts = outputs.isna().sum()
    nan_counts = nan_counts[nan_counts > 0]
    if len(nan_counts):
        raise ChurnInputError(
            f"clv_outputs has NaN values: {nan_counts.to_dict()} (column: count). "
            "Refit the CLV model or fill them before building churn features."
        )
    return outputs


def _gap_features(
    codes: np.ndarray, n_customers: int, day_number: np.ndarray, as_of_number: int
) -> dict[str, np.ndarray]:
    """Gap columns per customer code, from each row's code and day number."""
    # Gaps between distinct purchase *days*, as lifetimes counts repeat purchases: two
    # orders on one day are one visit, not a gap of zero.
    customer, day = distinct_periods(codes, day_number)
    same_customer = customer[1:] == customer[:-1]
    gaps = np.diff(day)[same_customer]
    gap_owner = customer[1:][same_customer]  # sorted, so each customer's gaps are a run

    # Customers with a single purchase day have no gap: every gap column is 0.
    mean, std, longest, last = (np.zeros(n_customers) for _ in range(4))
    if gaps.size:
        starts = _segment_starts(gap_owner)
        counts = np.diff(np.append(starts, gaps.size))
        owner = gap_owner[starts]
        # Integer sums are exact, so the mean is bit for bit the groupby mean.
        mean[owner] = np.add.reduceat(gaps, starts) / counts
        deviation = gaps - np.repeat(mean[owner], counts)
        # Population variance (ddof=0): one gap has spread 0, not NaN.
        std[owner] = np.sqrt(np.add.reduceat(deviation * deviation, starts) / counts)
        longest[owner] = np.maximum.reduceat(gaps, starts)
        last[owner] = gaps[starts + counts - 1]
    customer_ends = np.append(np.flatnonzero(customer[1:] != customer[:-1]), customer.size - 1)
    days_since = (as_of_number - day[customer_ends]).astype("float64")
    return {
        "gap_mean_days": mean,
        "gap_std_days": std,
        "gap_max_days": longest,
        "gap_last_days": last,
        "days_over_mean_gap": days_since - mean,
    }


def _window_features(
    codes: np.ndarray,
    days_ago: np.ndarray,
    amounts: np.ndarray,
    total_spend: np.ndarray,
    window_days: int,
) -> dict[str, np.ndarray]:
    """Window columns per customer code; ``days_ago`` is ``as_of`` minus each row's day."""
    # Windows are half-open (start, end], like the churn horizon, so that the two
    # windows tile the time line and each transaction falls in at most one:
    # day in (as_of - w, as_of] is 0 <= days_ago < w, the window before w <= days_ago < 2w.
    w = window_days
    n_customers = total_spend.size
    last = days_ago < w
    prev = (days_ago >= w) & (days_ago < 2 * w)
    last_codes, prev_codes = codes[last], codes[prev]
    orders_last = sum_by_customer(last_codes, n_customers)
    orders_prev = sum_by_customer(prev_codes, n_customers)
    spend_last = sum_by_customer(last_codes, n_customers, amounts[last])
    spend_prev = sum_by_customer(prev_codes, n_customers, amounts[prev])
    # Total spend can be 0 (free orders); a share of nothing is 0, not NaN. An
    # infinite amount makes inf / inf, which is also 0, as it was with pandas.
    share = np.zeros(n_customers)
    with np.errstate(invalid="ignore"):
        np.divide(spend_last, total_spend, out=share, where=total_spend != 0)
    share[np.isnan(share)] = 0.0
    return {
        f"orders_last_{w}d": orders_last,
        f"orders_prev_{w}d": orders_prev,
        f"order_trend_{w}d": orders_last - orders_prev,
        f"spend_last_{w}d": spend_last,
        f"spend_prev_{w}d": spend_prev,
        f"spend_trend_{w}d": spend_last - spend_prev,
        f"spend_share_last_{w}d": share,
    }


def _quantity_features(
    quantity: pd.Series,
    codes: np.ndarray,
    days_ago: np.ndarray,
    n_orders: np.ndarray,
    windows: list[int],
) -> dict[str, np.ndarray]:
    """Quantity columns per customer code; ``n_orders`` counts each code's rows."""
    quantity = pd.to_numeric(quantity, errors="coerce")
    n_missing = int(quantity.isna().sum())
    if n_missing:
        raise ChurnInputError(
            f"Column 'quantity' has {n_missing} missing or non-numeric value(s) up to as_of; "
            "fill them or drop the column before building churn features."
        )
    units = quantity.to_numpy(dtype="float64")
    total = sum_by_customer(codes, n_orders.size, units)
    out = {"quantity_total": total, "quantity_per_order": total / n_orders}
    for window in windows:
        last = days_ago < window
        out[f"quantity_last_{window}d"] = sum_by_customer(codes[last], n_orders.size, units[last])
    return out
