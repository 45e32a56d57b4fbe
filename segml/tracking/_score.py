"""Moved: batch scoring is :mod:`segml.batch` now (tracking is MLflow only).

This module keeps old imports (``from segml.tracking._score import
score_transactions``) working; new code imports from :mod:`segml.batch`.
"""

from segml.batch._migration_files import ScoreError, _read_previous, write_migration
from segml.batch._score import (
    METADATA_COLUMNS,
    SCORE_COLUMNS,
    Laps,
    ScoreResult,
    _as_day,
    score_transactions,
)
from segml.io import atomic_output

__all__ = [
    "METADATA_COLUMNS",
    "SCORE_COLUMNS",
    "Laps",
    "ScoreError",
    "ScoreResult",
    "_as_day",
    "_read_previous",
    "atomic_output",
    "score_transactions",
    "write_migration",
]
