"""Load a saved scoring model without running anything from it.

A segml scoring model is an MLflow "models from code" pyfunc: a folder holding an
``MLmodel`` file, a copy of segml's entry script ``_pyfunc_entry.py`` and the
scorer's data (``artifacts/scorer/scorer.json`` and the churn model's JSON; models
saved before the churn trees were data also hold a skops file).
``mlflow.pyfunc.load_model`` builds the model by *executing the folder's copy
of the script*, and a folder saved with a pickled ``python_model`` would be
unpickled: whoever wrote the folder would run code in the scoring job.

:func:`load_scoring_model` never imports, executes or unpickles anything from the
folder. It checks, before reading any model data:

- ``MLmodel`` is YAML (read with ``yaml.safe_load`` rules, aliases refused) with one
  flavor, ``python_function``, loaded by MLflow's models-from-code loader from an
  entry script named ``_pyfunc_entry.py`` with one artifact, ``scorer``; a pickled
  model (``python_model.pkl``), extra code paths or another flavor are refused;
- every file of the scorer artifact is a regular file that resolves inside the
  folder (a symlink or a ``classifier_file`` pointing outside is refused);
- ``scorer.json`` has the format and a version this segml reads, and the types the
  scorer needs;

then builds the scorer with :meth:`segml.scoring.CustomerScorer.load` from the
installed segml's code: JSON parameters (and, for older models, skops files whose
every type is on an explicit trust list). The folder's ``_pyfunc_entry.py`` is never
executed: the model behaves as the *installed* segml defines it.

Library versions recorded with the model (``scorer.json``, ``requirements.txt``)
that differ from the installed ones in their major or minor version give a
:class:`ModelVersionWarning` naming both. Anything wrong with the folder is a
:class:`ModelLoadError` whose message names the file and what is wrong.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from segml.persistence import PersistenceError, read_json

__all__ = [
    "ENTRY_SCRIPT",
    "ORIGIN_KEY",
    "LoadedModel",
    "ModelLoadError",
    "ModelVersionWarning",
    "load_scorer_artifact",
    "load_scoring_model",
]

#: File name of segml's models-from-code entry script inside a model folder.
ENTRY_SCRIPT = "_pyfunc_entry.py"
#: Key of the ``MLmodel`` metadata that records where an exported model came from.
ORIGIN_KEY = "segml_origin"
#: The one artifact of a segml scoring model: the folder of :meth:`CustomerScorer.save`.
SCORER_ARTIFACT = "scorer"

_CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"
# Keys MLflow writes into the python_function flavor of a models-from-code pyfunc.
# Anything else (python_model: a cloudpickle file; data; a custom loader_module) is
# another kind of model, and code paths would be put on sys.path by MLflow.
_PYFUNC_KEYS = frozenset(
    {
        "artifacts",
        "cloudpickle_version",
        "code",
        "env",
        "loader_module",
        "model_code_path",
        "python_version",
        "streamable",
        "model_config",
        "config",
    }
)
_SCORER_FORMAT = "segml.CustomerScorer"
# No MLmodel or requirements file of a scoring model comes near this: a bigger one
# is not read (a YAML or JSON bomb costs memory before it can be refused).
_MAX_TEXT_BYTES = 1_000_000
# Libraries whose versions the scoring model depends on, as recorded with it.
_VERSION_PACKAGES = (
    "segml",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "skops",
    "mlflow",
    "pyarrow",
)


class ModelLoadError(PersistenceError):
    """A saved scoring model that segml refuses to load, or cannot find.

    The message names the file (or registry entry) and what is wrong with it.
    """


class ModelVersionWarning(UserWarning):
    """The model was saved with another major or minor version of a library."""


@dataclass(frozen=True)
class LoadedModel:
    """A scoring model loaded by :func:`load_scoring_model`, and where it came from.

    Attributes
    ----------
    scorer : segml.scoring.CustomerScorer
        The fitted scorer.
    name, version, run_id : str
        The registered model name, its version and the training run's id. For a
        folder: those recorded at export (``origin``), else the folder's name, ""
        and the run id MLflow recorded ("" for an export made outside a run).
    source : str
        The folder or ``models:/`` URI it was loaded from.
    saved_versions : dict of str to str
        Library versions recorded with the model.
    """

    scorer: Any
    name: str
    version: str
    run_id: str
    source: str
    saved_versions: dict[str, str] = field(default_factory=dict)

    @property
    def cleaning(self) -> dict[str, Any] | None:
        """How the training log was cleaned (None for a model that did not record it)."""
        return getattr(self.scorer, "cleaning", None)

    def predict(self, model_input: pd.DataFrame, *, as_of=None) -> pd.DataFrame:
        """Score the pyfunc's input (``customer_id`` and the feature columns).

        The same as the MLflow pyfunc's ``predict``, without MLflow. ``as_of`` is the
        pyfunc's inference parameter: the day the features were computed at, from
        which the next-purchase dates count (without it the dates are missing).
        """
        from segml.tracking._model import predict_with_ids

        return predict_with_ids(self.scorer, model_input, as_of=as_of)


# ------------------------------------------------------------------------- files
def _inside(path: Path, root: Path) -> Path:
    """``path`` resolved, refused unless it is a regular file or folder inside ``root``."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13)
        raise ModelLoadError(f"{path} cannot be resolved ({exc}); refusing to load it.") from None
    if not real.is_relative_to(root.resolve()):
        raise ModelLoadError(
            f"{path} points outside the model folder {root} (to {real}); refusing to load "
            "it. A saved model refers only to files inside its own folder."
        )
    try:
        mode = real.stat().st_mode
    except FileNotFoundError:
        raise ModelLoadError(f"{path} is missing: the model folder is incomplete.") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ModelLoadError(f"{path} is not a regular file; refusing to read it.")
    return real


