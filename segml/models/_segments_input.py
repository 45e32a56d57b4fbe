"""Input checks shared by the segment and tier models.

Every model here takes one row per customer, identified by the index (as
:func:`segml.rfm_summary` returns it) or by a ``customer_id`` column. These helpers
turn bad input into a :class:`SegmentInputError` that names the column, how many
rows are wrong, and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["SegmentInputError", "customer_ids", "numeric_columns", "require_frame"]


class SegmentInputError(ValueError):
    """The customer table given to a segment or tier model is unusable."""


def require_frame(customers, what: str) -> pd.DataFrame:
    """Refuse anything but a non-empty DataFrame."""
    if not isinstance(customers, pd.DataFrame):
        raise SegmentInputError(
            f"{what} expects a pandas DataFrame with one row per customer "
            f"(e.g. segml.rfm_summary(...)); got {type(customers).__name__}."
        )
    if len(customers) == 0:
        raise SegmentInputError(f"{what} got an empty table (0 customers); nothing to score.")
    return customers


def id_order(customers: pd.DataFrame, what: str) -> np.ndarray | None:
    """Row order that sorts the customers by id; None when they are sorted already.

    Same checks as :func:`customer_ids`, but tables from ``segml.rfm_summary`` come
    sorted by id, and checking that on the Arrow-backed index is much cheaper than
    copying a million ids into Python strings.
    """
    ids = customers["customer_id"] if "customer_id" in customers.columns else customers.index
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pd.Index(ids).astype("str")
    values = pa.array(ids.array)
    n = len(values)
    # Strictly increasing ids are sorted and unique; Arrow checks that in one pass.
    if n < 2 or pc.all(pc.less(values[: n - 1], values[1:])).as_py():
        return None
    if not ids.is_unique:
        n_repeated = len(ids) - ids.nunique()
        raise SegmentInputError(
            f"{what}: {n_repeated} customer_id value(s) repeat; expected one row per "
            "customer. Aggregate transactions first with segml.rfm_summary."
        )
    return np.argsort(ids.to_numpy(dtype=object), kind="stable")


def customer_ids(customers: pd.DataFrame, what: str) -> np.ndarray:
    """Customer ids as a string array: the ``customer_id`` column, else the index.

    Raises when ids repeat, because a customer must land in exactly one segment.
    """
    if "customer_id" in customers.columns:
        ids = customers["customer_id"]
    else:
        ids = customers.index.to_series()
    ids = ids.astype(str).to_numpy(dtype=object)
    n_repeated = len(ids) - len(pd.unique(ids))
    if n_repeated:
        raise SegmentInputError(
            f"{what}: {n_repeated} customer_id value(s) repeat; expected one row per "
            "customer. Aggregate transactions first with segml.rfm_summary."
        )
    return ids


def numeric_columns(
    customers: pd.DataFrame,
    columns: Sequence[str],
    what: str,
    *,
    non_negative: bool = False,
) -> np.ndarray:
    """The named columns as a float64 matrix, refusing missing, non-finite or negative values."""
    missing = [c for c in columns if c not in customers.columns]
    if missing:
        raise SegmentInputError(
            f"{what}: the customer table lacks the column(s) {missing}; found "
            f"{list(customers.columns)}. Compute them with segml.rfm_summary or change "
            "the `features` parameter."
        )
    out = np.empty((len(customers), len(columns)), dtype="float64")
    for j, column in enumerate(columns):
        try:
            values = pd.to_numeric(customers[column], errors="raise").to_numpy(dtype="float64")
        except (TypeError, ValueError):
            raise SegmentInputError(
                f"{what}: column {column!r} is not numeric (dtype {customers[column].dtype})."
            ) from None
        n_bad = int((~np.isfinite(values)).sum())
        if n_bad:
            raise SegmentInputError(
                f"{what}: column {column!r} has {n_bad} missing or infinite value(s); "
                "drop or fill those customers first."
            )
        if non_negative:
            n_negative = int((values < 0).sum())
            if n_negative:
                raise SegmentInputError(
                    f"{what}: column {column!r} has {n_negative} negative value(s); the "
                    "log transform needs values >= 0 (clean refunds in the transactions)."
                )
        out[:, j] = values
    return out
