"""One training run: load, fit every model, evaluate, log to MLflow, register the scorer."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from segml._config import load_config, read_source, section_kwargs
from segml.models import early_warning
from segml.scoring import CustomerScorer
from segml.tracking._model import cast_to_signature, export_model, log_model, model_signature
from segml.tracking._store import TrackingError, check_tracking_uri

__all__ = ["TrainResult", "flatten_config", "train"]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


@dataclass
class TrainResult:
    """What :func:`train` made: the fitted scorer and where MLflow keeps it."""

    scorer: CustomerScorer
    run_id: str
    experiment_id: str
    model_uri: str
    registered_model_name: str
    version: str
    aliases: list[str]
    export_path: Path | None
    seconds: dict[str, float]


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"clv": {"time_unit": "W"}}`` -> ``{"clv.time_unit": "W"}`` (values as text).

    Examples
    --------
    >>> flatten_config({"clv": {"time_unit": "W", "horizon_months": 12}, "data": {"source": "x"}})
    {'clv.time_unit': 'W', 'clv.horizon_months': '12', 'data.source': 'x'}
    """
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, prefix=f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def _metric_name(text: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . /`` and spaces."""
    return "".join(
        c if c.isalnum() or c in "_-./" else "_" for c in text.replace("1 - ", "1_minus_")
    )


def _data_digest(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def _git_commit() -> str | None:
    for folder in (Path.cwd(), Path(__file__).resolve().parent):
        try:
            out = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode == 0:
            return out.stdout.strip()
    return None


def _load_data(config: dict) -> tuple[pd.DataFrame, Any, str]:
    source = config["data"]["source"]
    clean, report = read_source(source, section_kwargs(config, "transactions"))
    return clean, report, str(source)


def _scorer_from_config(config: dict) -> CustomerScorer:
    from segml.models.churn import ChurnModel
    from segml.models.clv import CLVModel
    from segml.models.scorecard import TierScorecard
    from segml.models.segments import SegmentModel
    from segml.scoring._segment_map import load_actions

    run = section_kwargs(config, "run")
    scorecard = (
        TierScorecard.from_yaml(run["scorecard_config"])
        if run.get("scorecard_config")
        else TierScorecard.default()
    )
    actions = load_actions(run["actions_config"]) if run.get("actions_config") else None
    segments = section_kwargs(config, "segments")
    if isinstance(segments.get("n_segments"), list):
        segments["n_segments"] = tuple(segments["n_segments"])
    scorer_args = section_kwargs(config, "scorer")
    if "windows_days" in scorer_args:
        scorer_args["windows_days"] = tuple(scorer_args["windows_days"])
    return CustomerScorer(
        clv=CLVModel(**section_kwargs(config, "clv")),
        segments=SegmentModel(**segments),
        scorecard=scorecard,
        churn=ChurnModel(**section_kwargs(config, "churn")),
        actions=actions,
        **scorer_args,
    )


def _figures(scorer: CustomerScorer) -> dict[str, Any]:
    """Every evaluation figure of the run, by file name."""
    from segml.reports import _churn, _clv, _segments

    d = scorer.diagnostics_
    features = d["features"]
    unit_days = 7 if scorer.clv_.time_unit == "W" else 1
    rfm = scorer._clv_rfm(features, scorer.clv_.time_unit)
    scores = scorer.predict(features)
    table = features.join(scores)
    y, churn_scores = d["churn_labels"], d["churn_scores"]
    del unit_days
    return {
        "clv/calibration_vs_holdout_purchases.png": _clv.plot_calibration_purchases(
            d["clv_calibration"], d["cal_holdout"]
        ),
        "clv/frequency_recency_expected_purchases.png": _clv.plot_frequency_recency_matrix(
            scorer.clv_, rfm
        ),
        "clv/p_alive_matrix.png": _clv.plot_p_alive_matrix(scorer.clv_, rfm),
        "clv/period_transactions.png": _clv.plot_period_transactions(scorer.clv_, rfm),
        "clv/clv_distribution.png": _clv.plot_clv_distribution(scorer.clv_.predict(rfm)),
        "segments/tier_counts.png": _segments.plot_tier_counts(
            table["tier"], order=scorer.scorecard_.tier_labels_
        ),
        "segments/tier_shares.png": _segments.plot_tier_shares(
            table["tier"], order=scorer.scorecard_.tier_labels_
        ),
        "segments/frequency_vs_spend.png": _segments.plot_frequency_vs_spend(table),
        "segments/segment_profiles.png": _segments.plot_segment_profiles(table),
        **(
            {
                "segments/silhouette_curve.png": _segments.plot_silhouette_curve(
                    scorer.segments_.silhouette_scores_, chosen=scorer.segments_.n_segments_
                )
            }
            if scorer.segments_.silhouette_scores_
            else {}
        ),
        "churn/roc.png": _churn.plot_churn_roc(y, churn_scores),
        "churn/precision_recall.png": _churn.plot_churn_precision_recall(y, churn_scores),
        "churn/calibration.png": _churn.plot_churn_calibration(y, {"model": churn_scores["model"]}),
        "churn/lift.png": _churn.plot_churn_lift(y, churn_scores),
    }


def _metrics(scorer: CustomerScorer, report, config: dict) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key, value in scorer.evaluation_["clv_holdout"].items():
        metrics[f"clv_holdout.{key}"] = float(value)
    for name, value in {**scorer.clv_.bgnbd_params_, **scorer.clv_.gamma_gamma_params_}.items():
        metrics[f"clv.param.{name}"] = float(value)
    churn = scorer.evaluation_["churn"]
    for scorer_name, row in churn.iterrows():
        for column, value in row.items():
            if pd.notna(value):
                metrics[_metric_name(f"churn.{scorer_name}.{column}")] = float(value)
    segments = scorer.segments_
    metrics["segments.k"] = float(segments.n_segments_)
    if segments.silhouette_scores_:
        metrics["segments.silhouette"] = float(segments.silhouette_scores_[segments.n_segments_])
    groups = scorer.segment_map_.to_frame()
    for _, row in groups.iterrows():
        metrics[_metric_name(f"share.{row['column']}.{row['label']}")] = float(row["share"])
    metrics["data.rows_read"] = float(report.rows_read)
    metrics["data.rows_kept"] = float(report.rows_kept)
    for reason, count in report.dropped.items():
        metrics[f"data.dropped.{reason}"] = float(count)
    for key, value in flatten_config(
        {k: v for k, v in config.items() if k in ("clv", "scorer", "segments", "churn")}
    ).items():
        try:
            metrics[f"setting.{key}"] = float(value)
        except ValueError:
            continue
    return metrics


def _check_signature_compatible(client, name: str, signature) -> None:
    """Refuse to add a version whose inputs differ from the name's existing versions."""
    import mlflow
    from mlflow.exceptions import MlflowException

    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        return
    latest = max(versions, key=lambda v: int(v.version))
    try:
        existing = mlflow.models.get_model_info(f"models:/{name}/{latest.version}").signature
    except MlflowException as exc:
        raise TrackingError(
            f"Cannot read version {latest.version} of the registered model {name!r} to "
            f"compare its signature: {exc.message}"
        ) from None
    if existing is not None and existing.inputs.to_dict() != signature.inputs.to_dict():
        old = {c["name"] for c in existing.inputs.to_dict()}
        new = {c["name"] for c in signature.inputs.to_dict()}
        raise TrackingError(
            f"The registered model {name!r} (version {latest.version}) takes other inputs: "
            f"missing now {sorted(old - new)}, new now {sorted(new - old)}. Register under a "
            "new name (run.registered_model_name) instead of mixing signatures."
        )


def train(
    config: str | os.PathLike | Mapping[str, Any],
    *,
    tracking_uri: str | None = None,
    export: str | os.PathLike | None = None,
    promote: bool = False,
    on_step: Callable[[str, float], None] | None = None,
) -> TrainResult:
    """Train every model on a config's data, log the run to MLflow, register the scorer.

    Parameters
    ----------
    config : path or mapping
        A run config (``configs/cdnow.yaml``) or its loaded sections.
    tracking_uri : str, optional
        Where runs go. Default ``sqlite:///mlflow.db`` in the working directory
        (MLflow's embedded store); an ``http://`` URI points at a tracking server,
        which must be reachable before anything is logged.
    export : path, optional
        Also write the scoring model to this folder (``mlflow.pyfunc.load_model``-able).
    promote : bool, default False
        Move the ``champion`` alias to the new version (``candidate`` always moves).
    on_step : callable, optional
        ``on_step(step_name, seconds)`` after each step.

    Returns
    -------
    TrainResult
    """
    import mlflow
    from mlflow import MlflowClient

    timings: dict[str, float] = {}

    def step(name: str, seconds: float) -> None:
        timings[name] = seconds
        if on_step is not None:
            on_step(name, seconds)

    def timed(name, function, *args, **kwargs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        step(name, time.perf_counter() - started)
        return result

    if not isinstance(config, Mapping):
        config = load_config(config)
    config = {k: dict(v) for k, v in config.items()}
    run_args = section_kwargs(config, "run")
    as_of = run_args.get("as_of") or section_kwargs(config, "features").get("as_of")
    if as_of is None:
        raise TrackingError("The config needs run.as_of: the date the models are trained at.")
    experiment_name = run_args.get("experiment_name", "segml")
    model_name = run_args.get("registered_model_name", "segml-scorer")
    tracking_uri = tracking_uri or DEFAULT_TRACKING_URI
    timed("check tracking store", check_tracking_uri, tracking_uri)

    clean, report, source = timed("load and validate transactions", _load_data, config)
    scorer = _scorer_from_config(config)
    scorer.fit(clean, as_of=as_of, on_step=step, diagnostics=True)
    example = cast_to_signature(scorer.diagnostics_["features"].head(5), scorer.feature_columns_)

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    timed(
        "check registered model",
        _check_signature_compatible,
        client,
        model_name,
        model_signature(scorer),
    )
    experiment = _experiment(client, experiment_name, tracking_uri)
    logging_started = time.perf_counter()
    with mlflow.start_run(run_name=f"{config['data'].get('name', source)} as of {as_of}") as run:
        try:
            mlflow.log_params(flatten_config(config))
            mlflow.log_metrics(_metrics(scorer, report, config))
            digest = _data_digest(clean)
            mlflow.set_tags(
                {
                    "as_of": str(pd.Timestamp(as_of).date()),
                    "data_digest": digest,
                    "segml_version": _segml_version(),
                    **({"git_commit": commit} if (commit := _git_commit()) else {}),
                }
            )
            sample = clean.head(1000)
            # Integer columns make MLflow warn that they cannot hold missing values.
            sample = sample.astype({c: "float64" for c in sample.select_dtypes("integer")})
            with warnings.catch_warnings():
                # MLflow 3.17 registers its local dataset source twice and warns that a
                # path "can be interpreted in multiple ways"; both are the same class.
                warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
                dataset = mlflow.data.from_pandas(
                    sample, source=source, name=config["data"].get("name", source), digest=digest
                )
            mlflow.log_input(dataset, context="training")
            with tempfile.TemporaryDirectory() as folder:
                folder = Path(folder)
                scorer.segment_map_.to_json(folder / "segment_map.json")
                scorer.segment_map_.to_csv(folder / "segment_map.csv")
                from segml.persistence import write_json

                write_json(report.to_dict(), folder / "data_quality.json")
                scorer.evaluation_["churn"].to_csv(folder / "churn_evaluation.csv")
                # The customers with the most value at risk (clv x churn probability).
                scores = scorer.predict(scorer.diagnostics_["features"])
                early_warning(scores, top_n=100).to_csv(folder / "early_warning.csv")
                mlflow.log_metric(
                    "value_at_risk.total",
                    float((scores["clv"] * scores["churn_probability"]).sum()),
                )
                write_json(scorer.evaluation_["cutoffs"], folder / "cutoffs.json")
                mlflow.log_artifacts(str(folder))
            for name, figure in _figures(scorer).items():
                mlflow.log_figure(figure, f"figures/{name}")
            info = log_model(scorer, input_example=example, registered_model_name=model_name)
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise
    version = str(info.registered_model_version)
    aliases = ["candidate"] + (["champion"] if promote else [])
    for alias in aliases:
        client.set_registered_model_alias(model_name, alias, version)
    step("log run and register model", time.perf_counter() - logging_started)
    del scorer.diagnostics_
    export_path = None
    if export is not None:
        export_path = timed("export model", export_model, scorer, export, input_example=example)
    return TrainResult(
        scorer=scorer,
        run_id=run.info.run_id,
        experiment_id=experiment.experiment_id,
        model_uri=f"models:/{model_name}/{version}",
        registered_model_name=model_name,
        version=version,
        aliases=aliases,
        export_path=export_path,
        seconds=timings,
    )


def _experiment(client, name: str, tracking_uri: str):
    """The experiment, created on first use with its artifacts beside the SQLite file.

    MLflow would otherwise put the artifacts of an embedded store in ``./mlruns`` of
    whatever folder the process runs in; next to the database they stay together.
    """
    import mlflow

    experiment = client.get_experiment_by_name(name)
    if experiment is None and tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///")).resolve()
        client.create_experiment(name, artifact_location=(database.parent / "mlruns").as_uri())
    return mlflow.set_experiment(name)


def _segml_version() -> str:
    # The installed distribution's version, as saved models record it (not the
    # package root, which tracking sits below).
    from segml.persistence import versions

    return versions()["segml"]
