"""Customer segments: k-means on log-transformed, standardised RFM features.

RFM columns are heavily right-skewed (a few customers order hundreds of times), so
k-means on raw values would spend its clusters on outliers. Each feature is
therefore transformed with ``log1p`` and standardised to mean 0 and standard
deviation 1 before clustering; a segment is the set of customers nearest to one
centroid in that space.

Three properties make a segment id something people can act on:

- **Ordered by value.** Segment 0 is the most valuable: clusters are ranked by the
  mean of ``clv`` when the table has it, else by mean ``total_spend``.
- **Stable across retrains.** ``fit(..., previous=old_model)`` matches the new
  centroids to the old ones (Hungarian matching on squared distances in the new
  standardised space), so the segment that was "2: lapsed, one-off" last month keeps
  id 2 and its name this month.
- **Independent of row order.** Rows are sorted by ``customer_id`` before any
  sampling, so shuffling the input never changes anyone's segment.

Choosing k: with ``n_segments`` a list of candidates, each candidate is fitted on
one seeded sample of ``selection_sample_size`` customers and scored by its
silhouette on that sample; the best k is then fitted on all customers, starting
from the sample's centroids. Choosing k thus costs a few small fits, not one full
fit per candidate.

Persistence is pure data: prediction is "nearest centroid in standardised log
space", so the scaler's mean and scale and the centroids, stored as JSON numbers
(which round-trip float64 exactly), reproduce every prediction. Loading runs no
pickle.

Examples
--------
>>> import pandas as pd
>>> from segml.models.segments import SegmentModel
>>> rfm = pd.DataFrame(
...     {"days_since_last_purchase": [3, 5, 4, 300, 320, 310],
...      "n_orders": [20, 25, 22, 1, 1, 2],
...      "total_spend": [900.0, 1200.0, 1000.0, 20.0, 15.0, 30.0]},
...     index=pd.Index(list("abcdef"), name="customer_id"))
>>> model = SegmentModel(n_segments=2, random_state=0).fit(rfm)
>>> model.predict(rfm).tolist()
[0, 0, 0, 1, 1, 1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from segml.models._estimator import Estimator
from segml.models._segments_input import (
    SegmentInputError,
    id_order,
    numeric_columns,
    require_frame,
)

__all__ = ["DEFAULT_FEATURES", "SegmentInputError", "SegmentModel"]

#: Recency, frequency and monetary value in calendar units (see segml.rfm_summary).
DEFAULT_FEATURES = ("days_since_last_purchase", "n_orders", "total_spend")

_FORMAT = "segml.SegmentModel"
_FORMAT_VERSION = 1

# Words naming a centroid by how far it is from the average customer, in standard
# deviations of the log feature, on four levels: far below, below, above, far above
# (see _name_levels); "low x" / "high x" for other features.
_NAME_WORDS = {
    "days_since_last_purchase": ("very recent", "recent", "lapsed", "long-lapsed"),
    "recency": ("very short-lived", "short-lived", "long-lived", "very long-lived"),
    "n_orders": ("one-off", "infrequent", "frequent", "very frequent"),
    "frequency": ("one-off", "infrequent", "frequent", "very frequent"),
    "total_spend": ("very low-spend", "low-spend", "high-spend", "top-spend"),
    "avg_order_value": ("very small-basket", "small-basket", "big-basket", "very big-basket"),
    "monetary_value": ("very small-basket", "small-basket", "big-basket", "very big-basket"),
    "tenure_days": ("very new", "new", "long-standing", "very long-standing"),
}
# |z| from which a centroid is named below / above average at all.
_NAME_CUT_SD = 0.5
# |z| from which a centroid is "far" from average, whatever the other segments do...
_NAME_FAR_SD = 1.5
# ...and how much further than the mildest segment on its side a centroid must be to
# be "far" when several segments lie on that side (two "high-spend" segments whose
# spend differs by 3x must not share the word).
_NAME_STEP_SD = 0.5
# Below this many customers the full-data k-means runs on one thread (faster).
_MULTITHREAD_ROWS = 200_000


class SegmentModel(Estimator):
    """k-means segments of customers, ordered by value and stable across retrains.

    Parameters
    ----------
    features : sequence of str, default ("days_since_last_purchase", "n_orders", "total_spend")
        Columns of the customer table to cluster on; each must be >= 0 (it is
        ``log1p``-transformed, then standardised).
    n_segments : int or sequence of int, default 5
        A fixed number of segments, or candidates (e.g. ``[3, 4, 5, 6, 7, 8]``) among
        which the one with the best silhouette on a seeded sample is chosen (ties go
        to the smaller k).
    selection_sample_size : int, default 5000
        Customers sampled (seeded) to fit the candidates and compute silhouettes.
        Silhouette costs O(n^2), so this bounds the cost of choosing k at any scale.
    n_init : int, default 4
        k-means++ restarts for each fit on the sample; the full-data fit starts from
        the best sample centroids and runs once.
    max_iter : int, default 300
        Maximum Lloyd iterations per k-means run.
    tol : float, default 1e-4
        Relative tolerance of k-means convergence (scikit-learn's ``tol``).
    value_column : str or None, default None
        Column whose mean ranks segments (0 = highest). None uses ``clv`` when the
        table has it, else ``total_spend``.
    segment_names : sequence of str or None, default None
        Names for segments 0, 1, ...; None derives them from the centroids (e.g.
        ``"recent, frequent, high-spend"``): for each feature, a word for a centroid
        at least 0.5 SD (of the log feature) below or above average, made "far"
        (``"very recent"``, ``"top-spend"``) from 1.5 SD, or from 0.5 SD beyond the
        mildest segment on the same side. The words of one feature never contradict
        the centroids' order on it (a segment with less spend is never named
        higher on spend), and names are unique within a model (a repeated name gets
        ``" #2"``, ``" #3"`` in value order).
    random_state : int or None, default 0
        Seed for the sample and k-means initialisation; a fixed value makes the fit
        reproducible.

    Attributes
    ----------
    features_ : list of str
        Feature columns, in order.
    log_mean_, log_scale_ : ndarray of shape (n_features,)
        Mean and standard deviation of ``log1p(feature)`` over the training customers.
    cluster_centers_ : ndarray of shape (n_segments_, n_features)
        Centroids in standardised log space, row ``i`` for segment ``segment_ids_[i]``.
    segment_ids_ : ndarray of int
        Segment ids in row order of ``cluster_centers_`` (sorted ascending).
    segment_names_ : dict of int to str
        Name of each segment id.
    n_segments_ : int
        Number of segments fitted.
    silhouette_scores_ : dict of int to float
        Silhouette of each candidate k on the selection sample (empty when k is fixed).
    segment_sizes_ : dict of int to int
        Training customers per segment.
    segment_values_ : dict of int to float
        Mean of ``value_column_`` per segment on the training customers.
    value_column_ : str
        Column that ranked the segments.
    matched_previous_ : bool
        Whether ids were inherited from a previous model.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.segments import SegmentModel
    >>> rfm = pd.DataFrame(
    ...     {"days_since_last_purchase": [3, 5, 300, 320],
    ...      "n_orders": [20, 25, 1, 1],
    ...      "total_spend": [900.0, 1200.0, 20.0, 15.0]},
    ...     index=pd.Index(["a", "b", "c", "d"], name="customer_id"))
    >>> model = SegmentModel(n_segments=2).fit(rfm)
    >>> model.segment_names_
    {0: 'recent, frequent, high-spend', 1: 'lapsed, infrequent, low-spend'}
    >>> model.segment_sizes_
    {0: 2, 1: 2}
    """

    def __init__(
        self,
        *,
        features: Sequence[str] = DEFAULT_FEATURES,
        n_segments: int | Sequence[int] = 5,
        selection_sample_size: int = 5000,
        n_init: int = 4,
        max_iter: int = 300,
        tol: float = 1e-4,
        value_column: str | None = None,
        segment_names: Sequence[str] | None = None,
        random_state: int | None = 0,
    ):
        self.features = features
        self.n_segments = n_segments
        self.selection_sample_size = selection_sample_size
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.value_column = value_column
        self.segment_names = segment_names
        self.random_state = random_state

    def _candidates(self) -> list[int]:
        k = self.n_segments
        if isinstance(k, int | np.integer) and not isinstance(k, bool):
            candidates = [int(k)]
        elif isinstance(k, Sequence) and not isinstance(k, str) and len(k) > 0:
            candidates = sorted({int(v) for v in k})
        else:
            raise SegmentInputError(
                "n_segments must be an int or a non-empty list of ints (e.g. [3, 4, 5]); "
                f"got {k!r}."
            )
        if candidates[0] < 2:
            raise SegmentInputError(f"n_segments must be >= 2; got {self.n_segments!r}.")
        return candidates

    def _check_params(self) -> list[str]:
        features = list(self.features)
        if not features or len(set(features)) != len(features):
            raise SegmentInputError(
                "features must be a non-empty list of distinct column names; "
                f"got {self.features!r}."
            )
        if int(self.selection_sample_size) < 10:
            raise SegmentInputError(
                f"selection_sample_size must be >= 10; got {self.selection_sample_size!r}."
            )
        return features

    # --------------------------------------------------------------------- fit
    def fit(self, customers: pd.DataFrame, y=None, *, previous: SegmentModel | None = None):
        """Cluster customers and order (or match) segment ids.

        Parameters
        ----------
        customers : pandas.DataFrame
            One row per customer (index or ``customer_id`` column), with the
            ``features`` columns and optionally the value column (``clv``).
        y : None
            Ignored (scikit-learn protocol).
        previous : SegmentModel, optional
            Last run's fitted model. New clusters are matched to its segments so ids
            and names carry over; clusters left unmatched (when k grew) get new ids
            after the previous largest, in value order.

        Returns
        -------
        SegmentModel
            self, fitted.
        """
        from scipy.optimize import linear_sum_assignment
        from sklearn.cluster import KMeans
        from sklearn.utils import check_random_state
        from threadpoolctl import threadpool_limits

        what = "SegmentModel.fit"
        require_frame(customers, what)
        features = self._check_params()
        candidates = self._candidates()
        # Sorting by id first makes the sample, the scaler and k-means see the same
        # sequence whatever the input row order: same fit, same segments.
        order = id_order(customers, what)
        n = len(customers)
        if n < max(candidates):
            raise SegmentInputError(
                f"{what}: {n} customers cannot make {max(candidates)} segments; "
                "lower n_segments or pass more customers."
            )
        value_column = self.value_column or ("clv" if "clv" in customers.columns else "total_spend")

        rows = slice(None) if order is None else order
        raw = numeric_columns(customers, features, what, non_negative=True)[rows]
        value = numeric_columns(customers, [value_column], what)[rows, 0]

        # In place: ``raw`` is this call's own copy, and on a million customers each
        # fresh n x 3 array costs about as much as the arithmetic on it.
        log = np.log1p(raw, out=raw)
        log_mean = log.mean(axis=0)
        log_scale = log.std(axis=0)
        # A constant feature carries no information; scale 1 keeps it at 0, not NaN.
        log_scale[log_scale == 0] = 1.0
        z = np.subtract(log, log_mean, out=log)
        z /= log_scale

        rng = check_random_state(self.random_state)
        sample_size = min(n, int(self.selection_sample_size))
        sample = np.sort(rng.choice(n, size=sample_size, replace=False))
        z_sample = z[sample]
        seed = int(rng.randint(np.iinfo(np.int32).max))

        silhouettes: dict[int, float] = {}
        best_centers = None
        best_score = -np.inf
        # Small problems run single-threaded: OpenMP start-up and contention cost far
        # more than the work (a 5,000-row k-means drops from ~1 s to ~10 ms).
        with threadpool_limits(limits=1):
            fits = {}
            for k in candidates:
                fits[k] = KMeans(
                    n_clusters=min(k, sample_size),
                    n_init=int(self.n_init),
                    max_iter=int(self.max_iter),
                    tol=float(self.tol),
                    random_state=seed,
                ).fit(z_sample)
            if len(candidates) > 1:
                silhouettes = _silhouettes(z_sample, {k: km.labels_ for k, km in fits.items()})
        if len(candidates) == 1:
            best_centers = fits[candidates[0]].cluster_centers_
        else:
            for k in candidates:  # strict ">": ties keep the smaller k
                if silhouettes[k] > best_score:
                    best_score, best_centers = silhouettes[k], fits[k].cluster_centers_

        k = len(best_centers)
        with threadpool_limits(limits=1 if n < _MULTITHREAD_ROWS else None):
            final = KMeans(
                n_clusters=k,
                init=best_centers,
                n_init=1,
                max_iter=int(self.max_iter),
                tol=float(self.tol),
            ).fit(z)
        centers = final.cluster_centers_
        labels = _nearest(z, centers)

        sizes = np.bincount(labels, minlength=k)
        sums = np.bincount(labels, weights=value, minlength=k)
        means = np.divide(sums, sizes, out=np.full(k, -np.inf), where=sizes > 0)
        # Rank by value, highest first; ties (equal means) are broken by the centroid
        # coordinates so the result never depends on k-means' arbitrary cluster order.
        rank_order = np.lexsort(tuple(centers.T[::-1]) + (-means,))
        cluster_id = np.empty(k, dtype="int64")
        cluster_id[rank_order] = np.arange(k)

        names_by_id: dict[int, str] = {}
        self.matched_previous_ = previous is not None
        if previous is not None:
            cluster_id, names_by_id = self._match(
                previous, features, centers, log_mean, log_scale, rank_order, linear_sum_assignment
            )

        row_order = np.argsort(cluster_id)
        self.features_ = features
        self.n_features_in_ = len(features)
        self.log_mean_ = log_mean
        self.log_scale_ = log_scale
        self.cluster_centers_ = centers[row_order]
        self.segment_ids_ = cluster_id[row_order]
        self.n_segments_ = k
        self.silhouette_scores_ = silhouettes
        self.value_column_ = value_column
        self.segment_sizes_ = {int(cluster_id[c]): int(sizes[c]) for c in row_order}
        self.segment_values_ = {int(cluster_id[c]): float(means[c]) for c in row_order}
        self.segment_names_ = self._names(names_by_id)
        return self

    def _match(self, previous, features, centers, log_mean, log_scale, rank_order, assign):
        """Give new clusters the ids (and names) of the nearest previous segments."""
        if not hasattr(previous, "cluster_centers_"):
            raise SegmentInputError("previous must be a fitted SegmentModel (call fit or load).")
        if list(previous.features_) != features:
            raise SegmentInputError(
                f"previous model clusters on {previous.features_}, this one on {features}; "
                "ids can only be matched between models on the same features."
            )
        # Previous centroids back to log units, then into this fit's standardised space.
        previous_log = previous.cluster_centers_ * previous.log_scale_ + previous.log_mean_
        previous_z = (previous_log - log_mean) / log_scale
        cost = ((centers[:, None, :] - previous_z[None, :, :]) ** 2).sum(axis=2)
        rows, cols = assign(cost)
        k = len(centers)
        cluster_id = np.full(k, -1, dtype="int64")
        names = {}
        for r, c in zip(rows, cols, strict=True):
            cluster_id[r] = int(previous.segment_ids_[c])
            names[int(previous.segment_ids_[c])] = previous.segment_names_[
                int(previous.segment_ids_[c])
            ]
        next_id = int(previous.segment_ids_.max()) + 1
        for c in rank_order:  # unmatched clusters, most valuable first
            if cluster_id[c] < 0:
                cluster_id[c] = next_id
                next_id += 1
        return cluster_id, names

    def _names(self, inherited: Mapping[int, str]) -> dict[int, str]:
        given = list(self.segment_names) if self.segment_names is not None else None
        names: dict[int, str] = {}
        used: set[str] = set(inherited.values())
        described = _describe(self.features_, self.cluster_centers_)
        # Most valuable first, so a repeated name's " #2" goes to the less valuable one.
        value = self.segment_values_ if hasattr(self, "segment_values_") else {}
        rows = sorted(
            range(len(self.segment_ids_)),
            key=lambda r: (-value.get(int(self.segment_ids_[r]), 0.0), int(self.segment_ids_[r])),
        )
        for row in rows:
            sid = int(self.segment_ids_[row])
            if sid in inherited:
                names[sid] = inherited[sid]
                continue
            if given is not None and sid < len(given):
                name = str(given[sid])
            else:
                name = described[row]
            base, suffix = name, 2
            while name in used:
                name, suffix = f"{base} #{suffix}", suffix + 1
            used.add(name)
            names[sid] = name
        return dict(sorted(names.items()))

    # ----------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "cluster_centers_"):
            raise SegmentInputError(
                "This SegmentModel is not fitted yet; call fit(customers) or "
                "SegmentModel.load(path)."
            )

    def transform(self, customers: pd.DataFrame) -> np.ndarray:
        """Standardised log features: ``(log1p(x) - log_mean_) / log_scale_``, row by row."""
        self._check_fitted()
        what = "SegmentModel.transform"
        require_frame(customers, what)
        raw = numeric_columns(customers, self.features_, what, non_negative=True)
        z = np.log1p(raw, out=raw)  # raw is a fresh copy: reuse its memory
        z -= self.log_mean_
        z /= self.log_scale_
        return z

    def predict(self, customers: pd.DataFrame) -> np.ndarray:
        """Segment id of each customer: its nearest centroid in standardised log space.

        Each row is scored on its own, so the result never depends on the other rows
        or their order.

        Parameters
        ----------
        customers : pandas.DataFrame
            The ``features_`` columns, one row per customer.

        Returns
        -------
        numpy.ndarray of int64
            Segment ids, in the row order of ``customers``.
        """
        labels = _nearest(self.transform(customers), self.cluster_centers_)
        return self.segment_ids_[labels]

    def assign(self, customers: pd.DataFrame) -> pd.DataFrame:
        """``segment`` and ``segment_name`` for each customer, indexed like ``customers``.

        Examples
        --------
        >>> import pandas as pd
        >>> from segml.models.segments import SegmentModel
        >>> rfm = pd.DataFrame({"days_since_last_purchase": [1, 2, 90, 99],
        ...                     "n_orders": [9, 8, 1, 1], "total_spend": [90.0, 80, 5, 4]},
        ...                    index=pd.Index(list("abcd"), name="customer_id"))
        >>> SegmentModel(n_segments=2).fit(rfm).assign(rfm)["segment"].tolist()
        [0, 0, 1, 1]
        """
        segment = self.predict(customers)
        names = pd.Series(self.segment_names_)
        return pd.DataFrame(
            {"segment": segment, "segment_name": names.reindex(segment).to_numpy()},
            index=customers.index,
        )

    def centroids(self) -> pd.DataFrame:
        """Centroids back in feature units (``expm1`` of the log centroid), one row per id.

        These are the "typical customer" of each segment: a geometric-mean-like
        centre, less pulled by outliers than the arithmetic mean.
        """
        self._check_fitted()
        values = np.expm1(self.cluster_centers_ * self.log_scale_ + self.log_mean_)
        return pd.DataFrame(
            values, index=pd.Index(self.segment_ids_, name="segment"), columns=self.features_
        )

    def definitions(self) -> dict[Any, dict[str, Any]]:
        """Name and centroid of each segment, for :func:`segml.scoring.build_segment_map`.

        Examples
        --------
        >>> import pandas as pd
        >>> from segml.models.segments import SegmentModel
        >>> rfm = pd.DataFrame({"days_since_last_purchase": [1, 1, 99, 99],
        ...                     "n_orders": [9, 9, 1, 1], "total_spend": [90.0, 90, 4, 4]},
        ...                    index=pd.Index(list("abcd"), name="customer_id"))
        >>> definition = SegmentModel(n_segments=2).fit(rfm).definitions()[1]["definition"]
        >>> definition["rule"], definition["centroid"]["n_orders"]
        ('nearest centroid', 1.0)
        """
        centroids = self.centroids()
        return {
            int(sid): {
                "name": self.segment_names_[int(sid)],
                "definition": {
                    "rule": "nearest centroid",
                    "centroid": {f: round(float(v), 6) for f, v in centroids.loc[sid].items()},
                },
                "rank": int(rank),
            }
            for rank, sid in enumerate(
                sorted(self.segment_ids_, key=lambda s: -self.segment_values_[int(s)])
            )
        }

    # ------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """Everything prediction needs, as JSON-ready data (floats round-trip exactly)."""
        self._check_fitted()
        params = self.get_params()
        params["features"] = list(params["features"])
        if not isinstance(params["n_segments"], int):
            params["n_segments"] = [int(v) for v in params["n_segments"]]
        if params["segment_names"] is not None:
            params["segment_names"] = list(params["segment_names"])
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "params": params,
            "features": list(self.features_),
            "log_mean": self.log_mean_.tolist(),
            "log_scale": self.log_scale_.tolist(),
            "cluster_centers": self.cluster_centers_.tolist(),
            "segment_ids": self.segment_ids_.tolist(),
            "segment_names": {str(k): v for k, v in self.segment_names_.items()},
            "segment_sizes": {str(k): v for k, v in self.segment_sizes_.items()},
            # An empty segment has no mean value (-inf ranks it last); JSON has no inf.
            "segment_values": {
                str(k): (v if np.isfinite(v) else None) for k, v in self.segment_values_.items()
            },
            "silhouette_scores": {str(k): v for k, v in self.silhouette_scores_.items()},
            "value_column": self.value_column_,
            "matched_previous": bool(self.matched_previous_),
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> SegmentModel:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        from segml.persistence import check_document

        check_document(document, _FORMAT, _FORMAT_VERSION)
        model = cls(**document["params"])
        model.features_ = list(document["features"])
        model.n_features_in_ = len(model.features_)
        model.log_mean_ = np.asarray(document["log_mean"], dtype="float64")
        model.log_scale_ = np.asarray(document["log_scale"], dtype="float64")
        model.cluster_centers_ = np.asarray(document["cluster_centers"], dtype="float64")
        model.segment_ids_ = np.asarray(document["segment_ids"], dtype="int64")
        model.n_segments_ = len(model.segment_ids_)
        model.segment_names_ = {int(k): v for k, v in document["segment_names"].items()}
        model.segment_sizes_ = {int(k): v for k, v in document["segment_sizes"].items()}
        model.segment_values_ = {
            int(k): (-np.inf if v is None else v) for k, v in document["segment_values"].items()
        }
        model.silhouette_scores_ = {int(k): v for k, v in document["silhouette_scores"].items()}
        model.value_column_ = document["value_column"]
        model.matched_previous_ = bool(document["matched_previous"])
        return model

    def save(self, path) -> None:
        """Write the fitted model as one JSON file (atomically)."""
        from segml.persistence import versions, write_json

        document = self.to_dict()
        document["versions"] = versions()
        write_json(document, path)

    @classmethod
    def load(cls, path) -> SegmentModel:
        """Read a model written by :meth:`save`; plain JSON, nothing is unpickled.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> import pandas as pd
        >>> from segml.models.segments import SegmentModel
        >>> rfm = pd.DataFrame({"days_since_last_purchase": [1, 2, 90, 99],
        ...                     "n_orders": [9, 8, 1, 1], "total_spend": [90.0, 80, 5, 4]},
        ...                    index=pd.Index(list("abcd"), name="customer_id"))
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "segments.json"
        >>> SegmentModel(n_segments=2).fit(rfm).save(path)
        >>> SegmentModel.load(path).predict(rfm).tolist()
        [0, 0, 1, 1]
        """
        from segml.persistence import read_json

        return cls.from_dict(read_json(path))


def _nearest(z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each row (ties to the lowest index).

    Distances are computed one centre at a time from plain differences, so each
    row's answer depends only on that row, and memory stays at n x k.
    """
    # Feature by feature on contiguous columns (three times faster than reducing the
    # short rows of z); the squares are added in feature order, as ``sum(axis=1)``
    # adds them, so the distances are the same to the bit.
    columns = np.ascontiguousarray(z.T)
    distance = np.empty((len(centers), len(z)), dtype="float64")
    scratch = np.empty(len(z), dtype="float64")
    for row, center in zip(distance, centers, strict=True):
        np.subtract(columns[0], center[0], out=row)
        row *= row
        for column, coordinate in zip(columns[1:], center[1:], strict=True):
            np.subtract(column, coordinate, out=scratch)
            scratch *= scratch
            row += scratch
    return distance.argmin(axis=0)


