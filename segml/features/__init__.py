"""Customer features from a clean transaction log.

- :func:`rfm_summary`: one row per customer, lifetimes' ``frequency``, ``recency``,
  ``T`` and ``monetary_value`` plus calendar RFM columns.
- :func:`calibration_holdout`: the calibration/holdout split that CLV models are
  judged on, equal to lifetimes' ``calibration_and_holdout_data``.
- :func:`churn_labels`, :func:`churn_features`: churn labels after a cutoff and the
  features before it, never mixed.
"""

from segml.features._churn import (
    CHURN_FEATURE_DESCRIPTIONS,
    ChurnInputError,
    churn_features,
    churn_labels,
)
from segml.features._rfm import (
    CALENDAR_COLUMNS,
    LIFETIMES_COLUMNS,
    FeatureError,
    calibration_holdout,
    rfm_summary,
)

__all__ = [
    "CALENDAR_COLUMNS",
    "CHURN_FEATURE_DESCRIPTIONS",
    "LIFETIMES_COLUMNS",
    "ChurnInputError",
    "FeatureError",
    "calibration_holdout",
    "churn_features",
    "churn_labels",
    "rfm_summary",
]
