"""Clean a transaction log on Spark by the rules of :func:`segml.load_transactions`.

:func:`clean_transactions` is the Spark twin of the loader: same parameters, same
defaults, same rules in the same order, same reasons, and a
:class:`segml.transactions.DataQualityReport` of what was dropped, so the Spark
and pandas paths score the same customers with the same transactions.

How it is computed:

1. Each row's values are parsed by the loader's own functions (customer ids as
   text, timestamps, amounts), in a pandas UDF over Arrow batches, and the row gets
   the first reason of the loader's table that applies to it, or none. Parsing is
   value by value, so it gives what the loader gives for each value (see Notes
   for the one exception). What the loader decides for a whole column (the
   decimal sign, the day/month order, the one currency) is decided from counts
   over every row: each batch reads with a point and month-first and says which
   readings each value allows; a column that turns out to use decimal commas or
   day-first dates is read a second time by that rule, and a column mixing both
   kinds (or currencies) is refused with the loader's message. ``currency``,
   ``currency_column`` and ``order_id`` are pandas-only and refused here.
2. ``returns="net"`` and ``drop_duplicates``: one bucket pass runs the loader's
   own :func:`segml.transactions._net_returns` then
   :func:`segml.transactions._duplicated` (as its ``_finish`` applies it, after
   netting, on the netted amounts and every column) on each bucket of whole
   customers, rows in input order (:func:`segml.spark._buckets.apply_per_bucket`:
   one shuffle of the parsed id, timestamp, amount, reason so far and an equality
   key per extra column). Both rules are per customer (a return nets within its
   customer, equal rows share an id), so a bucket gives each row the reason and
   netted amount the whole log gives it. The parsed rows are cached for the pass
   and the join back on ``_row`` (freed once the labelled rows are cached).
3. What is summed over every customer stays in Spark: the counts per reason, and
   the excess of returns over their purchases (the pandas function words it for
   its bucket only), summed from the ``fully_returned`` rows' negative amounts.
4. The labelled rows are cached, counted per reason (with up to three examples)
   in one pass, and the kept rows are returned.

Input order is the order Spark reads the rows in (``monotonically_increasing_id``):
for one CSV or Parquet file, the file's order.
"""

from __future__ import annotations

import datetime as dt
import warnings
from contextlib import contextmanager
from typing import Any, Literal

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segml.spark._buckets import ROW, apply_per_bucket
from segml.transactions import _N_EXAMPLES, DataQualityReport, TransactionsError

__all__ = ["REASONS", "clean_transactions"]

#: Every reason a row can be dropped for, in the order the rules apply.
REASONS = (
    "missing_customer_id",
    "missing_timestamp",
    "unparseable_timestamp",
    "contradicts_dayfirst",
    "out_of_range_timestamp",
    "after_as_of",
    "missing_amount",
    "unparseable_amount",
    "infinite_amount",
    "zero_amount",
    "negative_amount",
    "return_without_purchase",
    "return_netted",
    "fully_returned",
    "duplicate_row",
)

_PARSED = T.StructType(
    [
        T.StructField("customer_id", T.StringType()),
        T.StructField("timestamp", T.TimestampNTZType()),
        T.StructField("amount", T.DoubleType()),
        T.StructField("reason", T.StringType()),
        T.StructField("zoned", T.BooleanType()),
        T.StructField("currency", T.StringType()),
        T.StructField("decimal_kind", T.StringType()),
        T.StructField("date_kind", T.StringType()),
    ]
)

#: Reasons applied before the amount is read: their rows do not count as amounts
#: read (ambiguous amounts, currencies), as in the loader.
_BEFORE_AMOUNTS = frozenset(REASONS[: REASONS.index("missing_amount")])
#: Reasons applied after the currency is read: their rows count as amounts read.
_AFTER_CURRENCY = frozenset(REASONS[REASONS.index("zero_amount") :])
#: Options of the pandas loader that this engine does not implement.
_PANDAS_ONLY = {
    "currency": "--currency",
    "currency_column": "--currency-column",
    "order_id": "--order-id",
}