def _name_levels(centers: np.ndarray) -> np.ndarray:
    """Level of each centroid on each feature: -2 far below, -1 below, 0 average, 1, 2.

    ``centers`` are in standardised log units (z). A centroid is below (above) average
    from ``|z| >= 0.5``; among the centroids on one side of a feature it is far when
    ``|z| >= 1.5``, or when several lie on that side and it is at least 0.5 SD further
    out than the mildest of them. The threshold is one number per side, so the levels
    of a feature are non-decreasing in z: a centroid lower on a feature never gets a
    higher level on it.

    Examples
    --------
    >>> import numpy as np
    >>> from segml.models.segments import _name_levels
    >>> _name_levels(np.array([[1.47], [0.59], [-0.67]])).ravel().tolist()
    [2, 1, -1]
    """
    z = np.asarray(centers, dtype="float64")
    levels = np.zeros(z.shape, dtype="int64")
    for sign in (-1, 1):
        distance = sign * z  # how far out on this side
        on_side = distance >= _NAME_CUT_SD
        mildest = np.where(on_side, distance, np.inf).min(axis=0)
        several = on_side.sum(axis=0) > 1
        far_from = np.where(
            several, np.minimum(_NAME_FAR_SD, mildest + _NAME_STEP_SD), _NAME_FAR_SD
        )
        levels[on_side] = sign
        levels[on_side & (distance >= far_from)] = 2 * sign
    return levels


