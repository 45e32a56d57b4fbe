"""``segml score``: score every customer with a saved model, for a nightly batch job.

Registered as a command by :mod:`segml.cli`; the work is done by
:func:`segml.tracking._score.score_transactions` (pandas engine) or
``segml.spark.score_file`` (Spark engine).
"""

from __future__ import annotations

import importlib.util
import inspect
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["Engine", "score"]

_SPARK_INSTALL = 'pip install -e ".[spark]"'


class Engine(StrEnum):
    """Where the scoring runs."""

    pandas = "pandas"
    spark = "spark"


ColumnOption = Annotated[
    str | None,
    typer.Option(help="Name of this column in the input (default: --config's, else its own name)."),
]


def _check_out(value: Path) -> Path:
    if value.suffix.lower() not in (".parquet", ".csv"):
        raise typer.BadParameter(
            f"must end in .parquet or .csv (the format follows the extension), got {value.name!r}."
        )
    return value


def score(
    model: Annotated[
        str,
        typer.Option(
            help="models:/NAME@ALIAS, models:/NAME/VERSION, or a local model folder "
            "(segml train --export)."
        ),
    ],
    transactions: Annotated[str, typer.Option(help="Transaction log to score (CSV or Parquet).")],
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
            help="Run config the model was trained with: its 'transactions' section cleans "
            "the log the same way (column names, duplicates, returns, zero amounts)."
        ),
    ] = None,
    customer_id: ColumnOption = None,
    timestamp: ColumnOption = None,
    amount: ColumnOption = None,
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
) -> None:
    """Score every customer with a saved model and write one row per customer.

    Columns: customer_id, clv, p_alive, expected_purchases, segment, segment_name,
    tier, churn_probability, risk_band, action, model_name, model_version, run_id,
    as_of. The output is written to a hidden temp file beside --out and renamed, so
    a crash or kill never leaves a half-written or half-replaced output.

    Exit codes: 0 scored and written; 1 a problem with the model or the input (the
    message says what and how to fix it; nothing was replaced); 2 wrong usage.
    """
    from segml._config import ConfigError, load_config, section_kwargs
    from segml.cli import _fail, _tracking_uri, console

    mapping = {}
    if config is not None:
        try:
            mapping = section_kwargs(load_config(config), "transactions")
        except ConfigError as exc:
            _fail(str(exc))
    for key, value in dict(customer_id=customer_id, timestamp=timestamp, amount=amount).items():
        if value is not None:
            mapping[key] = value
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

    from segml.tracking import TrackingError
    from segml.tracking._score import ScoreError, score_transactions
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
        if exc.report is not None and exc.report.rows_read:
            console.print(str(exc.report), highlight=False)
        _fail(str(exc))
    except (ScoreError, TrackingError, ValueError, OSError) as exc:
        progress.stop()
        _fail(str(exc))
    finally:
        progress.stop()
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


def _score_spark(transactions, model, *, as_of, out, previous, tracking_uri, mapping) -> None:
    """Hand the job to ``segml.spark.score_file`` (the ``segml[spark]`` extra).

    The ``transactions`` options of ``--config`` (and ``--customer-id`` etc.) clean
    the log on Spark by the rules of ``segml.load_transactions``; the counts per
    reason are printed. The migration files of ``--previous`` are written here,
    from the Spark output.
    """
    from segml.cli import _fail, console

    missing = [m for m in ("pyspark", "segml.spark") if importlib.util.find_spec(m) is None]
    if missing:
        _fail(
            f"--engine spark needs {' and '.join(missing)}, which is not installed: "
            f"{_SPARK_INSTALL} (and Java 17), or use --engine pandas."
        )
    from segml.spark import score_file
    from segml.tracking._score import ScoreError, _read_previous, write_migration
    from segml.transactions import TransactionsError

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
    try:
        if previous is not None:
            _read_previous(previous)  # fail before Spark starts, not after it scored
        result = score_file(
            transactions, model, as_of=as_of, out=out, tracking_uri=tracking_uri, **mapping
        )
        paths = write_migration(previous, result.out) if previous is not None else {}
    except TransactionsError as exc:
        if exc.report is not None and exc.report.rows_read:
            console.print(str(exc.report), highlight=False)
        _fail(str(exc))
    except (ScoreError, ValueError, RuntimeError, OSError) as exc:
        _fail(str(exc))
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
        f"scored with {result.model_name}{version}{run} as of {result.as_of} -> {result.out}",
        highlight=False,
    )
    for name, path in paths.items():
        console.print(f"{name} migration since {previous} -> {path}", highlight=False)
    typer.echo(str(result.out))
