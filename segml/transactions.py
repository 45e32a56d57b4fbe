"""Load a transaction log, map its columns to segml's names, validate and clean it.

Every row that is dropped is counted under a reason, with up to three example rows,
in a :class:`DataQualityReport`; nothing is dropped silently. Problems that make the
data unusable raise :class:`TransactionsError` with a message that names the column,
the count and the fix, and carries the report when there is one.

Canonical columns: ``customer_id`` (str), ``timestamp`` (naive datetime64[ns]) and
``amount`` (float64). Every other column of the input is kept as it is. Files are
read by :func:`segml.io.read_table` (separator and encoding sniffed, ``.xlsx``
included).

How text is read (numbers and datetimes stored as such skip all of this):

- **Amounts.** A currency code or symbol may come before or after the number, with
  or without a space (``"93.88 USD"``, ``"USD 93.88"``, ``"12,50 €"``, ``"¥1,200"``,
  ``"-$5"``); ``"(12.00)"`` and a trailing ``"12.00-"`` are negative. The decimal
  sign is one per column: ``decimal="auto"`` decides it from the values that can be
  read only one way (``"12,50"``, ``"1.234,50"``: comma; ``"1,234.50"``, ``"12.5"``:
  point), and refuses a column holding both. Values that stay ambiguous because
  nothing in the column decides (``"1,250"``, ``"1.234"``) are read with the point
  convention, kept, and counted as ``ambiguous_amount`` in ``report.flagged`` with a
  warning. Symbols are read as ISO codes (``€`` EUR, ``$`` USD, ``£`` GBP, ``¥`` JPY,
  ``₹`` INR). Amounts in different currencies are never added together: a column
  mixing them is refused unless ``currency=`` picks one. Amounts with no currency
  marker, in a column whose other amounts have one currency, are taken to be in
  that currency.
- **Dates.** ISO 8601 first. Numeric dates such as ``05/01/1997`` follow ONE rule
  per column: ``dayfirst`` as given, or detected from the values that can only be
  read one way (``13/01/1997`` day-first, ``01/13/1997`` month-first); a column
  holding both kinds is refused. With only ambiguous values they are read
  month-first, with a warning.
- **Ids.** Text ids are stripped; ``"00042"`` stays ``"00042"``; ids written as
  floats (``42.0`` as a number, or the text ``"42.0"``/``"42.00"``) are ``"42"``.
  Ids that differ only by leading zeros (``"42"``, ``"00042"``) stay different
  customers, and a warning counts those pairs.

Rules, in the order they are applied:

==========================  =================================================
reason                      rule
==========================  =================================================
``missing_customer_id``     empty or missing id: dropped.
``missing_timestamp``       dropped.
``unparseable_timestamp``   dropped (or raised with ``on_invalid="raise"``).
                            Timezone-aware timestamps are converted to
                            ``timezone`` (default UTC) and made naive; naive
                            ones are taken to be in ``timezone`` already.
``contradicts_dayfirst``    a numeric date that is valid only under the other
                            day/month order than the column's rule (e.g.
                            ``01/13/1997`` with ``dayfirst=True``): dropped.
``out_of_range_timestamp``  a date outside pandas' range (before 1677-09-22 or
                            after 2262-04-11, e.g. year 2300): dropped.
``after_as_of``             timestamps after the day ``as_of`` (when given):
                            dropped.
``missing_amount``          NaN or empty amount: dropped.
``unparseable_amount``      text that is not a number under the column's
                            decimal sign, with at most one currency marker and
                            one sign: dropped (or raised with
                            ``on_invalid="raise"``).
``infinite_amount``         +/-inf: dropped.
``other_currency``          with ``currency=``: amounts in another currency.
``missing_currency``        with ``currency=`` in a column that mixes
                            currencies: amounts with no currency marker (and
                            none in ``currency_column``).
``zero_amount``             dropped unless ``zero_amounts="keep"``.
``negative_amount``         returns: dropped with ``returns="drop"``; with
                            ``returns="net"`` each return is subtracted from
                            its purchase (counted as ``return_netted``;
                            purchases netted to zero or below are dropped as
                            ``fully_returned``; returns with no purchase to
                            net against are dropped as
                            ``return_without_purchase``). The purchase is the
                            return's own order when ``order_id`` names an order
                            column, else the customer's latest purchase at or
                            before the return.
``duplicate_row``           rows equal in every column to an earlier row:
                            dropped unless ``drop_duplicates=False``.
==========================  =================================================

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
>>> report.currencies, report.settings["decimal"]
({'USD': 2}, '.')

European amounts, read with the decimal comma that ``"1.234,50"`` reveals:

>>> eu = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": ["13/01/1997", "02/01/1997"],
...                    "amount": ["1.234,50 €", "12,50 €"]})
>>> clean, report = load_transactions(eu)
>>> clean["amount"].tolist(), clean["timestamp"].dt.strftime("%Y-%m-%d").tolist()
([1234.5, 12.5], ['1997-01-13', '1997-01-02'])
>>> report.settings["decimal"], report.settings["dayfirst"], report.currencies
(',', True, {'EUR': 2})
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segml.io import ReadError, read_table

__all__ = ["DataQualityReport", "TransactionsError", "load_transactions"]

CANONICAL_COLUMNS = ("customer_id", "timestamp", "amount")
_N_EXAMPLES = 3

#: Currency symbols and the ISO 4217 codes they are read as.
CURRENCY_SYMBOLS = {"US$": "USD", "$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}

# One text amount: optional sign or parenthesis, a currency code or symbol before or
# after the number (with or without spaces), a trailing minus (SAP style). RE2 syntax
# (pyarrow), run over the whole column at once.
_SPACE = r"[\s\x{00A0}\x{202F}]*"
_AMOUNT = (
    rf"^{_SPACE}(?P<s1>[-+]?){_SPACE}(?P<p1>\(?){_SPACE}(?P<s2>[-+]?){_SPACE}"
    rf"(?P<pre>US\$|[A-Z]{{3}}|[$€£¥₹])?{_SPACE}(?P<s3>[-+]?){_SPACE}"
    r"(?P<num>[0-9.,]*[0-9](?:[eE][-+]?[0-9]+)?)"
    rf"{_SPACE}(?P<s4>-?){_SPACE}(?P<post>[A-Z]{{3}}|[$€£¥₹])?{_SPACE}(?P<p2>\)?){_SPACE}"
    rf"(?P<s5>-?){_SPACE}$"
)
_EXPONENT = r"(?:[eE][-+]?[0-9]+)?"
# The number written with a decimal point (thousands by commas) or a decimal comma
# (thousands by points). A value matching both is ambiguous unless it has no separator.
# Thousands groups start with 1-9: "0,250" can only be a decimal comma.
_POINT_NUMBER = (
    rf"^(?:[0-9]+|[0-9]*\.[0-9]+|[1-9][0-9]{{0,2}}(?:,[0-9]{{3}})+(?:\.[0-9]+)?){_EXPONENT}$"
)
_COMMA_NUMBER = (
    rf"^(?:[0-9]+|[0-9]*,[0-9]+|[1-9][0-9]{{0,2}}(?:\.[0-9]{{3}})+(?:,[0-9]+)?){_EXPONENT}$"
)

# Numeric day/month/year dates ("13/01/1997", "5.1.97", "01-13-1997 10:30").
_NUMERIC_DATE = (
    r"^\s*(?P<a>[0-9]{1,2})[/.\-](?P<b>[0-9]{1,2})[/.\-](?P<y>[0-9]{4}|[0-9]{2})"
    r"(?P<rest>(?:[ T].*)?)$"
)


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
        Up to three input rows (original values) per reason, dropped or flagged.
    notes : list of str
        What was changed without dropping rows (timezone conversion, netted returns).
    flagged : dict of str to int
        Rows kept but read by a convention the data did not settle, per reason
        (``ambiguous_amount``); each has a warning.
    currencies : dict of str to int
        Currency codes found in the amounts (or ``currency_column``), symbols read
        as ISO codes, with their row counts.
    warnings : list of str
        Things to check: ambiguous amounts or dates, ids differing only by leading
        zeros, a file read as Windows-1252.
    settings : dict
        The cleaning settings actually used, JSON-ready: every option of
        :func:`load_transactions` except ``as_of``, with ``decimal``, ``dayfirst``,
        ``currency``, ``sep`` and ``encoding`` resolved (``decimal="auto"`` and
        ``dayfirst=None`` when the data had nothing to decide).
    """

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    flagged: dict[str, int] = field(default_factory=dict)
    currencies: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

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
            "flagged": dict(self.flagged),
            "examples": {
                reason: [{k: _as_text(v) for k, v in row.items()} for row in rows]
                for reason, rows in self.examples.items()
            },
            "currencies": dict(self.currencies),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "settings": dict(self.settings),
        }

    def __str__(self) -> str:
        lines = [
            f"Data quality report for {self.source}",
            f"  rows read: {self.rows_read:,}",
            f"  rows kept: {self.rows_kept:,}",
            f"  rows dropped: {self.rows_dropped:,}",
        ]

        def with_examples(reason: str, count: int) -> None:
            lines.append(f"    {reason}: {count:,}")
            for row in self.examples.get(reason, []):
                shown = ", ".join(f"{k}={_as_text(v)}" for k, v in row.items())
                lines.append(f"      e.g. {shown}")

        for reason, count in self.dropped.items():
            with_examples(reason, count)
        if self.flagged:
            lines.append("  rows kept but flagged:")
            for reason, count in self.flagged.items():
                with_examples(reason, count)
        if self.currencies:
            found = ", ".join(f"{code} ({n:,})" for code, n in self.currencies.items())
            lines.append(f"  currencies: {found}")
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.extend(f"  warning: {warning}" for warning in self.warnings)
        return "\n".join(lines)

    def _drop(self, reason: str, rows: pd.DataFrame) -> None:
        if len(rows) == 0:
            return
        self.dropped[reason] = self.dropped.get(reason, 0) + len(rows)
        taken = self.examples.setdefault(reason, [])
        for record in rows.head(_N_EXAMPLES - len(taken)).to_dict("records"):
            taken.append(record)

    def _flag(self, reason: str, rows: pd.DataFrame) -> None:
        self.flagged[reason] = self.flagged.get(reason, 0) + len(rows)
        self.examples[reason] = rows.head(_N_EXAMPLES).to_dict("records")


