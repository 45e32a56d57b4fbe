"""The scorer's input features, computed with Spark: same definitions, same numbers.

:func:`customer_features` is the Spark twin of :func:`segml.scoring.customer_features`
(the churn features of :func:`segml.features.churn_features` plus the
``repurchase_rate`` of :func:`segml.models.scorecard.repurchase_rate`). Column names,
order and definitions are those of the pandas path; every feature is a double.

How it is computed (one shuffle):

1. rows up to the day ``as_of`` are kept and repartitioned by ``customer_id``, so
   every later step is local to a partition;
2. rows are summed per (customer, purchase day): orders, spend, quantity;
3. a window over each customer's purchase days, in time order, gives the gap to the
   previous purchase day and whether a new calendar month starts;
4. one aggregation per customer gives the RFM sums, gap sums, window sums and months,
   from which every feature follows by the formulas of the pandas path.

Counts and days are integers, so ``frequency``, ``recency``, ``T``, the day counts,
``n_orders``, the order windows, ``gap_mean_days``, ``gap_max_days`` and
``gap_last_days`` are exact (bitwise equal to pandas). ``gap_std_days`` (population
standard deviation, ``ddof=0``) comes from exact integer sums of the gaps and their
squares, so it is correctly rounded and independent of row order. Money and quantity
sums are floating-point sums in Spark's order and agree with pandas to rounding
(about 1e-15 relative).

Days are the calendar dates of ``timestamp``: for a ``TIMESTAMP`` column, in the
session time zone (``spark.sql.session.timeZone``); for ``TIMESTAMP_NTZ`` and ``DATE``
columns, as written. segml's pandas path reads naive timestamps as written and
zone-aware ones in UTC, so run Spark with ``spark.sql.session.timeZone=UTC`` to get
the same days from zone-aware data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segml.features._churn import _RFM_COLUMNS, _check_windows
from segml.features._rfm import FeatureError, _day

__all__ = ["SparkInputError", "customer_features", "feature_columns"]

_REQUIRED = ("customer_id", "timestamp", "amount")
_GAP_COLUMNS = (
    "gap_mean_days",
    "gap_std_days",
    "gap_max_days",
    "gap_last_days",
    "days_over_mean_gap",
)
_WINDOW_PATTERNS = (
    "orders_last_{w}d",
    "orders_prev_{w}d",
    "order_trend_{w}d",
    "spend_last_{w}d",
    "spend_prev_{w}d",
    "spend_trend_{w}d",
    "spend_share_last_{w}d",
)
_WINDOW_NAME = re.compile(r"^orders_last_(\d+)d$")


class SparkInputError(ValueError):
    """A Spark input (transactions, model or file) that cannot be scored as given."""


def feature_columns(windows_days: Sequence[int] = (90,), *, quantity: bool) -> list[str]:
    """Names of the scorer's input features, in the order of the pandas path.

    Parameters
    ----------
    windows_days : sequence of int, default (90,)
        Recent windows of the trend features.
    quantity : bool
        Whether the log has a ``quantity`` column (which adds quantity features).

    Returns
    -------
    list of str

    Examples
    --------
    >>> from segml.spark import feature_columns
    >>> feature_columns((30,), quantity=True)[-4:]
    ['quantity_total', 'quantity_per_order', 'quantity_last_30d', 'repurchase_rate']
    >>> len(feature_columns((30, 90), quantity=False))
    29
    """
    windows = _check_windows(windows_days)
    names = list(_RFM_COLUMNS) + list(_GAP_COLUMNS)
    for w in windows:
        names += [pattern.format(w=w) for pattern in _WINDOW_PATTERNS]
    if quantity:
        names += ["quantity_total", "quantity_per_order"]
        names += [f"quantity_last_{w}d" for w in windows]
    return names + ["repurchase_rate"]


def windows_of(columns: Sequence[str]) -> list[int]:
    """The ``windows_days`` behind a list of feature names (from ``orders_last_{w}d``)."""
    return [int(m.group(1)) for c in columns if (m := _WINDOW_NAME.match(c))]


def _as_day(value) -> dt.date:
    """A date-like as its calendar day, read by the pandas path's own rule."""
    try:
        return _day(value).astype(dt.date)
    except FeatureError as exc:
        raise SparkInputError(str(exc)) from None