def _check_tree(folder: Path, root: Path) -> None:
    """Every entry under ``folder`` (symlinks followed) resolves inside ``root``."""
    seen: set[Path] = set()
    stack = [folder]
    while stack:
        current = stack.pop()
        real = _inside(current, root)
        if real in seen:
            continue
        seen.add(real)
        if real.is_dir():
            try:
                stack.extend(current.iterdir())
            except OSError as exc:
                raise ModelLoadError(f"Cannot list {current}: {exc.strerror}.") from None


def _read_text(path: Path, root: Path) -> str:
    real = _inside(path, root)
    if real.stat().st_size > _MAX_TEXT_BYTES:
        raise ModelLoadError(
            f"{path} is {real.stat().st_size:,} bytes, far larger than any scoring model's; "
            "refusing to read it."
        )
    try:
        return real.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"Cannot read {path}: {exc}.") from None


def _yaml_document(text: str, path: Path) -> Any:
    """``text`` read with YAML's safe loader, refusing aliases (no alias bombs)."""
    import yaml

    # libyaml's loader when present: the pure-Python one takes 3 ms per MLmodel file.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                raise ModelLoadError(
                    f"{path} uses a YAML alias (*) at line {mark.line + 1}, which MLmodel "
                    "files never do; refusing to read it."
                )
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ModelLoadError(
            f"{path} is not a valid MLmodel file ({' '.join(str(exc).split())})."
        ) from None


