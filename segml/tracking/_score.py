"""Batch scoring with a saved model: chunked, streamed, and written atomically.

:func:`score_transactions` is the Python twin of ``segml score``. It loads the
scoring model (``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or a local model
folder), builds every customer's features as of a date with
:func:`segml.scoring.customer_features` (the code training used, with the model's
own windows), predicts with the MLflow pyfunc, and writes one row per customer:

``customer_id``, :data:`segml.scoring.OUTPUT_COLUMNS`, then ``model_name``,
``model_version``, ``run_id`` and ``as_of`` (:data:`SCORE_COLUMNS`).

How a nightly job stays safe and small:

- Customers are scored in chunks of ``chunk_customers`` consecutive customer ids
  (all of a customer's transactions in one chunk), so the features and predictions
  held at once stay bounded; each chunk is appended to the output as it is done.
  Rows come out sorted by ``customer_id`` whatever the chunk size.
- The output is written to ``.OUT.<pid>.<random>.tmp`` in the output's folder,
  flushed, fsynced and renamed onto ``OUT``: a crash or kill at any moment leaves
  either the previous ``OUT`` untouched or the complete new one. The hidden temp
  name never matches ``OUT``; temp files of killed runs are removed by the next run.
- The output format follows the extension: ``.parquet`` or ``.csv``.
- With ``previous=OLD`` the tier and segment migration matrices since the previous
  scoring (:func:`segml.scoring.migration_matrix`) are written beside the output as
  ``<stem>.migration_tier.csv`` and ``<stem>.migration_segment.csv``.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segml.features._rfm import FeatureError, _day
from segml.scoring import OUTPUT_COLUMNS, customer_features, migration_matrix
from segml.tracking._model import cast_to_signature
from segml.tracking._store import TrackingError

__all__ = [
    "METADATA_COLUMNS",
    "SCORE_COLUMNS",
    "ScoreError",
    "ScoreResult",
    "atomic_output",
    "score_transactions",
    "write_migration",
]

#: Columns added to the model's outputs: which model scored, and as of when.
METADATA_COLUMNS = ("model_name", "model_version", "run_id", "as_of")
#: Every column of a scoring output, in order.
SCORE_COLUMNS = ("customer_id", *OUTPUT_COLUMNS, *METADATA_COLUMNS)
#: Output formats, by file extension.
FORMATS = (".parquet", ".csv")
DEFAULT_CHUNK_CUSTOMERS = 200_000

_STRING_COLUMNS = ("customer_id", "segment_name", "tier", "risk_band", "action", *METADATA_COLUMNS)
_MIGRATION_COLUMNS = ("tier", "segment")


class ScoreError(ValueError):
    """Scoring cannot run as asked; the message says what is wrong and how to fix it."""


@dataclass
class ScoreResult:
    """What :func:`score_transactions` did.

    Attributes
    ----------
    out : pathlib.Path or None
        The written output (None when the scores were returned instead).
    scores : pandas.DataFrame or None
        The scores (:data:`SCORE_COLUMNS`) when no ``out`` was given.
    n_customers : int
        Customers scored (one row each).
    n_transactions : int
        Transactions read up to ``as_of`` (after the loader's cleaning).
    model_name, model_version, run_id : str
        The model that scored ("" where unknown, e.g. the version of a folder).
    as_of : str
        Scoring date, ISO format.
    migration : dict of str to pandas.DataFrame
        Tier and segment migration matrices when ``previous`` was given.
    migration_paths : dict of str to pathlib.Path
        Where they were written (with ``out``).
    seconds : dict of str to float
        Time taken by each step.
    """

    out: Path | None
    scores: pd.DataFrame | None
    n_customers: int
    n_transactions: int
    model_name: str
    model_version: str
    run_id: str
    as_of: str
    migration: dict[str, pd.DataFrame] = field(default_factory=dict)
    migration_paths: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- output
def _check_format(path: Path, what: str = "out") -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ScoreError(
            f"{what} must end in .parquet or .csv (the format follows the extension), "
            f"got {path.name!r}."
        )
    return suffix


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
def atomic_output(path: str | os.PathLike):
    """Write ``path`` through a hidden temp file in its folder; rename it on success.

    Yields the temp path to write to. When the block ends normally the temp file is
    fsynced and renamed onto ``path`` (atomic on POSIX), then the folder is fsynced;
    when it raises, the temp file is deleted and ``path`` is untouched. A process
    killed inside the block leaves only ``.NAME.<pid>.<random>.tmp``, which never
    matches ``path`` and is removed by the next :func:`atomic_output` of ``path``.

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


def _arrow_schema():
    import pyarrow as pa

    types = {"segment": pa.int64()}
    types.update({name: pa.float64() for name in OUTPUT_COLUMNS if name not in types})
    types.update({name: pa.string() for name in _STRING_COLUMNS})
    return pa.schema([(name, types[name]) for name in SCORE_COLUMNS])


class _TableWriter:
    """Appends chunks of scores to an open Parquet or CSV file."""

    def __init__(self, path: Path, suffix: str):
        self.path = path
        self.suffix = suffix
        self.rows = 0
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            self._schema = _arrow_schema()
            self._writer = pq.ParquetWriter(str(path), self._schema)
        else:
            self._handle = open(path, "w", encoding="utf-8", newline="")

    def write(self, frame: pd.DataFrame) -> None:
        if self.suffix == ".parquet":
            import pyarrow as pa

            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
            self._writer.write_table(table)
        else:
            frame.to_csv(self._handle, header=self.rows == 0, index=False)
            self._handle.flush()
        self.rows += len(frame)

    def close(self) -> None:
        if self.suffix == ".parquet":
            self._writer.close()
        else:
            self._handle.close()


# ---------------------------------------------------------------------------- model
@dataclass
class _Model:
    pyfunc: Any
    scorer: Any
    name: str
    version: str
    run_id: str


class Laps:
    """Seconds per step: ``lap("name")`` records the time since the previous lap."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._clock = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._clock
        self._clock = now


@contextmanager
def _tracking(uri: str):
    """Use ``uri`` as MLflow's tracking (and default registry) URI for the block.

    The URI in use before is set back afterwards, so scoring leaves MLflow where it was.
    """
    import mlflow

    before = mlflow.get_tracking_uri()
    # mlflow.set_tracking_uri also writes MLFLOW_TRACKING_URI: put that back too.
    environment_before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
        if environment_before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = environment_before


def _parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME@ALIAS`` -> (NAME, ALIAS, None); ``models:/NAME/V`` -> (NAME, None, V)."""
    body = uri[len("models:/") :].strip("/")
    if "@" in body:
        name, alias = body.rsplit("@", 1)
        if name and alias and "/" not in alias:
            return name, alias, None
    elif "/" in body:
        name, version = body.rsplit("/", 1)
        if name and version:
            return name, None, version
    raise ScoreError(
        f"Cannot read the model URI {uri!r}: use models:/NAME@ALIAS, models:/NAME/VERSION "
        "or a local model folder."
    )


def _resolve_registered(uri: str, tracking_uri: str) -> tuple[str, str, str]:
    """Check a ``models:/`` URI against the registry: (name, version, run_id)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name, alias, version = _parse_models_uri(uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" not in str(exc.error_code):
            raise TrackingError(
                f"Cannot read the model registry at {tracking_uri}: {exc}"
            ) from None
        names = sorted(m.name for m in client.search_registered_models())
        raise ScoreError(
            f"No registered model named {name!r} in {tracking_uri}; registered models: "
            f"{', '.join(names) if names else 'none'}. Train one with `segml train`, or pass "
            "--tracking-uri where it was registered."
        ) from None
    versions = sorted(
        (str(v.version) for v in client.search_model_versions(f"name='{name}'")), key=int
    )
    aliases = dict(registered.aliases or {})
    listed = ", ".join(f"@{a} -> version {v}" for a, v in sorted(aliases.items()))
    known = f"aliases: {listed or 'none'}; versions: {', '.join(versions) or 'none'}"

    if alias is not None:
        if alias not in aliases:
            raise ScoreError(
                f"The registered model {name!r} has no alias {alias!r} ({known}). Use one of "
                f"those, e.g. models:/{name}/{versions[-1] if versions else 'VERSION'}."
            )
        version = str(aliases[alias])
    elif str(version) not in versions:
        raise ScoreError(f"The registered model {name!r} has no version {version!r} ({known}).")
    run_id = client.get_model_version(name, version).run_id or ""
    return name, str(version), run_id


def _load_model(model_uri: str | os.PathLike, tracking_uri: str | None) -> _Model:
    import mlflow

    text = str(model_uri)
    if text.startswith("models:/"):
        if tracking_uri is None:
            from segml.tracking._train import DEFAULT_TRACKING_URI

            tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
        name, version, run_id = _resolve_registered(text, tracking_uri)
        with _tracking(tracking_uri):
            pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    else:
        folder = Path(text)
        if not (folder / "MLmodel").is_file():
            raise ScoreError(
                f"No MLflow model at {folder} (no MLmodel file there). Give a folder written "
                "by `segml train --export`, or models:/NAME@ALIAS / models:/NAME/VERSION."
            )
        pyfunc = mlflow.pyfunc.load_model(str(folder))
        name, version, run_id = folder.resolve().name, "", pyfunc.metadata.run_id or ""
    try:
        scorer = pyfunc.unwrap_python_model()._scorer
    except (AttributeError, mlflow.exceptions.MlflowException):
        raise ScoreError(
            f"{text} is an MLflow model but not a segml scoring model (it has no "
            "CustomerScorer); register one with `segml train`."
        ) from None
    return _Model(pyfunc=pyfunc, scorer=scorer, name=name, version=version, run_id=run_id)


# --------------------------------------------------------------------------- inputs
def _load(transactions, columns: Mapping[str, Any] | None) -> pd.DataFrame:
    from segml.transactions import load_transactions

    clean, _ = load_transactions(transactions, **dict(columns or {}))
    return clean


def _as_day(as_of) -> pd.Timestamp:
    """``as_of`` as midnight of its day, by the rule the features read it with."""
    try:
        return pd.Timestamp(_day(as_of))
    except FeatureError as exc:
        raise ScoreError(f"{exc} Use YYYY-MM-DD.") from None


def _read_previous(previous: str | os.PathLike, what: str = "previous") -> pd.DataFrame:
    """The ``customer_id``, ``tier`` and ``segment`` columns of a scoring output."""
    path = Path(previous)
    suffix = _check_format(path, what)
    if not path.is_file():
        raise ScoreError(f"The {what} scoring {path} does not exist; drop --{what} or fix it.")
    wanted = ["customer_id", *_MIGRATION_COLUMNS]
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            found = list(pq.read_schema(path).names)
        else:
            found = list(pd.read_csv(path, nrows=0).columns)
        missing = [c for c in wanted if c not in found]
        if missing:
            raise ScoreError(
                f"The {what} scoring {path} lacks the column(s) {missing} (it has {found}); "
                "give an output of `segml score`."
            )
        if suffix == ".parquet":
            frame = pd.read_parquet(path, columns=wanted)
        else:
            frame = pd.read_csv(
                path, usecols=wanted, dtype={"customer_id": str}, keep_default_na=False
            )
    except (OSError, ValueError) as exc:
        if isinstance(exc, ScoreError):
            raise
        raise ScoreError(f"Cannot read the {what} scoring {path}: {exc}") from None
    return frame[wanted].astype({"customer_id": str})


def _migration(previous: pd.DataFrame, current: pd.DataFrame, tier_order=None) -> dict:
    order = None
    if tier_order is not None:
        extra = sorted(set(previous["tier"].astype(str)) - set(tier_order))
        order = [*tier_order, *extra]
    return {
        "tier": migration_matrix(previous, current, "tier", order=order),
        "segment": migration_matrix(previous, current, "segment"),
    }


def _write_migration(matrices: Mapping[str, pd.DataFrame], out: Path) -> dict[str, Path]:
    paths = {}
    for name, matrix in matrices.items():
        target = out.with_name(f"{out.stem}.migration_{name}.csv")
        with atomic_output(target) as tmp:
            matrix.to_csv(tmp)
        paths[name] = target
    return paths


def write_migration(
    previous: str | os.PathLike, out: str | os.PathLike, *, tier_order=None
) -> dict[str, Path]:
    """Write the tier and segment migration from ``previous`` to ``out`` beside ``out``.

    For outputs scored elsewhere (``segml score --engine spark``): reads the
    ``customer_id``, ``tier`` and ``segment`` columns of both scorings and writes
    ``<stem>.migration_tier.csv`` and ``<stem>.migration_segment.csv`` atomically.

    Parameters
    ----------
    previous, out : path
        Two outputs of ``segml score`` (``.parquet`` or ``.csv``).
    tier_order : sequence of str, optional
        Tier labels best first; default sorted.

    Returns
    -------
    dict of str to pathlib.Path
        ``{"tier": ..., "segment": ...}``.
    """
    out = Path(out)
    return _write_migration(
        _migration(_read_previous(previous), _read_previous(out, "out"), tier_order), out
    )


def _missing_features_error(missing: list[str], available: list[str]) -> ScoreError:
    hint = ""
    if any(name.startswith("quantity") for name in missing):
        hint = (
            " The model was trained on a log with a 'quantity' column: the transactions "
            "need one too (keep or rename it in the file)."
        )
    return ScoreError(
        f"The model needs {len(missing)} feature(s) these transactions cannot give: {missing}."
        f"{hint} Features built from them: {available}."
    )


# ---------------------------------------------------------------------------- score
def score_transactions(
    model_uri: str | os.PathLike,
    transactions: str | os.PathLike | pd.DataFrame,
    *,
    as_of,
    out: str | os.PathLike | None = None,
    previous: str | os.PathLike | None = None,
    columns: Mapping[str, Any] | None = None,
    chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS,
    tracking_uri: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ScoreResult:
    """Score every customer of a transaction log with a saved model, as of a date.

    Parameters
    ----------
    model_uri : str or path
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` (looked up in the registry
        at ``tracking_uri``) or a local MLflow model folder (``segml train --export``).
    transactions : path or pandas.DataFrame
        The raw log (CSV, Parquet or DataFrame); loaded, validated and cleaned with
        :func:`segml.load_transactions` and ``columns``.
    as_of : date-like
        Scoring date: features read transactions up to and including this day.
    out : path, optional
        ``.parquet`` or ``.csv`` file to write atomically (see the module docs). When
        omitted, the scores are returned in ``ScoreResult.scores``.
    previous : path, optional
        An earlier output (``.parquet`` or ``.csv``): the tier and segment migration
        matrices since then are computed and, with ``out``, written beside it.
    columns : mapping, optional
        Keyword arguments of :func:`segml.load_transactions`, e.g.
        ``{"customer_id": "cust", "timestamp": "date", "amount": "value"}``.
    chunk_customers : int, default 200,000
        Customers scored at once; lower it to use less memory.
    tracking_uri : str, optional
        Registry of ``models:/`` URIs. Default ``$MLFLOW_TRACKING_URI``, else
        ``sqlite:///mlflow.db``.
    on_progress : callable, optional
        Called as ``on_progress(customers_done, customers_total)`` before the first
        chunk (with 0) and after each chunk.

    Returns
    -------
    ScoreResult

    Raises
    ------
    ScoreError
        Unknown model, alias or version (the message lists those that exist), a
        folder that is not a model, transactions lacking what the model needs, an
        ``as_of`` before the first transaction, no customer scored, or an output
        name that is not ``.parquet`` / ``.csv``.
    segml.TransactionsError
        The transactions cannot be read or used (the loader's message).
    """
    lap = Laps()
    seconds = lap.seconds

    if (
        isinstance(chunk_customers, bool)
        or not isinstance(chunk_customers, int | np.integer)
        or (chunk_customers < 1)
    ):
        raise ScoreError(f"chunk_customers must be a whole number >= 1, got {chunk_customers!r}.")
    out_path = Path(out) if out is not None else None
    suffix = _check_format(out_path) if out_path is not None else None
    day = _as_day(as_of)
    as_of_text = day.date().isoformat()
    previous_scores = _read_previous(previous) if previous is not None else None

    model = _load_model(model_uri, tracking_uri)
    scorer = model.scorer
    lap("load model")

    clean = _load(transactions, columns)
    lap("load and validate transactions")
    if len(clean) == 0:
        raise ScoreError("No transactions left after cleaning: nothing to score.")
    first = clean["timestamp"].min()
    known = clean["timestamp"] < day + pd.Timedelta(days=1)
    if not known.any():
        raise ScoreError(
            f"as_of {as_of_text} is before the first transaction ({first.date()}): no customer "
            f"is known then. Use a date on or after {first.date()}."
        )
    if not known.all():
        clean = clean.loc[known]
    del known
    n_transactions = len(clean)

    codes, uniques = pd.factorize(clean["customer_id"], sort=True)
    n_customers = len(uniques)
    del uniques
    order = np.argsort(codes, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_customers))])
    del codes
    lap("group customers")

    feature_columns = list(scorer.feature_columns_)
    metadata = {
        "model_name": model.name,
        "model_version": model.version,
        "run_id": model.run_id,
        "as_of": as_of_text,
    }

    def score_chunk(start: int, stop: int) -> pd.DataFrame:
        rows = order[offsets[start] : offsets[stop]]
        features = customer_features(clean.take(rows), as_of=day, windows_days=scorer.windows_days)
        missing = [c for c in feature_columns if c not in features.columns]
        if missing:
            raise _missing_features_error(missing, list(features.columns))
        scores = model.pyfunc.predict(cast_to_signature(features, feature_columns))
        if len(scores) != len(features):  # pragma: no cover - a broken model
            raise ScoreError(
                f"The model returned {len(scores)} rows for {len(features)} customers."
            )
        scores = scores[["customer_id", *OUTPUT_COLUMNS]].reset_index(drop=True)
        return scores.assign(**metadata)

    kept: list[pd.DataFrame] = []  # the whole table (no out) or the migration labels
    n_scored = 0

    def run(write: Callable[[pd.DataFrame], None] | None) -> None:
        nonlocal n_scored
        if on_progress is not None:
            on_progress(0, n_customers)
        for start in range(0, n_customers, chunk_customers):
            stop = min(start + chunk_customers, n_customers)
            scores = score_chunk(start, stop)
            n_scored += len(scores)
            if write is not None:
                write(scores)
                if previous_scores is not None:
                    kept.append(scores[["customer_id", *_MIGRATION_COLUMNS]])
            else:
                kept.append(scores)
            if on_progress is not None:
                on_progress(stop, n_customers)
        if n_scored == 0:
            raise ScoreError(
                f"No customer could be scored as of {as_of_text} ({n_transactions:,} "
                "transactions read): nothing was written."
            )

    result_scores = None
    if out_path is not None:
        with atomic_output(out_path) as tmp:
            writer = _TableWriter(tmp, suffix)
            try:
                run(writer.write)
            finally:
                writer.close()
    else:
        run(None)
    lap("features, predict and write")

    migration: dict[str, pd.DataFrame] = {}
    migration_paths: dict[str, Path] = {}
    if previous_scores is not None:
        current = pd.concat(kept, ignore_index=True)
        migration = _migration(previous_scores, current, list(scorer.scorecard_.tier_labels_))
        if out_path is not None:
            migration_paths = _write_migration(migration, out_path)
        lap("migration")
    if out_path is None:
        result_scores = pd.concat(kept, ignore_index=True)
        result_scores = result_scores.astype({c: "str" for c in METADATA_COLUMNS})
    return ScoreResult(
        out=out_path,
        scores=result_scores,
        n_customers=n_scored,
        n_transactions=n_transactions,
        model_name=model.name,
        model_version=model.version,
        run_id=model.run_id,
        as_of=as_of_text,
        migration=migration,
        migration_paths=migration_paths,
        seconds=seconds,
    )
