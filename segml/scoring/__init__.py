"""Scoring outputs people act on: the segment map and tier migration.

- :func:`build_segment_map` summarises a scored customer table (segment, tier,
  value tier, RFM segment) into a :class:`SegmentMap`: name, definition, size,
  share, profile, attribute mix and recommended action of every group; JSON and
  CSV round trips and a diff between two runs.
- :func:`migration_matrix` counts customers moving between tiers or segments from
  one scoring to the next, with new and lost customers as their own row and column.
"""

from segml.scoring._migration import LOST, NEW, MigrationError, migration_matrix
from segml.scoring._scorer import (
    OUTPUT_COLUMNS,
    STRING_OUTPUT_COLUMNS,
    CustomerScorer,
    ScorerError,
    customer_features,
)
from segml.scoring._segment_map import (
    DEFAULT_ACTIONS,
    GROUPING_COLUMNS,
    PROFILE_COLUMNS,
    SegmentMap,
    SegmentMapError,
    build_segment_map,
    load_actions,
    risk_actions,
)

__all__ = [
    "OUTPUT_COLUMNS",
    "STRING_OUTPUT_COLUMNS",
    "CustomerScorer",
    "ScorerError",
    "customer_features",
    "DEFAULT_ACTIONS",
    "GROUPING_COLUMNS",
    "LOST",
    "NEW",
    "PROFILE_COLUMNS",
    "MigrationError",
    "SegmentMap",
    "SegmentMapError",
    "build_segment_map",
    "load_actions",
    "migration_matrix",
    "risk_actions",
]
