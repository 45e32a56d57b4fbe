"""Batch scoring: a transaction log and a saved model to one row per customer.

What a nightly job runs (``segml score`` is its command line):

- :func:`score_transactions`: load the scoring model (a registered ``models:/`` URI
  or an exported folder), clean the log exactly as the model's training log was
  cleaned (the settings the model records, overridable with a warning), score in
  chunks of customers, and write the scores and the migration tables since a
  previous scoring, all or none (:func:`atomic_outputs`). A Parquet log of more
  than :data:`DEFAULT_READ_ROWS` rows is read in pieces of whole customers.
- :func:`write_migration`: the tier and segment migration tables between two
  scoring outputs (for outputs scored on Spark).
- :func:`scoring_options`: the loader options a scoring run uses, and which given
  options contradict the model (:class:`CleaningWarning`).

MLflow itself (runs, the registry, loading a model safely) lives in
:mod:`segml.tracking`; this module only asks it for the model.
"""

from segml.batch._cleaning import (
    APPLIED_SETTINGS,
    CleaningConflict,
    CleaningWarning,
    scoring_options,
)
from segml.batch._migration_files import FORMATS, ScoreError, migration_paths, write_migration
from segml.batch._score import (
    DEFAULT_CHUNK_CUSTOMERS,
    DEFAULT_READ_ROWS,
    METADATA_COLUMNS,
    SCORE_COLUMNS,
    ScoreResult,
    score_transactions,
)
from segml.io import atomic_output, atomic_outputs

__all__ = [
    "APPLIED_SETTINGS",
    "DEFAULT_CHUNK_CUSTOMERS",
    "DEFAULT_READ_ROWS",
    "FORMATS",
    "METADATA_COLUMNS",
    "SCORE_COLUMNS",
    "CleaningConflict",
    "CleaningWarning",
    "ScoreError",
    "ScoreResult",
    "atomic_output",
    "atomic_outputs",
    "migration_paths",
    "score_transactions",
    "scoring_options",
    "write_migration",
]
