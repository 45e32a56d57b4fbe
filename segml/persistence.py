"""Save and load fitted models as data: JSON for parameters, skops for scikit-learn objects.

Nothing here unpickles. JSON documents carry a ``format`` name and the versions that
wrote them, so a loader can refuse a document it does not understand. skops files
are loaded with an explicit list of trusted types: an object of any other type in
the file is refused before it is built. The node kinds a saved churn model holds are
built here exactly as skops builds them (importing skops costs 0.5-0.8 s, as it
indexes every scikit-learn estimator); anything else is handed to skops.

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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Moved to segml.io (one module reads and writes files); re-exported for existing imports.
from segml.io import atomic_write_bytes, write_table

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
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise PersistenceError(
            f"{path} is not valid JSON ({exc}); was it written by segml?"
        ) from None
    except OSError as exc:  # a folder in its place, no permission, ...
        raise PersistenceError(
            f"Cannot read the saved model file {path}: {exc.strerror}."
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


def _skops_schema(path: Path) -> Any:
    """The ``schema.json`` of a skops file, read without loading anything."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RecursionError) as exc:
        # ValueError: JSON errors, and a bad zip that zipfile reports as one.
        raise PersistenceError(f"{path} is not a skops file ({exc}).") from None


def _schema_types(schema: Any) -> set[str]:
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


def skops_types(path: str | os.PathLike) -> set[str]:
    """Every type named in a skops file's schema (``module.Class``), read without loading it."""
    return _schema_types(_skops_schema(Path(path)))


def load_skops(path: str | os.PathLike, *, trusted: Iterable[str]) -> Any:
    """Load a skops file, refusing it if it names any type outside ``trusted``.

    skops on its own trusts every scikit-learn class and some numpy functions;
    here every type in the file must be on the caller's explicit list (or be a plain
    container or numpy value), checked before anything is built.

    Raises
    ------
    PersistenceError
        If the file is missing or damaged, or holds a type that is not in
        ``trusted`` (the message lists them).
    """
    path = Path(path)
    if not path.exists():
        raise PersistenceError(f"No skops file at {path}.")
    allowed = frozenset(trusted) | _BASIC_TYPES
    schema = _skops_schema(path)
    found = _schema_types(schema)
    untrusted = sorted(found - allowed)
    if untrusted:
        raise PersistenceError(
            f"{path} holds types that are not on the trust list: {untrusted}. "
            "Refusing to load it; re-save the model with this version of segml."
        )
    try:
        try:
            return _SkopsReader(path, allowed).read(schema)
        except _LeftToSkops:
            import skops.io as sio

            return sio.load(path, trusted=sorted(found))
    except PersistenceError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever building raises, the file is at fault
        # skops audits the tree again (functions it would call are refused here, as
        # they are not types of the schema) and a damaged member fails while building.
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise PersistenceError(
            f"{path} is damaged or holds objects segml does not load "
            f"({type(exc).__name__}: {reason}); re-save the model with this version of segml."
        ) from None


class _LeftToSkops(Exception):
    """A skops node kind (or protocol) that :class:`_SkopsReader` leaves to skops."""


