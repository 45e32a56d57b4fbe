"""Load a transaction log, map its columns to segml's names, validate and clean it.

Every row that is dropped is counted under a reason, with up to three example rows,
in a :class:`DataQualityReport`; nothing is dropped silently. Problems that make the
data unusable raise :class:`TransactionsError` with a message that names the column,
the count and the fix, and carries the report when there is one.

Canonical columns: ``customer_id`` (str), ``timestamp`` (naive datetime64[ns]) and
``amount`` (float64). Every other column of the input is kept as it is.

Rules, in the order they are applied:

=========================  ==================================================
reason                     rule
=========================  ==================================================
``missing_customer_id``    empty or missing id: dropped. Ids are strings:
                           ``"00042"`` stays ``"00042"``; numbers read as
                           floats (``42.0``) become ``"42"``.
``missing_timestamp``      dropped.
``unparseable_timestamp``  dropped (or raised with ``on_invalid="raise"``).
                           Timezone-aware timestamps are converted to
                           ``timezone`` (default UTC) and made naive; naive
                           ones are taken to be in ``timezone`` already.
``after_as_of``            timestamps after the day ``as_of`` (when given):
                           dropped.
``missing_amount``         NaN or empty amount: dropped.
``unparseable_amount``     text that is not a number after removing currency
                           symbols, spaces and thousands separators: dropped
                           (or raised with ``on_invalid="raise"``).
``infinite_amount``        +/-inf: dropped.
``zero_amount``            dropped unless ``zero_amounts="keep"``.
``negative_amount``        returns: dropped with ``returns="drop"``; with
                           ``returns="net"`` each return is subtracted from
                           the customer's latest purchase at or before it
                           (counted as ``return_netted``; purchases netted to
                           zero or below are dropped as ``fully_returned``;
                           returns with no earlier purchase are dropped as
                           ``return_without_purchase``).
``duplicate_row``          rows equal in every column to an earlier row:
                           dropped unless ``drop_duplicates=False``.
=========================  ==================================================

Examples
--------
>>> import pandas as pd
>>> from segml import load_transactions
>>> raw = pd.DataFrame({
...     "cust": ["00042", "00042", "7", None],
...     "date": ["2024-01-02", "2024-01-02", "2024-02-30", "2024-01-05"],
...     "value": ["$1,200.50", "$1,200.50", "3", "4"],
... })
>>> clean, report = load_transactions(raw, customer_id="cust", timestamp="date", amount="value")
>>> clean
  customer_id  timestamp  amount
0       00042 2024-01-02  1200.5
>>> report.dropped
{'missing_customer_id': 1, 'unparseable_timestamp': 1, 'duplicate_row': 1}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["DataQualityReport", "TransactionsError", "load_transactions"]

CANONICAL_COLUMNS = ("customer_id", "timestamp", "amount")
_N_EXAMPLES = 3
_CURRENCY_NOISE = re.compile(r"[\s,$€£¥₹]|^[A-Z]{3}(?=[\d.\-+])")


@dataclass
class DataQualityReport:
    """What loading did to the data: rows read, kept, and dropped by reason.

    Attributes
    ----------
    source : str
        Where the rows came from (a path, or ``"DataFrame"``).
    rows_read : int
        Rows in the input.
    rows_kept : int
        Rows in the clean output.
    dropped : dict of str to int
        Rows dropped per reason, in the order the rules apply (see the module docs).
    examples : dict of str to list of dict
        Up to three input rows (original values) per reason.
    notes : list of str
        What was changed without dropping rows (timezone conversion, netted returns).
    """

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_dropped(self) -> int:
        """Total rows dropped, over all reasons."""
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (example values as strings)."""
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_dropped": self.rows_dropped,
            "dropped": dict(self.dropped),
            "examples": {
                reason: [{k: _as_text(v) for k, v in row.items()} for row in rows]
                for reason, rows in self.examples.items()
            },
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [
            f"Data quality report for {self.source}",
            f"  rows read: {self.rows_read:,}",
            f"  rows kept: {self.rows_kept:,}",
            f"  rows dropped: {self.rows_dropped:,}",
        ]
        for reason, count in self.dropped.items():
            lines.append(f"    {reason}: {count:,}")
            for row in self.examples.get(reason, []):
                shown = ", ".join(f"{k}={_as_text(v)}" for k, v in row.items())
                lines.append(f"      e.g. {shown}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def _drop(self, reason: str, rows: pd.DataFrame) -> None:
        if len(rows) == 0:
            return
        self.dropped[reason] = self.dropped.get(reason, 0) + len(rows)
        taken = self.examples.setdefault(reason, [])
        for record in rows.head(_N_EXAMPLES - len(taken)).to_dict("records"):
            taken.append(record)


class TransactionsError(ValueError):
    """Transactions that cannot be used; ``report`` holds the quality report when known."""

    def __init__(self, message: str, report: DataQualityReport | None = None):
        super().__init__(message)
        self.report = report


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "<missing>"
    return str(value)


def _read(source) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source, "DataFrame"
    if not isinstance(source, str | os.PathLike):
        raise TransactionsError(
            f"source must be a CSV or Parquet path or a pandas DataFrame, "
            f"got {type(source).__name__}."
        )
    path = Path(source)
    if not path.exists():
        raise TransactionsError(f"No file at {path}; check the path.")
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if path.suffix.lower() == ".parquet" or path.suffix.lower() == ".pq":
            frame = pd.read_parquet(path)
        elif path.suffix.lower() in {".csv", ".txt", ".tsv"} or suffixes.endswith(".csv.gz"):
            # Read everything as text: ids keep their leading zeros and every value
            # is parsed by the rules below, with the bad ones counted.
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], sep=sep)
        else:
            raise TransactionsError(
                f"Cannot tell the format of {path}: use a .csv, .csv.gz, .tsv or .parquet file."
            )
    except pd.errors.EmptyDataError:
        raise TransactionsError(
            f"{path} is empty (0 bytes or no header); expected a header row and transactions."
        ) from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, TransactionsError):
            raise
        raise TransactionsError(f"Could not read {path}: {exc}") from None
    return frame, str(path)


