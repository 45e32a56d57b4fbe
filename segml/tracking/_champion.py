"""Champion and challenger: compare two registered scoring models, and promote one.

- :func:`compare_models` scores the same customers with the candidate and the
  champion and reports what changed (metric deltas of their runs, tier and segment
  migration), how far today's customers drifted from the champion's training data
  (population stability index), and whether the candidate passed its gates. The
  comparison is logged to the candidate's run.
- :func:`promote_version` moves the ``champion`` alias to a version whose run passed
  its gates (:mod:`segml.tracking._gates`), or refuses, naming the failed gate.
- :func:`population_stability_index`: the drift measure, on its own.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segml.tracking._gates import (
    GATE_COLUMNS,
    evaluate_gates,
    failed_gate_lines,
    gates_from_metrics,
    settings_from_params,
)
from segml.tracking._store import (
    TrackingError,
    mlflow_session,
    redact_text,
    redact_uri,
    require_existing_store,
)

__all__ = [
    "PSI_EPSILON",
    "Comparison",
    "GateRefusal",
    "PromoteResult",
    "compare_models",
    "population_stability_index",
    "promote_version",
    "psi_level",
]

#: Share put in place of an empty bin, so that ``ln(q / p)`` stays finite.
PSI_EPSILON = 1e-4

#: Score columns whose drift is measured (besides every input feature).
SCORE_DRIFT_COLUMNS = ("clv", "churn_probability")


class GateRefusal(TrackingError):
    """A version may not be promoted: a gate failed, or it has no gate results."""


# ------------------------------------------------------------------------- drift
def population_stability_index(
    reference, current, *, n_bins: int = 10, epsilon: float = PSI_EPSILON
) -> float:
    """Population stability index of ``current`` against ``reference``.

    ``PSI = sum_i (q_i - p_i) * ln(q_i / p_i)``, where ``p_i`` and ``q_i`` are the
    shares of the reference and the current values in bin ``i``. The bins are cut at
    the ``n_bins``-quantiles of the reference (deciles by default; equal edges, as
    ties in counts give, merge into one bin), closed on the right, the outer ones
    open; missing values form one more bin. An empty bin's share is replaced by
    ``epsilon``. Rule of thumb (Siddiqi, *Credit Risk Scorecards*, 2006): below 0.1
    stable, 0.1 to 0.25 a moderate shift, 0.25 and above a significant shift.

    Parameters
    ----------
    reference, current : array-like of float
        The values at training (which define the bins) and today.
    n_bins : int, default 10
    epsilon : float, default 1e-4

    Returns
    -------
    float
        0 for identical distributions; larger for more drift.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.arange(1000.0)
    >>> population_stability_index(ref, ref)
    0.0
    >>> round(population_stability_index(ref, ref + 100), 4)
    0.7594
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise ValueError(f"n_bins must be a whole number >= 2, got {n_bins!r}.")
    ref = np.asarray(reference, dtype="float64").ravel()
    cur = np.asarray(current, dtype="float64").ravel()
    if len(ref) == 0 or len(cur) == 0:
        raise ValueError(
            f"PSI needs values on both sides; got {len(ref)} reference and {len(cur)} current."
        )
    ref_known = ref[~np.isnan(ref)]
    if len(ref_known):
        edges = np.unique(np.quantile(ref_known, np.arange(1, n_bins) / n_bins))
    else:
        edges = np.array([])
    n_slots = len(edges) + 2  # the value bins, then one for missing values

    def shares(values: np.ndarray) -> np.ndarray:
        slot = np.where(np.isnan(values), n_slots - 1, np.searchsorted(edges, values, side="left"))
        counts = np.bincount(slot, minlength=n_slots).astype("float64")
        return counts / len(values)

    p, q = shares(ref), shares(cur)
    keep = (p > 0) | (q > 0)  # a bin empty on both sides adds nothing
    p, q = np.where(p > 0, p, epsilon)[keep], np.where(q > 0, q, epsilon)[keep]
    return float(np.sum((q - p) * np.log(q / p)))


