"""A calibrated gradient-boosted classifier as plain arrays, evaluated with numpy.

:class:`~segml.models.churn.ChurnModel` fits scikit-learn's
``HistGradientBoostingClassifier`` inside ``CalibratedClassifierCV`` (one booster,
``ensemble=False``; models saved by earlier versions hold one per fold, averaged).
Predicting with those objects needs scikit-learn, which takes about a second to
import (it imports ``scipy.stats``): most of the time of scoring a thousand
customers with a saved model. What prediction reads is small: the baseline
log-odds, each tree's nodes and the calibration map. :class:`CalibratedTrees` holds
those as arrays, saves them as JSON (data, not objects: loading runs no code from
the file) and computes the same probabilities as scikit-learn, bit for bit:

1. the raw score is the baseline plus each tree's leaf value, added in tree order
   (scikit-learn's ``_raw_predict``);
2. a row goes left at a split when its value is ``<= threshold``, or when it is NaN
   and the split sends missing values left (the compiled ``TreePredictor``);
3. isotonic calibration clips the score to the fitted range and interpolates
   linearly between the thresholds with ``np.interp`` (what
   ``scipy.interpolate.interp1d`` runs for a 1-D table); sigmoid calibration is
   ``expit(-(a * score + b))`` (Platt 1999);
4. P(stay) = 1 - P(churn), and a probability above 1 by at most 1e-5 is 1
   (``_CalibratedClassifier.predict_proba``); with several calibrated boosters (an
   ``ensemble=True`` model) their probabilities are averaged in fold order
   (``CalibratedClassifierCV.predict_proba``).

A tree is evaluated split by split over whole columns (``np.where`` from the leaves
up), not row by row: with the churn model's small trees (7 leaves) that is 12 array
operations a tree, and 1M customers take about as long as scikit-learn's compiled
walk on one thread.

Examples
--------
>>> import numpy as np
>>> from sklearn.calibration import CalibratedClassifierCV
>>> from sklearn.ensemble import HistGradientBoostingClassifier
>>> from segml.models._boosted_trees import CalibratedTrees
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(500, 3))
>>> y = (X[:, 0] + rng.normal(size=500) > 0).astype(int)
>>> booster = HistGradientBoostingClassifier(max_iter=10, random_state=0)
>>> fitted = CalibratedClassifierCV(booster, cv=3, ensemble=False).fit(X, y)
>>> trees = CalibratedTrees.from_sklearn(fitted)
>>> bool((trees.predict_proba(X) == fitted.predict_proba(X)).all())
True
>>> again = CalibratedTrees.from_dict(trees.to_dict(), n_features=3)
>>> bool((again.predict_proba(X) == trees.predict_proba(X)).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

__all__ = ["CalibratedTrees", "TreesDocumentError"]


class TreesDocumentError(ValueError):
    """Saved trees that are malformed or could not be evaluated safely."""


@dataclass(frozen=True)
class _Tree:
    feature: np.ndarray  # int64, split column (unused at leaves)
    threshold: np.ndarray  # float64, go left when value <= threshold
    missing_left: np.ndarray  # bool, where NaN goes
    left: np.ndarray  # int64, child node index
    right: np.ndarray  # int64
    is_leaf: np.ndarray  # bool
    value: np.ndarray  # float64, leaf value (log-odds increment)

    def raw(self, columns: np.ndarray) -> np.ndarray | float:
        """Each row's leaf value; ``columns`` is the input transposed (feature-major)."""
        # Children come after their parent, so walking the nodes backwards has every
        # child's values ready when its parent is reached.
        values: dict[int, np.ndarray | float] = {}
        for node in range(len(self.value) - 1, -1, -1):
            if self.is_leaf[node]:
                values[node] = float(self.value[node])
                continue
            column = columns[self.feature[node]]
            goes_left = column <= self.threshold[node]
            if self.missing_left[node]:
                goes_left |= np.isnan(column)
            values[node] = np.where(
                goes_left, values.pop(int(self.left[node])), values.pop(int(self.right[node]))
            )
        return values[0]


