"""Scoring outputs people act on: the segment map and tier migration.

- :func:`build_segment_map` summarises a scored customer table (segment, tier,
  value tier, RFM segment) into a :class:`SegmentMap`: name, definition, size,
  share, profile, attribute mix and recommended action of every group; JSON and
  CSV round trips and a diff between two runs.
- :class:`CustomerScorer` fits every model and scores customers in one call;
  :func:`training_tables` builds the tables it is fitted on
  (:meth:`CustomerScorer.fit_tables`), which the Spark path builds on Spark.
- :func:`migration_matrix` counts customers moving between tiers or segments from
  one scoring to the next, with new and lost customers as their own row and column.
"""

from segml.scoring._migration import LOST, NEW, MigrationError, migration_matrix
from segml.scoring._scorer import (
    BASE_OUTPUT_COLUMNS,
    CLV_OUTPUT_COLUMNS,
    DATE_OUTPUT_COLUMNS,
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
from segml.scoring._training_tables import TrainingTables, training_tables

__all__ = [
    "BASE_OUTPUT_COLUMNS",
    "CLV_OUTPUT_COLUMNS",
    "DATE_OUTPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "STRING_OUTPUT_COLUMNS",
    "CustomerScorer",
    "ScorerError",
    "customer_features",
    "TrainingTables",
    "training_tables",
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
