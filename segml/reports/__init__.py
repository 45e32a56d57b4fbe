"""Figures for people: functions that return matplotlib Figures, never show or save them.

- CLV diagnostics: :func:`plot_calibration_purchases`, :func:`plot_frequency_recency_matrix`,
  :func:`plot_p_alive_matrix`, :func:`plot_period_transactions`, :func:`plot_clv_distribution`,
  :func:`plot_cumulative_transactions`,
  :func:`plot_clv_fan` (customer-level CLV intervals), :func:`plot_purchase_reliability`.
- Segments and tiers: :func:`plot_tier_counts`, :func:`plot_tier_shares`,
  :func:`plot_frequency_vs_spend`, :func:`plot_segment_profiles`,
  :func:`plot_silhouette_curve`, :func:`plot_migration_matrix`.
- The one-page tier report of a run: :func:`build_tier_report` (self-contained HTML).
- Churn: :func:`plot_churn_roc`, :func:`plot_churn_precision_recall`,
  :func:`plot_churn_calibration`, :func:`plot_churn_lift`.
"""

from segml.reports._churn import (
    plot_churn_calibration,
    plot_churn_lift,
    plot_churn_precision_recall,
    plot_churn_roc,
)
from segml.reports._clv import (
    plot_calibration_purchases,
    plot_clv_distribution,
    plot_cumulative_transactions,
    plot_frequency_recency_matrix,
    plot_p_alive_matrix,
    plot_period_transactions,
)
from segml.reports._clv_fan import plot_clv_fan, plot_purchase_reliability
from segml.reports._html import build_tier_report
from segml.reports._segments import (
    plot_frequency_vs_spend,
    plot_migration_matrix,
    plot_segment_profiles,
    plot_silhouette_curve,
    plot_tier_counts,
    plot_tier_shares,
)

__all__ = [
    "build_tier_report",
    "plot_calibration_purchases",
    "plot_churn_calibration",
    "plot_churn_lift",
    "plot_churn_precision_recall",
    "plot_churn_roc",
    "plot_clv_distribution",
    "plot_clv_fan",
    "plot_cumulative_transactions",
    "plot_frequency_recency_matrix",
    "plot_frequency_vs_spend",
    "plot_migration_matrix",
    "plot_p_alive_matrix",
    "plot_period_transactions",
    "plot_purchase_reliability",
    "plot_segment_profiles",
    "plot_silhouette_curve",
    "plot_tier_counts",
    "plot_tier_shares",
]