class _Member:
    """One calibrated booster: baseline log-odds, trees, calibration map."""

    def __init__(self, baseline: float, trees: list[_Tree], calibration: dict[str, Any]):
        self.baseline = baseline
        self.trees = trees
        self.calibration = calibration

    def raw_score(self, columns: np.ndarray) -> np.ndarray:
        """The booster's log-odds per row; ``columns`` is features x rows."""
        raw = np.zeros(columns.shape[1])
        raw += self.baseline
        for tree in self.trees:
            raw += tree.raw(columns)
        return raw

    def predict_proba(self, columns: np.ndarray) -> np.ndarray:
        return self.calibrated_proba(self.raw_score(columns))

    def calibrated_proba(self, raw: np.ndarray) -> np.ndarray:
        """``[P(class 0), P(class 1)]`` of log-odds ``raw`` (``_CalibratedClassifier``)."""
        calibration = self.calibration
        if calibration["method"] == "sigmoid":
            churn = expit(-(calibration["a"] * raw + calibration["b"]))
        else:
            x = np.asarray(calibration["x"], dtype=np.float64)
            y = np.asarray(calibration["y"], dtype=np.float64)
            score = np.clip(raw, calibration["x_min"], calibration["x_max"])
            # interp1d of a 1-D float table runs np.interp (scipy's _call_linear_np).
            churn = np.full(len(score), y[0]) if len(x) == 1 else np.interp(score, x, y)
        # _CalibratedClassifier.predict_proba: P(stay) = 1 - P(churn), then values
        # above 1 by rounding (at most 1e-5) become 1, in both columns.
        proba = np.column_stack([1.0 - churn, churn])
        proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba

    def to_dict(self) -> dict[str, Any]:
        trees = [
            {
                "feature": tree.feature.tolist(),
                "threshold": tree.threshold.tolist(),
                "missing_left": tree.missing_left.tolist(),
                "left": tree.left.tolist(),
                "right": tree.right.tolist(),
                "is_leaf": tree.is_leaf.tolist(),
                "value": tree.value.tolist(),
            }
            for tree in self.trees
        ]
        return {"baseline": self.baseline, "trees": trees, "calibration": dict(self.calibration)}


class CalibratedTrees:
    """Binary boosters' trees and their calibration maps, as arrays.

    Build one with :meth:`from_sklearn` (after fitting) or :meth:`from_dict` (after
    loading); :meth:`predict_proba` then needs only numpy and ``scipy.special``.

    Parameters
    ----------
    members : list of _Member
        One calibrated booster per member: its baseline log-odds, its trees in
        boosting order, and its calibration map (``{"method": "isotonic", "x_min",
        "x_max", "x", "y"}``, the interpolation table, or ``{"method": "sigmoid",
        "a", "b"}``). A churn model fitted by this segml has one.
    """

    def __init__(self, members: list[_Member]):
        self.members = members

    @property
    def trees(self) -> list[_Tree]:
        """The first (usually only) booster's trees."""
        return self.members[0].trees

    # ------------------------------------------------------------ building
    @classmethod
    def from_sklearn(cls, calibrated) -> CalibratedTrees:
        """The arrays of a fitted ``CalibratedClassifierCV`` of binary boosters.

        Raises
        ------
        TreesDocumentError
            Not binary ``HistGradientBoostingClassifier`` boosters with isotonic or
            sigmoid calibration, or categorical splits (a churn model has none).
        """
        folds = getattr(calibrated, "calibrated_classifiers_", [])
        if not folds or any(len(fold.calibrators) != 1 for fold in folds):
            raise TreesDocumentError("Expected calibrated binary boosters.")
        return cls([_member_from_sklearn(fold) for fold in folds])

    # ---------------------------------------------------------- predicting
    def raw_score(self, values: np.ndarray) -> np.ndarray:
        """The (first) booster's log-odds per row (its ``decision_function``)."""
        return self.members[0].raw_score(_columns(values))

    def predict_proba(self, values: np.ndarray) -> np.ndarray:
        """``[P(class 0), P(class 1)]`` per row, as ``CalibratedClassifierCV`` returns.

        ``values`` is rows x features, float; NaN follows each split's missing side.
        """
        columns = _columns(values)
        if len(self.members) == 1:
            return self.members[0].predict_proba(columns)
        mean = np.zeros((columns.shape[1], 2))
        for member in self.members:
            mean += member.predict_proba(columns)
        mean /= len(self.members)
        return mean

    # ---------------------------------------------------------- persisting
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: per booster, the baseline, each tree's nodes, the calibration."""
        return {"members": [member.to_dict() for member in self.members]}

    @classmethod
    def from_dict(cls, document: dict[str, Any], *, n_features: int) -> CalibratedTrees:
        """Rebuild from :meth:`to_dict`, refusing trees that could not be evaluated.

        Every node but the root must have exactly one parent, before it (so the walk
        visits each node once and ends), every split must read one of the
        ``n_features`` columns, every number must be finite, and an isotonic table
        must be strictly increasing in ``x``, with ``y`` in [0, 1].

        Raises
        ------
        TreesDocumentError
            What is wrong, and in which tree.
        """
        try:
            members = []
            for member in document["members"]:
                baseline = float(member["baseline"])
                if not np.isfinite(baseline):
                    raise TreesDocumentError("the churn trees' baseline is not finite")
                trees = [_tree_from_dict(t, n_features, i) for i, t in enumerate(member["trees"])]
                members.append(
                    _Member(baseline, trees, _calibration_from_dict(member["calibration"]))
                )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, TreesDocumentError):
                raise
            what = f"the key {exc.args[0]!r} is missing" if isinstance(exc, KeyError) else exc
            raise TreesDocumentError(f"the churn trees are damaged: {what}") from None
        if not members:
            raise TreesDocumentError("the churn trees hold no booster")
        return cls(members)


def _columns(values: np.ndarray) -> np.ndarray:
    """Rows x features as contiguous features x rows: each split reads one column."""
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).T)


