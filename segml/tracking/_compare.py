"""Compare training runs: key metrics side by side, and what changed between two runs."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from segml.scoring import SegmentMap
from segml.tracking._store import (
    TrackingError,
    fail_stale_runs,
    mlflow_session,
    redact_text,
    redact_uri,
    require_existing_store,
)

__all__ = ["KEY_METRICS", "NARROW_COLUMNS", "diff_runs", "runs_table"]

#: The columns `segml runs` shows without ``--wide`` (fits 100 characters).
#: Most wanted first: `segml runs` drops columns from the right until a line fits.
NARROW_COLUMNS = (
    "run_id",
    "status",
    "gates",
    "churn_lead",
    "churn.model.roc_auc",
    "clv_holdout.purchases_mae",
    "as_of",
    "name",
)

#: The metrics `segml runs` shows, in order.
KEY_METRICS = (
    "clv_holdout.purchases_mae",
    "clv_holdout.spend_total_error_pct",
    "churn.model.roc_auc",
    "churn.days_since_last_purchase.roc_auc",
    "churn.model.brier",
    "segments.k",
    "segments.silhouette",
    "data.rows_kept",
)


def runs_table(
    *,
    tracking_uri: str,
    experiment_name: str = "segml",
    on_notice: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One row per run of an experiment, newest first, with the key metrics.

    RUNNING runs whose process is gone (a killed ``segml train``) are marked FAILED
    first, so the table never shows a dead run as in progress; each is reported to
    ``on_notice`` and listed in ``table.attrs["stale_runs_failed"]``.

    Parameters
    ----------
    tracking_uri : str
        The store to read; it must exist (a missing SQLite file is an error, never
        a new empty store).
    experiment_name : str, default "segml"
    on_notice : callable, optional
        ``on_notice(message)`` for each stale run marked FAILED.

    Returns
    -------
    pandas.DataFrame
        ``run_id``, ``start_time``, ``status``, ``as_of``, :data:`KEY_METRICS`
        (those present), ``gates`` (``pass``, ``FAIL:<gates>`` or ``-`` for runs
        without gates), ``churn_lead`` (the churn model's ROC AUC lead over the best
        baseline) and ``name`` (the run name), indexed from 0.

    Raises
    ------
    TrackingError
        No store, no such experiment, or a store that does not answer.
    """
    require_existing_store(tracking_uri)
    shown = redact_uri(tracking_uri)
    with mlflow_session(tracking_uri) as mlflow_uri:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=mlflow_uri)
        try:
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is None:
                names = [e.name for e in client.search_experiments()]
                raise TrackingError(
                    f"No experiment named {experiment_name!r} at {shown}; experiments there: "
                    f"{names}."
                )
            notes = fail_stale_runs(client, [experiment.experiment_id])
            runs, token = [], None
            while True:  # every run, page by page (a page holds at most 1,000)
                page = client.search_runs(
                    [experiment.experiment_id],
                    order_by=["attributes.start_time DESC"],
                    page_token=token,
                )
                runs.extend(page)
                token = page.token
                if not token:
                    break
        except MlflowException as exc:
            raise TrackingError(
                f"Cannot read the runs at {shown}: {redact_text(exc.message, tracking_uri)}"
            ) from None
    for note in notes:
        if on_notice is not None:
            on_notice(note)
    table = pd.DataFrame(
        {
            "run_id": [run.info.run_id for run in runs],
            "start_time": pd.to_datetime(
                [run.info.start_time for run in runs], unit="ms", utc=True
            ),
            "status": [run.info.status for run in runs],
            "as_of": [run.data.tags.get("as_of") for run in runs],
        },
        columns=["run_id", "start_time", "status", "as_of"],
    )
    for metric in KEY_METRICS:
        values = [run.data.metrics.get(metric) for run in runs]
        if any(value is not None for value in values):
            table[metric] = pd.Series(values, dtype="float64")
    # The gates' verdict (runs from before the gates show "-") and the churn lead.
    table["gates"] = [
        "pass"
        if run.data.tags.get("gates.passed") == "true"
        else f"FAIL:{run.data.tags.get('gates.failed', '')}"
        if "gates.passed" in run.data.tags
        else "-"
        for run in runs
    ]
    table["churn_lead"] = pd.Series(
        [run.data.metrics.get("gate.churn_lead.value") for run in runs], dtype="float64"
    )
    table["name"] = [run.info.run_name for run in runs]
    table.attrs["stale_runs_failed"] = notes
    return table.reset_index(drop=True)


def _segment_map(client, run_id: str) -> SegmentMap | None:
    with tempfile.TemporaryDirectory() as folder:
        names = {artifact.path for artifact in client.list_artifacts(run_id)}
        if "segment_map.json" not in names:  # a failed run, or one from another tool
            return None
        path = client.download_artifacts(run_id, "segment_map.json", folder)
        return SegmentMap.from_dict(json.loads(Path(path).read_text()))


def diff_runs(run_a: str, run_b: str, *, tracking_uri: str) -> dict[str, Any]:
    """What changed from run A to run B: config, metrics and the segment map.

    Returns
    -------
    dict
        ``params``: DataFrame of changed params (``a``, ``b``); ``metrics``:
        DataFrame of metrics in either run (``a``, ``b``, ``change``);
        ``segment_map``: the map diff of :meth:`SegmentMap.diff` (None if a run has
        no map).
    """
    require_existing_store(tracking_uri)
    with mlflow_session(tracking_uri) as mlflow_uri:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=mlflow_uri)
        try:
            a, b = client.get_run(run_a), client.get_run(run_b)
            map_a, map_b = _segment_map(client, run_a), _segment_map(client, run_b)
        except MlflowException as exc:
            raise TrackingError(
                f"Cannot read the runs at {redact_uri(tracking_uri)}: "
                f"{redact_text(exc.message, tracking_uri)}"
            ) from None
    params = pd.DataFrame({"a": pd.Series(a.data.params), "b": pd.Series(b.data.params)})
    params = params[params["a"].fillna("<unset>") != params["b"].fillna("<unset>")]
    metrics = pd.DataFrame({"a": pd.Series(a.data.metrics), "b": pd.Series(b.data.metrics)})
    metrics["change"] = metrics["b"] - metrics["a"]
    return {
        "params": params.sort_index(),
        "metrics": metrics.sort_index(),
        "segment_map": map_a.diff(map_b) if map_a is not None and map_b is not None else None,
    }
