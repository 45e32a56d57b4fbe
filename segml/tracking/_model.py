"""The scoring model as an MLflow pyfunc: signature, export, logging, registry, loading."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from segml.scoring import OUTPUT_COLUMNS, CustomerScorer

__all__ = [
    "ENTRY_POINT",
    "cast_to_signature",
    "export_model",
    "model_signature",
    "pip_requirements",
    "predict_with_ids",
]

ENTRY_POINT = str(Path(__file__).with_name("_pyfunc_entry.py"))
_STRING_OUTPUTS = ("segment_name", "tier", "risk_band", "action")


def model_signature(scorer: CustomerScorer):
    """Inputs: ``customer_id`` string and every feature column as double; outputs typed."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [ColSpec("string", "customer_id")]
        + [ColSpec("double", name) for name in scorer.feature_columns_]
    )
    outputs = Schema(
        [ColSpec("string", "customer_id")]
        + [
            ColSpec(
                "string" if name in _STRING_OUTPUTS else "long" if name == "segment" else "double",
                name,
            )
            for name in OUTPUT_COLUMNS
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


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


def predict_with_ids(scorer: CustomerScorer, model_input: pd.DataFrame) -> pd.DataFrame:
    """Pyfunc predict: features with a ``customer_id`` column in, scores with it out."""
    if "customer_id" not in model_input.columns:
        raise ValueError("The model input needs a 'customer_id' column beside the features.")
    features = model_input.set_index(model_input["customer_id"].astype(str))
    scores = scorer.predict(features.drop(columns=["customer_id"]))
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
        artifacts={"scorer": str(scorer_folder)},
        signature=model_signature(scorer),
        input_example=example,
        pip_requirements=pip_requirements(),
    )


def export_model(
    scorer: CustomerScorer, path: str | os.PathLike, *, input_example: pd.DataFrame
) -> Path:
    """Write the scoring model as a local MLflow model folder (no tracking server needed).

    The folder is built beside ``path`` and renamed into place, so a failure leaves
    any previous export untouched. Load it with ``mlflow.pyfunc.load_model(path)``.
    """
    import mlflow

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        scorer_folder = scorer.save(staging / "scorer")
        with _quiet_mlflow():
            mlflow.pyfunc.save_model(
                str(staging / "model"), **_model_kwargs(scorer, scorer_folder, input_example)
            )
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


def log_model(scorer: CustomerScorer, *, input_example: pd.DataFrame, registered_model_name: str):
    """Log the scoring model to the active run and register a new version."""
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        scorer_folder = scorer.save(Path(folder) / "scorer")
        with _quiet_mlflow():
            return mlflow.pyfunc.log_model(
                name="model",
                registered_model_name=registered_model_name,
                **_model_kwargs(scorer, scorer_folder, input_example),
            )