def _describe(features: Sequence[str], centers: np.ndarray) -> list[str]:
    """A name for each centroid: the words of its non-average levels, feature by feature."""
    levels = _name_levels(centers)
    names = []
    for row in levels:
        words = []
        for feature, level in zip(features, row, strict=True):
            if level:
                scale = _NAME_WORDS.get(
                    feature,
                    (
                        f"very low {feature}",
                        f"low {feature}",
                        f"high {feature}",
                        f"very high {feature}",
                    ),
                )
                words.append(scale[level + 2 if level < 0 else level + 1])
        names.append(", ".join(words) if words else "average")
    return names


def _silhouettes(z: np.ndarray, labels_by_k: Mapping[int, np.ndarray], chunk_rows: int = 1000):
    """Mean silhouette of several labelings of the same points, sharing one distance pass.

    ``sklearn.metrics.silhouette_score`` recomputes all pairwise distances for every
    candidate k. Here each block of rows of the distance matrix is computed once and
    multiplied by every labeling's one-hot matrix, giving each point's summed
    distance to each cluster; the silhouette follows as in scikit-learn:
    ``a`` = mean distance to the own cluster (excluding itself), ``b`` = smallest mean
    distance to another cluster, ``s = (b - a) / max(a, b)``, and 0 for a point
    alone in its cluster. A labeling with one cluster (or one per point) scores -1.
    """
    n = len(z)
    squared = (z**2).sum(axis=1)
    # All labelings' one-hot matrices side by side: one product per block of rows.
    offsets, width = {}, 0
    for k, labels in labels_by_k.items():
        offsets[k] = (width, width + int(labels.max()) + 1)
        width = offsets[k][1]
    onehot = np.zeros((n, width))
    for k, labels in labels_by_k.items():
        onehot[np.arange(n), offsets[k][0] + labels] = 1.0
    summed = np.empty((n, width))
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        distance = z[start:stop] @ z.T  # in place from here on: this block is the big array
        distance *= -2.0
        distance += squared[start:stop, None]
        distance += squared[None, :]
        np.maximum(distance, 0.0, out=distance)
        np.sqrt(distance, out=distance)
        # A point's distance to itself is exactly 0 (rounding can leave ~1e-8).
        distance[np.arange(stop - start), np.arange(start, stop)] = 0.0
        summed[start:stop] = distance @ onehot
    onehots = {k: onehot[:, lo:hi] for k, (lo, hi) in offsets.items()}
    sums = {k: summed[:, lo:hi] for k, (lo, hi) in offsets.items()}
    scores = {}
    for k, labels in labels_by_k.items():
        sizes = onehots[k].sum(axis=0)
        if not 1 < np.count_nonzero(sizes) < n:
            scores[k] = -1.0
            continue
        own = sizes[labels]
        a = sums[k][np.arange(n), labels] / np.maximum(own - 1, 1)
        mean_other = sums[k] / np.where(sizes > 0, sizes, np.nan)
        mean_other[np.arange(n), labels] = np.inf
        b = np.nanmin(np.where(np.isnan(mean_other), np.inf, mean_other), axis=1)
        s = np.where(own > 1, (b - a) / np.maximum(a, b), 0.0)
        scores[k] = float(np.mean(np.nan_to_num(s)))
    return scores
