"""MLflow: training runs, the registered scoring model, and run comparison.

This is the only part of segml (with the Spark path) that imports ``mlflow``.

- :func:`train`: one command trains every model, logs params, metrics, figures, the
  segment map and the data-quality report, and registers ONE scoring model (a
  pyfunc built as "models from code": a script plus JSON artifacts).
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


# Each name is imported from its module on first use (PEP 562): `segml score` loads a
# model through segml.tracking._load without importing the training run, the run
# comparison or scikit-learn through them.
_WHERE = {
    "KEY_METRICS": "segml.tracking._compare",
    "diff_runs": "segml.tracking._compare",
    "runs_table": "segml.tracking._compare",
    "LoadedModel": "segml.tracking._load",
    "ModelLoadError": "segml.tracking._load",
    "ModelVersionWarning": "segml.tracking._load",
    "load_scoring_model": "segml.tracking._load",
    "cast_to_signature": "segml.tracking._model",
    "export_model": "segml.tracking._model",
    "model_signature": "segml.tracking._model",
    "TrackingError": "segml.tracking._store",
    "check_tracking_uri": "segml.tracking._store",
    "redact_uri": "segml.tracking._store",
    "require_existing_store": "segml.tracking._store",
    "DEFAULT_TRACKING_URI": "segml.tracking._store",
    "TrainResult": "segml.tracking._train",
    "flatten_config": "segml.tracking._train",
    "train": "segml.tracking._train",
}

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
    import importlib

    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value  # found directly from now on
        return value
    if name in _MOVED_TO_BATCH:
        import segml.batch

        return getattr(segml.batch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
