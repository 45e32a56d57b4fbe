"""Models fitted on customer features: CLV, segments, tiers, churn.

Models never import each other, mlflow or matplotlib: they take tables and return
tables (churn gets the CLV model's outputs as columns).
"""

from segml.models._churn_evaluation import churn_baselines, evaluate_churn, lift_table
from segml.models._clv_metrics import holdout_metrics, simple_clv
from segml.models._predictive import (
    clv_predictive_interval,
    next_purchase,
    predictive_calibration,
    predictive_summary,
    purchase_probability,
)
from segml.models.bgbb import BGBBInputError, BGBBModel
from segml.models.churn import ChurnModel, early_warning
from segml.models.clv import (
    PURCHASE_MODELS,
    CLVConvergenceError,
    CLVInputError,
    CLVModel,
    CLVWarning,
    PenalizerRetryWarning,
    SpendFrequencyCorrelationWarning,
    describe_selection,
    select_purchase_model,
)
from segml.models.retention import RetentionInputError, RetentionModel, survivors_to_tenure
from segml.models.rfm_segments import RFMSegments
from segml.models.scorecard import (
    TierConcentrationWarning,
    TierConfigError,
    TierScorecard,
    purchases_per_month,
    repurchase_rate,
)
from segml.models.segments import SegmentInputError, SegmentModel
from segml.models.value_tiers import ValueTiers

__all__ = [
    "BGBBInputError",
    "BGBBModel",
    "CLVConvergenceError",
    "CLVInputError",
    "CLVModel",
    "CLVWarning",
    "ChurnModel",
    "PURCHASE_MODELS",
    "PenalizerRetryWarning",
    "RFMSegments",
    "RetentionInputError",
    "RetentionModel",
    "SegmentInputError",
    "SegmentModel",
    "SpendFrequencyCorrelationWarning",
    "TierConcentrationWarning",
    "TierConfigError",
    "TierScorecard",
    "ValueTiers",
    "churn_baselines",
    "clv_predictive_interval",
    "describe_selection",
    "early_warning",
    "evaluate_churn",
    "holdout_metrics",
    "lift_table",
    "next_purchase",
    "predictive_calibration",
    "predictive_summary",
    "purchase_probability",
    "purchases_per_month",
    "repurchase_rate",
    "select_purchase_model",
    "simple_clv",
    "survivors_to_tenure",
]
