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
    # Factorising each column (a hash pass) and combining the codes into one integer
    # key is several times faster than a lexicographic sort of the float rows.
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, levels = pd.factorize(column)
        key = key * len(levels) + codes
    inverse, first = _factorize_first(key)
    counts = np.bincount(inverse).astype(np.int64)
    uniques = [np.asarray(column)[first] for column in columns]
    return uniques, inverse, counts


def _factorize_first(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``key`` (in order of first appearance) and the first row of each key."""
    codes, levels = pd.factorize(key)
    first = np.empty(len(levels), dtype=np.int64)
    # Writing positions in reverse leaves the first occurrence of each code.
    first[codes[::-1]] = np.arange(len(key) - 1, -1, -1)
    return codes.astype(np.intp), first
