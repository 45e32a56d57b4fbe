"""Score customers on Spark with the registered (or exported) segml scoring model.

Data flow of :func:`score`::

    model URI
      -> segml.tracking._load.load_scoring_model   checked, loaded with installed code
      -> trusted_pyfunc_copy             the checked scorer, re-exported by this segml
    transactions (Spark DataFrame)
      -> segml.spark.customer_features   the scorer's features, computed with Spark
      -> repartition(n)                  every core gets customers to score
      -> mlflow.pyfunc.spark_udf         the copy's pyfunc model, called with a struct
                                         of customer_id + features (matched by NAME)
      -> customer_id + OUTPUT_COLUMNS    one row per customer

``mlflow.pyfunc.spark_udf`` builds the model by executing the entry script inside
the folder it is given, in every Python worker that scores. Handing it the user's
folder would run whatever that folder's ``_pyfunc_entry.py`` holds, after segml's
checks had passed (they never read the script). So Spark only ever gets a copy
written by the installed segml (:func:`segml.tracking._model.trusted_pyfunc_copy`):
segml's own entry script and the scorer that
:func:`segml.tracking._load.load_scoring_model` checked and built without running
anything from the folder.

The scorer's feature columns are the contract (the recent windows are read from the
``orders_last_{w}d`` names), and the features are passed as
``F.struct(customer_id, *features)``. A struct reaches the model as a pandas
DataFrame with named columns; plain positional columns would be mapped by position,
and a different column order would silently give wrong scores.
"""

from __future__ import annotations

import atexit
import codecs
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segml.scoring import OUTPUT_COLUMNS, STRING_OUTPUT_COLUMNS
from segml.spark._buckets import ROW
from segml.spark._clean import _clean, _quiet_pyspark_pandas_check, kept_rows
from segml.spark._features import (
    SparkInputError,
    _as_day,
    customer_features,
    windows_of,
)
from segml.transactions import DataQualityReport, TransactionsError

__all__ = [
    "OUTPUT_SCHEMA",
    "output_schema",
    "SparkScoreResult",
    "model_feature_columns",
    "predict",
    "read_transactions",
    "score",
    "score_file",
]


_STRING_OUTPUTS = STRING_OUTPUT_COLUMNS


def _output_type(name: str) -> T.DataType:
    if name in _STRING_OUTPUTS:
        return T.StringType()
    if name == "segment":
        return T.LongType()
    return T.DoubleType()


def output_schema(columns) -> T.StructType:
    """Spark schema of scores: ``customer_id`` and the given model outputs, typed as
    the model's output signature (strings and ISO dates, ``segment`` long, the rest
    double)."""
    return T.StructType(
        [T.StructField("customer_id", T.StringType())]
        + [T.StructField(name, _output_type(name)) for name in columns]
    )


#: Spark schema of the default scorer's output (:data:`segml.scoring.OUTPUT_COLUMNS`);
#: a model's own columns are its ``output_columns_`` (:func:`output_schema`).
OUTPUT_SCHEMA = output_schema(OUTPUT_COLUMNS)


def model_feature_columns(model_uri: str) -> list[str]:
    """The feature columns a segml scoring model takes, from its input signature.

    Parameters
    ----------
    model_uri : str
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/...`` or a local
        model folder.

    Returns
    -------
    list of str
        Input names without ``customer_id``, in signature order.
    """
    import mlflow

    try:
        info = mlflow.models.get_model_info(model_uri)
    except Exception as exc:  # MLflow raises several types for a missing model
        raise SparkInputError(f"Cannot load the model {model_uri!r}: {exc}") from exc
    signature = info.signature
    names = signature.inputs.input_names() if signature is not None else []
    if "customer_id" not in names or not windows_of(names):
        raise SparkInputError(
            f"The model {model_uri!r} is not a segml scoring model: its input signature "
            f"is {names or 'missing'}, expected customer_id and the scorer's features "
            "(export it with segml.tracking.export_model or train with segml train)."
        )
    return [name for name in names if name != "customer_id"]


