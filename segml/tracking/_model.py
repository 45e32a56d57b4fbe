"""The scoring model as an MLflow pyfunc: signature, export, logging, registry, loading."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segml.scoring import OUTPUT_COLUMNS, CustomerScorer
from segml.scoring._scorer import BASE_OUTPUT_COLUMNS, DATE_OUTPUT_COLUMNS, STRING_OUTPUT_COLUMNS
from segml.tracking._load import ENTRY_SCRIPT, ORIGIN_KEY, SCORER_ARTIFACT

__all__ = [
    "ENTRY_POINT",
    "cast_to_signature",
    "export_model",
    "model_signature",
    "output_columns",
    "pip_requirements",
    "portable_mlmodel",
    "predict_with_ids",
    "trusted_pyfunc_copy",
]

ENTRY_POINT = str(Path(__file__).with_name(ENTRY_SCRIPT))
# Every customer has these; the predictive columns may be missing (no date, no quantile).
_ALWAYS_PRESENT = frozenset(BASE_OUTPUT_COLUMNS)


def output_columns(scorer: CustomerScorer) -> list[str]:
    """The columns a scorer's predictions have (``output_columns_``), in order."""
    return list(getattr(scorer, "output_columns_", OUTPUT_COLUMNS))


def model_signature(scorer: CustomerScorer):
    """Inputs: ``customer_id`` string and every feature column as double; outputs typed.

    Outputs are the scorer's ``output_columns_``: text columns (labels and the ISO
    next-purchase dates, :data:`segml.scoring.STRING_OUTPUT_COLUMNS`) as ``string``,
    ``segment`` as ``long``, the rest ``double``; columns that may be missing for a
    customer (the predictive ones) are not required. A scorer with the dates takes
    the inference parameter ``as_of`` (text ``YYYY-MM-DD``, default none: no dates).
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema(
        [ColSpec("string", "customer_id")]
        + [ColSpec("double", name) for name in scorer.feature_columns_]
    )

    def output_type(name: str) -> str:
        if name in STRING_OUTPUT_COLUMNS:
            return "string"
        return "long" if name == "segment" else "double"

    columns = output_columns(scorer)
    outputs = Schema(
        [ColSpec("string", "customer_id")]
        + [ColSpec(output_type(name), name, required=name in _ALWAYS_PRESENT) for name in columns]
    )
    params = None
    if any(name in DATE_OUTPUT_COLUMNS for name in columns):
        params = ParamSchema([ParamSpec("as_of", "string", None)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def cast_to_signature(features: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The pyfunc input: ``customer_id`` as a string column, then features as float64.

    MLflow rejects int64 where the signature says double, so counts are cast here.
    """
    frame = features[list(columns)].astype("float64")
    ids = (
        features.index.astype(str)
        if "customer_id" not in features.columns
        else features["customer_id"].astype(str)
    )
    frame.insert(0, "customer_id", np.asarray(ids, dtype=object))
    return frame.reset_index(drop=True)


def predict_with_ids(
    scorer: CustomerScorer, model_input: pd.DataFrame, *, as_of=None
) -> pd.DataFrame:
    """Pyfunc predict: features with a ``customer_id`` column in, scores with it out.

    ``as_of`` (the pyfunc's inference parameter) is the day the features were
    computed at; the next-purchase dates count from it (see
    :meth:`segml.scoring.CustomerScorer.predict`).
    """
    if "customer_id" not in model_input.columns:
        raise ValueError("The model input needs a 'customer_id' column beside the features.")
    features = model_input.set_index(model_input["customer_id"].astype(str))
    scores = scorer.predict(features.drop(columns=["customer_id"]), as_of=as_of)
    # The index's own string array: converting it to Python strings and back cost
    # 0.1 s per million customers.
    scores.insert(0, "customer_id", scores.index.array)
    return scores.reset_index(drop=True)


def pip_requirements() -> list[str]:
    """Pinned requirements of the scoring model (the versions it was trained with)."""
    names = ["segml", "mlflow", "pandas", "numpy", "scipy", "scikit-learn", "skops", "pyarrow"]
    pinned = []
    for name in names:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:  # pragma: no cover - segml run from a source tree
            pinned.append(name)
    return pinned