class TransactionsError(ValueError):
    """Transactions that cannot be used; ``report`` holds the quality report when known."""

    def __init__(self, message: str, report: DataQualityReport | None = None):
        super().__init__(message)
        self.report = report


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "<missing>"
    return str(value)


def _row_examples(values: pd.Series, mask, n: int = _N_EXAMPLES) -> str:
    """``row 3: '12,50'; row 7: '1,234.50'`` -- rows counted from 1 after the header."""
    positions = np.flatnonzero(np.asarray(mask, dtype=bool))[:n]
    return "; ".join(f"row {i + 1}: {values.iloc[i]!r}" for i in positions)


def _read(source, sep, encoding, sheet_name) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    if isinstance(source, pd.DataFrame):
        return source, "DataFrame", {"sep": None, "encoding": None, "sheet_name": None}
    if not isinstance(source, str | os.PathLike):
        raise TransactionsError(
            f"source must be a file path or a pandas DataFrame, got {type(source).__name__}."
        )
    try:
        frame, info = read_table(source, sep=sep, encoding=encoding, sheet_name=sheet_name)
    except ReadError as exc:
        raise TransactionsError(str(exc)) from None
    return frame, info["source"], info


# --- text as Arrow, for vectorised string work ----------------------------------------


def _arrow_text(values: pd.Series) -> pa.Array:
    """A text Series as one Arrow string array (missing values null)."""
    array = pa.array(values.astype("str").array)
    if isinstance(array, pa.ChunkedArray):  # pragma: no cover - depends on the reader
        array = array.combine_chunks()
    return array


def _text_series(array: pa.Array, index: pd.Index) -> pd.Series:
    """An Arrow string array as a ``str`` Series on ``index`` (by position)."""
    series = array.to_pandas()
    series.index = index
    return series.astype("str")


def _mask(array: pa.Array) -> np.ndarray:
    """An Arrow boolean array as a numpy bool array (null is False)."""
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def _is_pure_text(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.StringDtype) or (
        values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "string"
    )


# --- ids ------------------------------------------------------------------------------


def _ids_as_text(ids: pd.Series) -> pd.Series:
    """Customer ids as strings; missing and blank ids become NA; ``"42.0"`` is ``"42"``."""
    if pd.api.types.is_float_dtype(ids):
        whole = ids.notna() & np.isfinite(ids) & (ids == np.floor(ids))
        text = ids.astype(object).where(~whole, ids[whole].astype("int64").astype(str))
        text = text.where(ids.notna(), None).astype(object)
        return pd.Series(
            text.map(lambda v: None if v is None else str(v)), index=ids.index, dtype="str"
        )

    if ids.dtype.kind in "iu":  # plain integers: never missing, never blank
        return ids.astype("str")
    if _is_pure_text(ids):
        # Text only (the usual case): strip and blank-to-NA in one vectorised pass; the
        # value-by-value path below costs about a second per million rows.
        text = ids.astype("str").str.strip()
        return _float_text_as_integer(text.where(text != ""))

    def one(value):
        if value is None or (isinstance(value, float) and (np.isnan(value))) or value is pd.NA:
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        text = str(value).strip()
        return text or None

    text = pd.Series([one(v) for v in ids.to_numpy(dtype=object)], index=ids.index, dtype="str")
    return _float_text_as_integer(text)


def _float_text_as_integer(text: pd.Series) -> pd.Series:
    """``"42.0"`` and ``"42.00"`` (an integer written as a float) become ``"42"``.

    Decided value by value (so Spark's batches decide alike): only digits, a point
    and zeros. ``"00042"`` keeps its zeros; ``"1.5"`` and ``"1e3"`` stay as written.
    """
    chunks = pa.chunked_array(pa.array(text.astype("str").array))
    if not _may_contain(chunks, b".") or not pc.any(pc.match_substring(chunks, ".")).as_py():
        return text  # the usual case: no points
    fixed = pc.replace_substring_regex(_arrow_text(text), r"^([0-9]+)\.0+$", r"\1")
    return _text_series(fixed, text.index)