def score(
    transactions: DataFrame,
    model_uri: str,
    *,
    as_of,
    partitions: int | None = None,
    check: bool = True,
) -> DataFrame:
    """Score every customer of a Spark transaction log with a segml scoring model.

    The model is checked and loaded by :func:`segml.tracking._load.load_scoring_model`
    (nothing from its folder is imported, executed or unpickled), features are
    computed with Spark (:func:`segml.spark.customer_features`, the same definitions
    and numbers as the pandas path), then the model predicts through
    ``mlflow.pyfunc.spark_udf(..., env_manager="local")`` in the Python workers of
    the cluster, from a copy of the checked model written by the installed segml
    (see the module docstring). Every row equals the pyfunc model's prediction for
    that customer's features, and :meth:`segml.scoring.CustomerScorer.score` on the
    same log up to the rounding of money sums (see Notes).

    Parameters
    ----------
    transactions : pyspark.sql.DataFrame
        Clean transactions: ``customer_id``, ``timestamp`` (timestamp or date),
        ``amount`` and, if the model uses quantity features, ``quantity``. Column
        order does not matter. Rows are not cleaned here (nulls are refused): clean
        a raw log with :func:`segml.spark.clean_transactions` first, as
        :func:`score_file` does, to score the customers the pandas path scores.
    model_uri : str
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/model`` or a
        local model folder (:func:`segml.tracking.export_model`). The current MLflow
        tracking URI resolves ``models:/`` and ``runs:/`` URIs.
    as_of : date-like
        Score customers as they were at the end of this day.
    partitions : int, optional
        Partitions the customers are spread over for prediction; default
        ``spark.default.parallelism`` (the number of cores in ``local[n]``), so
        every core predicts.
    check : bool, default True
        Check the input for nulls and an ``as_of`` before the data first (one pass).

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy; columns ``customer_id`` and the model's output columns (its
        ``output_columns_``) typed by :func:`output_schema`, one row per customer
        known at ``as_of``, unordered.

    Raises
    ------
    SparkInputError
        The model cannot be loaded or is not a segml scoring model (or was altered:
        the message names the file); the input lacks columns the model needs
        (``quantity`` for a model trained with quantities); or the input fails the
        checks of :func:`segml.spark.customer_features`.
    segml.tracking.TrackingError
        The store of a ``models:/`` URI cannot be read (missing SQLite file, server
        down).

    Notes
    -----
    The model's Python dependencies must be installed on every worker
    (``env_manager="local"`` uses the workers' environment, no virtualenv is built).
    The copy handed to Spark is written to a temporary folder that is removed when
    this Python process exits: the returned DataFrame is lazy, and Spark Connect
    workers read the folder only when a job runs.

    Counts and day features are exactly those of the pandas path; sums of money are
    added in another order and may differ in the last bit (about 1e-15 relative).
    ``clv``, ``p_alive`` and ``expected_purchases`` inherit that; the churn model's
    gradient boosting bins features at fixed edges, so a customer whose spend sits
    exactly on an edge can land in the neighbouring bin. On CDNOW master (23,502
    customers) that changes ``churn_probability`` for 0 to 6 customers depending on
    ``as_of`` (one ``risk_band`` at most), and only for customers whose features
    differ in the last bit; customers with bitwise-equal features score identically.

    See Also
    --------
    score_file : the same, from a file to a file, for ``segml score --engine spark``.
    """
    if not isinstance(transactions, DataFrame):
        raise SparkInputError(
            f"transactions must be a Spark DataFrame, got {type(transactions).__name__}; "
            "for pandas use segml.CustomerScorer.score or the pyfunc model."
        )
    scorer = _checked_scorer(model_uri)
    return _score(
        transactions,
        scorer,
        None,
        shown_uri=str(model_uri),
        as_of=as_of,
        partitions=partitions,
        check=check,
    )


def _score(
    transactions: DataFrame,
    scorer,
    workdir: Path | None,
    *,
    shown_uri: str,
    as_of,
    partitions: int | None,
    check: bool,
) -> DataFrame:
    """:func:`score` with a checked scorer (``workdir``: see :func:`_predict`)."""
    needed = list(scorer.feature_columns_)
    uses_quantity = any(name.startswith("quantity") for name in needed)
    if uses_quantity and "quantity" not in transactions.columns:
        raise SparkInputError(
            f"The model {shown_uri!r} uses quantity features (quantity_total, ...) but the "
            f"transactions have no 'quantity' column; found {transactions.columns}."
        )
    if not uses_quantity and "quantity" in transactions.columns:
        transactions = transactions.drop("quantity")  # unused: not read, not checked
    features = customer_features(
        transactions, as_of=as_of, windows_days=windows_of(needed), check=check
    )
    missing = [name for name in needed if name not in features.columns]
    if missing:
        raise SparkInputError(
            f"The model {shown_uri!r} needs feature(s) {missing} that segml's feature code "
            "does not build; the model was trained with another version of segml."
        )
    return _predict(
        features,
        scorer,
        workdir,
        feature_columns=needed,
        partitions=partitions,
        as_of=_as_day(as_of).isoformat(),
    )


