"""Tier and segment migration between two scorings of the same customers.

Given last month's and this month's labels per customer, the migration matrix
counts customers by (previous label, current label). Customers only in the current
scoring are the row ``(new)``; customers only in the previous one are the column
``(lost)``. Row shares answer "of last month's VIPs, what share are VIPs now?".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["LOST", "NEW", "MigrationError", "migration_matrix"]

#: Row label of customers absent from the previous scoring.
NEW = "(new)"
#: Column label of customers absent from the current scoring.
LOST = "(lost)"


class MigrationError(ValueError):
    """The two scorings cannot be compared (missing column, repeated or missing labels)."""


def _labels(scoring, column: str, which: str) -> pd.Series:
    if isinstance(scoring, pd.Series):
        series = scoring
    elif isinstance(scoring, pd.DataFrame):
        if column not in scoring.columns:
            raise MigrationError(
                f"the {which} scoring lacks the column {column!r}; found {list(scoring.columns)}. "
                "Pass column=... naming the tier or segment column."
            )
        series = scoring[column]
        if "customer_id" in scoring.columns:
            series = series.set_axis(scoring["customer_id"].to_numpy())
    else:
        raise MigrationError(
            f"the {which} scoring must be a DataFrame or Series; got {type(scoring).__name__}."
        )
    ids = series.index.astype(str)
    n_repeated = int(ids.duplicated().sum())
    if n_repeated:
        raise MigrationError(
            f"the {which} scoring has {n_repeated} repeated customer_id value(s); expected one "
            "row per customer."
        )
    n_missing = int(series.isna().sum())
    if n_missing:
        raise MigrationError(
            f"the {which} scoring has {n_missing} customer(s) without a {column!r}; drop or "
            "label them first."
        )
    return series.set_axis(ids)


def migration_matrix(
    previous,
    current,
    column: str = "tier",
    *,
    normalize: str | None = None,
    order: Sequence | None = None,
) -> pd.DataFrame:
    """Customers moving between labels from one scoring to the next.

    Parameters
    ----------
    previous, current : pandas.DataFrame or pandas.Series
        One row per customer, indexed by ``customer_id`` (or with a ``customer_id``
        column); a DataFrame must have ``column``.
    column : str, default "tier"
        Label column, e.g. ``"tier"`` or ``"segment"``.
    normalize : {None, "row", "all"}, default None
        None gives counts; ``"row"`` divides each row by its total (where last
        month's customers went); ``"all"`` divides by the number of customers in
        either scoring.
    order : sequence, optional
        Label order; default: categorical order when a scoring is categorical
        (best tier first), else sorted.

    Returns
    -------
    pandas.DataFrame
        Rows: previous labels then ``"(new)"``; columns: current labels then
        ``"(lost)"``. The ``("(new)", "(lost)")`` cell is always 0.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.scoring import migration_matrix
    >>> before = pd.Series({"a": "VIP", "b": "VIP", "c": "regular", "d": "regular"})
    >>> after = pd.Series({"a": "VIP", "b": "regular", "c": "regular", "e": "VIP"})
    >>> migration_matrix(before, after, order=["VIP", "regular"])
    current   VIP  regular  (lost)
    previous
    VIP         1        1       0
    regular     0        1       1
    (new)       1        0       0
    """
    if normalize not in (None, "row", "all"):
        raise MigrationError(f"normalize must be None, 'row' or 'all'; got {normalize!r}.")
    before = _labels(previous, column, "previous")
    after = _labels(current, column, "current")
    if order is None:
        order = []
        for series in (before, after):
            if isinstance(series.dtype, pd.CategoricalDtype):
                order += [c for c in series.cat.categories if c not in order]
        rest = set(pd.unique(before)) | set(pd.unique(after))
        order += sorted((v for v in rest if v not in order), key=lambda v: (str(type(v)), v))
    order = list(order)
    unknown = (set(pd.unique(before)) | set(pd.unique(after))) - set(order)
    if unknown:
        raise MigrationError(
            f"order lacks the label(s) {sorted(map(str, unknown))} found in the scorings."
        )
    for label in (NEW, LOST):
        if label in order:
            raise MigrationError(
                f"{label!r} is reserved for new/lost customers; rename that label."
            )

    rows = order + [NEW]
    cols = order + [LOST]
    row_pos = {v: i for i, v in enumerate(rows)}
    col_pos = {v: i for i, v in enumerate(cols)}
    ids = before.index.union(after.index)
    b = before.reindex(ids)
    a = after.reindex(ids)
    r = np.array([row_pos[NEW] if pd.isna(v) else row_pos[v] for v in b.astype(object)])
    c = np.array([col_pos[LOST] if pd.isna(v) else col_pos[v] for v in a.astype(object)])
    counts = np.zeros((len(rows), len(cols)), dtype="int64")
    np.add.at(counts, (r, c), 1)
    out = pd.DataFrame(
        counts,
        index=pd.Index(rows, name="previous", dtype=object),
        columns=pd.Index(cols, name="current", dtype=object),
    )
    if normalize == "row":
        totals = out.sum(axis=1).replace(0, np.nan)
        out = out.div(totals, axis=0).fillna(0.0)
    elif normalize == "all":
        out = out / max(len(ids), 1)
    return out
