"""Tier and segment migration between two scoring outputs, as files beside the output."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from segml.io import atomic_outputs
from segml.scoring import migration_matrix

__all__ = ["FORMATS", "ScoreError", "migration_paths", "write_migration"]

#: Output formats, by file extension.
FORMATS = (".parquet", ".csv")
_MIGRATION_COLUMNS = ("tier", "segment")


class ScoreError(ValueError):
    """Scoring cannot run as asked; the message says what is wrong and how to fix it."""


def _check_format(path: Path, what: str = "out") -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ScoreError(
            f"{what} must end in .parquet or .csv (the format follows the extension), "
            f"got {path.name!r}."
        )
    return suffix


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


def migration_paths(out: str | os.PathLike) -> dict[str, Path]:
    """Where the migration tables of the output ``out`` go: ``<stem>.migration_<name>.csv``.

    Examples
    --------
    >>> {k: p.name for k, p in migration_paths("nightly/scores.parquet").items()}
    {'tier': 'scores.migration_tier.csv', 'segment': 'scores.migration_segment.csv'}
    """
    out = Path(out)
    return {name: out.with_name(f"{out.stem}.migration_{name}.csv") for name in _MIGRATION_COLUMNS}


def _write_tables(matrices: Mapping[str, pd.DataFrame], paths: Mapping[str, Path]) -> None:
    """Write each matrix as CSV to its (temp) path."""
    for name, matrix in matrices.items():
        matrix.to_csv(paths[name])


def write_migration(
    previous: str | os.PathLike, out: str | os.PathLike, *, tier_order=None
) -> dict[str, Path]:
    """Write the tier and segment migration from ``previous`` to ``out`` beside ``out``.

    For outputs scored elsewhere (``segml score --engine spark``): reads the
    ``customer_id``, ``tier`` and ``segment`` columns of both scorings and writes
    ``<stem>.migration_tier.csv`` and ``<stem>.migration_segment.csv``, both or
    neither (:func:`segml.batch.atomic_outputs`).

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
    matrices = _migration(_read_previous(previous), _read_previous(out, "out"), tier_order)
    paths = migration_paths(out)
    with atomic_outputs(list(paths.values())) as temps:
        _write_tables(matrices, dict(zip(paths, temps, strict=True)))
    return paths
