"""The ``segml`` command line: validate data, build features, (later) train and score.

Only this package reads configs and environment variables; everything it calls is
plain segml API. Exit codes: 0 success, 1 a problem with the input data or config
(the message says what and how to fix it), 2 wrong usage.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from segml._config import ConfigError, load_config, read_source, section_kwargs

__all__ = ["app"]

app = typer.Typer(
    name="segml",
    help="Customer value, segments, tiers and churn: validate, featurise, train, score.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

EXIT_DATA = 1


@contextmanager
def step(name: str):
    """Show a step while it runs and how long it took."""
    started = time.perf_counter()
    with console.status(f"{name} ..."):
        yield
    console.print(f"[green]done[/green] {name} ({time.perf_counter() - started:.2f} s)")


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_DATA)


def _read(source: str, mapping: dict):
    """Load and validate a source: a path, or a bundled dataset name."""
    from segml.transactions import TransactionsError

    try:
        return read_source(source, mapping)
    except TransactionsError as exc:
        if exc.report is not None and exc.report.rows_read:
            console.print(str(exc.report), highlight=False)
        _fail(str(exc))


def _write_table(frame, out: Path) -> None:
    """Write a table by extension, atomically; a bad extension is a clear error."""
    from segml.persistence import write_table

    if out.suffix.lower() not in (".parquet", ".csv"):
        _fail(f"--out must end in .parquet or .csv, got {out.name!r}.")
    write_table(frame, out)


ColumnOption = Annotated[str, typer.Option(help="Name of this column in the input.")]


@app.command()
def validate(
    source: Annotated[str, typer.Argument(help="CSV/Parquet file, or 'cdnow' / 'cdnow-sample'.")],
    customer_id: ColumnOption = "customer_id",
    timestamp: ColumnOption = "timestamp",
    amount: ColumnOption = "amount",
    timestamp_format: Annotated[
        str | None, typer.Option(help="strftime format, e.g. %d/%m/%Y.")
    ] = None,
    returns: Annotated[str, typer.Option(help="Negative amounts: drop or net.")] = "drop",
    as_of: Annotated[str | None, typer.Option(help="Drop transactions after this date.")] = None,
) -> None:
    """Check a transaction file and print its data-quality report.

    Exits 1 when the data cannot be used (the message names the column, the count and
    the fix), 0 otherwise, even when rows were dropped (the report lists them).
    """
    _, report = _read(
        source,
        dict(
            customer_id=customer_id,
            timestamp=timestamp,
            amount=amount,
            timestamp_format=timestamp_format,
            returns=returns,
            as_of=as_of,
        ),
    )
    typer.echo(str(report))


@app.command()
def features(
    source: Annotated[
        str | None, typer.Argument(help="CSV/Parquet file, or 'cdnow' / 'cdnow-sample'.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output table (.parquet or .csv).")] = Path(
        "rfm.parquet"
    ),
    as_of: Annotated[str | None, typer.Option(help="Features as of this date (required).")] = None,
    config: Annotated[Path | None, typer.Option(help="Run config (configs/*.yaml).")] = None,
    customer_id: Annotated[str | None, typer.Option(help="Customer id column.")] = None,
    timestamp: Annotated[str | None, typer.Option(help="Purchase time column.")] = None,
    amount: Annotated[str | None, typer.Option(help="Purchase value column.")] = None,
    time_unit: Annotated[str | None, typer.Option(help="D (days) or W (weeks).")] = None,
    unit_multiplier: Annotated[
        float | None, typer.Option(help="Divide times by this (7: days/7).")
    ] = None,
) -> None:
    """Build the RFM table (one row per customer) as of a date and write it.

    Options given on the command line override the config's values. The output is
    written to a temporary file and renamed, so a failure never leaves a half-written
    file or overwrites a previous output.
    """
    from segml.features import rfm_summary
    from segml.features._rfm import FeatureError

    mapping: dict = {}
    feature_args: dict = {}
    if config is not None:
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            _fail(str(exc))
        source = source or cfg["data"]["source"]
        mapping = section_kwargs(cfg, "transactions")
        feature_args = section_kwargs(cfg, "features")
    given = dict(customer_id=customer_id, timestamp=timestamp, amount=amount)
    mapping.update({k: v for k, v in given.items() if v is not None})
    given = dict(as_of=as_of, time_unit=time_unit, unit_multiplier=unit_multiplier)
    feature_args.update({k: v for k, v in given.items() if v is not None})
    if source is None:
        _fail("Give a SOURCE (a file, or 'cdnow') or --config.")
    if feature_args.get("as_of") is None:
        _fail("--as-of is required (features depend on the date they are computed at).")
    with step(f"load and validate {source}"):
        clean, report = _read(source, mapping)
    console.print(
        f"{report.rows_kept:,} of {report.rows_read:,} rows kept"
        + (f" (dropped: {report.dropped})" if report.dropped else ""),
        highlight=False,
    )
    with step("RFM features"):
        try:
            rfm = rfm_summary(clean, **feature_args)
        except FeatureError as exc:
            _fail(str(exc))
    with step(f"write {out}"):
        _write_table(rfm, out)
    console.print(f"{len(rfm):,} customers -> {out}", highlight=False)


def _tracking_uri(option: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the embedded store."""
    import os

    from segml.tracking import DEFAULT_TRACKING_URI

    return option or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


