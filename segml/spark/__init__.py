"""Training tables, features and batch scoring on Spark, for logs beyond one machine.

The Spark path computes the same features as the pandas path (same names, order,
definitions and numbers, see :mod:`segml.spark._features`) and scores them with the
same MLflow pyfunc model through ``mlflow.pyfunc.spark_udf``, so a customer gets the
same clv, segment, tier and churn risk on either engine. As on the pandas path, the
model is checked and loaded by :func:`segml.tracking._load.load_scoring_model`,
which runs nothing from its folder; Spark is then handed a copy of the checked model
written by the installed segml, never the folder itself (MLflow would execute the
folder's entry script in every worker).

- :func:`clean_transactions`: the rules of :func:`segml.load_transactions` on a
  Spark log (same parameters, same kept rows, same counts per reason).
- :func:`customer_features`: the scorer's input features, per customer, as a Spark
  DataFrame: :func:`segml.scoring.customer_features` itself, run on buckets of whole
  customers (``groupBy(bucket).applyInPandas``), so both engines share one definition.
- :func:`training_tables`: the tables :meth:`segml.CustomerScorer.fit_tables` fits
  on (twin of :func:`segml.scoring.training_tables`, the same pandas functions per
  bucket; only per-customer tables reach the driver, sampled above
  ``max_training_customers``); :func:`fit_scorer` fits a scorer on them, and
  :func:`read_training_log` reads and cleans a file for them.
- :func:`predict`: a Spark DataFrame of features to scores, through
  ``mlflow.pyfunc.spark_udf`` (columns matched by name, in any order).
- :func:`score`: transactions (Spark DataFrame) and a model URI to one row of scores
  per customer (twin of :meth:`segml.CustomerScorer.score`).
- :func:`score_file`: a CSV/Parquet file to a CSV/Parquet file, cleaned as the
  model's training log was (the settings the model records), with the columns of
  the pandas path (:func:`segml.batch.score_transactions`) and written through
  :func:`segml.io.atomic_output` like every segml output; the engine of
  ``segml score --engine spark``.

PySpark is an optional extra: ``pip install -e ".[spark]"`` (Java 17 or newer is
needed to run Spark). Importing this module without it raises ImportError.
"""

try:
    import pyspark  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'segml.spark needs PySpark, an optional extra: pip install -e ".[spark]" '
        "(or pip install 'segml[spark]'); Spark itself also needs Java 17 or newer."
    ) from exc

from segml.spark._clean import REASONS, clean_transactions
from segml.spark._features import SparkInputError, customer_features, feature_columns
from segml.spark._score import (
    OUTPUT_SCHEMA,
    SparkScoreResult,
    model_feature_columns,
    output_schema,
    predict,
    read_transactions,
    score,
    score_file,
)
from segml.spark._train import (
    MAX_TRAINING_CUSTOMERS,
    SparkTrainingTables,
    fit_scorer,
    read_training_log,
    training_tables,
)

__all__ = [
    "MAX_TRAINING_CUSTOMERS",
    "OUTPUT_SCHEMA",
    "REASONS",
    "SparkInputError",
    "SparkScoreResult",
    "SparkTrainingTables",
    "clean_transactions",
    "customer_features",
    "feature_columns",
    "fit_scorer",
    "model_feature_columns",
    "output_schema",
    "predict",
    "read_training_log",
    "read_transactions",
    "score",
    "score_file",
    "training_tables",
]
