"""Half-open bands ``[lower, upper)`` read from config, and the errors for bad tables.

Practice tables leave gaps ("2-3 purchases a month is middle, < 2 is low": where
does 3.5 go?). Here every band is half-open, ``lower <= x < upper``, with ``lower``
omitted (null) for the lowest band and ``upper`` omitted for the highest, and the
bands must tile the whole line: no gap, no overlap. A value equal to a boundary
belongs to the band above it (4 purchases a month is "high" when high starts at 4).

An edge is a number, or ``{at_quantile: q}``: the ``q`` quantile of the measure over
the training customers (:func:`numpy.quantile`, linear interpolation), learnt at fit
and then fixed. :func:`band_quantiles` lists the quantiles a table needs and
:func:`parse_bands` takes their fitted values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Band",
    "TierConfigError",
    "assign_bands",
    "band_quantiles",
    "check_keys",
    "load_yaml_config",
    "parse_bands",
]


class TierConfigError(ValueError):
    """A tier, scorecard or segment config is invalid; the message names the key."""


@dataclass(frozen=True)
class Band:
    """One row of a grading table: ``lower <= value < upper`` earns ``points``."""

    label: str
    lower: float  # -inf for the lowest band
    upper: float  # +inf for the highest band
    points: float | None = None

    def describe(self, unit: str = "") -> str:
        """The band as a readable rule, e.g. ``"2 <= x < 4"``."""
        unit = f" {unit}" if unit else ""
        if math.isinf(self.lower) and math.isinf(self.upper):
            return "any value"
        if math.isinf(self.lower):
            return f"x < {_num(self.upper)}{unit}"
        if math.isinf(self.upper):
            return f"x >= {_num(self.lower)}{unit}"
        return f"{_num(self.lower)} <= x < {_num(self.upper)}{unit}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label}
        if not math.isinf(self.lower):
            out["lower"] = self.lower
        if not math.isinf(self.upper):
            out["upper"] = self.upper
        if self.points is not None:
            out["points"] = self.points
        return out


def _num(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e6 else f"{x:,.0f}"


def check_keys(item: Any, allowed: Sequence[str], required: Sequence[str], where: str) -> Mapping:
    """Refuse a config entry that is not a mapping, lacks a key or has an unknown one."""
    if not isinstance(item, Mapping):
        raise TierConfigError(f"{where} must be a mapping with keys {list(allowed)}; got {item!r}.")
    unknown = sorted(set(item) - set(allowed))
    if unknown:
        raise TierConfigError(
            f"{where} has unknown field(s) {unknown}; allowed fields are {sorted(allowed)}."
        )
    missing = [k for k in required if k not in item]
    if missing:
        raise TierConfigError(f"{where} lacks the required field(s) {missing}.")
    return item


def _quantile_of(value: Any, where: str) -> float | None:
    """``q`` of an ``{at_quantile: q}`` edge, None for a plain number or null."""
    if not isinstance(value, Mapping):
        return None
    if set(value) != {"at_quantile"}:
        raise TierConfigError(
            f"{where} must be a number, null, or {{at_quantile: q}} with 0 < q < 1; got {value!r}."
        )
    q = value["at_quantile"]
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q < 1:
        raise TierConfigError(f"{where}.at_quantile must be a number with 0 < q < 1; got {q!r}.")
    return float(q)


def band_quantiles(items: Any, where: str) -> list[float]:
    """The quantiles (sorted, distinct) that the ``{at_quantile: q}`` edges of a band list use.

    Examples
    --------
    >>> from segml.models._scorecard_bands import band_quantiles
    >>> band_quantiles([{"label": "high", "lower": {"at_quantile": 0.9}},
    ...                 {"label": "mid", "lower": {"at_quantile": 0.7},
    ...                  "upper": {"at_quantile": 0.9}},
    ...                 {"label": "low", "upper": {"at_quantile": 0.7}}], "bands")
    [0.7, 0.9]
    """
    if not isinstance(items, Sequence) or isinstance(items, str):
        return []
    found = set()
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            for key in ("lower", "upper"):
                q = _quantile_of(item.get(key), f"{where}[{i}].{key}")
                if q is not None:
                    found.add(q)
    return sorted(found)


def _bound(
    value: Any,
    where: str,
    key: str,
    default: float,
    quantile_values: Mapping[float, float] | None,
) -> float:
    if value is None:
        return default
    q = _quantile_of(value, f"{where}.{key}")
    if q is not None:
        if quantile_values is None or q not in quantile_values:
            raise TierConfigError(
                f"{where}.{key} is the {q:g} quantile of the training data, which is not fitted "
                "yet; call fit(customers) first."
            )
        return float(quantile_values[q])
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TierConfigError(f"{where}.{key} must be a number or null; got {value!r}.")
    if math.isnan(value):
        raise TierConfigError(f"{where}.{key} must be a number or null; got NaN.")
    return float(value)


def parse_bands(
    items: Any,
    where: str,
    *,
    with_points: bool,
    quantile_values: Mapping[float, float] | None = None,
) -> list[Band]:
    """Validate a list of bands and return them sorted from lowest to highest.

    Parameters
    ----------
    items : list of mapping
        Each ``{label, lower, upper[, points]}``; ``lower``/``upper`` may be omitted
        or null for an open end. Any order (practice tables list "high" first).
    where : str
        Config path used in error messages, e.g. ``"criteria[0].bands"``.
    with_points : bool
        Whether each band must carry ``points``.
    quantile_values : mapping of float to float, optional
        Fitted value of each quantile that an ``{at_quantile: q}`` edge names. Two
        quantiles with the same value (ties in the data) leave the band between them
        empty, ``lower == upper``; only fitted edges may do that.

    Examples
    --------
    >>> from segml.models._scorecard_bands import parse_bands
    >>> bands = parse_bands([{"label": "high", "lower": 4, "points": 5},
    ...                      {"label": "low", "upper": 4, "points": 1}], "bands", with_points=True)
    >>> [b.describe() for b in bands]
    ['x < 4', 'x >= 4']
    >>> parse_bands([{"label": "high", "lower": 4, "points": 5},
    ...              {"label": "low", "upper": 2, "points": 1}], "bands", with_points=True)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segml.models._scorecard_bands.TierConfigError: bands: values in [2, 4) fall in no band ...
    """
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise TierConfigError(f"{where} must be a non-empty list of bands; got {items!r}.")
    allowed = ["label", "lower", "upper"] + (["points"] if with_points else [])
    required = ["label"] + (["points"] if with_points else [])
    bands = []
    for i, item in enumerate(items):
        w = f"{where}[{i}]"
        check_keys(item, allowed, required, w)
        lower = _bound(item.get("lower"), w, "lower", -math.inf, quantile_values)
        upper = _bound(item.get("upper"), w, "upper", math.inf, quantile_values)
        # Two different quantiles of tied data may share a value: that band is empty.
        q_lower = _quantile_of(item.get("lower"), f"{w}.lower")
        q_upper = _quantile_of(item.get("upper"), f"{w}.upper")
        fitted_tie = (
            lower == upper and q_lower is not None and q_upper is not None and q_lower < q_upper
        )
        if not (lower < upper or fitted_tie):
            raise TierConfigError(f"{w}: lower ({lower:g}) must be below upper ({upper:g}).")
        points = None
        if with_points:
            points = item["points"]
            if isinstance(points, bool) or not isinstance(points, int | float):
                raise TierConfigError(f"{w}.points must be a number; got {points!r}.")
            points = float(points)
        bands.append(Band(str(item["label"]), lower, upper, points))
    labels = [b.label for b in bands]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise TierConfigError(f"{where}: band label(s) {repeated} appear more than once.")
    bands.sort(key=lambda b: (b.lower, b.upper))
    if not math.isinf(bands[0].lower):
        raise TierConfigError(
            f"{where}: values below {bands[0].lower:g} fall in no band; leave out 'lower' "
            f"(or set it to null) on the lowest band {bands[0].label!r}."
        )
    if not math.isinf(bands[-1].upper):
        raise TierConfigError(
            f"{where}: values from {bands[-1].upper:g} up fall in no band; leave out 'upper' "
            f"(or set it to null) on the highest band {bands[-1].label!r}."
        )
    for below, above in zip(bands, bands[1:], strict=False):
        if below.upper < above.lower:
            raise TierConfigError(
                f"{where}: values in [{below.upper:g}, {above.lower:g}) fall in no band (gap "
                f"between {below.label!r} and {above.label!r}); make {below.label!r}.upper "
                f"equal {above.label!r}.lower."
            )
        if below.upper > above.lower:
            raise TierConfigError(
                f"{where}: bands {below.label!r} and {above.label!r} overlap on "
                f"[{above.lower:g}, {min(below.upper, above.upper):g}); make "
                f"{below.label!r}.upper equal {above.label!r}.lower."
            )
    return bands


def assign_bands(values: np.ndarray, bands: Sequence[Band]) -> np.ndarray:
    """Index (into ``bands``, lowest first) of the band holding each value.

    ``searchsorted(..., side="right")`` puts a value equal to a boundary in the band
    above it, which is exactly the half-open ``[lower, upper)`` rule.
    """
    inner = np.array([b.lower for b in bands[1:]], dtype="float64")
    return np.searchsorted(inner, values, side="right")


def load_yaml_config(path, allowed: Sequence[str], what: str) -> dict[str, Any]:
    """Read a YAML mapping whose keys must be among ``allowed`` (constructor parameters)."""
    # The one safe YAML reader of configs: no Python objects, anchors or aliases (a
    # 1 KB alias bomb would otherwise expand to gigabytes).
    from segml._config import ConfigError, load_yaml

    path = Path(path)
    if not path.is_file():
        raise TierConfigError(f"No {what} config at {path}.")
    try:
        document = load_yaml(path)
    except ConfigError as exc:
        raise TierConfigError(str(exc)) from None
    if not isinstance(document, Mapping):
        raise TierConfigError(f"{path} must hold a mapping of {what} parameters {list(allowed)}.")
    unknown = sorted(set(document) - set(allowed))
    if unknown:
        raise TierConfigError(
            f"{path}: unknown key(s) {unknown} for {what}; allowed keys are {sorted(allowed)}."
        )
    return dict(document)