def _ids_as_text(ids: pd.Series) -> pd.Series:
    """Customer ids as strings; missing and blank ids become NA."""
    if pd.api.types.is_float_dtype(ids):
        whole = ids.notna() & np.isfinite(ids) & (ids == np.floor(ids))
        text = ids.astype(object).where(~whole, ids[whole].astype("int64").astype(str))
        text = text.where(ids.notna(), None).astype(object)
        return pd.Series(
            text.map(lambda v: None if v is None else str(v)), index=ids.index, dtype="str"
        )

    if ids.dtype.kind in "iu":  # plain integers: never missing, never blank
        return ids.astype("str")
    if isinstance(ids.dtype, pd.StringDtype) or (
        ids.dtype == object and pd.api.types.infer_dtype(ids, skipna=True) == "string"
    ):
        # Text only (the usual case): strip and blank-to-NA in one vectorised pass; the
        # value-by-value path below costs about a second per million rows.
        text = ids.astype("str").str.strip()
        return text.where(text != "")

    def one(value):
        if value is None or (isinstance(value, float) and (np.isnan(value))) or value is pd.NA:
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        text = str(value).strip()
        return text or None

    return pd.Series([one(v) for v in ids.to_numpy(dtype=object)], index=ids.index, dtype="str")


def _duplicated(frame: pd.DataFrame) -> pd.Series:
    """``frame.duplicated(keep="first")``, with the string ids compared as integers.

    Equal ids have equal codes (missing ids all get -1), so the same rows repeat;
    ``pd.factorize`` of the Arrow strings and a numeric ``duplicated`` together take
    0.55 s per 3M rows, against 0.75 s for ``duplicated`` on the strings.
    """
    codes, _ = pd.factorize(frame["customer_id"])
    return frame.assign(customer_id=codes).duplicated(keep="first")


