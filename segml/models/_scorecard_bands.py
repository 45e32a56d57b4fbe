"""Half-open bands ``[lower, upper)`` read from config, and the errors for bad tables.

Practice tables leave gaps ("2-3 purchases a month is middle, < 2 is low": where
does 3.5 go?). Here every band is half-open, ``lower <= x < upper``, with ``lower``
omitted (null) for the lowest band and ``upper`` omitted for the highest, and the
bands must tile the whole line: no gap, no overlap. A value equal to a boundary
belongs to the band above it (4 purchases a month is "high" when high starts at 4).
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


def _bound(value: Any, where: str, key: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TierConfigError(f"{where}.{key} must be a number or null; got {value!r}.")
    if math.isnan(value):
        raise TierConfigError(f"{where}.{key} must be a number or null; got NaN.")
    return float(value)


def parse_bands(items: Any, where: str, *, with_points: bool) -> list[Band]:
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
        lower = _bound(item.get("lower"), w, "lower", -math.inf)
        upper = _bound(item.get("upper"), w, "upper", math.inf)
        if not lower < upper:
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
    import yaml

    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TierConfigError(f"No {what} config at {path}.") from None
    except yaml.YAMLError as exc:
        raise TierConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(document, Mapping):
        raise TierConfigError(f"{path} must hold a mapping of {what} parameters {list(allowed)}.")
    unknown = sorted(set(document) - set(allowed))
    if unknown:
        raise TierConfigError(
            f"{path}: unknown key(s) {unknown} for {what}; allowed keys are {sorted(allowed)}."
        )
    return dict(document)
