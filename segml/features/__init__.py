"""Customer features from a clean transaction log.

- :func:`rfm_summary`: one row per customer, lifetimes' ``frequency``, ``recency``,
  ``T`` and ``monetary_value`` plus calendar RFM columns.
- :func:`calibration_holdout`: the calibration/holdout split that CLV models are
  judged on, equal to lifetimes' ``calibration_and_holdout_data``.
"""

from segml.features._rfm import (
    CALENDAR_COLUMNS,
    LIFETIMES_COLUMNS,
    calibration_holdout,
    rfm_summary,
)

__all__ = ["CALENDAR_COLUMNS", "LIFETIMES_COLUMNS", "calibration_holdout", "rfm_summary"]
