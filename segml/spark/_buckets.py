"""Run segml's own pandas functions on Spark, one bucket of whole customers per call.

Customers are put in buckets by a hash of their id (``xxhash64``, Spark's own,
the same on every executor and every run), the log is shuffled once by bucket, and
``groupBy(bucket).applyInPandas`` hands each bucket's rows to a pandas function:
every call sees all the rows of its customers and no others, so a per-customer
function (features, labels, calibration/holdout summaries) gives on a bucket the
rows it gives on the whole log. Both engines then share one definition.

Inside a bucket the rows are put back in the order Spark read them before the
pandas function runs: ``monotonically_increasing_id``, which for one file is the
file's order, or the column :data:`ROW` when the log carries it (a log cleaned by
:func:`segml.spark.read_training_log` or ``segml.spark.score_file`` keeps each
row's place in the file through the cleaning's shuffles). Per-customer sums then
add the same numbers in the same order as the pandas path on the same file: money
features are bitwise equal, not only equal to rounding.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

__all__ = ["BUCKET", "ROW", "apply_per_bucket", "bucket_of", "quiet_pandas_interop", "to_pandas"]

#: Name of the bucket column (private to these functions, dropped before pandas).
BUCKET = "_segml_bucket"
#: Name of the read-order column.
ROW = "_segml_row"
# A seed of its own, so that buckets are not Spark's shuffle partitions of
# customer_id (hash partitioning by the id uses murmur3, not xxhash64).
_BUCKET_SEED = 20_240_630


@contextmanager
def quiet_pandas_interop():
    """Silence PySpark 4.3's notices about pandas 3, and only those.

    PySpark warns that pandas >= 3 is not fully supported (FutureWarning) when a
    pandas function or conversion is set up, and passes pandas 3's deprecated
    ``copy=`` keyword in ``toPandas`` (DeprecationWarning). segml's tests check the
    converted values against the pandas path, so neither is actionable for a user.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        warnings.filterwarnings(
            "ignore", message="The copy keyword is deprecated", category=DeprecationWarning
        )
        yield


def bucket_of(customer_id: Column, buckets: int) -> Column:
    """The bucket (0 .. buckets - 1) of each customer id: a hash, the same everywhere."""
    return F.pmod(F.xxhash64(customer_id, F.lit(_BUCKET_SEED)), F.lit(buckets)).cast("int")


def apply_per_bucket(
    frame: DataFrame,
    function: Callable[[pd.DataFrame], pd.DataFrame],
    schema: T.StructType,
    *,
    buckets: int,
) -> DataFrame:
    """``function`` applied to the rows of each bucket of customers, results stacked.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        Rows with a string ``customer_id``; timestamps should be ``TIMESTAMP_NTZ``
        (pandas gets them as naive datetimes, as written).
    function : callable
        pandas DataFrame (one bucket's rows, in read order, with ``frame``'s
        columns) to a pandas DataFrame of ``schema``'s columns. It must not raise
        for a bucket that lacks what the whole log has (e.g. holdout rows).
    schema : pyspark.sql.types.StructType
        The result's columns.
    buckets : int
        Number of buckets; each is one call of ``function`` (and one shuffle
        partition).

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy.
    """
    columns = [c for c in frame.columns if c != ROW]
    # A log cleaned by segml.spark.read_training_log carries the row's place in the
    # file (the cleaning shuffles); any other log is taken in the order Spark reads it.
    order = F.col(ROW) if ROW in frame.columns else F.monotonically_increasing_id()
    rows = frame.select(*[F.col(f"`{c}`") for c in columns], order.alias(ROW)).withColumn(
        BUCKET, bucket_of(F.col("customer_id"), buckets)
    )
    rows = rows.repartition(buckets, BUCKET)  # groupBy(BUCKET) then needs no other shuffle

    def call(bucket_rows: pd.DataFrame) -> pd.DataFrame:
        order = np.argsort(bucket_rows[ROW].to_numpy(), kind="stable")
        in_read_order = bucket_rows.iloc[order].reset_index(drop=True)
        result = function(in_read_order[columns])
        # PySpark 4.3 cannot convert pandas 3's Arrow-backed strings when they are
        # chunked (as pd.concat leaves them): hand it plain Python strings.
        for name in result.columns:
            if pd.api.types.is_string_dtype(result[name].dtype):
                result[name] = result[name].to_numpy(dtype=object)
        return result

    with quiet_pandas_interop():
        return rows.groupBy(BUCKET).applyInPandas(call, schema)


def to_pandas(frame: DataFrame) -> pd.DataFrame:
    """Collect a (per-customer, small) Spark result to the driver as pandas."""
    with quiet_pandas_interop():
        return frame.toPandas()
