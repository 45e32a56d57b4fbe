"""The tables a :class:`~segml.scoring.CustomerScorer` is fitted on, built once.

:func:`training_tables` reads a transaction log and returns a :class:`TrainingTables`:
the scorer's features at ``as_of``, the calibration/holdout split that evaluates (and,
with ``purchase_model="auto"``, chooses) the CLV model, and the churn model's two
time-split tables (features and labels at ``as_of - 2 * horizon`` and ``as_of -
horizon``). :meth:`CustomerScorer.fit <segml.scoring.CustomerScorer.fit>` is
``fit_tables(training_tables(...))``; the Spark path builds the same tables on Spark
and passes them to :meth:`~segml.scoring.CustomerScorer.fit_tables`, so that both
engines fit the models with one piece of code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segml.features import calibration_holdout
from segml.features._churn import churn_features, churn_labels
from segml.models.scorecard import repurchase_rate

__all__ = ["ScorerError", "TrainingTables", "customer_features", "training_tables"]

#: Days in one time unit of the scorer's CLV model (weeks are days / 7).
DAYS_PER_UNIT = {"D": 1, "W": 7}


class ScorerError(ValueError):
    """Inputs or settings the scorer cannot use; the message says which and how to fix it."""


def spend_columns(columns) -> list[str]:
    """The columns of ``columns`` computed from amounts (absent from a purchases-only log)."""
    return [
        c
        for c in columns
        if c in ("total_spend", "avg_order_value")
        or str(c).startswith(("monetary_value", "spend_"))
    ]


def _with_amounts(transactions: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """The log, and whether it is purchases-only (no ``amount``; given zero amounts).

    The feature functions read an ``amount`` column; on a purchases-only log the
    columns computed from it are dropped afterwards, so zeros never reach a model.
    """
    if "amount" in transactions.columns:
        return transactions, False
    return transactions.assign(amount=0.0), True


def customer_features(
    transactions: pd.DataFrame, *, as_of, windows_days: Sequence[int] = (90,)
) -> pd.DataFrame:
    """Every input feature of the scorer, per customer known at ``as_of``.

    The churn features of :func:`segml.features.churn_features` (RFM in days,
    purchase gaps, recent-window trends, quantities when present) plus the
    ``repurchase_rate`` that the tier scorecard grades. All float64, no NaN; only
    transactions up to ``as_of`` are read.

    A purchases-only log (``customer_id`` and ``timestamp``, no ``amount`` column)
    gets every feature but those computed from amounts (``monetary_value``,
    ``total_spend``, ``avg_order_value``, ``spend_*``).

    Examples
    --------
    >>> from segml.datasets import load_cdnow
    >>> from segml.scoring._scorer import customer_features
    >>> log = load_cdnow(sample=True)
    >>> features = customer_features(log, as_of="1997-09-30")
    >>> features.shape[0], features.loc["0001", ["frequency", "n_orders"]].tolist()
    (2357, [2.0, 3.0])
    >>> counts = customer_features(log.drop(columns="amount"), as_of="1997-09-30")
    >>> sorted(set(features.columns) - set(counts.columns))[:4]
    ['avg_order_value', 'monetary_value', 'spend_last_90d', 'spend_prev_90d']
    """
    log, purchases_only = _with_amounts(transactions)
    features = churn_features(log, as_of=as_of, windows_days=windows_days)
    rate = repurchase_rate(transactions, as_of=as_of).reindex(features.index)
    features = features.assign(repurchase_rate=rate.to_numpy(dtype="float64"))
    if purchases_only:
        features = features.drop(columns=spend_columns(features.columns))
    return features


@dataclass(frozen=True)
class TrainingTables:
    """Everything :meth:`CustomerScorer.fit_tables` reads, built from one log.

    Attributes
    ----------
    as_of : pandas.Timestamp
        The training date, normalized to midnight.
    first_day : pandas.Timestamp
        The day of the first transaction (the churn split needs two horizons of
        history after it).
    features : pandas.DataFrame
        :func:`customer_features` at ``as_of``: what the deployed models are fitted on.
    cal_holdout : pandas.DataFrame
        :func:`segml.features.calibration_holdout` with the calibration ending
        ``clv_holdout_days`` before ``as_of`` and the holdout ending at ``as_of``, in
        the CLV model's time unit (without the ``monetary_value_*`` columns for a
        purchases-only log).
    churn_train_features, churn_test_features : pandas.DataFrame
        :func:`customer_features` at ``as_of - 2 * churn_horizon_days`` and at
        ``as_of - churn_horizon_days``.
    churn_train_labels, churn_test_labels : pandas.Series
        :func:`segml.features.churn_labels` at those cutoffs, indexed like the features
        of the same cutoff.
    churn_horizon_days, clv_holdout_days, windows_days, time_unit : optional
        The settings the tables were built with. When given (``training_tables``
        always gives them), :meth:`CustomerScorer.fit_tables` refuses tables built
        with settings other than the scorer's; tables built elsewhere should give them
        too.
    clv_rows : dict of str to pandas.DataFrame, optional
        Distinct RFM rows with counts for the CLV fits, when the per-customer tables
        are a sample of a larger log (the Spark path): keys ``"as_of"`` (the deployed
        model, instead of ``features``), ``"calibration"`` (the calibration-period
        model, instead of ``cal_holdout``'s calibration columns), ``"churn_train"``
        and ``"churn_test"`` (the CLV inputs of the churn tables); each with
        ``frequency``, ``recency``, ``T`` in days, ``monetary_value`` (absent for a
        purchases-only log) and ``count``, the number of customers with that row.
        A fit on rows with counts equals the fit on the customers they stand for
        (``CLVModel.fit(sample_weight=...)``). Keys left out use the per-customer
        tables. ``purchase_model="auto"`` still chooses on ``cal_holdout``.
    """

    as_of: pd.Timestamp
    first_day: pd.Timestamp
    features: pd.DataFrame
    cal_holdout: pd.DataFrame
    churn_train_features: pd.DataFrame
    churn_train_labels: pd.Series
    churn_test_features: pd.DataFrame
    churn_test_labels: pd.Series
    churn_horizon_days: int | None = None
    clv_holdout_days: int | None = None
    windows_days: tuple[int, ...] | None = None
    time_unit: str | None = None
    clv_rows: dict[str, pd.DataFrame] | None = None


def check_table_settings(
    *, churn_horizon_days, time_unit: str, as_of: pd.Timestamp, first_day: pd.Timestamp
) -> None:
    """Refuse a CLV time unit other than days or weeks, a bad horizon, or too short a log."""
    if time_unit not in DAYS_PER_UNIT:
        raise ScorerError(
            f"The scorer's CLV model must count time in 'D' (days) or 'W' (weeks as "
            f"days / 7), got time_unit={time_unit!r}."
        )
    if not (isinstance(churn_horizon_days, int | np.integer) and churn_horizon_days > 0):
        raise ScorerError(
            f"churn_horizon_days must be a positive whole number of days, got "
            f"{churn_horizon_days!r}."
        )
    earliest_cutoff = as_of - 2 * pd.Timedelta(days=int(churn_horizon_days))
    if earliest_cutoff <= first_day:
        raise ScorerError(
            f"churn_horizon_days={churn_horizon_days} needs two horizons of history "
            f"before as_of={as_of.date()} (a first cutoff at {earliest_cutoff.date()}), "
            f"but the log starts {first_day.date()}. Use a later as_of or a shorter horizon."
        )


def training_tables(
    transactions: pd.DataFrame,
    *,
    as_of,
    churn_horizon_days: int = 90,
    clv_holdout_days: int = 180,
    windows_days: Sequence[int] = (90,),
    time_unit: str = "D",
) -> TrainingTables:
    """Build the tables a :class:`~segml.scoring.CustomerScorer` is fitted on.

    Parameters
    ----------
    transactions : pandas.DataFrame
        Clean transactions (:func:`segml.load_transactions`); without an ``amount``
        column, a purchases-only log (see :func:`customer_features`).
    as_of : date-like
        Training date; nothing after it is read.
    churn_horizon_days, clv_holdout_days, windows_days
        As in :class:`~segml.scoring.CustomerScorer`.
    time_unit : {"D", "W"}, default "D"
        The CLV model's time unit: the calibration/holdout split counts time in it.

    Returns
    -------
    TrainingTables

    Raises
    ------
    ScorerError
        A time unit other than days or weeks, a horizon that is not a positive whole
        number of days, or a log with less than two churn horizons before ``as_of``.

    Examples
    --------
    >>> from segml.datasets import load_cdnow
    >>> from segml.scoring import training_tables
    >>> tables = training_tables(load_cdnow(sample=True), as_of="1998-06-30", time_unit="W")
    >>> str(tables.as_of.date()), str(tables.first_day.date()), len(tables.features)
    ('1998-06-30', '1997-01-01', 2357)
    >>> tables.churn_test_labels.index.equals(tables.churn_test_features.index)
    True
    """
    as_of = pd.Timestamp(as_of).normalize()
    first_day = transactions["timestamp"].min().normalize()
    check_table_settings(
        churn_horizon_days=churn_horizon_days,
        time_unit=time_unit,
        as_of=as_of,
        first_day=first_day,
    )
    horizon = pd.Timedelta(days=int(churn_horizon_days))
    features = customer_features(transactions, as_of=as_of, windows_days=windows_days)
    log, purchases_only = _with_amounts(transactions)
    cal_holdout = calibration_holdout(
        log,
        calibration_end=as_of - pd.Timedelta(days=int(clv_holdout_days)),
        observation_end=as_of,
        unit_multiplier=DAYS_PER_UNIT[time_unit],
    )
    if purchases_only:
        cal_holdout = cal_holdout.drop(columns=spend_columns(cal_holdout.columns))
    churn = {}
    for name, cutoff in (("train", as_of - 2 * horizon), ("test", as_of - horizon)):
        past = customer_features(transactions, as_of=cutoff, windows_days=windows_days)
        labels = churn_labels(transactions, as_of=cutoff, horizon_days=churn_horizon_days)
        churn[name] = (past, labels.reindex(past.index))
    return TrainingTables(
        as_of=as_of,
        first_day=first_day,
        features=features,
        cal_holdout=cal_holdout,
        churn_train_features=churn["train"][0],
        churn_train_labels=churn["train"][1],
        churn_test_features=churn["test"][0],
        churn_test_labels=churn["test"][1],
        churn_horizon_days=int(churn_horizon_days),
        clv_holdout_days=int(clv_holdout_days),
        windows_days=tuple(int(w) for w in windows_days),
        time_unit=time_unit,
    )