def _missing_or_blank(values: pd.Series) -> pd.Series:
    """Missing values, and for text columns also empty or whitespace-only ones."""
    missing = values.isna()
    if isinstance(values.dtype, pd.StringDtype):
        return missing | values.str.strip().eq("").fillna(False).astype(bool)
    if values.dtype == object:
        return missing | (values.astype(str).str.strip() == "")
    return missing  # numbers and datetimes cannot be blank


def _parse_timestamps(
    values: pd.Series, timestamp_format: str | None, timezone: str
) -> tuple[pd.Series, str | None]:
    """Parse to naive datetime64[ns] in ``timezone``; unparseable values become NaT."""
    note = None
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    elif pd.api.types.is_integer_dtype(values) and timestamp_format is None:
        # Integers such as 19970101 are dates, not nanoseconds since 1970.
        parsed = pd.to_datetime(values.astype(str), format="%Y%m%d", errors="coerce")
    else:
        text = values.astype(object).where(values.notna(), None)
        fmt = timestamp_format or "ISO8601"
        try:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        except ValueError:
            # Mixed UTC offsets cannot share one column without a common zone.
            parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
        if timestamp_format is None and parsed.isna().sum() > text.isna().sum():
            # Not all ISO 8601: try each remaining value on its own (slower, lenient).
            retry = text.where(parsed.isna() & text.notna())
            if retry.notna().any():
                try:
                    again = pd.to_datetime(retry, format="mixed", errors="coerce", utc=True)
                except (ValueError, TypeError):
                    again = pd.Series(pd.NaT, index=retry.index, dtype="datetime64[ns, UTC]")
                if getattr(parsed.dt, "tz", None) is None:
                    again = again.dt.tz_convert(timezone).dt.tz_localize(None)
                    parsed = parsed.astype("datetime64[ns]")
                else:
                    parsed = parsed.dt.tz_convert("UTC")
                parsed = parsed.where(parsed.notna(), again)
    tz = getattr(parsed.dt, "tz", None)
    if tz is not None:
        parsed = parsed.dt.tz_convert(timezone).dt.tz_localize(None)
        note = f"timezone-aware timestamps converted to {timezone} and stored without zone"
    return parsed.astype("datetime64[ns]"), note