def psi_level(psi: float) -> str:
    """``"stable"`` (< 0.1), ``"moderate"`` (< 0.25) or ``"significant"`` (Siddiqi 2006).

    Examples
    --------
    >>> [psi_level(x) for x in (0.02, 0.1, 0.3)]
    ['stable', 'moderate', 'significant']
    """
    return "stable" if psi < 0.1 else "moderate" if psi < 0.25 else "significant"


def _drift_table(
    reference_features: pd.DataFrame,
    current_features: pd.DataFrame,
    reference_scores: pd.DataFrame,
    current_scores: dict[str, pd.DataFrame],
    feature_columns: list[str],
) -> pd.DataFrame:
    rows = []
    for column in feature_columns:
        psi = population_stability_index(reference_features[column], current_features[column])
        rows.append({"variable": column, "kind": "feature", "model": "", "psi": psi})
    for model, scores in current_scores.items():
        for column in SCORE_DRIFT_COLUMNS:
            psi = population_stability_index(reference_scores[column], scores[column])
            rows.append({"variable": column, "kind": "score", "model": model, "psi": psi})
    table = pd.DataFrame(rows, columns=["variable", "kind", "model", "psi"])
    table["level"] = [psi_level(x) for x in table["psi"]]
    return table


# ------------------------------------------------------------------------ models
def _default_tracking_uri() -> str:
    from segml.tracking._store import DEFAULT_TRACKING_URI

    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _metric_key(text: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . /`` and spaces."""
    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", text)


@dataclass
class Comparison:
    """What :func:`compare_models` found.

    Attributes
    ----------
    candidate, champion : dict
        ``uri``, ``name``, ``version``, ``run_id``, ``as_of`` (training date) of each.
    as_of : str
        The scoring date both models scored at.
    n_customers : int
        Customers scored (the same for both).
    metrics : pandas.DataFrame
        Index: the key metrics of :data:`segml.tracking.KEY_METRICS` found in either
        run; columns ``champion``, ``candidate``, ``delta`` (candidate - champion).
    migration : dict of str to pandas.DataFrame
        ``tier`` and ``segment_name`` counts (rows: the champion's labels, columns:
        the candidate's) and ``tier_shares`` / ``segment_name_shares`` (of all
        customers).
    moved_share : dict of str to float
        Share of customers whose ``tier`` / ``segment_name`` differs between the two.
    drift : pandas.DataFrame
        ``variable``, ``kind`` (feature / score), ``model``, ``psi``, ``level``: each
        input feature at the champion's training ``as_of`` against today, and the
        ``clv`` and ``churn_probability`` scores of the champion at its training
        ``as_of`` against each model's scores today.
    gates : pandas.DataFrame
        The candidate's gates (:data:`segml.tracking._gates.GATE_COLUMNS`).
    gates_source : str
        ``"run"`` (as its training run logged them) or ``"evaluated"`` (computed now
        from the loaded model, for a run that logged none).
    passed : bool
        Every gate of the candidate passed.
    verdict : str
        One line: may the candidate replace the champion, and the drift found.
    """

    candidate: dict[str, str]
    champion: dict[str, str]
    as_of: str
    n_customers: int
    metrics: pd.DataFrame
    migration: dict[str, pd.DataFrame]
    moved_share: dict[str, float]
    drift: pd.DataFrame
    gates: pd.DataFrame
    gates_source: str
    passed: bool
    verdict: str
    logged_to: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (what ``comparison/summary.json`` holds)."""

        def number(x):
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        return {
            "candidate": self.candidate,
            "champion": self.champion,
            "as_of": self.as_of,
            "n_customers": self.n_customers,
            "metrics": {
                name: {k: number(v) for k, v in row.items()}
                for name, row in self.metrics.to_dict("index").items()
            },
            "moved_share": self.moved_share,
            "psi": [{**row, "psi": number(row["psi"])} for row in self.drift.to_dict("records")],
            "gates": [
                {**row, "value": number(row["value"]), "bound": number(row["bound"])}
                for row in self.gates.to_dict("records")
            ],
            "gates_source": self.gates_source,
            "passed": self.passed,
            "verdict": self.verdict,
            "notes": self.notes,
        }

    def metrics_to_log(self) -> dict[str, float]:
        """The ``compare.*`` metrics logged to the candidate's run."""
        out: dict[str, float] = {}
        for name, delta in self.metrics["delta"].items():
            if pd.notna(delta):
                out[_metric_key(f"compare.delta.{name}")] = float(delta)
        for column, share in self.moved_share.items():
            out[f"compare.moved_share.{column}"] = float(share)
        for row in self.drift.itertuples(index=False):
            suffix = f".{row.model}" if row.model else ""
            out[_metric_key(f"compare.psi.{row.variable}{suffix}")] = float(row.psi)
        out["compare.psi.max_feature"] = float(
            self.drift.loc[self.drift["kind"] == "feature", "psi"].max()
        )
        out["compare.gates_passed"] = 1.0 if self.passed else 0.0
        out["compare.n_customers"] = float(self.n_customers)
        return out


def _model_version(client, uri: str, shown_uri: str) -> tuple[str, str, Any]:
    """(name, version, ModelVersion) of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.

    Resolved as batch scoring resolves it, so a wrong name, alias or version gets the
    same message, listing those that exist.
    """
    from segml.tracking._load import _resolve_registered

    if not uri.startswith("models:/"):
        raise TrackingError(
            f"{uri!r} is not a registry URI: compare needs models:/NAME@ALIAS or "
            "models:/NAME/VERSION (their training runs hold the metrics and gates)."
        )
    name, number, _ = _resolve_registered(client, uri, shown_uri)
    return name, number, client.get_model_version(name, number)


def _run_gates(run, scorer, clean: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The gates the run logged, else those of the loaded scorer evaluated now."""
    gates = gates_from_metrics(run.data.metrics, run.data.tags)
    if len(gates):
        return gates, "run"
    settings = settings_from_params(run.data.params)
    known = clean.loc[clean["timestamp"] < pd.Timestamp(scorer.as_of_) + pd.Timedelta(days=1)]
    return evaluate_gates(scorer, known, settings=settings), "evaluated"


def _verdict(gates: pd.DataFrame, drift: pd.DataFrame) -> tuple[bool, str]:
    passed = bool(len(gates)) and bool(gates["passed"].all())
    if passed:
        text = "the candidate passed every gate and may replace the champion"
    else:
        failed = gates.loc[~gates["passed"], "gate"].tolist()
        text = f"keep the champion: the candidate failed the gate(s) {', '.join(failed)}"
    shifted = drift.loc[(drift["kind"] == "feature") & (drift["level"] == "significant")]
    if len(shifted):
        text += "; significant drift (PSI >= 0.25) since the champion's training in " + ", ".join(
            f"{v} ({p:.2f})" for v, p in zip(shifted["variable"], shifted["psi"], strict=True)
        )
    return passed, text


def _label_order(column: str, before: pd.DataFrame, after: pd.DataFrame, loaded) -> list[str]:
    """Best first: the scorecards' tier order; segments by id (0 = most valuable)."""
    if column == "tier":
        labels = [
            str(label)
            for role in ("champion", "candidate")
            for label in getattr(loaded[role].scorer.scorecard_, "tier_labels_", [])
        ]
    else:
        pairs = pd.concat([before[["segment", column]], after[["segment", column]]])
        labels = pairs.sort_values("segment", kind="stable")[column].astype(str).tolist()
    seen = set(before[column].astype(str)) | set(after[column].astype(str))
    ordered = list(dict.fromkeys(label for label in labels if label in seen))
    return ordered + sorted(seen - set(ordered))


def compare_models(
    candidate: str,
    champion: str,
    transactions,
    *,
    as_of,
    tracking_uri: str | None = None,
    log: bool = True,
) -> Comparison:
    """Score the same customers with a candidate and a champion model and compare them.

    Parameters
    ----------
    candidate, champion : str
        ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` (e.g.
        ``models:/segml-cdnow@candidate``, ``models:/segml-cdnow@champion``).
    transactions : path, dataset name or pandas.DataFrame
        The log to score (cleaned as the champion's training log was). It must
        reach back to the champion's training ``as_of``: the champion's training
        population is rebuilt from it.
    as_of : date-like
        Scoring date.
    tracking_uri : str, optional
        Registry (default ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    log : bool, default True
        Log the comparison to the candidate's run: artifacts ``comparison/``
        (``summary.json``, ``metrics.csv``, ``psi.csv``, ``gates.csv``,
        ``migration_tier.csv``, ``migration_segment_name.csv``) and ``compare.*``
        metrics.

    Returns
    -------
    Comparison

    Raises
    ------
    TrackingError
        A URI that is not in the registry, or a store that cannot be read.
    segml.batch.ScoreError
        A log that does not reach back to the champion's training date (or that
        cannot be scored).

    Notes
    -----
    The champion's training data is rebuilt as the features of the given log at the
    champion's training ``as_of`` (the same customers and definitions the champion
    was fitted on when the log is the one it was trained on, extended since). The
    score PSI compares the champion's scores of that population with each model's
    scores today.
    """
    from segml.batch import ScoreError, score_transactions
    from segml.batch._cleaning import scoring_options
    from segml.batch._score import _load
    from segml.scoring import customer_features, migration_matrix
    from segml.tracking._compare import KEY_METRICS
    from segml.tracking._load import load_scoring_model
    from segml.tracking._model import cast_to_signature

    uri = tracking_uri or _default_tracking_uri()
    require_existing_store(uri)
    shown = redact_uri(uri)
    with mlflow_session(uri) as mlflow_uri:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=mlflow_uri)
        try:
            described = {}
            runs = {}
            for role, model_uri in (("candidate", candidate), ("champion", champion)):
                name, version, mv = _model_version(client, model_uri, shown)
                run = client.get_run(mv.run_id)
                runs[role] = run
                described[role] = {
                    "uri": model_uri,
                    "name": name,
                    "version": version,
                    "run_id": mv.run_id,
                    "as_of": run.data.tags.get("as_of", ""),
                }
        except MlflowException as exc:
            raise TrackingError(
                f"Cannot read the models at {shown}: {redact_text(exc.message, uri)}"
            ) from None
    loaded = {
        role: load_scoring_model(described[role]["uri"], tracking_uri=uri)
        for role in ("candidate", "champion")
    }
    day = pd.Timestamp(as_of).normalize()
    champion_scorer = loaded["champion"].scorer
    champion_as_of = pd.Timestamp(described["champion"]["as_of"] or champion_scorer.as_of_)
    options, _ = scoring_options(champion_scorer.cleaning, None)
    clean, _ = _load(transactions, options)
    first = clean["timestamp"].min().normalize()
    if champion_as_of < first:
        raise ScoreError(
            f"The log starts {first.date()}, after the champion's training date "
            f"{champion_as_of.date()}: its training population cannot be rebuilt. Pass the "
            "log from before that date (the full history, not only the latest month)."
        )
    scored = {
        role: score_transactions(
            described[role]["uri"], transactions, as_of=as_of, tracking_uri=uri
        )
        for role in ("candidate", "champion")
    }
    windows = champion_scorer.windows_days
    columns = list(champion_scorer.feature_columns_)
    reference = customer_features(clean, as_of=champion_as_of, windows_days=windows)
    today = customer_features(clean, as_of=day, windows_days=windows)
    reference_scores = champion_scorer.predict(cast_to_signature(reference, columns))
    drift = _drift_table(
        reference,
        today,
        reference_scores,
        {role: scored[role].scores for role in ("champion", "candidate")},
        [c for c in columns if c in today.columns],
    )

    metrics = pd.DataFrame(
        {
            role: pd.Series(
                {k: runs[role].data.metrics.get(k, np.nan) for k in KEY_METRICS}, dtype="float64"
            )
            for role in ("champion", "candidate")
        }
    )
    metrics["delta"] = metrics["candidate"] - metrics["champion"]
    metrics = metrics.dropna(how="all", subset=["champion", "candidate"])

    before = scored["champion"].scores.set_index("customer_id")
    after = scored["candidate"].scores.set_index("customer_id")
    migration: dict[str, pd.DataFrame] = {}
    moved: dict[str, float] = {}
    for column in ("tier", "segment_name"):
        b, a = before[column].astype(str), after[column].astype(str)
        order = _label_order(column, before, after, loaded)
        migration[column] = migration_matrix(b, a, column=column, order=order)
        migration[f"{column}_shares"] = migration_matrix(
            b, a, column=column, normalize="all", order=order
        )
        common = b.index.intersection(a.index)
        moved[column] = float((b.loc[common] != a.loc[common]).mean()) if len(common) else 0.0

    gates, source = _run_gates(runs["candidate"], loaded["candidate"].scorer, clean)
    passed, verdict = _verdict(gates, drift)
    notes = []
    if source == "evaluated":
        notes.append(
            f"the candidate's run {described['candidate']['run_id']} logged no gate results; "
            "its gates were evaluated now from the registered model"
        )
    comparison = Comparison(
        candidate=described["candidate"],
        champion=described["champion"],
        as_of=day.date().isoformat(),
        n_customers=int(len(after)),
        metrics=metrics,
        migration=migration,
        moved_share=moved,
        drift=drift,
        gates=gates[list(GATE_COLUMNS)],
        gates_source=source,
        passed=passed,
        verdict=verdict,
        notes=notes,
    )
    if log:
        from segml.reports._html import build_tier_report

        # The candidate's tier report on today's customers, with the migration from
        # the champion: logged beside the comparison (the run's own report.html stays
        # the one of its training data).
        candidate = loaded["candidate"].scorer
        report_html = build_tier_report(
            candidate,
            features=customer_features(clean, as_of=day, windows_days=candidate.windows_days),
            run_id=described["candidate"]["run_id"],
            model_name=described["candidate"]["name"],
            as_of=day.date().isoformat(),
            gates=comparison.gates,
            migration={"tier": migration["tier"], "segment": migration["segment_name"]},
            title="Customer tier report: candidate against champion",
        )
        _log_comparison(comparison, uri, report_html=report_html)
    return comparison


def _log_comparison(comparison: Comparison, uri: str, *, report_html: str | None = None) -> None:
    """Artifacts ``comparison/`` and ``compare.*`` metrics on the candidate's run."""
    run_id = comparison.candidate["run_id"]
    with mlflow_session(uri) as mlflow_uri:
        from mlflow import MlflowClient
        from mlflow.entities import Metric, RunTag
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=mlflow_uri)
        try:
            with tempfile.TemporaryDirectory() as folder:
                folder = Path(folder)
                (folder / "summary.json").write_text(
                    json.dumps(comparison.to_dict(), indent=2, sort_keys=False)
                )
                comparison.metrics.to_csv(folder / "metrics.csv", index_label="metric")
                comparison.drift.to_csv(folder / "psi.csv", index=False)
                comparison.gates.to_csv(folder / "gates.csv", index=False)
                if report_html is not None:
                    (folder / "report.html").write_text(report_html, encoding="utf-8")
                for column in ("tier", "segment_name"):
                    comparison.migration[column].to_csv(folder / f"migration_{column}.csv")
                client.log_artifacts(run_id, str(folder), "comparison")
            now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
            champion = comparison.champion
            client.log_batch(
                run_id,
                metrics=[
                    Metric(key, value, now, 0) for key, value in comparison.metrics_to_log().items()
                ],
                tags=[
                    RunTag("compare.champion", f"{champion['name']}/{champion['version']}"),
                    RunTag("compare.as_of", comparison.as_of),
                    RunTag("compare.verdict", comparison.verdict[:5000]),
                ],
            )
        except MlflowException as exc:
            raise TrackingError(
                f"Cannot log the comparison to run {run_id} at {redact_uri(uri)}: "
                f"{redact_text(exc.message, uri)}"
            ) from None
    comparison.logged_to = run_id