def predict(
    features: DataFrame,
    model_uri: str,
    *,
    feature_columns: list[str] | None = None,
    partitions: int | None = None,
    as_of=None,
) -> DataFrame:
    """Score customers from a Spark DataFrame of their features with the pyfunc model.

    The model is checked and loaded as in :func:`score` (nothing from its folder
    runs), and predicts in the Python workers through
    ``mlflow.pyfunc.spark_udf(spark, copy, env_manager="local",
    result_type=OUTPUT_SCHEMA)`` on a copy written by the installed segml, called
    with ``F.struct(customer_id, *features)``: the model receives named columns, so
    the column order of ``features`` does not matter.

    Parameters
    ----------
    features : pyspark.sql.DataFrame
        ``customer_id`` and the model's feature columns (as built by
        :func:`segml.spark.customer_features`), in any order; numeric columns are
        cast to double. Other columns are ignored.
    model_uri : str
        As in :func:`score`.
    feature_columns : list of str, optional
        The model's features; default those of the loaded model.
    partitions : int, optional
        Partitions the customers are spread over; default
        ``spark.default.parallelism``, so every core predicts.
    as_of : date-like, optional
        The day the features were built at: the model's next-purchase dates are
        counted from it (without it they are missing), as the pyfunc's ``as_of``
        inference parameter.

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy; ``customer_id`` and the model's output columns (its
        ``output_columns_``; :data:`segml.scoring.OUTPUT_COLUMNS` for older models),
        typed by :func:`output_schema`.

    Raises
    ------
    SparkInputError
        The model cannot be loaded or is not a segml scoring model, or ``features``
        lacks columns it needs.
    """
    as_of_text = None if as_of is None else _as_day(as_of).isoformat()
    scorer = _checked_scorer(model_uri)
    return _predict(
        features,
        scorer,
        None,
        feature_columns=feature_columns,
        partitions=partitions,
        as_of=as_of_text,
    )


def _predict(
    features: DataFrame,
    scorer,
    workdir: Path | None,
    *,
    feature_columns: list[str] | None,
    partitions: int | None,
    as_of: str | None = None,
) -> DataFrame:
    """:func:`predict` with a checked scorer (``as_of``: ``YYYY-MM-DD`` or None).

    Spark's copy of the scorer is written into ``workdir``, which the caller removes
    once the job has run; None: a folder removed when this process exits.
    """
    import mlflow

    from segml.tracking._model import output_columns, trusted_pyfunc_copy

    needed = list(feature_columns) if feature_columns is not None else scorer.feature_columns_
    missing = [name for name in ["customer_id", *needed] if name not in features.columns]
    if missing:
        raise SparkInputError(
            f"features lack {len(missing)} column(s) the model needs: {missing}; build them "
            "with segml.spark.customer_features (the model's windows_days)."
        )
    spark = features.sparkSession
    inputs = features.select(
        F.col("customer_id").cast("string").alias("customer_id"),
        *[F.col(name).cast("double").alias(name) for name in needed],
    ).repartition(partitions or _parallelism(spark))
    if workdir is None:
        workdir = _folder_until_exit()
    # A fresh name per call: Spark Connect workers cache a loaded model by its path.
    trusted = trusted_pyfunc_copy(scorer, workdir / f"model-{uuid.uuid4().hex}")
    schema = output_schema(output_columns(scorer))
    with _quiet_pyspark_pandas_check():
        model = mlflow.pyfunc.spark_udf(
            spark,
            str(trusted),
            env_manager="local",
            result_type=schema,
            # The model's next-purchase dates are counted from the features' day.
            params=None if as_of is None else {"as_of": as_of},
        )
        # By name, never by position: see the module docstring.
        scores = model(F.struct(*[F.col(name) for name in ["customer_id", *needed]]))
    return inputs.select(scores.alias("scores")).select(
        *[_missing_as_null(F.col(f"scores.{field.name}"), field.name) for field in schema.fields]
    )


# Text outputs that are ISO dates or missing (a customer without a next-purchase date).
_DATE_OUTPUTS = ("next_purchase_date", "next_purchase_low", "next_purchase_high")
# What MLflow's spark_udf makes of a missing value in a string result: it converts the
# pandas column with astype(str), so NaN arrives as the text "nan" (None as "None").
_MISSING_TEXT = ("nan", "None", "<NA>", "NaT")


def _missing_as_null(column, name: str):
    """A score column; the date columns with MLflow's text for "missing" back to null."""
    if name in _DATE_OUTPUTS:  # an ISO date is never one of those words
        column = F.when(~column.isin(*_MISSING_TEXT), column)
    return column.alias(name)


