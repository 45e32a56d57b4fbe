"""Compare training runs: key metrics side by side, and what changed between two runs."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from segml.scoring import SegmentMap
from segml.tracking._store import TrackingError, require_existing_store

__all__ = ["KEY_METRICS", "diff_runs", "runs_table"]

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


def runs_table(*, tracking_uri: str, experiment_name: str = "segml") -> pd.DataFrame:
    """One row per run of an experiment, newest first, with the key metrics.

    Returns
    -------
    pandas.DataFrame
        ``run_id``, ``start_time``, ``status``, ``as_of`` and :data:`KEY_METRICS`
        (those present), indexed from 0.
    """
    import mlflow

    require_existing_store(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is None:
        names = [e.name for e in mlflow.search_experiments()]
        raise TrackingError(
            f"No experiment named {experiment_name!r} at {tracking_uri}; experiments there: "
            f"{names}."
        )
    runs = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id], order_by=["attributes.start_time DESC"]
    )
    if runs.empty:
        return pd.DataFrame(columns=["run_id", "start_time", "status", "as_of"])
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "start_time": runs["start_time"],
            "status": runs["status"],
            "as_of": runs.get("tags.as_of"),
        }
    )
    for metric in KEY_METRICS:
        column = f"metrics.{metric}"
        if column in runs.columns:
            table[metric] = runs[column]
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
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    require_existing_store(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        a, b = client.get_run(run_a), client.get_run(run_b)
    except MlflowException as exc:
        raise TrackingError(f"Cannot read the runs at {tracking_uri}: {exc.message}") from None
    params = pd.DataFrame({"a": pd.Series(a.data.params), "b": pd.Series(b.data.params)})
    params = params[params["a"].fillna("<unset>") != params["b"].fillna("<unset>")]
    metrics = pd.DataFrame({"a": pd.Series(a.data.metrics), "b": pd.Series(b.data.metrics)})
    metrics["change"] = metrics["b"] - metrics["a"]
    map_a, map_b = _segment_map(client, run_a), _segment_map(client, run_b)
    return {
        "params": params.sort_index(),
        "metrics": metrics.sort_index(),
        "segment_map": map_a.diff(map_b) if map_a is not None and map_b is not None else None,
    }
