"""Per-customer reductions on integer customer codes, shared by the feature functions.

The feature functions group millions of rows by a string ``customer_id``. Hashing
the ids once into integer codes (see ``segml.features._rfm._customer_codes``: codes
in sorted-id order) and reducing over contiguous runs of a sorted integer key is
several times faster than grouping, sorting and reindexing by the strings, and
the runs come out in sorted-id order, the index of every per-customer table.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import pyarrow as pa

from segml.features._rfm import _customer_codes, _segment_starts

__all__ = ["customer_codes", "distinct_periods", "sum_by_customer"]

# The codes of the last id column seen: (weak reference to its Arrow data, codes,
# sorted ids); see customer_codes. The tuple is replaced whole, never modified in
# place, so readers need no lock: a race between threads can only cost a miss
# (hashing again), never hand out another column's codes.
_last_codes: tuple[weakref.ref, np.ndarray, pa.Array] | None = None


def _forget(reference: weakref.ref) -> None:
    """Drop the remembered codes once their id column is garbage collected."""
    global _last_codes
    remembered = _last_codes
    if remembered is not None and remembered[0] is reference:
        _last_codes = None


def customer_codes(customer_id: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """``_customer_codes`` of the ids, hashed once for the same id column.

    Hashing millions of string ids is the largest single cost of the feature
    functions, and :func:`segml.scoring.customer_features` hands the same log to
    :func:`segml.features.churn_features` and to
    :func:`segml.models.scorecard.repurchase_rate`. So the codes of the last column
    are remembered, keyed by the identity of the Arrow data behind it: Arrow data is
    immutable (pandas replaces it on assignment), and the key is a weak reference,
    so a hit is always the same ids, and nothing is kept once the column is gone.
    Columns not backed by Arrow (e.g. object dtype) are hashed on every call.

    Parameters
    ----------
    customer_id : pandas.Series
        Customer ids of the rows (converted with ``astype("str")``); no missing ids.

    Returns
    -------
    codes : numpy.ndarray
        int64 code of each row (read-only: it may be shared between callers); code
        ``i`` is the ``i``-th id in sorted order.
    sorted_ids : pyarrow.Array
        The distinct ids, sorted.

    Examples
    --------
    >>> import pandas as pd
    >>> codes, sorted_ids = customer_codes(pd.Series(["b", "a", "b"]))
    >>> codes.tolist(), sorted_ids.to_pylist()
    ([1, 0, 1], ['a', 'b'])
    """
    global _last_codes
    ids = customer_id.astype("str")
    # Only Arrow-backed strings hand out their data as is; other arrays would build
    # new Arrow data here on every call.
    arrow_backed = isinstance(ids.array, pd.arrays.ArrowStringArray)
    data = ids.array.__arrow_array__() if arrow_backed else None
    remembered = _last_codes
    if data is not None and remembered is not None and remembered[0]() is data:
        return remembered[1], remembered[2]
    codes, sorted_ids = _customer_codes(ids)
    codes.flags.writeable = False
    if data is not None:
        _last_codes = (weakref.ref(data, _forget), codes, sorted_ids)
    return codes, sorted_ids


def distinct_periods(codes: np.ndarray, periods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (customer, period) pairs of the rows, by customer then period.

    Parameters
    ----------
    codes : numpy.ndarray
        int64 customer code of each row.
    periods : numpy.ndarray
        int64 period number of each row (e.g. day or month number); not empty.

    Returns
    -------
    customer, period : numpy.ndarray
        int64 arrays of equal length: each pair once, sorted by customer code, then
        period. A customer's periods are therefore one contiguous, increasing run.

    Examples
    --------
    >>> import numpy as np
    >>> customer, period = distinct_periods(np.array([1, 0, 1, 1]), np.array([5, 7, 3, 5]))
    >>> customer.tolist(), period.tolist()
    ([0, 1, 1], [7, 3, 5])
    """
    first = int(periods.min())
    span = int(periods.max()) - first + 1
    # One integer key per row orders by (customer, period); a plain sort of the keys
    # (no argsort, nothing else is carried along) is the cheapest way to group them.
    keys = np.sort(codes * span + (periods - first))
    keys = keys[_segment_starts(keys)]
    return keys // span, keys % span + first


def sum_by_customer(
    codes: np.ndarray, n_customers: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Per-customer float64 sum of ``weights`` (row count if None), in code order.

    Rows are added in their order in the arrays. Customers without rows get 0.

    Examples
    --------
    >>> import numpy as np
    >>> sum_by_customer(np.array([2, 0, 2]), 4, np.array([1.5, 2.0, 3.0])).tolist()
    [2.0, 0.0, 4.5, 0.0]
    >>> sum_by_customer(np.array([], dtype=np.int64), 2, np.array([])).dtype
    dtype('float64')
    """
    # bincount returns int64 for an empty selection even with weights: cast.
    return np.bincount(codes, weights=weights, minlength=n_customers).astype("float64", copy=False)
