"""Value tiers from CLV, and core / important / potential from current vs predicted value.

Two views of customer value that a tier table alone does not give:

- ``value_tier``: high / medium / low by predicted value (``clv``). Bands are on
  the quantile scale (default: top 20% high, next 30% medium, bottom 50% low) or
  on the value itself (``method="threshold"``), in the same half-open
  ``[lower, upper)`` format as the scorecard.
- ``value_class``: current value (``total_spend``) against predicted value
  (``clv``), each split into high / low at a quantile (default: top 30% is high).
  High now and high predicted is *core*; high now but low predicted is
  *important* (valuable today, fading: protect it); low now but high predicted is
  *potential* (grow it); low on both is *maintain*. Names are config.

With ``group_column`` (e.g. ``industry``), quantile cut-offs are learnt within each
group, so "high value" means high for that industry. A group unseen at fit time is
scored with the cut-offs of all customers.

Examples
--------
>>> import pandas as pd
>>> from segml.models.value_tiers import ValueTiers
>>> table = pd.DataFrame({"clv": [float(v) for v in range(1, 11)],
...                       "total_spend": [float(v) for v in range(10, 0, -1)]})
>>> tiers = ValueTiers().fit(table).predict(table)
>>> tiers["value_tier"].tolist()
['low', 'low', 'low', 'low', 'low', 'medium', 'medium', 'medium', 'high', 'high']
>>> tiers["value_class"].tolist()[:3], tiers["value_class"].tolist()[-3:]
(['important', 'important', 'important'], ['potential', 'potential', 'potential'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from segml.models._estimator import Estimator
from segml.models._scorecard_bands import (
    TierConfigError,
    check_keys,
    load_yaml_config,
    parse_bands,
)
from segml.models._segments_input import SegmentInputError, numeric_columns, require_frame

__all__ = ["DEFAULT_CLASSES", "DEFAULT_VALUE_BANDS", "ValueTiers"]

DEFAULT_VALUE_BANDS = (
    {"label": "high", "lower": 0.8},
    {"label": "medium", "lower": 0.5, "upper": 0.8},
    {"label": "low", "upper": 0.5},
)
DEFAULT_CLASSES = {
    "core": {"current": "high", "predicted": "high"},
    "important": {"current": "high", "predicted": "low"},
    "potential": {"current": "low", "predicted": "high"},
    "maintain": {"current": "low", "predicted": "low"},
}
_ALL = "__all__"


class ValueTiers(Estimator):
    """High / medium / low value tiers from CLV, and the current-vs-predicted value class.

    Parameters
    ----------
    value_column : str, default "clv"
        Predicted value that ``value_tier`` bands.
    method : {"quantile", "threshold"}, default "quantile"
        Whether ``bands`` bounds are quantiles of ``value_column`` (learnt at fit)
        or values in its unit.
    bands : list of mapping, default top 20% high, next 30% medium, rest low
        ``{label, lower?, upper?}``, best first, tiling the line half-open.
    current_column : str or None, default "total_spend"
        Current value for ``value_class``; None skips the class.
    class_quantile : float, default 0.7
        Quantile splitting both current and predicted value into high (at or
        above it) and low.
    classes : mapping, default core / important / potential / maintain
        ``{name: {current: high|low, predicted: high|low}}`` covering the four cells.
    group_column : str or None, default None
        Learn quantile cut-offs within each value of this column.

    Attributes
    ----------
    cutoffs_ : dict
        ``{group: [lower bound of each band above the lowest, ascending]}``;
        the key ``"__all__"`` holds the cut-offs of all customers.
    class_cutoffs_ : dict
        ``{group: (current cut-off, predicted cut-off)}``.
    tier_labels_ : list of str
        Value tiers, best first.

    Examples
    --------
    Fixed thresholds in currency:

    >>> import pandas as pd
    >>> from segml.models.value_tiers import ValueTiers
    >>> vt = ValueTiers(method="threshold", current_column=None, bands=[
    ...     {"label": "high", "lower": 1000}, {"label": "low", "upper": 1000}])
    >>> vt.fit(pd.DataFrame({"clv": [5.0]})).predict(pd.DataFrame({"clv": [999.0, 1000.0]}))
       value_tier
    0         low
    1        high
    """

    def __init__(
        self,
        *,
        value_column: str = "clv",
        method: str = "quantile",
        bands: Sequence[Mapping[str, Any]] = DEFAULT_VALUE_BANDS,
        current_column: str | None = "total_spend",
        class_quantile: float = 0.7,
        classes: Mapping[str, Mapping[str, str]] = DEFAULT_CLASSES,
        group_column: str | None = None,
    ):
        self.value_column = value_column
        self.method = method
        self.bands = bands
        self.current_column = current_column
        self.class_quantile = class_quantile
        self.classes = classes
        self.group_column = group_column

    @classmethod
    def from_yaml(cls, path) -> ValueTiers:
        """Build from a YAML file whose keys are constructor parameters, validating it.

        Examples
        --------
        >>> from segml.models.scorecard import DEFAULT_CONFIG
        >>> from segml.models.value_tiers import ValueTiers
        >>> ValueTiers.from_yaml(DEFAULT_CONFIG.parent / "value_tiers.yaml").class_quantile
        0.7
        """
        config = load_yaml_config(path, list(cls().get_params()), "ValueTiers")
        model = cls(**config)
        model._parse()
        return model

    def _parse(self):
        if self.method not in ("quantile", "threshold"):
            raise TierConfigError(f"method must be 'quantile' or 'threshold'; got {self.method!r}.")
        bands = parse_bands(list(self.bands), "bands", with_points=False)
        if self.method == "quantile":
            inner = [b.lower for b in bands[1:]]
            if any(not 0 < q < 1 for q in inner):
                raise TierConfigError(
                    f"bands: with method 'quantile' the bounds are quantiles strictly between 0 "
                    f"and 1; got {inner}."
                )
        if not 0 < float(self.class_quantile) < 1:
            raise TierConfigError(
                f"class_quantile must be strictly between 0 and 1; got {self.class_quantile!r}."
            )
        cells = {}
        if not isinstance(self.classes, Mapping):
            raise TierConfigError(
                f"classes must be a mapping of name to cell; got {self.classes!r}."
            )
        for name, cell in self.classes.items():
            check_keys(cell, ["current", "predicted"], ["current", "predicted"], f"classes.{name}")
            key = (cell["current"], cell["predicted"])
            if any(v not in ("high", "low") for v in key):
                raise TierConfigError(
                    f"classes.{name}: current and predicted must each be 'high' or 'low'; "
                    f"got {key}."
                )
            if key in cells:
                raise TierConfigError(
                    f"classes: {cells[key]!r} and {name!r} both claim current={key[0]}, "
                    f"predicted={key[1]}; each cell needs exactly one class."
                )
            cells[key] = str(name)
        absent = [
            k
            for k in [("high", "high"), ("high", "low"), ("low", "high"), ("low", "low")]
            if k not in cells
        ]
        if absent:
            cells_text = [{"current": c, "predicted": p} for c, p in absent]
            raise TierConfigError(
                f"classes: no class for the cell(s) {cells_text}; add one for each."
            )
        return bands, cells

    def _groups(self, customers: pd.DataFrame) -> np.ndarray | None:
        if self.group_column is None:
            return None
        if self.group_column not in customers.columns:
            raise SegmentInputError(
                f"group_column {self.group_column!r} is not a column of the customer table "
                f"(found {list(customers.columns)}); join it by customer_id or set "
                "group_column: null."
            )
        return customers[self.group_column].astype(str).to_numpy(dtype=object)

    def fit(self, customers: pd.DataFrame, y=None) -> ValueTiers:
        """Learn the quantile cut-offs (overall and per group); return self."""
        bands, _ = self._parse()
        require_frame(customers, "ValueTiers.fit")
        value = numeric_columns(customers, [self.value_column], "ValueTiers.fit")[:, 0]
        current = None
        if self.current_column is not None:
            current = numeric_columns(customers, [self.current_column], "ValueTiers.fit")[:, 0]
        groups = self._groups(customers)
        inner = np.array([b.lower for b in bands[1:]])

        def cutoffs(mask):
            tier = (
                inner.tolist()
                if self.method == "threshold"
                else np.quantile(value[mask], inner).tolist()
            )
            cls = None
            if current is not None:
                q = float(self.class_quantile)
                cls = (float(np.quantile(current[mask], q)), float(np.quantile(value[mask], q)))
            return tier, cls

        everyone = np.ones(len(value), dtype=bool)
        self.cutoffs_, self.class_cutoffs_ = {}, {}
        self.cutoffs_[_ALL], self.class_cutoffs_[_ALL] = cutoffs(everyone)
        if groups is not None:
            for group in sorted(set(groups)):
                self.cutoffs_[group], self.class_cutoffs_[group] = cutoffs(groups == group)
        self.tier_labels_ = [b.label for b in reversed(bands)]
        return self

    def predict(self, customers: pd.DataFrame) -> pd.DataFrame:
        """``value_tier`` (and ``value_class`` when ``current_column`` is set) per customer.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``customers``; both columns categorical, best first.
        """
        if not hasattr(self, "cutoffs_"):
            raise SegmentInputError("ValueTiers is not fitted yet; call fit(customers) first.")
        bands, cells = self._parse()
        require_frame(customers, "ValueTiers.predict")
        value = numeric_columns(customers, [self.value_column], "ValueTiers.predict")[:, 0]
        groups = self._groups(customers)
        keys = (
            np.full(len(value), _ALL, dtype=object)
            if groups is None
            else np.array([g if g in self.cutoffs_ else _ALL for g in groups], dtype=object)
        )
        labels = np.array([b.label for b in bands], dtype=object)
        tier = np.empty(len(value), dtype=object)
        out: dict[str, Any] = {}
        current = None
        if self.current_column is not None:
            current = numeric_columns(customers, [self.current_column], "ValueTiers.predict")[:, 0]
            value_class = np.empty(len(value), dtype=object)
        for key in pd.unique(keys):
            mask = keys == key
            # Cut-offs become band edges: a value equal to a cut-off is in the band above.
            edges = self.cutoffs_[key]
            tier[mask] = labels[np.searchsorted(np.asarray(edges), value[mask], side="right")]
            if current is not None:
                cur_cut, pred_cut = self.class_cutoffs_[key]
                cur = np.where(current[mask] >= cur_cut, "high", "low")
                pred = np.where(value[mask] >= pred_cut, "high", "low")
                value_class[mask] = [cells[(c, p)] for c, p in zip(cur, pred, strict=True)]
        out["value_tier"] = pd.Categorical(tier, categories=self.tier_labels_, ordered=True)
        if current is not None:
            out["value_class"] = pd.Categorical(value_class, categories=list(cells.values()))
        return pd.DataFrame(out, index=customers.index)

    def definitions(self) -> dict[str, dict[str, Any]]:
        """Rules of each value tier (overall cut-offs), for the segment map."""
        if not hasattr(self, "cutoffs_"):
            raise SegmentInputError("ValueTiers is not fitted yet; call fit(customers) first.")
        bands, _ = self._parse()
        edges = self.cutoffs_[_ALL]
        out = {}
        for rank, band in enumerate(reversed(bands)):
            i = bands.index(band)
            lo = edges[i - 1] if i > 0 else None
            hi = edges[i] if i < len(edges) else None
            rule = " and ".join(
                ([f"{self.value_column} >= {lo:.6g}"] if lo is not None else [])
                + ([f"{self.value_column} < {hi:.6g}"] if hi is not None else [])
            )
            out[band.label] = {"name": band.label, "definition": {"rule": rule}, "rank": rank}
        return out
