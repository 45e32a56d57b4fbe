"""Where runs go: MLflow's embedded SQLite store by default, or a tracking server."""

from __future__ import annotations

import urllib.error
import urllib.request

__all__ = ["TrackingError", "check_tracking_uri"]


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
