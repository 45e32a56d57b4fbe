"""Where runs go: MLflow's embedded SQLite store by default, or a tracking server."""

from __future__ import annotations

import urllib.error
import urllib.request

__all__ = ["TrackingError", "check_tracking_uri", "require_existing_store"]


class TrackingError(RuntimeError):
    """The tracking store or registry cannot be used as asked; nothing was registered."""


def check_tracking_uri(uri: str, *, timeout_seconds: float = 5.0) -> None:
    """Refuse URIs that would lose runs; for a server, check that it answers.

    MLflow 3 blocks the plain file store; segml never falls back to it. A server
    that is down is reported before any run is started, so nothing is half-logged.
    """
    if uri.startswith(("http://", "https://")):
        health = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(health, timeout=timeout_seconds) as response:
                if response.status != 200:
                    raise TrackingError(
                        f"The MLflow tracking server at {uri} answered {response.status} "
                        "on /health."
                    )
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingError(
                f"Cannot reach the MLflow tracking server at {uri} ({exc}). Start it, fix "
                "--tracking-uri / MLFLOW_TRACKING_URI, or omit it to use the embedded "
                "store sqlite:///mlflow.db."
            ) from None
        return
    if uri.startswith(("sqlite:///", "postgresql", "mysql", "mssql", "databricks")):
        return
    raise TrackingError(
        f"Tracking URI {uri!r} is not supported: use sqlite:///PATH (the embedded store) or "
        "http(s)://HOST:PORT (a tracking server). The plain file store (./mlruns) is not "
        "used: MLflow 3 deprecates it."
    )


def require_existing_store(uri: str) -> None:
    """For commands that only read runs: an embedded store must already exist.

    Opening a missing SQLite file would create an empty store and then report
    "no experiment", which hides a wrong path.
    """
    check_tracking_uri(uri)
    if uri.startswith("sqlite:///"):
        from pathlib import Path

        database = Path(uri.removeprefix("sqlite:///"))
        if not database.exists():
            raise TrackingError(
                f"No MLflow store at {database.resolve()}: train first (segml train), or "
                "point --tracking-uri / MLFLOW_TRACKING_URI at the store that holds the runs."
            )
