"""Churn risk: a calibrated gradient-boosted classifier on customer features.

:class:`ChurnModel` learns P(no purchase within the churn horizon) from the table of
:func:`segml.features.churn_features` and the labels of
:func:`segml.features.churn_labels`, both computed at a past cutoff. It never sees
the CLV model: the CLV outputs it uses (expected purchases, P(alive)) arrive as
columns of that table.

Two steps make the probabilities usable as probabilities, not just as a ranking:

1. scikit-learn's ``HistGradientBoostingClassifier`` ranks customers using the
   interactions RFM alone misses (an overdue regular is not an occasional buyer);
2. ``CalibratedClassifierCV`` maps its scores onto observed churn rates, so "0.8"
   means "8 in 10 such customers did not come back". The calibrator is fitted on
   cross-validated scores (each customer scored by a booster fitted on the other
   folds), and one booster refitted on every customer makes the scores it
   calibrates (scikit-learn's ``ensemble=False``). Scoring runs one booster, not one
   per fold: the boosters were most of the time of scoring (a 1M-customer pyfunc
   predict took 13.4 s of CPU with five, 5.1 s with one). On CDNOW's time split the
   ranking and the calibration barely move (ROC AUC 0.804 vs 0.805, PR AUC 0.939 vs
   0.940, Brier 0.106 both); the calibrated probabilities take fewer distinct values
   (one isotonic step function instead of the mean of five).

A fitted model keeps what prediction reads, the baseline, the trees' nodes and the
calibration map, as arrays (:class:`~segml.models._boosted_trees.CalibratedTrees`),
and predicts with numpy: the same probabilities as scikit-learn, bit for bit, without
importing scikit-learn (a second of a small scoring job). It is saved as those
arrays in JSON, so loading one reads data and runs no code.

The booster is fitted on one OpenMP thread (a local ``threadpoolctl`` limit; nothing
global is set). On a 2-core machine shared with other work, its per-node parallel
sections made fitting 20k customers 80x slower with two threads (26.8 s vs 0.33 s)
and 1M customers 2.3x slower (18 s vs 7.7 s); scoring 1M customers was no faster
with two. Results do not depend on the number of threads.

The probabilities are then cut into risk bands (``high`` / ``medium`` / ``low``) by
two thresholds from the config, and :func:`early_warning` ranks customers by the
value at risk, CLV x churn probability.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from segml.models.churn import ChurnModel
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"days_since_last_purchase": rng.uniform(0, 300, 400)},
...                  index=pd.Index([f"c{i:03d}" for i in range(400)], name="customer_id"))
>>> y = (rng.uniform(size=400) < X["days_since_last_purchase"] / 300).astype(int)
>>> model = ChurnModel(max_iter=30, random_state=0).fit(X, y)
>>> bool(model.churn_probability(X).corr(X["days_since_last_purchase"]) > 0.8)
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from segml.features._churn import ChurnInputError
from segml.models._boosted_trees import CalibratedTrees, TreesDocumentError
from segml.models._estimator import Estimator, check_fitted, random_state_instance
from segml.persistence import (
    PersistenceError,
    check_document,
    load_skops,
    read_json,
    versions,
    write_json,
)

__all__ = [
    "DEFAULT_ACTIONS",
    "RISK_BANDS",
    "TRUSTED_TYPES",
    "ChurnModel",
    "early_warning",
]

#: Risk bands from most to least at risk.
RISK_BANDS = ("high", "medium", "low")

#: Suggested action per risk band, used by :func:`early_warning` when none are given.
DEFAULT_ACTIONS = {
    "high": "win-back offer: personal contact and an incentive",
    "medium": "re-engagement campaign: reminder with a recommendation",
    "low": "no action: keep the regular programme",
}

_FORMAT = "segml.churn_model"
# Version 2 holds the trees as data; version 1 (a skops file beside the JSON) still
# loads, and predicts with the same arrays.
_FORMAT_VERSION = 2
_JSON_NAME = "churn_model.json"
# OpenMP threads of the booster in fit (see the module docstring).
_OPENMP_THREADS = 1
# Every type a version-1 skops file holds beyond plain containers and numpy values
# (the calibrated wrapper, the booster and its parts, the calibrator, the folds);
# anything else in the file is refused before it is built. Models saved before
# ensemble=False (one booster and calibrator per fold) hold the same types, load, and
# predict the mean of their boosters' probabilities, as scikit-learn does.
TRUSTED_TYPES = (
    "numpy.random._generator.Generator",  # HistGradientBoosting's feature-subsample rng
    "numpy.uint64",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.preprocessing._label.LabelEncoder",
)


class ChurnModel(Estimator):
    """Calibrated P(churn) from customer features, and high / medium / low risk bands.

    Parameters
    ----------
    learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to scikit-learn's ``HistGradientBoostingClassifier``. The defaults
        (30 small trees, large leaves) are deliberately modest: the model is trained
        at one cutoff and used at a later one, and on CDNOW larger models (31 leaves,
        300 iterations) fit the training quarter better but rank the next quarter
        worse (ROC AUC 0.79 instead of 0.81). Early stopping is off so that a fit
        depends on ``random_state`` only; 30 iterations at a learning rate of 0.15
        is about where it stops (26-58 iterations at rates 0.2-0.1 on the data
        below).

        The former defaults, 100 trees at a learning rate of 0.05, ranked and
        calibrated the same, and the booster is most of the time of scoring (1M
        customers: 2.2 s of CPU with 100 trees, 0.7 s with 30). Time splits (train
        at cutoff - 180 days, test at cutoff - 90 days), the configs/churn.yaml
        settings, mean of ``random_state`` 0-4, ROC AUC / Brier score:

        =============================  ===============  ===============
        data (test cutoff)             0.05 x 100       0.15 x 30
        =============================  ===============  ===============
        CDNOW (1997-12-29)             0.8025 / 0.1065  0.8032 / 0.1065
        CDNOW (1998-04-01)             0.8363 / 0.0893  0.8365 / 0.0892
        simulated, 50k, seed 0         0.8378 / 0.0650  0.8372 / 0.0650
        simulated, 50k, seed 1         0.8464 / 0.0640  0.8457 / 0.0641
        =============================  ===============  ===============

        PR AUC moved by at most 0.0004. 0.1 x 50, 0.2 x 25, 0.1 x 30, 0.2 x 15 and
        0.3 x 10 were also within 0.0013 ROC AUC and 0.0012 Brier; 0.15 x 30 was
        the closest to the former defaults.
    calibration_method : {"isotonic", "sigmoid"}, default "isotonic"
        How scores become probabilities. Isotonic needs a few thousand customers;
        below that, prefer ``"sigmoid"``.
    calibration_folds : int, default 5
        Cross-validation folds whose out-of-fold scores the calibrator is fitted on
        (the deployed booster is then refitted on every customer); every class needs
        at least this many customers.
    high_risk_threshold, medium_risk_threshold : float, default 0.8, 0.5
        P(churn) at or above which a customer is in the ``high`` (resp. ``medium``)
        risk band. Set them from the churn base rate of your business: with a
        90-day horizon most CDNOW customers never return, so most are ``high``.
    min_customers : int, default 100
        Fewer training customers than this is refused: the probabilities would be
        noise.
    random_state : int, numpy.random.RandomState or None, default None
        Seeds the folds and the boosting; an int makes fits repeatable.

    Attributes
    ----------
    trees_ : segml.models._boosted_trees.CalibratedTrees
        What prediction reads: the booster's baseline and trees and the calibration
        map, as arrays.
    calibrated_ : sklearn.calibration.CalibratedClassifierCV
        The fitted scikit-learn classifier (``ensemble=False``: one booster, one
        calibrator). Only on a model fitted in this process: a loaded model has its
        :attr:`trees_`, which predict the same.
    feature_names_in_ : numpy.ndarray of str
        Feature columns seen in ``fit``; later tables are aligned to them by name.
    n_features_in_ : int
        Number of features.
    classes_ : numpy.ndarray
        ``[0, 1]``: stayed, churned.
    churn_rate_ : float
        Share of churned customers in the training labels.
    n_customers_ : int
        Number of training customers.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from segml.models.churn import ChurnModel
    >>> rng = np.random.default_rng(1)
    >>> X = pd.DataFrame({"days_since_last_purchase": rng.uniform(0, 300, 300),
    ...                   "frequency": rng.poisson(2, 300).astype(float)})
    >>> y = (rng.uniform(size=300) < X["days_since_last_purchase"] / 300).astype(int)
    >>> model = ChurnModel(max_iter=20, calibration_method="sigmoid", random_state=0)
    >>> model = model.fit(X, y)
    >>> model.predict_proba(X).shape
    (300, 2)
    >>> set(model.predict(X)) <= {"high", "medium", "low"}
    True
    >>> model.risk_band([0.9, 0.6, 0.1]).tolist()
    ['high', 'medium', 'low']
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.15,
        max_iter: int = 30,
        max_leaf_nodes: int = 7,
        min_samples_leaf: int = 100,
        l2_regularization: float = 1.0,
        calibration_method: str = "isotonic",
        calibration_folds: int = 5,
        high_risk_threshold: float = 0.8,
        medium_risk_threshold: float = 0.5,
        min_customers: int = 100,
        random_state=None,
    ):
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.calibration_method = calibration_method
        self.calibration_folds = calibration_folds
        self.high_risk_threshold = high_risk_threshold
        self.medium_risk_threshold = medium_risk_threshold
        self.min_customers = min_customers
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, X: pd.DataFrame, y) -> ChurnModel:
        """Fit the booster and its calibration on features ``X`` and churn labels ``y``.

        Parameters
        ----------
        X : pandas.DataFrame
            Numeric features, one row per customer (e.g. from
            :func:`segml.features.churn_features`); no NaN or infinite values.
        y : pandas.Series or array-like of {0, 1}
            1 = churned. A Series is aligned to ``X`` by index (customer_id) and must
            cover the same customers; an array must be in the order of ``X``.

        Returns
        -------
        ChurnModel
            ``self``, fitted.

        Raises
        ------
        ChurnInputError
            Fewer than ``min_customers`` customers, a single class, a class smaller
            than ``calibration_folds``, labels other than 0/1, mismatched customers,
            or features that are non-numeric, NaN or infinite.
        """
        # Imported here: predicting with a fitted or loaded model needs none of them.
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold
        from threadpoolctl import threadpool_limits

        self._check_params()
        values = _checked_values(X)
        y = _check_labels(y, X)
        n_customers = len(X)
        if n_customers < self.min_customers:
            raise ChurnInputError(
                f"Too few customers to train a churn model: {n_customers} < min_customers="
                f"{self.min_customers}. Use a longer history or a larger sample."
            )
        counts = np.bincount(y, minlength=2)
        if (counts == 0).any():
            only = "churned (1)" if counts[0] == 0 else "stayed (0)"
            raise ChurnInputError(
                f"The labels have a single class: all {n_customers} customers {only}. "
                "A churn model needs both; choose another as_of or horizon_days."
            )
        if counts.min() < self.calibration_folds:
            raise ChurnInputError(
                f"Only {counts.min()} customers in the smaller class (stayed: {counts[0]}, "
                f"churned: {counts[1]}); calibration needs at least calibration_folds="
                f"{self.calibration_folds} of each."
            )
        rng = random_state_instance(self.random_state)
        booster_seed, folds_seed = (int(s) for s in rng.randint(np.iinfo(np.int32).max, size=2))
        booster = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=booster_seed,
        )
        # Shuffled folds: customer ids often follow acquisition order, and unshuffled
        # folds would calibrate each cohort on the others.
        folds = StratifiedKFold(
            n_splits=self.calibration_folds, shuffle=True, random_state=folds_seed
        )
        # ensemble=False: the calibrator learns from out-of-fold scores and one booster
        # refitted on all customers scores, so predicting runs one booster, not one
        # per fold.
        calibrated = CalibratedClassifierCV(
            booster, method=self.calibration_method, cv=folds, ensemble=False
        )
        with threadpool_limits(limits=_OPENMP_THREADS, user_api="openmp"):
            self.calibrated_ = calibrated.fit(values, y)
        self.trees_ = CalibratedTrees.from_sklearn(self.calibrated_)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.classes_ = np.array([0, 1])
        self.churn_rate_ = float(y.mean())
        self.n_customers_ = int(n_customers)
        return self

    def _check_params(self) -> None:
        if self.calibration_method not in ("isotonic", "sigmoid"):
            raise ValueError(
                f"calibration_method must be 'isotonic' or 'sigmoid', got "
                f"{self.calibration_method!r}."
            )
        if not 0 <= self.medium_risk_threshold <= self.high_risk_threshold <= 1:
            raise ValueError(
                "Risk thresholds must satisfy 0 <= medium_risk_threshold <= "
                f"high_risk_threshold <= 1, got medium={self.medium_risk_threshold}, "
                f"high={self.high_risk_threshold}."
            )

    # --------------------------------------------------------------- predicting
    def _aligned(self, X: pd.DataFrame) -> np.ndarray:
        check_fitted(self, "trees_")
        values = _checked_values(X)
        expected = list(self.feature_names_in_)
        missing = [c for c in expected if c not in X.columns]
        if missing:
            raise ChurnInputError(
                f"X lacks {len(missing)} feature column(s) the model was trained on: "
                f"{missing}. Build X with the same churn_features arguments as in training."
            )
        # Extra columns are dropped and the rest reordered by name: a table built with
        # a different column order scores the same. The values checked above are
        # reused (converting 1M customers twice cost 0.2 s of a 2.5 s predict).
        if not X.columns.is_unique:
            return X.loc[:, expected].to_numpy(dtype="float64")
        positions = X.columns.get_indexer(expected)
        if np.array_equal(positions, np.arange(X.shape[1])):
            return values
        return values[:, positions]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape ``(n_customers, 2)``: [P(stay), P(churn)].

        Columns of ``X`` are matched to the training features by name.
        """
        return self.trees_.predict_proba(self._aligned(X))

    def churn_probability(self, X: pd.DataFrame) -> pd.Series:
        """P(churn) per customer, a Series named ``churn_probability`` indexed like ``X``.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from segml.models.churn import ChurnModel
        >>> rng = np.random.default_rng(2)
        >>> X = pd.DataFrame({"gap": rng.uniform(0, 1, 200)},
        ...                  index=pd.Index([f"c{i}" for i in range(200)], name="customer_id"))
        >>> y = (rng.uniform(size=200) < X["gap"]).astype(int)
        >>> model = ChurnModel(max_iter=10, calibration_method="sigmoid", random_state=0)
        >>> p = model.fit(X, y).churn_probability(X)
        >>> p.name, p.index.name, bool(p.between(0, 1).all())
        ('churn_probability', 'customer_id', True)
        """
        return pd.Series(self.predict_proba(X)[:, 1], index=X.index, name="churn_probability")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Risk band per customer: ``"high"``, ``"medium"`` or ``"low"`` (see :meth:`risk_band`)."""
        return self.risk_band(self.predict_proba(X)[:, 1])

    def risk_band(self, churn_probability) -> np.ndarray:
        """Cut churn probabilities into bands with the model's two thresholds.

        ``high`` if ``p >= high_risk_threshold``, ``medium`` if
        ``p >= medium_risk_threshold``, else ``low``. Needs no fitting.

        Examples
        --------
        >>> from segml.models.churn import ChurnModel
        >>> bands = ChurnModel(high_risk_threshold=0.7, medium_risk_threshold=0.4)
        >>> bands.risk_band([0.7, 0.69, 0.4, 0.39]).tolist()
        ['high', 'medium', 'medium', 'low']
        """
        bands = np.asarray(RISK_BANDS, dtype=object)[self.risk_band_codes(churn_probability)]
        # A scalar probability indexes out a plain str; keep the documented array.
        return np.asarray(bands, dtype=object)

    def risk_band_codes(self, churn_probability) -> np.ndarray:
        """Position of each probability's band in :data:`RISK_BANDS` (0 = ``high``).

        The bands of :meth:`risk_band` as integers, for building label columns from
        codes (``RISK_BANDS[code]``) without a Python string per customer. A NaN
        probability is ``low``, as in :meth:`risk_band`.

        Examples
        --------
        >>> from segml.models.churn import ChurnModel
        >>> ChurnModel().risk_band_codes([0.95, 0.8, 0.5, 0.1]).tolist()
        [0, 0, 1, 2]
        """
        self._check_params()
        p = np.asarray(churn_probability, dtype="float64")
        return np.where(
            p >= self.high_risk_threshold, 0, np.where(p >= self.medium_risk_threshold, 1, 2)
        )

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike) -> Path:
        """Save the fitted model as data in ``directory`` (created if needed).

        Writes ``churn_model.json``: the parameters, the feature names, the trees
        and the calibration map as numbers, and the package versions. Nothing is
        pickled, and loading it needs no scikit-learn.

        Returns
        -------
        pathlib.Path
            The directory.

        Examples
        --------
        >>> import tempfile, numpy as np, pandas as pd
        >>> from segml.models.churn import ChurnModel
        >>> rng = np.random.default_rng(3)
        >>> X = pd.DataFrame({"recency": rng.uniform(0, 1, 200)})
        >>> y = (rng.uniform(size=200) < X["recency"]).astype(int)
        >>> model = ChurnModel(max_iter=10, calibration_method="sigmoid", random_state=0)
        >>> model = model.fit(X, y)
        >>> folder = model.save(tempfile.mkdtemp())
        >>> again = ChurnModel.load(folder)
        >>> bool((again.predict_proba(X) == model.predict_proba(X)).all())
        True
        """
        check_fitted(self, "trees_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(
            {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "params": _json_params(self.get_params()),
                "feature_names": [str(name) for name in self.feature_names_in_],
                "churn_rate": self.churn_rate_,
                "n_customers": self.n_customers_,
                "trees": self.trees_.to_dict(),
                "versions": versions(),
            },
            directory / _JSON_NAME,
        )
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ChurnModel:
        """Load a model written by :meth:`save`.

        A model saved by an earlier segml (format version 1: the classifier in a
        ``churn_classifier.skops`` file beside the JSON) loads too, through
        scikit-learn, and predicts the same.

        Raises
        ------
        segml.persistence.PersistenceError
            A missing file, a document of another format or version, missing keys or
            values of the wrong type, trees whose splits lead outside the tree or
            the input columns; for version 1, a ``classifier_file`` that is not a
            file of ``directory`` or a skops file holding a type outside
            :data:`TRUSTED_TYPES`. The message names the file.
        """
        directory = Path(directory)
        source = directory / _JSON_NAME
        document = read_json(source)
        version = document.get("format_version") if isinstance(document, dict) else None
        check_document(document, _FORMAT, 1 if version == 1 else _FORMAT_VERSION, source=source)
        try:
            model = cls(**document["params"])
            model._check_params()
            feature_names = document["feature_names"]
            if not (
                isinstance(feature_names, list) and all(isinstance(n, str) for n in feature_names)
            ):
                raise TypeError(f"feature_names must be a list of names, got {feature_names!r}")
            churn_rate = float(document["churn_rate"])
            n_customers = int(document["n_customers"])
            if version == 1:
                classifier_file = document["classifier_file"]
            else:
                trees = CalibratedTrees.from_dict(document["trees"], n_features=len(feature_names))
        except TreesDocumentError as exc:
            raise PersistenceError(f"{source} cannot be trusted: {exc}.") from None
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            what = f"the key {exc.args[0]!r} is missing" if isinstance(exc, KeyError) else exc
            raise PersistenceError(f"{source} is damaged: {what}.") from None
        if version == 1:  # its own errors name the skops file
            trees = _trees_of_version_1(directory, classifier_file, len(feature_names), source)
        model.trees_ = trees
        model.feature_names_in_ = np.asarray(feature_names, dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        model.classes_ = np.array([0, 1])
        model.churn_rate_ = churn_rate
        model.n_customers_ = n_customers
        return model


def _trees_of_version_1(
    directory: Path, classifier_file, n_features: int, source: Path
) -> CalibratedTrees:
    """The trees of a version-1 model: its skops file, read through scikit-learn."""
    from sklearn.calibration import CalibratedClassifierCV

    # The classifier is a file of this folder: a name that leads elsewhere (an
    # absolute path, "..", a symlink out) is refused before anything is read.
    classifier = directory / str(classifier_file)
    if (
        not isinstance(classifier_file, str)
        or Path(classifier_file).name != classifier_file
        or classifier_file in ("", ".", "..")
        or not classifier.resolve().is_relative_to(directory.resolve())
    ):
        raise PersistenceError(
            f"{source}: classifier_file {classifier_file!r} is not a file of the model's "
            f"folder {directory}; refusing to read it."
        )
    calibrated = load_skops(classifier, trusted=TRUSTED_TYPES)
    if not isinstance(calibrated, CalibratedClassifierCV):
        raise PersistenceError(
            f"{classifier} holds a {type(calibrated).__name__}, not the "
            "CalibratedClassifierCV a churn model saves."
        )
    _check_boosters(calibrated, n_features, classifier)
    try:
        return CalibratedTrees.from_sklearn(calibrated)
    except TreesDocumentError as exc:
        raise PersistenceError(
            f"{classifier} holds a classifier segml cannot read: {exc}"
        ) from None


def _check_boosters(calibrated, n_features: int, path: Path) -> None:
    """Refuse loaded trees that scikit-learn would follow out of their arrays.

    skops can check the *types* in a file, not the values: scikit-learn's compiled
    tree walk reads ``nodes[left]``, ``nodes[right]`` and ``X[:, feature_idx]``
    without bounds checks, so a crafted file could make prediction read outside
    memory or loop forever (skops therefore does not trust ``TreePredictor`` by
    default). Every tree saved by :meth:`ChurnModel.save` has its children after
    their parent and splits on numeric input columns only; anything else is refused.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    def refuse(why: str) -> None:
        raise PersistenceError(f"{path} holds a booster that cannot be trusted: {why}.")

    for fold in calibrated.calibrated_classifiers_:
        booster = fold.estimator
        if not isinstance(booster, HistGradientBoostingClassifier):
            refuse(f"a {type(booster).__name__} where a HistGradientBoostingClassifier belongs")
        if booster.n_features_in_ != n_features or booster.n_trees_per_iteration_ != 1:
            refuse(f"it reads {booster.n_features_in_} features, the model {n_features}")
        if (
            getattr(booster, "_in_fit", False)
            or getattr(booster, "_preprocessor", None) is not None
            or np.asarray(booster._bin_mapper.is_categorical_).any()
        ):
            refuse("categorical or binned input, which a churn model never uses")
        for iteration in booster._predictors:
            for tree in iteration:
                nodes = tree.nodes
                if nodes.dtype != PREDICTOR_RECORD_DTYPE or nodes.ndim != 1 or len(nodes) == 0:
                    refuse(f"a tree of dtype {nodes.dtype}, shape {nodes.shape}")
                split = np.flatnonzero(nodes["is_leaf"] == 0)
                left = nodes["left"][split].astype(np.int64)
                right = nodes["right"][split].astype(np.int64)
                feature = nodes["feature_idx"][split]
                if (
                    ((left <= split) | (left >= len(nodes))).any()
                    or ((right <= split) | (right >= len(nodes))).any()
                    or ((feature < 0) | (feature >= n_features)).any()
                    or nodes["is_categorical"].any()
                ):
                    refuse("a tree whose splits lead outside it or outside the input columns")


def _json_params(params: dict) -> dict:
    """Constructor parameters as JSON; a RandomState object cannot be saved as data."""
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        # The fitted classifier is saved whole, so the seed only matters for refits.
        params = {**params, "random_state": None}
    return params


def _checked_values(X) -> np.ndarray:
    """``X`` as a float64 array, after checking it is a numeric, finite DataFrame."""
    if not isinstance(X, pd.DataFrame):
        raise ChurnInputError(
            f"X must be a pandas DataFrame of features (from segml.features.churn_features), "
            f"got {type(X).__name__}: the model matches columns by name."
        )
    if X.shape[1] == 0:
        raise ChurnInputError("X has no feature columns.")
    non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if non_numeric:
        raise ChurnInputError(
            f"Feature column(s) {non_numeric} are not numeric; encode or drop them."
        )
    values = X.to_numpy(dtype="float64")
    bad = ~np.isfinite(values)
    if bad.any():
        counts = {str(c): int(n) for c, n in zip(X.columns, bad.sum(axis=0), strict=True) if n}
        raise ChurnInputError(
            f"Features have NaN or infinite values: {counts} (column: count). Fill them "
            "(churn_features never makes NaN; check columns added later) or drop those rows."
        )
    return values


def _check_labels(y, X: pd.DataFrame) -> np.ndarray:
    if isinstance(y, pd.Series):
        missing = X.index.difference(y.index)
        extra = y.index.difference(X.index)
        if len(missing) or len(extra):
            raise ChurnInputError(
                f"Labels and features cover different customers: {len(missing)} customers "
                f"in X have no label, {len(extra)} labels have no features. Build both at "
                "the same as_of (churn_labels and churn_features)."
            )
        y = y.loc[X.index]
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ChurnInputError(
            f"y must be one label per row of X: got shape {y.shape} for {len(X)} rows."
        )
    if pd.isna(y).any():
        raise ChurnInputError(f"y has {int(pd.isna(y).sum())} missing label(s).")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ChurnInputError(f"Labels must be 0 (stayed) or 1 (churned); found {sorted(values)}.")
    return y.astype("int64")


def early_warning(
    scores: pd.DataFrame,
    *,
    top_n: int = 50,
    include_risk: Sequence[str] | None = ("high", "medium"),
    actions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The customers with the most value at risk, highest first, with what to do.

    Value at risk is ``clv * churn_probability``: the lifetime value expected to be
    lost if nothing is done. A very likely churner worth little ranks below a
    valuable customer with a moderate risk, which is where retention spending pays.

    Parameters
    ----------
    scores : pandas.DataFrame
        Indexed by ``customer_id``, with ``clv``, ``churn_probability`` and
        ``risk_band`` (the band, e.g. from :meth:`ChurnModel.predict`); when present,
        the CLV predictive interval (``clv_low``, ``clv_high``) is shown beside
        ``clv``, and ``segment``, ``segment_name``, ``tier``, the next purchase
        (``p_buy_again``, ``next_purchase_date``: missing when the customer is more
        likely never to buy again) are carried along.
    top_n : int, default 50
        Length of the list.
    include_risk : sequence of str or None, default ("high", "medium")
        Risk bands the list is drawn from; None for all. The most valuable customers
        often carry the most value at risk even at a low churn probability; an early
        warning is about the ones that are slipping.
    actions : mapping of str to str, optional
        Suggested action per risk band; defaults to :data:`DEFAULT_ACTIONS`.

    Returns
    -------
    pandas.DataFrame
        ``top_n`` rows (fewer if fewer customers in ``include_risk``): ``value_at_risk``, ``clv``
        (with ``clv_low``, ``clv_high``), ``churn_probability``, ``risk_band``, the carried
        columns and ``action``. Scores without ``clv`` (a purchases-only log) but
        with ``expected_purchases`` are ranked by ``purchases_at_risk =
        expected_purchases * churn_probability`` instead, with ``expected_purchases``
        in place of ``clv``.
        Ties in value at risk are ordered by ``customer_id``.

    Raises
    ------
    ChurnInputError
        Missing columns, NaN in them, or a risk band with no action.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models.churn import early_warning
    >>> scores = pd.DataFrame(
    ...     {"clv": [500.0, 40.0, 300.0], "churn_probability": [0.3, 0.95, 0.6],
    ...      "risk_band": ["low", "high", "medium"], "segment": [0, 2, 1]},
    ...     index=pd.Index(["a", "b", "c"], name="customer_id"))
    >>> early_warning(scores, top_n=2)[["value_at_risk", "segment", "risk_band"]]
                 value_at_risk  segment risk_band
    customer_id
    c                    180.0        1     medium
    b                     38.0        2       high
    >>> early_warning(scores, top_n=2, include_risk=None).index.tolist()
    ['c', 'a']

    With the scorer's predictive columns, the list shows the CLV interval and the
    next purchase date:

    >>> scores = scores.assign(clv_low=[90.0, 0.0, 40.0], clv_high=[1200.0, 110.0, 700.0],
    ...                        p_buy_again=[0.9, 0.2, 0.6],
    ...                        next_purchase_date=["1998-08-02", None, "1998-12-20"])
    >>> table = early_warning(scores, top_n=2)
    >>> shown = ["clv", "clv_low", "clv_high", "next_purchase_date"]
    >>> table[shown]  # doctest: +NORMALIZE_WHITESPACE
                   clv  clv_low  clv_high next_purchase_date
    customer_id
    c            300.0     40.0     700.0         1998-12-20
    b             40.0      0.0     110.0                NaN
    """
    actions = dict(DEFAULT_ACTIONS if actions is None else actions)
    # Scores of a purchases-only log have no clv: purchases at risk rank them instead.
    value, at_risk = "clv", "value_at_risk"
    if "clv" not in scores.columns and "expected_purchases" in scores.columns:
        value, at_risk = "expected_purchases", "purchases_at_risk"
    required = (value, "churn_probability", "risk_band")
    missing = [c for c in required if c not in scores.columns]
    if missing:
        raise ChurnInputError(
            f"scores lack the column(s) {missing}; add clv from CLVModel.predict, "
            "churn_probability from ChurnModel.churn_probability and risk_band from "
            "ChurnModel.predict."
        )
    if isinstance(top_n, bool) or not isinstance(top_n, int | np.integer) or top_n < 1:
        raise ChurnInputError(f"top_n must be a positive integer, got {top_n!r}.")
    nan_counts = scores.loc[:, list(required)].isna().sum()
    nan_counts = nan_counts[nan_counts > 0]
    if len(nan_counts):
        raise ChurnInputError(
            f"scores have NaN values: {nan_counts.to_dict()} (column: count); score every "
            "customer before ranking them."
        )
    if include_risk is not None:
        if isinstance(include_risk, str):
            include_risk = [include_risk]
        scores = scores.loc[scores["risk_band"].astype(str).isin(list(include_risk))]
    no_action = sorted(set(scores["risk_band"].astype(str)) - set(actions))
    if no_action:
        raise ChurnInputError(
            f"No action configured for risk band(s) {no_action}; add them to actions "
            f"(configured: {sorted(actions)})."
        )
    interval = [c for c in ("clv_low", "clv_high") if c in scores.columns]
    carried = [
        c
        for c in ("segment", "segment_name", "tier", "p_buy_again", "next_purchase_date")
        if c in scores.columns
    ]
    table = scores.loc[:, [value, *interval, "churn_probability", "risk_band", *carried]].copy()
    table.insert(0, at_risk, table[value] * table["churn_probability"])
    table["action"] = table["risk_band"].astype(str).map(actions)
    index_name = table.index.name or "customer_id"
    table = (
        table.rename_axis(index_name)
        .reset_index()
        .sort_values([at_risk, index_name], ascending=[False, True], kind="stable")
        .set_index(index_name)
    )
    return table.head(top_n)