def _checked_scorer(model_uri: str):
    """The model's scorer, checked and built by the installed segml, running nothing of it.

    Folders and ``models:/`` URIs go through the batch scorer's loader (the same
    checks of the tracking URI and of the folder); a ``runs:/`` URI is downloaded
    first (files only) and checked as a folder.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from segml.batch._score import _load_model
    from segml.tracking._load import ModelLoadError

    text = str(model_uri)
    try:
        if not text.startswith("runs:/"):
            return _load_model(text, mlflow.get_tracking_uri()).scorer
        with tempfile.TemporaryDirectory(prefix="segml-model-") as download:
            # The scorer is in memory before the download is deleted.
            local = mlflow.artifacts.download_artifacts(artifact_uri=text, dst_path=download)
            return _load_model(local, None).scorer
    except (ModelLoadError, MlflowException) as exc:
        raise SparkInputError(f"Cannot load the model {text!r}: {exc}") from exc


def _folder_until_exit() -> Path:
    """A temporary folder for Spark's model copy, removed when this process exits.

    :func:`score` and :func:`predict` return lazy DataFrames: the job that reads the
    copy (on Spark Connect, workers load it from this path when the job runs) may
    come long after they return, so the folder outlives them (as MLflow's own
    download folders do).
    """
    folder = Path(tempfile.mkdtemp(prefix="segml-spark-model-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _parallelism(spark: SparkSession) -> int:
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        return int(spark.conf.get("spark.sql.shuffle.partitions"))


_FORMATS = {".parquet": "parquet", ".csv": "csv"}


def _format_of(path: Path, what: str) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SparkInputError(
            f"Cannot tell the format of the {what} {str(path)!r} from its extension; use "
            f"one of {sorted(_FORMATS)}."
        )
    return fmt


def _read_raw(
    spark: SparkSession,
    path: str | os.PathLike,
    *,
    sep: str | None = None,
    encoding: str | None = None,
    sheet_name: str | int | None = None,
) -> tuple[DataFrame, dict]:
    """A transaction file as the loader reads it, unmapped; and how it was read.

    The reading decisions are :func:`segml.io.text_options`' (those of
    :func:`segml.io.read_table`): the separator (comma, semicolon, tab; ``.tsv`` tab)
    and the encoding (UTF-8 with or without a byte-order mark, else Windows-1252 with
    a warning) are sniffed unless given. Text files are read by Spark's CSV reader,
    every column as text; Parquet files or folders by Spark's Parquet reader, with
    their types. Two kinds of file Spark cannot read are read by
    :func:`segml.io.read_table` on the driver and handed to Spark with
    ``spark.createDataFrame``, so they must fit in the driver's memory: text
    separated by runs of spaces (``r"\\s+"``, as lifetimes' ``CDNOW_master.txt``) and
    ``.xlsx`` workbooks (first sheet unless ``sheet_name``), and text in an
    encoding Spark's reader does not take (it takes UTF-8, UTF-16, UTF-32, ASCII
    and ISO-8859-1; Windows-1252 is read as ISO-8859-1 and translated on Spark).

    Returns the DataFrame and ``info``: ``source``, ``format``, ``sep``,
    ``encoding``, ``sheet_name`` and ``warnings`` (a list of str, e.g. a file read
    as Windows-1252), as :func:`segml.io.read_table` returns it.
    """
    from segml.io import ReadError, read_table, text_options

    path = Path(path)
    try:
        decided = text_options(path, sep=sep, encoding=encoding, whole_file=True)
    except ReadError as exc:
        if "Cannot tell the format" not in str(exc):
            raise SparkInputError(str(exc)) from None
        raise SparkInputError(
            f"Cannot tell the format of the transactions {str(path)!r} from its extension; "
            "use .csv, .csv.gz, .tsv, .txt, .xlsx or .parquet (a file or a folder)."
        ) from None
    except IsADirectoryError:
        raise SparkInputError(
            f"{str(path)!r} is a folder; only Parquet datasets are read as folders."
        ) from None
    except FileNotFoundError:
        decided = None
    if decided is None or not path.exists():
        raise SparkInputError(f"The transactions file {str(path)!r} does not exist.")
    info = {"source": str(path), "sheet_name": None, **decided}
    try:
        codec = codecs.lookup(decided["encoding"] or "utf-8").name
    except LookupError:
        raise SparkInputError(
            f"Unknown encoding {decided['encoding']!r}; pass a codec name such as "
            "'utf-8', 'cp1252' or 'latin-1'."
        ) from None
    on_driver = codec not in _SPARK_CHARSETS and codec != "cp1252"
    if decided["format"] == "xlsx" or decided["sep"] == r"\s+" or on_driver:
        try:
            frame, info = read_table(path, sep=sep, encoding=encoding, sheet_name=sheet_name)
        except ReadError as exc:
            raise SparkInputError(str(exc)) from None
        return _driver_frame(spark, frame), info
    try:
        if decided["format"] == "parquet":
            return spark.read.parquet(str(path)), info
        # Text, empty fields missing, "" inside quotes a quote: as pandas.read_csv.
        frame = spark.read.csv(
            str(path),
            header=True,
            inferSchema=False,
            sep=decided["sep"],
            encoding=_SPARK_CHARSETS.get(codec, "iso-8859-1"),
            escape='"',
        )
    except AnalysisException as exc:
        _raise_if_nanoseconds(exc, path)
        raise
    if codec == "cp1252":
        frame = _latin1_as_cp1252(frame)
    first = frame.columns[0] if frame.columns else ""
    if first.startswith("\ufeff"):  # a UTF-8 byte-order mark is not part of the name
        frame = frame.withColumnRenamed(first, first[1:])
    return frame, info


# Spark's CSV reader takes only these charsets (Python's codec name: Spark's).
_SPARK_CHARSETS = {
    "utf-8": "utf-8",
    "iso8859-1": "iso-8859-1",
    "ascii": "us-ascii",
    "utf-16": "utf-16",
    "utf-16-be": "utf-16be",
    "utf-16-le": "utf-16le",
    "utf-32": "utf-32",
}
# Windows-1252 is ISO-8859-1 except bytes 0x80-0x9F, which Latin-1 reads as control
# characters U+0080-U+009F: read as Latin-1 (one byte, one character), then translate
# those into the characters cp1252 gives them (the 5 bytes it leaves undefined stay).
_C1 = "".join(map(chr, range(0x80, 0xA0)))
_CP1252_C1 = "".join(
    c1 if cp == "\ufffd" else cp
    for c1, cp in zip(_C1, bytes(range(0x80, 0xA0)).decode("cp1252", errors="replace"), strict=True)
)


def _latin1_as_cp1252(frame: DataFrame) -> DataFrame:
    """A CSV read as ISO-8859-1, with text as Windows-1252 reads it (columns, names)."""
    names = [name.translate(str.maketrans(_C1, _CP1252_C1)) for name in frame.columns]
    return frame.select(
        *[
            F.translate(F.col(f"`{name}`"), _C1, _CP1252_C1).alias(new)
            for name, new in zip(frame.columns, names, strict=True)
        ]
    )


def _driver_frame(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    """A pandas frame read on the driver as a Spark DataFrame, types kept, NaN as null."""
    spark_types = {"i": T.LongType(), "u": T.LongType(), "f": T.DoubleType()}
    spark_types |= {"b": T.BooleanType(), "M": T.TimestampType()}
    schema = T.StructType(
        [
            T.StructField(str(name), spark_types.get(dtype.kind, T.StringType()), True)
            for name, dtype in frame.dtypes.items()
        ]
    )
    text = [name for name, dtype in frame.dtypes.items() if dtype.kind not in spark_types]
    values = frame.astype({name: "string" for name in text}).astype(object)
    values = values.where(frame.notna(), None)
    return spark.createDataFrame(values.to_numpy().tolist(), schema)


def _raise_if_nanoseconds(exc: Exception, path) -> None:
    """Explain Spark's refusal of nanosecond Parquet timestamps (what pandas writes)."""
    if "NANOS" in str(exc):
        raise SparkInputError(
            f"{str(path)!r} stores timestamps in nanoseconds, which Spark cannot read "
            "(pandas writes them by default). Write it with microseconds, e.g. "
            "df.to_parquet(path, coerce_timestamps='us', allow_truncated_timestamps=True)."
        ) from None