@contextmanager
def _quiet_pyspark_pandas_check():
    """Silence PySpark 4.x's notice that pandas >= 3 is not yet fully supported.

    Emitted when a pandas UDF is built; segml's tests check the Spark scores against
    the pandas path row by row on this combination, so the notice is not actionable.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="PySpark does not yet fully support pandas >= 3",
            category=FutureWarning,
        )
        yield


def _parser(
    timestamp_format: str | None,
    timezone: str,
    limit: pd.Timestamp | None,
    zero_amounts: str,
    returns: str,
    decimal: str,
    dayfirst: bool | None,
):
    """The pandas UDF body: raw id, timestamp and amount to parsed values and a reason.

    Each Arrow batch is read by one rule, the same for every batch: ``decimal="auto"``
    reads with a point and ``dayfirst=None`` month-first, and each row says which
    readings it allows (``decimal_kind``, ``date_kind``), so the caller decides for
    the whole column as the loader does and reads again when the rule differs.
    """

    def parse(ids: pd.Series, stamps: pd.Series, amounts: pd.Series) -> pd.DataFrame:
        import numpy as np

        from segml.transactions import _ids_as_text, _parse_amounts, _parse_timestamps

        text_ids = _ids_as_text(ids)
        read = _parse_timestamps(
            stamps, timestamp_format, timezone, False if dayfirst is None else dayfirst
        )
        parsed, note = read.parsed, read.note
        read_amounts = _parse_amounts(amounts, "." if decimal == "auto" else decimal)
        values = read_amounts.values
        reason = pd.Series(None, index=ids.index, dtype=object)

        def mark(name: str, mask) -> None:
            reason[np.asarray(mask, dtype=bool) & reason.isna().to_numpy()] = name

        def kinds(**masks) -> pd.Series:
            kind = pd.Series(None, index=ids.index, dtype=object)
            for name, mask in masks.items():
                if mask is not None:
                    kind[np.asarray(mask, dtype=bool) & kind.isna().to_numpy()] = name
            return kind

        stamp_missing = stamps.isna() | (stamps.astype(str).str.strip() == "")
        amount_missing = amounts.isna() | (amounts.astype(str).str.strip() == "")
        mark("missing_customer_id", text_ids.isna())
        mark("missing_timestamp", stamp_missing)
        for name, mask in (
            ("contradicts_dayfirst", read.contradicts),
            ("out_of_range_timestamp", read.out_of_range),
        ):
            if mask is not None:
                mark(name, mask & ~stamp_missing.to_numpy())
        mark("unparseable_timestamp", parsed.isna())
        if limit is not None:
            mark("after_as_of", parsed >= limit)
        mark("missing_amount", amount_missing)
        mark("unparseable_amount", values.isna())
        mark("infinite_amount", np.isinf(values.fillna(0.0)))
        if zero_amounts == "drop":
            mark("zero_amount", values == 0)
        if returns == "drop":
            mark("negative_amount", values < 0)
        return pd.DataFrame(
            {
                "customer_id": text_ids.astype(object).where(text_ids.notna(), None),
                "timestamp": parsed,
                "amount": values.astype("float64"),
                "reason": reason,
                "zoned": note is not None,
                "currency": None
                if read_amounts.currency is None
                else read_amounts.currency.astype(object),
                "decimal_kind": kinds(
                    point=read_amounts.point_only,
                    comma=read_amounts.comma_only,
                    either=read_amounts.either,
                ),
                "date_kind": kinds(
                    day=read.day_first_only,
                    month=read.month_first_only,
                    either=read.either,
                    numeric=read.numeric,
                ),
            }
        )

    return parse


def _check_options(returns, zero_amounts, on_invalid) -> None:
    if returns not in ("drop", "net"):
        raise TransactionsError(f"returns must be 'drop' or 'net', got {returns!r}.")
    if zero_amounts not in ("drop", "keep"):
        raise TransactionsError(f"zero_amounts must be 'drop' or 'keep', got {zero_amounts!r}.")
    if on_invalid not in ("drop", "raise"):
        raise TransactionsError(f"on_invalid must be 'drop' or 'raise', got {on_invalid!r}.")


def _limit(as_of, timezone: str, report: DataQualityReport) -> pd.Timestamp | None:
    """The first moment after the day ``as_of``, as the loader computes it."""
    if as_of is None:
        return None
    from segml.transactions import _check_as_of

    return _check_as_of(as_of, timezone, report).normalize() + pd.Timedelta(days=1)


def _stamp_input(frame: DataFrame, name: str, timezone: str):
    """The timestamp column as the parser reads it, and whether it was zone-aware.

    Spark ``TIMESTAMP`` values are instants (pandas reads them from Parquet as UTC,
    zone-aware): they become wall-clock times in ``timezone``. ``DATE`` values are
    midnight. Text and ``TIMESTAMP_NTZ`` go to the parser as they are.
    """
    column = F.col(f"`{name}`")
    kind = frame.schema[name].dataType
    if isinstance(kind, T.TimestampType):
        session = frame.sparkSession.conf.get("spark.sql.session.timeZone")
        wall = column.cast("timestamp_ntz")  # wall clock in the session time zone
        return F.convert_timezone(F.lit(session), F.lit(timezone), wall), True
    if isinstance(kind, T.DateType):
        return column.cast("timestamp_ntz"), False
    return column, False


def clean_transactions(
    transactions: DataFrame,
    *,
    customer_id: str = "customer_id",
    timestamp: str = "timestamp",
    amount: str = "amount",
    as_of=None,
    timestamp_format: str | None = None,
    timezone: str = "UTC",
    returns: Literal["drop", "net"] = "drop",
    zero_amounts: Literal["drop", "keep"] = "drop",
    drop_duplicates: bool = True,
    on_invalid: Literal["drop", "raise"] = "drop",
    decimal: Literal["auto", ".", ","] = "auto",
    dayfirst: bool | None = None,
    currency: str | None = None,
    currency_column: str | None = None,
    order_id: str | None = None,
    source: str = "DataFrame",
) -> tuple[DataFrame, DataQualityReport]:
    """Validate and clean a Spark transaction log by the rules of the pandas loader.

    The Spark twin of :func:`segml.load_transactions` (see its module docs for the
    rules): same parameters and defaults, the same rows kept with the same values,
    and the same counts per reason.

    Parameters
    ----------
    transactions : pyspark.sql.DataFrame
        The raw log; CSV columns as text (ids keep their leading zeros), Parquet
        columns with their types. Never modified.
    customer_id, timestamp, amount : str
        Names of the input's customer id, purchase time and purchase value columns.
    as_of : date-like, optional
        When given, transactions after this day are dropped (``after_as_of``).
    timestamp_format : str, optional
        ``strftime`` format of the timestamps; by default ISO 8601, then anything
        pandas can read value by value.
    timezone : str, default "UTC"
        Zone that zone-aware timestamps (and Spark ``TIMESTAMP`` columns) are
        converted to, then stored as ``TIMESTAMP_NTZ``.
    returns : {"drop", "net"}, default "drop"
        Negative amounts dropped, or subtracted from the customer's latest purchase
        at or before the return.
    zero_amounts : {"drop", "keep"}, default "drop"
        Zero-value rows dropped or kept.
    drop_duplicates : bool, default True
        Drop rows that repeat an earlier row in every column.
    on_invalid : {"drop", "raise"}, default "drop"
        Unparseable timestamps or amounts are dropped and counted, or raise.
    decimal : {"auto", ".", ","}, default "auto"
        Decimal sign of text amounts, decided for the whole column as the loader
        does (an ``"auto"`` column with decimal commas is read a second time).
    dayfirst : bool, optional
        Day/month order of numeric dates, decided for the whole column as the
        loader does (a day-first column is read a second time).
    currency, currency_column, order_id : None
        Not implemented on Spark: a value other than None raises
        :class:`segml.TransactionsError`; use :func:`segml.load_transactions`.
    source : str, default "DataFrame"
        Name of the input in the report and in messages (e.g. its path).

    Returns
    -------
    clean : pyspark.sql.DataFrame
        ``customer_id`` (string), ``timestamp`` (``TIMESTAMP_NTZ``), ``amount``
        (double), then the input's other columns as they are. Lazy, over the
        labelled rows, which are cached (``MEMORY_AND_DISK``) so the input is
        parsed once; ``spark.catalog.clearCache()`` frees them.
    report : segml.transactions.DataQualityReport
        Rows read, kept and dropped by reason (in :data:`REASONS` order), with up
        to three examples per reason (original values).

    Raises
    ------
    segml.TransactionsError
        A bad option, a required column missing, 0 rows, ``on_invalid="raise"``
        with unparseable values, or no rows left after cleaning (report attached).

    Notes
    -----
    One difference from the loader, for a column that mixes zone-aware and naive
    text timestamps with a ``timezone`` other than UTC: the loader reads naive
    values as UTC when any value of the column has a zone; here that is decided
    per Arrow batch. With the default ``timezone="UTC"`` the two agree.

    Returns are netted by the loader's own function on each customer's rows in input
    order, so netted amounts are the loader's to the last bit; only the excess total
    of the report's note is summed over customers in Spark's order (it is shown to
    the cent).
    """
    _, clean, report = _clean(
        transactions,
        customer_id=customer_id,
        timestamp=timestamp,
        amount=amount,
        as_of=as_of,
        timestamp_format=timestamp_format,
        timezone=timezone,
        returns=returns,
        zero_amounts=zero_amounts,
        drop_duplicates=drop_duplicates,
        on_invalid=on_invalid,
        decimal=decimal,
        dayfirst=dayfirst,
        currency=currency,
        currency_column=currency_column,
        order_id=order_id,
        source=source,
    )
    return clean, report


def _clean(
    transactions: DataFrame,
    *,
    customer_id: str,
    timestamp: str,
    amount: str,
    as_of=None,
    timestamp_format: str | None,
    timezone: str,
    returns: str,
    zero_amounts: str,
    drop_duplicates: bool,
    on_invalid: str,
    source: str,
    decimal: str = "auto",
    dayfirst: bool | None = None,
    currency: str | None = None,
    currency_column: str | None = None,
    order_id: str | None = None,
) -> tuple[DataFrame, DataFrame, DataQualityReport]:
    """:func:`clean_transactions`, also returning the cached labelled rows to unpersist."""
    _check_options(returns, zero_amounts, on_invalid)
    given = {"currency": currency, "currency_column": currency_column, "order_id": order_id}
    for name, value in given.items():
        if value is not None:
            raise TransactionsError(
                f"The Spark engine does not implement {name}= ({_PANDAS_ONLY[name]}); clean "
                "this log with the pandas engine (segml.load_transactions, or the command "
                "without --spark)."
            )
    if decimal not in ("auto", ".", ","):
        raise TransactionsError(
            f"decimal must be 'auto', '.' or ',' (--decimal auto|.|,), got {decimal!r}."
        )
    if dayfirst not in (None, True, False):
        raise TransactionsError(f"dayfirst must be True, False or None, got {dayfirst!r}.")
    options = dict(
        customer_id=customer_id,
        timestamp=timestamp,
        amount=amount,
        as_of=as_of,
        timestamp_format=timestamp_format,
        timezone=timezone,
        returns=returns,
        zero_amounts=zero_amounts,
        drop_duplicates=drop_duplicates,
        on_invalid=on_invalid,
        source=source,
    )
    if not isinstance(transactions, DataFrame):
        raise TransactionsError(
            f"transactions must be a Spark DataFrame, got {type(transactions).__name__}; "
            "for pandas use segml.load_transactions."
        )
    report = DataQualityReport(source=source)
    mapping = {customer_id: "customer_id", timestamp: "timestamp", amount: "amount"}
    columns = transactions.columns
    missing = [name for name in mapping if name not in columns]
    if missing:
        raise TransactionsError(
            f"Required column(s) {missing} not found in {source}; the columns found are "
            f"{columns}. Pass the names your data uses, e.g. customer_id='client', "
            "timestamp='date', amount='value' (segml score: --customer-id, --timestamp, "
            "--amount).",
            report,
        )
    clashes = [c for c in mapping.values() if c in columns and c not in mapping]
    if clashes:
        raise TransactionsError(
            f"Column(s) {clashes} exist in {source} but other columns were mapped onto "
            "those names; rename or drop them before loading.",
            report,
        )
    limit = _limit(as_of, timezone, report)
    extras = [c for c in columns if c not in mapping]
    originals = list(mapping) + extras
    stamp_input, zoned_type = _stamp_input(transactions, timestamp, timezone)

    from pyspark.sql.functions import pandas_udf

    with _quiet_pyspark_pandas_check():
        parse = pandas_udf(
            _parser(timestamp_format, timezone, limit, zero_amounts, returns, decimal, dayfirst),
            _PARSED,
        )
        ids = F.col(f"`{customer_id}`")
        if isinstance(transactions.schema[customer_id].dataType, T.IntegralType):
            # As text: a pandas UDF gets an integer column with nulls as float64, which
            # rounds ids above 2**53 (the pandas loader reads them exactly too).
            ids = ids.cast("string")
        parsed = parse(ids, stamp_input, F.col(f"`{amount}`")).alias("_p")
    frame = transactions.select(
        *[F.col(f"`{c}`") for c in originals],
        F.monotonically_increasing_id().alias("_row"),
        parsed,
    ).select(
        *[F.col(f"`{c}`") for c in originals],
        "_row",
        F.col("_p.customer_id").alias("_cid"),
        F.col("_p.timestamp").alias("_ts"),
        F.col("_p.amount").alias("_amt"),
        F.col("_p.reason").alias("_reason"),
        F.col("_p.zoned").alias("_zoned"),
        F.col("_p.currency").alias("_cur"),
        F.col("_p.decimal_kind").alias("_dec"),
        F.col("_p.date_kind").alias("_dk"),
    )
    parsed_rows = None
    if returns == "net" or drop_duplicates:
        # Cached so that the bucket pass and the join back read the parsed rows once.
        parsed_rows = frame.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            frame = _apply_rules_per_bucket(parsed_rows, extras, returns == "net", drop_duplicates)
        except BaseException:
            parsed_rows.unpersist()
            raise
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        read = _fill_report(
            frame, report, originals, zoned_type, on_invalid, timestamp, amount, timezone
        )
        text_amounts = isinstance(transactions.schema[amount].dataType, T.StringType)
        rule = _column_rules(
            frame, read, report, decimal, dayfirst, timestamp, amount, text_amounts, originals
        )
    except BaseException:
        frame.unpersist()
        raise
    finally:
        if parsed_rows is not None:  # the labelled rows are cached by now
            parsed_rows.unpersist()
    if rule != (decimal, dayfirst):
        # The column's rule is not the one every batch read by: read it again by it.
        frame.unpersist()
        return _clean(transactions, **options, decimal=rule[0], dayfirst=rule[1])
    report.settings = {
        **{k: v for k, v in options.items() if k not in ("as_of", "source")},
        "drop_duplicates": bool(drop_duplicates),
        "order_id": None,
        "currency_column": None,
        "decimal": read["decimal"],
        "dayfirst": read["dayfirst"],
        "currency": read["currency"],
        "sep": None,
        "encoding": None,
        "sheet_name": None,
    }
    if report.rows_kept == 0:
        frame.unpersist()
        reasons = ", ".join(f"{r}: {n}" for r, n in report.dropped.items())
        if report.rows_read == 0:
            message = f"{source} has 0 rows (columns: {columns}); expected one row per transaction."
        else:
            message = (
                f"No transactions left after cleaning {report.rows_read} row(s) of {source} "
                f"(dropped {reasons}). Check the column mapping and formats; the report "
                "is attached as .report."
            )
        raise TransactionsError(message, report)
    clean = frame.where(F.col("_reason").isNull()).select(
        F.col("_cid").alias("customer_id"),
        F.col("_ts").alias("timestamp"),
        F.col("_amt").alias("amount"),
        *[F.col(f"`{c}`") for c in extras],
    )
    return frame, clean, report


class _DropsByRow(DataQualityReport):
    """A bucket's report that also remembers which rows each ``_drop`` dropped."""

    def __init__(self) -> None:
        super().__init__(source="bucket")
        self.rows_by_reason: dict[str, pd.Index] = {}

    def _drop(self, reason: str, rows: pd.DataFrame) -> None:
        self.rows_by_reason[reason] = self.rows_by_reason.get(reason, pd.Index([])).append(
            rows.index
        )


