"""MLflow: training runs, the registered scoring model, and run comparison.

This is the only part of segml (with the Spark path) that imports ``mlflow``.

- :func:`train`: one command trains every model, logs params, metrics, figures, the
  segment map and the data-quality report, and registers ONE scoring model (a
  pyfunc built as "models from code": a script plus JSON and skops artifacts).
- :func:`export_model`: the same model as a local folder.
- :func:`score_transactions`: batch scoring with a saved model (``segml score``).
- :func:`runs_table`, :func:`diff_runs`: compare runs.
"""

from segml.tracking._compare import KEY_METRICS, diff_runs, runs_table
from segml.tracking._model import cast_to_signature, export_model, model_signature
from segml.tracking._score import (
    SCORE_COLUMNS,
    ScoreError,
    ScoreResult,
    atomic_output,
    score_transactions,
    write_migration,
)
from segml.tracking._store import TrackingError, check_tracking_uri
from segml.tracking._train import DEFAULT_TRACKING_URI, TrainResult, flatten_config, train

__all__ = [
    "DEFAULT_TRACKING_URI",
    "KEY_METRICS",
    "SCORE_COLUMNS",
    "ScoreError",
    "ScoreResult",
    "TrackingError",
    "TrainResult",
    "atomic_output",
    "cast_to_signature",
    "check_tracking_uri",
    "diff_runs",
    "export_model",
    "flatten_config",
    "model_signature",
    "runs_table",
    "score_transactions",
    "train",
    "write_migration",
]