# ----------------------------------------------------------------------- MLmodel
def _read_mlmodel(folder: Path) -> dict[str, Any]:
    """The folder's MLmodel, checked to be a segml models-from-code pyfunc."""
    path = folder / "MLmodel"
    if not folder.is_dir() or not path.exists():
        raise ModelLoadError(
            f"No MLflow model at {folder} (no MLmodel file there). Give a folder written "
            "by `segml train --export`, or models:/NAME@ALIAS / models:/NAME/VERSION."
        )
    document = _yaml_document(_read_text(path, folder), path)
    if not isinstance(document, dict):
        raise ModelLoadError(f"{path} is not a valid MLmodel file (not a YAML mapping).")
    flavors = document.get("flavors")
    if not isinstance(flavors, dict) or "python_function" not in flavors:
        raise ModelLoadError(
            f"{path} has no python_function flavor: it is not a segml scoring model."
        )
    others = sorted(str(name) for name in flavors if name != "python_function")
    if others:
        raise ModelLoadError(
            f"{path} has the flavor(s) {others} besides python_function: it is not a segml "
            "scoring model (which is a models-from-code pyfunc only); refusing to load it."
        )
    pyfunc = flavors["python_function"]
    if not isinstance(pyfunc, dict):
        raise ModelLoadError(f"{path}: the python_function flavor is not a mapping.")
    if "python_model" in pyfunc or pyfunc.get("loader_module") != _CODE_MODEL_LOADER:
        what = (
            f"a pickled python_model ({pyfunc['python_model']!r})"
            if "python_model" in pyfunc
            else f"loader_module {pyfunc.get('loader_module')!r}"
        )
        raise ModelLoadError(
            f"{path} describes {what}, not segml's models-from-code pyfunc "
            f"(loader_module {_CODE_MODEL_LOADER}); refusing to load it: segml never "
            "unpickles or imports code from a model folder."
        )
    code_path = pyfunc.get("model_code_path")
    if not isinstance(code_path, str) or Path(code_path).name != ENTRY_SCRIPT:
        raise ModelLoadError(
            f"{path} names the entry script {code_path!r}, not segml's {ENTRY_SCRIPT}: "
            "it is not a segml scoring model."
        )
    extra = sorted(str(key) for key in set(pyfunc) - _PYFUNC_KEYS)
    if extra or pyfunc.get("code") not in (None, ""):
        raise ModelLoadError(
            f"{path}: the python_function flavor has entries a segml scoring model never "
            f"has ({extra or ['code']}); refusing to load it."
        )
    return document


def _scorer_folder(folder: Path, mlmodel: dict[str, Any]) -> Path:
    path = folder / "MLmodel"
    artifacts = mlmodel["flavors"]["python_function"].get("artifacts")
    if not isinstance(artifacts, dict) or set(artifacts) != {SCORER_ARTIFACT}:
        found = sorted(artifacts) if isinstance(artifacts, dict) else artifacts
        raise ModelLoadError(
            f"{path} lists the artifacts {found!r}; a segml scoring model has exactly one, "
            f"{SCORER_ARTIFACT!r}."
        )
    relative = (
        artifacts[SCORER_ARTIFACT].get("path")
        if isinstance(artifacts[SCORER_ARTIFACT], dict)
        else None
    )
    if (
        not isinstance(relative, str)
        or not relative
        or Path(relative).is_absolute()
        or ".." in Path(relative).parts
    ):
        raise ModelLoadError(
            f"{path}: the scorer artifact's path {relative!r} is not a path inside the model "
            "folder; refusing to load it."
        )
    scorer = folder / relative
    _inside(scorer, folder)
    return scorer


def _signature_inputs(mlmodel: dict[str, Any], path: Path) -> list[str] | None:
    """Input column names of the MLmodel's signature (None when it has none)."""
    import json

    signature = mlmodel.get("signature")
    if signature is None:
        return None
    try:
        inputs = json.loads(signature["inputs"])
        return [str(column["name"]) for column in inputs]
    except (TypeError, KeyError, ValueError) as exc:
        raise ModelLoadError(f"{path}: the signature's inputs cannot be read ({exc!r}).") from None


def _origin(mlmodel: dict[str, Any], folder: Path) -> dict[str, str]:
    path = folder / "MLmodel"
    metadata = mlmodel.get("metadata") or {}
    recorded = metadata.get(ORIGIN_KEY) if isinstance(metadata, dict) else None
    run_id = mlmodel.get("run_id")
    if recorded is None:
        return {
            "name": folder.resolve().name,
            "version": "",
            "run_id": run_id if isinstance(run_id, str) else "",
        }
    if not isinstance(recorded, dict) or not all(
        isinstance(recorded.get(key), str | int | None) and not isinstance(recorded.get(key), bool)
        for key in ("name", "version", "run_id")
    ):
        raise ModelLoadError(
            f"{path}: metadata.{ORIGIN_KEY} must map name, version and run_id to text, got "
            f"{recorded!r}."
        )
    found = {key: recorded.get(key) for key in ("name", "version", "run_id")}
    return {
        "name": str(found["name"] or folder.resolve().name),
        "version": "" if found["version"] is None else str(found["version"]),
        "run_id": str(found["run_id"] or (run_id if isinstance(run_id, str) else "")),
    }