def _parse_amounts(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    text = values.astype(object).where(values.notna(), None)

    def one(value):
        if value is None:
            return np.nan
        if isinstance(value, int | float | np.number):
            return float(value)
        cleaned = _CURRENCY_NOISE.sub("", str(value))
        if cleaned.startswith("(") and cleaned.endswith(")"):  # accounting negative
            cleaned = "-" + cleaned[1:-1]
        return cleaned if cleaned else np.nan

    return pd.to_numeric(pd.Series([one(v) for v in text], index=values.index), errors="coerce")


def load_transactions(
    source,
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
) -> tuple[pd.DataFrame, DataQualityReport]:
    """Read transactions, map column names, validate, clean, and report what was dropped.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        A ``.csv`` (also ``.csv.gz``, ``.tsv``) or ``.parquet`` file, or a DataFrame.
        The input is never modified.
    customer_id, timestamp, amount : str
        Names of the input's customer id, purchase time and purchase value columns.
    as_of : date-like, optional
        When given, transactions after this day are dropped (``after_as_of``).
    timestamp_format : str, optional
        ``strftime`` format of the timestamps; by default ISO 8601, then anything
        pandas can read value by value. Integer columns are read as ``%Y%m%d``.
    timezone : str, default "UTC"
        Zone that timezone-aware timestamps are converted to (then stored naive);
        naive timestamps are assumed to be in it already.
    returns : {"drop", "net"}, default "drop"
        What negative amounts mean: dropped, or subtracted from the customer's latest
        purchase at or before the return.
    zero_amounts : {"drop", "keep"}, default "drop"
        Zero-value rows are dropped (they are not purchases) or kept.
    drop_duplicates : bool, default True
        Drop rows that repeat an earlier row in every column.
    on_invalid : {"drop", "raise"}, default "drop"
        Unparseable timestamps or amounts are dropped and counted, or raise.

    Returns
    -------
    clean : pandas.DataFrame
        ``customer_id``, ``timestamp``, ``amount`` then the input's other columns,
        in input order, with a fresh RangeIndex.
    report : DataQualityReport
        Rows read, kept and dropped by reason, with examples.

    Raises
    ------
    TransactionsError
        Empty input, a required column missing, ``on_invalid="raise"`` with bad
        values, or no rows left after cleaning (the report is attached).

    Examples
    --------
    >>> import pandas as pd
    >>> from segml import load_transactions
    >>> raw = pd.DataFrame({"customer_id": [1, 2], "timestamp": ["2024-01-01", "2024-01-02"],
    ...                     "amount": [10.0, -3.0]})
    >>> clean, report = load_transactions(raw)
    >>> clean["customer_id"].tolist(), report.dropped
    (['1'], {'negative_amount': 1})
    """
    if returns not in ("drop", "net"):
        raise TransactionsError(f"returns must be 'drop' or 'net', got {returns!r}.")
    if zero_amounts not in ("drop", "keep"):
        raise TransactionsError(f"zero_amounts must be 'drop' or 'keep', got {zero_amounts!r}.")
    if on_invalid not in ("drop", "raise"):
        raise TransactionsError(f"on_invalid must be 'drop' or 'raise', got {on_invalid!r}.")

    raw, source_name = _read(source)
    report = DataQualityReport(source=source_name, rows_read=len(raw))
    if len(raw) == 0:
        raise TransactionsError(
            f"{source_name} has 0 rows (columns: {list(raw.columns)}); "
            "expected one row per transaction.",
            report,
        )
    mapping = {customer_id: "customer_id", timestamp: "timestamp", amount: "amount"}
    missing = [name for name in mapping if name not in raw.columns]
    if missing:
        raise TransactionsError(
            f"Required column(s) {missing} not found in {source_name}; the columns found are "
            f"{[str(c) for c in raw.columns]}. Pass the names your data uses, e.g. "
            "load_transactions(path, customer_id='client', timestamp='date', amount='value').",
            report,
        )
    clashes = [c for c in CANONICAL_COLUMNS if c in raw.columns and c not in mapping]
    if clashes:
        raise TransactionsError(
            f"Column(s) {clashes} exist in {source_name} but other columns were mapped onto "
            "those names; rename or drop them before loading.",
            report,
        )

    extras = [c for c in raw.columns if c not in mapping]
    original = raw[list(mapping) + extras]  # a new frame: the input is never mutated
    frame = original.rename(columns=mapping).reset_index(drop=True)
    original = original.reset_index(drop=True)
    keep = pd.Series(True, index=frame.index)

    def drop(reason: str, mask: pd.Series) -> None:
        mask = mask & keep
        if not mask.any():  # the usual case; selecting no rows still costs a frame copy
            return
        report._drop(reason, original[mask])
        keep[mask] = False

    ids = _ids_as_text(frame["customer_id"])
    drop("missing_customer_id", ids.isna())

    stamps, note = _parse_timestamps(frame["timestamp"], timestamp_format, timezone)
    if note:
        report.notes.append(note)
    raw_stamp_missing = _missing_or_blank(frame["timestamp"])
    drop("missing_timestamp", raw_stamp_missing)
    bad_stamps = stamps.isna() & ~raw_stamp_missing & keep
    if on_invalid == "raise" and bad_stamps.any():
        examples = frame.loc[bad_stamps, "timestamp"].head(_N_EXAMPLES).tolist()
        raise TransactionsError(
            f"Column '{timestamp}': {int(bad_stamps.sum())} value(s) are not dates, e.g. "
            f"{examples}. Pass timestamp_format= (a strftime format such as '%d/%m/%Y'), "
            "or on_invalid='drop' to drop and count them.",
            report,
        )
    drop("unparseable_timestamp", bad_stamps)
    if as_of is not None:
        try:
            limit = pd.Timestamp(as_of)
        except (TypeError, ValueError):
            raise TransactionsError(f"as_of={as_of!r} is not a date.", report) from None
        if limit.tzinfo is not None:
            limit = limit.tz_convert(timezone).tz_localize(None)
        next_day = limit.normalize() + pd.Timedelta(days=1)
        drop("after_as_of", stamps >= next_day)

    values = _parse_amounts(frame["amount"])
    raw_amount_missing = _missing_or_blank(frame["amount"])
    drop("missing_amount", raw_amount_missing | (values.isna() & frame["amount"].isna()))
    bad_amounts = values.isna() & keep
    if on_invalid == "raise" and bad_amounts.any():
        examples = frame.loc[bad_amounts, "amount"].head(_N_EXAMPLES).tolist()
        raise TransactionsError(
            f"Column '{amount}': {int(bad_amounts.sum())} value(s) are not numbers, e.g. "
            f"{examples}. Clean them, or pass on_invalid='drop' to drop and count them.",
            report,
        )
    drop("unparseable_amount", bad_amounts)
    drop("infinite_amount", np.isinf(values.fillna(0.0)))
    if zero_amounts == "drop":
        drop("zero_amount", values == 0)

    frame = frame.assign(customer_id=ids, timestamp=stamps, amount=values)
    if returns == "drop":
        drop("negative_amount", values < 0)
    else:
        frame = _net_returns(frame, keep, original, report)

    if drop_duplicates:
        drop("duplicate_row", _duplicated(frame) & keep)

    clean = frame[keep].reset_index(drop=True)
    clean["customer_id"] = clean["customer_id"].astype("str")
    clean["amount"] = clean["amount"].astype("float64")
    report.rows_kept = len(clean)
    if len(clean) == 0:
        reasons = ", ".join(f"{r}: {n}" for r, n in report.dropped.items())
        raise TransactionsError(
            f"No transactions left after cleaning {report.rows_read} row(s) of {source_name} "
            f"(dropped {reasons}). Check the column mapping and formats; the report "
            "is attached as .report.",
            report,
        )
    return clean, report


def _net_returns(
    frame: pd.DataFrame, keep: pd.Series, original: pd.DataFrame, report: DataQualityReport
) -> pd.DataFrame:
    """Subtract each return from the customer's latest earlier purchase (updates ``keep``)."""
    live = frame[keep].assign(_is_return=frame["amount"] < 0)
    # Purchases before returns at the same moment: a return netted against its purchase.
    order = live.sort_values(["customer_id", "timestamp", "_is_return"], kind="stable").index
    ordered = live.loc[order].drop(columns="_is_return")
    is_return = ordered["amount"] < 0
    # The purchase each return belongs to: the last positive row so far, same customer.
    purchase_row = pd.Series(np.where(~is_return, ordered.index, np.nan), index=ordered.index)
    purchase_row = purchase_row.groupby(ordered["customer_id"].to_numpy()).ffill()
    returns = ordered[is_return]
    target = purchase_row[is_return]
    orphan = target.isna()
    report._drop("return_without_purchase", original.loc[returns.index[orphan]])
    keep[returns.index[orphan]] = False
    matched = returns[~orphan]
    amounts = frame["amount"].copy()
    if len(matched):
        netted = matched["amount"].groupby(target[~orphan].astype("int64").to_numpy()).sum()
        amounts.loc[netted.index] = amounts.loc[netted.index] + netted.to_numpy()
        report.notes.append(f"{len(matched)} return(s) netted against earlier purchases")
        report.dropped["return_netted"] = report.dropped.get("return_netted", 0) + len(matched)
        report.examples["return_netted"] = original.loc[matched.index[:_N_EXAMPLES]].to_dict(
            "records"
        )
        keep[matched.index] = False
        fully = keep & (amounts <= 0) & amounts.index.isin(netted.index)
        report._drop("fully_returned", original[fully])
        excess = float(-amounts[fully & (amounts < 0)].sum())
        if excess > 0:
            report.notes.append(
                f"returns exceeded their purchases by {excess:,.2f} in total; the excess "
                "is not carried to earlier purchases"
            )
        keep[fully] = False
    return frame.assign(amount=amounts)
