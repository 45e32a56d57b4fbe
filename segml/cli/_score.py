"""``segml score``: score every customer with a saved model, for a nightly batch job.

Registered as a command by :mod:`segml.cli`; the work is done by
:func:`segml.batch.score_transactions` (pandas engine) or
``segml.spark.score_file`` (Spark engine). The log is cleaned as the model's
training log was (the model records how); ``--config`` and the cleaning options
override that, with a warning for each value that contradicts the model.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from segml.cli._options import cleaning_options, cli_words, option_text

__all__ = ["Engine", "score"]

SPARK_INSTALL = 'pip install -e ".[spark]"'


class Engine(StrEnum):
    """Where the scoring runs."""

    pandas = "pandas"
    spark = "spark"


def _check_out(value: Path) -> Path:
    if value.suffix.lower() not in (".parquet", ".csv"):
        raise typer.BadParameter(
            f"must end in .parquet or .csv (the format follows the extension), got {value.name!r}."
        )
    return value


@cleaning_options
def score(
    model: Annotated[
        str,
        typer.Option(
            help="models:/NAME@ALIAS, models:/NAME/VERSION, or a local model folder "
            "(segml train --export)."
        ),
    ],
    transactions: Annotated[
        str,
        typer.Option(
            help="Transaction log to score (CSV/TSV/Excel/Parquet), or 'cdnow' / 'cdnow-sample'."
        ),
    ],
    as_of: Annotated[
        str, typer.Option(help="Scoring date (YYYY-MM-DD): transactions up to this day count.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Output table, .parquet or .csv; written to a temp file and renamed.",
            callback=_check_out,
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            help="Run config whose 'transactions' section overrides the model's own cleaning "
            "(not needed to score as trained: the model remembers its cleaning)."
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow tracking URI of models:/ URIs (default: $MLFLOW_TRACKING_URI, else "
            "sqlite:///mlflow.db)."
        ),
    ] = None,
    previous: Annotated[
        Path | None,
        typer.Option(
            help="An earlier output: writes OUT_STEM.migration_tier.csv and "
            "OUT_STEM.migration_segment.csv beside --out."
        ),
    ] = None,
    chunk_customers: Annotated[
        int, typer.Option(min=1, help="Customers scored at once (lower = less memory).")
    ] = 200_000,
    engine: Annotated[
        Engine, typer.Option(help="pandas (one machine) or spark (needs the spark extra).")
    ] = Engine.pandas,
    *,
    cleaning: dict,
) -> None:
    """Score every customer with a saved model and write one row per customer.

    Columns: customer_id, the model's outputs (clv, p_alive, ..., action),
    model_name, model_version, run_id, as_of. The log is cleaned with the settings
    the model was trained with; a cleaning option or --config value that contradicts
    one is used, with a warning naming both. Every output (the scores and, with
    --previous, the migration files) is written to a hidden temp file beside it,
    and all are renamed only when all are complete, so a crash, kill or error never
    leaves a half-written output or a new scoring beside a failed exit.

    Exit codes: 0 scored and written; 1 a problem with the model or the input (the
    message says what and how to fix it; nothing was replaced); 2 wrong usage.
    """
    from segml.cli import _config, _fail, _loader_options, _tracking_uri, console

    mapping = _loader_options(_config(config), cleaning)
    uri = _tracking_uri(tracking_uri)
    if engine is Engine.spark:
        _score_spark(
            transactions,
            model,
            as_of=as_of,
            out=out,
            previous=previous,
            tracking_uri=uri,
            mapping=mapping,
        )
        return

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from segml.batch import CleaningWarning, ScoreError, score_transactions
    from segml.tracking._load import ModelVersionWarning
    from segml.tracking._store import TrackingError
    from segml.transactions import TransactionsError

    progress = Progress(
        TextColumn("scoring customers"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = None

    def on_progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task("score", total=total)
        progress.update(task, completed=done)

    console.print(f"scoring {transactions} as of {as_of} with {model} ...", highlight=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CleaningWarning)
        # A model saved with another major/minor library version: printed, never raised.
        warnings.simplefilter("always", ModelVersionWarning)
        try:
            result = score_transactions(
                model,
                transactions,
                as_of=as_of,
                out=out,
                previous=previous,
                columns=mapping,
                chunk_customers=chunk_customers,
                tracking_uri=uri,
                on_progress=on_progress,
            )
        except TransactionsError as exc:
            progress.stop()
            _show_warnings(caught)
            if exc.report is not None and exc.report.rows_read:
                console.print(cli_words(str(exc.report), keywords=False), highlight=False)
            _fail(str(exc))
        except (ScoreError, TrackingError, ValueError, OSError) as exc:
            progress.stop()
            _show_warnings(caught)
            _fail(str(exc))
        finally:
            progress.stop()
    _show_warnings(caught)
    for name, seconds in result.seconds.items():
        console.print(f"[green]done[/green] {name} ({seconds:.2f} s)", highlight=False)
    version = f" version {result.model_version}" if result.model_version else ""
    run = f" (run {result.run_id})" if result.run_id else ""
    console.print(
        f"{result.n_customers:,} customers ({result.n_transactions:,} transactions) scored "
        f"with {result.model_name}{version}{run} as of {result.as_of} -> {result.out}",
        highlight=False,
    )
    for name, path in result.migration_paths.items():
        console.print(f"{name} migration since {previous} -> {path}", highlight=False)
    typer.echo(str(result.out))


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Each warning of the run as one line; cleaning conflicts in option names."""
    from segml.batch import CleaningWarning
    from segml.cli import _warn

    for record in caught:
        message = record.message
        if isinstance(message, CleaningWarning):
            given = option_text(message.key, message.given_value)
            trained = option_text(message.key, message.model_value)
            _warn(
                f"{given} contradicts the model, which was trained with {trained}; {given} "
                "is used, so scores may differ from training."
            )
        else:
            _warn(str(message))
    caught.clear()


