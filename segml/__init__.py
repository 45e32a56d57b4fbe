"""segml: customer value, segments, tiers and churn as a reproducible ML workflow.

Transactions flow one way: :mod:`segml.transactions` loads and validates them,
:mod:`segml.features` turns them into RFM and churn features, :mod:`segml.models`
fits CLV, segment, tier and churn models, :mod:`segml.scoring` combines them into one
scorer and the segment map, :mod:`segml.tracking` logs runs to MLflow and
:mod:`segml.reports` draws the figures.

Importing segml does nothing else: no warning filters, no logging handlers, no I/O.
The public names below are imported on first use (PEP 562), so ``import segml`` and
commands that need little (``segml score --help``) do not pay for pandas,
scikit-learn or MLflow; ``segml.CLVModel`` and ``from segml import CLVModel`` work as
usual.

Examples
--------
>>> import segml
>>> segml.rfm_summary.__module__
'segml.features._rfm'
>>> "rfm_summary" in dir(segml)
True
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Where each public name lives: imported from there on first access.
_LAZY = {
    "load_config": "segml._config",
    "load_cdnow": "segml.datasets",
    "simulate_transactions": "segml.datasets",
    "calibration_holdout": "segml.features",
    "churn_features": "segml.features",
    "churn_labels": "segml.features",
    "rfm_summary": "segml.features",
    "BGBBModel": "segml.models",
    "ChurnModel": "segml.models",
    "CLVModel": "segml.models",
    "RetentionModel": "segml.models",
    "RFMSegments": "segml.models",
    "SegmentModel": "segml.models",
    "TierScorecard": "segml.models",
    "ValueTiers": "segml.models",
    "early_warning": "segml.models",
    "holdout_metrics": "segml.models",
    "simple_clv": "segml.models",
    "CustomerScorer": "segml.scoring",
    "SegmentMap": "segml.scoring",
    "build_segment_map": "segml.scoring",
    "customer_features": "segml.scoring",
    "migration_matrix": "segml.scoring",
    "DataQualityReport": "segml.transactions",
    "TransactionsError": "segml.transactions",
    "load_transactions": "segml.transactions",
    # segml.train needs MLflow, which is slow to import.
    "train": "segml.tracking",
}

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
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'segml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
