"""Models fitted on customer features: CLV, segments, tiers, churn.

Models never import each other, mlflow or matplotlib: they take tables and return
tables (churn gets the CLV model's outputs as columns).
"""

from segml.models._churn_evaluation import churn_baselines, evaluate_churn, lift_table
from segml.models._clv_metrics import holdout_metrics, simple_clv
from segml.models.churn import ChurnModel, early_warning
from segml.models.clv import (
    CLVConvergenceError,
    CLVInputError,
    CLVModel,
    CLVWarning,
    PenalizerRetryWarning,
    SpendFrequencyCorrelationWarning,
)
from segml.models.rfm_segments import RFMSegments
from segml.models.scorecard import (
    TierConfigError,
    TierScorecard,
    purchases_per_month,
    repurchase_rate,
)
from segml.models.segments import SegmentInputError, SegmentModel
from segml.models.value_tiers import ValueTiers

__all__ = [
    "CLVConvergenceError",
    "CLVInputError",
    "CLVModel",
    "CLVWarning",
    "ChurnModel",
    "PenalizerRetryWarning",
    "RFMSegments",
    "SegmentInputError",
    "SegmentModel",
    "SpendFrequencyCorrelationWarning",
    "TierConfigError",
    "TierScorecard",
    "ValueTiers",
    "churn_baselines",
    "early_warning",
    "evaluate_churn",
    "holdout_metrics",
    "lift_table",
    "purchases_per_month",
    "repurchase_rate",
    "simple_clv",
]
