"""``segml compare`` and ``segml promote``: champion and challenger from the command line.

Registered as commands by :mod:`segml.cli`; the work is done by
:func:`segml.tracking._champion.compare_models` and
:func:`segml.tracking._champion.promote_version`.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["compare", "promote"]

_TRACKING_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."


def _table(frame, **options) -> str:
    import pandas as pd

    with pd.option_context(
        "display.width", 100, "display.max_columns", 12, "display.max_rows", 200
    ):
        return frame.to_string(**options)


def _migration_cells(counts, shares) -> tuple:
    """``"count (share%)"`` cells; labels longer than 12 characters become S1, S2, ...

    Returns the table and a legend line (empty when no label was shortened).
    """
    labels = [str(x) for x in counts.index[:-1]]  # the last row is "(new)"
    labels += [str(x) for x in counts.columns[:-1] if str(x) not in labels]
    short = {}
    if any(len(label) > 12 for label in labels):
        short = {label: f"S{i}" for i, label in enumerate(labels, start=1)}
    cells = counts.astype(int).astype(str) + " (" + (100 * shares).round(1).astype(str) + "%)"
    cells = cells.rename(
        index=lambda x: short.get(str(x), x), columns=lambda x: short.get(str(x), x)
    )
    cells.index.name, cells.columns.name = "champion", "candidate"
    legend = "  " + "; ".join(f"{code} = {label}" for label, code in short.items()) if short else ""
    return cells, legend


def compare(
    candidate: Annotated[
        str, typer.Option(help="The challenger: models:/NAME@candidate or models:/NAME/VERSION.")
    ],
    champion: Annotated[
        str, typer.Option(help="The model in use: models:/NAME@champion or models:/NAME/VERSION.")
    ],
    transactions: Annotated[
        str,
        typer.Option(
            help="Transaction log to score (CSV/TSV/Excel/Parquet, or 'cdnow' / 'cdnow-sample'); "
            "it must reach back to the champion's training date."
        ),
    ],
    as_of: Annotated[str, typer.Option(help="Scoring date (YYYY-MM-DD).")],
    tracking_uri: Annotated[str | None, typer.Option(help=_TRACKING_HELP)] = None,
    log: Annotated[
        bool, typer.Option(help="Log the comparison to the candidate's run (comparison/...).")
    ] = True,
) -> None:
    """Score the same customers with a candidate and the champion and compare them.

    Shows the key metric deltas of their runs, the tier and segment migration
    (counts and shares), the population stability index (PSI, deciles of the
    champion's training population) of every input feature and of the clv and
    churn_probability scores, and a verdict against the candidate's gates.
    Exit codes: 0 compared (whatever the verdict); 1 a problem with the models, the
    store or the log.
    """
    from segml.cli import _fail, _tracking_uri, console
    from segml.tracking import TrackingError
    from segml.tracking._champion import compare_models
    from segml.transactions import TransactionsError

    try:
        result = compare_models(
            candidate,
            champion,
            transactions,
            as_of=as_of,
            tracking_uri=_tracking_uri(tracking_uri),
            log=log,
        )
    except (TrackingError, TransactionsError, ValueError, OSError) as exc:
        _fail(str(exc))
    cand, champ = result.candidate, result.champion
    console.print(
        f"candidate {cand['name']} v{cand['version']} (as of {cand['as_of']}) vs champion "
        f"{champ['name']} v{champ['version']} (as of {champ['as_of']}): "
        f"{result.n_customers} customers scored as of {result.as_of}",
        highlight=False,
    )
    console.print("\nmetrics of their runs:", highlight=False)
    console.print(_table(result.metrics.round(4)), highlight=False)
    for column in ("tier", "segment_name"):
        console.print(
            f"\n{column} migration (rows: champion, columns: candidate; customers and share "
            f"of all; {result.moved_share[column]:.1%} of customers move):",
            highlight=False,
        )
        table, legend = _migration_cells(
            result.migration[column], result.migration[f"{column}_shares"]
        )
        console.print(_table(table), highlight=False)
        if legend:
            console.print(legend, highlight=False)
    console.print(
        "\npopulation stability index since the champion's training "
        "(< 0.1 stable, 0.1-0.25 moderate, >= 0.25 significant):",
        highlight=False,
    )
    console.print(_table(result.drift.round({"psi": 4}), index=False), highlight=False)
    console.print(f"\ngates of the candidate ({result.gates_source}):", highlight=False)
    for message in result.gates["message"]:
        console.print(f"  {message}", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    console.print(f"\nverdict: {result.verdict}", highlight=False)
    if result.logged_to:
        console.print(f"logged to run {result.logged_to} (comparison/)", highlight=False)


def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Option(help="The version to make champion.")],
    tracking_uri: Annotated[str | None, typer.Option(help=_TRACKING_HELP)] = None,
    allow_failed_gates: Annotated[
        bool,
        typer.Option(
            "--allow-failed-gates",
            help="Promote even if a gate failed or none was logged (tagged on the version).",
        ),
    ] = False,
) -> None:
    """Move the 'champion' alias to VERSION when its training run passed its gates.

    A failed gate (or a version without gate results) is one error line naming the
    gate, its value and its bound; nothing moves. Exit codes: 0 promoted; 1 refused
    or a problem with the store.
    """
    from segml.cli import _fail, _tracking_uri, _warn, console
    from segml.tracking import TrackingError
    from segml.tracking._champion import promote_version

    try:
        result = promote_version(
            name,
            version,
            tracking_uri=_tracking_uri(tracking_uri),
            allow_failed_gates=allow_failed_gates,
        )
    except TrackingError as exc:
        _fail(str(exc))
    for reason in result.overridden:
        _warn(f"promoted despite: {reason} (tagged promote.allow_failed_gates on the version)")
    before = f" (was version {result.previous})" if result.previous else ""
    console.print(
        f"{result.name} version {result.version} is now champion{before}", highlight=False
    )
