"""Save and load fitted models as data: JSON for parameters, skops for scikit-learn objects.

Nothing here unpickles. JSON documents carry a ``format`` name and the versions that
wrote them, so a loader can refuse a document it does not understand. skops files
are loaded with an explicit list of trusted types: an object of any other type in
the file is refused before it is built.

Examples
--------
>>> import tempfile, pathlib
>>> from segml.persistence import write_json, read_json
>>> path = pathlib.Path(tempfile.mkdtemp()) / "params.json"
>>> write_json({"format": "example", "r": 0.243}, path)
>>> read_json(path)["r"]
0.243
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "PersistenceError",
    "atomic_write_bytes",
    "check_document",
    "dump_skops",
    "load_skops",
    "read_json",
    "skops_types",
    "versions",
    "write_json",
    "write_table",
]


class PersistenceError(ValueError):
    """A saved model could not be read back (wrong format, untrusted type, bad file)."""


def check_document(
    document: Any,
    format_name: str,
    format_version: int,
    *,
    source: str | os.PathLike = "the document",
    error: type[Exception] = PersistenceError,
) -> None:
    """Refuse a saved document of another format, or of a version this segml cannot read.

    Every saved segml object carries ``format`` and ``format_version``; loaders call
    this before reading anything else, so an old or foreign file fails with one
    clear message instead of a ``KeyError`` half-way through.

    Examples
    --------
    >>> check_document({"format": "segml.CLVModel", "format_version": 1}, "segml.CLVModel", 1)
    >>> check_document({"format": "other"}, "segml.CLVModel", 1)
    Traceback (most recent call last):
    ...
    segml.persistence.PersistenceError: Not a saved segml.CLVModel: the document has format 'other'.
    """
    found = document.get("format") if isinstance(document, Mapping) else type(document).__name__
    if found != format_name:
        raise error(f"Not a saved {format_name}: {source} has format {found!r}.")
    version = document.get("format_version")
    if version != format_version:
        raise error(
            f"{source} is a {format_name} of format_version {version!r}; this segml reads "
            f"version {format_version}. Re-fit or re-save it with this segml."
        )


def versions() -> dict[str, str]:
    """Versions of segml and the libraries whose numbers a saved model depends on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("segml", "numpy", "pandas", "scikit-learn", "scipy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - only in a broken install
            found[name] = "unknown"
    return found


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A crash at any moment leaves either the old file untouched or the new one complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(frame, path: str | os.PathLike) -> None:
    """Write a DataFrame as Parquet or CSV (by extension), atomically.

    The table is serialised in memory first, then written with
    :func:`atomic_write_bytes`, so a failure leaves any previous file untouched.
    """
    import io

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


def write_json(document: dict[str, Any], path: str | os.PathLike) -> None:
    """Write a JSON document atomically (sorted keys, two-space indent, UTF-8)."""
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False)
    atomic_write_bytes((text + "\n").encode("utf-8"), path)


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON document written by :func:`write_json`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PersistenceError(f"No saved model file at {path}.") from None
    except json.JSONDecodeError as exc:
        raise PersistenceError(
            f"{path} is not valid JSON ({exc}); was it written by segml?"
        ) from None


def dump_skops(obj: Any, path: str | os.PathLike) -> None:
    """Save a scikit-learn object with skops (atomically)."""
    import skops.io as sio

    atomic_write_bytes(sio.dumps(obj), path)


# Plain containers and numpy values that every scikit-learn object is made of; they
# build data, never call code.
_BASIC_TYPES = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
        "builtins.bytes",
        "builtins.slice",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.float64",
        "numpy.float32",
        "numpy.int64",
        "numpy.int32",
        "numpy.uint8",
        "numpy.bool_",
        "numpy.str_",
        "numpy.random.mtrand.RandomState",
        "numpy.random._mt19937.MT19937",
    }
)


def skops_types(path: str | os.PathLike) -> set[str]:
    """Every type named in a skops file's schema (``module.Class``), read without loading it."""
    import json as _json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            schema = _json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, _json.JSONDecodeError) as exc:
        raise PersistenceError(f"{path} is not a skops file ({exc}).") from None
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def load_skops(path: str | os.PathLike, *, trusted: Iterable[str]) -> Any:
    """Load a skops file, refusing it if it names any type outside ``trusted``.

    skops on its own trusts every scikit-learn class and some numpy functions;
    here every type in the file must be on the caller's explicit list (or be a plain
    container or numpy value), checked before anything is built.

    Raises
    ------
    PersistenceError
        If the file holds a type that is not in ``trusted``; the message lists them.
    """
    import skops.io as sio

    path = Path(path)
    if not path.exists():
        raise PersistenceError(f"No skops file at {path}.")
    allowed = set(trusted) | _BASIC_TYPES
    found = skops_types(path)
    untrusted = sorted(found - allowed)
    if untrusted:
        raise PersistenceError(
            f"{path} holds types that are not on the trust list: {untrusted}. "
            "Refusing to load it; re-save the model with this version of segml."
        )
    return sio.load(path, trusted=sorted(found))