def canonical_transactions(transactions: DataFrame) -> DataFrame:
    """Check the columns and types of a Spark log; return its canonical columns.

    ``customer_id`` is cast to string (as the pandas path does), ``amount`` and
    ``quantity`` (when present) to double, and ``timestamp`` must already be a
    timestamp or date column.
    """
    if not isinstance(transactions, DataFrame):
        raise SparkInputError(
            f"transactions must be a Spark DataFrame, got {type(transactions).__name__}; "
            "for pandas use segml.scoring.customer_features."
        )
    columns = transactions.columns
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise SparkInputError(
            f"transactions lack the column(s) {missing}; found {columns}. Rename your "
            "columns to customer_id, timestamp and amount (DataFrame.withColumnsRenamed), "
            "or map them in segml.spark.score_file(customer_id=..., timestamp=..., amount=...)."
        )
    types = dict(transactions.dtypes)
    stamp_type = transactions.schema["timestamp"].dataType
    if not isinstance(stamp_type, T.TimestampType | T.TimestampNTZType | T.DateType):
        raise SparkInputError(
            f"Column 'timestamp' has type {types['timestamp']}, not timestamp or date; parse "
            "it first, e.g. F.to_timestamp('timestamp', 'yyyy-MM-dd HH:mm:ss')."
        )
    numeric = (T.NumericType,)
    for name in ("amount", "quantity"):
        if name in columns and not isinstance(transactions.schema[name].dataType, numeric):
            raise SparkInputError(
                f"Column {name!r} has type {types[name]}, not numeric; cast it first, e.g. "
                f"F.col({name!r}).cast('double') (that makes unparseable values null)."
            )
    selected = [
        F.col("customer_id").cast("string").alias("customer_id"),
        F.col("timestamp"),
        F.col("amount").cast("double").alias("amount"),
    ]
    if "quantity" in columns:
        selected.append(F.col("quantity").cast("double").alias("quantity"))
    return transactions.select(*selected)


def check_values(frame: DataFrame, as_of: dt.date) -> int:
    """One pass over a canonical log: refuse nulls and an ``as_of`` before the data.

    Returns the number of rows on or before ``as_of``.
    """
    value_columns = list(frame.columns)
    day = F.to_date("timestamp")
    aggregates = [F.count(F.lit(1)).alias("rows")]
    aggregates += [F.count(F.when(F.col(c).isNull(), 1)).alias(f"null_{c}") for c in value_columns]
    aggregates += [
        F.count(F.when(day <= F.lit(as_of), 1)).alias("inside"),
        F.min(day).alias("first_day"),
        F.max(day).alias("last_day"),
    ]
    summary = frame.agg(*aggregates).first()
    if summary["rows"] == 0:
        raise SparkInputError("transactions has 0 rows; there is nothing to score.")
    nulls = {c: summary[f"null_{c}"] for c in value_columns if summary[f"null_{c}"]}
    if nulls:
        raise SparkInputError(
            f"transactions have missing or unparseable values: {nulls} (column: rows) of "
            f"{summary['rows']} rows. Clean the log first (segml.load_transactions gives the "
            "rules); the Spark path does not drop rows silently."
        )
    if summary["inside"] == 0:
        raise SparkInputError(
            f"No transaction on or before as_of {as_of} (0 customers known); the log runs "
            f"from {summary['first_day']} to {summary['last_day']}. Choose a later as_of."
        )
    return int(summary["inside"])


def _float(column: Column) -> Column:
    return column.cast("double")