def _member_from_sklearn(fold) -> _Member:
    booster = fold.estimator
    if getattr(booster, "n_trees_per_iteration_", None) != 1:
        raise TreesDocumentError("Expected a binary HistGradientBoostingClassifier.")
    trees = []
    for iteration in booster._predictors:
        nodes = iteration[0].nodes
        if nodes["is_categorical"].any():
            raise TreesDocumentError("Categorical splits cannot be saved as churn trees.")
        trees.append(
            _Tree(
                feature=nodes["feature_idx"].astype(np.int64),
                threshold=nodes["num_threshold"].astype(np.float64),
                missing_left=nodes["missing_go_to_left"].astype(bool),
                left=nodes["left"].astype(np.int64),
                right=nodes["right"].astype(np.int64),
                is_leaf=nodes["is_leaf"].astype(bool),
                value=nodes["value"].astype(np.float64),
            )
        )
    calibrator = fold.calibrators[0]
    if fold.method == "isotonic":
        function = calibrator.f_
        if hasattr(function, "x"):  # scipy's interp1d
            x, y = np.asarray(function.x, float), np.asarray(function.y, float).ravel()
        else:  # a single threshold: a constant
            x, y = calibrator.X_thresholds_[:1], calibrator.y_thresholds_[:1]
        calibration = {
            "method": "isotonic",
            "x_min": float(calibrator.X_min_),
            "x_max": float(calibrator.X_max_),
            "x": [float(v) for v in x],
            "y": [float(v) for v in y],
        }
    elif fold.method == "sigmoid":
        calibration = {"method": "sigmoid", "a": float(calibrator.a_), "b": float(calibrator.b_)}
    else:
        raise TreesDocumentError(f"Calibration {fold.method!r} cannot be saved as data.")
    baseline = float(np.asarray(booster._baseline_prediction).ravel()[0])
    return _Member(baseline, trees, calibration)


def _tree_from_dict(document: dict[str, Any], n_features: int, number: int) -> _Tree:
    arrays = {
        "feature": np.asarray(document["feature"], dtype=np.int64),
        "threshold": np.asarray(document["threshold"], dtype=np.float64),
        "missing_left": np.asarray(document["missing_left"], dtype=bool),
        "left": np.asarray(document["left"], dtype=np.int64),
        "right": np.asarray(document["right"], dtype=np.int64),
        "is_leaf": np.asarray(document["is_leaf"], dtype=bool),
        "value": np.asarray(document["value"], dtype=np.float64),
    }
    size = len(arrays["value"])
    if size == 0 or any(a.shape != (size,) for a in arrays.values()):
        raise TreesDocumentError(f"churn tree {number} has node fields of different lengths")
    split = np.flatnonzero(~arrays["is_leaf"])
    left, right = arrays["left"][split], arrays["right"][split]
    feature = arrays["feature"][split]
    if (
        ((left <= split) | (left >= size)).any()
        or ((right <= split) | (right >= size)).any()
        or ((feature < 0) | (feature >= n_features)).any()
    ):
        raise TreesDocumentError(
            f"churn tree {number} has splits that lead outside the tree or the "
            f"{n_features} input columns"
        )
    # Children come after their parent; with exactly one parent for every node but
    # the root, the nodes form one tree: the walk meets each node once, and no node
    # is unreachable (each would hold a whole column of values to the end).
    parents = np.bincount(np.concatenate([left, right]), minlength=size)
    if parents[0] != 0 or (parents[1:] != 1).any():
        raise TreesDocumentError(
            f"churn tree {number} is not a tree: every node but the root needs exactly one parent"
        )
    if (
        not np.isfinite(arrays["value"][arrays["is_leaf"]]).all()
        or np.isnan(arrays["threshold"][split]).any()
    ):
        raise TreesDocumentError(f"churn tree {number} has values that are not numbers")
    return _Tree(**arrays)


def _calibration_from_dict(document: dict[str, Any]) -> dict[str, Any]:
    method = document["method"]
    if method == "sigmoid":
        a, b = float(document["a"]), float(document["b"])
        if not (np.isfinite(a) and np.isfinite(b)):
            raise TreesDocumentError("the churn calibration's a and b are not finite")
        return {"method": "sigmoid", "a": a, "b": b}
    if method != "isotonic":
        raise TreesDocumentError(f"unknown churn calibration {method!r}")
    x = [float(v) for v in document["x"]]
    y = [float(v) for v in document["y"]]
    x_min, x_max = float(document["x_min"]), float(document["x_max"])
    if (
        not x
        or len(x) != len(y)
        or not np.isfinite([*x, *y, x_min, x_max]).all()
        or np.any(np.diff(x) <= 0)
        or not x_min <= x_max
        or not all(0.0 <= v <= 1.0 for v in y)
    ):
        raise TreesDocumentError(
            "the churn calibration table must be as many y in [0, 1] as x, x strictly "
            "increasing, and x_min <= x_max, all finite"
        )
    return {"method": "isotonic", "x_min": x_min, "x_max": x_max, "x": x, "y": y}
