"""Read a large Parquet log in pieces of whole customers, so memory follows the piece.

A scoring job must not hold a 30M-row log at once, and it must never split a
customer across two pieces: a customer split in two would be cleaned twice (an exact
duplicate or a return in the other half missed) and scored twice, once with half a
history each. :func:`parquet_pieces` therefore partitions by customer id *range*:

1. one pass reads only the customer id column, batch by batch, turns the ids into
   the text the loader gives them (:func:`segml.transactions._ids_as_text`:
   ``42``, ``42.0`` and ``" 42"`` are one customer) and collects the distinct ids,
   sorted as text;
2. consecutive runs of ``piece_customers`` of those sorted ids make the pieces; a
   second pass reads every column, batch by batch, and appends each row to its
   piece's spill file (Parquet with the log's own schema, in a temporary folder
   deleted afterwards), keeping the file's row order within a piece;
3. the pieces are yielded in id order, each read back as ``pd.read_parquet`` reads
   the whole file, so the loader sees the same columns and types.

Every row of a customer lands in the piece of its id, whatever batch it was read
in, so cleaning a piece with :func:`segml.load_transactions` drops the same rows as
cleaning the whole log, and scoring the pieces in order gives the rows of the
whole-log scoring in the same order (sorted by ``customer_id``).

Only what the loader decides row by row may be read this way: :func:`piece_reader`
refuses (returns None for) a log whose ``amount`` or ``timestamp`` column is text
(the decimal mark and the day-first rule are decided from the whole column) or a
``currency_column`` (mixed currencies are refused over the whole log); those are read
whole. Rows with a missing id go to the first piece, where the loader drops and counts
them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PieceReader", "PieceReport", "clean_pieces", "piece_reader"]

#: Rows read from the Parquet file at once, in either pass.
BATCH_ROWS = 1_000_000
#: At most this many spill files are open at once: a piece holds at least
#: ``distinct ids / MAX_PIECES`` customers, whatever ``piece_customers`` asks.
MAX_PIECES = 256


@dataclass
class PieceReader:
    """A Parquet log to read in pieces of whole customers (see the module docs).

    Attributes
    ----------
    path : pathlib.Path
        The log.
    customer_id : str
        Name of its customer id column.
    n_rows : int
        Rows in the file.
    """

    path: Path
    customer_id: str
    n_rows: int
    batch_rows: int = BATCH_ROWS

    def distinct_ids(self) -> pd.Series:
        """The distinct customer ids (as the loader reads them, missing ids left out),
        sorted as text."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from segml.io import arrow_integers_exact
        from segml.transactions import _ids_as_text

        found = []
        for batch in pq.ParquetFile(self.path).iter_batches(
            batch_size=self.batch_rows, columns=[self.customer_id]
        ):
            ids = _ids_as_text(arrow_integers_exact(batch.column(0)))
            found.append(pc.unique(pa.array(ids.dropna().array, type=pa.large_string())))
        distinct = pc.unique(pa.chunked_array(found, type=pa.large_string()))
        # Arrow sorts strings by their UTF-8 bytes: the order of code points, which is
        # how pandas sorts the ids of the whole-log path.
        return pd.Series(distinct.take(pc.sort_indices(distinct)), dtype="str")

    def pieces(self, distinct: pd.Series, piece_customers: int) -> Iterator[pd.DataFrame]:
        """The log's rows, one frame per run of ``piece_customers`` consecutive ids of
        ``distinct`` (at most :data:`MAX_PIECES` pieces), in id order."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from segml.io import arrow_integers_exact, read_parquet
        from segml.transactions import _ids_as_text

        size = max(int(piece_customers), -(-len(distinct) // MAX_PIECES), 1)
        # Piece j holds distinct[j * size : (j + 1) * size]: the first id of each
        # later piece is a boundary, and an id's piece is how many boundaries it passes.
        boundaries = distinct.iloc[size::size].to_numpy(dtype=object)
        del distinct  # 10M ids are ~0.2 GB: the caller drops its reference too
        n_pieces = len(boundaries) + 1
        source = pq.ParquetFile(self.path)
        schema = source.schema_arrow
        folder = Path(tempfile.mkdtemp(prefix="segml-pieces-"))
        writers: dict[int, Any] = {}
        try:
            for batch in source.iter_batches(batch_size=self.batch_rows):
                table = pa.Table.from_batches([batch], schema=schema)
                ids = _ids_as_text(arrow_integers_exact(batch.column(self.customer_id)))
                # Each distinct id of the batch is looked up once; a missing id (code
                # -1) goes to the first piece, where the loader drops and counts it.
                codes, uniques = pd.factorize(ids)
                of_unique = np.searchsorted(boundaries, uniques.to_numpy(dtype=object), "right")
                piece = np.append(of_unique, 0)[codes]
                order = np.argsort(piece, kind="stable")  # keeps the file's row order
                bounds = np.searchsorted(piece[order], np.arange(n_pieces + 1))
                table = table.take(order)
                for number in np.flatnonzero(np.diff(bounds)):
                    part = table.slice(bounds[number], bounds[number + 1] - bounds[number])
                    writer = writers.get(number)
                    if writer is None:
                        writer = pq.ParquetWriter(
                            folder / f"{number:05d}.parquet", schema, compression="none"
                        )
                        writers[number] = writer
                    writer.write_table(part)
            for writer in writers.values():
                writer.close()
            for number in sorted(writers):
                spill = folder / f"{number:05d}.parquet"
                frame = read_parquet(spill)  # integer ids with nulls stay exact
                os.remove(spill)  # the disk used falls as the pieces are read
                yield frame
        finally:
            for writer in writers.values():
                writer.close()  # closing twice is a no-op; a failed pass leaves them open
            shutil.rmtree(folder, ignore_errors=True)


def piece_reader(
    transactions: Any, options: Mapping[str, Any], *, min_rows: int
) -> PieceReader | None:
    """A :class:`PieceReader` when ``transactions`` is a Parquet file of more than
    ``min_rows`` rows that can be cleaned piece by piece; None otherwise.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "log.parquet")
    >>> pd.DataFrame({"customer_id": ["b", "a", "b"], "amount": [1.0, 2.0, 3.0],
    ...               "timestamp": pd.to_datetime(["2024-01-01"] * 3)}).to_parquet(path)
    >>> reader = piece_reader(path, {}, min_rows=1)
    >>> reader.distinct_ids().tolist()
    ['a', 'b']
    >>> [piece["customer_id"].tolist() for piece in reader.pieces(reader.distinct_ids(), 1)]
    [['a'], ['b', 'b']]
    >>> piece_reader(path, {}, min_rows=3) is None  # small enough to read whole
    True
    """
    if not isinstance(transactions, str | os.PathLike):
        return None
    path = Path(transactions)
    if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file():
        return None
    if options.get("currency_column") is not None:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except (OSError, pa.ArrowException):
        return None  # the whole-log reader words the error
    if source.metadata.num_rows <= min_rows:
        return None
    schema = source.schema_arrow
    names = {key: options.get(key) or key for key in ("customer_id", "timestamp", "amount")}
    if any(name not in schema.names for name in names.values()):
        return None  # the loader names the missing column
    amount = schema.field(names["amount"]).type
    stamp = schema.field(names["timestamp"]).type
    typed = (pa.types.is_integer(amount) or pa.types.is_floating(amount)) and (
        pa.types.is_timestamp(stamp) or pa.types.is_date(stamp)
    )
    if not typed:
        return None
    return PieceReader(
        path=path,
        customer_id=names["customer_id"],
        n_rows=source.metadata.num_rows,
        batch_rows=BATCH_ROWS,
    )


class PieceReport:
    """One :class:`segml.DataQualityReport` for the pieces of a log, cleaned one by one.

    Counts (rows read, kept, dropped and flagged per reason, currencies) are sums
    over the pieces, so they equal the whole log's; the examples are the first three
    rows per reason in piece order (customer id order), notes and warnings are each
    listed once, and the settings are the first piece's. A warning about customer ids
    that differ only by leading zeros counts the pairs within each piece.
    """

    def __init__(self, source: str):
        from segml.transactions import DataQualityReport

        self.report = DataQualityReport(source=source)

    def add(self, piece) -> None:
        """Add one piece's report."""
        merged = self.report
        merged.rows_read += piece.rows_read
        merged.rows_kept += piece.rows_kept
        for target, counts in ((merged.dropped, piece.dropped), (merged.flagged, piece.flagged)):
            for reason, count in counts.items():
                target[reason] = target.get(reason, 0) + count
        for code, count in piece.currencies.items():
            merged.currencies[code] = merged.currencies.get(code, 0) + count
        for reason, rows in piece.examples.items():
            taken = merged.examples.setdefault(reason, [])
            taken.extend(rows[: max(3 - len(taken), 0)])
        for target, texts in ((merged.notes, piece.notes), (merged.warnings, piece.warnings)):
            target.extend(text for text in texts if text not in target)
        if not merged.settings:
            merged.settings = dict(piece.settings)


def clean_pieces(
    reader: PieceReader, pieces: Iterator[pd.DataFrame], options: Mapping[str, Any], report
) -> Iterator[pd.DataFrame]:
    """Each piece cleaned by :func:`segml.load_transactions` with ``options``; every
    piece's report is added to ``report`` (a :class:`PieceReport`).

    A piece whose every row is dropped yields nothing (the whole log may still have
    rows); when no piece keeps a row, the loader's error is raised for the whole log.
    Any other loader error is raised as it is, with the report so far.
    """
    from segml.transactions import TransactionsError, _nothing_left_error, load_transactions

    for raw in pieces:
        try:
            clean, piece_report = load_transactions(raw, **dict(options))
        except TransactionsError as exc:
            piece_report = exc.report
            emptied = (
                piece_report is not None
                and piece_report.rows_read > 0
                and piece_report.rows_dropped == piece_report.rows_read
            )
            if not emptied:
                if piece_report is not None:
                    report.add(piece_report)
                raise TransactionsError(f"{reader.path}: {exc}", report.report) from None
            report.add(piece_report)
            continue
        report.add(piece_report)
        yield clean
    merged = report.report
    if merged.rows_kept == 0:
        raise _nothing_left_error(merged, str(reader.path))
