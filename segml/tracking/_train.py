"""One training run: load, fit every model, evaluate, log to MLflow, register the scorer."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from segml._config import (
    ConfigError,
    check_config,
    load_config,
    read_source,
    section_kwargs,
)
from segml._config import run_name as make_run_name
from segml.models import early_warning
from segml.scoring import CustomerScorer
from segml.tracking._gates import gate_metrics, settings_params
from segml.tracking._model import cast_to_signature, export_model, log_model, model_signature
from segml.tracking._report import REPORT_ARTIFACT
from segml.tracking._run_worker import IMPORT_THREAD_NAME, RunWorker
from segml.tracking._store import (
    DEFAULT_TRACKING_URI,
    TrackingError,
    check_tracking_uri,
    fail_stale_runs,
    mlflow_session,
    prepare_store,
    process_tags,
    redact_text,
    redact_uri,
    sqlite_path,
    store_lock,
)

__all__ = ["TrainResult", "flatten_config", "train"]


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
    gates: pd.DataFrame | None = None


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


# What a run imports after the fit (about 2-3 s): MLflow's SQL stores and pyfunc
# flavor, GitPython (MLflow's source tags), matplotlib and the figures. Imported on a
# thread while the data is read and the models fit, most of which runs in numpy and
# scikit-learn code that releases the GIL.
_RUN_MODULES = (
    "mlflow",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.pyfunc",
    "mlflow.models",
    "mlflow.data.pandas_dataset",
    "git",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "segml.reports",
)

_PEEKED_BY_SKLEARN = ("pyarrow", "polars")


def _import_meanwhile() -> threading.Thread:
    """Start importing :data:`_RUN_MODULES` on a thread; join it before forking.

    A module that fails to import here is imported again where it is used, which
    raises the error there as it always did.
    """

    # scikit-learn, while it fits, reads sys.modules["polars"] / ["pyarrow"] to tell
    # frames apart and would find one half imported by the thread (MLflow's dataset
    # registry imports them when installed): those are imported here first.
    for name in _PEEKED_BY_SKLEARN:
        if name not in sys.modules and importlib.util.find_spec(name) is not None:
            importlib.import_module(name)

    def work() -> None:
        for name in _RUN_MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 - raised again where it is used
                continue

    thread = threading.Thread(target=work, name=IMPORT_THREAD_NAME, daemon=True)
    thread.start()
    return thread


def _spark_log(config: dict, spark, segml_spark):
    """The config's log read and cleaned on Spark: (Spark DataFrame, DataQualityReport)."""
    source = config["data"]["source"]
    if not isinstance(source, str | os.PathLike) or str(source) in ("cdnow", "cdnow-sample"):
        raise ConfigError(
            f"data.source {source!r} is a dataset name; the Spark engine reads files: write "
            "it to a .csv or .parquet file (segml.datasets.load_cdnow(...).to_parquet(path)) "
            "and point data.source there, or train with the pandas engine."
        )
    if spark is None:
        from segml.spark._score import _new_session

        spark = _new_session()
    return segml_spark.read_training_log(spark, source, **section_kwargs(config, "transactions"))


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
    # Without a scorecard config the scorer picks the default table for the log (by
    # spend, or by orders for a purchases-only log).
    scorecard = (
        TierScorecard.from_yaml(run["scorecard_config"]) if run.get("scorecard_config") else None
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


def _predictive_report(scorer: CustomerScorer, transactions: pd.DataFrame) -> dict[str, Any]:
    """How well the calibration model's predictive distributions cover the holdout.

    :func:`segml.models._predictive.predictive_calibration` on the run's own
    calibration/holdout split: interval coverage of holdout counts and spend, and
    the Brier score of P(buy within 90 days) beside the constant baseline. Orders
    with zero amount are left out, as the Gamma-Gamma spend model needs.
    """
    from segml.models._predictive import predictive_calibration

    d = scorer.diagnostics_
    cutoffs = scorer.evaluation_["cutoffs"]
    if "amount" in transactions.columns:
        transactions = transactions[transactions["amount"] > 0]
    return predictive_calibration(
        d["clv_calibration"],
        d["cal_holdout"],
        transactions,
        calibration_end=cutoffs["clv_calibration_end"],
        observation_end=cutoffs["as_of"],
        random_state=0,
    )


def _predictive_skipped(scorer, clean) -> str | None:
    """Why the run has no predictive calibration (None: it has one)."""
    if clean is None:
        return "the training log is not on this machine (Spark engine)"
    return None


def _figure_tasks(
    scorer: CustomerScorer,
    transactions: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
) -> dict[str, Callable[[], Any]]:
    """Every evaluation figure of the run drawn from the fit, by file name, each
    drawn when its function is called (the run shares them with a worker).

    ``transactions`` (the clean log) adds the cumulative tracking chart; ``scores``
    is ``scorer.predict`` of the diagnostic features when the caller has it
    (computed here otherwise).
    """
    from segml.models._predictive import clv_predictive_interval
    from segml.reports import _churn, _clv, _clv_fan, _segments

    d = scorer.diagnostics_
    features = d["features"]
    rfm = scorer.clv_features(features)
    if scores is None:
        scores = scorer.predict(features)
    table = features.join(scores)
    tiers = scorer.scorecard_.tier_labels_
    y, churn_scores = d["churn_labels"], d["churn_scores"]
    cutoffs = scorer.evaluation_["cutoffs"]
    tasks = {
        "clv/calibration_vs_holdout_purchases.png": lambda: _clv.plot_calibration_purchases(
            d["clv_calibration"], d["cal_holdout"]
        ),
        "clv/frequency_recency_expected_purchases.png": lambda: _clv.plot_frequency_recency_matrix(
            scorer.clv_, rfm
        ),
        "clv/p_alive_matrix.png": lambda: _clv.plot_p_alive_matrix(scorer.clv_, rfm),
        "clv/period_transactions.png": lambda: _clv.plot_period_transactions(scorer.clv_, rfm),
    }
    spend = getattr(scorer.clv_, "gamma_gamma_params_", None) is not None
    if spend:  # CLV needs the spend model (none for a purchases-only log)
        tasks["clv/clv_distribution.png"] = lambda: _clv.plot_clv_distribution(
            scorer.clv_.predict(rfm)
        )
    if transactions is not None:
        # Fader, Hardie & Lee (2005), Figure 2: the calibration model tracks the
        # weekly cumulative repeat transactions into the holdout.
        tasks["clv/cumulative_repeat_transactions.png"] = lambda: _clv.plot_cumulative_transactions(
            d["clv_calibration"],
            transactions,
            calibration_end=cutoffs["clv_calibration_end"],
            observation_end=cutoffs["as_of"],
        )
    # One bar per sampled customer: the 80% predictive interval of CLV (process and
    # parameter uncertainty) around the point CLV.
    if spend:
        tasks["clv/clv_fan.png"] = lambda: _clv_fan.plot_clv_fan(
            scorer.clv_.clv(rfm), clv_predictive_interval(scorer.clv_, rfm, random_state=0)
        )
    tasks["segments/tier_counts.png"] = lambda: _segments.plot_tier_counts(
        table["tier"], order=tiers
    )
    tasks["segments/tier_shares.png"] = lambda: _segments.plot_tier_shares(
        table["tier"], order=tiers
    )
    if "total_spend" in table:  # not for a purchases-only log
        tasks["segments/frequency_vs_spend.png"] = lambda: _segments.plot_frequency_vs_spend(table)
    tasks["segments/segment_profiles.png"] = lambda: _segments.plot_segment_profiles(table)
    if scorer.segments_.silhouette_scores_:
        tasks["segments/silhouette_curve.png"] = lambda: _segments.plot_silhouette_curve(
            scorer.segments_.silhouette_scores_, chosen=scorer.segments_.n_segments_
        )
    tasks["churn/roc.png"] = lambda: _churn.plot_churn_roc(y, churn_scores)
    tasks["churn/precision_recall.png"] = lambda: _churn.plot_churn_precision_recall(
        y, churn_scores
    )
    tasks["churn/calibration.png"] = lambda: _churn.plot_churn_calibration(
        y, {"model": churn_scores["model"]}
    )
    tasks["churn/lift.png"] = lambda: _churn.plot_churn_lift(y, churn_scores)
    return tasks


def _reliability_figures(predictive: Mapping[str, Any]) -> dict[str, Any]:
    """The P(buy) reliability chart of :func:`_predictive_report`, by file name."""
    from segml.reports import _clv_fan

    return {
        "clv/p_buy_reliability.png": _clv_fan.plot_purchase_reliability(
            predictive["reliability"],
            brier=predictive["p_buy_brier"],
            brier_baseline=predictive["p_buy_brier_baseline"],
            window_days=predictive["window_days"],
        )
    }


def _run_worker(folder: Path, scorer, clean, scores, config, gates) -> RunWorker:
    """The run's figures, report.html and predictive calibration (:mod:`._run_worker`)."""

    def report() -> str:  # in the training process, in the active run
        import mlflow

        from segml.reports._html import build_tier_report

        return build_tier_report(
            scorer,
            scores=scores,
            run_id=mlflow.active_run().info.run_id,
            model_name=section_kwargs(config, "run").get("registered_model_name", "segml-scorer"),
            gates=gates,
        )

    def predictive() -> dict[str, Any] | None:
        return None if _predictive_skipped(scorer, clean) else _predictive_report(scorer, clean)

    return RunWorker(
        folder,
        # _figure_tasks is looked up when called (tests replace it to interrupt a run).
        figures=lambda: _figure_tasks(scorer, transactions=clean, scores=scores),
        predictive=predictive,
        late_figures=_reliability_figures,
        report=report,
    )


def _log_predictive(predictive: Mapping[str, Any]) -> None:
    """The predictive calibration's metrics and reliability table (active run)."""
    import mlflow

    window = f"p_buy_{int(predictive['window_days'])}d"
    mlflow.log_metrics(
        {
            **{
                f"predictive.{key}": float(predictive[key])
                for key in (
                    "count_coverage",
                    "count_interval_mass",
                    "spend_coverage",
                    "spend_interval_mass",
                )
                if key in predictive  # no spend figures for a purchases-only log
            },
            f"predictive.{window}_brier": float(predictive["p_buy_brier"]),
            f"predictive.{window}_brier_baseline": float(predictive["p_buy_brier_baseline"]),
        }
    )
    mlflow.log_text(predictive["reliability"].to_csv(index=False), "predictive_reliability.csv")


def _metrics(scorer: CustomerScorer, report, config: dict) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key, value in scorer.evaluation_["clv_holdout"].items():
        metrics[f"clv_holdout.{key}"] = float(value)
    spend_params = scorer.clv_.gamma_gamma_params_ or {}  # none for a purchases-only log
    for name, value in {**scorer.clv_.purchase_params_, **spend_params}.items():
        metrics[f"clv.param.{name}"] = float(value)
    selection = getattr(scorer.clv_, "model_selection_", None)
    if selection is not None:
        for model_name, row in selection.iterrows():
            for column in (
                "holdout_mae",
                "holdout_rmse",
                "holdout_total_error_pct",
                "log_likelihood",
                "bic",
            ):
                if column in row and pd.notna(row[column]):
                    metrics[f"clv.selection.{model_name}.{column}"] = float(row[column])
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

    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException as exc:
        raise TrackingError(f"Cannot read the model registry: {exc.message}") from None
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


def _portable_path(value: str, base: Path) -> str:
    """An absolute path of this machine as a path relative to ``base`` (else unchanged).

    What a run logs (params, tags, dataset source, the data-quality report) must not
    carry the training machine's folder layout: the config's folder is the base.

    Examples
    --------
    >>> _portable_path("/home/ann/project/data/log.csv", Path("/home/ann/project/configs"))
    '../data/log.csv'
    >>> _portable_path("cdnow-sample", Path("/x"))
    'cdnow-sample'
    """
    if not os.path.isabs(value):
        return value
    try:
        return os.path.relpath(value, base)
    except ValueError:  # another drive (Windows): keep only the file name
        return Path(value).name


def _portable_config(config: dict, base: Path) -> dict:
    """The config as logged: file paths relative to the config's folder."""
    logged = {section: dict(values) for section, values in config.items()}
    if isinstance(logged.get("data", {}).get("source"), str):
        logged["data"]["source"] = _portable_path(logged["data"]["source"], base)
    for key in ("scorecard_config", "actions_config"):
        if isinstance(logged.get("run", {}).get(key), str):
            logged["run"][key] = _portable_path(logged["run"][key], base)
    return logged


def _disk_error(exc: OSError, run_id: str, marked: bool) -> TrackingError:
    """One message for a write that failed while logging (full disk, file size limit)."""
    state = (
        "was marked FAILED"
        if marked
        else "could not be marked FAILED now (the next segml train or segml runs will)"
    )
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return TrackingError(
        f"Writing the run's files failed: {exc.strerror or exc}{where}. The run {run_id} "
        f"{state} and no model version was registered; free disk space (or raise the "
        "file size limit) and train again."
    )


def train(
    config: str | os.PathLike | Mapping[str, Any],
    *,
    tracking_uri: str | None = None,
    export: str | os.PathLike | None = None,
    promote: bool = False,
    on_step: Callable[[str, float], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    transactions: Mapping[str, Any] | None = None,
    allow_failed_gates: bool = False,
    run_name: str | None = None,
    description: str | None = None,
    engine: str = "pandas",
    spark=None,
    max_training_customers: int | None = None,
) -> TrainResult:
    """Train every model on a config's data, log the run to MLflow, register the scorer.

    Order matters for what a failure leaves behind: names and the store are checked
    before anything is fitted; the model version is registered only after the run
    has logged everything, and is deleted again (aliases restored) when the run
    fails. RUNNING runs left by killed processes are marked FAILED first.

    Parameters
    ----------
    config : path or mapping
        A run config (``configs/cdnow.yaml``) or its loaded sections.
    tracking_uri : str, optional
        Where runs go. Default ``sqlite:///mlflow.db`` in the working directory
        (MLflow's embedded store); an ``http://`` URI points at a tracking server,
        which must be reachable before anything is logged. A password in the URI
        is never printed or logged.
    export : path, optional
        Also write the scoring model to this folder (``mlflow.pyfunc.load_model``-able).
    promote : bool, default False
        Move the ``champion`` alias to the new version (``candidate`` always moves).
    on_step : callable, optional
        ``on_step(step_name, seconds)`` after each step.
    on_notice : callable, optional
        ``on_notice(message)`` for what the user should read: stale runs marked
        FAILED, why the purchase model was chosen, a tier holding almost everyone.
        Without it, stale runs are reported through ``on_step`` and the tier warning
        is raised as a warning.
    transactions : mapping, optional
        Cleaning options that override the config's ``transactions`` section (the
        command line's ``--decimal`` etc.); checked like the config's own keys.
    allow_failed_gates : bool, default False
        Move the aliases although a gate failed (the config's ``gates`` section,
        :class:`segml.tracking._gates.GateSettings`); the run and version are then
        tagged ``gates.override=true``. Without it a run that fails a gate is
        logged and registered but moves no alias (``aliases`` is ``[]``).
    run_name, description : str, optional
        Override the config's ``run.name`` / ``run.description``. The default name
        is the config's name, the date and the data digest
        (``"cdnow as of 1998-06-30 [3f2a9c1e]"``); the description is shown with the
        run and its registered version.
    engine : {"pandas", "spark"}, default "pandas"
        ``"spark"``: the log (``data.source``, a file) is read and cleaned on Spark and
        the training tables are built there (:func:`segml.spark.fit_scorer`); only
        per-customer tables reach this machine. The run logs and registers as the
        pandas engine's does, plus the params ``engine``, ``spark.n_customers``,
        ``spark.sample_fraction`` and the tag ``spark.tables`` (what the models saw),
        less what needs the raw log: the predictive calibration and the cumulative
        transactions chart (tags ``predictive.skipped``, ``figures.skipped``). The
        ``data_digest`` is then the digest of the per-customer features.
    spark : pyspark.sql.SparkSession, optional
        The session of ``engine="spark"`` (default: the active one, else a new one
        whose workers run this Python).
    max_training_customers : int, optional
        ``engine="spark"``: above this many customers the tables hold a sample of
        them (default :data:`segml.spark.MAX_TRAINING_CUSTOMERS`).

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        A config that cannot be used (key, kind, name), before anything is fitted.
    TrackingError
        The store or registry cannot be used, or a write failed while logging (the
        run is then marked FAILED and nothing is registered).
    """
    if engine not in ("pandas", "spark"):
        raise ConfigError(f"engine must be 'pandas' or 'spark', got {engine!r}.")
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

    if isinstance(config, Mapping):
        base = Path.cwd()
        config_name = None
        config = check_config({k: dict(v or {}) for k, v in config.items()})
    else:
        base = Path(config).resolve().parent
        config_name = Path(config).stem
        config = load_config(config)
    overrides = {"name": run_name, "description": description}
    if any(value is not None for value in overrides.values()):
        config["run"] = {
            **config.get("run", {}),
            **{k: v for k, v in overrides.items() if v is not None},
        }
        check_config(config, origin="the run options")
    if transactions:
        config["transactions"] = {**config.get("transactions", {}), **transactions}
        check_config(
            {"data": config["data"], "transactions": config["transactions"]},
            origin="the cleaning options",
        )
    run_args = section_kwargs(config, "run")
    as_of = run_args.get("as_of") or section_kwargs(config, "features").get("as_of")
    if as_of is None:
        raise ConfigError("The config needs run.as_of: the date the models are trained at.")
    experiment_name = run_args.get("experiment_name", "segml")
    model_name = run_args.get("registered_model_name", "segml-scorer")
    tracking_uri = tracking_uri or DEFAULT_TRACKING_URI
    shown_uri = redact_uri(tracking_uri)
    timed("check tracking store", check_tracking_uri, tracking_uri)
    scorer = _scorer_from_config(config)  # argument errors before the data is read
    importing = _import_meanwhile()
    # Every way out of here joins the import thread: a caller that goes on after an
    # error must not import MLflow while the thread is half-way through it.
    try:
        tables = None  # the Spark engine's training tables
        if engine == "pandas":
            clean, report, _ = timed("load and validate transactions", _load_data, config)
            # The scoring model remembers how its training log was cleaned (segml score
            # applies the same settings).
            scorer.cleaning = report.settings
            concentration = _fit(scorer, clean, as_of, step, on_notice)
            digest = _data_digest(clean)
            rows = clean.head(1000)
        else:
            # The driver never holds the log: Spark cleans it and builds the training
            # tables (segml.spark); the models fit on them as on the pandas path.
            import segml.spark as segml_spark

            log, report = timed(
                "load and validate transactions", _spark_log, config, spark, segml_spark
            )
            scorer.cleaning = report.settings
            fitted = {}

            def fit_on_spark() -> None:
                fitted["tables"] = segml_spark.fit_scorer(
                    scorer,
                    log,
                    as_of=as_of,
                    max_training_customers=max_training_customers
                    or run_args.get("max_training_customers")
                    or segml_spark.MAX_TRAINING_CUSTOMERS,
                    on_step=step,
                    diagnostics=True,
                )[1]

            try:
                concentration = _fit(scorer, None, as_of, step, on_notice, fit=fit_on_spark)
                tables = fitted["tables"]
                columns = [c for c in ("customer_id", "timestamp", "amount") if c in log.columns]
                # segml.spark's collector (PySpark's pandas-3 notices silenced there).
                from segml.spark._buckets import to_pandas

                rows = to_pandas(log.select(*columns).limit(1000))
            finally:
                log.unpersist()
            clean = None
            # The digest of what the models saw: the per-customer features (the raw log
            # stays on the cluster).
            digest = _data_digest(tables.features)
            message = f"Spark engine: the models were fitted on {tables.describe()}."
            if on_notice is not None:
                on_notice(message)
            else:
                step(message, 0.0)
        # What the scorer wants said (e.g. a purchases-only log has no CLV columns).
        for message in getattr(scorer, "notices_", []):
            if on_notice is not None:
                on_notice(message)
            else:
                step(message, 0.0)
        if getattr(scorer, "churn_source_", "churn classifier") != "churn classifier":
            message = f"churn: {scorer.churn_source_}."
            if on_notice is not None:
                on_notice(message)
            else:
                step(message, 0.0)
        gate_settings, gates, decision = _judge(
            scorer,
            clean,
            config,
            promote=promote,
            allow_failed_gates=allow_failed_gates,
            first_day=None if tables is None else tables.first_day,
        )
        example = cast_to_signature(
            scorer.diagnostics_["features"].head(5), scorer.feature_columns_
        )
        logged_config = _portable_config(config, base)
        logged_source = logged_config["data"]["source"]
        name = make_run_name(logged_config, as_of, digest=digest, config_name=config_name)
        run_description = section_kwargs(config, "run").get("description")
        # The scores of the diagnostic customers feed the artifacts, the figures and the
        # report: computed once, here, before the drawing worker forks (it never scores).
        scores = scorer.predict(scorer.diagnostics_["features"], as_of=scorer.as_of_)
    finally:
        # No import may be half done in the forked worker (its module locks stay held).
        importing.join()
    with tempfile.TemporaryDirectory() as worker_folder:
        worker = _run_worker(Path(worker_folder), scorer, clean, scores, config, gates)
        # A forked worker draws the figures and measures the predictive calibration
        # while this process opens the run, logs and saves the model.
        worker.start()
        try:
            result = _log_and_register(
                scorer=scorer,
                report=report,
                config=config,
                logged_config=logged_config,
                logged_source=logged_source,
                clean=clean,
                scores=scores,
                worker=worker,
                rows=rows,
                tables=tables,
                tracking_uri=tracking_uri,
                shown_uri=shown_uri,
                model_name=model_name,
                experiment_name=experiment_name,
                run_name=name,
                run_description=run_description,
                gates=gates,
                gate_settings=gate_settings,
                decision=decision,
                concentration=concentration,
                example=example,
                digest=digest,
                step=step,
                timed=timed,
                on_notice=on_notice,
            )
        finally:
            worker.close()
    run_id, experiment, version, aliases = result
    # Every gate's line, then what the verdict did to the aliases.
    lines = list(gates["message"])
    lines += [line for line in decision.notices if line not in lines]
    for line in lines:
        if on_notice is not None:
            on_notice(line)
        elif line in decision.notices:  # at least the failures and held-back aliases
            step(line, 0.0)
    selection = getattr(scorer.clv_, "model_selection_", None)
    if selection is not None and on_notice is not None:
        from segml.models import describe_selection

        on_notice(f"purchase model chosen on the holdout:\n{selection.to_string()}")
        on_notice(describe_selection(selection))
    del scorer.diagnostics_
    export_path = None
    if export is not None:
        try:
            export_path = timed(
                "export model",
                export_model,
                scorer,
                export,
                input_example=example,
                # The folder keeps its origin: segml score writes it beside the scores.
                origin={"name": model_name, "version": version, "run_id": run_id},
            )
        except OSError as exc:
            raise TrackingError(
                f"Run {run_id} and {model_name} version {version} are complete, but exporting "
                f"the model to {export} failed: {exc.strerror or exc}; any previous export "
                "there is untouched. Free disk space and export again (segml train --export)."
            ) from None
    return TrainResult(
        scorer=scorer,
        run_id=run_id,
        experiment_id=experiment.experiment_id,
        model_uri=f"models:/{model_name}/{version}",
        registered_model_name=model_name,
        version=version,
        aliases=aliases,
        export_path=export_path,
        seconds=timings,
        gates=gates,
    )


def _log_and_register(
    *,
    scorer,
    report,
    config,
    logged_config,
    logged_source,
    clean,
    scores,
    worker,
    rows,
    tables,
    tracking_uri,
    shown_uri,
    model_name,
    experiment_name,
    run_name,
    run_description,
    gates,
    gate_settings,
    decision,
    concentration,
    example,
    digest,
    step,
    timed,
    on_notice,
):
    """Open the run, log everything, save the model, register it; (run id, experiment,
    version, aliases). A failure marks the run FAILED and registers nothing."""
    name = run_name
    with mlflow_session(tracking_uri) as mlflow_uri:
        import mlflow
        from mlflow import MlflowClient

        with _store_errors(tracking_uri, "opening the run"):
            timed("prepare tracking store", prepare_store, tracking_uri)
            mlflow.set_tracking_uri(mlflow_uri)
            client = MlflowClient(tracking_uri=mlflow_uri)
            timed(
                "check registered model",
                _check_signature_compatible,
                client,
                model_name,
                model_signature(scorer),
            )
            with store_lock(tracking_uri):  # two new runs must not both create it
                experiment = _experiment(client, experiment_name, tracking_uri)
            started = time.perf_counter()
            for note in fail_stale_runs(client, [experiment.experiment_id]):
                if on_notice is not None:
                    on_notice(note)
                else:
                    step(note, time.perf_counter() - started)
            logging_started = time.perf_counter()
            run = mlflow.start_run(
                experiment_id=experiment.experiment_id,
                run_name=name,
                description=run_description,
                # The pid and host say whose run it is (a killed run is found by them);
                # the source name replaces MLflow's default, the absolute path of the
                # script that runs (a path of the training machine).
                tags={**process_tags(), "mlflow.source.name": "segml train"},
            )
        run_id = run.info.run_id
        version = None
        moved: dict[str, str | None] = {}
        try:
            digest = _log_run(
                scorer,
                report,
                config,
                logged_config,
                logged_source,
                rows,
                lock=store_lock(tracking_uri),
                digest=digest,
                scores=scores,
            )
            mlflow.log_param("engine", "pandas" if tables is None else "spark")
            if tables is not None:  # what the Spark engine fitted on, sampled or not
                mlflow.log_params(
                    {
                        "spark.n_customers": str(tables.n_customers),
                        "spark.sample_fraction": str(tables.sample_fraction),
                        "spark.max_training_customers": str(tables.max_training_customers),
                    }
                )
                mlflow.set_tags(
                    {
                        "spark.tables": tables.describe()[:5000],
                        "figures.skipped": (
                            "clv/cumulative_repeat_transactions.png, clv/p_buy_reliability.png:"
                            " the training log is not on this machine (Spark engine)"
                        ),
                    }
                )
            # Gate settings are logged with their defaults too (once: those the config
            # sets are already params), then the gates' values, verdict and table.
            logged_params = flatten_config(logged_config)
            mlflow.log_params(
                {
                    key: value
                    for key, value in settings_params(gate_settings).items()
                    if key not in logged_params
                }
            )
            mlflow.log_metrics(gate_metrics(gates))
            mlflow.set_tags(decision.tags)
            mlflow.log_text(gates.to_csv(index=False), "gates.csv")
            if concentration:
                mlflow.set_tag("scorecard.concentration_warning", concentration[0][:5000])
            info = log_model(scorer, input_example=example, registered_model_name=None)
            _portable_mlmodel(client, info)
            # The figures and report.html, made meanwhile: one upload of the folder.
            drawn, predictive = worker.finish()
            if predictive is not None:
                _log_predictive(predictive)
            else:
                mlflow.set_tag("predictive.skipped", _predictive_skipped(scorer, clean))
            mlflow.log_artifacts(str(drawn / "figures"), "figures")
            mlflow.log_artifact(str(drawn / REPORT_ARTIFACT))
            # Registered only now that the run holds everything; a failure from here
            # on deletes the version and puts the aliases back.
            aliases = decision.aliases  # none when a gate failed (unless overridden)
            with store_lock(tracking_uri):  # one registration at a time on a SQLite store
                version = _register(client, model_name, info, run_id)
                for key, value in {
                    **decision.tags,
                    "run_id": run_id,
                    "data_digest": digest,
                }.items():
                    client.set_model_version_tag(model_name, version, key, value[:5000])
                verdict = (
                    "passed"
                    if decision.tags.get("gates.passed") == "true"
                    else f"FAILED: {decision.tags.get('gates.failed', '')}"
                )
                client.update_model_version(
                    model_name,
                    version,
                    description=(
                        f"{name}; run {run_id}; data {digest}; gates {verdict}"
                        + (f"; {run_description}" if run_description else "")
                    ),
                )
                current = client.get_registered_model(model_name).aliases
                for alias in aliases:
                    moved[alias] = str(current[alias]) if alias in current else None
                    client.set_registered_model_alias(model_name, alias, version)
        except BaseException as exc:
            marked = _fail_run(client, run_id, model_name, version, moved)
            if isinstance(exc, OSError):
                raise _disk_error(exc, run_id, marked) from None
            from mlflow.exceptions import MlflowException

            if isinstance(exc, MlflowException):
                state = (
                    "marked FAILED"
                    if marked
                    else "not marked FAILED yet: the next segml train or segml runs will"
                )
                raise TrackingError(
                    f"MLflow at {shown_uri} failed while logging run {run_id} ({state}; "
                    f"nothing registered): {redact_text(exc.message, tracking_uri)}"
                ) from None
            raise
        try:
            mlflow.end_run(status="FINISHED")
        except Exception as exc:  # noqa: BLE001 - the store failed at the last write
            raise TrackingError(
                f"Run {run_id} logged everything and registered {model_name} version "
                f"{version}, but MLflow at {shown_uri} could not mark it FINISHED: "
                f"{redact_text(str(exc), tracking_uri)}"
            ) from None
    step("log run and register model", time.perf_counter() - logging_started)
    return run_id, experiment, version, aliases


def _judge(scorer, clean, config, *, promote: bool, allow_failed_gates: bool, first_day=None):
    """The run's gates (config section ``gates``) and which aliases they let it move."""
    from segml.tracking._gates import GateSettings, decide_aliases, evaluate_gates

    try:
        settings = GateSettings(**section_kwargs(config, "gates"))
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
    gates = evaluate_gates(scorer, clean, settings=settings, first_day=first_day)
    decision = decide_aliases(gates, promote=promote, allow_failed_gates=allow_failed_gates)
    return settings, gates, decision


def _fit(scorer, clean, as_of, step, on_notice, fit=None) -> list[str]:
    """Fit the scorer; returns the tier-concentration warnings it raised (as text).

    ``fit()``, when given, fits instead of ``scorer.fit(clean, ...)`` (the Spark
    engine). With ``on_notice`` they are passed there (and logged as a tag); without it they
    stay warnings. Every other warning is re-issued unchanged.
    """
    from segml.models.scorecard import TierConcentrationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TierConcentrationWarning)
        if fit is None:
            scorer.fit(clean, as_of=as_of, on_step=step, diagnostics=True)
        else:
            fit()
    messages = []
    for warning in caught:
        if issubclass(warning.category, TierConcentrationWarning) and on_notice is not None:
            messages.append(str(warning.message))
            on_notice(str(warning.message))
        else:
            if issubclass(warning.category, TierConcentrationWarning):
                messages.append(str(warning.message))
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return messages


@contextmanager
def _store_errors(tracking_uri: str, doing: str):
    """MLflow and file errors while ``doing`` become one TrackingError (URI redacted)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise TrackingError(
            f"MLflow at {redact_uri(tracking_uri)} failed while {doing}: "
            f"{redact_text(exc.message, tracking_uri)}"
        ) from None
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise TrackingError(
            f"Writing to the MLflow store {redact_uri(tracking_uri)} failed while {doing}: "
            f"{exc.strerror or exc}{where}. Nothing was logged or registered; free disk "
            "space and train again."
        ) from None


def _log_run(
    scorer,
    report,
    config,
    logged_config,
    logged_source,
    rows,
    lock,
    digest,
    *,
    scores,
) -> str:
    """Params, metrics, tags, the dataset and the artifacts of the active run.

    ``rows``: the first rows of the clean log, logged as the run's dataset input;
    ``digest``: the training data's digest (tagged ``data_digest``).

    ``scores`` is ``scorer.predict`` of the diagnostic features. The figures, the
    report and the predictive calibration come from the run's worker (logged by
    the caller). Returns the digest of the training data (also tagged ``data_digest``).
    """
    import mlflow

    from segml.persistence import write_json

    mlflow.log_params(flatten_config(logged_config))
    # The predictive outputs' settings as fitted (the seed drawn when none was set).
    settings = getattr(scorer, "predictive_settings_", None) or {}
    mlflow.log_params({f"predictive_settings.{k}": str(v) for k, v in settings.items()})
    if getattr(scorer, "notices_", None):
        mlflow.set_tag("scorer.notices", "\n".join(scorer.notices_)[:5000])
    mlflow.log_metrics(_metrics(scorer, report, config))
    as_of = section_kwargs(config, "run").get("as_of") or config.get("features", {}).get("as_of")
    mlflow.set_tags(
        {
            "as_of": str(pd.Timestamp(as_of).date()),
            "data_digest": digest,
            # Which churn score the model deploys: the classifier, or the calibrated
            # baseline it lost to (CustomerScorer(churn_fallback=True)).
            "churn.score_source": getattr(scorer, "churn_source_", "churn classifier")[:5000],
            "segml_version": _segml_version(),
            "clv.purchase_model": str(getattr(scorer.clv_, "purchase_model_", "bgnbd")),
            **({"git_commit": commit} if (commit := _git_commit()) else {}),
        }
    )
    selection = getattr(scorer.clv_, "model_selection_", None)
    if selection is not None:
        from segml.models import describe_selection

        mlflow.log_text(selection.to_csv(), "clv/model_selection.csv")
        mlflow.set_tag("clv.purchase_model_reason", describe_selection(selection)[:5000])
    sample = rows
    # Integer columns make MLflow warn that they cannot hold missing values.
    sample = sample.astype({c: "float64" for c in sample.select_dtypes("integer")})
    name = config["data"].get("name", logged_source)
    with warnings.catch_warnings():
        # MLflow 3.17 registers its local dataset source twice and warns that a
        # path "can be interpreted in multiple ways"; both are the same class.
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
        dataset = mlflow.data.from_pandas(sample, source=logged_source, name=name, digest=digest)
    # Two runs logging the same data at once race to insert the one dataset row
    # (UNIQUE experiment, name, digest): take turns on a SQLite store, and on a
    # server retry once, when the other run's row is there to be reused.
    from mlflow.exceptions import MlflowException

    with lock:
        try:
            mlflow.log_input(dataset, context="training")
        except MlflowException:
            time.sleep(0.5)
            mlflow.log_input(dataset, context="training")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        scorer.segment_map_.to_json(folder / "segment_map.json")
        scorer.segment_map_.to_csv(folder / "segment_map.csv")
        quality = report.to_dict()
        if isinstance(quality.get("source"), str) and os.path.isabs(quality["source"]):
            quality["source"] = logged_source
        write_json(quality, folder / "data_quality.json")
        scorer.evaluation_["churn"].to_csv(folder / "churn_evaluation.csv")
        # The customers with the most value at risk (clv x churn probability); a
        # purchases-only log has no value, and ranks by expected purchases at risk.
        early_warning(scores, top_n=100).to_csv(folder / "early_warning.csv")
        if "clv" in scores:
            mlflow.log_metric(
                "value_at_risk.total",
                float((scores["clv"] * scores["churn_probability"]).sum()),
            )
        else:
            mlflow.log_metric(
                "purchases_at_risk.total",
                float((scores["expected_purchases"] * scores["churn_probability"]).sum()),
            )
        notices = list(getattr(scorer, "notices_", []))
        if notices:
            (folder / "notices.txt").write_text("\n".join(notices) + "\n", encoding="utf-8")
        write_json(scorer.evaluation_["cutoffs"], folder / "cutoffs.json")
        card = scorer.scorecard_
        if hasattr(card, "edges_"):  # the tier bands as fitted (quantile edges learnt)
            write_json(
                {"edges": card.edges_, "group_edges": getattr(card, "group_edges_", {})},
                folder / "scorecard_edges.json",
            )
        mlflow.log_artifacts(str(folder))
    return digest


def _portable_mlmodel(client, info) -> None:
    """Replace the two absolute paths MLflow writes into a logged model's MLmodel.

    ``mlflow.pyfunc.log_model`` records where the entry script and the scorer
    folder were on the training machine (``model_code_path``, ``artifacts.*.uri``:
    a site-packages path and a temporary folder). Loading uses only the script's
    file name and ``artifacts.*.path``, so both become those relative values.
    """
    import mlflow
    from mlflow.models import Model

    with tempfile.TemporaryDirectory() as folder:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{info.artifact_path.rstrip('/')}/MLmodel", dst_path=folder
        )
        model = Model.load(local)
        pyfunc = model.flavors.get("python_function", {})
        if pyfunc.get("model_code_path"):
            pyfunc["model_code_path"] = os.path.basename(pyfunc["model_code_path"])
        for artifact in (pyfunc.get("artifacts") or {}).values():
            if isinstance(artifact, dict) and "path" in artifact:
                artifact["uri"] = artifact["path"]
        model.save(local)
        client.log_model_artifact(info.model_id, local)


def _register(client, model_name: str, info, run_id: str) -> str:
    """A new version of ``model_name`` from the run's logged model; its number."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    created = client.create_model_version(
        model_name, source=info.model_uri, run_id=run_id, model_id=info.model_id
    )
    return str(created.version)