TrackingOption = Annotated[
    str | None,
    typer.Option(
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."
    ),
]


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="Run config, e.g. configs/cdnow.yaml.")],
    tracking_uri: TrackingOption = None,
    export: Annotated[
        Path | None, typer.Option(help="Also write the scoring model to this folder.")
    ] = None,
    promote: Annotated[bool, typer.Option(help="Move the 'champion' alias too.")] = False,
) -> None:
    """Train CLV, segments, tiers and churn; log the run to MLflow; register the scorer.

    Each step prints how long it took. The registered model gets the alias
    'candidate' ('champion' too with --promote). Open the runs with
    `mlflow ui --backend-store-uri sqlite:///mlflow.db`.
    """
    from segml._config import ConfigError
    from segml.tracking import TrackingError
    from segml.tracking import train as train_run
    from segml.transactions import TransactionsError

    def show(name: str, seconds: float) -> None:
        console.print(f"[green]done[/green] {name} ({seconds:.2f} s)", highlight=False)

    started = time.perf_counter()
    try:
        result = train_run(
            config,
            tracking_uri=_tracking_uri(tracking_uri),
            export=export,
            promote=promote,
            on_step=show,
        )
    except (ConfigError, TrackingError, TransactionsError, ValueError) as exc:
        _fail(str(exc))
    scorer = result.scorer
    churn = scorer.evaluation_["churn"]
    console.print(
        f"run {result.run_id}: {len(scorer.segment_map_.to_frame())} groups in the segment map, "
        f"churn ROC AUC {churn.loc['model', 'roc_auc']:.3f} (best baseline "
        f"{churn.drop(index='model')['roc_auc'].max():.3f}); registered "
        f"{result.registered_model_name} version {result.version} as {result.aliases}"
        + (f"; exported to {result.export_path}" if result.export_path else "")
        + f" in {time.perf_counter() - started:.1f} s",
        highlight=False,
    )
    typer.echo(result.run_id)


runs_app = typer.Typer(help="Compare training runs.", invoke_without_command=True)
app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs(
    ctx: typer.Context,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "segml-cdnow",
    tracking_uri: TrackingOption = None,
) -> None:
    """List the runs of an experiment with their key metrics, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    import pandas as pd

    from segml.tracking import TrackingError, runs_table

    try:
        table = runs_table(tracking_uri=_tracking_uri(tracking_uri), experiment_name=experiment)
    except TrackingError as exc:
        _fail(str(exc))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo(table.to_string(index=False) if len(table) else "no runs yet")


@runs_app.command("diff")
def runs_diff(
    run_a: Annotated[str, typer.Argument(help="Earlier run id.")],
    run_b: Annotated[str, typer.Argument(help="Later run id.")],
    tracking_uri: TrackingOption = None,
) -> None:
    """Show what changed between two runs: config, metrics and the segment map."""
    import pandas as pd

    from segml.tracking import TrackingError, diff_runs

    try:
        diff = diff_runs(run_a, run_b, tracking_uri=_tracking_uri(tracking_uri))
    except TrackingError as exc:
        _fail(str(exc))
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.max_rows", 500
    ):
        typer.echo("config changes:")
        typer.echo(diff["params"].to_string() if len(diff["params"]) else "  none")
        typer.echo("\nmetrics:")
        changed = diff["metrics"][diff["metrics"]["change"].fillna(1) != 0]
        typer.echo(changed.to_string() if len(changed) else "  no change")
        typer.echo("\nsegment map:")
        segment_map = diff["segment_map"]
        typer.echo("  not available" if segment_map is None else segment_map.to_string())


# `segml score` lives in its own module (batch scoring, chunked, atomic output).
try:
    from segml.cli._score import score as _score_command
except ImportError:  # pragma: no cover - while the batch scorer is being written
    _score_command = None
if _score_command is not None:
    app.command(name="score")(_score_command)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
