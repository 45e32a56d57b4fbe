"""Read transaction files of any supported format; write outputs atomically.

Every command and both engines read and write through this module, so a file is
read the same way whatever reads it, and an output is either the old file or the
complete new one, never half of either.

Reading (:func:`read_table`):

- ``.csv``, ``.csv.gz``, ``.txt``: the separator is sniffed from the first lines
  among comma, semicolon, tab and runs of spaces (as in lifetimes'
  ``CDNOW_master.txt``), unless ``sep`` is given. ``.tsv`` is tab-separated.
  Every value is read as text (ids keep their leading zeros; amounts and dates are
  parsed later by :func:`segml.load_transactions`, which counts the bad ones).
- Encoding: UTF-8 with or without a byte-order mark; a file that is not valid
  UTF-8 is read as Windows-1252, with a warning naming the ``encoding`` option.
- ``.xlsx``: pandas' Excel reader (openpyxl), first sheet unless ``sheet_name``;
  ``.parquet`` / ``.pq``: pyarrow. Both keep their stored types (an Excel text
  cell ``00042`` stays text).

Writing: :func:`atomic_output` (write to a temp file, rename on success),
:func:`atomic_write_bytes` and :func:`write_table`. Outputs get the usual
permissions (``0o666`` less the process umask).

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from segml.io import read_table
>>> path = Path(tempfile.mkdtemp()) / "orders.csv"
>>> _ = path.write_text("client;date;value\\n00042;13/01/1997;12,50\\n", encoding="utf-8")
>>> frame, info = read_table(path)
>>> frame.to_dict("records")
[{'client': '00042', 'date': '13/01/1997', 'value': '12,50'}]
>>> info["sep"], info["encoding"]
(';', 'utf-8')
"""

from __future__ import annotations

import codecs
import csv
import errno
import gzip
import io
import os
import re
import secrets
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "FORMATS",
    "ReadError",
    "arrow_integers_exact",
    "atomic_output",
    "atomic_outputs",
    "atomic_write_bytes",
    "read_parquet",
    "read_table",
    "text_options",
    "write_table",
]

#: File name endings :func:`read_table` reads.
FORMATS = (".csv", ".csv.gz", ".tsv", ".txt", ".parquet", ".pq", ".xlsx")

#: Separators tried by the sniffer, in order of preference on a tie.
_SNIFFED_SEPARATORS = (",", ";", "\t")
_WHITESPACE = r"\s+"
_SNIFF_BYTES = 64 * 1024
_SNIFF_LINES = 50


class ReadError(ValueError):
    """A file that cannot be read; the message names the file and the fix."""


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".csv.gz"):
        return "csv.gz"
    suffix = path.suffix.lower().lstrip(".")
    if suffix in {"csv", "tsv", "txt", "parquet", "pq", "xlsx"}:
        return "parquet" if suffix == "pq" else suffix
    raise ReadError(
        f"Cannot tell the format of {path}: use a .csv, .csv.gz, .tsv, .txt, .xlsx or "
        ".parquet file."
    )


def _head_bytes(path: Path, compressed: bool) -> bytes:
    opener = gzip.open if compressed else open
    with opener(path, "rb") as handle:
        return handle.read(_SNIFF_BYTES)


def _sniff_separator(text: str) -> str:
    """The separator that splits the first lines into the same number (> 1) of fields.

    Fields are counted by the csv module, so separators inside quotes do not count.
    Among the separators that split every line alike, the one giving the most fields
    wins (a decimal comma inside ``;``-separated values splits lines unevenly).
    Runs of spaces are tried last, for fixed-width text such as ``CDNOW_master.txt``.
    """
    lines = text.splitlines()
    if len(text) >= _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut off mid-way
    lines = [line for line in lines[:_SNIFF_LINES] if line.strip()]
    if not lines:
        return ","
    best, best_fields = None, 1
    for sep in _SNIFFED_SEPARATORS:
        counts = {len(row) for row in csv.reader(lines, delimiter=sep)}
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = sep, fields
    if best is not None:
        return best
    counts = {len(line.split()) for line in lines}
    if len(counts) == 1 and counts.pop() > 1:
        return _WHITESPACE
    return ","


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off by the sample's end is not an error.
        return exc.start >= len(data) - 3 and encoding.startswith("utf")
    return True


