"""The segment map: what each segment and tier is, how big, who is in it, what to do.

One entry per (grouping column, label), e.g. ``("segment", 0)`` or ``("tier", "VIP")``:

- ``name`` and ``definition`` (the centroid or the rule, from the model's
  ``definitions()``), ``rank`` (0 = most valuable) and ``level`` (top / middle / low);
- ``size`` and ``share`` of the customers;
- ``profile``: mean and median of the RFM columns, CLV and churn risk when the
  scored table has them;
- ``attributes``: for categorical customer attributes (industry, channel, region,
  ...), the share of each category within the group;
- ``action``: the recommended management action (``configs/actions.yaml``), plus the
  at-risk action when the group's mean ``churn_probability`` reaches the threshold,
  and ``action_reason``, why (the group's level, and the churn that made it at risk);
- ``actions_by_risk`` (entries of the column the actions config keys customers' actions
  on, ``tier`` by default): the one action for a customer of this group in each churn
  risk band, its reason (e.g. ``"tier VIP, risk high"``) and how many customers of the
  group are in that band. :meth:`~segml.scoring.CustomerScorer.predict` gives every
  customer this action and reason, so a VIP at high risk keeps the VIP treatment
  (a retention call by the account manager) instead of only the generic win-back.

A :class:`SegmentMap` is data: it round-trips through JSON exactly, flattens to a
CSV with one row per entry, and two maps can be diffed (sizes, shares, names,
actions) to see what a monthly retrain changed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The churn model's risk bands, highest first: the columns of the by_risk table.
from segml.models.churn import RISK_BANDS as _RISK_BANDS

__all__ = [
    "DEFAULT_ACTIONS",
    "GROUPING_COLUMNS",
    "PROFILE_COLUMNS",
    "RISK_ACTION_COLUMNS",
    "SegmentMap",
    "SegmentMapError",
    "build_segment_map",
    "load_actions",
    "risk_actions",
]

#: Columns mapped when present, in this order.
GROUPING_COLUMNS = ("segment", "tier", "value_tier", "value_class", "rfm_segment")

#: Columns profiled (mean and median) when present.
PROFILE_COLUMNS = (
    "days_since_last_purchase",
    "n_orders",
    "total_spend",
    "avg_order_value",
    "tenure_days",
    "clv",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "churn_probability",
)

#: The default actions; identical to ``configs/actions.yaml`` (a test pins it).
DEFAULT_ACTIONS: dict[str, Any] = {
    "levels": {
        "top": "Dedicated account manager; tailored offers; VIP events.",
        "middle": "Regular follow-ups; loyalty points; member discounts.",
        "low": "Automated service; periodic promotions; product education.",
        "at_risk": "Win-back contact.",
    },
    "at_risk_churn_probability": 0.5,
    "by_label": {
        "tier": {"VIP": "top", "regular": "middle", "prospect": "low"},
        "value_tier": {"high": "top", "medium": "middle", "low": "low"},
        "value_class": {
            "core": "top",
            "important": "Retention contact before value fades; loyalty benefits.",
            "potential": "Cross-sell and up-sell; onboarding to more product lines.",
            "maintain": "low",
        },
        "rfm_segment": {
            "champions": "top",
            "loyal": "top",
            "potential loyalist": "middle",
            "new": "Welcome series; product education.",
            "promising": "middle",
            "need attention": "middle",
            "about to sleep": "at_risk",
            "cannot lose": "Win-back contact by the account manager; personal offer.",
            "at risk": "at_risk",
            "hibernating": "low",
        },
    },
    "by_risk": {
        "column": "tier",
        "actions": {
            "VIP": {
                "high": "Retention call by the account manager; personal offer.",
                "medium": "Account manager check-in; tailored offer.",
                "low": "top",
            },
            "regular": {
                "high": "Win-back offer with a loyalty bonus.",
                "medium": "Re-engagement reminder with loyalty points.",
                "low": "middle",
            },
            "prospect": {
                # Most of a retail log (68% of CDNOW): lapsed one-off buyers, worth
                # little each; contact them, but spend nothing on them.
                "high": "Automated win-back email; no paid incentive.",
                "medium": "Reminder with a product recommendation.",
                "low": "low",
            },
        },
    },
}

#: Columns a customer's action may be keyed on (with the churn risk band).
RISK_ACTION_COLUMNS = ("tier", "segment")

_FORMAT = "segml.SegmentMap"
_FORMAT_VERSION = 1
_LEVELS = ("top", "middle", "low", "at_risk")


class SegmentMapError(ValueError):
    """Bad input to the segment map (missing column, bad actions config, bad document)."""


def check_actions(actions: Mapping[str, Any], where: str = "actions") -> dict[str, Any]:
    """Validate an actions config; return it with defaults filled in."""
    if not isinstance(actions, Mapping):
        raise SegmentMapError(f"{where} must be a mapping; got {type(actions).__name__}.")
    allowed = {"levels", "at_risk_churn_probability", "by_label", "by_risk"}
    unknown = sorted(set(actions) - allowed)
    if unknown:
        raise SegmentMapError(
            f"{where} has unknown key(s) {unknown}; allowed keys are {sorted(allowed)}."
        )
    levels = actions.get("levels", DEFAULT_ACTIONS["levels"])
    if not isinstance(levels, Mapping) or sorted(levels) != sorted(_LEVELS):
        found = sorted(levels) if isinstance(levels, Mapping) else levels
        raise SegmentMapError(
            f"{where}.levels must give an action for exactly {list(_LEVELS)}; got {found}."
        )
    threshold = actions.get("at_risk_churn_probability", 0.5)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 <= threshold <= 1
    ):
        raise SegmentMapError(
            f"{where}.at_risk_churn_probability must be a probability in [0, 1]; got {threshold!r}."
        )
    by_label = actions.get("by_label", {})
    if not isinstance(by_label, Mapping) or not all(
        isinstance(v, Mapping) for v in by_label.values()
    ):
        raise SegmentMapError(f"{where}.by_label must map column -> label -> level or action text.")
    return {
        "levels": {k: str(v) for k, v in levels.items()},
        "at_risk_churn_probability": float(threshold),
        "by_label": {str(c): {str(k): str(v) for k, v in m.items()} for c, m in by_label.items()},
        "by_risk": _check_by_risk(actions.get("by_risk"), f"{where}.by_risk"),
    }


def _check_by_risk(by_risk: Any, where: str) -> dict[str, Any]:
    """Validate the (group x risk band) action table; an absent one is ``{column: tier}``.

    Without ``actions``, every label's actions derive from its level (see
    :func:`risk_actions`): configs written before ``by_risk`` existed keep working.
    """
    if by_risk is None:
        return {"column": "tier", "actions": {}}
    if not isinstance(by_risk, Mapping):
        raise SegmentMapError(
            f"{where} must be a mapping {{column: tier, actions: {{label: {{high: ..., "
            f"medium: ..., low: ...}}}}}}; got {by_risk!r}."
        )
    unknown = sorted(set(by_risk) - {"column", "actions"})
    if unknown:
        raise SegmentMapError(
            f"{where} has unknown key(s) {unknown}; allowed keys are ['actions', 'column']."
        )
    column = by_risk.get("column", "tier")
    if column not in RISK_ACTION_COLUMNS:
        raise SegmentMapError(
            f"{where}.column must be one of {list(RISK_ACTION_COLUMNS)}; got {column!r}."
        )
    table = by_risk.get("actions", {}) or {}
    if not isinstance(table, Mapping):
        raise SegmentMapError(f"{where}.actions must map each {column} label to its actions.")
    checked = {}
    for label, by_band in table.items():
        if not isinstance(by_band, Mapping) or sorted(by_band) != sorted(_RISK_BANDS):
            found = sorted(by_band) if isinstance(by_band, Mapping) else by_band
            raise SegmentMapError(
                f"{where}.actions.{label} must give one action for each risk band "
                f"{list(_RISK_BANDS)}; got {found}. Write e.g. "
                f"{{high: 'Retention call.', medium: 'Check-in.', low: top}} (an action text "
                "or a level name: top, middle, low, at_risk)."
            )
        checked[str(label)] = {band: str(by_band[band]) for band in _RISK_BANDS}
    return {"column": str(column), "actions": checked}


def risk_actions(
    actions: Mapping[str, Any] | None,
    labels: Sequence[Any],
    ranks: Mapping[Any, int] | None = None,
) -> dict[str, dict[str, str]]:
    """The one action of each (label, churn risk band) of the ``by_risk`` column.

    Parameters
    ----------
    actions : mapping or None
        An actions config (:func:`load_actions`); None is :data:`DEFAULT_ACTIONS`.
    labels : sequence
        The labels of ``actions["by_risk"]["column"]`` (tiers best first, or segment
        ids), e.g. ``scorecard.tier_labels_``.
    ranks : mapping, optional
        Value rank of each label (0 = best), for labels the table does not list;
        default their position in ``labels``.

    Returns
    -------
    dict
        ``{str(label): {"high": action, "medium": action, "low": action}}``. A label
        the table lists takes its actions from there (a level name stands for that
        level's text). A label it does not list, or every label of a config without
        ``by_risk.actions`` (written before the table existed), gets its level's
        action at low and medium risk, and its level's action followed by the
        at-risk action at high risk: no customer loses the action of their group.

    Raises
    ------
    SegmentMapError
        When the table of a given config names a label that is not among ``labels``
        (a typo would otherwise leave that group on the derived actions without a
        word). The built-in table (``actions=None``) names VIP / regular / prospect
        and leaves other labels, e.g. of a custom scorecard, to their levels.

    Examples
    --------
    >>> from segml.scoring._segment_map import risk_actions
    >>> table = risk_actions(None, ["VIP", "regular", "prospect"])
    >>> table["VIP"]["high"]
    'Retention call by the account manager; personal offer.'
    >>> table["VIP"]["low"]
    'Dedicated account manager; tailored offers; VIP events.'
    >>> old = {"levels": {"top": "Account manager.", "middle": "Follow-ups.",
    ...                   "low": "Promotions.", "at_risk": "Win-back contact."}}
    >>> risk_actions(old, ["VIP", "regular", "prospect"])["VIP"]["high"]
    'Account manager. Win-back contact.'
    """
    checked = check_actions(DEFAULT_ACTIONS if actions is None else actions)
    column = checked["by_risk"]["column"]
    table = checked["by_risk"]["actions"]
    keys = [_label_key(label) for label in labels]
    unknown = sorted(set(table) - set(keys))
    if actions is None:
        table = {k: v for k, v in table.items() if k in keys}
    elif unknown:
        raise SegmentMapError(
            f"actions.by_risk.actions names {column} label(s) {unknown} that this run does not "
            f"have; its {column} labels are {keys}. Fix the labels in the actions config."
        )
    levels = checked["levels"]
    out = {}
    for position, key in enumerate(keys):
        if key in table:
            out[key] = {band: levels.get(text, text) for band, text in table[key].items()}
            continue
        rank = (
            position
            if ranks is None
            else int(ranks.get(key, ranks.get(labels[position], position)))
        )
        level = _level(column, key, rank, len(keys), checked)
        own = _action(column, key, level, checked)
        high = own if level == "at_risk" else f"{own} {levels['at_risk']}"
        out[key] = {"high": high, "medium": own, "low": own}
    return out


def action_reason(column: str, label: Any, band: str, name: str | None = None) -> str:
    """Why a customer gets an action: ``"tier VIP, risk high"``.

    A segment is shown with its name when it has one: ``"segment 2 (lapsed,
    one-off), risk low"``.
    """
    shown = f"{label} ({name})" if name is not None and str(name) != str(label) else f"{label}"
    return f"{column} {shown}, risk {band}"


def load_actions(path) -> dict[str, Any]:
    """Read and validate an actions YAML file (see ``configs/actions.yaml``).

    Examples
    --------
    >>> from pathlib import Path
    >>> import segml.scoring
    >>> path = Path(segml.scoring.__file__).resolve().parents[2] / "configs" / "actions.yaml"
    >>> load_actions(path)["levels"]["at_risk"]
    'Win-back contact.'
    """
    # The one safe YAML reader of configs: no Python objects, anchors or aliases.
    from segml._config import ConfigError, load_yaml

    if not Path(path).is_file():
        raise SegmentMapError(f"No actions config at {path}.")
    try:
        document = load_yaml(path)
    except ConfigError as exc:
        raise SegmentMapError(str(exc)) from None
    return check_actions(document or {}, where=str(path))


def _label_key(label) -> str:
    """Labels compare as text so that 0 (int, from a DataFrame) and "0" (JSON) match."""
    return str(label)


def _jsonable(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        value = float(value)
        return None if math.isnan(value) else value
    return value


class SegmentMap:
    """Every segment and tier: name, definition, size, share, profile, attributes, action.

    Build one with :func:`build_segment_map`; read one back with :meth:`from_json`.

    Parameters
    ----------
    entries : list of dict
        One per (column, label); see the module docstring for the fields.
    n_customers : int
        Customers the map was built on.
    metadata : dict, optional
        Free-form run information (as_of, model version, ...), JSON-ready.
    """

    def __init__(
        self,
        entries: Sequence[Mapping[str, Any]],
        n_customers: int,
        metadata: Mapping[str, Any] | None = None,
    ):
        self.entries = [dict(e) for e in entries]
        self.n_customers = int(n_customers)
        self.metadata = dict(metadata or {})

    def __repr__(self) -> str:
        columns = sorted({e["column"] for e in self.entries})
        return (
            f"SegmentMap({len(self.entries)} entries over {columns}, {self.n_customers} customers)"
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, SegmentMap) and self.to_dict() == other.to_dict()

    def entry(self, column: str, label) -> dict[str, Any]:
        """The entry for one group, e.g. ``entry("tier", "VIP")``."""
        for e in self.entries:
            if e["column"] == column and _label_key(e["label"]) == _label_key(label):
                return e
        known = [e["label"] for e in self.entries if e["column"] == column]
        raise KeyError(f"No entry ({column!r}, {label!r}) in the map; {column!r} has {known}.")

    def lookup(self, column: str, field: str = "action") -> dict[Any, Any]:
        """``{label: field}`` for one grouping column, e.g. the action of each tier.

        A batch job applies the map with ``scored[column].map(smap.lookup(column))``.
        """
        return {e["label"]: e[field] for e in self.entries if e["column"] == column}

    # ------------------------------------------------------------ data formats
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document (the exact content of :meth:`to_json`)."""
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "n_customers": self.n_customers,
            "metadata": self.metadata,
            "entries": self.entries,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> SegmentMap:
        """Inverse of :meth:`to_dict`."""
        from segml.persistence import check_document

        check_document(document, _FORMAT, _FORMAT_VERSION, error=SegmentMapError)
        return cls(document["entries"], document["n_customers"], document.get("metadata"))

    def to_json(self, path) -> None:
        """Write the map as JSON (atomically; sorted keys, so diffs of files are stable)."""
        from segml.persistence import write_json

        write_json(self.to_dict(), path)

    @classmethod
    def from_json(cls, path) -> SegmentMap:
        """Read a map written by :meth:`to_json`."""
        from segml.persistence import read_json

        return cls.from_dict(read_json(path))

    def to_frame(self) -> pd.DataFrame:
        """One row per entry: identity, size, action, then ``mean_*``, ``median_*``,
        ``share_<attribute>=<category>``; the definition as a JSON string."""
        rows = []
        for e in self.entries:
            row = {
                "column": e["column"],
                "label": _label_key(e["label"]),
                "name": e["name"],
                "rank": e["rank"],
                "level": e["level"],
                "size": e["size"],
                "share": e["share"],
                "at_risk": e["at_risk"],
                "action": e["action"],
                # Maps saved before reasons and risk actions existed have neither.
                "action_reason": e.get("action_reason"),
                "definition": json.dumps(e["definition"], sort_keys=True),
            }
            for band, chosen in (e.get("actions_by_risk") or {}).items():
                row[f"action_risk_{band}"] = chosen["action"]
                row[f"size_risk_{band}"] = chosen["size"]
            for stat in ("mean", "median"):
                for col, value in e["profile"][stat].items():
                    row[f"{stat}_{col}"] = value
            for attr, shares in e["attributes"].items():
                for cat, value in shares.items():
                    row[f"share_{attr}={cat}"] = value
            rows.append(row)
        return pd.DataFrame(rows)

    def to_csv(self, path) -> None:
        """Write :meth:`to_frame` as CSV (atomically)."""
        from segml.persistence import atomic_write_bytes

        atomic_write_bytes(self.to_frame().to_csv(index=False).encode("utf-8"), path)

    def diff(self, other: SegmentMap) -> pd.DataFrame:
        """What changed from this map (before) to ``other`` (after).

        Returns
        -------
        pandas.DataFrame
            One row per (column, label) in either map, with ``status`` (added,
            removed, changed, same), ``size_before/after``, ``size_change``,
            ``share_before/after``, ``share_change``, ``name_before/after``,
            ``action_before/after`` and ``mean_<col>_change`` for profiled columns
            in both. ``changed`` means a different name, action or size.

        Examples
        --------
        >>> import pandas as pd
        >>> from segml.scoring import build_segment_map
        >>> before = build_segment_map(pd.DataFrame({"tier": ["VIP", "regular", "regular"]}))
        >>> after = build_segment_map(pd.DataFrame({"tier": ["VIP", "VIP", "prospect"]}))
        >>> before.diff(after)[["status", "size_before", "size_after", "size_change"]]
                         status  size_before  size_after  size_change
        column label
        tier   VIP      changed            1           2            1
               prospect   added            0           1            1
               regular  removed            2           0           -2
        """

        def index(smap):
            return {(e["column"], _label_key(e["label"])): e for e in smap.entries}

        a, b = index(self), index(other)
        keys = list(a) + [k for k in b if k not in a]
        rows = []
        for key in keys:
            ea, eb = a.get(key), b.get(key)
            row = {"column": key[0], "label": key[1]}
            row["status"] = (
                "added"
                if ea is None
                else "removed"
                if eb is None
                else "changed"
                if any(ea[f] != eb[f] for f in ("name", "action", "size"))
                else "same"
            )
            for field in ("size", "share"):
                before = ea[field] if ea else 0
                after = eb[field] if eb else 0
                row[f"{field}_before"], row[f"{field}_after"] = before, after
                row[f"{field}_change"] = after - before
            for field in ("name", "action"):
                row[f"{field}_before"] = ea[field] if ea else None
                row[f"{field}_after"] = eb[field] if eb else None
            if ea and eb:
                for col in sorted(set(ea["profile"]["mean"]) & set(eb["profile"]["mean"])):
                    va, vb = ea["profile"]["mean"][col], eb["profile"]["mean"][col]
                    row[f"mean_{col}_change"] = None if va is None or vb is None else vb - va
            rows.append(row)
        out = pd.DataFrame(rows)
        rank = {"changed": 0, "added": 1, "removed": 2, "same": 3}
        out["_order"] = out["status"].map(rank)
        out["_column"] = out["column"].map(
            {c: i for i, c in enumerate(dict.fromkeys(out["column"]))}
        )
        out = out.sort_values(["_column", "_order"], kind="stable").drop(
            columns=["_order", "_column"]
        )
        return out.set_index(["column", "label"])


