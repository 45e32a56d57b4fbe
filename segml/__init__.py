"""segml: customer value, segments, tiers and churn as a reproducible ML workflow.

Transactions flow one way: :mod:`segml.transactions` loads and validates them,
:mod:`segml.features` turns them into RFM tables, :mod:`segml.models` fits CLV,
segment, tier and churn models, and :mod:`segml.tracking` logs runs to MLflow.

Importing segml does nothing else: no warning filters, no logging handlers, no I/O.
"""

from segml.datasets import load_cdnow, simulate_transactions
from segml.features import calibration_holdout, rfm_summary
from segml.transactions import DataQualityReport, TransactionsError, load_transactions

__version__ = "0.1.0"

__all__ = [
    "DataQualityReport",
    "TransactionsError",
    "calibration_holdout",
    "load_cdnow",
    "load_transactions",
    "rfm_summary",
    "simulate_transactions",
]