# --------------------------------------------------------------------- versions
def _minor(text: str) -> tuple[int, int] | None:
    match = re.match(r"\s*(\d+)\.(\d+)", str(text))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _recorded_versions(scorer_document: Mapping[str, Any], folder: Path | None) -> dict[str, str]:
    """Library versions saved with the model: ``scorer.json``, then ``requirements.txt``."""
    found: dict[str, str] = {}
    saved = scorer_document.get("versions")
    if isinstance(saved, dict):
        found.update({str(k): str(v) for k, v in saved.items() if isinstance(v, str)})
    requirements = folder / "requirements.txt" if folder is not None else None
    if requirements is not None and requirements.exists():
        for line in _read_text(requirements, folder).splitlines():
            match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+).*", line)
            if match:
                found.setdefault(match.group(1).lower().replace("_", "-"), match.group(2))
    return found


@cache
def _installed_version(name: str) -> str | None:
    # Installed versions do not change while a process runs; each lookup scans
    # sys.path (about 3 ms), once per process is enough.
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _warn_on_versions(
    recorded: Mapping[str, str], source: str, ignored: frozenset[str] = frozenset()
) -> None:
    differing = []
    for name in _VERSION_PACKAGES:
        if name in ignored:
            continue
        installed = _installed_version(name)
        if name not in recorded or installed is None:
            continue
        saved = recorded[name]
        if _minor(saved) is not None and _minor(saved) != _minor(installed):
            differing.append(f"{name} {saved} (installed: {installed})")
    if differing:
        warnings.warn(
            f"The model {source} was saved with {', '.join(differing)}. A different major "
            "or minor version may load it differently or give other numbers: re-train and "
            "export the model with the installed versions, or install the ones it records.",
            ModelVersionWarning,
            stacklevel=4,  # the caller of load_scoring_model (a folder)
        )


# ----------------------------------------------------------------------- scorer
def _missing(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"the key {exc.args[0]!r} is missing"
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_scorer_document(document: Any, path: Path) -> None:
    """The format, version and the types ``CustomerScorer.load`` relies on."""
    from segml.scoring import _scorer

    if not isinstance(document, dict):
        raise ModelLoadError(f"{path} is not a saved scorer: it holds a {type(document).__name__}.")
    if document.get("format") != _SCORER_FORMAT:
        raise ModelLoadError(
            f"Not a saved {_SCORER_FORMAT}: {path} has format {document.get('format')!r}."
        )
    readable = getattr(_scorer, "SCORER_FORMAT_VERSIONS", (_scorer._FORMAT_VERSION,))
    found = document.get("format_version")
    if isinstance(found, bool) or found not in readable:
        raise ModelLoadError(
            f"{path} is a {_SCORER_FORMAT} of format_version {found!r}; this segml reads "
            f"version {' or '.join(map(str, readable))}. Re-fit or re-save it with this segml."
        )

    def positive_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    settings = document.get("settings")
    problems = []
    if not isinstance(settings, dict):
        problems.append("settings is not a mapping")
    else:
        for key in ("churn_horizon_days", "clv_holdout_days"):
            if not positive_int(settings.get(key)):
                problems.append(f"settings.{key} is {settings.get(key)!r}, not a positive integer")
        windows = settings.get("windows_days")
        if not (isinstance(windows, list) and all(map(positive_int, windows))):
            problems.append(
                f"settings.windows_days is {windows!r}, not a list of positive integers"
            )
        if not isinstance(settings.get("actions"), dict | None):
            problems.append("settings.actions is not a mapping")
    columns = document.get("feature_columns")
    if not (isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns)):
        problems.append("feature_columns is not a list of column names")
    if not isinstance(document.get("as_of"), str):
        problems.append("as_of is not a date")
    for key in ("clv", "segments", "scorecard", "segment_map", "evaluation"):
        if not isinstance(document.get(key), dict):
            problems.append(f"{key} is missing or not a mapping")
    if problems:
        raise ModelLoadError(f"{path} is damaged: {'; '.join(problems)}.")


