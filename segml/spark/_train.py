"""The scorer's training tables built on Spark, by the pandas path's own functions.

:func:`training_tables` is the Spark twin of :func:`segml.scoring.training_tables`:
the features at ``as_of``, the calibration/holdout split and the churn model's two
time-split tables (features and labels), as a :class:`SparkTrainingTables` that
:meth:`segml.scoring.CustomerScorer.fit_tables` fits on directly. :func:`fit_scorer`
does both.

How it is computed:

1. One pass over the log on Spark: nulls, ``as_of`` inside the data, and the
   whole-log facts the pandas functions read from the whole log (first and last
   day, the first day of the CLV holdout). The checks of the pandas path that need
   them run on the driver, on a log of those few days, so that a log too short for
   the churn split or without a holdout is refused with the pandas path's words.
2. One shuffle of the rows up to ``as_of`` into buckets of whole customers, and
   one pandas call per bucket (:func:`segml.spark._buckets.apply_per_bucket`) that
   runs :func:`segml.scoring.customer_features` at the three dates,
   :func:`segml.features.churn_labels` at the two cutoffs (with the log's last day
   as ``data_end``, as on the whole log) and
   :func:`segml.features.calibration_holdout`: every table is per customer, so a
   bucket gives its customers the rows the whole log gives them.
3. The per-customer tables (never the raw log) are collected to the driver, in
   customer order. Above ``max_training_customers`` customers at ``as_of``, a
   fixed share of customers, chosen by a hash of their id (the same on every run),
   is collected instead, for every table; :attr:`SparkTrainingTables.clv_rows`
   then holds the distinct (frequency, recency, T, monetary_value) rows of *all*
   customers with their counts, aggregated on Spark, for a CLV fit on everyone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segml.features._churn import _check_windows
from segml.features._rfm import LIFETIMES_COLUMNS
from segml.scoring import CustomerScorer, TrainingTables
from segml.scoring._training_tables import DAYS_PER_UNIT, check_table_settings
from segml.spark._buckets import ROW, apply_per_bucket, to_pandas
from segml.spark._features import (
    SparkInputError,
    _as_day,
    canonical_transactions,
    check_values,
    default_buckets,
    feature_columns,
    timestamps_as_written,
)

__all__ = [
    "MAX_TRAINING_CUSTOMERS",
    "SparkTrainingTables",
    "fit_scorer",
    "read_training_log",
    "training_tables",
]

#: Default for ``max_training_customers``: per-customer tables of a million customers
#: (about 30 doubles each, four tables) take about 1 GB on the driver.
MAX_TRAINING_CUSTOMERS = 1_000_000

_TABLE = "_segml_table"
# Codes of the tables in the one result of the per-bucket pass.
_FEATURES, _CHURN_TRAIN, _CHURN_TEST, _CAL_HOLDOUT = 0, 1, 2, 3
_LABEL = "churned"
_CAL_COLUMNS = (
    *(f"{c}_cal" for c in LIFETIMES_COLUMNS),
    "frequency_holdout",
    "monetary_value_holdout",
    "duration_holdout",
)
_CLV_ROW_COLUMNS = ("frequency", "recency", "T", "monetary_value")
# A seed of its own for sampling, so that the sample is not a set of whole buckets.
_SAMPLE_SEED = 19_970_101
_SAMPLE_SLOTS = 1 << 20


@dataclass(frozen=True)
class SparkTrainingTables(TrainingTables):
    """:class:`segml.scoring.TrainingTables` built on Spark, with what sampling did.

    Attributes
    ----------
    n_customers : int
        Customers known at ``as_of`` in the whole log.
    sample_fraction : float
        Share of customers in every table: 1.0 (all) unless the log has more than
        ``max_training_customers`` customers at ``as_of``.
    max_training_customers : int
        The limit the tables were built with.
    clv_rows : dict of str to pandas.DataFrame
        Only when sampled: for ``"as_of"`` (the features at ``as_of``),
        ``"calibration"``, ``"churn_train"`` and ``"churn_test"``, the distinct rows
        of ``frequency``, ``recency``, ``T`` (in days, as
        :class:`~segml.scoring.TrainingTables` documents) and ``monetary_value`` of
        *every* customer, with their ``count``: a CLV likelihood over them equals
        the one over every customer, and ``CustomerScorer.fit_tables`` fits the CLV
        models on them.
    """

    n_customers: int = 0
    sample_fraction: float = 1.0
    max_training_customers: int = MAX_TRAINING_CUSTOMERS
    clv_rows: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def sampled(self) -> bool:
        """Whether the tables hold a sample of the customers."""
        return self.sample_fraction < 1.0

    def describe(self) -> str:
        """One sentence saying what the tables hold (for a run's log)."""
        if not self.sampled:
            return f"all {self.n_customers:,} customers known at {self.as_of.date()}"
        return (
            f"a sample of {len(self.features):,} of the {self.n_customers:,} customers known "
            f"at {self.as_of.date()} (share {self.sample_fraction:.4g}, by a hash of "
            f"customer_id; max_training_customers={self.max_training_customers:,})"
        )


def _schema(windows: list[int], quantity: bool) -> T.StructType:
    """The per-bucket pass's one result: every table's columns, nullable."""
    names = [*feature_columns(windows, quantity=quantity), _LABEL, *_CAL_COLUMNS]
    return T.StructType(
        [
            T.StructField("customer_id", T.StringType(), False),
            T.StructField(_TABLE, T.IntegerType(), False),
            *[T.StructField(name, T.DoubleType(), True) for name in names],
        ]
    )


def _tables_of_bucket(
    *,
    as_of: pd.Timestamp,
    cutoffs: tuple[pd.Timestamp, pd.Timestamp],
    calibration_end: pd.Timestamp,
    holdout_stamp: pd.Timestamp,
    data_end: pd.Timestamp,
    horizon_days: int,
    windows: list[int],
    unit_multiplier: int,
    names: list[str],
):
    """The per-bucket body: the pandas path's functions on one bucket's customers."""

    def tables(rows: pd.DataFrame) -> pd.DataFrame:
        from segml.features import calibration_holdout
        from segml.features._churn import churn_labels
        from segml.scoring import customer_features

        days = rows["timestamp"].dt.normalize()
        parts = []
        dates = ((_FEATURES, as_of), (_CHURN_TRAIN, cutoffs[0]), (_CHURN_TEST, cutoffs[1]))
        for code, cutoff in dates:
            if not (days <= cutoff).any():  # no customer of this bucket is known yet
                continue
            table = customer_features(rows, as_of=cutoff, windows_days=windows)
            if code != _FEATURES:
                labels = churn_labels(
                    rows, as_of=cutoff, horizon_days=horizon_days, data_end=data_end
                )
                table[_LABEL] = labels.reindex(table.index).to_numpy(dtype="float64")
            parts.append(table.reset_index().assign(**{_TABLE: code}))
        if (days <= calibration_end).any():
            log = rows
            if not ((days > calibration_end) & (days <= as_of)).any():
                # calibration_holdout refuses a log without holdout rows, which a bucket
                # may be though the whole log is not. One row of a customer first seen
                # in the holdout (an id longer than every id here) changes no other
                # customer's row, and is not in the result: it is not known at the
                # calibration end.
                newcomer = "~" * (int(rows["customer_id"].str.len().max()) + 1)
                extra = rows.iloc[:1].assign(customer_id=newcomer, timestamp=holdout_stamp)
                log = pd.concat([rows, extra], ignore_index=True)
            split = calibration_holdout(
                log,
                calibration_end=calibration_end,
                observation_end=as_of,
                unit_multiplier=unit_multiplier,
            )
            parts.append(split.reset_index().assign(**{_TABLE: _CAL_HOLDOUT}))
        return pd.concat(parts, ignore_index=True).reindex(columns=["customer_id", _TABLE, *names])

    return tables


def _whole_log_checks(
    *,
    as_of: pd.Timestamp,
    first_stamp: pd.Timestamp,
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    holdout_stamp: pd.Timestamp | None,
    calibration_end: pd.Timestamp,
    horizon_days: int,
    time_unit: str,
) -> None:
    """The pandas path's checks on the whole log, run on a log of its telling days.

    The first moment, the last day and the first holdout moment decide every check of
    :func:`segml.scoring.training_tables` that the per-bucket calls cannot see (too
    short a history, a horizon past the data, an empty holdout); the same functions
    on a log of those days raise the same errors with the same words.
    """
    from segml.features import calibration_holdout
    from segml.features._churn import churn_labels

    check_table_settings(
        churn_horizon_days=horizon_days, time_unit=time_unit, as_of=as_of, first_day=first_day
    )
    days = [first_stamp, last_day] + ([holdout_stamp] if holdout_stamp is not None else [])
    telling = pd.DataFrame(
        {
            "customer_id": ["x"] * len(days),
            "timestamp": pd.to_datetime(days),
            "amount": 1.0,
        }
    )
    calibration_holdout(
        telling,
        calibration_end=calibration_end,
        observation_end=as_of,
        unit_multiplier=DAYS_PER_UNIT[time_unit],
    )
    horizon = pd.Timedelta(days=horizon_days)
    for cutoff in (as_of - 2 * horizon, as_of - horizon):
        churn_labels(telling, as_of=cutoff, horizon_days=horizon_days)


def _customer_index(ids: pd.Series) -> tuple[pd.Index, np.ndarray]:
    """Collected ids as the pandas path's index (sorted, ``str``), and the sort order."""
    values = pd.array(ids.to_numpy(dtype=object), dtype="str")
    order = np.argsort(values, kind="stable")
    return pd.Index(values.take(order), name="customer_id"), order


def _collect_table(result: DataFrame, code: int, columns: list[str]) -> pd.DataFrame:
    table = to_pandas(result.where(F.col(_TABLE) == code).select("customer_id", *columns))
    index, order = _customer_index(table["customer_id"])
    values = {c: table[c].to_numpy(dtype="float64")[order] for c in columns}
    return pd.DataFrame(values, index=index, copy=False)


def _clv_rows(result: DataFrame, code: int, columns: Sequence[str]) -> pd.DataFrame:
    """Distinct (frequency, recency, T, monetary_value) rows of a table with counts."""
    rows = to_pandas(
        result.where(F.col(_TABLE) == code)
        .groupBy(*[F.col(c).alias(name) for c, name in zip(columns, _CLV_ROW_COLUMNS, strict=True)])
        .agg(F.count(F.lit(1)).alias("count"))
    )
    rows = rows.sort_values(list(_CLV_ROW_COLUMNS), ignore_index=True)
    return rows.astype({"count": "int64"})


def training_tables(
    transactions: DataFrame,
    *,
    as_of,
    churn_horizon_days: int = 90,
    clv_holdout_days: int = 180,
    windows_days: Sequence[int] = (90,),
    time_unit: str = "D",
    max_training_customers: int = MAX_TRAINING_CUSTOMERS,
    partitions: int | None = None,
) -> SparkTrainingTables:
    """Build the tables a :class:`~segml.scoring.CustomerScorer` is fitted on, with Spark.

    The Spark twin of :func:`segml.scoring.training_tables`: the same tables, built
    by the same pandas functions on buckets of whole customers (see the module
    docs), equal to the pandas path's on the same log; only per-customer tables
    reach the driver. Pass the result to
    :meth:`~segml.scoring.CustomerScorer.fit_tables`, or use :func:`fit_scorer`.

    Parameters
    ----------
    transactions : pyspark.sql.DataFrame
        Clean transactions (:func:`segml.spark.clean_transactions`):
        ``customer_id``, ``timestamp`` (timestamp or date), ``amount`` and
        optionally ``quantity``.
    as_of : date-like
        Training date; rows after it are not read (the log's first and last days
        are, as on the pandas path).
    churn_horizon_days, clv_holdout_days, windows_days, time_unit
        As in :func:`segml.scoring.training_tables`.
    max_training_customers : int, default 1,000,000
        Above this many customers at ``as_of``, every table holds a sample of about
        this many customers (chosen by a hash of ``customer_id``, the same on every
        run), and ``clv_rows`` the distinct CLV rows of all customers with counts.
        The result says so (:meth:`SparkTrainingTables.describe`).
    partitions : int, optional
        Number of customer buckets (one pandas call each); default
        ``spark.sql.shuffle.partitions``.

    Returns
    -------
    SparkTrainingTables
        A :class:`segml.scoring.TrainingTables`, plus the sampling it used.

    Raises
    ------
    SparkInputError
        Missing columns, wrong types, null values, or no transaction on or before
        ``as_of``.
    segml.scoring.ScorerError, segml.features.FeatureError
        As the pandas path: too short a history for the churn split, a horizon past
        the data, an empty CLV holdout, a bad setting.
    """
    if (
        isinstance(max_training_customers, bool)
        or not isinstance(max_training_customers, int | np.integer)
        or max_training_customers < 1
    ):
        raise SparkInputError(
            f"max_training_customers must be a positive whole number, got "
            f"{max_training_customers!r}."
        )
    try:
        windows = _check_windows(windows_days)
    except ValueError as exc:
        raise SparkInputError(str(exc)) from None
    as_of_day = _as_day(as_of)
    as_of = pd.Timestamp(as_of_day)
    horizon = pd.Timedelta(days=int(churn_horizon_days))
    calibration_end = as_of - pd.Timedelta(days=int(clv_holdout_days))
    frame = canonical_transactions(transactions)
    buckets = default_buckets(frame, partitions)
    day = F.to_date("timestamp")
    in_holdout = (day > F.lit(calibration_end.date())) & (day <= F.lit(as_of_day))
    wall_clock = F.col("timestamp").cast("timestamp_ntz")  # what pandas reads
    # Moments, not days: the pandas checks' messages show the first timestamp.
    summary = check_values(
        frame,
        as_of_day,
        holdout_stamp=F.min(F.when(in_holdout, wall_clock)),
        first_stamp=F.min(wall_clock),
    )
    first_day, last_day = pd.Timestamp(summary["first_day"]), pd.Timestamp(summary["last_day"])
    holdout_stamp = summary["holdout_stamp"]
    holdout_stamp = None if holdout_stamp is None else pd.Timestamp(holdout_stamp)
    _whole_log_checks(
        as_of=as_of,
        first_stamp=pd.Timestamp(summary["first_stamp"]),
        first_day=first_day,
        last_day=last_day,
        holdout_stamp=holdout_stamp,
        calibration_end=calibration_end,
        horizon_days=churn_horizon_days,
        time_unit=time_unit,
    )

    quantity = "quantity" in frame.columns
    schema = _schema(windows, quantity)
    names = [f.name for f in schema.fields[2:]]
    body = _tables_of_bucket(
        as_of=as_of,
        cutoffs=(as_of - 2 * horizon, as_of - horizon),
        calibration_end=calibration_end,
        holdout_stamp=holdout_stamp,
        data_end=last_day,
        horizon_days=int(churn_horizon_days),
        windows=windows,
        unit_multiplier=DAYS_PER_UNIT[time_unit],
        names=names,
    )
    rows = timestamps_as_written(frame).where(day <= F.lit(as_of_day))
    result = apply_per_bucket(rows, body, schema, buckets=buckets)
    # Kept: counted, then collected table by table (and aggregated when sampled).
    result = result.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        n_customers = result.where(F.col(_TABLE) == _FEATURES).count()
        fraction = min(1.0, max_training_customers / n_customers)
        clv_rows: dict[str, pd.DataFrame] = {}
        collected = result
        if fraction < 1.0:
            rfm = list(_CLV_ROW_COLUMNS)
            # The keys and units of TrainingTables.clv_rows: every table in days (the
            # calibration columns are in the CLV unit, like cal_holdout).
            calibration = _clv_rows(result, _CAL_HOLDOUT, _CAL_COLUMNS[:4])
            days = DAYS_PER_UNIT[time_unit]
            calibration = calibration.assign(
                recency=calibration["recency"] * days, T=calibration["T"] * days
            )
            clv_rows = {
                "as_of": _clv_rows(result, _FEATURES, rfm),
                "calibration": calibration,
                "churn_train": _clv_rows(result, _CHURN_TRAIN, rfm),
                "churn_test": _clv_rows(result, _CHURN_TEST, rfm),
            }
            slot = F.pmod(F.xxhash64("customer_id", F.lit(_SAMPLE_SEED)), F.lit(_SAMPLE_SLOTS))
            # At least one slot: a tiny fraction must not round to an empty sample.
            slots = max(1, math.ceil(fraction * _SAMPLE_SLOTS))
            collected = result.where(slot < F.lit(slots))
        feature_names = feature_columns(windows, quantity=quantity)
        features = _collect_table(collected, _FEATURES, feature_names)
        churn = {}
        for code in (_CHURN_TRAIN, _CHURN_TEST):
            table = _collect_table(collected, code, [*feature_names, _LABEL])
            labels = table.pop(_LABEL).astype("int64").rename(_LABEL)
            churn[code] = (table, labels)
        cal_holdout = _collect_table(collected, _CAL_HOLDOUT, list(_CAL_COLUMNS))
    finally:
        result.unpersist()
    return SparkTrainingTables(
        as_of=as_of,
        first_day=first_day,
        features=features,
        cal_holdout=cal_holdout,
        churn_train_features=churn[_CHURN_TRAIN][0],
        churn_train_labels=churn[_CHURN_TRAIN][1],
        churn_test_features=churn[_CHURN_TEST][0],
        churn_test_labels=churn[_CHURN_TEST][1],
        churn_horizon_days=int(churn_horizon_days),
        clv_holdout_days=int(clv_holdout_days),
        windows_days=tuple(windows),
        time_unit=time_unit,
        n_customers=int(n_customers),
        sample_fraction=float(fraction),
        max_training_customers=int(max_training_customers),
        clv_rows=clv_rows,
    )


def fit_scorer(
    scorer: CustomerScorer,
    transactions: DataFrame,
    *,
    as_of,
    max_training_customers: int = MAX_TRAINING_CUSTOMERS,
    partitions: int | None = None,
    on_step: Callable[[str, float], None] | None = None,
    diagnostics: bool = False,
) -> tuple[CustomerScorer, SparkTrainingTables]:
    """Fit a :class:`~segml.scoring.CustomerScorer` on a Spark log: the Spark ``fit``.

    :func:`training_tables` with the scorer's settings, then
    :meth:`~segml.scoring.CustomerScorer.fit_tables`: the same models, fitted by the
    same code as :meth:`CustomerScorer.fit <segml.scoring.CustomerScorer.fit>` on
    the same (or, above ``max_training_customers``, sampled) tables. Building the
    tables is timed as the step ``"features"``, as in ``fit``.

    Parameters
    ----------
    scorer : CustomerScorer
        Unfitted; fitted in place and returned.
    transactions : pyspark.sql.DataFrame
        Clean transactions (:func:`segml.spark.clean_transactions`).
    as_of : date-like
        Training date.
    max_training_customers, partitions
        As in :func:`training_tables`.
    on_step, diagnostics
        As in :meth:`CustomerScorer.fit <segml.scoring.CustomerScorer.fit>`.

    Returns
    -------
    scorer : CustomerScorer
        Fitted.
    tables : SparkTrainingTables
        What it was fitted on (say :meth:`SparkTrainingTables.describe` in a run).
    """
    from segml.models.clv import CLVModel

    template = scorer.clv if scorer.clv is not None else CLVModel()
    if template.engine != "segml":
        # Above max_training_customers the CLV models are fitted on every customer's
        # distinct rows with counts (sample_weight), which lifetimes' fitters cannot
        # take: refused before the Spark pass, not after it.
        raise ValueError(
            f"The Spark engine fits CLV with clv.engine='segml' only, got "
            f"engine={template.engine!r}: remove clv.engine from the config (segml's "
            "fitter equals lifetimes' to 1e-6) or train with the pandas engine."
        )
    started = time.perf_counter()
    tables = training_tables(
        transactions,
        as_of=as_of,
        churn_horizon_days=scorer.churn_horizon_days,
        clv_holdout_days=scorer.clv_holdout_days,
        windows_days=scorer.windows_days,
        time_unit=(scorer.clv if scorer.clv is not None else CLVModel()).time_unit,
        max_training_customers=max_training_customers,
        partitions=partitions,
    )
    seconds = time.perf_counter() - started
    if on_step is not None:
        on_step("features", seconds)
    scorer.fit_tables(
        tables, on_step=on_step, diagnostics=diagnostics, _timings={"features": seconds}
    )
    return scorer, tables


def read_training_log(
    spark,
    path,
    *,
    quantity: str | None = "quantity",
    on_invalid: str = "drop",
    sep: str | None = None,
    encoding: str | None = None,
    sheet_name: str | int | None = None,
    **cleaning,
):
    """Read and clean a transaction file on Spark, as ``segml score --engine spark`` does.

    The file is read as :func:`segml.spark.score_file` reads it (``segml.io``'s
    separator and encoding decision) and cleaned by
    :func:`segml.spark.clean_transactions` with the loader's options (the
    ``transactions`` section of a run config: ``customer_id``, ``timestamp``,
    ``amount``, ``timestamp_format``, ``timezone``, ``returns``, ``zero_amounts``,
    ``drop_duplicates``; ``decimal`` and ``dayfirst`` too). The engine of
    ``segml train --engine spark``.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    path : path-like
        A ``.csv`` (``.csv.gz``, ``.tsv``, ``.txt``), ``.parquet`` or ``.xlsx`` file.
    quantity : str or None, default "quantity"
        The file's quantity column, kept (as a double) when present.
    on_invalid, sep, encoding, sheet_name, **cleaning
        As in :func:`segml.load_transactions`. ``currency``, ``currency_column`` and
        ``order_id`` are refused (pandas engine only).

    Returns
    -------
    transactions : pyspark.sql.DataFrame
        ``customer_id``, ``timestamp``, ``amount`` (and ``quantity``), and each row's
        place in the file: the input of :func:`training_tables`. Cached
        (``MEMORY_AND_DISK``); its ``unpersist()`` frees it.
    report : segml.transactions.DataQualityReport
        As the pandas loader's, with the reading settings.
    """
    from segml.spark._clean import _clean, kept_rows
    from segml.spark._score import _SPARK_CLEANING, _add_read_info, _read_raw

    options = {**_SPARK_CLEANING, **cleaning}
    raw, read_info = _read_raw(spark, path, sep=sep, encoding=encoding, sheet_name=sheet_name)
    labelled, _, report = _clean(raw, **options, on_invalid=on_invalid, source=str(path))
    _add_read_info(report, read_info)
    # With each row's place in the file, through the cleaning's shuffles: the tables
    # then add each customer's amounts in the file's order, as the pandas engine does.
    # The kept rows are cached on their own and the labelled rows freed, so that the
    # caller's unpersist() of what it got frees the log (Spark uncaches exact plans).
    kept = kept_rows(labelled, quantity, ROW).persist(StorageLevel.MEMORY_AND_DISK)
    kept.count()
    labelled.unpersist()
    return kept, report