def read_transactions(
    spark: SparkSession,
    path: str | os.PathLike,
    *,
    customer_id: str = "customer_id",
    timestamp: str = "timestamp",
    amount: str = "amount",
    quantity: str | None = "quantity",
    sep: str | None = None,
    encoding: str | None = None,
    sheet_name: str | int | None = None,
) -> DataFrame:
    """Read a transaction log with Spark and map its columns to segml's names.

    The file is read as :func:`score_file` reads it, with the decisions of
    :func:`segml.io.read_table`: ``.csv``, ``.csv.gz``, ``.tsv`` and ``.txt`` as
    text (separator and encoding sniffed unless ``sep`` / ``encoding`` are given),
    ``.parquet`` and ``.pq`` as Parquet; ``.xlsx`` (``sheet_name``) and text
    separated by runs of spaces are read on the driver (files that fit its memory).
    Text columns are read as text (ids keep their leading zeros), then ``amount``
    and ``quantity`` become doubles and ``timestamp`` a timestamp; values that do not
    parse become null, which :func:`segml.spark.customer_features` reports. Parquet
    and Excel columns keep their types. ``quantity`` is used when the file has that
    column. No row is cleaned or dropped: :func:`score_file` reads the file unmapped
    and cleans it with :func:`segml.spark.clean_transactions` instead.
    """
    path = Path(path)
    frame, info = _read_raw(spark, path, sep=sep, encoding=encoding, sheet_name=sheet_name)
    # Text columns are parsed here; typed ones (Parquet, Excel) keep their types.
    types = {} if info["format"] == "parquet" else dict(frame.dtypes)
    mapping = {customer_id: "customer_id", timestamp: "timestamp", amount: "amount"}
    missing = [name for name in mapping if name not in frame.columns]
    if missing:
        raise SparkInputError(
            f"{str(path)!r} lacks the column(s) {missing}; found {frame.columns}. Name the "
            "columns with customer_id=..., timestamp=..., amount=... (segml score: "
            "--customer-id, --timestamp, --amount)."
        )
    if quantity is not None and quantity in frame.columns:
        mapping[quantity] = "quantity"
    columns = [F.col(f"`{source}`").alias(target) for source, target in mapping.items()]
    frame = frame.select(*columns)
    texts = {target for source, target in mapping.items() if types.get(source) == "string"}
    return frame.select(
        "customer_id",
        F.try_to_timestamp(F.col("timestamp")).alias("timestamp")
        if "timestamp" in texts
        else F.col("timestamp"),
        *[
            F.expr(f"try_cast({name} AS DOUBLE)").alias(name) if name in texts else F.col(name)
            for name in ("amount", "quantity")
            if name in frame.columns
        ],
    )