def read_table(
    path: str | os.PathLike,
    *,
    sep: str | None = None,
    encoding: str | None = None,
    sheet_name: str | int | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a transaction file as a DataFrame, and say how it was read.

    Parameters
    ----------
    path : str or path
        A ``.csv``, ``.csv.gz``, ``.tsv``, ``.txt``, ``.xlsx``, ``.parquet`` or
        ``.pq`` file.
    sep : str, optional
        Field separator of a text file. By default sniffed from the first lines:
        comma, semicolon, tab, or runs of spaces (``r"\\s+"``); ``.tsv`` is tab.
    encoding : str, optional
        Text encoding. By default UTF-8 (a byte-order mark is skipped); a file that
        is not valid UTF-8 is read as Windows-1252 (``cp1252``) and ``info``
        carries a warning naming the option.
    sheet_name : str or int, optional
        ``.xlsx`` only: the sheet to read (name or 0-based index); default the first.

    Returns
    -------
    frame : pandas.DataFrame
        Text files: every value as text (``str``), empty fields missing.
        Excel and Parquet: the stored types.
    info : dict
        ``source``, ``format``, ``sep`` and ``encoding`` (None where they do not
        apply), ``sheet_name``, and ``warnings`` (a list of str).

    Raises
    ------
    ReadError
        A missing, empty or unreadable file, or an unknown format.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "log.txt"
    >>> _ = path.write_text(" 00001 19970101  1   11.77\\n 00002 19970112  1   12.00\\n")
    >>> frame, info = read_table(path)
    >>> info["sep"], list(frame.columns), frame.iloc[0].tolist()
    ('\\\\s+', ['00001', '19970101', '1', '11.77'], ['00002', '19970112', '1', '12.00'])
    """
    path = Path(path)
    if not path.exists():
        raise ReadError(f"No file at {path}; check the path.")
    if path.is_dir():
        raise ReadError(f"{path} is a folder; expected a transaction file.")
    kind = _format_of(path)
    info: dict[str, Any] = {
        "source": str(path),
        "format": kind,
        "sep": None,
        "encoding": None,
        "sheet_name": None,
        "warnings": [],
    }
    try:
        if kind == "parquet":
            return read_parquet(path), info
        if kind == "xlsx":
            return _read_excel(path, sheet_name, info), info
        return _read_text(path, kind, sep, encoding, info), info
    except pd.errors.EmptyDataError:
        raise ReadError(
            f"{path} is empty (0 bytes or no header); expected a header row and transactions."
        ) from None
    except ReadError:
        raise
    except (OSError, ValueError, LookupError) as exc:
        raise ReadError(f"Could not read {path}: {exc}") from None


def arrow_integers_exact(column) -> pd.Series:
    """A pyarrow integer column as pandas, exactly: nullable ``Int64`` when it has nulls.

    pandas turns an integer column with nulls into float64, which rounds integers
    above 2**53 (64-bit ids such as ``9007199254740993`` become ``...992``): two
    customers would merge, or one customer's rows would be read under two ids.

    Examples
    --------
    >>> import pyarrow as pa
    >>> arrow_integers_exact(pa.chunked_array([[2**53 + 1, None]])).tolist()
    [9007199254740993, <NA>]
    """
    import pyarrow as pa

    if not pa.types.is_integer(column.type) or column.null_count == 0:
        return column.to_pandas()
    nullable = pd.UInt64Dtype() if pa.types.is_unsigned_integer(column.type) else pd.Int64Dtype()
    return column.to_pandas(types_mapper={column.type: nullable}.get)


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """A Parquet file as pandas, with integer columns that hold nulls read exactly.

    As :func:`pandas.read_parquet`, except that an integer column with nulls becomes
    a nullable integer column instead of float64 (see :func:`arrow_integers_exact`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.read_parquet(path)
    for field in pq.read_schema(path):
        if pa.types.is_integer(field.type) and frame[field.name].dtype.kind == "f":
            column = pq.read_table(path, columns=[field.name]).column(0)
            frame[field.name] = arrow_integers_exact(column).set_axis(frame.index)
    return frame


def _read_excel(path: Path, sheet_name, info: dict[str, Any]) -> pd.DataFrame:
    try:
        import openpyxl  # noqa: F401  (pandas' Excel reader; checked for a clear message)
    except ImportError:  # pragma: no cover - openpyxl is a dependency
        raise ReadError(f"Reading {path.name} needs openpyxl: pip install openpyxl") from None
    sheet = 0 if sheet_name is None else sheet_name
    try:
        # Cells as stored (dtype=object: text "00042" is not turned into 42), then
        # columns of numbers or datetimes get their types.
        frame = pd.read_excel(path, sheet_name=sheet, engine="openpyxl", dtype=object)
    except (ValueError, IndexError) as exc:
        if "not found" in str(exc) or isinstance(exc, IndexError):
            raise ReadError(
                f"{path} has no sheet {sheet!r}; pass sheet_name= (--sheet-name) with one of "
                f"its sheets: {_sheet_names(path)}."
            ) from None
        raise
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ReadError(f"{path} is not an Excel .xlsx workbook ({exc}).") from None
    info["sheet_name"] = sheet
    return frame.infer_objects()


def _sheet_names(path: Path) -> list[str]:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(book.sheetnames)
    finally:
        book.close()


def text_options(
    path: str | os.PathLike,
    *,
    sep: str | None = None,
    encoding: str | None = None,
    whole_file: bool = False,
) -> dict[str, Any]:
    """How to read a file: its format and, for text, the separator and the encoding.

    The decisions :func:`read_table` takes, for readers that read the file themselves
    (Spark's CSV reader in :mod:`segml.spark`), so every engine reads a file alike.

    Parameters
    ----------
    path : str or path
        A file of one of the :data:`FORMATS`.
    sep : str, optional
        Field separator; by default ``"\\t"`` for ``.tsv``, else sniffed from the first
        lines among comma, semicolon, tab and runs of spaces (``r"\\s+"``).
    encoding : str, optional
        Text encoding; by default ``"utf-8"`` (a byte-order mark is not part of the
        first column's name) when the first 64 KiB are valid UTF-8, else ``"cp1252"``
        with a warning naming the option.
    whole_file : bool, default False
        Check the whole file (not only its first 64 KiB) is valid UTF-8 before
        choosing it, for readers that cannot switch encoding mid-way (Spark's would
        turn the invalid bytes into U+FFFD silently). One pass over the file.

    Returns
    -------
    dict
        ``format`` (``"csv"``, ``"csv.gz"``, ``"tsv"``, ``"txt"``, ``"xlsx"`` or
        ``"parquet"``), ``sep`` and ``encoding`` (None for Excel and Parquet),
        ``warnings`` (a list of str).

    Raises
    ------
    ReadError
        An unknown format, or an empty text file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "orders.csv"
    >>> _ = path.write_bytes("client;city\\n1;K\xf6ln\\n".encode("cp1252"))
    >>> options = text_options(path)
    >>> options["format"], options["sep"], options["encoding"]
    ('csv', ';', 'cp1252')
    >>> options["warnings"][0][:42]
    'orders.csv is not valid UTF-8; it was read'
    """
    path = Path(path)
    kind = _format_of(path)
    options: dict[str, Any] = {"format": kind, "sep": None, "encoding": None, "warnings": []}
    if kind in {"parquet", "xlsx"}:
        return options
    compressed = kind == "csv.gz"
    head = _head_bytes(path, compressed)
    if not head.strip():
        raise ReadError(
            f"{path} is empty (0 bytes or no header); expected a header row and transactions."
        )
    if encoding is None:
        utf8 = _decodes(head, "utf-8")
        if utf8 and whole_file and len(head) >= _SNIFF_BYTES:
            utf8 = _utf8_throughout(path, compressed)
        chosen = "utf-8" if utf8 else "cp1252"
        if not utf8:
            options["warnings"].append(_cp1252_warning(path))
    else:
        chosen = "utf-8" if _is_utf8(encoding) else encoding
    if sep is None:
        python_codec = "utf-8-sig" if chosen == "utf-8" else chosen
        sep = (
            "\t" if kind == "tsv" else _sniff_separator(head.decode(python_codec, errors="replace"))
        )
    options["sep"] = sep
    options["encoding"] = chosen
    return options


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in {"utf-8", "utf8", "utf-8-sig"}


def _utf8_throughout(path: Path, compressed: bool) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    opener = gzip.open if compressed else open
    with opener(path, "rb") as handle:
        try:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _cp1252_warning(path: Path) -> str:
    return (
        f"{path.name} is not valid UTF-8; it was read as Windows-1252 (cp1252). If its "
        "text looks wrong, pass the right encoding with encoding= (--encoding), "
        "e.g. encoding='latin-1'."
    )


def _read_text(
    path: Path, kind: str, sep: str | None, encoding: str | None, info: dict[str, Any]
) -> pd.DataFrame:
    decided = text_options(path, sep=sep, encoding=encoding)  # ReadError when empty
    chosen = decided["encoding"]
    warnings = list(decided["warnings"])
    # "utf-8" as decided, but a byte-order mark is not part of the first column's name.
    options = dict(dtype=str, keep_default_na=False, na_values=[""], sep=decided["sep"])
    try:
        try:
            frame = pd.read_csv(path, encoding=_python_codec(chosen), **options)
        except UnicodeDecodeError:
            if encoding is not None or chosen == "cp1252":
                raise
            chosen = "cp1252"  # the invalid byte came after the sniffed head
            warnings.append(_cp1252_warning(path))
            frame = pd.read_csv(path, encoding=chosen, **options)
    except UnicodeDecodeError as exc:
        raise ReadError(
            f"{path} is not valid {encoding or 'UTF-8 or Windows-1252'} ({exc.reason} at byte "
            f"{exc.start}); pass the file's encoding with encoding= (--encoding), e.g. "
            "encoding='latin-1'."
        ) from None
    info["warnings"].extend(warnings)
    info["sep"] = decided["sep"]
    info["encoding"] = chosen
    return frame


def _python_codec(encoding: str) -> str:
    return "utf-8-sig" if _is_utf8(encoding) else encoding


# --- writing ------------------------------------------------------------------------


def _umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - no /proc: read it by setting it back
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True


def _remove_stale_temp_files(path: Path) -> None:
    """Delete ``.NAME.<pid>.<random>.tmp`` files left by killed runs (dead pid only)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]+\.tmp$")
    for candidate in path.parent.glob(f".{path.name}.*.tmp"):
        match = pattern.match(candidate.name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            candidate.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Write ``path`` through a hidden temp file in its folder; rename it on success.

    Yields the temp path to write to. When the block ends normally the temp file is
    given the usual permissions (``0o666`` less the umask, whatever the writer
    created it with), fsynced and renamed onto ``path`` (atomic on POSIX), then the
    folder is fsynced; when it raises, the temp file is deleted and ``path`` is
    untouched. A process killed inside the block leaves only
    ``.NAME.<pid>.<random>.tmp``, which never matches ``path`` and is removed by the
    next :func:`atomic_output` of ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_output(folder / "table.csv") as tmp:
    ...     _ = tmp.write_text("customer_id,tier\\na,VIP\\n")
    >>> sorted(p.name for p in folder.iterdir())
    ['table.csv']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_files(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A crash at any moment leaves either the old file untouched or the new one complete.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "out" / "params.json"
    >>> atomic_write_bytes(b'{"r": 0.243}', path)
    >>> path.read_bytes()
    b'{"r": 0.243}'
    """
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a DataFrame as Parquet or CSV (by extension), atomically.

    The table is serialised in memory first, then written with
    :func:`atomic_write_bytes`, so a failure leaves any previous file untouched.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "rfm.csv"
    >>> write_table(pd.DataFrame({"frequency": [2, 0]}), path)
    >>> path.read_text()
    ',frequency\\n0,2\\n1,0\\n'
    """
    path = Path(path)
    buffer = io.BytesIO()
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(buffer)
    elif suffix == ".csv":
        buffer.write(frame.to_csv().encode("utf-8"))
    else:
        raise ValueError(f"Cannot tell the table format of {path.name!r}: use .parquet or .csv.")
    atomic_write_bytes(buffer.getvalue(), path)


# ------------------------------------------------------------ several outputs at once
# A scoring run writes its scores and, with a previous scoring, two migration tables.
# A nightly job must never find some of them new and others old, nor a new scoring
# beside a failed exit: atomic_outputs writes every file to a hidden temp file first
# and renames them only when all are complete.
def _temp_path(path: Path) -> Path:
    """``.NAME.<pid>.<random>.tmp`` beside ``path``: never ``path``, owner recognisable."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_outputs(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """Write several files as one: every file is replaced, or none is.

    Yields one temp path per target, in the order given. When the block ends
    normally, every temp file is fsynced, then each is renamed onto its target in
    that order (put the file other runs read, e.g. the scores, last). If a rename
    fails (a target that is a folder, a permission lost meanwhile), the targets
    already renamed get their previous contents back, so the outputs stay as they
    were before the run. When the block raises, the temp files are deleted and no
    target is touched. A killed run leaves only hidden ``.NAME.<pid>.<random>.tmp``
    files, removed by the next write of that target.

    Parameters
    ----------
    paths : sequence of path-like
        The outputs of one run (distinct paths).

    Raises
    ------
    OSError
        A temp file cannot be created or a target cannot be replaced (e.g. it is a
        folder: ``IsADirectoryError`` naming it); no target was changed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "b.csv").mkdir()  # a folder where a file should go
    >>> try:
    ...     with atomic_outputs([folder / "a.csv", folder / "b.csv"]) as (a, b):
    ...         _ = a.write_text("x\\n")
    ...         _ = b.write_text("y\\n")
    ... except IsADirectoryError as exc:
    ...     print(Path(exc.filename).name, "-", exc.strerror)
    b.csv - is a folder, not a file
    >>> sorted(p.name for p in folder.iterdir())
    ['b.csv']
    """
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_temp_files(target)
            tmp = _temp_path(target)
            # Created now, so a folder that cannot be written fails before any work.
            tmp.touch(exist_ok=False)
            temps.append(tmp)
        yield list(temps)
        for tmp in temps:
            os.chmod(tmp, 0o666 & ~_umask())  # the usual permissions, as segml.io gives
            _fsync_file(tmp)
        _commit(list(zip(temps, targets, strict=True)))
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    for folder in dict.fromkeys(target.parent for target in targets):
        _fsync_folder(folder)


def _commit(pairs: list[tuple[Path, Path]]) -> None:
    """Rename each temp file onto its target; on a failure, put back those done."""
    for _, target in pairs:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(target))
    replaced: list[tuple[Path, Path | None]] = []
    backups: list[Path] = []
    try:
        for position, (tmp, target) in enumerate(pairs):
            backup = None
            # The last rename needs no backup: nothing after it can fail.
            if position < len(pairs) - 1 and target.exists():
                backup = _temp_path(target)
                backups.append(backup)
                try:
                    os.link(target, backup)  # free, and the old file keeps its inode
                except OSError:  # pragma: no cover - filesystems without hard links
                    shutil.copy2(target, backup)
            os.replace(tmp, target)
            replaced.append((target, backup))
    except BaseException:
        for target, backup in reversed(replaced):
            if backup is not None:
                os.replace(backup, target)
            else:
                target.unlink(missing_ok=True)
        raise
    finally:
        for backup in backups:
            backup.unlink(missing_ok=True)
