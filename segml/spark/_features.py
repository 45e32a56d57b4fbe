"""The scorer's input features on Spark, computed by the pandas path's own function.

:func:`customer_features` is the Spark twin of :func:`segml.scoring.customer_features`
and *is* that function: customers are bucketed by a hash of their id and
:func:`segml.scoring.customer_features` runs on each bucket
(:func:`segml.spark._buckets.apply_per_bucket`, ``groupBy(bucket).applyInPandas``).
Every feature is per customer, so a bucket of whole customers gives each of them
the row the whole log gives: one definition, two engines, equal by construction.
Rows reach pandas in the order Spark read them, so for a log read from one file
even money sums are bitwise those of the pandas path on that file.

Spark itself does only what pandas cannot do per bucket: the input check over
the whole log (one pass: nulls, an ``as_of`` before the data) and the leakage guard
(rows after the day ``as_of`` are dropped before the shuffle).

Days are the calendar dates of ``timestamp``: for a ``TIMESTAMP`` column, in the
session time zone (``spark.sql.session.timeZone``); for ``TIMESTAMP_NTZ`` and ``DATE``
columns, as written. segml's pandas path reads naive timestamps as written and
zone-aware ones in UTC, so run Spark with ``spark.sql.session.timeZone=UTC`` to get
the same days from zone-aware data.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence

import pandas as pd
from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segml.features._churn import _check_windows
from segml.features._rfm import FeatureError, _day
from segml.spark._buckets import ROW, apply_per_bucket

__all__ = ["SparkInputError", "customer_features", "feature_columns"]

_REQUIRED = ("customer_id", "timestamp", "amount")
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
    return list(_pandas_feature_columns(tuple(_check_windows(windows_days)), bool(quantity)))


@functools.lru_cache(maxsize=64)
def _pandas_feature_columns(windows: tuple[int, ...], quantity: bool) -> tuple[str, ...]:
    """The columns :func:`segml.scoring.customer_features` gives, asked of the function.

    One customer with one purchase is enough: the columns depend on the windows and
    on the log's columns only. Asking the pandas function keeps the Spark schema its
    own definition (a column added there is a column here).
    """
    from segml.scoring import customer_features as pandas_customer_features

    probe = pd.DataFrame(
        {"customer_id": ["x"], "timestamp": [pd.Timestamp("2000-01-01")], "amount": [1.0]}
    )
    if quantity:
        probe["quantity"] = 1.0
    features = pandas_customer_features(probe, as_of="2000-01-01", windows_days=windows)
    return tuple(str(c) for c in features.columns)


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
            "or map them in segml.spark.score_file(customer_id=..., timestamp=..., amount=...). "
            "A purchases-only log (no amount) needs the pandas engine."
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
    if ROW in columns:  # the rows' places in the file (see segml.spark._buckets)
        selected.append(F.col(ROW))
    return transactions.select(*selected)


def check_values(frame: DataFrame, as_of: dt.date, **extra: Column) -> Row:
    """One pass over a canonical log: refuse nulls and an ``as_of`` before the data.

    ``extra`` aggregates (name to column) are computed in the same pass. Returns the
    summary row: ``rows``, ``inside`` (rows on or before ``as_of``), ``first_day``,
    ``last_day`` and the ``extra`` names.
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
    aggregates += [column.alias(name) for name, column in extra.items()]
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
    return summary


def timestamps_as_written(frame: DataFrame) -> DataFrame:
    """A canonical log with ``timestamp`` as ``TIMESTAMP_NTZ``: the wall clock pandas reads.

    ``TIMESTAMP`` values become their wall clock in the session time zone (the day
    ``F.to_date`` gives), ``DATE`` values midnight; pandas gets naive datetimes.
    """
    if isinstance(frame.schema["timestamp"].dataType, T.TimestampNTZType):
        return frame
    return frame.withColumn("timestamp", F.col("timestamp").cast("timestamp_ntz"))


def default_buckets(frame: DataFrame, buckets: int | None) -> int:
    """``buckets``, or the session's ``spark.sql.shuffle.partitions``."""
    if buckets is not None:
        if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
            raise SparkInputError(f"partitions must be a positive whole number, got {buckets!r}.")
        return buckets
    return int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions"))


def feature_schema(windows_days: Sequence[int], *, quantity: bool) -> T.StructType:
    """``customer_id`` (string) and every feature (double), in the pandas order."""
    return T.StructType(
        [T.StructField("customer_id", T.StringType(), False)]
        + [
            T.StructField(name, T.DoubleType(), False)
            for name in feature_columns(windows_days, quantity=quantity)
        ]
    )


def _features_of_bucket(as_of_day: dt.date, windows: list[int]):
    """The per-bucket body: :func:`segml.scoring.customer_features`, customer_id a column."""

    def features(rows: pd.DataFrame) -> pd.DataFrame:
        from segml.scoring import customer_features as pandas_customer_features

        table = pandas_customer_features(rows, as_of=as_of_day, windows_days=windows)
        return table.reset_index()

    return features


def customer_features(
    transactions: DataFrame,
    *,
    as_of,
    windows_days: Sequence[int] = (90,),
    partitions: int | None = None,
    check: bool = True,
) -> DataFrame:
    """Every input feature of the scorer, per customer known at ``as_of``, with Spark.

    The Spark twin of :func:`segml.scoring.customer_features`, computed by that
    function on buckets of whole customers: the same columns in the same order, the
    same definitions and numbers, all doubles, no nulls; only transactions up to the
    day ``as_of`` are read. Lazy: nothing runs until the result is used (except the
    input check, one pass, when ``check`` is true).

    Parameters
    ----------
    transactions : pyspark.sql.DataFrame
        Clean transactions: ``customer_id`` (cast to string), ``timestamp``
        (timestamp or date), ``amount`` (numeric) and optionally ``quantity``
        (numeric; adds ``quantity_total``, ``quantity_per_order`` and
        ``quantity_last_{w}d``). Other columns are ignored. Rows are not cleaned:
        use the rules of :func:`segml.load_transactions` upstream
        (:func:`segml.spark.clean_transactions`).
    as_of : date-like
        Features describe customers as they were at the end of this day.
    windows_days : sequence of int, default (90,)
        Recent windows of the trend features (the scorer's ``windows_days``).
    partitions : int, optional
        Number of buckets to hash customers into (one pandas call and one shuffle
        partition each); default ``spark.sql.shuffle.partitions``. A bucket's rows
        are held in memory by one Python worker: choose enough buckets for a few
        million rows each at most.
    check : bool, default True
        Run one pass over the input first to refuse nulls and an ``as_of`` before
        the data with a clear message.

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
    segml.scoring.customer_features : the pandas function run on each bucket.
    """
    try:
        windows = _check_windows(windows_days)
    except ValueError as exc:
        raise SparkInputError(str(exc)) from None
    as_of_day = _as_day(as_of)
    frame = canonical_transactions(transactions)
    buckets = default_buckets(frame, partitions)
    if check:
        check_values(frame, as_of_day)
    # Leakage guard, and no bucket without a customer known at as_of.
    rows = timestamps_as_written(frame).where(F.to_date("timestamp") <= F.lit(as_of_day))
    schema = feature_schema(windows, quantity="quantity" in frame.columns)
    return apply_per_bucket(rows, _features_of_bucket(as_of_day, windows), schema, buckets=buckets)