@dataclass
class SparkScoreResult:
    """What :func:`score_file` did.

    Attributes
    ----------
    out : pathlib.Path
        The written output.
    report : segml.transactions.DataQualityReport
        The cleaning of the log: rows read, kept, dropped per reason, examples.
    model_name, model_version, run_id : str
        The model that scored, as the pandas path records them ("" where unknown).
    as_of : str
        Scoring date, ISO format.
    seconds : dict of str to float
        Time taken by each step.
    """

    out: Path
    report: DataQualityReport
    model_name: str
    model_version: str
    run_id: str
    as_of: str
    seconds: dict[str, float] = field(default_factory=dict)


def score_file(
    transactions_path: str | os.PathLike,
    model_uri: str,
    *,
    as_of,
    out: str | os.PathLike,
    customer_id: str | None = None,
    timestamp: str | None = None,
    amount: str | None = None,
    quantity: str | None = "quantity",
    timestamp_format: str | None = None,
    timezone: str | None = None,
    returns: Literal["drop", "net"] | None = None,
    zero_amounts: Literal["drop", "keep"] | None = None,
    drop_duplicates: bool | None = None,
    on_invalid: Literal["drop", "raise"] = "drop",
    sep: str | None = None,
    encoding: str | None = None,
    sheet_name: str | int | None = None,
    tracking_uri: str | None = None,
    extra_columns: Mapping[str, str | int | float | None] | None = None,
    spark: SparkSession | None = None,
) -> SparkScoreResult:
    """Score a transaction file on Spark and write one row per customer, atomically.

    The engine behind ``segml score --engine spark``, and the Spark twin of
    :func:`segml.batch.score_transactions`: the log is read, cleaned by the rules
    of :func:`segml.load_transactions` (:func:`segml.spark.clean_transactions`) with
    the settings the model's training log was cleaned with (the ones given here
    override them, with a :class:`segml.batch.CleaningWarning` when they contradict
    the model), scored as by :func:`score` (with the model checked and loaded once,
    before Spark starts, and a copy of it written by the installed segml handed to
    Spark, in a temporary folder removed when the job ends), and written with the same
    columns (:data:`segml.batch.SCORE_COLUMNS`: ``customer_id``, the model's
    outputs, ``model_name``, ``model_version``, ``run_id``, ``as_of``) to ``out``,
    as one file whose format follows the extension (``.parquet``, or ``.csv`` with
    a header). Spark writes into a temporary folder beside ``out``; the single
    result file is then renamed onto ``out`` (an atomic replace), so a failure or a
    kill at any moment leaves either the previous output or the complete new one.

    Parameters
    ----------
    transactions_path : path-like
        A ``.csv`` (also ``.csv.gz``, ``.tsv``, ``.txt``; header row, every column
        read as text), a ``.parquet`` file or folder, or an ``.xlsx`` workbook.
    model_uri : str
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or a local model folder.
        An alias is resolved once, and that version scores.
    as_of : date-like
        Score customers as they were at the end of this day.
    out : path-like
        Local ``.parquet`` or ``.csv`` file to write; its folder is created.
    customer_id, timestamp, amount : str, optional
        The file's names for segml's columns; default the model's (as trained),
        else segml's own names.
    quantity : str or None, default "quantity"
        The file's quantity column, used if present (models trained on logs with
        quantities need it); None to ignore quantities.
    timestamp_format, timezone, returns, zero_amounts, drop_duplicates : optional
        The cleaning rules, as in :func:`segml.load_transactions` (the ``transactions``
        section of a run config); default the model's, else the loader's defaults.
        A model trained with a setting Spark cannot apply (a decimal comma, a
        currency, ``dayfirst``, ``order_id``) is refused: score it with pandas.
    on_invalid : {"drop", "raise"}, default "drop"
        Unparseable values: drop and count them, or raise.
    sep, encoding, sheet_name : optional
        How to read the file, as :func:`segml.io.read_table` reads it (separator
        and encoding sniffed by default; ``sheet_name`` for ``.xlsx``). Text
        separated by runs of spaces and ``.xlsx`` workbooks are read on the driver,
        so they must fit in its memory. A file read as Windows-1252 is a warning in
        the report, as in the pandas path.
    tracking_uri : str, optional
        MLflow tracking URI that resolves ``models:/`` URIs; default the current one.
        Restored afterwards.
    extra_columns : mapping, optional
        Constant columns appended to every row after the metadata columns, in
        mapping order (a name of a metadata column replaces its value).
    spark : SparkSession, optional
        Default: the active session, else a new one from the Spark configuration
        (``spark-submit`` settings, or ``local[*]``), stopped at the end. Its Python
        workers run ``PYSPARK_PYTHON``, or this interpreter when that is not set
        (right for local mode; on a cluster, set ``PYSPARK_PYTHON`` to a Python with
        segml installed).

    Returns
    -------
    SparkScoreResult
        ``out``, the cleaning report, the model's name, version and run id, as_of.

    Raises
    ------
    SparkInputError
        Unknown extension, missing file, ``as_of`` before the data, or a model
        that cannot be used (see :func:`score`).
    segml.tracking.ModelLoadError
        Unknown registered model, alias or version (the message lists those that
        exist), or a folder that is not a segml scoring model or was altered (the
        message names the file). Checked before Spark starts.
    segml.tracking.TrackingError
        The store of a ``models:/`` URI cannot be read (missing SQLite file, server
        down).
    segml.TransactionsError
        Missing columns, unparseable values with ``on_invalid="raise"``, or no row
        left after cleaning (``.report`` attached).

    Notes
    -----
    The output is a single file written by one task (after scoring in parallel).
    For outputs too large for one file, call :func:`clean_transactions` and
    :func:`score` and write the DataFrame as a partitioned dataset.

    As in the pandas path, the whole log is cleaned (duplicates and returns across
    ``as_of`` included) before rows after ``as_of`` are left out of the features.
    """
    import mlflow

    from segml.batch._cleaning import scoring_options, warn_conflicts
    from segml.batch._score import METADATA_COLUMNS, Laps, _load_model

    lap = Laps()
    seconds = lap.seconds

    out = Path(out)
    out_format = _format_of(out, "output")
    if out.is_dir():
        raise SparkInputError(
            f"The output {str(out)!r} is a folder; segml.spark.score_file writes a single "
            "file there (remove the folder or choose another name)."
        )
    as_of_text = _as_day(as_of).isoformat()  # a bad date is refused before Spark starts
    # Which model scores, resolved as the pandas path does (and before Spark starts):
    # an alias is read once and its version scores, so the recorded version is the one
    # that scored even if the alias moves meanwhile.
    # mlflow.set_tracking_uri sets MLFLOW_TRACKING_URI too; an explicit URI always
    # lives there, so the variable is the state to restore (None unsets both).
    previous_uri = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        model = _load_model(model_uri, tracking_uri or mlflow.get_tracking_uri())
    finally:  # the registry lookup sets the tracking URI (and the variable) back its way
        mlflow.set_tracking_uri(previous_uri)
    metadata = {
        "model_name": model.name,
        "model_version": model.version,
        "run_id": model.run_id,
        "as_of": as_of_text,
    }
    given = {
        "customer_id": customer_id,
        "timestamp": timestamp,
        "amount": amount,
        "timestamp_format": timestamp_format,
        "timezone": timezone,
        "returns": returns,
        "zero_amounts": zero_amounts,
        "drop_duplicates": drop_duplicates,
    }
    options, conflicts = scoring_options(
        model.cleaning, {k: v for k, v in given.items() if v is not None}
    )
    warn_conflicts(conflicts)
    options = _spark_cleaning(options)
    # The checked scorer scores: Spark gets a copy of it written by the installed
    # segml, never the folder (or registry artifact) itself, whose entry script
    # MLflow would execute (see the module docstring).
    scorer = model.scorer
    del model
    lap("load model")
    own_session = spark is None and SparkSession.getActiveSession() is None
    if spark is None:
        spark = SparkSession.getActiveSession() or _new_session()
    labelled = workdir = None
    try:
        # Holds Spark's copy of the model until the job has written its output.
        workdir = tempfile.TemporaryDirectory(prefix="segml-spark-model-")
        raw, read_info = _read_raw(
            spark, transactions_path, sep=sep, encoding=encoding, sheet_name=sheet_name
        )
        try:
            labelled, _, report = _clean(
                raw, **options, on_invalid=on_invalid, source=str(transactions_path)
            )
        except TransactionsError as exc:
            if exc.report is not None:
                _add_read_info(exc.report, read_info)
            raise
        _add_read_info(report, read_info)
        lap("load and validate transactions")
        # The mapped quantity column, numeric; other columns are not read. Each row
        # keeps its place in the file, so that features add a customer's amounts in
        # the file's order, as the pandas path does (see segml.spark._buckets).
        transactions = kept_rows(labelled, quantity, ROW)
        scores = _score(
            transactions,
            scorer,
            Path(workdir.name),
            shown_uri=str(model_uri),
            as_of=as_of,
            partitions=None,
            check=True,
        )
        for name, value in {**metadata, **(extra_columns or {})}.items():
            scores = scores.withColumn(name, F.lit(value))
        _write_atomically(scores, out, out_format)
        lap("features, predict and write")
    finally:
        if workdir is not None:
            workdir.cleanup()
        if labelled is not None:
            labelled.unpersist()
        if own_session:
            spark.stop()
    return SparkScoreResult(
        out=out,
        report=report,
        seconds=seconds,
        **{name: metadata[name] for name in METADATA_COLUMNS},
    )