class _SkopsReader:
    """Builds the objects of a skops file of protocol 2 (skops 0.10 to 0.16).

    ``import skops.io`` indexes every scikit-learn estimator (it imports all of
    scikit-learn, and pytest): 0.5-0.8 s, most of the time a scoring model takes to
    load in a fresh process. This reader builds the node kinds a saved churn model
    holds (objects, containers, JSON values, numpy arrays, a random generator, a
    Cython loss) exactly as skops' own nodes do, and raises :class:`_LeftToSkops`
    for anything else, which :func:`load_skops` then hands to skops. Every type it
    imports has passed the caller's trust list first (``allowed``); arrays are read
    with ``allow_pickle=False``; an object referring to itself is refused.
    """

    PROTOCOL = 2
    _BUILTINS = {"ListNode": list, "TupleNode": tuple, "DictNode": dict}

    def __init__(self, path: Path, allowed: frozenset[str]):
        self.path = path
        self.allowed = allowed
        self.memo: dict[Any, Any] = {}

    def read(self, schema: Any) -> Any:
        import zipfile

        if not isinstance(schema, dict) or schema.get("protocol") != self.PROTOCOL:
            raise _LeftToSkops
        with zipfile.ZipFile(self.path) as archive:
            self.archive = archive
            return self.build(schema)

    def find(self, module: str, name: str) -> Any:
        import importlib

        if f"{module}.{name}" not in self.allowed:  # pragma: no cover - checked before
            raise PersistenceError(f"{self.path}: {module}.{name} is not on the trust list.")
        return getattr(importlib.import_module(module), name)

    def build(self, state: dict[str, Any]) -> Any:
        saved_id = state.get("__id__")
        if saved_id is not None and saved_id in self.memo:
            value = self.memo[saved_id]
            if value is _IN_PROGRESS:
                raise PersistenceError(f"{self.path} holds an object that contains itself.")
            return value
        loader = state["__loader__"]
        if loader == "CachedNode":
            raise PersistenceError(f"{self.path} refers to an unknown object {saved_id!r}.")
        if saved_id is not None:
            self.memo[saved_id] = _IN_PROGRESS
        value = self._build(loader, state)
        if saved_id is not None:
            self.memo[saved_id] = value
        return value

    def _build(self, loader: str, state: dict[str, Any]) -> Any:
        import io

        import numpy as np

        module, name = state["__module__"], state["__class__"]
        if loader == "JsonNode":
            return json.loads(state["content"])
        if loader == "TypeNode":
            return self.find(module, name)
        if loader in self._BUILTINS:
            if (module, name) != ("builtins", self._BUILTINS[loader].__name__):
                raise _LeftToSkops  # OrderedDict, namedtuples, ...
            if loader == "DictNode":
                key_types = self.build(state["key_types"])
                content = state["content"]
                return {
                    key_type(key): self.build(value)
                    for key_type, (key, value) in zip(key_types, content.items(), strict=True)
                }
            items = [self.build(item) for item in state["content"]]
            return items if loader == "ListNode" else tuple(items)
        if loader == "NdArrayNode":
            if state["type"] == "numpy":
                array = np.load(io.BytesIO(self.archive.read(state["file"])), allow_pickle=False)
                if f"{module}.{name}" != "numpy.ndarray":
                    return self.find(module, name)(array)  # a numpy scalar
                return array
            if state["type"] == "json":
                shape = self.build(state["shape"])
                items = [self.build(item) for item in state["content"]]
                if len(shape) == 1:
                    array = np.empty(len(items), dtype=object)
                    for position, item in enumerate(items):  # no broadcasting of sequences
                        array[position] = item
                    return array
                return np.array(items, dtype=object)
            raise _LeftToSkops
        if loader == "ObjectNode":
            cls = self.find(module, name)
            instance = cls.__new__(cls)
            if state.get("content") is None:
                return instance
            attrs = self.build(state["content"])
            if attrs is not None:
                if hasattr(instance, "__setstate__"):
                    instance.__setstate__(attrs)
                else:
                    instance.__dict__.update(attrs)
            return instance
        if loader == "LossNode":  # a Cython object rebuilt from its __reduce__ arguments
            cls = self.find(module, name)
            args = self.build(state["__reduce__"]["args"])
            instance = cls(*args)
            attrs = self.build(state["content"])
            if attrs:
                if not hasattr(instance, "__setstate__"):
                    raise _LeftToSkops
                instance.__setstate__(attrs)
            return instance
        if loader == "RandomGeneratorNode":
            seed_state = self.build(state["content"]["seed_seq"])
            bit_state = self.build(state["content"]["bit_generator"])
            # numpy names the bit generator inside the state: only a real bit
            # generator class of numpy.random is called (as skops does).
            bit_class = getattr(np.random, str(bit_state["bit_generator"]), None)
            if not (isinstance(bit_class, type) and issubclass(bit_class, np.random.BitGenerator)):
                raise PersistenceError(
                    f"{self.path}: {bit_state['bit_generator']!r} is not a numpy bit generator."
                )
            bit_generator = bit_class(np.random.SeedSequence(**seed_state))
            bit_generator.state = bit_state
            return self.find(module, name)(bit_generator=bit_generator)
        raise _LeftToSkops


_IN_PROGRESS = object()
