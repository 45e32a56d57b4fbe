"""``segml report RUN_ID --out report.html``: write a run's one-page tier report.

Registered as a command by :mod:`segml.cli`. The page is the run's ``report.html``
artifact (self-contained HTML: opens offline); it is written to a temp file beside
``--out`` and renamed, so a failure never leaves a half-written page or replaces a
previous one.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["report"]


def report(
    run_id: Annotated[str, typer.Argument(help="MLflow run id (segml train prints it).")],
    out: Annotated[Path, typer.Option(help="Where to write the HTML page.")] = Path("report.html"),
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."
        ),
    ] = None,
) -> None:
    """Write a run's one-page tier report (tiers, segments, charts, evaluation, gates).

    Exit codes: 0 written; 1 no such store or run, a run without a report, or a
    failed write (one error line says which; nothing was replaced); 2 wrong usage.
    """
    from segml.cli import _fail, _tracking_uri, console
    from segml.io import atomic_write_bytes
    from segml.tracking import TrackingError
    from segml.tracking._report import download_run_report

    if out.suffix.lower() not in (".html", ".htm"):
        _fail(f"--out must end in .html, got {out.name!r}.")
    try:
        page = download_run_report(run_id, tracking_uri=_tracking_uri(tracking_uri))
    except TrackingError as exc:
        _fail(str(exc))
    try:
        atomic_write_bytes(page, out)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            reason += " (the disk is full or a file size limit was reached)"
        unchanged = f"the previous {out} is unchanged" if out.exists() else "nothing was written"
        _fail(f"Cannot write {out}: {reason}; {unchanged}. Free space or choose another --out.")
    console.print(f"report of run {run_id} -> {out} ({len(page):,} bytes)", highlight=False)