def _add_read_info(report: DataQualityReport, info: Mapping[str, object]) -> None:
    """The reading in the report, as :func:`segml.load_transactions` puts it there."""
    report.warnings[:0] = info["warnings"]  # the loader lists them first
    report.settings.update({key: info[key] for key in ("sep", "encoding", "sheet_name")})


# The loader settings Spark's cleaning applies, with segml's defaults; and the values of
# the others that mean what Spark does anyway (a decimal point, no currency filter).
_SPARK_CLEANING = {
    "customer_id": "customer_id",
    "timestamp": "timestamp",
    "amount": "amount",
    "timestamp_format": None,
    "timezone": "UTC",
    "returns": "drop",
    "zero_amounts": "drop",
    "drop_duplicates": True,
}
_SPARK_NEUTRAL = {
    "decimal": ("auto", "."),
    "dayfirst": (None,),
    "currency": (None,),
    "currency_column": (None,),
    "order_id": (None,),
}


def _spark_cleaning(options: Mapping[str, object]) -> dict[str, object]:
    """The keyword arguments of Spark's cleaning; a setting it cannot apply is refused."""
    for key, value in options.items():
        if key in _SPARK_NEUTRAL and value not in _SPARK_NEUTRAL[key]:
            raise SparkInputError(
                f"The log must be cleaned with {key}={value!r} (the model was trained so, or "
                f"it was given), which the Spark engine does not apply; score it with the "
                "pandas engine (segml score --engine pandas)."
            )
    return {key: options.get(key, default) for key, default in _SPARK_CLEANING.items()}