def _score_spark(transactions, model, *, as_of, out, previous, tracking_uri, mapping) -> None:
    """Hand the job to ``segml.spark.score_file`` (the ``segml[spark]`` extra).

    The ``transactions`` options of ``--config`` (and ``--customer-id`` etc.) clean
    the log on Spark by the rules of ``segml.load_transactions``; the counts per
    reason are printed. With ``--previous``, Spark's output is staged and the
    migration files are computed from it; the scores and both migration files are
    renamed into place together, only when all are complete.
    """
    from segml.cli import _fail, console

    missing = [m for m in ("pyspark", "segml.spark") if importlib.util.find_spec(m) is None]
    if missing:
        _fail(
            f"--engine spark needs {' and '.join(missing)}, which is not installed: "
            f"{SPARK_INSTALL} (and Java 17), or use --engine pandas."
        )
    from segml._config import BUNDLED_SOURCES
    from segml.batch import CleaningWarning, ScoreError
    from segml.spark import score_file
    from segml.tracking._load import ModelVersionWarning
    from segml.transactions import TransactionsError

    if transactions in BUNDLED_SOURCES:
        _fail(
            f"--engine spark reads files; the bundled dataset {transactions!r} is scored with "
            "--engine pandas (or export it to a CSV/Parquet file first)."
        )

    parameters = inspect.signature(score_file).parameters
    # The loader's own as_of would drop rows before returns are netted; score_file's
    # as_of is the scoring date. Everything else maps one to one.
    unsupported = sorted(k for k in mapping if k not in parameters or k == "as_of")
    if unsupported:
        _fail(
            f"transactions.{unsupported[0]} (in --config) is not supported with --engine spark; "
            "remove it (--as-of already limits scoring to that day) or use --engine pandas."
        )
    console.print(
        f"scoring {transactions} as of {as_of} with {model} on Spark ...", highlight=False
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CleaningWarning)
        # A model saved with another major/minor library version: printed, never raised.
        warnings.simplefilter("always", ModelVersionWarning)
        try:
            if previous is None:
                result = score_file(
                    transactions, model, as_of=as_of, out=out, tracking_uri=tracking_uri, **mapping
                )
                paths = {}
            else:
                result, paths = _score_spark_with_migration(
                    score_file, transactions, model, as_of, out, previous, tracking_uri, mapping
                )
        except TransactionsError as exc:
            _show_warnings(caught)
            if exc.report is not None and exc.report.rows_read:
                console.print(cli_words(str(exc.report), keywords=False), highlight=False)
            _fail(str(exc))
        except (ScoreError, ValueError, RuntimeError, OSError) as exc:
            _show_warnings(caught)
            _fail(str(exc))
    _show_warnings(caught)
    report = result.report
    dropped = ", ".join(f"{reason} {count:,}" for reason, count in report.dropped.items())
    console.print(
        f"transactions: {report.rows_read:,} read, {report.rows_kept:,} kept"
        + (f"; dropped {dropped}" if dropped else ""),
        highlight=False,
    )
    for name, seconds in result.seconds.items():
        console.print(f"[green]done[/green] {name} ({seconds:.2f} s)", highlight=False)
    version = f" version {result.model_version}" if result.model_version else ""
    run = f" (run {result.run_id})" if result.run_id else ""
    console.print(
        f"scored with {result.model_name}{version}{run} as of {result.as_of} -> {out}",
        highlight=False,
    )
    for name, path in paths.items():
        console.print(f"{name} migration since {previous} -> {path}", highlight=False)
    typer.echo(str(out))


def _score_spark_with_migration(
    score_file, transactions, model, as_of, out: Path, previous: Path, tracking_uri, mapping
):
    """Spark scores into a staged file; scores and migration files are committed together."""
    import os

    from segml.batch import atomic_outputs, migration_paths
    from segml.batch._migration_files import _migration, _read_previous, _write_tables
    from segml.batch._score import _write_error

    previous_scores = _read_previous(previous)  # fail before Spark starts, not after it scored
    targets = migration_paths(out)
    try:
        with atomic_outputs([*targets.values(), out]) as temps:
            *migration_temps, scores_temp = temps
            staged = scores_temp.with_name(scores_temp.name + out.suffix)  # Spark needs it
            try:
                result = score_file(
                    transactions,
                    model,
                    as_of=as_of,
                    out=staged,
                    tracking_uri=tracking_uri,
                    **mapping,
                )
                matrices = _migration(previous_scores, _read_previous(staged, "out"))
                _write_tables(matrices, dict(zip(targets, migration_temps, strict=True)))
                os.replace(staged, scores_temp)
            finally:
                staged.unlink(missing_ok=True)
    except OSError as exc:
        if exc.filename is None or Path(exc.filename).parent.resolve() != out.parent.resolve():
            raise
        raise _write_error(exc, out) from None  # an output could not be written or replaced
    return result, targets