@contextmanager
def _quiet_mlflow():
    """Silence MLflow's advice to add an input example for file-based models (we do)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        yield


def _model_kwargs(scorer: CustomerScorer, scorer_folder: Path, example: pd.DataFrame) -> dict:
    return dict(
        python_model=ENTRY_POINT,
        artifacts={SCORER_ARTIFACT: str(scorer_folder)},
        signature=model_signature(scorer),
        input_example=example,
        pip_requirements=pip_requirements(),
    )


def _checked_origin(origin: Mapping[str, Any]) -> dict[str, str]:
    """``origin`` as saved: name, version and run id as text (version may be a number)."""
    if not isinstance(origin, Mapping) or set(origin) - {"name", "version", "run_id"}:
        raise ValueError(
            f"origin must be a mapping with the keys name, version and run_id, got {origin!r}."
        )
    checked = {}
    for key in ("name", "version", "run_id"):
        value = origin.get(key)
        if value is None:
            value = ""
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"origin[{key!r}] must be text, got {value!r}.")
        checked[key] = str(value)
    return checked


def export_model(
    scorer: CustomerScorer,
    path: str | os.PathLike,
    *,
    input_example: pd.DataFrame,
    origin: Mapping[str, Any] | None = None,
) -> Path:
    """Write the scoring model as a local MLflow model folder (no tracking server needed).

    The folder is built beside ``path`` and renamed into place, so a failure leaves
    any previous export untouched. Load it with
    :func:`segml.tracking._load.load_scoring_model` (which runs no code from the
    folder) or ``mlflow.pyfunc.load_model(path)``.

    Parameters
    ----------
    scorer : CustomerScorer
        A fitted scorer.
    path : path
        The folder to write (replaced if it exists).
    input_example : pandas.DataFrame
        A few rows of the pyfunc's input (:func:`cast_to_signature`).
    origin : mapping, optional
        Where the model came from: ``name`` (registered model name), ``version`` and
        ``run_id``. Recorded in the MLmodel's ``metadata`` and returned by the loader,
        so scores made with the folder name the registered model that made them.
    """
    import mlflow

    metadata = {ORIGIN_KEY: _checked_origin(origin)} if origin is not None else None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        scorer_folder = scorer.save(staging / "scorer")
        with _quiet_mlflow():
            mlflow.pyfunc.save_model(
                str(staging / "model"),
                metadata=metadata,
                **_model_kwargs(scorer, scorer_folder, input_example),
            )
        portable_mlmodel(staging / "model" / "MLmodel")
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
        (staging / "model").rename(path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def portable_mlmodel(mlmodel_path: str | os.PathLike) -> None:
    """Replace the two absolute paths MLflow writes into an MLmodel file, in place.

    ``mlflow.pyfunc.save_model`` records where the entry script and the scorer folder
    were on the training machine (``model_code_path``, ``artifacts.*.uri``: a
    site-packages path and a temporary folder). Loading uses only the script's file
    name and ``artifacts.*.path``, so both become those relative values and a model
    folder names no path of the machine that wrote it.
    """
    from mlflow.models import Model

    model = Model.load(str(mlmodel_path))
    pyfunc = model.flavors.get("python_function", {})
    if pyfunc.get("model_code_path"):
        pyfunc["model_code_path"] = os.path.basename(pyfunc["model_code_path"])
    for artifact in (pyfunc.get("artifacts") or {}).values():
        if isinstance(artifact, dict) and "path" in artifact:
            artifact["uri"] = artifact["path"]
    model.save(str(mlmodel_path))


def trusted_pyfunc_copy(scorer: CustomerScorer, path: str | os.PathLike) -> Path:
    """Export a loaded scorer again, so ``mlflow.pyfunc`` runs only installed code.

    ``mlflow.pyfunc.load_model`` and ``mlflow.pyfunc.spark_udf`` build a model by
    executing the entry script inside its folder. For consumers that must go through
    them (the Spark engine), load the model with
    :func:`segml.tracking._load.load_scoring_model` (which runs nothing from the
    folder) and hand MLflow this copy instead: its ``_pyfunc_entry.py`` is this
    segml's own and its data is the checked scorer.

    Parameters
    ----------
    scorer : CustomerScorer
        ``load_scoring_model(...).scorer``.
    path : path
        The folder to write (a temporary folder that lives as long as the job).

    Returns
    -------
    pathlib.Path
        ``path``, an MLflow model folder.
    """
    # A one-customer example of plain zeros: MLflow checks it against the signature.
    example = pd.DataFrame(
        {"customer_id": ["0"], **{name: [0.0] for name in scorer.feature_columns_}}
    )
    return export_model(scorer, path, input_example=example)


def log_model(
    scorer: CustomerScorer, *, input_example: pd.DataFrame, registered_model_name: str | None
):
    """Log the scoring model to the active run and register a new version."""
    import mlflow

    run = mlflow.active_run()
    # The version is only known once registered: the registry gives it to loaders of
    # models:/ URIs; a downloaded copy of these files still names its model and run.
    origin = _checked_origin(
        {"name": registered_model_name, "version": "", "run_id": run.info.run_id if run else ""}
    )
    with tempfile.TemporaryDirectory() as folder:
        scorer_folder = scorer.save(Path(folder) / "scorer")
        with _quiet_mlflow():
            return mlflow.pyfunc.log_model(
                name="model",
                registered_model_name=registered_model_name,
                metadata={ORIGIN_KEY: origin},
                **_model_kwargs(scorer, scorer_folder, input_example),
            )