def _rules_of_bucket(net: bool, duplicates: bool, n_extras: int):
    """The pandas body of the bucket pass: the loader's last two rules on one bucket.

    Gets the bucket's rows in input order (``customer_id``, ``timestamp``, ``amount``
    parsed, ``_x0`` .. the extra columns' equality keys, ``_reason`` so far, ``_row``)
    and runs :func:`segml.transactions._net_returns` then
    :func:`segml.transactions._duplicated` on them as the loader's ``_clean`` and
    ``_finish`` do; returns the ``_row``, amount (netted) and reason of each row the
    rules changed (the others keep theirs).
    """

    def run(rows: pd.DataFrame) -> pd.DataFrame:
        from segml.transactions import _duplicated, _net_returns

        frame = rows[["customer_id", "timestamp", "amount", *[f"_x{i}" for i in range(n_extras)]]]
        keep = rows["_reason"].isna().astype(bool)
        reason = rows["_reason"].astype(object).where(~keep, None)
        if net:
            report = _DropsByRow()
            live = keep.copy()
            frame = _net_returns(frame, keep, frame, report)
            # Dropped here and not through report._drop: netted returns (_record_netted).
            reason[live & ~keep] = "return_netted"
            for name, index in report.rows_by_reason.items():
                reason.loc[index] = name
        if duplicates:
            reason[_duplicated(frame) & keep] = "duplicate_row"
        amount = frame["amount"].to_numpy(dtype="float64")
        changed = reason.notna().to_numpy() | (amount != rows["amount"].to_numpy(dtype="float64"))
        return pd.DataFrame(
            {
                "_row": rows["_row"].to_numpy()[changed],
                "_amt": amount[changed],
                "_reason": reason.to_numpy(dtype=object)[changed],
            }
        )

    return run