def customer_features(
    transactions: DataFrame,
    *,
    as_of,
    windows_days: Sequence[int] = (90,),
    partitions: int | None = None,
    check: bool = True,
) -> DataFrame:
    """Every input feature of the scorer, per customer known at ``as_of``, with Spark.

    The Spark twin of :func:`segml.scoring.customer_features`: the same columns in
    the same order, the same definitions (see :func:`segml.features.churn_features`
    and :func:`segml.models.scorecard.repurchase_rate`), all doubles, no nulls; only
    transactions up to the day ``as_of`` are read. Lazy: nothing runs until the
    result is used (except the input check, one pass, when ``check`` is true).

    Parameters
    ----------
    transactions : pyspark.sql.DataFrame
        Clean transactions: ``customer_id`` (cast to string), ``timestamp``
        (timestamp or date), ``amount`` (numeric) and optionally ``quantity``
        (numeric; adds ``quantity_total``, ``quantity_per_order`` and
        ``quantity_last_{w}d``). Other columns are ignored. Rows are not cleaned:
        use the rules of :func:`segml.load_transactions` upstream.
    as_of : date-like
        Features describe customers as they were at the end of this day.
    windows_days : sequence of int, default (90,)
        Recent windows of the trend features (the scorer's ``windows_days``).
    partitions : int, optional
        Number of partitions to hash customers into; default
        ``spark.sql.shuffle.partitions``.
    check : bool, default True
        Run one pass over the input first to refuse nulls and an ``as_of`` before
        the data with a clear message (otherwise Spark would silently skip nulls
        in sums, or return no rows).

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id`` (string) and the features of
        :func:`segml.spark.feature_columns`, one row per customer, unordered.

    Raises
    ------
    SparkInputError
        Missing columns, wrong column types, null values, no transaction on or before
        ``as_of``, or invalid windows.

    See Also
    --------
    segml.scoring.customer_features : the pandas path these numbers are equal to.
    """
    try:
        windows = _check_windows(windows_days)
    except ValueError as exc:
        raise SparkInputError(str(exc)) from None
    as_of_day = _as_day(as_of)
    frame = canonical_transactions(transactions)
    if check:
        check_values(frame, as_of_day)
    has_quantity = "quantity" in frame.columns
    as_of_lit = F.lit(as_of_day)

    # 1. Leakage guard: nothing after the day as_of is read below.
    rows = frame.withColumn("day", F.to_date("timestamp")).where(F.col("day") <= as_of_lit)
    rows = (
        rows.repartition(partitions, "customer_id")
        if partitions
        else rows.repartition("customer_id")
    )

    # 2. One row per (customer, purchase day). Hash-partitioned by customer_id, this
    #    and the steps below need no further shuffle.
    daily_aggregates = [F.count(F.lit(1)).alias("orders"), F.sum("amount").alias("spend")]
    if has_quantity:
        daily_aggregates.append(F.sum("quantity").alias("units"))
    daily = rows.groupBy("customer_id", "day").agg(*daily_aggregates)

    # 3. Each purchase day against the previous one of the same customer.
    by_day = Window.partitionBy("customer_id").orderBy("day")
    month = F.year("day") * 12 + F.month("day") - 1
    previous_day = F.lag("day").over(by_day)
    previous_month = F.lag(month).over(by_day)
    daily = (
        daily.withColumn("age", F.datediff(as_of_lit, F.col("day")))  # days before as_of, >= 0
        .withColumn("gap", F.datediff(F.col("day"), previous_day).cast("long"))  # null first
        .withColumn("month", month)
        .withColumn("first_day_of_customer", previous_day.isNull())
        # Days are in time order, so distinct months = days that start a new month.
        .withColumn(
            "new_month", F.when(previous_month.isNull() | (previous_month != month), 1).otherwise(0)
        )
    )

    # 4. One aggregation per customer.
    age, orders, spend = F.col("age"), F.col("orders"), F.col("spend")
    aggregates = [
        F.count(F.lit(1)).alias("n_days"),
        F.min("age").alias("age_last"),  # days since the last purchase day
        F.max("age").alias("age_first"),  # days since the first purchase day
        F.sum("orders").alias("n_orders"),
        F.sum("spend").alias("total_spend"),
        F.sum(F.when(~F.col("first_day_of_customer"), spend)).alias("repeat_spend"),
        F.coalesce(F.sum("gap"), F.lit(0)).alias("gap_sum"),
        F.coalesce(F.sum(F.col("gap") * F.col("gap")), F.lit(0)).alias("gap_sumsq"),
        F.coalesce(F.max("gap"), F.lit(0)).alias("gap_max"),
        F.coalesce(F.max_by("gap", "day"), F.lit(0)).alias("gap_last"),
        F.sum("new_month").alias("n_months"),
        F.min("month").alias("first_month"),
    ]
    for w in windows:
        last, prev = age < w, (age >= w) & (age < 2 * w)
        aggregates += [
            F.coalesce(F.sum(F.when(last, orders)), F.lit(0)).alias(f"_orders_last_{w}"),
            F.coalesce(F.sum(F.when(prev, orders)), F.lit(0)).alias(f"_orders_prev_{w}"),
            F.coalesce(F.sum(F.when(last, spend)), F.lit(0.0)).alias(f"_spend_last_{w}"),
            F.coalesce(F.sum(F.when(prev, spend)), F.lit(0.0)).alias(f"_spend_prev_{w}"),
        ]
        if has_quantity:
            aggregates.append(
                F.coalesce(F.sum(F.when(last, F.col("units"))), F.lit(0.0)).alias(
                    f"_units_last_{w}"
                )
            )
    if has_quantity:
        aggregates.append(F.sum("units").alias("units"))
    sums = daily.groupBy("customer_id").agg(*aggregates)

    # 5. The features, by the formulas of the pandas path.
    col = F.col
    repeats = col("n_days") - 1
    gap_mean = F.when(repeats > 0, _float(col("gap_sum")) / _float(repeats)).otherwise(0.0)
    # Population variance from exact integer sums: (n * sum(g^2) - sum(g)^2) / n^2.
    spread = repeats * col("gap_sumsq") - col("gap_sum") * col("gap_sum")
    gap_std = F.when(repeats > 0, F.sqrt(_float(spread) / _float(repeats * repeats))).otherwise(0.0)
    as_of_month = as_of_day.year * 12 + as_of_day.month - 1
    eligible = F.lit(as_of_month) - col("first_month")
    features = {
        "frequency": _float(repeats),
        "recency": _float(col("age_first") - col("age_last")),
        "T": _float(col("age_first")),
        "monetary_value": F.when(repeats > 0, col("repeat_spend") / _float(repeats)).otherwise(0.0),
        "days_since_last_purchase": _float(col("age_last")),
        "n_orders": _float(col("n_orders")),
        "total_spend": col("total_spend"),
        "avg_order_value": col("total_spend") / _float(col("n_orders")),
        "tenure_days": _float(col("age_first")),
        "gap_mean_days": gap_mean,
        "gap_std_days": gap_std,
        "gap_max_days": _float(col("gap_max")),
        "gap_last_days": _float(col("gap_last")),
        "days_over_mean_gap": _float(col("age_last")) - gap_mean,
    }
    for w in windows:
        orders_last = _float(col(f"_orders_last_{w}"))
        orders_prev = _float(col(f"_orders_prev_{w}"))
        spend_last, spend_prev = col(f"_spend_last_{w}"), col(f"_spend_prev_{w}")
        features |= {
            f"orders_last_{w}d": orders_last,
            f"orders_prev_{w}d": orders_prev,
            f"order_trend_{w}d": orders_last - orders_prev,
            f"spend_last_{w}d": spend_last,
            f"spend_prev_{w}d": spend_prev,
            f"spend_trend_{w}d": spend_last - spend_prev,
            # A share of nothing (total spend 0) is 0, not null.
            f"spend_share_last_{w}d": F.when(
                col("total_spend") != 0, spend_last / col("total_spend")
            ).otherwise(0.0),
        }
    if has_quantity:
        features |= {
            "quantity_total": col("units"),
            "quantity_per_order": col("units") / _float(col("n_orders")),
        }
        features |= {f"quantity_last_{w}d": col(f"_units_last_{w}") for w in windows}
    # Months after the first with a purchase, over the months after the first up to
    # as_of's; 0 when as_of is in the first month.
    features["repurchase_rate"] = F.when(
        eligible > 0, _float(col("n_months") - 1) / _float(eligible)
    ).otherwise(0.0)

    names = feature_columns(windows, quantity=has_quantity)  # the pandas order
    return sums.select(col("customer_id"), *[_float(features[name]).alias(name) for name in names])
