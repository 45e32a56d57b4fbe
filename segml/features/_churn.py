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

from segml.features._rfm import FeatureError, rfm_summary

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


def _as_day(value) -> pd.Timestamp:
    """A date-like as midnight of its day, as :func:`rfm_summary` reads ``as_of``."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ChurnInputError(f"Cannot read {value!r} as a date: {exc}") from None
    if stamp is pd.NaT:
        raise ChurnInputError("The date must not be missing (NaT).")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.normalize()


def _days(timestamps: pd.Series) -> pd.Series:
    """Timestamps as days (midnight), naive UTC, as :func:`rfm_summary` buckets them."""
    if not pd.api.types.is_datetime64_any_dtype(timestamps):
        raise ChurnInputError(
            f"Column 'timestamp' has dtype {timestamps.dtype}, not datetime; load the data "
            "with segml.load_transactions, which parses and checks it."
        )
    if getattr(timestamps.dt, "tz", None) is not None:
        timestamps = timestamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return timestamps.dt.normalize()


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
    end = days.max() if data_end is None else _as_day(data_end)
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

    # Everything below reads ``past`` only: this one line is the leakage guard.
    days = _days(transactions["timestamp"])
    past = transactions.loc[days <= as_of]
    if past.empty:
        raise ChurnInputError(
            f"No transaction on or before as_of {as_of.date()} (0 customers known); the log "
            f"starts {days.min().date()}. Choose a later as_of."
        )
    past = past.assign(customer_id=past["customer_id"].astype(str), day=days.loc[past.index])

    rfm = rfm_summary(past, as_of=as_of)
    features = rfm.loc[:, list(_RFM_COLUMNS)].astype("float64")
    customers = features.index

    if clv_outputs is not None:
        features = features.join(_check_clv_outputs(clv_outputs, customers))

    features = features.join(_gap_features(past, customers, as_of))
    for window in windows:
        features = features.join(_window_features(past, customers, as_of, window))
    if "quantity" in past.columns:
        features = features.join(_quantity_features(past, customers, as_of, windows))
    return features.astype("float64")


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


def _gap_features(past: pd.DataFrame, customers: pd.Index, as_of: pd.Timestamp) -> pd.DataFrame:
    # Gaps between distinct purchase *days*, as lifetimes counts repeat purchases: two
    # orders on one day are one visit, not a gap of zero.
    days = past.loc[:, ["customer_id", "day"]].drop_duplicates().sort_values(["customer_id", "day"])
    gaps = days.groupby("customer_id", sort=True)["day"].diff().dt.days.dropna()
    gap_customers = days.loc[gaps.index, "customer_id"]
    grouped = gaps.groupby(gap_customers.to_numpy())
    stats = pd.DataFrame(
        {
            "gap_mean_days": grouped.mean(),
            # ddof=0: one gap has spread 0, not NaN.
            "gap_std_days": grouped.std(ddof=0),
            "gap_max_days": grouped.max(),
            "gap_last_days": grouped.last(),
        }
    )
    stats = stats.reindex(customers).fillna(0.0).astype("float64")
    last_day = days.groupby("customer_id", sort=True)["day"].max().reindex(customers)
    days_since = (as_of - last_day).dt.days.astype("float64")
    stats["days_over_mean_gap"] = days_since - stats["gap_mean_days"]
    stats.index.name = "customer_id"
    return stats


def _window_sums(
    past: pd.DataFrame,
    customers: pd.Index,
    start: pd.Timestamp,
    end: pd.Timestamp,
    column: str | None,
) -> pd.Series:
    """Per-customer sum of ``column`` (or row count if None) over days ``start < d <= end``."""
    inside = past.loc[(past["day"] > start) & (past["day"] <= end)]
    grouped = inside.groupby("customer_id", sort=True)
    values = grouped.size() if column is None else grouped[column].sum()
    return values.reindex(customers, fill_value=0).astype("float64")


def _window_features(
    past: pd.DataFrame, customers: pd.Index, as_of: pd.Timestamp, window_days: int
) -> pd.DataFrame:
    # Windows are half-open (start, end], like the churn horizon, so that the two
    # windows tile the time line and each transaction falls in at most one.
    width = pd.Timedelta(days=window_days)
    w = window_days
    orders_last = _window_sums(past, customers, as_of - width, as_of, None)
    orders_prev = _window_sums(past, customers, as_of - 2 * width, as_of - width, None)
    spend_last = _window_sums(past, customers, as_of - width, as_of, "amount")
    spend_prev = _window_sums(past, customers, as_of - 2 * width, as_of - width, "amount")
    total = past.groupby("customer_id", sort=True)["amount"].sum().reindex(customers)
    # Total spend can be 0 (free orders); a share of nothing is 0, not NaN.
    share = (spend_last / total.where(total != 0)).fillna(0.0)
    return pd.DataFrame(
        {
            f"orders_last_{w}d": orders_last,
            f"orders_prev_{w}d": orders_prev,
            f"order_trend_{w}d": orders_last - orders_prev,
            f"spend_last_{w}d": spend_last,
            f"spend_prev_{w}d": spend_prev,
            f"spend_trend_{w}d": spend_last - spend_prev,
            f"spend_share_last_{w}d": share,
        },
        index=customers,
    )


def _quantity_features(
    past: pd.DataFrame, customers: pd.Index, as_of: pd.Timestamp, windows: list[int]
) -> pd.DataFrame:
    quantity = pd.to_numeric(past["quantity"], errors="coerce")
    n_missing = int(quantity.isna().sum())
    if n_missing:
        raise ChurnInputError(
            f"Column 'quantity' has {n_missing} missing or non-numeric value(s) up to as_of; "
            "fill them or drop the column before building churn features."
        )
    past = past.assign(quantity=quantity.astype("float64"))
    grouped = past.groupby("customer_id", sort=True)
    total = grouped["quantity"].sum().reindex(customers)
    out = pd.DataFrame(
        {
            "quantity_total": total,
            "quantity_per_order": total / grouped.size().reindex(customers),
        },
        index=customers,
    )
    for window in windows:
        start = as_of - pd.Timedelta(days=window)
        out[f"quantity_last_{window}d"] = _window_sums(past, customers, start, as_of, "quantity")
    return out.astype("float64")