_RULES_OUT = T.StructType(
    [
        T.StructField("_row", T.LongType()),
        T.StructField("_amt", T.DoubleType()),
        T.StructField("_reason", T.StringType()),
    ]
)


def _equality_key(frame: DataFrame, name: str):
    """Column ``name`` as pandas gets it with the equality Spark gives its values.

    Strings, booleans, small integers and floats reach pandas exactly. Other types
    are sent as text equal exactly when the values are: 64-bit integers and decimals
    (pandas would get float64 for a column with nulls), instants as microseconds
    (local wall clocks repeat when clocks go back), binary as hex, nested values as
    JSON (pandas cannot hash them).
    """
    column = F.col(f"`{name}`")
    kind = frame.schema[name].dataType
    exact = (T.StringType, T.BooleanType, T.ByteType, T.ShortType, T.IntegerType)
    if isinstance(kind, (*exact, T.FloatType, T.DoubleType)):
        return column
    if isinstance(kind, T.TimestampType):
        return F.unix_micros(column).cast("string")
    if isinstance(kind, T.BinaryType):
        return F.hex(column)
    if isinstance(kind, (T.ArrayType, T.MapType, T.StructType)):
        return F.to_json(column)
    return column.cast("string")


def _apply_rules_per_bucket(
    frame: DataFrame, extras: list[str], net: bool, duplicates: bool
) -> DataFrame:
    """``frame`` with ``_amt`` and ``_reason`` as the returns and duplicates rules leave them.

    One shuffle of the rules' columns into buckets of whole customers, one pandas
    call per bucket (:func:`_rules_of_bucket`), and a join back on ``_row`` of the
    rows the rules changed. Only rows no earlier rule dropped take part, which gives
    what the loader gives: netting reads kept rows only, and every earlier reason
    leaves a value no kept row has (no id, no date or one after ``as_of``, a missing,
    infinite or dropped zero or negative amount), so a dropped row never makes a kept
    one a repeat.
    """
    rows = frame.where(F.col("_cid").isNotNull() & F.col("_reason").isNull()).select(
        F.col("_cid").alias("customer_id"),
        F.col("_ts").alias("timestamp"),
        F.col("_amt").alias("amount"),
        *[_equality_key(frame, c).alias(f"_x{i}") for i, c in enumerate(extras)],
        "_reason",
        "_row",
        F.col("_row").alias(ROW),  # the order pandas gets the rows in
    )
    buckets = int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    ruled = apply_per_bucket(
        rows, _rules_of_bucket(net, duplicates, len(extras)), _RULES_OUT, buckets=buckets
    ).select(
        "_row",
        F.col("_amt").alias("_ruled_amt"),
        F.col("_reason").alias("_ruled_reason"),
        F.lit(True).alias("_ruled"),
    )
    joined = frame.join(ruled, on="_row", how="left")
    ruled_row = F.col("_ruled").isNotNull()
    replaced = {
        "_amt": F.when(ruled_row, F.col("_ruled_amt")).otherwise(F.col("_amt")),
        "_reason": F.when(ruled_row, F.col("_ruled_reason")).otherwise(F.col("_reason")),
    }
    return joined.select(
        *[replaced[c].alias(c) if c in replaced else F.col(f"`{c}`") for c in frame.columns]
    )