def _may_contain(chunks: pa.ChunkedArray, byte: bytes) -> bool:
    """False when no string holds ``byte``: a scan of the raw character buffers.

    About ten times faster than a string search; a True (the byte may lie in a
    sliced-off part of a buffer) is confirmed by the caller's exact search.
    """
    code = byte[0]
    for chunk in chunks.chunks:
        buffers = chunk.buffers()
        if len(buffers) < 3 or buffers[2] is None:
            continue
        if (np.frombuffer(buffers[2], dtype=np.uint8) == code).any():
            return True
    return False


def _leading_zero_pairs(ids: pd.Series) -> tuple[int, tuple[str, str] | None]:
    """Pairs of distinct ids equal but for leading zeros (``"42"``, ``"00042"``), one example."""
    chunks = pa.chunked_array(pa.array(ids.astype("str").array))
    zero_led, widths = False, set()
    for chunk in chunks.chunks:  # first bytes and lengths from the raw buffers: no copies
        if len(chunk) == 0:
            continue
        _, offsets, data = chunk.buffers()
        kind = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(offsets, dtype=kind)[chunk.offset : chunk.offset + len(chunk) + 1]
        lengths = np.diff(offsets)
        if data is not None and (lengths > 0).any():
            first = np.frombuffer(data, dtype=np.uint8)[offsets[:-1][lengths > 0]]
            zero_led = zero_led or bool((first == ord("0")).any())
        widths.update((int(lengths.min()), int(lengths.max())))
    # None start with "0", or all ids have one width: no two differ only by leading zeros.
    if not zero_led or len(widths) == 1:
        return 0, None
    distinct = pd.Series(pd.unique(ids.dropna()), dtype="str")
    stripped = distinct.str.lstrip("0").replace("", "0")
    sizes = stripped.value_counts()
    sizes = sizes[sizes > 1]
    if sizes.empty:
        return 0, None
    pairs = int((sizes * (sizes - 1) // 2).sum())
    example = sorted(distinct[stripped == sizes.index[0]].tolist(), key=len)[:2]
    return pairs, (example[0], example[1])


def _duplicated(frame: pd.DataFrame) -> pd.Series:
    """``frame.duplicated(keep="first")``, computed on a few candidate rows.

    Rows that repeat have equal values, so equal row hashes: only a row whose 64-bit
    hash another row shares can repeat one. Sorting the hashes finds those (in 3M
    rows of a log with a few repeats, a few dozen), and pandas' own ``duplicated``
    on them gives the answer: the result is exactly ``frame.duplicated()``, hash
    collisions included. Each column is first
    made a 64-bit number that is equal exactly when ``duplicated`` calls two values
    equal: ids and text by ``pd.factorize`` (every missing value one code), floats
    with -0.0 as 0.0 and one NaN, timestamps as integers; the row hash chains them
    through splitmix64 (Steele, Lea and Flood 2014). 3M rows: 0.5 s against 1.3 s
    for ``duplicated`` on the whole frame, which builds a hash table per column.
    """
    hashes = np.zeros(len(frame), dtype=np.uint64)
    for _, column in frame.items():
        dtype = column.dtype
        if isinstance(dtype, np.dtype) and dtype.kind == "f":
            values = column.to_numpy().astype(np.float64) + 0.0  # -0.0 == 0.0
            key = np.where(np.isnan(values), np.nan, values).view(np.uint64)
        elif isinstance(dtype, np.dtype) and dtype.kind in "iuM":
            key = column.to_numpy().astype(np.int64, copy=False).view(np.uint64)
        else:
            key = pd.factorize(column)[0].view(np.uint64)
        hashes = _splitmix64(hashes ^ key)
    ordered = np.sort(hashes)
    repeated_hashes = ordered[1:][ordered[1:] == ordered[:-1]]
    candidates = np.flatnonzero(np.isin(hashes, repeated_hashes))
    repeated = np.zeros(len(frame), dtype=bool)
    repeated[candidates] = frame.iloc[candidates].duplicated(keep="first").to_numpy()
    return pd.Series(repeated, index=frame.index)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: every input bit moves every output bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _missing_or_blank(values: pd.Series) -> pd.Series:
    """Missing values, and for text columns also empty or whitespace-only ones."""
    missing = values.isna()
    if isinstance(values.dtype, pd.StringDtype):
        return missing | values.str.strip().eq("").fillna(False).astype(bool)
    if values.dtype == object:
        return missing | (values.astype(str).str.strip() == "")
    return missing  # numbers and datetimes cannot be blank


# --- timestamps -----------------------------------------------------------------------


@dataclass
class _Stamps:
    """Parsed timestamps and what the day/month detection saw."""

    parsed: pd.Series  # naive datetime64[ns]; NaT where not a date
    note: str | None = None
    contradicts: np.ndarray | None = None  # valid only under the other day/month order
    out_of_range: np.ndarray | None = None
    dayfirst: bool | None = None  # the rule used for numeric dates; None: none seen
    day_first_only: np.ndarray | None = None  # values only a day-first reading allows
    month_first_only: np.ndarray | None = None
    ambiguous: np.ndarray | None = None  # numeric dates read by a rule nothing decided
    either: np.ndarray | None = None  # numeric dates valid in both orders (05/01/1997)
    numeric: np.ndarray | None = None  # values that look like numeric dates


def _parse_timestamps(
    values: pd.Series,
    timestamp_format: str | None,
    timezone: str,
    dayfirst: bool | None = None,
) -> _Stamps:
    """Parse to naive datetime64[ns] in ``timezone``; unparseable values become NaT.

    With ``dayfirst=None`` the rule for numeric dates is detected from the values;
    when both day-first-only and month-first-only values occur, ``parsed`` follows
    month-first and the caller refuses the column (the masks say which rows).
    """
    result = _Stamps(parsed=values)
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    elif pd.api.types.is_integer_dtype(values) and timestamp_format is None:
        # Integers such as 19970101 are dates, not nanoseconds since 1970.
        parsed = pd.to_datetime(values.astype(str), format="%Y%m%d", errors="coerce")
    elif (
        pd.api.types.is_float_dtype(values)
        and timestamp_format is None
        and bool((values.dropna() % 1 == 0).all())
    ):
        # Whole numbers in a float column (integers with gaps, as pandas reads them):
        # 19970101.0 is a date too.
        whole = values.astype("Int64").astype(str)
        parsed = pd.to_datetime(whole, format="%Y%m%d", errors="coerce")
    else:
        text = values.astype(object).where(values.notna(), None)
        fmt = timestamp_format or "ISO8601"
        try:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        except ValueError:
            # Mixed UTC offsets cannot share one column without a common zone.
            parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
        if timestamp_format is None and parsed.isna().sum() > text.isna().sum():
            # Not all ISO 8601: numeric day/month dates by one rule, then anything else
            # value by value (slower, lenient) -- on the values still missing only.
            failed = (parsed.isna() & text.notna()).to_numpy()
            again = _numeric_dates(values[failed], dayfirst, result, timezone)
            # Numeric dates are settled by their rule (NaT: contradicts it, or no date).
            rest = failed.copy()
            rest[values.index.get_indexer(again.index)] = False
            if rest.any():
                lenient = _lenient_dates(text[rest], timezone, bool(result.dayfirst), result)
                again = pd.concat([again, lenient]) if len(again) else lenient
            if len(again):
                if getattr(parsed.dt, "tz", None) is not None:
                    again = again.dt.tz_localize(timezone).dt.tz_convert("UTC")
                    parsed = parsed.dt.tz_convert("UTC")
                parsed = parsed.where(parsed.notna(), again.reindex(values.index))
    tz = getattr(parsed.dt, "tz", None)
    if tz is not None:
        parsed = parsed.dt.tz_convert(timezone).dt.tz_localize(None)
        result.note = _zoned_note(timezone)
    # pandas' nanosecond range is 1677-09-22 .. 2262-04-11: later or earlier dates
    # (year 2300) are dropped one by one instead of failing the whole column.
    out = _outside_nanosecond_range(parsed)
    if out is not None:
        result.out_of_range = out
        parsed = parsed.where(~out)
    result.parsed = parsed.astype("datetime64[ns]")
    return result


def _lenient_dates(text: pd.Series, timezone: str, dayfirst: bool, result: _Stamps) -> pd.Series:
    """Any other date text, value by value; naive in ``timezone`` like the rest.

    Naive values are taken to be in ``timezone`` already (not read as UTC and
    shifted); zone-aware ones are converted to it. Only a mix of zone-aware values
    with different offsets needs a common zone first.
    """
    options = dict(format="mixed", errors="coerce", dayfirst=dayfirst)
    try:
        dates = pd.to_datetime(text, **options)
    except (ValueError, TypeError):
        try:
            dates = pd.to_datetime(text, utc=True, **options)
        except (ValueError, TypeError):
            return pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert(timezone).dt.tz_localize(None)
        result.note = _zoned_note(timezone)
    return dates


def _zoned_note(timezone: str) -> str:
    return f"timezone-aware timestamps converted to {timezone} and stored without zone"


def _outside_nanosecond_range(stamps: pd.Series) -> np.ndarray | None:
    """Rows of naive datetimes outside pandas' nanosecond range; None when there are none."""
    unit = np.datetime_data(stamps.dtype)[0] if stamps.dtype.kind == "M" else "ns"
    if unit == "ns":  # already nanoseconds: in range by construction
        return None
    ticks = stamps.to_numpy().view("int64")  # NaT is int64's minimum
    low = pd.Timestamp.min.as_unit(unit)._value
    high = pd.Timestamp.max.as_unit(unit)._value
    out = (ticks != np.iinfo(np.int64).min) & ((ticks < low) | (ticks > high))
    return out if out.any() else None


def _integers(digits: pa.Array) -> np.ndarray:
    """Digit strings as int64 (0 where empty: the rows the pattern did not match)."""
    digits = pc.if_else(pc.equal(pc.fill_null(digits, ""), ""), "0", digits)
    return pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False)


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _valid_date(year: np.ndarray, day: np.ndarray, month: np.ndarray) -> np.ndarray:
    """Whether (year, month, day) is a calendar date (Gregorian leap years)."""
    in_year = (month >= 1) & (month <= 12)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = _DAYS_IN_MONTH[np.where(in_year, month, 0)] + (leap & (month == 2))
    return in_year & (day >= 1) & (day <= days)


def _numeric_dates(
    text: pd.Series, dayfirst: bool | None, result: _Stamps, timezone: str
) -> pd.Series:
    """Read ``dd/mm/yyyy`` or ``mm/dd/yyyy`` dates (``/``, ``.`` or ``-``) by one rule.

    ``text`` is the subset of the column that is not ISO 8601. Fills ``result``'s
    detection fields (masks over the whole column) and returns the dates of the
    values that look like numeric dates (NaT where the rule reads no date).
    """
    n_column = len(result.parsed)
    positions = result.parsed.index.get_indexer(text.index)
    array = _arrow_text(text)
    parts = pc.extract_regex(array, _NUMERIC_DATE)
    matched = _mask(parts.is_valid())
    if not matched.any():
        return pd.Series(dtype="datetime64[ns]")
    a = _integers(parts.field("a"))
    b = _integers(parts.field("b"))
    a = np.where(matched, a, 0)
    b = np.where(matched, b, 0)
    day_first_only = matched & (a > 12) & (a <= 31) & (b >= 1) & (b <= 12)
    month_first_only = matched & (b > 12) & (b <= 31) & (a >= 1) & (a <= 12)
    ambiguous = matched & (a >= 1) & (a <= 12) & (b >= 1) & (b <= 12) & (a != b)

    def whole(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(n_column, dtype=bool)
        out[positions[mask]] = True
        return out

    result.day_first_only = whole(day_first_only)
    result.month_first_only = whole(month_first_only)
    result.either = whole(ambiguous)
    result.numeric = whole(matched)
    if dayfirst is None:
        if day_first_only.any():
            dayfirst = True
        else:
            dayfirst = False
            if not month_first_only.any() and ambiguous.any():
                result.ambiguous = whole(ambiguous)
    result.dayfirst = dayfirst
    day, month = (a, b) if dayfirst else (b, a)
    year = _integers(parts.field("y"))
    year = np.where(matched, year, 2000)
    # Two-digit years as strptime's %y: 69-99 are 1900s, 00-68 are 2000s.
    year = np.where(year < 100, np.where(year < 69, 2000 + year, 1900 + year), year)
    # Contradicts the rule: no date by it, but a valid date read the other way round.
    swapped = _valid_date(year, month=day, day=month)
    result.contradicts = whole(matched & (month > 12) & swapped)
    valid = matched & _valid_date(year, day=day, month=month)
    # Dates by calendar arithmetic (no text round trip): months since 1970, then days.
    months = np.where(valid, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + np.where(valid, day - 1, 0).astype("timedelta64[D]")
    dates = pd.Series(np.where(valid, days, np.datetime64("NaT")), index=text.index)
    dates = dates.astype("datetime64[us]")  # us: years past 2262 reach the range check
    rest = _text_series(pc.fill_null(parts.field("rest"), ""), text.index)
    timed = valid & (rest != "").to_numpy()
    if timed.any():  # a time of day after the date: read it as ISO 8601 from the date
        iso = dates[timed].dt.strftime("%Y-%m-%d") + rest[timed]
        try:
            at = pd.to_datetime(iso, format="ISO8601", errors="coerce")
        except ValueError:  # offsets and none mixed: a common zone first
            at = pd.to_datetime(iso, format="ISO8601", errors="coerce", utc=True)
        if getattr(at.dt, "tz", None) is not None:
            at = at.dt.tz_convert(timezone).dt.tz_localize(None)
        dates[timed] = at.astype("datetime64[us]")
    return dates[matched]


# --- amounts --------------------------------------------------------------------------


@dataclass
class _Amounts:
    """Parsed amounts and what the decimal and currency reading saw."""

    values: pd.Series  # float64; NaN where missing or not a number
    decimal: str = "auto"  # "." or "," as used; "auto" when the column held numbers
    currency: pd.Series | None = None  # ISO code per row ("" none); None: no marker at all
    point_only: np.ndarray | None = None  # values only the decimal point reads
    comma_only: np.ndarray | None = None
    ambiguous: np.ndarray | None = None  # read by a convention nothing in the column chose
    either: np.ndarray | None = None  # values readable with a point or a comma ("1,250")


def _parse_amounts(values: pd.Series, decimal: str = "auto") -> _Amounts:
    """Amounts as float64, by the module's rules; vectorised over the whole column."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _Amounts(values.astype("float64"))
    numbers = None
    if not _is_pure_text(values) and values.dtype == object:
        # Python numbers among text (a hand-built frame): numbers are taken as they are.
        is_number = np.array(
            [isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values],
            dtype=bool,
        )
        if is_number.any():
            numbers = pd.Series(values[is_number].astype("float64"), index=values.index[is_number])
            values = values.where(~is_number, None)
    array = _arrow_text(values)
    if decimal != "," and numbers is None:
        plain = _plain_amounts(array, values.index, decimal)
        if plain is not None:
            return plain
    parts = pc.extract_regex(array, _AMOUNT)
    matched = _mask(parts.is_valid())
    num = parts.field("num")
    point_ok = _mask(pc.match_substring_regex(num, _POINT_NUMBER))
    comma_ok = _mask(pc.match_substring_regex(num, _COMMA_NUMBER))
    separated = _mask(pc.match_substring_regex(num, "[.,]"))
    result = _Amounts(values, decimal=".")
    result.point_only = point_ok & ~comma_ok
    result.comma_only = comma_ok & ~point_ok
    result.either = point_ok & comma_ok & separated
    if decimal == "auto":
        decimal = "," if result.comma_only.any() and not result.point_only.any() else "."
        if not result.comma_only.any() and not result.point_only.any():
            result.ambiguous = result.either
    result.decimal = decimal
    if decimal == ",":
        valid, text = comma_ok, pc.replace_substring(pc.replace_substring(num, ".", ""), ",", ".")
    else:
        valid, text = point_ok, pc.replace_substring(num, ",", "")

    # Signs: at most one of -, +, (...) or a trailing minus.
    signs = pc.binary_join_element_wise(
        parts.field("s1"),
        parts.field("s2"),
        parts.field("s3"),
        parts.field("s4"),
        parts.field("s5"),
        pa.scalar("", type=parts.field("s1").type),
    )
    one_sign = _mask(pc.less_equal(pc.utf8_length(signs), 1))
    open_paren = _mask(pc.equal(parts.field("p1"), "("))
    close_paren = _mask(pc.equal(parts.field("p2"), ")"))
    parens = open_paren & close_paren
    has_sign = _mask(pc.not_equal(signs, ""))
    negative = _mask(pc.equal(signs, "-")) | parens
    pre, post = parts.field("pre"), parts.field("post")
    has_pre = _mask(pc.not_equal(pc.fill_null(pre, ""), ""))
    has_post = _mask(pc.not_equal(pc.fill_null(post, ""), ""))
    valid = (
        matched
        & valid
        & one_sign
        & (open_paren == close_paren)
        & ~(parens & has_sign)
        & ~(has_pre & has_post)
    )
    parsed = pc.cast(pc.if_else(pa.array(valid), text, None), pa.float64()).to_numpy(
        zero_copy_only=False
    )
    parsed = np.where(negative, -parsed, parsed)
    out = pd.Series(parsed, index=values.index, dtype="float64")

    # What the pattern does not match ("inf", "NaN", "1_000"): pandas' own reading.
    rest = ~matched & values.notna().to_numpy()
    if rest.any():
        out[rest] = pd.to_numeric(values[rest].astype(object), errors="coerce").astype("float64")
    if numbers is not None:
        out[numbers.index] = numbers
    if result.ambiguous is not None and not result.ambiguous.any():
        result.ambiguous = None

    if (has_pre | has_post).any():
        code = pc.if_else(pa.array(has_pre), pre, pc.fill_null(post, ""))
        code = _text_series(code, values.index)
        code = code.where(valid, "").replace(CURRENCY_SYMBOLS)
        result.currency = code
    result.values = out
    return result


def _plain_amounts(array: pa.Array, index: pd.Index, decimal: str) -> _Amounts | None:
    """Fast path: every value is a plain number with no comma, currency or space.

    Arrow's strict cast either reads them all or fails; then the only question left
    is which values a decimal comma could also read (``"1.234"``, thousands by a
    point). About three times faster than the general pattern, for the usual export.
    """
    try:
        pc.cast(array.slice(0, 1000), pa.float64())  # fails fast on text like "12,50 €"
        parsed = pc.cast(array, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    result = _Amounts(pd.Series(parsed.to_numpy(zero_copy_only=False), index=index))
    pointed = _mask(pc.match_substring_regex(array, r"\.[0-9]"))  # "5." shows no decimal
    comma_ok = _mask(pc.match_substring_regex(array, "^[-+]?" + _COMMA_NUMBER[1:]))
    result.either = pointed & comma_ok
    result.point_only = pointed & ~comma_ok
    result.comma_only = np.zeros(len(index), dtype=bool)
    result.decimal = "."
    if decimal == "auto" and not result.point_only.any() and result.either.any():
        result.ambiguous = result.either
    return result


def _currency_codes(values: pd.Series) -> pd.Series:
    """A currency column as ISO codes ("" where blank); symbols read as codes."""
    text = values.astype("str").str.strip().str.upper().fillna("")
    return text.replace(CURRENCY_SYMBOLS)


def _check_as_of(as_of, timezone: str, report: DataQualityReport) -> pd.Timestamp:
    if isinstance(as_of, bool | int | float | np.integer | np.floating):
        raise TransactionsError(
            f"as_of={as_of!r} is a number, not a date (pandas would read it as nanoseconds "
            f"since 1970). Pass a date such as as_of='1998-06-30' (--as-of 1998-06-30).",
            report,
        )
    try:
        limit = pd.Timestamp(as_of)
    except (TypeError, ValueError):
        raise TransactionsError(f"as_of={as_of!r} is not a date.", report) from None
    if limit is pd.NaT:
        raise TransactionsError("as_of is a missing value (NaT); pass a date.", report)
    if limit.tzinfo is not None:
        limit = limit.tz_convert(timezone).tz_localize(None)
    return limit


def _check_options(returns, zero_amounts, on_invalid, decimal, dayfirst, currency) -> None:
    if returns not in ("drop", "net"):
        raise TransactionsError(f"returns must be 'drop' or 'net', got {returns!r}.")
    if zero_amounts not in ("drop", "keep"):
        raise TransactionsError(f"zero_amounts must be 'drop' or 'keep', got {zero_amounts!r}.")
    if on_invalid not in ("drop", "raise"):
        raise TransactionsError(f"on_invalid must be 'drop' or 'raise', got {on_invalid!r}.")
    if decimal not in ("auto", ".", ","):
        raise TransactionsError(
            f"decimal must be 'auto', '.' or ',' (--decimal auto|.|,), got {decimal!r}."
        )
    if dayfirst not in (None, True, False):
        raise TransactionsError(f"dayfirst must be True, False or None, got {dayfirst!r}.")
    if currency is not None and not (
        isinstance(currency, str) and CURRENCY_SYMBOLS.get(currency, currency).isalpha()
    ):
        raise TransactionsError(
            f"currency must be a currency code such as 'USD' (--currency USD), got {currency!r}."
        )


def load_transactions(
    source,
    *,
    customer_id: str = "customer_id",
    timestamp: str = "timestamp",
    amount: str | None = "amount",
    as_of=None,
    timestamp_format: str | None = None,
    timezone: str = "UTC",
    returns: Literal["drop", "net"] = "drop",
    zero_amounts: Literal["drop", "keep"] = "drop",
    drop_duplicates: bool = True,
    on_invalid: Literal["drop", "raise"] = "drop",
    decimal: Literal["auto", ".", ","] = "auto",
    currency: str | None = None,
    currency_column: str | None = None,
    dayfirst: bool | None = None,
    order_id: str | None = None,
    sep: str | None = None,
    encoding: str | None = None,
    sheet_name: str | int | None = None,
) -> tuple[pd.DataFrame, DataQualityReport]:
    """Read transactions, map column names, validate, clean, and report what was dropped.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        A ``.csv`` (also ``.csv.gz``, ``.tsv``, ``.txt``), ``.xlsx`` or ``.parquet``
        file (read by :func:`segml.io.read_table`), or a DataFrame. The input is
        never modified.
    customer_id, timestamp, amount : str
        Names of the input's customer id, purchase time and purchase value columns.
        ``amount=None`` reads a purchases-only log (lifetimes'
        ``example_transactions.csv``: an id and a date per purchase): no amount is
        read or checked, and the clean log has no ``amount`` column. The purchase
        model is then fitted alone (``CLVModel(spend_model=None)``) and there is no
        CLV. ``currency``, ``currency_column`` and ``returns="net"`` need an amount.
    as_of : date-like, optional
        When given, transactions after this day are dropped (``after_as_of``).
        A number (``19980630``) is refused: pass ``"1998-06-30"``.
    timestamp_format : str, optional
        ``strftime`` format of the timestamps; by default ISO 8601, then numeric
        day/month dates by one rule (see ``dayfirst``), then anything pandas can
        read value by value. Integer columns are read as ``%Y%m%d``.
    timezone : str, default "UTC"
        Zone that timezone-aware timestamps are converted to (then stored naive);
        naive timestamps are assumed to be in it already.
    returns : {"drop", "net"}, default "drop"
        What negative amounts mean: dropped, or subtracted from their purchase (the
        return's own order with ``order_id``, else the customer's latest purchase at
        or before the return).
    zero_amounts : {"drop", "keep"}, default "drop"
        Zero-value rows are dropped (they are not purchases) or kept.
    drop_duplicates : bool, default True
        Drop rows that repeat an earlier row in every column.
    on_invalid : {"drop", "raise"}, default "drop"
        Unparseable timestamps or amounts are dropped and counted, or raise.
    decimal : {"auto", ".", ","}, default "auto"
        Decimal sign of text amounts. ``"auto"`` decides from the values readable
        only one way and refuses a column holding both kinds; ambiguous values
        (``"1,250"``) with nothing to decide are read with a point and flagged.
    currency : str, optional
        Keep the amounts in this currency (ISO code or symbol, e.g. ``"USD"``) and
        drop the others as ``other_currency``. Needed when the amounts mix
        currencies; then amounts with no marker are dropped as ``missing_currency``.
        Amounts with no marker in a column with no other currency are taken to be in
        this one.
    currency_column : str, optional
        Name of a column holding each row's currency code (or symbol); it wins over
        no marker in the amount, and must agree with a marker that is there.
    dayfirst : bool, optional
        Numeric dates (``05/01/1997``) are day-first (True) or month-first (False);
        by default detected from the values that can be read only one way.
    order_id : str, optional
        Name of an order id column: with ``returns="net"`` a return is netted
        against the purchases of its own order (latest first), and a return whose
        order has no purchase is ``return_without_purchase``.
    sep, encoding, sheet_name : optional
        How to read a file (see :func:`segml.io.read_table`); unused for a DataFrame.

    Returns
    -------
    clean : pandas.DataFrame
        ``customer_id``, ``timestamp``, ``amount`` (absent with ``amount=None``) then
        the input's other columns, in input order, with a fresh RangeIndex.
    report : DataQualityReport
        Rows read, kept and dropped by reason, with examples; currencies found,
        warnings, and the resolved settings.

    Raises
    ------
    TransactionsError
        Empty input, a required column missing, ``on_invalid="raise"`` with bad
        values, a column read two ways (decimal signs, day/month orders, currencies),
        or no rows left after cleaning (the report is attached).

    Examples
    --------
    >>> import pandas as pd
    >>> from segml import load_transactions
    >>> raw = pd.DataFrame({"customer_id": [1, 2], "timestamp": ["2024-01-01", "2024-01-02"],
    ...                     "amount": [10.0, -3.0]})
    >>> clean, report = load_transactions(raw)
    >>> clean["customer_id"].tolist(), report.dropped
    (['1'], {'negative_amount': 1})

    A purchases-only log:

    >>> visits = pd.DataFrame({"id": [7, 7, 8], "date": ["2014-03-08", "2014-05-21", "2014-03-08"]})
    >>> clean, report = load_transactions(visits, customer_id="id", timestamp="date", amount=None)
    >>> list(clean.columns), report.settings["amount"]
    (['customer_id', 'timestamp'], None)
    """
    _check_options(returns, zero_amounts, on_invalid, decimal, dayfirst, currency)
    if currency is not None:
        currency = CURRENCY_SYMBOLS.get(currency, currency.upper())

    raw, source_name, read_info = _read(source, sep, encoding, sheet_name)
    report = DataQualityReport(source=source_name, rows_read=len(raw))
    report.warnings.extend(read_info.get("warnings", []))
    report.settings = {
        "customer_id": customer_id,
        "timestamp": timestamp,
        "amount": amount,
        "order_id": order_id,
        "currency_column": currency_column,
        "timestamp_format": timestamp_format,
        "timezone": timezone,
        "returns": returns,
        "zero_amounts": zero_amounts,
        "drop_duplicates": bool(drop_duplicates),
        "on_invalid": on_invalid,
        "decimal": decimal,
        "currency": currency,
        "dayfirst": dayfirst,
        "sep": read_info["sep"],
        "encoding": read_info["encoding"],
        "sheet_name": read_info["sheet_name"],
    }
    if amount is None:
        needs_amount = {
            "currency": currency,
            "currency_column": currency_column,
            "returns": None if returns == "drop" else returns,
        }
        given = [f"{name}={value!r}" for name, value in needs_amount.items() if value is not None]
        if given:
            raise TransactionsError(
                f"amount=None reads a purchases-only log, but {', '.join(given)} needs an "
                "amount column: pass amount='<column>' or drop the option.",
                report,
            )
        if "amount" in raw.columns:
            raise TransactionsError(
                f"amount=None reads a purchases-only log, but {source_name} has an 'amount' "
                "column: pass amount='amount' to use it, or drop the column.",
                report,
            )
    if len(raw) == 0:
        raise TransactionsError(
            f"{source_name} has 0 rows (columns: {list(raw.columns)}); "
            "expected one row per transaction.",
            report,
        )
    mapping = {customer_id: "customer_id", timestamp: "timestamp"}
    if amount is not None:
        mapping[amount] = "amount"
    optional = [name for name in (order_id, currency_column) if name is not None]
    missing = [name for name in [*mapping, *optional] if name not in raw.columns]
    if missing:
        raise TransactionsError(
            f"Required column(s) {missing} not found in {source_name}; the columns found are "
            f"{[str(c) for c in raw.columns]}. Pass the names your data uses, e.g. "
            "load_transactions(path, customer_id='client', timestamp='date', amount='value').",
            report,
        )
    clashes = [
        c
        for c in CANONICAL_COLUMNS
        if c in raw.columns and c not in mapping and c in mapping.values()
    ]
    if clashes:
        raise TransactionsError(
            f"Column(s) {clashes} exist in {source_name} but other columns were mapped onto "
            "those names; rename or drop them before loading.",
            report,
        )
    limit = None if as_of is None else _check_as_of(as_of, timezone, report)

    extras = [c for c in raw.columns if c not in mapping]
    original = raw[list(mapping) + extras]  # a new frame: the input is never mutated
    frame = original.rename(columns=mapping).reset_index(drop=True)
    original = original.reset_index(drop=True)
    keep = pd.Series(True, index=frame.index)

    def drop(reason: str, mask) -> None:
        mask = np.asarray(mask, dtype=bool) & keep.to_numpy()
        if not mask.any():  # the usual case; selecting no rows still costs a frame copy
            return
        report._drop(reason, original[mask])
        keep[mask] = False

    # --- ids
    ids = _ids_as_text(frame["customer_id"])
    drop("missing_customer_id", ids.isna())
    if ids.dtype == "str" and not pd.api.types.is_integer_dtype(frame["customer_id"]):
        pairs, example = _leading_zero_pairs(ids if keep.all() else ids[keep])
        if pairs:
            report.warnings.append(
                f"column '{customer_id}': {pairs:,} pair(s) of customer ids differ only by "
                f"leading zeros (e.g. {example[0]!r} and {example[1]!r}); they are kept as "
                "different customers. If they are the same customer, write the ids one way "
                "before loading."
            )

    # --- timestamps
    stamps = _parse_timestamps(frame["timestamp"], timestamp_format, timezone, dayfirst)
    raw_stamps = frame["timestamp"]
    both = (
        stamps.day_first_only is not None
        and dayfirst is None
        and stamps.day_first_only.any()
        and stamps.month_first_only.any()
    )
    if both:
        raise TransactionsError(
            f"Column '{timestamp}' mixes day-first dates "
            f"({int(stamps.day_first_only.sum()):,} row(s), e.g. "
            f"{_row_examples(raw_stamps, stamps.day_first_only)}) and month-first dates "
            f"({int(stamps.month_first_only.sum()):,} row(s), e.g. "
            f"{_row_examples(raw_stamps, stamps.month_first_only)}); one column is read "
            "with one rule. Pass dayfirst=True (--dayfirst) or dayfirst=False "
            "(--monthfirst); the dates that contradict it are dropped and counted as "
            "contradicts_dayfirst.",
            report,
        )
    # The rule used: as given, else as detected (None: no numeric dates to decide).
    report.settings["dayfirst"] = (
        dayfirst if dayfirst is not None or timestamp_format is not None else stamps.dayfirst
    )
    if stamps.ambiguous is not None:
        report.warnings.append(
            f"column '{timestamp}': {int(stamps.ambiguous.sum()):,} date(s) such as "
            f"{_row_examples(raw_stamps, stamps.ambiguous, 1)} read month-first; "
            "nothing in the column says whether day or month comes first. Pass "
            "dayfirst=True (--dayfirst) if they are day-first."
        )
    if stamps.note:
        report.notes.append(stamps.note)
    parsed = stamps.parsed
    raw_stamp_missing = _missing_or_blank(raw_stamps)
    drop("missing_timestamp", raw_stamp_missing)
    special = np.zeros(len(frame), dtype=bool)
    for extra in (stamps.contradicts, stamps.out_of_range):
        if extra is not None:
            special |= extra
    bad_stamps = parsed.isna().to_numpy() & ~raw_stamp_missing.to_numpy() & keep.to_numpy()
    if on_invalid == "raise" and (bad_stamps & ~special).any():
        rows = bad_stamps & ~special
        examples = frame.loc[rows, "timestamp"].head(_N_EXAMPLES).tolist()
        raise TransactionsError(
            f"Column '{timestamp}': {int(rows.sum())} value(s) are not dates, e.g. "
            f"{examples}. Pass timestamp_format= (a strftime format such as '%d/%m/%Y'), "
            "or on_invalid='drop' to drop and count them.",
            report,
        )
    drop("unparseable_timestamp", bad_stamps & ~special)
    if stamps.contradicts is not None:
        drop("contradicts_dayfirst", stamps.contradicts)
    if stamps.out_of_range is not None:
        drop("out_of_range_timestamp", stamps.out_of_range)
    if limit is not None:
        next_day = limit.normalize() + pd.Timedelta(days=1)
        drop("after_as_of", parsed >= next_day)

    if amount is None:
        # A purchases-only log: every row that has an id and a date is a purchase.
        # (``decimal`` stays as given: it is unused, and batch scoring replays it.)
        frame = frame.assign(customer_id=ids, timestamp=parsed)
        return _finish(frame, keep, drop, drop_duplicates, report, source_name)

    # --- amounts
    amounts = _parse_amounts(frame["amount"], decimal)
    raw_amounts = frame["amount"]
    if amounts.point_only is not None and decimal == "auto":
        if amounts.point_only.any() and amounts.comma_only.any():
            raise TransactionsError(
                f"Column '{amount}' mixes decimal points "
                f"({int(amounts.point_only.sum()):,} row(s), e.g. "
                f"{_row_examples(raw_amounts, amounts.point_only)}) and decimal commas "
                f"({int(amounts.comma_only.sum()):,} row(s), e.g. "
                f"{_row_examples(raw_amounts, amounts.comma_only)}). Pass decimal=',' "
                "(--decimal ,) or decimal='.' (--decimal .) to read the column one way; "
                "the values that do not fit it are dropped and counted as unparseable_amount.",
                report,
            )
    report.settings["decimal"] = amounts.decimal if decimal == "auto" else decimal
    values = amounts.values
    raw_amount_missing = _missing_or_blank(raw_amounts)
    drop("missing_amount", raw_amount_missing | (values.isna() & raw_amounts.isna()))
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
    if amounts.ambiguous is not None:
        flagged = amounts.ambiguous & keep.to_numpy()
        if flagged.any():
            report._flag("ambiguous_amount", original[flagged])
            report.warnings.append(
                f"column '{amount}': {int(flagged.sum()):,} amount(s) such as "
                f"{_row_examples(raw_amounts, flagged, 1)} could have a decimal point or "
                "comma and nothing else in the column decides; they were read with a "
                "decimal point (1,250 as 1250). Pass decimal=',' (--decimal ,) if the "
                "comma is the decimal sign."
            )
    _apply_currency(frame, original, amounts, currency, currency_column, report, drop, keep)
    if zero_amounts == "drop":
        drop("zero_amount", values == 0)

    frame = frame.assign(customer_id=ids, timestamp=parsed, amount=values)
    if returns == "drop":
        drop("negative_amount", values < 0)
    elif order_id is not None:
        frame = _net_returns_by_order(frame, keep, original, report, order_id)
    else:
        frame = _net_returns(frame, keep, original, report)

    return _finish(frame, keep, drop, drop_duplicates, report, source_name)


def _finish(frame, keep, drop, drop_duplicates, report, source_name):
    """Drop repeated rows, keep the rows left, and refuse an empty result."""
    if drop_duplicates:
        drop("duplicate_row", _duplicated(frame) & keep)

    clean = frame[keep].reset_index(drop=True)
    clean["customer_id"] = clean["customer_id"].astype("str")
    if "amount" in clean.columns:
        clean["amount"] = clean["amount"].astype("float64")
    report.rows_kept = len(clean)
    if len(clean) == 0:
        raise _nothing_left_error(report, source_name)
    return clean, report


def _nothing_left_error(report: DataQualityReport, source_name: str) -> TransactionsError:
    """Every row was dropped: how many were read, and why each went."""
    reasons = ", ".join(f"{r}: {n}" for r, n in report.dropped.items())
    return TransactionsError(
        f"No transactions left after cleaning {report.rows_read} row(s) of {source_name} "
        f"(dropped {reasons}). Check the column mapping and formats; the report "
        "is attached as .report.",
        report,
    )


def _apply_currency(frame, original, amounts, currency, currency_column, report, drop, keep):
    """Resolve each row's currency; refuse a mix, or keep the one ``currency`` picks."""
    column = frame[currency_column] if currency_column is not None else None
    code = amounts.currency
    if code is None and column is None:
        report.settings["currency"] = currency
        return
    if code is None:
        code = pd.Series("", index=frame.index, dtype="str")
    if column is not None:
        given = _currency_codes(column)
        conflict = (given != "") & (code != "") & (given != code) & keep
        if conflict.any():
            raise TransactionsError(
                f"Column '{currency_column}' and the currency written in the amounts "
                f"disagree in {int(conflict.sum()):,} row(s), e.g. "
                f"{_row_examples(frame[currency_column], conflict, 1)} beside amount "
                f"{_row_examples(frame['amount'], conflict, 1)}; fix the data or do not pass "
                "currency_column= (--currency-column).",
                report,
            )
        code = given.where(given != "", code)
    live = code[keep & amounts.values.notna()]
    counts = live[live != ""].value_counts()
    # Most rows first, ties by code (as the Spark engine orders them).
    report.currencies = {
        str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    }
    found = list(report.currencies)
    bare = (code == "") & keep
    if len(found) > 1 and currency is None:
        listed = "; ".join(
            f"{c} ({n:,} row(s), e.g. {_row_examples(frame['amount'], (code == c) & keep, 1)})"
            for c, n in report.currencies.items()
        )
        raise TransactionsError(
            f"Column '{report.settings['amount']}' holds amounts in "
            f"{len(found)} currencies: {listed}. Amounts in different currencies are never "
            f"added together: pick one with currency='{found[0]}' (--currency {found[0]}); "
            "the others are dropped and counted as other_currency.",
            report,
        )
    if len(found) == 1:
        single = found[0]
        if bare.any():
            report.notes.append(
                f"{int(bare.sum()):,} amount(s) without a currency marker read as {single}, "
                "the only currency in the column"
            )
        if currency is not None and currency != single:
            drop("other_currency", keep)
        report.settings["currency"] = currency or single
        return
    if len(found) > 1:
        drop("other_currency", (code != "") & (code != currency))
        drop("missing_currency", code == "")
    report.settings["currency"] = currency


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
    # Examples in input order (the rows were sorted by customer and time above).
    report._drop("return_without_purchase", original.loc[returns.index[orphan].sort_values()])
    keep[returns.index[orphan]] = False
    matched = returns[~orphan]
    amounts = frame["amount"].copy()
    if len(matched):
        netted = matched["amount"].groupby(target[~orphan].astype("int64").to_numpy()).sum()
        amounts.loc[netted.index] = amounts.loc[netted.index] + netted.to_numpy()
        _record_netted(report, original, matched.index)
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


def _record_netted(report: DataQualityReport, original: pd.DataFrame, rows: pd.Index) -> None:
    report.notes.append(f"{len(rows)} return(s) netted against earlier purchases")
    report.dropped["return_netted"] = report.dropped.get("return_netted", 0) + len(rows)
    first = rows.sort_values()[:_N_EXAMPLES]  # in input order
    report.examples["return_netted"] = original.loc[first].to_dict("records")


def _net_returns_by_order(
    frame: pd.DataFrame,
    keep: pd.Series,
    original: pd.DataFrame,
    report: DataQualityReport,
    order_id: str,
) -> pd.DataFrame:
    """Net each return against the purchases of its own order (same customer).

    The order's returns are summed and taken from its purchases latest first: a
    purchase is reduced by what its later rows of the order could not absorb. A
    purchase netted to zero is ``fully_returned``; a return whose order (or order
    id) has no purchase is ``return_without_purchase``.
    """
    orders = _ids_as_text(frame[order_id])
    live = frame[keep]
    key = pd.MultiIndex.from_arrays([live["customer_id"], orders[keep]])
    codes = pd.Series(pd.factorize(key)[0], index=live.index)
    codes[orders[keep].isna()] = -1
    is_return = live["amount"] < 0
    purchase_codes = set(codes[~is_return & (codes >= 0)].unique().tolist())
    orphan = is_return & ~codes.isin(purchase_codes)
    report._drop("return_without_purchase", original.loc[orphan[orphan].index])
    keep[orphan[orphan].index] = False
    matched = is_return & ~orphan
    amounts = frame["amount"].copy()
    if not matched.any():
        return frame
    returned = (-live.loc[matched, "amount"]).groupby(codes[matched]).sum()
    targets = live[~is_return & codes.isin(returned.index)]
    target_codes = codes[targets.index]
    # Latest purchase of the order first (input order breaks ties, latest row first).
    ordered = pd.DataFrame(
        {"code": target_codes, "timestamp": targets["timestamp"], "row": targets.index}
    ).sort_values(["code", "timestamp", "row"], ascending=[True, False, False], kind="stable")
    ordered_amounts = amounts[ordered["row"]].to_numpy()
    later = (
        pd.Series(ordered_amounts).groupby(ordered["code"].to_numpy()).cumsum().to_numpy()
        - ordered_amounts
    )
    to_take = returned.reindex(ordered["code"]).to_numpy()
    reduction = np.clip(to_take - later, 0.0, ordered_amounts)
    amounts[ordered["row"].to_numpy()] = ordered_amounts - reduction
    _record_netted(report, original, matched[matched].index)
    keep[matched[matched].index] = False
    emptied = ordered["row"].to_numpy()[(ordered_amounts - reduction) <= 0]
    fully = pd.Series(False, index=frame.index)
    fully[emptied] = True
    fully &= keep
    report._drop("fully_returned", original[fully])
    keep[fully] = False
    totals = pd.Series(ordered_amounts).groupby(ordered["code"].to_numpy()).sum()
    excess = float((returned - totals.reindex(returned.index)).clip(lower=0).sum())
    if excess > 0:
        report.notes.append(
            f"returns exceeded the purchases of their orders by {excess:,.2f} in total; the "
            "excess is not carried to other orders"
        )
    return frame.assign(amount=amounts)