def _fail_run(client, run_id: str, model_name: str, version, moved: dict) -> bool:
    """Undo a failed run: aliases back, its version deleted, the run FAILED.

    Each step is tried on its own (a full disk may stop some of them); returns
    whether the run could be marked FAILED. A run that could not be is marked by
    the next ``segml train`` / ``segml runs`` (its process is gone by then).
    """
    import mlflow

    for alias, previous in moved.items():
        try:
            if previous is None:
                client.delete_registered_model_alias(model_name, alias)
            else:
                client.set_registered_model_alias(model_name, alias, previous)
        except Exception:  # noqa: BLE001, S110 - best effort while failing
            pass
    if version is not None:
        try:
            client.delete_model_version(model_name, version)
        except Exception:  # noqa: BLE001, S110 - best effort while failing
            pass
    try:
        mlflow.end_run(status="FAILED")
        return True
    except Exception:  # noqa: BLE001 - best effort while failing
        return False


def _experiment(client, name: str, tracking_uri: str):
    """The experiment, created on first use with its artifacts beside the SQLite file.

    MLflow would otherwise put the artifacts of an embedded store in ``./mlruns`` of
    whatever folder the process runs in; next to the database they stay together.
    """
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        database = sqlite_path(tracking_uri)
        location = (database.resolve().parent / "mlruns").as_uri() if database else None
        try:
            client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:  # created meanwhile by another run (a server)
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        experiment = client.get_experiment_by_name(name)
    if experiment.lifecycle_stage == "deleted":
        raise TrackingError(
            f"The experiment {name!r} is deleted (in MLflow's trash): restore it "
            "(mlflow experiments restore) or choose another run.experiment_name."
        )
    return experiment


def _segml_version() -> str:
    # The installed distribution's version, as saved models record it (not the
    # package root, which tracking sits below).
    from segml.persistence import versions

    return versions()["segml"]