# ----------------------------------------------------------------------- promote
@dataclass
class PromoteResult:
    """What :func:`promote_version` did.

    Attributes
    ----------
    name, version : str
        The registered model and the version now ``champion``.
    previous : str or None
        The version that was ``champion`` before (None: there was none).
    gates : pandas.DataFrame
        The version's gate results, as its run logged them (empty: none logged).
    overridden : list of str
        Why ``allow_failed_gates`` was needed (failed gate lines, or that there were
        no gate results); empty when the gates passed.
    """

    name: str
    version: str
    previous: str | None
    gates: pd.DataFrame
    overridden: list[str]


def promote_version(
    name: str,
    version: str | int,
    *,
    tracking_uri: str | None = None,
    allow_failed_gates: bool = False,
) -> PromoteResult:
    """Move the ``champion`` alias of ``name`` to ``version`` if its run passed its gates.

    Parameters
    ----------
    name : str
        Registered model name.
    version : str or int
        The version to promote.
    tracking_uri : str, optional
        Registry (default ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    allow_failed_gates : bool, default False
        Promote a version that failed a gate or has no gate results; the version is
        then tagged ``promote.allow_failed_gates=true`` and ``promote.override_reason``.

    Returns
    -------
    PromoteResult

    Raises
    ------
    GateRefusal
        A gate failed (the message names it, its value and bound), or the version's
        run logged no gate results; nothing was changed.
    TrackingError
        No such model or version (the versions that exist are listed), or a store
        that cannot be read.
    """
    uri = tracking_uri or _default_tracking_uri()
    require_existing_store(uri)
    shown = redact_uri(uri)
    version = str(version)
    with mlflow_session(uri) as mlflow_uri:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=mlflow_uri)
        try:
            try:
                model = client.get_registered_model(name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                names = sorted(m.name for m in client.search_registered_models())
                raise TrackingError(
                    f"No registered model named {name!r} at {shown}; registered: {names}."
                ) from None
            try:
                model_version = client.get_model_version(name, version)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                existing = sorted(
                    (int(v.version) for v in client.search_model_versions(f"name='{name}'")),
                )
                raise TrackingError(
                    f"{name!r} has no version {version}; its versions are {existing}."
                ) from None
            run = client.get_run(model_version.run_id)
            gates = gates_from_metrics(run.data.metrics, run.data.tags)
            overridden: list[str] = []
            if not len(gates):
                reason = (
                    f"version {version} of {name!r} has no gate results: its run "
                    f"{model_version.run_id} logged no gate.* metrics (trained before gates "
                    "were evaluated)"
                )
                if not allow_failed_gates:
                    raise GateRefusal(
                        f"{reason}; check it with segml compare, retrain it, or pass "
                        "--allow-failed-gates to promote it anyway."
                    )
                overridden.append(reason)
            failed = failed_gate_lines(gates)
            if failed and not allow_failed_gates:
                raise GateRefusal(
                    f"version {version} of {name!r} stays out of champion: "
                    + "; ".join(failed)
                    + " (--allow-failed-gates overrides)."
                )
            overridden.extend(failed)
            previous = model.aliases.get("champion")
            if overridden:
                client.set_model_version_tag(name, version, "promote.allow_failed_gates", "true")
                client.set_model_version_tag(
                    name, version, "promote.override_reason", "; ".join(overridden)[:5000]
                )
            client.set_registered_model_alias(name, "champion", version)
        except MlflowException as exc:
            raise TrackingError(
                f"Cannot promote {name!r} version {version} at {shown}: "
                f"{redact_text(exc.message, uri)}"
            ) from None
    return PromoteResult(
        name=name,
        version=version,
        previous=str(previous) if previous is not None else None,
        gates=gates,
        overridden=overridden,
    )
