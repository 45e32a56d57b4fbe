"""Collapse customers to their distinct rows, which is exact for likelihoods and predictions.

Customers with the same (frequency, recency, T) have the same likelihood term and the
same predictions, so a table of millions of customers is evaluated on its few hundred
thousand distinct rows, each weighted by how many customers share it (Fader & Hardie
condense the CDNOW data the same way; lifetimes' ``weights`` argument is this count).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def distinct_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of the given equal-length columns.

    Returns ``(uniques, inverse, counts)``: ``uniques[k][inverse]`` gives back
    ``columns[k]`` and ``counts[j]`` is how many rows equal distinct row ``j``.

    Examples
    --------
    >>> import numpy as np
    >>> (x, t), inverse, counts = distinct_rows(np.array([1., 1., 2.]), np.array([5., 5., 5.]))
    >>> x.tolist(), t.tolist(), inverse.tolist(), counts.tolist()
    ([1.0, 2.0], [5.0, 5.0], [0, 0, 1], [2, 1])
    """
    arrays = [np.asarray(column) for column in columns]
    fast = _distinct_by_hash(arrays)
    if fast is not None:
        return fast
    # Exact and general: factorising each column (a hash pass) and combining the
    # codes into one integer key.
    key = np.zeros(len(arrays[0]), dtype=np.int64)
    for column in arrays:
        codes, levels = pd.factorize(column)
        key = key * len(levels) + codes
    inverse, first = _factorize_first(key)
    counts = np.bincount(inverse).astype(np.int64)
    uniques = [column[first] for column in arrays]
    return uniques, inverse, counts


# Odd 64-bit multipliers (splitmix64's) for mixing the columns' bits into one key.
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _distinct_by_hash(arrays):
    """:func:`distinct_rows` in one hash pass over a 64-bit mix of the rows' bits.

    Several times faster than factorising each column: the columns' float64 bits are
    mixed into one key, the key factorised once, and the result checked: every row
    must equal the distinct row it was mapped to (gathers and compares). A collision
    of two different rows on one key fails the check, and None sends the caller to
    the exact per-column path. Only for float64 columns (None otherwise).
    """
    if len(arrays) < 2 or any(a.dtype != np.float64 or a.ndim != 1 for a in arrays):
        return None
    with np.errstate(over="ignore"):
        key = arrays[0].view(np.uint64) * _MIX[0]
        for k, column in enumerate(arrays[1:]):
            key ^= key >> np.uint64(31)
            key ^= column.view(np.uint64)
            key *= _MIX[1 + k % 2]
    inverse, first = _factorize_first(key)
    uniques = [column[first] for column in arrays]
    for column, unique in zip(arrays, uniques, strict=True):
        if not np.array_equal(unique[inverse], column):
            return None
    counts = np.bincount(inverse).astype(np.int64)
    return uniques, inverse, counts


def _factorize_first(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``key`` (in order of first appearance) and the first row of each key."""
    codes, levels = pd.factorize(key)
    first = np.empty(len(levels), dtype=np.int64)
    # Writing positions in reverse leaves the first occurrence of each code.
    first[codes[::-1]] = np.arange(len(key) - 1, -1, -1)
    return codes.astype(np.intp), first


def row_weights(*columns: np.ndarray, weights=None) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows and their weights: counts of customers, or summed ``weights``.

    ``weights`` (whole counts of identical customers per input row, as
    ``CLVModel.fit``'s ``sample_weight``) add up per distinct row, so a table of
    distinct rows with counts gives the same weights as the expanded table.

    Examples
    --------
    >>> import numpy as np
    >>> (x,), w = row_weights(np.array([1., 2., 1.]), weights=np.array([3., 1., 2.]))
    >>> x.tolist(), w.tolist()
    ([1.0, 2.0], [5.0, 1.0])
    """
    uniques, inverse, counts = distinct_rows(*columns)
    if weights is None:
        return uniques, counts.astype(float)
    return uniques, np.bincount(inverse, weights=weights, minlength=len(counts))


def levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's code: ``np.unique(values, return_inverse=True)``.

    By hashing (pandas' factorize, then sorting only the distinct values) instead of
    sorting every value: several times faster on long columns with few levels.

    Examples
    --------
    >>> import numpy as np
    >>> values, codes = levels(np.array([3.0, 1.0, 3.0, 2.0]))
    >>> values.tolist(), codes.tolist()
    ([1.0, 2.0, 3.0], [2, 0, 2, 1])
    """
    codes, uniques = pd.factorize(np.asarray(values), sort=True)
    return np.asarray(uniques), codes.astype(np.intp, copy=False)