def build_segment_map(
    scored: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    definitions: Mapping[str, Mapping[Any, Mapping[str, Any]]] | None = None,
    actions: Mapping[str, Any] | None = None,
    profile_columns: Sequence[str] | None = None,
    attribute_columns: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> SegmentMap:
    """Summarise a scored customer table into a :class:`SegmentMap`.

    Parameters
    ----------
    scored : pandas.DataFrame
        One row per customer with the grouping columns (``segment``, ``tier``, ...),
        and optionally RFM columns, ``clv``, ``churn_probability`` and attributes.
    columns : sequence of str, optional
        Grouping columns to map; default: those of :data:`GROUPING_COLUMNS` present.
    definitions : mapping, optional
        ``{column: model.definitions()}``, e.g. ``{"segment": seg.definitions(),
        "tier": card.definitions()}``; gives each label its name, rule or centroid
        and value rank. Without it, labels rank in category order (or sorted order)
        and have no definition.
    actions : mapping, optional
        An actions config (see ``configs/actions.yaml`` and :func:`load_actions`);
        default :data:`DEFAULT_ACTIONS`. Entries of its ``by_risk`` column (``tier``
        by default) also get ``actions_by_risk`` (see :func:`risk_actions`), with the
        customers per band when ``scored`` has a ``risk_band`` column.
    profile_columns : sequence of str, optional
        Numeric columns to profile; default: those of :data:`PROFILE_COLUMNS` present.
    attribute_columns : sequence of str, default ()
        Categorical customer attributes (industry, channel, ...) to profile as
        shares per category within each group.
    metadata : mapping, optional
        Stored as is (JSON-ready), e.g. ``{"as_of": "1998-06-30"}``.

    Returns
    -------
    SegmentMap

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.scoring import build_segment_map
    >>> scored = pd.DataFrame({"tier": pd.Categorical(["VIP", "regular", "regular", "prospect"],
    ...                                               categories=["VIP", "regular", "prospect"]),
    ...                        "total_spend": [12_000.0, 6_000.0, 5_000.0, 100.0],
    ...                        "industry": ["retail", "retail", "tech", "tech"]})
    >>> smap = build_segment_map(scored, attribute_columns=["industry"])
    >>> vip = smap.entry("tier", "VIP")
    >>> vip["size"], vip["share"], vip["action"]
    (1, 0.25, 'Dedicated account manager; tailored offers; VIP events.')
    >>> vip["action_reason"]
    'tier VIP: level top'
    >>> vip["actions_by_risk"]["high"]["action"], vip["actions_by_risk"]["high"]["reason"]
    ('Retention call by the account manager; personal offer.', 'tier VIP, risk high')
    >>> smap.entry("tier", "regular")["attributes"]["industry"]
    {'retail': 0.5, 'tech': 0.5}
    """
    if not isinstance(scored, pd.DataFrame) or len(scored) == 0:
        raise SegmentMapError(
            "build_segment_map expects a non-empty DataFrame of scored customers."
        )
    if columns is None:
        columns = [c for c in GROUPING_COLUMNS if c in scored.columns]
        if not columns:
            raise SegmentMapError(
                f"build_segment_map found none of the grouping columns {list(GROUPING_COLUMNS)} "
                f"in {list(scored.columns)}; score the customers first or pass columns=[...]."
            )
    missing = [c for c in list(columns) + list(attribute_columns) if c not in scored.columns]
    if missing:
        raise SegmentMapError(
            f"build_segment_map: the scored table lacks the column(s) {missing}; found "
            f"{list(scored.columns)}."
        )
    if profile_columns is None:
        profile_columns = [c for c in PROFILE_COLUMNS if c in scored.columns]
    else:
        absent = [c for c in profile_columns if c not in scored.columns]
        if absent:
            raise SegmentMapError(
                f"build_segment_map: profile column(s) {absent} are not in the table."
            )
    given = actions
    actions = check_actions(DEFAULT_ACTIONS if actions is None else actions)
    by_risk_column = actions["by_risk"]["column"]
    definitions = dict(definitions or {})
    n = len(scored)
    entries = []
    for column in columns:
        values = scored[column]
        n_missing = int(values.isna().sum())
        if n_missing:
            raise SegmentMapError(
                f"build_segment_map: column {column!r} has {n_missing} missing label(s); every "
                "customer needs a segment/tier before the map is built."
            )
        defs = {_label_key(k): v for k, v in definitions.get(column, {}).items()}
        labels = _ordered_labels(values, defs)
        groups = {
            _label_key(k): idx
            for k, idx in scored.groupby(values, observed=True, sort=False).indices.items()
        }
        by_risk = {}
        if column == by_risk_column:
            # labels are in value order, so a label's position is its rank.
            by_risk = risk_actions(given, labels)
        risk_band = scored["risk_band"].astype(str).to_numpy() if "risk_band" in scored else None
        for position, label in enumerate(labels):
            key = _label_key(label)
            rows = groups.get(key, np.array([], dtype="int64"))
            d = defs.get(key, {})
            rank = int(d.get("rank", position))
            level = _level(column, key, rank, len(labels), actions)
            profile = {"mean": {}, "median": {}}
            for col in profile_columns:
                x = pd.to_numeric(scored[col].iloc[rows], errors="coerce").to_numpy(dtype="float64")
                has = len(x) and not np.isnan(x).all()
                profile["mean"][col] = _jsonable(np.nanmean(x)) if has else None
                profile["median"][col] = _jsonable(np.nanmedian(x)) if has else None
            attributes = {}
            for attr in attribute_columns:
                share = scored[attr].iloc[rows].astype(str).value_counts(normalize=True, sort=False)
                attributes[attr] = {str(k): _jsonable(v) for k, v in sorted(share.items())}
            churn = profile["mean"].get("churn_probability")
            at_risk = churn is not None and churn >= actions["at_risk_churn_probability"]
            action = _action(column, key, level, actions)
            reason = f"{column} {label}: " + (
                "own action" if level == "custom" else f"level {level}"
            )
            if at_risk and level != "at_risk":
                action = f"{action} {actions['levels']['at_risk']}"
                reason += (
                    f"; mean churn_probability {churn:.2f} >= "
                    f"{actions['at_risk_churn_probability']:g} (at risk)"
                )
            entry_risk = None
            if key in by_risk:
                name = d.get("name") if column == "segment" else None
                entry_risk = {
                    band: {
                        "action": by_risk[key][band],
                        "reason": action_reason(column, label, band, name),
                        "size": None
                        if risk_band is None
                        else int(np.count_nonzero(risk_band[rows] == band)),
                    }
                    for band in _RISK_BANDS
                }
            entries.append(
                {
                    "column": column,
                    "label": _jsonable(label),
                    "name": str(d.get("name", label)),
                    "definition": d.get("definition"),
                    "rank": rank,
                    "level": level,
                    "size": int(len(rows)),
                    "share": len(rows) / n,
                    "profile": profile,
                    "attributes": attributes,
                    "at_risk": bool(at_risk),
                    "action": action,
                    "action_reason": reason,
                    **({} if entry_risk is None else {"actions_by_risk": entry_risk}),
                }
            )
    return SegmentMap(entries, n, metadata)


def _ordered_labels(values: pd.Series, defs: Mapping[str, Any]) -> list:
    """Labels in value order: the models' ranks, else category order, else sorted."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = list(values.cat.categories)
    else:
        present = sorted(pd.unique(values).tolist(), key=lambda v: (str(type(v)), v))
    if defs:
        # Labels the model defines but nobody holds still appear (size 0).
        by_key = {_label_key(v): v for v in present}
        for key in defs:
            by_key.setdefault(key, _parse_label(key, present))
        return sorted(by_key.values(), key=lambda v: defs.get(_label_key(v), {}).get("rank", 10**9))
    return present


def _parse_label(key: str, present: list):
    if (
        present
        and all(isinstance(v, int | np.integer) for v in present)
        and key.lstrip("-").isdigit()
    ):
        return int(key)
    return key


def _level(column: str, key: str, rank: int, n_labels: int, actions) -> str:
    named = actions["by_label"].get(column, {}).get(key)
    if named in actions["levels"]:
        return named
    if named is not None:
        return "custom"
    if rank == 0:
        return "top"
    return "low" if rank == n_labels - 1 else "middle"


def _action(column: str, key: str, level: str, actions) -> str:
    named = actions["by_label"].get(column, {}).get(key)
    if named is not None and named not in actions["levels"]:
        return named
    return actions["levels"][level]