def _new_session() -> SparkSession:
    """A session from the Spark configuration whose Python workers can import segml."""
    builder = SparkSession.builder.appName("segml score")
    if "PYSPARK_PYTHON" in os.environ:
        return builder.getOrCreate()
    # Without PYSPARK_PYTHON, workers run "python3" from PATH, which need not have segml
    # or the model's dependencies; the context reads the variable once, when created.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        return builder.getOrCreate()
    finally:
        del os.environ["PYSPARK_PYTHON"]


def _write_atomically(frame: DataFrame, out: Path, fmt: str) -> None:
    """Write ``frame`` as the single file ``out``, through :func:`segml.io.atomic_output`.

    Spark writes a folder of part files beside ``out``; its one part file becomes the
    temp file of ``atomic_output``, which is renamed onto ``out`` like every other
    output of segml (same permissions, fsync, stale temp files removed).
    """
    from segml.io import atomic_output

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex}.spark"
    try:
        with atomic_output(out) as tmp:
            # repartition (a shuffle), not coalesce: scoring upstream stays parallel
            # and only the final write is one task, giving one part file.
            writer = frame.repartition(1).write.mode("overwrite")
            if fmt == "csv":
                writer.option("header", True).csv(str(staging))
            else:
                writer.parquet(str(staging))
            parts = sorted(staging.glob(f"part-*.{fmt}")) or sorted(staging.glob("part-*"))
            if len(parts) != 1:
                raise RuntimeError(f"Expected one part file in {staging}, found {len(parts)}.")
            os.replace(parts[0], tmp)  # same folder: a rename, not a copy
    finally:
        shutil.rmtree(staging, ignore_errors=True)
