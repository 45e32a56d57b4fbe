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

      -> predictive columns (segml.models._predictive.predictive_summary on the
         same RFM): p_buy_<N>d, p_buy_again, next_purchase_*_days and their
         dates, clv_low / clv_high

Customers with no repeat purchase get P(alive) = 1 under BG/NBD (Fader, Hardie & Lee
2005): that is a property of the model, not a sign of loyalty; their churn risk
comes from the churn model, which sees that they have one purchase only.

A purchases-only log (no ``amount`` column, like lifetimes' ``example_transactions``)
fits the purchase model alone (``spend_model=None``): the scores have no ``clv``,
``clv_low`` or ``clv_high``, segments rank by ``expected_purchases`` and the default
scorecard grades orders instead of spend; ``notices_`` says so once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segml.models._churn_baseline import BaselineChurnModel
from segml.models._churn_evaluation import churn_baselines, evaluate_churn
from segml.models._clv_metrics import holdout_metrics
from segml.models._estimator import random_state_instance
from segml.models._predictive import predictive_summary
from segml.models.churn import RISK_BANDS, ChurnModel
from segml.models.clv import CLVModel
from segml.models.scorecard import DEFAULT_CONFIG, TierScorecard
from segml.models.segments import DEFAULT_FEATURES as DEFAULT_SEGMENT_FEATURES
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
from segml.scoring._training_tables import (
    DAYS_PER_UNIT,
    ScorerError,
    TrainingTables,
    check_table_settings,
    customer_features,
    spend_columns,
    training_tables,
)

__all__ = [
    "BASE_OUTPUT_COLUMNS",
    "CLV_OUTPUT_COLUMNS",
    "DATE_OUTPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "STRING_OUTPUT_COLUMNS",
    "CustomerScorer",
    "ScorerError",
    "customer_features",
]

#: The scores of every scorer, whatever it was fitted on (scorers saved before the
#: predictive columns existed output these only; without a spend model, no ``clv``).
BASE_OUTPUT_COLUMNS = (
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
#: The next-purchase dates: ISO ``YYYY-MM-DD`` text, missing where there is no date.
DATE_OUTPUT_COLUMNS = ("next_purchase_date", "next_purchase_low", "next_purchase_high")
#: The columns that need a spend model, absent from a purchases-only scorer's scores.
CLV_OUTPUT_COLUMNS = ("clv", "clv_low", "clv_high")
_DAYS_COLUMNS = ("next_purchase_days", "next_purchase_low_days", "next_purchase_high_days")
_DEFAULT_P_BUY_WINDOWS_DAYS = (30, 90)


def _output_columns(p_buy_windows_days: Sequence[int] | None, with_clv: bool) -> tuple[str, ...]:
    """The scores' columns: the base ones, then the predictive ones (None: none)."""
    predictive = ()
    if p_buy_windows_days is not None:
        predictive = (
            *(f"p_buy_{int(w)}d" for w in p_buy_windows_days),
            "p_buy_again",
            *_DAYS_COLUMNS,
            *DATE_OUTPUT_COLUMNS,
            "clv_low",
            "clv_high",
        )
    columns = (*BASE_OUTPUT_COLUMNS, *predictive)
    return columns if with_clv else tuple(c for c in columns if c not in CLV_OUTPUT_COLUMNS)


#: The columns of :meth:`CustomerScorer.predict` for the default settings (a log with
#: amounts, ``p_buy_windows_days=(30, 90)``), in order. A fitted scorer's own columns
#: are ``scorer.output_columns_``: other windows name other ``p_buy_<N>d`` columns,
#: and a purchases-only scorer has no :data:`CLV_OUTPUT_COLUMNS`.
OUTPUT_COLUMNS = _output_columns(_DEFAULT_P_BUY_WINDOWS_DAYS, with_clv=True)
#: The text columns of the scores: labels, and the dates as ISO text (``segment`` is
#: an integer; every other column is float, NaN where a value does not exist).
STRING_OUTPUT_COLUMNS = (
    "segment_name",
    "tier",
    "risk_band",
    "action",
    "action_reason",
    *DATE_OUTPUT_COLUMNS,
)
_DAYS_PER_UNIT = DAYS_PER_UNIT
_FORMAT = "segml.CustomerScorer"
# Version 2 added settings.cleaning (how the training log was cleaned); version 3 the
# predictive columns (settings p_buy_windows_days, interval_level, n_draws,
# random_state; the "predictive" block with the seed of the draws) and "notices".
# Older files still load and score as they did (no predictive columns; cleaning None
# in version 1); a segml that reads only older versions refuses a newer file rather
# than scoring without what it adds.
_FORMAT_VERSION = 3
#: ``format_version`` values of ``scorer.json`` this segml reads.
SCORER_FORMAT_VERSIONS = (1, 2, 3)
#: Segment features of a purchases-only log (no spend): recency, orders and tenure.
PURCHASE_SEGMENT_FEATURES = ("days_since_last_purchase", "n_orders", "tenure_days")
#: The default scorecard of a purchases-only log: orders instead of spend.
PURCHASES_SCORECARD_CONFIG = DEFAULT_CONFIG.with_name("scorecard_purchases.yaml")


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
    p_buy_windows_days : sequence of int, default (30, 90)
        Windows of the ``p_buy_<N>d`` columns: P(at least one purchase in the next N
        days), :func:`segml.models._predictive.purchase_probability`.
    interval_level : float, default 0.8
        Level of the next-purchase interval (``next_purchase_low`` / ``_high``, the
        10% and 90% quantiles of the waiting time at 0.8) and of the CLV predictive
        interval (``clv_low`` / ``clv_high``).
    n_draws : int, default 200
        Simulated draws per customer behind ``clv_low`` / ``clv_high``
        (:func:`segml.models._predictive.clv_predictive_interval`).
    random_state : int, numpy.random.Generator, RandomState or None, default None
        Seeds those draws. :meth:`fit` turns it into one integer seed, kept in
        ``predictive_seed_`` and saved: a saved scorer gives the same intervals every
        time it scores, and a customer's interval does not depend on the other
        customers scored with it (nor their order, chunk or Spark partition).

    **Predictive columns.** After the base columns, :meth:`predict` adds
    :func:`segml.models._predictive.predictive_summary` of the CLV model on the
    same RFM: ``p_buy_<N>d``, ``p_buy_again``, the waiting time to the next
    purchase in days (``next_purchase_days``: the median; ``next_purchase_low_days``
    / ``next_purchase_high_days``: the interval), the same as dates
    (``next_purchase_date``, ``next_purchase_low``, ``next_purchase_high``) and
    ``clv_low`` / ``clv_high``. A quantile exists only when ``p_buy_again`` exceeds
    its level: a customer more likely never to buy again than to buy at all
    (``p_buy_again <= 0.5``) has no next-purchase date (NaN days, missing date), and
    ``p_buy_again`` says why.

    **Dates and the scoring date.** Features hold durations, not dates, so the
    dates need the day the features were computed at: ``predict(features,
    as_of=...)``. They are ISO ``YYYY-MM-DD`` text (:data:`DATE_OUTPUT_COLUMNS`, in
    :data:`STRING_OUTPUT_COLUMNS`), ``as_of`` plus the offset rounded up to whole
    days, missing where there is no date, so that they read the same in Parquet,
    CSV, the MLflow signature (``string``) and Spark's struct UDF. Without
    ``as_of`` every date is missing (the ``*_days`` columns are still there).
    :meth:`score` passes its ``as_of``; the MLflow pyfunc takes it as the inference
    parameter ``as_of`` (``model.predict(frame, params={"as_of": "1998-06-30"})``);
    ``segml score`` and the Spark scorer pass the date they score at. All of them
    call this method, so they give the same values.

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
    output_columns_ : list of str
        Columns of :meth:`predict`, in order: :data:`OUTPUT_COLUMNS` with this
        scorer's ``p_buy_<N>d`` windows, without :data:`CLV_OUTPUT_COLUMNS` when the
        CLV model has no spend model (a scorer saved before format version 3: the
        first ten columns only). The MLflow signature, ``segml score`` and the Spark
        scorer take the columns from here.
    predictive_settings_ : dict or None
        ``p_buy_windows_days``, ``interval_level``, ``n_draws`` and ``seed`` (the
        integer seed of the draws) the predictive columns are computed with; None for
        a scorer saved before they existed.
    notices_ : list of str
        What the scorer left out and why, stated once (e.g. a purchases-only log has
        no CLV columns); a training run prints and logs them.

    Examples
    --------
    >>> from segml.datasets import load_cdnow
    >>> from segml.models.clv import CLVModel
    >>> from segml.models.segments import SegmentModel
    >>> from segml.scoring._scorer import CustomerScorer
    >>> log = load_cdnow(sample=True)
    >>> scorer = CustomerScorer(clv=CLVModel(time_unit="W"), segments=SegmentModel(n_segments=4),
    ...                         random_state=0).fit(log, as_of="1998-06-30")
    >>> scores = scorer.score(log, as_of="1998-06-30")
    >>> list(scores.columns) == list(OUTPUT_COLUMNS) == scorer.output_columns_
    True
    >>> int(scores["segment"].nunique())
    4
    >>> scores.loc["0001", ["clv", "p_buy_90d", "next_purchase_days"]].astype(float).round(2)
    clv                    29.40
    p_buy_90d               0.25
    next_purchase_days    316.81
    Name: 0001, dtype: float64
    >>> low, high = scores.loc["0001", ["clv_low", "clv_high"]]  # 80% predictive interval
    >>> bool(0 <= low <= 29.4 <= high)
    True
    >>> scores.loc["0001", "next_purchase_date"], scores.loc["0002", "next_purchase_date"]
    ('1999-05-13', nan)
    >>> round(float(scores.loc["0002", "p_buy_again"]), 3)  # why 0002 has no date
    0.167
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
        p_buy_windows_days: Sequence[int] = _DEFAULT_P_BUY_WINDOWS_DAYS,
        interval_level: float = 0.8,
        n_draws: int = 200,
        random_state=None,
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
        self.p_buy_windows_days = p_buy_windows_days
        self.interval_level = interval_level
        self.n_draws = n_draws
        self.random_state = random_state

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

        The same as ``fit_tables(training_tables(transactions, as_of=as_of, ...))``
        with this scorer's settings; building the tables is timed as the step
        ``"features"``.

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
        self._check_settings()
        started = time.perf_counter()
        tables = training_tables(
            transactions,
            as_of=as_of,
            churn_horizon_days=self.churn_horizon_days,
            clv_holdout_days=self.clv_holdout_days,
            windows_days=self.windows_days,
            time_unit=self._clv_template().time_unit,
        )
        seconds = time.perf_counter() - started
        if on_step is not None:
            on_step("features", seconds)
        return self.fit_tables(
            tables, on_step=on_step, diagnostics=diagnostics, _timings={"features": seconds}
        )

    def fit_tables(
        self,
        tables: TrainingTables,
        *,
        on_step: Callable[[str, float], None] | None = None,
        diagnostics: bool = False,
        _timings: dict[str, float] | None = None,
    ) -> CustomerScorer:
        """Fit every model on prepared tables (:func:`~segml.scoring.training_tables`).

        What :meth:`fit` does after building the tables; the Spark path builds the
        same tables on Spark and calls this.

        Parameters
        ----------
        tables : TrainingTables
            Built with this scorer's ``churn_horizon_days``, ``clv_holdout_days``,
            ``windows_days`` and CLV time unit (checked when the tables record them).
        on_step, diagnostics
            As in :meth:`fit`.

        Returns
        -------
        self

        Raises
        ------
        ScorerError
            Tables built with other settings, churn labels that do not cover their
            features, or less than two churn horizons of history.

        Examples
        --------
        >>> from segml.datasets import load_cdnow
        >>> from segml.models.clv import CLVModel
        >>> from segml.models.segments import SegmentModel
        >>> from segml.scoring import CustomerScorer, training_tables
        >>> log = load_cdnow(sample=True)
        >>> tables = training_tables(log, as_of="1998-06-30", time_unit="W")
        >>> scorer = CustomerScorer(clv=CLVModel(time_unit="W"),
        ...                         segments=SegmentModel(n_segments=4)).fit_tables(tables)
        >>> scorer.as_of_, len(scorer.predict(tables.features))
        ('1998-06-30', 2357)
        """
        # Imported here: a fitted or loaded scorer predicts without scikit-learn.
        from sklearn.base import clone

        self._check_settings()
        predictive = self._predictive_settings()
        clv_template = self._clv_template()
        unit = clv_template.time_unit
        self._check_tables(tables, unit)
        notices = []
        if "monetary_value" not in tables.features.columns:
            # A purchases-only log: whatever the template says, there is no spend to fit.
            clv_template = clone(clv_template).set_params(spend_model=None)
            notices.append(
                "The log has no amount column (purchases only): the CLV model is fitted "
                "without a spend model, so clv, clv_low and clv_high are not scored; "
                "segments are ranked by expected_purchases"
                + (
                    " and the default scorecard grades the number of orders instead of spend."
                    if self.scorecard is None
                    else "."
                )
            )
        elif clv_template.spend_model is None:
            notices.append(
                "The CLV model has no spend model (spend_model=None): clv, clv_low and "
                "clv_high are not scored, and segments are ranked by expected_purchases."
            )
        as_of = tables.as_of
        horizon = pd.Timedelta(days=int(self.churn_horizon_days))
        features = tables.features
        self.timings_: dict[str, float] = dict(_timings or {})
        if diagnostics:
            self.diagnostics_: dict[str, Any] = {}

        def timed(name, function, *args, **kwargs):
            started = time.perf_counter()
            result = function(*args, **kwargs)
            self.timings_[name] = time.perf_counter() - started
            if on_step is not None:
                on_step(name, self.timings_[name])
            return result

        clv_rows = self._check_clv_rows(tables.clv_rows)

        def fit_clv(template, key, per_customer, **kwargs):
            """A CLV fit on the customers, or on the tables' distinct rows with counts."""
            if key not in clv_rows:
                return clone(template).fit(self._clv_rfm(per_customer, unit), **kwargs)
            rows = clv_rows[key]
            weights = rows["count"].to_numpy()
            return clone(template).fit(self._clv_rfm(rows, unit), sample_weight=weights, **kwargs)

        def fit_clv_and_evaluate():
            nonlocal clv_template
            split = tables.cal_holdout
            names = ["frequency", "recency", "T", "monetary_value"]
            names = [n for n in names if f"{n}_cal" in split.columns]  # purchases only: 3
            cal = split[[f"{n}_cal" for n in names]].set_axis(names, axis=1)
            # purchase_model="auto" is resolved once, on this calibration/holdout split
            # (the split is ignored otherwise); every other CLV fit of the run (the
            # calibration model, the churn cutoffs) then uses the model it chose.
            deployed = fit_clv(clv_template, "as_of", features, cal_holdout=split)
            clv_template = clone(clv_template).set_params(purchase_model=deployed.purchase_model_)
            if "calibration" in clv_rows:
                clv_calibration = fit_clv(clv_template, "calibration", None)
            else:
                clv_calibration = clone(clv_template).fit(cal)
            holdout = holdout_metrics(clv_calibration, split)
            if diagnostics:
                self.diagnostics_.update(cal_holdout=split, clv_calibration=clv_calibration)
            return deployed, holdout

        self.clv_, clv_holdout = timed("CLV fit and holdout evaluation", fit_clv_and_evaluate)

        def fit_churn_and_evaluate():
            churn_tables = {}
            for name, past, labels in (
                ("train", tables.churn_train_features, tables.churn_train_labels),
                ("test", tables.churn_test_features, tables.churn_test_labels),
            ):
                clv_at_cutoff = fit_clv(clv_template, f"churn_{name}", past)
                X = self._churn_inputs(past, clv_at_cutoff, unit)
                churn_tables[name] = (X, labels.reindex(X.index))
            template = self.churn if self.churn is not None else ChurnModel(random_state=0)
            X_train, y_train = churn_tables["train"]
            X_test, y_test = churn_tables["test"]
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
        value_column = self._value_column()

        def fit_segments():
            table = features.assign(**{value_column: clv_outputs[value_column].to_numpy()})
            template = self.segments if self.segments is not None else SegmentModel()
            if value_column != "clv" and template.value_column is None:
                template = clone(template).set_params(value_column=value_column)
                spend = spend_columns(template.features)
                if spend and all(c not in features.columns for c in spend):
                    if tuple(template.features) != DEFAULT_SEGMENT_FEATURES:
                        raise ScorerError(
                            f"The segment features {list(template.features)} include "
                            f"{spend}, which a purchases-only log (no amount column) does "
                            f"not have: use e.g. {list(PURCHASE_SEGMENT_FEATURES)}."
                        )
                    template = template.set_params(features=PURCHASE_SEGMENT_FEATURES)
            return clone(template).fit(table)

        self.segments_ = timed("segments", fit_segments)
        if self.scorecard is not None:
            card = self.scorecard
        elif "total_spend" in features.columns:
            card = TierScorecard.default()
        else:
            card = TierScorecard.from_yaml(PURCHASES_SCORECARD_CONFIG)
        # Quantile band edges are learnt here, on the customers at as_of, and kept.
        self.scorecard_ = clone(card).fit(features)
        self.feature_columns_ = list(features.columns)
        self.as_of_ = as_of.date().isoformat()
        self.predictive_settings_ = predictive
        self.output_columns_ = list(
            _output_columns(predictive["p_buy_windows_days"], with_clv=self._has_clv())
        )
        self.notices_ = notices
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
            # The map profiles none of the predictive columns: they are not drawn here.
            scored = self._predict_core(features, predictive=False)
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

    def _clv_template(self) -> CLVModel:
        return self.clv if self.clv is not None else CLVModel()

    def _has_clv(self) -> bool:
        """Whether the fitted CLV model has a spend model (so ``clv`` is scored)."""
        return getattr(self.clv_, "gamma_gamma_params_", None) is not None

    def _value_column(self) -> str:
        """What ranks segments: ``clv``, or ``expected_purchases`` without a spend model."""
        return "clv" if self._has_clv() else "expected_purchases"

    def _predictive_settings(self) -> dict[str, Any]:
        """The checked predictive settings, with ``random_state`` made one integer seed."""
        windows = self.p_buy_windows_days
        if (
            isinstance(windows, str | bytes)
            or not isinstance(windows, Sequence)
            or not windows
            or not all(
                isinstance(w, int | np.integer) and not isinstance(w, bool) and w > 0
                for w in windows
            )
            or len(set(windows)) != len(windows)
        ):
            raise ScorerError(
                f"p_buy_windows_days must be a non-empty list of distinct positive whole "
                f"numbers of days (e.g. [30, 90]), got {windows!r}."
            )
        level = self.interval_level
        if isinstance(level, bool) or not isinstance(level, float | int) or not 0 < level < 1:
            raise ScorerError(
                f"interval_level must be a number in (0, 1), e.g. 0.8; got {level!r}."
            )
        n_draws = self.n_draws
        if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or n_draws < 2:
            raise ScorerError(f"n_draws must be a whole number >= 2, got {n_draws!r}.")
        random_state = self.random_state
        if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
            if random_state < 0:
                raise ScorerError(f"random_state must be >= 0, got {random_state!r}.")
            seed = int(random_state)
        elif isinstance(random_state, np.random.Generator):
            seed = int(random_state.integers(0, 2**31 - 1))
        else:
            # None or a RandomState: drawn once here, then saved with the model.
            seed = int(random_state_instance(random_state).randint(0, 2**31 - 1))
        return {
            "p_buy_windows_days": [int(w) for w in windows],
            "interval_level": float(level),
            "n_draws": int(n_draws),
            "seed": seed,
        }

    def _check_settings(self) -> None:
        unit = self._clv_template().time_unit
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

    @staticmethod
    def _check_clv_rows(clv_rows) -> dict[str, pd.DataFrame]:
        """``TrainingTables.clv_rows`` checked: known keys, the columns a CLV fit reads."""
        if clv_rows is None:
            return {}
        keys = ("as_of", "calibration", "churn_train", "churn_test")
        unknown = sorted(set(clv_rows) - set(keys))
        if unknown:
            raise ScorerError(f"clv_rows has unknown key(s) {unknown}; known: {list(keys)}.")
        for key, rows in clv_rows.items():
            missing = [c for c in ("frequency", "recency", "T", "count") if c not in rows.columns]
            if missing:
                raise ScorerError(
                    f"clv_rows[{key!r}] lacks the column(s) {missing} ({len(rows)} rows); "
                    "give frequency, recency, T (days), monetary_value and count."
                )
        return dict(clv_rows)

    def _check_tables(self, tables: TrainingTables, unit: str) -> None:
        """Refuse tables built with other settings, or labels that miss customers."""
        if not isinstance(tables, TrainingTables):
            raise ScorerError(
                f"fit_tables needs a TrainingTables (segml.scoring.training_tables), got "
                f"{type(tables).__name__}."
            )
        expected = {
            "churn_horizon_days": int(self.churn_horizon_days),
            "clv_holdout_days": int(self.clv_holdout_days),
            "windows_days": tuple(int(w) for w in self.windows_days),
            "time_unit": unit,
        }
        for name, value in expected.items():
            built = getattr(tables, name)
            if built is not None and built != value:
                raise ScorerError(
                    f"The tables were built with {name}={built!r} but this scorer has "
                    f"{name}={value!r}: build them with the scorer's settings."
                )
        check_table_settings(
            churn_horizon_days=self.churn_horizon_days,
            time_unit=unit,
            as_of=tables.as_of,
            first_day=tables.first_day,
        )
        for name in ("train", "test"):
            features = getattr(tables, f"churn_{name}_features")
            labels = getattr(tables, f"churn_{name}_labels").reindex(features.index)
            missing = int(labels.isna().sum())
            if missing:
                example = labels.index[labels.isna().to_numpy()][0]
                raise ScorerError(
                    f"churn_{name}_labels lack {missing} of the {len(features)} customers of "
                    f"churn_{name}_features (e.g. {example!r}): build both at the same cutoff."
                )

    # ---------------------------------------------------------------- predicting
    @staticmethod
    def _clv_rfm(features: pd.DataFrame, unit: str) -> pd.DataFrame:
        """lifetimes' RFM columns in the CLV model's unit (features are in days)."""
        days = _DAYS_PER_UNIT[unit]
        columns = {
            "frequency": features["frequency"],
            "recency": features["recency"] / days,
            "T": features["T"] / days,
        }
        if "monetary_value" in features.columns:  # absent from a purchases-only log
            columns["monetary_value"] = features["monetary_value"]
        return pd.DataFrame(columns, index=features.index)

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

    def _predict_core(
        self, features: pd.DataFrame, *, as_of: pd.Timestamp | None = None, predictive: bool = True
    ) -> pd.DataFrame:
        unit = self.clv_.time_unit
        rfm = self._clv_rfm(features, unit)
        clv_out = self.clv_.predict(rfm)
        churn_in = self._churn_inputs(
            features, self.clv_, unit, p_alive=clv_out["p_alive"].to_numpy()
        )
        probability = self.churn_.churn_probability(churn_in).to_numpy()
        risk_codes = self.churn_.risk_band_codes(probability)
        value_column = self._value_column()
        value = clv_out[value_column].to_numpy()
        segment = np.asarray(
            self.segments_.predict(features.assign(**{value_column: value}))
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
        columns = {
            **({"clv": value} if value_column == "clv" else {}),
            "p_alive": clv_out["p_alive"].to_numpy(),
            "expected_purchases": clv_out["expected_purchases"].to_numpy(),
            "segment": segment,
            "segment_name": _segment_names(self.segments_.segment_names_, segment),
            "tier": _labels_at(tier_labels, tier_codes),
            "churn_probability": probability,
            "risk_band": _labels_at(RISK_BANDS, risk_codes),
            "action": _labels_at(action_labels, action_codes),
            "action_reason": _labels_at(reason_labels, action_codes),
        }
        names = [c for c in self.output_columns_ if predictive or c in columns]
        if any(name not in columns for name in names):  # the predictive columns
            settings = self.predictive_settings_
            summary = predictive_summary(
                self.clv_,
                rfm,
                windows_days=settings["p_buy_windows_days"],
                level=settings["interval_level"],
                n_draws=settings["n_draws"],
                random_state=settings["seed"],
            )
            columns.update({name: summary[name].to_numpy() for name in summary.columns})
            days = np.column_stack([columns[name] for name in _DAYS_COLUMNS])
            dates = _iso_dates(as_of, days)
            columns.update(zip(DATE_OUTPUT_COLUMNS, dates, strict=True))
        return pd.DataFrame({name: columns[name] for name in names}, index=features.index)

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

    def predict(self, features: pd.DataFrame, *, as_of=None) -> pd.DataFrame:
        """Score customers from their features (see :func:`customer_features`).

        Parameters
        ----------
        features : pandas.DataFrame
            :func:`customer_features` (at least ``feature_columns_``), one row per
            customer.
        as_of : date-like, optional
            The day the features were computed at: the next-purchase dates count
            from it. Without it they are missing (the ``*_days`` columns are not).

        Returns
        -------
        pandas.DataFrame
            Indexed like ``features``, columns ``output_columns_``. Each customer's
            row depends on their own features only (not on the other rows, their
            order or how many there are).
        """
        self._check_fitted()
        day = _scoring_day(as_of)
        return self._predict_core(self._check_features(features), as_of=day)

    def score(self, transactions: pd.DataFrame, *, as_of) -> pd.DataFrame:
        """Build features from transactions as of a date and :meth:`predict` them."""
        self._check_fitted()
        day = _scoring_day(as_of)
        return self.predict(
            customer_features(transactions, as_of=day, windows_days=self.windows_days),
            as_of=day,
        )

    # --------------------------------------------------------------- persistence
    def save(self, folder: str | os.PathLike) -> Path:
        """Write the scorer as data: ``scorer.json`` and the churn model's folder (JSON)."""
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
                "p_buy_windows_days": [int(w) for w in self.p_buy_windows_days],
                "interval_level": float(self.interval_level),
                "n_draws": int(self.n_draws),
                # An int, or None for anything else: the seed below is what scores.
                "random_state": _json_random_state(self.random_state),
            },
            # The settings the predictive columns were computed with at fit (seed
            # included); None for a scorer loaded from a file older than version 3.
            "predictive": self.predictive_settings_,
            "notices": list(self.notices_),
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
            # Absent before version 3, whose scorers have no predictive columns.
            p_buy_windows_days=tuple(
                settings.get("p_buy_windows_days", _DEFAULT_P_BUY_WINDOWS_DAYS)
            ),
            interval_level=float(settings.get("interval_level", 0.8)),
            n_draws=int(settings.get("n_draws", 200)),
            random_state=settings.get("random_state"),
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
        predictive = document.get("predictive")  # absent before version 3
        if predictive is not None:
            predictive = {
                "p_buy_windows_days": [int(w) for w in predictive["p_buy_windows_days"]],
                "interval_level": float(predictive["interval_level"]),
                "n_draws": int(predictive["n_draws"]),
                "seed": int(predictive["seed"]),
            }
        scorer.predictive_settings_ = predictive
        scorer.output_columns_ = list(
            _output_columns(
                None if predictive is None else predictive["p_buy_windows_days"],
                with_clv=scorer._has_clv(),
            )
        )
        scorer.notices_ = [str(notice) for notice in document.get("notices", [])]
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


def _scoring_day(as_of) -> pd.Timestamp | None:
    """``as_of`` as midnight of its day; None stays None."""
    if as_of is None:
        return None
    if isinstance(as_of, bool | int | float | np.number):
        raise ScorerError(f"as_of must be a date such as '1998-06-30', got the number {as_of!r}.")
    try:
        day = pd.Timestamp(as_of)
    except (TypeError, ValueError) as exc:
        raise ScorerError(
            f"as_of {as_of!r} is not a date ({exc}); give e.g. '1998-06-30'."
        ) from None
    if day is pd.NaT:
        raise ScorerError(f"as_of {as_of!r} is not a date; give e.g. '1998-06-30'.")
    return day.tz_localize(None).normalize() if day.tzinfo is not None else day.normalize()


def _json_random_state(random_state) -> int | None:
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        return int(random_state)
    return None


def _iso_dates(as_of: pd.Timestamp | None, days: np.ndarray) -> list:
    """Each column of ``days`` as dates ``as_of + ceil(days)``, ISO text; NaN -> missing.

    The day rule of :func:`segml.models._predictive.next_purchase` (the first whole
    day by which the probability reaches the level). Offsets are whole days below
    100 years, so the distinct dates are few: each is formatted once and taken by
    code, as the label columns are. Without ``as_of`` every date is missing.
    """
    whole = np.ceil(days)
    missing = np.isnan(whole)
    if as_of is None or missing.all():
        return [_labels_at([], np.full(len(days), -1)) for _ in range(days.shape[1])]
    offsets = np.where(missing, 0.0, whole).astype(np.int64)
    first = int(offsets[~missing].min())
    last = int(offsets[~missing].max())
    start = np.datetime64(pd.Timestamp(as_of).date(), "D")
    labels = np.datetime_as_string(start + np.arange(first, last + 1), unit="D")
    codes = np.where(missing, -1, offsets - first)
    return [_labels_at(labels, codes[:, k]) for k in range(days.shape[1])]


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
