"""Fetch a run's one-page tier report (``report.html``) from MLflow.

A training run logs the page built by :func:`segml.reports._html.build_tier_report`
as the artifact :data:`REPORT_ARTIFACT`; ``segml report RUN_ID`` reads it back here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from segml.tracking._store import (
    TrackingError,
    mlflow_session,
    redact_text,
    redact_uri,
    require_existing_store,
)

__all__ = ["REPORT_ARTIFACT", "download_run_report"]

#: The artifact path of the report in a run.
REPORT_ARTIFACT = "report.html"


def download_run_report(run_id: str, *, tracking_uri: str) -> bytes:
    """The bytes of the run's ``report.html`` artifact.

    Parameters
    ----------
    run_id : str
        The MLflow run id (``segml train`` prints it; ``segml runs`` lists them).
    tracking_uri : str
        The store holding the run; it must exist (nothing is created).

    Returns
    -------
    bytes
        The HTML page as logged.

    Raises
    ------
    TrackingError
        No store, no such run, a run without the report (e.g. trained by a segml
        that did not log one), or a store that does not answer. The URI is shown
        with its password redacted.
    """
    require_existing_store(tracking_uri)
    shown = redact_uri(tracking_uri)
    with mlflow_session(tracking_uri) as mlflow_uri:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=mlflow_uri)
        try:
            try:
                client.get_run(run_id)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    raise TrackingError(
                        f"No run {run_id!r} at {shown}: check the id (segml runs lists them) "
                        "and --tracking-uri."
                    ) from None
                raise
            logged = {item.path for item in client.list_artifacts(run_id)}
            if REPORT_ARTIFACT not in logged:
                raise TrackingError(
                    f"Run {run_id} at {shown} has no {REPORT_ARTIFACT} artifact (it was trained "
                    f"before runs logged the tier report, or its logging failed); its artifacts "
                    f"are {sorted(logged)}. Train again to get a report."
                )
            with tempfile.TemporaryDirectory() as folder:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id,
                    artifact_path=REPORT_ARTIFACT,
                    dst_path=folder,
                    tracking_uri=mlflow_uri,
                )
                return Path(local).read_bytes()
        except MlflowException as exc:
            raise TrackingError(
                f"Cannot read run {run_id} at {shown}: {redact_text(exc.message, tracking_uri)}"
            ) from None