def _scorer_document(scorer_folder: Path, root: Path) -> dict[str, Any]:
    """``scorer.json``, after checking every file of the scorer folder and the document."""
    _check_tree(scorer_folder, root)
    source = scorer_folder / "scorer.json"
    _inside(source, root)
    try:
        document = read_json(source)
    except PersistenceError as exc:
        raise ModelLoadError(str(exc)) from None
    _check_scorer_document(document, source)
    return document


def _build_scorer(scorer_folder: Path):
    from segml.scoring import CustomerScorer
    from segml.scoring._segment_map import SegmentMapError

    try:
        return CustomerScorer.load(scorer_folder)
    except ModelLoadError:
        raise
    except PersistenceError as exc:  # names its own file (churn model, skops)
        raise ModelLoadError(str(exc)) from None
    except (SegmentMapError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # Everything else CustomerScorer.load reads is inside scorer.json.
        raise ModelLoadError(
            f"{scorer_folder / 'scorer.json'} is damaged: {_missing(exc)}."
        ) from None


def load_scorer_artifact(
    scorer_folder: str | os.PathLike, *, root: str | os.PathLike | None = None
):
    """Check and load the ``scorer`` artifact folder of a scoring model.

    Every file under ``scorer_folder`` must resolve inside ``root`` (default the
    scorer folder itself), and ``scorer.json`` must have a format, version and types
    this segml reads. Used by :func:`load_scoring_model` and by the pyfunc entry script.

    Returns
    -------
    segml.scoring.CustomerScorer

    Raises
    ------
    ModelLoadError
        Naming the file and what is wrong with it.
    """
    scorer_folder = Path(scorer_folder)
    _scorer_document(scorer_folder, Path(root) if root is not None else scorer_folder)
    return _build_scorer(scorer_folder)


def _unused_packages(scorer_folder: Path) -> frozenset[str]:
    """Recorded libraries that loading and scoring this model never use.

    A churn model saved as data (format version 2, or the baseline model) predicts
    with numpy: another scikit-learn or skops version cannot change its numbers, so
    it is not warned about. A version-1 churn model is read through both.
    """
    try:
        document = read_json(scorer_folder / "churn" / "churn_model.json")
    except PersistenceError:  # no boosted churn model, or one the build will name
        return frozenset({"scikit-learn", "skops"})
    if isinstance(document, dict) and document.get("format_version") == 1:
        return frozenset()
    return frozenset({"scikit-learn", "skops"})


def _load_folder(folder: Path, source: str, origin: dict[str, str] | None) -> LoadedModel:
    mlmodel = _read_mlmodel(folder)
    scorer_folder = _scorer_folder(folder, mlmodel)
    inputs = _signature_inputs(mlmodel, folder / "MLmodel")
    document = _scorer_document(scorer_folder, folder)
    # Versions are warned about before the scorer is built, so a load that fails on
    # another version's files comes after the warning that explains it.
    recorded = _recorded_versions(document, folder)
    _warn_on_versions(recorded, source, _unused_packages(scorer_folder))
    scorer = _build_scorer(scorer_folder)
    if inputs is not None and inputs != ["customer_id", *scorer.feature_columns_]:
        raise ModelLoadError(
            f"{folder / 'MLmodel'}: the signature's inputs {inputs} do not match the "
            f"feature columns of {scorer_folder / 'scorer.json'}; the folder was altered."
        )
    where = origin if origin is not None else _origin(mlmodel, folder)
    return LoadedModel(
        scorer=scorer,
        name=where["name"],
        version=where["version"],
        run_id=where["run_id"],
        source=source,
        saved_versions=recorded,
    )


# --------------------------------------------------------------------- registry
def _parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME@ALIAS`` -> (NAME, ALIAS, None); ``models:/NAME/V`` -> (NAME, None, V)."""
    body = uri[len("models:/") :].strip("/")
    if "@" in body:
        name, alias = body.rsplit("@", 1)
        if name and alias and "/" not in alias:
            return name, alias, None
    elif "/" in body:
        name, number = body.rsplit("/", 1)
        if name and number:
            return name, None, number
    raise ModelLoadError(
        f"Cannot read the model URI {uri!r}: use models:/NAME@ALIAS, models:/NAME/VERSION "
        "or a local model folder."
    )


def _resolve_registered(client, uri: str, shown_uri: str) -> tuple[str, str, str]:
    """Check a ``models:/`` URI against the registry: (name, version, run_id)."""
    from mlflow.exceptions import MlflowException

    from segml.tracking._store import TrackingError

    name, alias, number = _parse_models_uri(uri)
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" not in str(exc.error_code):
            raise TrackingError(f"Cannot read the model registry at {shown_uri}: {exc}") from None
        names = sorted(m.name for m in client.search_registered_models())
        raise ModelLoadError(
            f"No registered model named {name!r} in {shown_uri}; registered models: "
            f"{', '.join(names) if names else 'none'}. Train one with `segml train`, or pass "
            "--tracking-uri where it was registered."
        ) from None
    numbers = sorted(
        (str(v.version) for v in client.search_model_versions(f"name='{name}'")), key=int
    )
    aliases = dict(registered.aliases or {})
    listed = ", ".join(f"@{a} -> version {v}" for a, v in sorted(aliases.items()))
    known = f"aliases: {listed or 'none'}; versions: {', '.join(numbers) or 'none'}"
    if alias is not None:
        if alias not in aliases:
            raise ModelLoadError(
                f"The registered model {name!r} has no alias {alias!r} ({known}). Use one of "
                f"those, e.g. models:/{name}/{numbers[-1] if numbers else 'VERSION'}."
            )
        number = str(aliases[alias])
    elif str(number) not in numbers:
        raise ModelLoadError(f"The registered model {name!r} has no version {number!r} ({known}).")
    run_id = client.get_model_version(name, number).run_id or ""
    return name, str(number), run_id


def _load_registered(uri: str, tracking_uri: str | None) -> LoadedModel:
    import mlflow
    from mlflow import MlflowClient

    from segml.tracking._store import mlflow_session, redact_uri

    if tracking_uri is None:
        from segml.tracking._store import DEFAULT_TRACKING_URI

        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    shown = redact_uri(tracking_uri)
    with mlflow_session(tracking_uri) as mlflow_uri:
        client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
        name, number, run_id = _resolve_registered(client, uri, shown)
        with tempfile.TemporaryDirectory(prefix="segml-model-") as download:
            # The registry's copy is downloaded (files only, nothing is loaded) and
            # checked like any folder; the scorer is in memory before it is deleted.
            source = client.get_model_version_download_uri(name, number)
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=download, tracking_uri=mlflow_uri
            )
            return _load_folder(
                Path(local),
                f"models:/{name}/{number}",
                {"name": name, "version": number, "run_id": run_id},
            )


# ------------------------------------------------------------------------- public
def load_scoring_model(
    model_uri: str | os.PathLike, *, tracking_uri: str | None = None
) -> LoadedModel:
    """Load a segml scoring model from a folder or the registry, running none of its code.

    Parameters
    ----------
    model_uri : str or path
        A local model folder (``segml train --export``), ``models:/NAME@ALIAS`` or
        ``models:/NAME/VERSION``.
    tracking_uri : str, optional
        Registry of ``models:/`` URIs. Default ``$MLFLOW_TRACKING_URI``, else
        ``sqlite:///mlflow.db``. The caller checks that it can be used
        (:func:`segml.tracking._store.require_existing_store`).

    Returns
    -------
    LoadedModel
        The scorer, its origin (name, version, run id) and a ``predict`` equal to
        the MLflow pyfunc's.

    Raises
    ------
    ModelLoadError
        A folder that is not a segml scoring model, or one that was altered (the
        message names the file), or an unknown registered model, alias or version
        (the message lists those that exist).
    segml.tracking.TrackingError
        The registry cannot be read.

    Warns
    -----
    ModelVersionWarning
        A library recorded with the model differs from the installed one in its
        major or minor version.

    Examples
    --------
    >>> from segml.tracking._load import load_scoring_model
    >>> load_scoring_model("/nowhere")
    Traceback (most recent call last):
    ...
    segml.tracking._load.ModelLoadError: No MLflow model at /nowhere (no MLmodel file there). ...
    """
    text = str(model_uri)
    if text.startswith("models:/"):
        return _load_registered(text, tracking_uri)
    return _load_folder(Path(text), text, None)
