"""RFM scores (quintiles 1-5) and the named RFM segments (champions, loyal, at risk, ...).

Each customer gets three scores from 1 (worst) to 5 (best):

- R from ``days_since_last_purchase`` (fewer days is better),
- F from ``n_orders``,
- M from ``total_spend``.

A score is a quintile of the customers seen at fit time, with ties kept together:
a customer's score is ``1 + floor(5 * share of customers strictly worse)``, so
equal values always share a score (the 60% of customers with one order all get
F = 1, never an arbitrary mix of 1, 2 and 3). ``fit`` stores the value at which
each score starts, so new customers are scored against the same reference.

The named segments are a table on the (R, F) grid, first published for e-mail
marketing and now standard; every cell must be claimed by exactly one segment
(defaults below, config in ``configs/rfm_segments.yaml``):

=====================  ========  ========
segment                R         F
=====================  ========  ========
champions              5         4-5
loyal                  3-4       4-5
potential loyalist     4-5       2-3
new                    5         1
promising              4         1
need attention         3         3
about to sleep         3         1-2
cannot lose            1-2       5
at risk                1-2       3-4
hibernating            1-2       1-2
=====================  ========  ========

Examples
--------
>>> import pandas as pd
>>> from segml.models.rfm_segments import RFMSegments
>>> table = pd.DataFrame({"days_since_last_purchase": range(10),
...                       "n_orders": range(10, 0, -1),
...                       "total_spend": [float(v) for v in range(10)]})
>>> scores = RFMSegments().fit(table).predict(table)
>>> scores[["r_score", "f_score", "m_score", "rfm_segment"]].head(3)
   r_score  f_score  m_score  rfm_segment
0        5        5        1    champions
1        5        5        1    champions
2        4        4        2        loyal
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from segml.models._estimator import Estimator
from segml.models._scorecard_bands import TierConfigError, check_keys, load_yaml_config
from segml.models._segments_input import SegmentInputError, numeric_columns, require_frame

__all__ = ["DEFAULT_RFM_SEGMENTS", "RFMSegments", "rfm_edges"]

DEFAULT_RFM_SEGMENTS = (
    {"name": "champions", "r": [5, 5], "f": [4, 5]},
    {"name": "loyal", "r": [3, 4], "f": [4, 5]},
    {"name": "potential loyalist", "r": [4, 5], "f": [2, 3]},
    {"name": "new", "r": [5, 5], "f": [1, 1]},
    {"name": "promising", "r": [4, 4], "f": [1, 1]},
    {"name": "need attention", "r": [3, 3], "f": [3, 3]},
    {"name": "about to sleep", "r": [3, 3], "f": [1, 2]},
    {"name": "cannot lose", "r": [1, 2], "f": [5, 5]},
    {"name": "at risk", "r": [1, 2], "f": [3, 4]},
    {"name": "hibernating", "r": [1, 2], "f": [1, 2]},
)
_ALL = "__all__"


def rfm_edges(values: np.ndarray, n_bins: int = 5) -> list[float]:
    """Value at which each score 2..n_bins starts (higher values are better).

    Score ``s`` starts at the smallest observed value ``u`` with at least
    ``(s - 1) / n_bins`` of the customers strictly below it; ``inf`` when no value
    qualifies (heavy ties at the top). A value ``x`` then scores
    ``1 + #{edges <= x}``.

    Examples
    --------
    >>> from segml.models.rfm_segments import rfm_edges
    >>> rfm_edges([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    [3.0, 5.0, 7.0, 9.0]

    Ties stay together: the 60% at 1 all score 1, and 2 (60% below it) scores
    ``1 + floor(5 * 0.6) = 4``:

    >>> rfm_edges([1, 1, 1, 1, 1, 1, 2, 2, 3, 9])
    [2.0, 2.0, 2.0, 3.0]
    """
    ordered = np.sort(np.asarray(values, dtype="float64"))
    unique = np.unique(ordered)
    below = np.searchsorted(ordered, unique, side="left")
    edges = []
    for s in range(2, n_bins + 1):
        ok = np.nonzero(below * n_bins >= (s - 1) * len(ordered))[0]
        edges.append(float(unique[ok[0]]) if len(ok) else float("inf"))
    return edges


class RFMSegments(Estimator):
    """RFM quintile scores and named segments on the R x F grid.

    Parameters
    ----------
    recency_column, frequency_column, monetary_column : str
        Defaults ``days_since_last_purchase`` (lower is better), ``n_orders``,
        ``total_spend``.
    n_bins : int, default 5
        Scores run from 1 to ``n_bins``.
    segments : list of mapping, default the classic table
        ``{name, r: [lo, hi], f: [lo, hi]}`` (inclusive score ranges); together they
        must cover every (R, F) cell exactly once. Their order is the order of the
        ``rfm_segment`` categories.
    group_column : str or None, default None
        Learn the score edges within each value of this column (e.g. ``industry``);
        an unseen group is scored against all customers.

    Attributes
    ----------
    edges_ : dict
        ``{group: {"r": [...], "f": [...], "m": [...]}}``; R edges are on
        ``-days`` (higher is better). ``"__all__"`` holds all customers.
    segment_labels_ : list of str
        Segment names in config order.

    Examples
    --------
    >>> from segml.models.rfm_segments import RFMSegments
    >>> RFMSegments(segments=[{"name": "all", "r": [1, 5], "f": [1, 4]}]).fit(None)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segml.models._scorecard_bands.TierConfigError: segments: no segment covers the (R, F) ...
    """

    def __init__(
        self,
        *,
        recency_column: str = "days_since_last_purchase",
        frequency_column: str = "n_orders",
        monetary_column: str = "total_spend",
        n_bins: int = 5,
        segments: Sequence[Mapping[str, Any]] = DEFAULT_RFM_SEGMENTS,
        group_column: str | None = None,
    ):
        self.recency_column = recency_column
        self.frequency_column = frequency_column
        self.monetary_column = monetary_column
        self.n_bins = n_bins
        self.segments = segments
        self.group_column = group_column

    @classmethod
    def from_yaml(cls, path) -> RFMSegments:
        """Build from a YAML file whose keys are constructor parameters, validating it."""
        config = load_yaml_config(path, list(cls().get_params()), "RFMSegments")
        model = cls(**config)
        model._parse()
        return model

    def _parse(self) -> tuple[np.ndarray, list[str]]:
        n = self.n_bins
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise TierConfigError(f"n_bins must be an integer >= 2; got {n!r}.")
        if not isinstance(self.segments, Sequence) or not self.segments:
            raise TierConfigError(f"segments must be a non-empty list; got {self.segments!r}.")
        grid = np.full((n, n), -1)
        names = []
        for i, item in enumerate(self.segments):
            where = f"segments[{i}]"
            check_keys(item, ["name", "r", "f", "description"], ["name", "r", "f"], where)
            where = f"segments[{i}] ({item['name']})"
            ranges = []
            for key in ("r", "f"):
                rng = item[key]
                if (
                    not isinstance(rng, Sequence)
                    or len(rng) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in rng)
                    or not 1 <= rng[0] <= rng[1] <= n
                ):
                    raise TierConfigError(
                        f"{where}.{key} must be [lowest, highest] scores with "
                        f"1 <= lowest <= highest <= {n}; got {rng!r}."
                    )
                ranges.append(rng)
            (r0, r1), (f0, f1) = ranges
            block = grid[r0 - 1 : r1, f0 - 1 : f1]
            taken = sorted({names[j] for j in block[block >= 0].tolist()})
            if taken:
                raise TierConfigError(
                    f"{where} overlaps {taken} on the (R, F) grid; each cell needs exactly "
                    "one segment."
                )
            block[...] = i
            names.append(str(item["name"]))
        if len(set(names)) != len(names):
            raise TierConfigError(f"segments: names repeat in {names}.")
        empty = [(int(r) + 1, int(f) + 1) for r, f in zip(*np.nonzero(grid < 0), strict=True)]
        if empty:
            raise TierConfigError(
                f"segments: no segment covers the (R, F) cell(s) {empty}; every cell needs "
                "exactly one segment."
            )
        return grid, names

    def _columns(self, customers, what):
        values = numeric_columns(
            customers, [self.recency_column, self.frequency_column, self.monetary_column], what
        )
        values[:, 0] = -values[:, 0]  # fewer days since the last purchase is better
        groups = None
        if self.group_column is not None:
            if self.group_column not in customers.columns:
                raise SegmentInputError(
                    f"group_column {self.group_column!r} is not a column of the customer table "
                    f"(found {list(customers.columns)}); join it by customer_id or set it to null."
                )
            groups = customers[self.group_column].astype(str).to_numpy(dtype=object)
        return values, groups

    def fit(self, customers: pd.DataFrame | None, y=None) -> RFMSegments:
        """Learn the score edges (overall and per group) and validate the table."""
        _, self.segment_labels_ = self._parse()
        require_frame(customers, "RFMSegments.fit")
        values, groups = self._columns(customers, "RFMSegments.fit")

        def edges(mask):
            return {key: rfm_edges(values[mask, j], self.n_bins) for j, key in enumerate("rfm")}

        self.edges_ = {_ALL: edges(np.ones(len(values), dtype=bool))}
        if groups is not None:
            for group in sorted(set(groups)):
                self.edges_[group] = edges(groups == group)
        return self

    def predict(self, customers: pd.DataFrame) -> pd.DataFrame:
        """Scores ``r_score``, ``f_score``, ``m_score`` (int64), ``rfm_score`` ("545")
        and the named ``rfm_segment`` (categorical, config order) per customer."""
        if not hasattr(self, "edges_"):
            raise SegmentInputError("RFMSegments is not fitted yet; call fit(customers) first.")
        grid, names = self._parse()
        require_frame(customers, "RFMSegments.predict")
        values, groups = self._columns(customers, "RFMSegments.predict")
        keys = (
            np.full(len(values), _ALL, dtype=object)
            if groups is None
            else np.array([g if g in self.edges_ else _ALL for g in groups], dtype=object)
        )
        scores = np.zeros((len(values), 3), dtype="int64")
        for key in pd.unique(keys):
            mask = keys == key
            for j, name in enumerate("rfm"):
                edges = np.asarray(self.edges_[key][name])
                scores[mask, j] = 1 + np.searchsorted(edges, values[mask, j], side="right")
        segment = np.asarray(names, dtype=object)[grid[scores[:, 0] - 1, scores[:, 1] - 1]]
        return pd.DataFrame(
            {
                "r_score": scores[:, 0],
                "f_score": scores[:, 1],
                "m_score": scores[:, 2],
                "rfm_score": [f"{r}{f}{m}" for r, f, m in scores],
                "rfm_segment": pd.Categorical(segment, categories=names),
            },
            index=customers.index,
        )

    def definitions(self) -> dict[str, dict[str, Any]]:
        """Each named segment's rule on the (R, F) scores, for the segment map."""
        _, names = self._parse()
        out = {}
        for rank, item in enumerate(self.segments):
            (r0, r1), (f0, f1) = item["r"], item["f"]
            out[str(item["name"])] = {
                "name": str(item["name"]),
                "definition": {
                    "rule": f"R in [{r0}, {r1}] and F in [{f0}, {f1}]",
                    **(
                        {"description": str(item["description"])} if item.get("description") else {}
                    ),
                },
                "rank": rank,
            }
        return out