def _fill_report(
    frame: DataFrame,
    report: DataQualityReport,
    originals: list[str],
    zoned_type: bool,
    on_invalid: str,
    timestamp: str,
    amount: str,
    timezone: str,
) -> None:
    """Count rows per reason, with the first three examples of each; raise on invalid.

    Two jobs over the cached rows: an aggregation per reason (distributed), and the
    first three dropped rows per reason and input partition (a window over the
    dropped rows only, spread by partition), of which the first three are kept.
    """
    excess = F.when((F.col("_reason") == "fully_returned") & (F.col("_amt") < 0), -F.col("_amt"))
    totals = (
        frame.groupBy("_reason", "_cur", "_dec", "_dk")
        .agg(
            F.count(F.lit(1)).alias("_count"),
            F.sum(excess).alias("_excess"),
            F.max(F.col("_zoned").cast("int")).alias("_any_zoned"),
        )
        .collect()
    )
    counts: dict[Any, int] = {}
    read: dict[str, Any] = {"decimal_kinds": {}, "date_kinds": {}, "currencies": {}}
    read["ambiguous_amounts"] = read["bare_amounts"] = 0
    any_marker = any(row["_cur"] is not None for row in totals)
    for row in totals:
        n = int(row["_count"])
        counts[row["_reason"]] = counts.get(row["_reason"], 0) + n
        for key, kind in (("decimal_kinds", row["_dec"]), ("date_kinds", row["_dk"])):
            if kind is not None:
                read[key][kind] = read[key].get(kind, 0) + n
        if row["_dec"] == "either" and row["_reason"] not in _BEFORE_AMOUNTS:
            read["ambiguous_amounts"] += n
        if row["_reason"] is None or row["_reason"] in _AFTER_CURRENCY:  # amounts read
            if row["_cur"]:
                read["currencies"][row["_cur"]] = read["currencies"].get(row["_cur"], 0) + n
            elif any_marker:
                read["bare_amounts"] += n
    excess_total = sum(float(row["_excess"] or 0.0) for row in totals)
    zoned = zoned_type or any(row["_any_zoned"] for row in totals)
    examples: dict[str, list[dict[str, Any]]] = {}
    if len(counts) > (None in counts):
        part = F.spark_partition_id()
        first = Window.partitionBy("_reason", "_part").orderBy("_row")
        candidates = (
            frame.where(F.col("_reason").isNotNull())
            .select("_reason", "_row", *[F.col(f"`{c}`") for c in originals], part.alias("_part"))
            .withColumn("_rank", F.row_number().over(first))
            .where(F.col("_rank") <= _N_EXAMPLES)
            .collect()
        )
        for row in sorted(candidates, key=lambda row: row["_row"]):
            taken = examples.setdefault(row["_reason"], [])
            if len(taken) < _N_EXAMPLES:
                taken.append({c: _plain(row[c]) for c in originals})
    report.rows_read = sum(counts.values())
    report.rows_kept = counts.get(None, 0)
    if zoned:
        report.notes.append(
            f"timezone-aware timestamps converted to {timezone} and stored without zone"
        )
    found = dict(sorted(read["currencies"].items(), key=lambda item: (-item[1], item[0])))
    report.currencies = found
    read["currency"] = next(iter(found)) if len(found) == 1 else None
    if len(found) > 1:
        live = F.col("_reason").isNull() | F.col("_reason").isin(*_AFTER_CURRENCY)
        listed = "; ".join(
            f"{code} ({n:,} row(s), e.g. "
            f"{_row_examples(frame, live & (F.col('_cur') == code), amount, 1)})"
            for code, n in found.items()
        )
        first = next(iter(found))
        raise TransactionsError(
            f"Column '{amount}' holds amounts in {len(found)} currencies: {listed}. Amounts "
            f"in different currencies are never added together: pick one with "
            f"currency='{first}' (--currency {first}) on the pandas engine; the others are "
            "dropped and counted as other_currency.",
            report,
        )
    if found and read["bare_amounts"]:
        report.notes.append(
            f"{read['bare_amounts']:,} amount(s) without a currency marker read as "
            f"{read['currency']}, the only currency in the column"
        )
    for reason in REASONS:
        if counts.get(reason):
            report.dropped[reason] = counts[reason]
            report.examples[reason] = examples.get(reason, [])
    if on_invalid == "raise":
        for reason, column, what, fix in (
            (
                "unparseable_timestamp",
                timestamp,
                "dates",
                "Pass timestamp_format= (a strftime format such as '%d/%m/%Y'), or "
                "on_invalid='drop' to drop and count them.",
            ),
            (
                "unparseable_amount",
                amount,
                "numbers",
                "Clean them, or pass on_invalid='drop' to drop and count them.",
            ),
        ):
            if counts.get(reason):
                shown = [example[column] for example in examples.get(reason, [])]
                raise TransactionsError(
                    f"Column '{column}': {counts[reason]} value(s) are not {what}, e.g. "
                    f"{shown}. {fix}",
                    report,
                )
    n_netted = report.dropped.get("return_netted", 0)
    if n_netted:
        report.notes.append(f"{n_netted} return(s) netted against earlier purchases")
    if excess_total > 0:
        report.notes.append(
            f"returns exceeded their purchases by {excess_total:,.2f} in total; the excess "
            "is not carried to earlier purchases"
        )
    return read


