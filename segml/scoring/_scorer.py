"""The customer scorer: every fitted model behind one ``predict``, saved as data.

:class:`CustomerScorer` is what a training run produces and a batch job applies. It
holds a fitted :class:`~segml.models.CLVModel`, :class:`~segml.models.SegmentModel`,
:class:`~segml.models.TierScorecard` and :class:`~segml.models.ChurnModel`, the
segment map, and the settings that turn transactions into its input features, so
that training and scoring build features with the same code.

Data flow of :meth:`CustomerScorer.predict` (one row per customer)::

    features (customer_features: RFM in days, behaviour, repurchase rate)
      -> CLV: expected_purchases (over horizon_months), p_alive, clv
      -> churn: churn_probability from features + P(alive) and expected purchases
         over churn_horizon_days; risk_band from the churn model's thresholds
      -> segment (k-means, ordered by value) and segment_name
      -> tier (scorecard)
      -> action: the one action of the customer's tier (or segment) at their risk
         band, from the actions config's by_risk table, and action_reason
         ("tier VIP, risk high"): a VIP at high risk keeps a VIP's treatment

Customers with no repeat purchase get P(alive) = 1 under BG/NBD (Fader, Hardie & Lee
2005): that is a property of the model, not a sign of loyalty; their churn risk
comes from the churn model, which sees that they have one purchase only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from segml.features import calibration_holdout
from segml.features._churn import churn_features, churn_labels
from segml.models._churn_baseline import BaselineChurnModel
from segml.models._churn_evaluation import churn_baselines, evaluate_churn
from segml.models._clv_metrics import holdout_metrics
from segml.models.churn import RISK_BANDS, ChurnModel
from segml.models.clv import CLVModel
from segml.models.scorecard import TierScorecard, repurchase_rate
from segml.models.segments import SegmentModel
from segml.persistence import (
    PersistenceError,
    check_document,
    read_json,
    versions,
    write_json,
)
from segml.scoring._segment_map import (
    DEFAULT_ACTIONS,
    SegmentMap,
    SegmentMapError,
    action_reason,
    build_segment_map,
    check_actions,
    risk_actions,
)

__all__ = [
    "OUTPUT_COLUMNS",
    "STRING_OUTPUT_COLUMNS",
    "CustomerScorer",
    "ScorerError",
    "customer_features",
]

#: The columns of :meth:`CustomerScorer.predict`, in order.
OUTPUT_COLUMNS = (
    "clv",
    "p_alive",
    "expected_purchases",
    "segment",
    "segment_name",
    "tier",
    "churn_probability",
    "risk_band",
    "action",
    "action_reason",
)
#: The text columns of :data:`OUTPUT_COLUMNS` (``segment`` is an integer, the rest float).
STRING_OUTPUT_COLUMNS = ("segment_name", "tier", "risk_band", "action", "action_reason")
_DAYS_PER_UNIT = {"D": 1, "W": 7}
_FORMAT = "segml.CustomerScorer"
# Version 2 added settings.cleaning (how the training log was cleaned). Version 1 files
# still load, with cleaning None; a segml that reads only version 1 refuses version 2
# rather than scoring without the cleaning.
_FORMAT_VERSION = 2
#: ``format_version`` values of ``scorer.json`` this segml reads.
SCORER_FORMAT_VERSIONS = (1, 2)


class ScorerError(ValueError):
    """Inputs or settings the scorer cannot use; the message says which and how to fix it."""


def customer_features(
    transactions: pd.DataFrame, *, as_of, windows_days: Sequence[int] = (90,)
) -> pd.DataFrame:
    """Every input feature of the scorer, per customer known at ``as_of``.

    The churn features of :func:`segml.features.churn_features` (RFM in days,
    purchase gaps, recent-window trends, quantities when present) plus the
    ``repurchase_rate`` that the tier scorecard grades. All float64, no NaN; only
    transactions up to ``as_of`` are read.

    Examples
    --------
    >>> from segml.datasets import load_cdnow
    >>> from segml.scoring._scorer import customer_features
    >>> features = customer_features(load_cdnow(sample=True), as_of="1997-09-30")
    >>> features.shape[0], features.loc["0001", ["frequency", "n_orders"]].tolist()
    (2357, [2.0, 3.0])
    """
    features = churn_features(transactions, as_of=as_of, windows_days=windows_days)
    rate = repurchase_rate(transactions, as_of=as_of).reindex(features.index)
    return features.assign(repurchase_rate=rate.to_numpy(dtype="float64"))


class CustomerScorer:
    """Fit CLV, segments, tiers and churn on one log; score any customer in one call.

    Parameters
    ----------
    clv : CLVModel, optional
        Unfitted CLV model (its ``time_unit`` must be ``"D"`` or ``"W"``: weeks are
        days / 7, the unit of the published CDNOW estimates). Default ``CLVModel()``.
    segments : SegmentModel, optional
        Unfitted segment model; default ``SegmentModel()``.
    scorecard : TierScorecard, optional
        Tier rules; default :meth:`TierScorecard.default` (the practice table's shape,
        edges at quantiles of the training customers, learnt at ``fit``).
    churn : ChurnModel, optional
        Unfitted churn classifier; default ``ChurnModel(random_state=0)``.
    actions : mapping, optional
        Actions config for the segment map (see ``configs/actions.yaml``).
    churn_horizon_days : int, default 90
        A customer churned if they make no purchase in the ``churn_horizon_days``
        after a cutoff. The churn model is evaluated on a time split (trained at
        ``as_of - 2 * horizon``, tested at ``as_of - horizon``) and the deployed
        model is trained at ``as_of - horizon`` with labels up to ``as_of``.
    clv_holdout_days : int, default 180
        The CLV model is evaluated by fitting on the log up to
        ``as_of - clv_holdout_days`` and predicting the holdout.
    windows_days : sequence of int, default (90,)
        Recent windows of the trend features.
    cleaning : dict, optional
        How the training log was cleaned: the resolved settings of
        :func:`segml.load_transactions` (column mapping, ``decimal``, ``currency``,
        ``dayfirst``, ``returns``, ``zero_amounts``, ``drop_duplicates``, ``timezone``,
        ...), as ``DataQualityReport.settings`` records them. Not used by :meth:`fit`
        or :meth:`predict`; saved with the model so that batch scoring
        (:func:`segml.batch.score_transactions`, ``segml score``) cleans a log the
        way training did. JSON values only.
    churn_fallback : bool, default True
        When the churn classifier ranks the time-split test worse than the best
        free baseline (ROC AUC), deploy that baseline instead, calibrated by Platt
        scaling (:class:`~segml.models._churn_baseline.BaselineChurnModel`): a model
        that loses to ``-expected_purchases`` should not score customers.
        ``churn_source_`` says which was deployed and why.

    Attributes
    ----------
    clv_, segments_, scorecard_, churn_ : fitted models
        ``churn_`` is a :class:`~segml.models.churn.ChurnModel`, or the calibrated
        baseline when the classifier lost to it (``churn_fallback``).
    churn_source_ : str
        ``"churn classifier"``, or the calibrated baseline with both ROC AUCs.
    segment_map_ : SegmentMap
        Names, definitions, sizes, profiles and actions of segments and tiers.
    evaluation_ : dict
        ``clv_holdout`` (holdout errors), ``churn`` (metrics of the model and the
        baselines on the later cutoff, a DataFrame), ``cutoffs`` (dates used).
    feature_columns_ : list of str
        Input columns of :meth:`predict`, in order.
    as_of_ : str
        Date the scorer was trained at.
    timings_ : dict of str to float
        Seconds taken by each step of :meth:`fit`.

    Examples
    --------
    >>> from segml.datasets import load_cdnow
    >>> from segml.models.clv import CLVModel
    >>> from segml.models.segments import SegmentModel
    >>> from segml.scoring._scorer import CustomerScorer
    >>> log = load_cdnow(sample=True)
    >>> scorer = CustomerScorer(clv=CLVModel(time_unit="W"),
    ...                         segments=SegmentModel(n_segments=4)).fit(log, as_of="1998-06-30")
    >>> scores = scorer.score(log, as_of="1998-06-30")
    >>> list(scores.columns) == list(OUTPUT_COLUMNS)
    True
    >>> int(scores["segment"].nunique())
    4
    """

    def __init__(
        self,
        *,
        clv: CLVModel | None = None,
        segments: SegmentModel | None = None,
        scorecard: TierScorecard | None = None,
        churn: ChurnModel | None = None,
        actions: dict[str, Any] | None = None,
        churn_horizon_days: int = 90,
        clv_holdout_days: int = 180,
        windows_days: Sequence[int] = (90,),
        cleaning: dict[str, Any] | None = None,
        churn_fallback: bool = True,
    ):
        self.clv = clv
        self.segments = segments
        self.scorecard = scorecard
        self.churn = churn
        self.actions = actions
        self.churn_horizon_days = churn_horizon_days
        self.clv_holdout_days = clv_holdout_days
        self.windows_days = windows_days
        self.cleaning = cleaning
        self.churn_fallback = churn_fallback

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        transactions: pd.DataFrame,
        *,
        as_of,
        on_step: Callable[[str, float], None] | None = None,
        diagnostics: bool = False,
    ) -> CustomerScorer:
        """Fit every model on the log up to ``as_of`` and evaluate them on time splits.

        Parameters
        ----------
        transactions : pandas.DataFrame
            Clean transactions (:func:`segml.load_transactions`).
        as_of : date-like
            Training date; nothing after it is read.
        on_step : callable, optional
            Called as ``on_step(step_name, seconds)`` after each step (progress display).
        diagnostics : bool, default False
            Keep what the evaluation figures need in ``diagnostics_`` (the
            calibration/holdout split, the calibration-period CLV model, the churn
            test labels and scores, and the features at ``as_of``). This is derived
            from the training data: it is never saved, and a training run drops it
            once the figures are drawn.

        Returns
        -------
        self
        """
        as_of = pd.Timestamp(as_of).normalize()
        horizon = pd.Timedelta(days=int(self.churn_horizon_days))
        self._check_settings()
        first_day = transactions["timestamp"].min().normalize()
        earliest_cutoff = as_of - 2 * horizon
        if earliest_cutoff <= first_day:
            raise ScorerError(
                f"churn_horizon_days={self.churn_horizon_days} needs two horizons of history "
                f"before as_of={as_of.date()} (a first cutoff at {earliest_cutoff.date()}), "
                f"but the log starts {first_day.date()}. Use a later as_of or a shorter horizon."
            )
        clv_template = self.clv if self.clv is not None else CLVModel()
        unit = clv_template.time_unit
        self.timings_: dict[str, float] = {}
        if diagnostics:
            self.diagnostics_: dict[str, Any] = {}

        def timed(name, function, *args, **kwargs):
            started = time.perf_counter()
            result = function(*args, **kwargs)
            self.timings_[name] = time.perf_counter() - started
            if on_step is not None:
                on_step(name, self.timings_[name])
            return result

        features = timed(
            "features", customer_features, transactions, as_of=as_of, windows_days=self.windows_days
        )

        def fit_clv_and_evaluate():
            nonlocal clv_template
            calibration_end = as_of - pd.Timedelta(days=int(self.clv_holdout_days))
            split = calibration_holdout(
                transactions,
                calibration_end=calibration_end,
                observation_end=as_of,
                unit_multiplier=_DAYS_PER_UNIT[unit],
            )
            cal = split[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]]
            cal = cal.set_axis(["frequency", "recency", "T", "monetary_value"], axis=1)
            # purchase_model="auto" is resolved once, on this calibration/holdout split
            # (the split is ignored otherwise); every other CLV fit of the run (the
            # calibration model, the churn cutoffs) then uses the model it chose.
            deployed = clone(clv_template).fit(self._clv_rfm(features, unit), cal_holdout=split)
            clv_template = clone(clv_template).set_params(purchase_model=deployed.purchase_model_)
            clv_calibration = clone(clv_template).fit(cal)
            holdout = holdout_metrics(clv_calibration, split)
            if diagnostics:
                self.diagnostics_.update(cal_holdout=split, clv_calibration=clv_calibration)
            return deployed, holdout

        self.clv_, clv_holdout = timed("CLV fit and holdout evaluation", fit_clv_and_evaluate)

        def fit_churn_and_evaluate():
            tables = {}
            for name, cutoff in (("train", as_of - 2 * horizon), ("test", as_of - horizon)):
                past = customer_features(transactions, as_of=cutoff, windows_days=self.windows_days)
                clv_at_cutoff = clone(clv_template).fit(self._clv_rfm(past, unit))
                X = self._churn_inputs(past, clv_at_cutoff, unit)
                y = churn_labels(transactions, as_of=cutoff, horizon_days=self.churn_horizon_days)
                tables[name] = (X, y.reindex(X.index))
            template = self.churn if self.churn is not None else ChurnModel(random_state=0)
            X_train, y_train = tables["train"]
            X_test, y_test = tables["test"]
            evaluated = clone(template).fit(X_train, y_train)
            scores = {"model": evaluated.churn_probability(X_test), **churn_baselines(X_test)}
            metrics = evaluate_churn(y_test, scores)
            if diagnostics:
                self.diagnostics_.update(churn_labels=y_test, churn_scores=scores)
            baselines = metrics.drop(index="model")["roc_auc"]
            if self.churn_fallback and metrics.loc["model", "roc_auc"] < baselines.max():
                # The classifier ranks worse than a free baseline: deploy the baseline,
                # calibrated to a probability on the same (latest) cutoff.
                best = str(baselines.idxmax())
                deployed = BaselineChurnModel(
                    baseline=best,
                    high_risk_threshold=template.high_risk_threshold,
                    medium_risk_threshold=template.medium_risk_threshold,
                ).fit(X_test, y_test)
                self.churn_source_ = (
                    f"calibrated baseline {best!r}: the churn classifier's time-split ROC AUC "
                    f"{metrics.loc['model', 'roc_auc']:.4f} is below the baseline's "
                    f"{baselines.max():.4f} (by "
                    f"{baselines.max() - metrics.loc['model', 'roc_auc']:.2g}), so the "
                    "baseline scores churn"
                )
            else:
                deployed = clone(template).fit(X_test, y_test)
                self.churn_source_ = "churn classifier"
            return deployed, metrics

        self.churn_, churn_metrics = timed(
            "churn fit and time-split evaluation", fit_churn_and_evaluate
        )

        clv_outputs = self.clv_.predict(self._clv_rfm(features, unit))

        def fit_segments():
            table = features.assign(clv=clv_outputs["clv"].to_numpy())
            template = self.segments if self.segments is not None else SegmentModel()
            return clone(template).fit(table)

        self.segments_ = timed("segments", fit_segments)
        card = self.scorecard if self.scorecard is not None else TierScorecard.default()
        # Quantile band edges are learnt here, on the customers at as_of, and kept.
        self.scorecard_ = clone(card).fit(features)
        self.feature_columns_ = list(features.columns)
        self.as_of_ = as_of.date().isoformat()
        self.evaluation_ = {
            "clv_holdout": clv_holdout,
            "churn": churn_metrics,
            "cutoffs": {
                "clv_calibration_end": (as_of - pd.Timedelta(days=int(self.clv_holdout_days)))
                .date()
                .isoformat(),
                "churn_train": (as_of - 2 * horizon).date().isoformat(),
                "churn_test": (as_of - horizon).date().isoformat(),
                "as_of": self.as_of_,
            },
        }

        def map_segments():
            scored = self._predict_core(features)
            table = features.join(scored.drop(columns=["action", "action_reason"]))
            return build_segment_map(
                table,
                columns=["segment", "tier"],
                definitions={
                    "segment": self.segments_.definitions(),
                    "tier": self.scorecard_.definitions(),
                },
                actions=self.actions,
                metadata={"as_of": self.as_of_},
            )

        self.segment_map_ = timed("segment map", map_segments)
        if diagnostics:
            self.diagnostics_["features"] = features
        return self

    def _check_settings(self) -> None:
        unit = (self.clv if self.clv is not None else CLVModel()).time_unit
        if unit not in _DAYS_PER_UNIT:
            raise ScorerError(
                f"The scorer's CLV model must count time in 'D' (days) or 'W' (weeks as "
                f"days / 7), got time_unit={unit!r}."
            )
        if not (
            isinstance(self.churn_horizon_days, int | np.integer) and self.churn_horizon_days > 0
        ):
            raise ScorerError(
                f"churn_horizon_days must be a positive whole number of days, got "
                f"{self.churn_horizon_days!r}."
            )

    # ---------------------------------------------------------------- predicting
    @staticmethod
    def _clv_rfm(features: pd.DataFrame, unit: str) -> pd.DataFrame:
        """lifetimes' RFM columns in the CLV model's unit (features are in days)."""
        days = _DAYS_PER_UNIT[unit]
        return pd.DataFrame(
            {
                "frequency": features["frequency"],
                "recency": features["recency"] / days,
                "T": features["T"] / days,
                "monetary_value": features["monetary_value"],
            },
            index=features.index,
        )

    def clv_features(self, features: pd.DataFrame) -> pd.DataFrame:
        """lifetimes' RFM columns in the fitted CLV model's time unit, from scorer features.

        ``frequency``, ``recency``, ``T`` and ``monetary_value`` as the scorer's CLV model
        reads them (:func:`customer_features` holds them in days; a model in weeks gets
        days / 7): the input of ``scorer.clv_.predict`` and of the CLV charts.

        Examples
        --------
        >>> from segml.datasets import load_cdnow
        >>> from segml.models.clv import CLVModel
        >>> from segml.models.segments import SegmentModel
        >>> from segml.scoring import CustomerScorer, customer_features
        >>> log = load_cdnow(sample=True)
        >>> scorer = CustomerScorer(clv=CLVModel(time_unit="W"),
        ...                         segments=SegmentModel(n_segments=3))
        >>> scorer = scorer.fit(log, as_of="1998-06-30")
        >>> features = customer_features(log, as_of="1998-06-30")
        >>> rfm = scorer.clv_features(features)
        >>> list(rfm.columns), float(features.loc["0001", "T"] / rfm.loc["0001", "T"])
        (['frequency', 'recency', 'T', 'monetary_value'], 7.0)
        """
        self._check_fitted()
        return self._clv_rfm(self._check_features(features), self.clv_.time_unit)

    def _churn_inputs(
        self,
        features: pd.DataFrame,
        clv: CLVModel,
        unit: str,
        *,
        p_alive: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """The churn model's table: ``features`` plus the CLV model's outputs.

        ``p_alive`` (from the same ``clv``), when given, is used instead of computing
        it again.
        """
        rfm = self._clv_rfm(features, unit)
        horizon_units = self.churn_horizon_days / _DAYS_PER_UNIT[unit]
        return _one_float_block(
            features,
            {
                "expected_purchases": clv.expected_purchases(rfm, horizon=horizon_units).to_numpy(),
                "p_alive": clv.p_alive(rfm).to_numpy() if p_alive is None else p_alive,
            },
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "segment_map_") and not hasattr(self, "feature_columns_"):
            raise ScorerError("This CustomerScorer is not fitted: call fit() or load() first.")

    def _check_features(self, features: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(features, pd.DataFrame):
            raise ScorerError(f"features must be a DataFrame, got {type(features).__name__}.")
        missing = [c for c in self.feature_columns_ if c not in features.columns]
        if missing:
            raise ScorerError(
                f"features lack {len(missing)} column(s) the model needs: {missing}. Build "
                "them with segml.scoring.customer_features (the same windows_days as training)."
            )
        values = features[self.feature_columns_].astype("float64")
        bad = values.isna().sum()
        if bad.any():
            raise ScorerError(
                f"features have missing values: {bad[bad > 0].to_dict()} (column: rows); "
                "build them with segml.scoring.customer_features."
            )
        return values

    def _predict_core(self, features: pd.DataFrame) -> pd.DataFrame:
        unit = self.clv_.time_unit
        clv_out = self.clv_.predict(self._clv_rfm(features, unit))
        churn_in = self._churn_inputs(
            features, self.clv_, unit, p_alive=clv_out["p_alive"].to_numpy()
        )
        probability = self.churn_.churn_probability(churn_in).to_numpy()
        risk_codes = self.churn_.risk_band_codes(probability)
        segment = np.asarray(
            self.segments_.predict(features.assign(clv=clv_out["clv"].to_numpy()))
        ).astype("int64")
        tier = self.scorecard_.predict(features)
        tier_codes = tier.cat.codes.to_numpy()
        tier_labels = list(tier.cat.categories)
        # Every label column is taken from its few labels by integer code: building a
        # Python string per customer, looking labels up in pandas and converting to
        # Arrow strings made these columns and the output frame cost 0.98 s of CPU per
        # million customers (now 0.13 s). Actions and reasons likewise, coded
        # group * len(RISK_BANDS) + risk band.
        action_labels, reason_labels, group_codes = self._action_table(
            tier_labels, tier_codes, segment
        )
        action_codes = group_codes * len(RISK_BANDS) + risk_codes
        return pd.DataFrame(
            {
                "clv": clv_out["clv"].to_numpy(),
                "p_alive": clv_out["p_alive"].to_numpy(),
                "expected_purchases": clv_out["expected_purchases"].to_numpy(),
                "segment": segment,
                "segment_name": _segment_names(self.segments_.segment_names_, segment),
                "tier": _labels_at(tier_labels, tier_codes),
                "churn_probability": probability,
                "risk_band": _labels_at(RISK_BANDS, risk_codes),
                "action": _labels_at(action_labels, action_codes),
                "action_reason": _labels_at(reason_labels, action_codes),
            },
            index=features.index,
        )

    def _action_table(
        self, tier_labels: list[str], tier_codes: np.ndarray, segment: np.ndarray
    ) -> tuple[list[str], list[str], np.ndarray]:
        """Actions and reasons of every (group, risk band), and each customer's group code.

        The group is the tier or the segment, as the actions config's ``by_risk``
        column says; the actions come from :func:`segml.scoring._segment_map.risk_actions`,
        the same table the segment map shows.
        """
        try:
            checked = check_actions(DEFAULT_ACTIONS if self.actions is None else self.actions)
            column = checked["by_risk"]["column"]
            if column == "segment":
                definitions = self.segments_.definitions()
                ids = sorted(definitions, key=lambda s: definitions[s]["rank"])
                names = [definitions[s]["name"] for s in ids]
                table = risk_actions(self.actions, ids)
                order = np.argsort(ids)
                sorted_ids = np.asarray(ids, dtype="int64")[order]
                codes = order[np.searchsorted(sorted_ids, segment).clip(max=len(ids) - 1)]
                labels = ids
            else:
                table = risk_actions(self.actions, tier_labels)
                names = [None] * len(tier_labels)
                codes = tier_codes
                labels = tier_labels
        except SegmentMapError as exc:
            raise ScorerError(f"actions config: {exc}") from None
        actions, reasons = [], []
        for label, name in zip(labels, names, strict=True):
            for band in RISK_BANDS:
                actions.append(table[str(label)][band])
                reasons.append(action_reason(column, label, band, name))
        return actions, reasons, np.asarray(codes, dtype="int64")

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Score customers from their features (see :func:`customer_features`).

        Returns
        -------
        pandas.DataFrame
            Indexed like ``features``, columns :data:`OUTPUT_COLUMNS`.
        """
        self._check_fitted()
        return self._predict_core(self._check_features(features))

    def score(self, transactions: pd.DataFrame, *, as_of) -> pd.DataFrame:
        """Build features from transactions as of a date and :meth:`predict` them."""
        self._check_fitted()
        return self.predict(
            customer_features(transactions, as_of=as_of, windows_days=self.windows_days)
        )

    # --------------------------------------------------------------- persistence
    def save(self, folder: str | os.PathLike) -> Path:
        """Write the scorer as data: ``scorer.json`` and the churn model's skops folder."""
        self._check_fitted()
        cleaning = _cleaning_document(self.cleaning)  # refused before anything is written
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        baseline = isinstance(self.churn_, BaselineChurnModel)
        if not baseline:
            self.churn_.save(folder / "churn")
        churn_metrics = self.evaluation_["churn"]
        document = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "versions": versions(),
            "as_of": self.as_of_,
            "settings": {
                "churn_horizon_days": int(self.churn_horizon_days),
                "clv_holdout_days": int(self.clv_holdout_days),
                "windows_days": [int(w) for w in self.windows_days],
                "actions": self.actions,
                "cleaning": cleaning,
                "churn_fallback": bool(self.churn_fallback),
            },
            # The calibrated baseline is two numbers: kept here, no churn/ folder.
            **({"churn_baseline": self.churn_.to_dict()} if baseline else {}),
            "churn_source": getattr(self, "churn_source_", "churn classifier"),
            "feature_columns": self.feature_columns_,
            "clv": self.clv_.to_dict(),
            "segments": self.segments_.to_dict(),
            "scorecard": self.scorecard_.to_dict(),
            "segment_map": self.segment_map_.to_dict(),
            "evaluation": {
                "clv_holdout": self.evaluation_["clv_holdout"],
                "churn": _frame_to_json(churn_metrics),
                "cutoffs": self.evaluation_["cutoffs"],
            },
        }
        write_json(document, folder / "scorer.json")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> CustomerScorer:
        """Rebuild a scorer saved by :meth:`save`; predicts identically, no pickle.

        Raises
        ------
        segml.persistence.PersistenceError
            A missing, damaged or foreign file; the message names it and what is
            wrong (a missing key, a value of the wrong type, an untrusted type).
        """
        folder = Path(folder)
        source = folder / "scorer.json"
        document = read_json(source)
        try:
            return cls._from_document(document, folder)
        except PersistenceError as exc:
            if str(folder) in str(exc):  # names its file (this one, or the churn model's)
                raise
            # A model stored inside scorer.json (CLV, segments) does not know the file.
            raise PersistenceError(f"{source}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # Every other value read here comes from scorer.json: a hand-edited or
            # truncated document fails as that file, not as a traceback.
            what = f"the key {exc.args[0]!r} is missing" if isinstance(exc, KeyError) else exc
            raise PersistenceError(f"{source} is damaged: {what}.") from None

    @classmethod
    def _from_document(cls, document: Any, folder: Path) -> CustomerScorer:
        found = document.get("format_version") if isinstance(document, dict) else None
        readable = found if found in SCORER_FORMAT_VERSIONS else _FORMAT_VERSION
        check_document(document, _FORMAT, readable, source=folder / "scorer.json")
        settings = document["settings"]
        scorer = cls(
            cleaning=settings.get("cleaning"),  # absent from version 1
            actions=settings["actions"],
            churn_horizon_days=settings["churn_horizon_days"],
            clv_holdout_days=settings["clv_holdout_days"],
            windows_days=tuple(settings["windows_days"]),
            churn_fallback=bool(settings.get("churn_fallback", True)),
        )
        scorer.clv_ = CLVModel.from_dict(document["clv"])
        scorer.segments_ = SegmentModel.from_dict(document["segments"])
        # from_dict also reads the bare {criteria, tiers, currency} of older scorers.
        scorer.scorecard_ = TierScorecard.from_dict(document["scorecard"])
        if "churn_baseline" in document:
            scorer.churn_ = BaselineChurnModel.from_dict(document["churn_baseline"])
        else:
            scorer.churn_ = ChurnModel.load(folder / "churn")
        scorer.churn_source_ = str(document.get("churn_source", "churn classifier"))
        scorer.segment_map_ = SegmentMap.from_dict(document["segment_map"])
        scorer.feature_columns_ = list(document["feature_columns"])
        scorer.as_of_ = document["as_of"]
        evaluation = document["evaluation"]
        scorer.evaluation_ = {
            "clv_holdout": evaluation["clv_holdout"],
            "churn": pd.DataFrame(
                evaluation["churn"]["data"],
                index=evaluation["churn"]["index"],
                columns=evaluation["churn"]["columns"],
            ),
            "cutoffs": evaluation["cutoffs"],
        }
        return scorer


def _one_float_block(features: pd.DataFrame, extra: dict[str, np.ndarray]) -> pd.DataFrame:
    """``features.assign(**extra)``, stored as one column-major float64 block.

    The churn booster reads a float64 matrix. From one block, ``DataFrame.to_numpy``
    is a view; from the column-per-block frame ``assign`` makes, it was an
    interleaving copy (0.44 s on 1M customers). Column-major (each feature's values
    contiguous) is what the trees read fastest: a row-major copy of the same matrix
    made scikit-learn's predict 1.8x slower, as each tree reads a few features of
    every row. Other dtypes, or names ``features`` already has, fall back to ``assign``.
    """
    if (
        any(dtype != np.float64 for dtype in features.dtypes)
        or features.columns.isin(list(extra)).any()
    ):
        return features.assign(**extra)
    n_features = features.shape[1]
    block = np.empty((n_features + len(extra), len(features)))
    for row, (_, column) in enumerate(features.items()):
        block[row] = column.to_numpy()
    for row, values in enumerate(extra.values(), start=n_features):
        block[row] = values
    return pd.DataFrame(
        block.T, index=features.index, columns=[*features.columns, *extra], copy=False
    )


def _labels_at(labels: Sequence[Any], codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``labels[codes]`` as a pandas string array; a code of -1 gives a missing value."""
    return pd.array(np.array(list(labels), dtype=object), dtype="str").take(codes, allow_fill=True)


def _segment_names(names: dict[int, str], segment: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """The name of each segment id; missing for an id without a name."""
    ids = np.fromiter(names, dtype="int64", count=len(names))
    order = np.argsort(ids)
    position = np.searchsorted(ids[order], segment).clip(max=len(ids) - 1)
    codes = np.where(ids[order][position] == segment, order[position], -1)
    return _labels_at(list(names.values()), codes)


def _cleaning_document(cleaning: Any) -> dict[str, Any] | None:
    """``cleaning`` as saved: None, or a dict of setting name to a JSON scalar or list."""
    if cleaning is None:
        return None

    def json_value(value: Any) -> bool:
        if isinstance(value, list | tuple):
            return all(json_value(v) for v in value)
        return value is None or isinstance(value, str | bool | int | float)

    if not isinstance(cleaning, dict) or not all(isinstance(k, str) for k in cleaning):
        raise ScorerError(
            f"cleaning must be a dict of load_transactions setting names to values, got "
            f"{type(cleaning).__name__}."
        )
    bad = sorted(key for key, value in cleaning.items() if not json_value(value))
    if bad:
        raise ScorerError(
            f"cleaning[{bad[0]!r}] = {cleaning[bad[0]]!r} cannot be saved as JSON: give "
            "text, numbers, booleans or None (e.g. a date as 'YYYY-MM-DD')."
        )
    return {key: list(v) if isinstance(v, tuple) else v for key, v in cleaning.items()}


def _frame_to_json(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "index": [str(i) for i in frame.index],
        "columns": [str(c) for c in frame.columns],
        "data": [[None if pd.isna(v) else float(v) for v in row] for row in frame.to_numpy()],
    }
