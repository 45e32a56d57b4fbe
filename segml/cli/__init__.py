"""The ``segml`` command line: validate data, build features, train and score.

Only this package reads configs and environment variables; everything it calls is
plain segml API. Exit codes: 0 success, 1 a problem with the input data or config
(one ``error:`` line says what and how to fix it), 2 wrong usage.

Every command that reads a transaction log (``validate``, ``features``, ``train``,
``score``) takes the same cleaning options and ``--config`` (see
:mod:`segml.cli._options`); options given on the command line beat the config.
"""

from __future__ import annotations

import errno
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from segml._config import ConfigError, load_config, read_source, section_kwargs
from segml.cli._options import cleaning_options, cli_words, with_overrides
from segml.cli._score import SPARK_INSTALL, Engine
from segml.cli._score import score as _score_command

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
    """One ``error:`` line in command-line words, then exit 1."""
    console.print(f"[red]error:[/red] {cli_words(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_DATA)


def _warn(message: str) -> None:
    console.print(
        f"[yellow]warning:[/yellow] {cli_words(message)}", highlight=False, soft_wrap=True
    )


def _config(path: Path | None) -> dict:
    """The loaded ``--config`` (empty without one); a bad config is one error line."""
    if path is None:
        return {}
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(str(exc))


def _loader_options(config: dict, given: dict) -> dict:
    """The config's ``transactions`` section with the command line's options on top."""
    try:
        return with_overrides(section_kwargs(config, "transactions"), given)
    except typer.BadParameter as exc:
        _fail(str(exc))


def _read(source: str, mapping: dict):
    """Load and validate a source: a path, or a bundled dataset name."""
    from segml.transactions import TransactionsError

    try:
        return read_source(source, mapping)
    except TransactionsError as exc:
        if exc.report is not None and exc.report.rows_read:
            console.print(cli_words(str(exc.report), keywords=False), highlight=False)
        _fail(str(exc))
    except OSError as exc:
        _fail(f"Cannot read {source}: {exc.strerror or exc}.")


def _write_table(frame, out: Path) -> None:
    """Write a table by extension, atomically; a failed write is one error line.

    The table goes to a temp file that is renamed onto ``out`` only when complete, so
    a full disk or a read-only folder leaves any previous ``out`` as it was.
    """
    from segml.io import write_table

    if out.suffix.lower() not in (".parquet", ".csv"):
        _fail(f"--out must end in .parquet or .csv, got {out.name!r}.")
    try:
        write_table(frame, out)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            reason += " (the disk is full or a file size limit was reached)"
        unchanged = f"the previous {out} is unchanged" if out.exists() else "nothing was written"
        _fail(f"Cannot write {out}: {reason}; {unchanged}. Free space or choose another --out.")


SourceArgument = Annotated[
    str | None,
    typer.Argument(
        help="CSV/TSV/Excel/Parquet file, or 'cdnow' / 'cdnow-sample' (default: --config's "
        "data.source)."
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(help="Run config (configs/*.yaml); its 'transactions' section cleans the log."),
]


@app.command()
@cleaning_options
def validate(
    source: SourceArgument = None,
    config: ConfigOption = None,
    as_of: Annotated[str | None, typer.Option(help="Drop transactions after this date.")] = None,
    *,
    cleaning: dict,
) -> None:
    """Check a transaction file and print its data-quality report.

    With --config, the log is cleaned exactly as `segml train --config` cleans it, so
    the report says what training will keep. Exits 1 when the data cannot be used
    (the message names the column, the count and the fix), 0 otherwise, even when
    rows were dropped (the report lists them).
    """
    settings = _config(config)
    source = source or settings.get("data", {}).get("source")
    if source is None:
        _fail("Give a SOURCE (a file, or 'cdnow') or --config.")
    mapping = _loader_options(settings, cleaning)
    if as_of is not None:
        mapping["as_of"] = as_of
    _, report = _read(source, mapping)
    typer.echo(cli_words(str(report), keywords=False))


@app.command()
@cleaning_options
def features(
    source: SourceArgument = None,
    out: Annotated[Path, typer.Option(help="Output table (.parquet or .csv).")] = Path(
        "rfm.parquet"
    ),
    as_of: Annotated[str | None, typer.Option(help="Features as of this date (required).")] = None,
    config: ConfigOption = None,
    time_unit: Annotated[str | None, typer.Option(help="D (days) or W (weeks).")] = None,
    unit_multiplier: Annotated[
        float | None, typer.Option(help="Divide times by this (7: days/7).")
    ] = None,
    *,
    cleaning: dict,
) -> None:
    """Build the RFM table (one row per customer) as of a date and write it.

    Options given on the command line override the config's values. The output is
    written to a temporary file and renamed, so a failure never leaves a half-written
    file or overwrites a previous output.
    """
    from segml.features import rfm_summary
    from segml.features._rfm import FeatureError

    settings = _config(config)
    source = source or settings.get("data", {}).get("source")
    mapping = _loader_options(settings, cleaning)
    feature_args = section_kwargs(settings, "features")
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
@cleaning_options
def train(
    config: Annotated[Path, typer.Option(help="Run config, e.g. configs/cdnow.yaml.")],
    tracking_uri: TrackingOption = None,
    export: Annotated[
        Path | None, typer.Option(help="Also write the scoring model to this folder.")
    ] = None,
    promote: Annotated[bool, typer.Option(help="Move the 'champion' alias too.")] = False,
    allow_failed_gates: Annotated[
        bool,
        typer.Option(
            help="Move the aliases even when a quality gate fails (the override is tagged)."
        ),
    ] = False,
    run_name: Annotated[
        str | None,
        typer.Option(help="MLflow run name (default: config name, as-of date, data digest)."),
    ] = None,
    description: Annotated[
        str | None, typer.Option(help="Shown with the run and its registered version.")
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="pandas (one machine) or spark: Spark cleans the log and builds the "
            "per-customer tables, the models fit on them (needs the spark extra)."
        ),
    ] = Engine.pandas,
    *,
    cleaning: dict,
) -> None:
    """Train CLV, segments, tiers and churn; log the run to MLflow; register the scorer.

    Each step prints how long it took. The run's quality gates (the config's 'gates'
    section) are printed; when all pass, the registered model gets the alias
    'candidate' ('champion' too with --promote); a failed gate registers the version
    but moves no alias, unless --allow-failed-gates. The model remembers how its data was
    cleaned, so `segml score` cleans the same way. Cleaning options override the
    config's 'transactions' section. Open the runs with
    `mlflow ui --backend-store-uri sqlite:///mlflow.db`.
    """
    import importlib.util

    from segml._config import ConfigError
    from segml.tracking import TrackingError
    from segml.tracking import train as train_run

    if engine is Engine.spark and importlib.util.find_spec("pyspark") is None:
        _fail(
            f"--engine spark needs pyspark, which is not installed: {SPARK_INSTALL} "
            "(and Java 17), or use --engine pandas."
        )
    from segml.transactions import TransactionsError

    def show(name: str, seconds: float) -> None:
        console.print(f"[green]done[/green] {name} ({seconds:.2f} s)", highlight=False)

    def notice(message: str) -> None:
        console.print(
            f"[yellow]note:[/yellow] {cli_words(message)}", highlight=False, soft_wrap=True
        )

    started = time.perf_counter()
    try:
        # The command line's cleaning options go over the config's transactions
        # section; the run logs (and the model records) what was actually used.
        result = train_run(
            config,
            tracking_uri=_tracking_uri(tracking_uri),
            export=export,
            promote=promote,
            on_step=show,
            on_notice=notice,
            transactions=cleaning or None,
            allow_failed_gates=allow_failed_gates,
            run_name=run_name,
            description=description,
            engine=str(engine),
        )
    except TransactionsError as exc:
        if exc.report is not None and exc.report.rows_read:
            console.print(cli_words(str(exc.report), keywords=False), highlight=False)
        _fail(str(exc))
    except (ConfigError, TrackingError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:  # e.g. a full disk while logging or exporting
        _fail(f"Cannot write {exc.filename or 'the run'}: {exc.strerror or exc}.")
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
    wide: Annotated[
        bool, typer.Option(help="Every key metric (default: the columns that fit 100 wide).")
    ] = False,
) -> None:
    """List the runs of an experiment newest first: gates, churn lead, key metrics.

    Stale runs (RUNNING, but their process is gone) are marked FAILED first, and said.
    """
    if ctx.invoked_subcommand is not None:
        return
    import pandas as pd

    from segml.tracking import TrackingError, runs_table
    from segml.tracking._compare import NARROW_COLUMNS

    def notice(message: str) -> None:
        console.print(f"[yellow]note:[/yellow] {message}", highlight=False, soft_wrap=True)

    try:
        table = runs_table(
            tracking_uri=_tracking_uri(tracking_uri), experiment_name=experiment, on_notice=notice
        )
    except TrackingError as exc:
        _fail(str(exc))
    if not len(table):
        typer.echo("no runs yet")
        return
    if wide:
        with pd.option_context("display.width", 400, "display.max_columns", 60):
            typer.echo(table.to_string(index=False))
        return
    typer.echo(_narrow_runs(table[[c for c in NARROW_COLUMNS if c in table.columns]]))


#: Short headers of the narrow `segml runs` table.
_NARROW_HEADERS = {
    "churn.model.roc_auc": "roc_auc",
    "clv_holdout.purchases_mae": "clv_mae",
}


def _narrow_runs(table, width: int = 100) -> str:
    """The runs table in at most ``width`` characters a line: short headers, texts cut
    to 18 characters, and columns dropped from the right until it fits."""
    shown = table.rename(columns=_NARROW_HEADERS)
    for column in shown.columns:
        if shown[column].dtype == object and column != "run_id":
            shown[column] = shown[column].map(
                lambda v: v if not isinstance(v, str) or len(v) <= 18 else v[:17] + "…"
            )
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    while shown.shape[1] > 1 and max(map(len, text.splitlines())) > width:
        shown = shown.iloc[:, :-1]
        text = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    return text


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
app.command(name="score")(_score_command)

# `segml compare` and `segml promote`: champion and challenger (segml.cli._champion).
from segml.cli._champion import compare as _compare_command  # noqa: E402
from segml.cli._champion import promote as _promote_command  # noqa: E402

app.command(name="compare")(_compare_command)
app.command(name="promote")(_promote_command)

# `segml report` writes a run's one-page tier report (its report.html artifact).
from segml.cli._report import report as _report_command  # noqa: E402 - after app exists

app.command(name="report")(_report_command)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
