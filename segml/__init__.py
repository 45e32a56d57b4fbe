"""segml: customer value, segments, tiers and churn as a reproducible ML workflow.

Transactions flow one way: :mod:`segml.transactions` loads and validates them,
:mod:`segml.features` turns them into RFM and churn features, :mod:`segml.models`
fits CLV, segment, tier and churn models, :mod:`segml.scoring` combines them into one
scorer and the segment map, :mod:`segml.tracking` logs runs to MLflow and
:mod:`segml.reports` draws the figures.

Importing segml does nothing else: no warning filters, no logging handlers, no I/O,
and MLflow is imported only when :func:`train` is called.
"""

from segml._config import load_config
from segml.datasets import load_cdnow, simulate_transactions
from segml.features import calibration_holdout, churn_features, churn_labels, rfm_summary
from segml.models import (
    BGBBModel,
    ChurnModel,
    CLVModel,
    RetentionModel,
    RFMSegments,
    SegmentModel,
    TierScorecard,
    ValueTiers,
    early_warning,
    holdout_metrics,
    simple_clv,
)
from segml.scoring import (
    CustomerScorer,
    SegmentMap,
    build_segment_map,
    customer_features,
    migration_matrix,
)
from segml.transactions import DataQualityReport, TransactionsError, load_transactions

__version__ = "0.1.0"

__all__ = [
    "BGBBModel",
    "CLVModel",
    "ChurnModel",
    "CustomerScorer",
    "DataQualityReport",
    "RFMSegments",
    "RetentionModel",
    "SegmentMap",
    "SegmentModel",
    "TierScorecard",
    "TransactionsError",
    "ValueTiers",
    "build_segment_map",
    "calibration_holdout",
    "churn_features",
    "churn_labels",
    "customer_features",
    "early_warning",
    "holdout_metrics",
    "load_cdnow",
    "load_config",
    "load_transactions",
    "migration_matrix",
    "rfm_summary",
    "simple_clv",
    "simulate_transactions",
    "train",
]


def __getattr__(name: str):
    # segml.train needs MLflow, which is slow to import: load it on first use only.
    if name == "train":
        from segml.tracking import train

        return train
    raise AttributeError(f"module 'segml' has no attribute {name!r}")
