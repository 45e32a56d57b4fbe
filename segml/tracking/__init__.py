"""MLflow: training runs, the registered scoring model, and run comparison.

This is the only part of segml (with the Spark path) that imports ``mlflow``.

- :func:`train`: one command trains every model, logs params, metrics, figures, the
  segment map and the data-quality report, and registers ONE scoring model (a
  pyfunc built as "models from code": a script plus JSON and skops artifacts).
- :func:`export_model`: the same model as a local folder.
- :func:`load_scoring_model`: a saved scoring model (folder or ``models:/`` URI),
  checked before anything in it is read, built with the installed segml: nothing
  from the folder is imported or unpickled.
- :func:`redact_uri`, :func:`require_existing_store`: tracking URIs shown without
  passwords; a store that must already exist (for commands that only read).
- :func:`runs_table`, :func:`diff_runs`: compare runs.

Batch scoring (``segml score``) is :mod:`segml.batch`; its names are still
importable from here (``segml.tracking.score_transactions``) for old code.
"""

from segml.tracking._compare import KEY_METRICS, diff_runs, runs_table
from segml.tracking._load import (
    LoadedModel,
    ModelLoadError,
    ModelVersionWarning,
    load_scoring_model,
)
from segml.tracking._model import cast_to_signature, export_model, model_signature
from segml.tracking._store import (
    TrackingError,
    check_tracking_uri,
    redact_uri,
    require_existing_store,
)
from segml.tracking._train import DEFAULT_TRACKING_URI, TrainResult, flatten_config, train

__all__ = [
    "DEFAULT_TRACKING_URI",
    "KEY_METRICS",
    "LoadedModel",
    "ModelLoadError",
    "ModelVersionWarning",
    "TrackingError",
    "TrainResult",
    "cast_to_signature",
    "check_tracking_uri",
    "diff_runs",
    "export_model",
    "flatten_config",
    "load_scoring_model",
    "model_signature",
    "redact_uri",
    "require_existing_store",
    "runs_table",
    "train",
]


# Batch scoring moved to segml.batch; these names stay importable from here. Looked
# up on first use, so importing tracking does not import the batch scorer.
_MOVED_TO_BATCH = (
    "SCORE_COLUMNS",
    "ScoreError",
    "ScoreResult",
    "atomic_output",
    "score_transactions",
    "write_migration",
)


def __getattr__(name: str):
    if name in _MOVED_TO_BATCH:
        import segml.batch

        return getattr(segml.batch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