def _row_examples(frame: DataFrame, where, column: str, n: int = _N_EXAMPLES) -> str:
    """``row 3: '12,50'; ...`` as the loader words it (rows counted from 1 after the header).

    Only for messages: one small job per example to number its row in input order.
    """
    rows = (
        frame.where(where).orderBy("_row").select("_row", F.col(f"`{column}`")).limit(n)
    ).collect()
    return "; ".join(
        f"row {frame.where(F.col('_row') < row[0]).count() + 1}: {row[1]!r}" for row in rows
    )


def _column_rules(
    frame: DataFrame,
    read: dict[str, Any],
    report: DataQualityReport,
    decimal: str,
    dayfirst: bool | None,
    timestamp: str,
    amount: str,
    text_amounts: bool,
    originals: list[str],
) -> tuple[str, bool | None]:
    """The decimal sign and day/month order of the whole column, as the loader decides.

    Returns the rule to read by; when it differs from the one the batches read by
    (``"auto"`` read with a point, ``None`` month-first), the caller reads again.
    Fills ``read["decimal"]``, ``read["dayfirst"]`` and the report's flags and
    warnings when the rule stands.
    """
    kinds = read["decimal_kinds"]
    if decimal == "auto":
        if kinds.get("point") and kinds.get("comma"):
            raise TransactionsError(
                f"Column '{amount}' mixes decimal points ({kinds['point']:,} row(s), e.g. "
                f"{_row_examples(frame, F.col('_dec') == 'point', amount)}) and decimal commas "
                f"({kinds['comma']:,} row(s), e.g. "
                f"{_row_examples(frame, F.col('_dec') == 'comma', amount)}). Pass decimal=',' "
                "(--decimal ,) or decimal='.' (--decimal .) to read the column one way; "
                "the values that do not fit it are dropped and counted as unparseable_amount.",
                report,
            )
        resolved_decimal = "," if kinds.get("comma") else "."
    else:
        resolved_decimal = decimal
    dates = read["date_kinds"]
    if dayfirst is None:
        if dates.get("day") and dates.get("month"):
            raise TransactionsError(
                f"Column '{timestamp}' mixes day-first dates ({dates['day']:,} row(s), e.g. "
                f"{_row_examples(frame, F.col('_dk') == 'day', timestamp)}) and month-first dates "
                f"({dates['month']:,} row(s), e.g. "
                f"{_row_examples(frame, F.col('_dk') == 'month', timestamp)}); one column is read "
                "with one rule. Pass dayfirst=True (--dayfirst) or dayfirst=False "
                "(--monthfirst); the dates that contradict it are dropped and counted as "
                "contradicts_dayfirst.",
                report,
            )
        resolved_dayfirst = True if dates.get("day") else (False if dates else None)
    else:
        resolved_dayfirst = dayfirst
    rule = (
        "," if decimal == "auto" and kinds.get("comma") else decimal,
        True if dayfirst is None and dates.get("day") else dayfirst,
    )
    if rule != (decimal, dayfirst):
        return rule
    read["decimal"] = resolved_decimal if text_amounts or decimal != "auto" else "auto"
    read["dayfirst"] = resolved_dayfirst
    if dayfirst is None and dates.get("either") and not dates.get("month"):
        shown = _row_examples(frame, F.col("_dk") == "either", timestamp, 1)
        report.warnings.append(
            f"column '{timestamp}': {dates['either']:,} date(s) such as {shown} read "
            "month-first; nothing in the column says whether day or month comes first. Pass "
            "dayfirst=True (--dayfirst) if they are day-first."
        )
    if decimal == "auto" and read["ambiguous_amounts"] and not kinds.get("point"):
        report.flagged["ambiguous_amount"] = read["ambiguous_amounts"]
        shown = _row_examples(
            frame,
            (F.col("_dec") == "either")
            & (F.col("_reason").isNull() | ~F.col("_reason").isin(*_BEFORE_AMOUNTS)),
            amount,
            1,
        )
        report.examples["ambiguous_amount"] = [
            {c: _plain(row[c]) for c in originals}
            for row in frame.where(F.col("_dec") == "either")
            .where(F.col("_reason").isNull() | ~F.col("_reason").isin(*_BEFORE_AMOUNTS))
            .orderBy("_row")
            .select(*[F.col(f"`{c}`") for c in originals])
            .limit(_N_EXAMPLES)
            .collect()
        ]
        report.warnings.append(
            f"column '{amount}': {read['ambiguous_amounts']:,} amount(s) such as {shown} "
            "could have a decimal point or comma and nothing else in the column decides; "
            "they were read with a decimal point (1,250 as 1250). Pass decimal=',' "
            "(--decimal ,) if the comma is the decimal sign."
        )
    return rule


def _plain(value: Any) -> Any:
    """Example values as the loader shows them (datetimes as pandas Timestamps)."""
    if isinstance(value, dt.datetime):
        return pd.Timestamp(value)
    return value


def kept_rows(labelled: DataFrame, quantity: str | None, row_column: str) -> DataFrame:
    """The kept rows of :func:`_clean`'s labelled frame, with each row's place in the input.

    ``customer_id``, ``timestamp``, ``amount``, the ``quantity`` column as a double
    (when given and present) and ``row_column``: the input order, which the
    cleaning's shuffles do not keep but per-customer sums should follow (see
    :mod:`segml.spark._buckets`).
    """
    selected = [
        F.col("_cid").alias("customer_id"),
        F.col("_ts").alias("timestamp"),
        F.col("_amt").alias("amount"),
    ]
    if quantity is not None and quantity in labelled.columns:
        selected.append(F.expr(f"try_cast(`{quantity}` AS DOUBLE)").alias("quantity"))
    selected.append(F.col("_row").alias(row_column))
    return labelled.where(F.col("_reason").isNull()).select(*selected)
