"""Judge churn scores the way they are used: ranked, thresholded and read as probabilities.

A churn model is only worth running if it beats what the data already says for free.
:func:`evaluate_churn` scores the model and the free baselines of
:func:`churn_baselines` (``1 - p_alive`` and ``-expected_purchases`` from the CLV
model, ``days_since_last_purchase`` from RFM) in one call, on the same labels, so
the comparison cannot drift. The labels should come from a later cutoff than the
training labels (a time split): the question is how well last quarter's model
ranks next quarter's churners.

Metrics, per scorer (higher score = more likely to churn):

- ``roc_auc``: P(a random churner scores above a random stayer); 0.5 is chance.
- ``pr_auc``: average precision; chance is the churn rate.
- ``brier``: mean squared error of the score as a probability; only for scores in
  [0, 1] (NaN for rankings such as days since last purchase).
- ``top_decile_lift``: churn rate among the 10% highest scores over the overall rate.
- ``top_decile_capture``: share of all churners found in that 10%.

Ties (many customers share a days-since-last-purchase) are broken as a random order
would on average: a tied group straddling the decile boundary contributes its churn
rate to the part inside, so the numbers do not depend on row order.

Examples
--------
>>> from segml.models._churn_evaluation import evaluate_churn
>>> y = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
>>> table = evaluate_churn(y, {"perfect": [9, 8, 1, 7, 1, 1, 1, 1, 1, 1]})
>>> table.loc["perfect", ["roc_auc", "top_decile_lift", "top_decile_capture"]].tolist()
[1.0, 3.3333333333333335, 0.3333333333333333]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from segml.features._churn import ChurnInputError

__all__ = ["churn_baselines", "evaluate_churn", "lift_table"]

#: Baseline name -> (column of the feature table, sign that makes "higher = churn").
_BASELINES = {
    "1 - p_alive": ("p_alive", None),
    "-expected_purchases": ("expected_purchases", -1.0),
    "days_since_last_purchase": ("days_since_last_purchase", 1.0),
}


def churn_baselines(features: pd.DataFrame) -> dict[str, pd.Series]:
    """The free churn scores a model must beat, from a churn feature table.

    Parameters
    ----------
    features : pandas.DataFrame
        From :func:`segml.features.churn_features` with the CLV outputs
        ``p_alive`` and ``expected_purchases`` (over the churn horizon).

    Returns
    -------
    dict of str to pandas.Series
        ``"1 - p_alive"``, ``"-expected_purchases"`` and ``"days_since_last_purchase"``,
        each oriented so that a higher score means more likely to churn.

    Examples
    --------
    >>> import pandas as pd
    >>> from segml.models._churn_evaluation import churn_baselines
    >>> features = pd.DataFrame({"p_alive": [0.9, 0.2], "expected_purchases": [1.5, 0.1],
    ...                          "days_since_last_purchase": [10.0, 200.0]})
    >>> {name: score.tolist() for name, score in churn_baselines(features).items()}
    {'1 - p_alive': [0.09999999999999998, 0.8], '-expected_purchases': [-1.5, -0.1], \
'days_since_last_purchase': [10.0, 200.0]}
    """
    missing = [column for column, _ in _BASELINES.values() if column not in features.columns]
    if missing:
        raise ChurnInputError(
            f"features lack the column(s) {missing} the baselines need; pass the CLV "
            "model's outputs to churn_features(clv_outputs=...)."
        )
    baselines = {}
    for name, (column, sign) in _BASELINES.items():
        values = features[column].astype("float64")
        baselines[name] = (1.0 - values if sign is None else sign * values).rename(name)
    return baselines


def _check_inputs(y_true, score, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(y_true, pd.Series) and isinstance(score, pd.Series):
        if not y_true.index.equals(score.index):
            if set(y_true.index) != set(score.index):
                raise ChurnInputError(
                    f"Score {name!r} covers other customers than the labels "
                    f"({len(score)} scores, {len(y_true)} labels); score the customers "
                    "that were labelled."
                )
            score = score.loc[y_true.index]
    y = np.asarray(y_true)
    s = np.asarray(score, dtype="float64")
    if y.ndim != 1 or s.shape != y.shape:
        raise ChurnInputError(
            f"Score {name!r} has shape {s.shape}, the labels {y.shape}: one score per label."
        )
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ChurnInputError(f"Labels must be 0 (stayed) or 1 (churned); found {np.unique(y)}.")
    if len(np.unique(y)) < 2:
        raise ChurnInputError(
            f"The labels have a single class ({len(y)} customers, all {int(y[0])}): ROC and "
            "PR curves are undefined. Evaluate on a cutoff where some customers churn "
            "and some stay."
        )
    n_bad = int((~np.isfinite(s)).sum())
    if n_bad:
        raise ChurnInputError(f"Score {name!r} has {n_bad} NaN or infinite value(s).")
    return y.astype("int64"), s


def _expected_positives_in_top(y: np.ndarray, score: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Expected number of positives among the ``k`` highest scores, ties in random order."""
    # Groups of equal scores, highest first, with their size and positives.
    values, inverse = np.unique(-score, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(values))
    positives = np.bincount(inverse, weights=y, minlength=len(values))
    ends = np.cumsum(sizes)  # rank just after each group
    cum_pos = np.cumsum(positives)
    k = np.asarray(k)
    # The group holding the k-th ranked customer, and how many of it are inside the top k.
    group = np.searchsorted(ends, k, side="left")
    group = np.minimum(group, len(values) - 1)
    before = ends[group] - sizes[group]
    pos_before = cum_pos[group] - positives[group]
    inside = k - before
    return np.where(k <= 0, 0.0, pos_before + inside * positives[group] / sizes[group])


def lift_table(y_true, score, *, n_bins: int = 10) -> pd.DataFrame:
    """Churn rate, lift and cumulative capture per score bin, highest scores first.

    Parameters
    ----------
    y_true : array-like of {0, 1}
        1 = churned.
    score : array-like
        Higher = more likely to churn.
    n_bins : int, default 10
        Equal-size bins by rank (deciles by default).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``bin`` (1 = highest scores): ``n_customers``, ``churned`` (expected
        under random tie order), ``churn_rate``, ``lift`` (bin churn rate over the
        overall rate), ``cumulative_capture`` (share of all churners in bins 1..i)
        and ``cumulative_lift``.

    Examples
    --------
    >>> from segml.models._churn_evaluation import lift_table
    >>> table = lift_table([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], n_bins=2)
    >>> table[["churn_rate", "lift", "cumulative_capture"]]
         churn_rate  lift  cumulative_capture
    bin
    1           1.0   2.0                 1.0
    2           0.0   0.0                 1.0
    """
    y, s = _check_inputs(y_true, score, "score")
    n = len(y)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or not 1 <= n_bins <= n:
        raise ChurnInputError(
            f"n_bins must be an integer from 1 to {n} (customers), got {n_bins!r}."
        )
    # Bin edges by rank: bin i holds ranks edges[i-1] .. edges[i] - 1.
    edges = np.round(np.linspace(0, n, n_bins + 1)).astype("int64")
    cumulative = _expected_positives_in_top(y, s, edges)
    churned = np.diff(cumulative)
    sizes = np.diff(edges)
    rate = y.mean()
    table = pd.DataFrame(
        {
            "n_customers": sizes,
            "churned": churned,
            "churn_rate": churned / sizes,
            "lift": churned / sizes / rate,
            "cumulative_capture": cumulative[1:] / y.sum(),
            "cumulative_lift": cumulative[1:] / edges[1:] / rate,
        },
        index=pd.RangeIndex(1, n_bins + 1, name="bin"),
    )
    return table


def evaluate_churn(y_true, scores: Mapping[str, object]) -> pd.DataFrame:
    """ROC AUC, PR AUC, Brier score and top-decile lift/capture for each churn score.

    Parameters
    ----------
    y_true : pandas.Series or array-like of {0, 1}
        Churn labels (1 = churned) from :func:`segml.features.churn_labels`.
    scores : mapping of str to array-like
        Name -> score, higher = more likely to churn, one per label (a Series is
        aligned to a Series ``y_true`` by index). Typically the model's
        ``churn_probability`` plus :func:`churn_baselines`.

    Returns
    -------
    pandas.DataFrame
        One row per scorer (in the given order, index ``scorer``): ``roc_auc``,
        ``pr_auc``, ``brier`` (NaN unless every score is in [0, 1]),
        ``top_decile_lift``, ``top_decile_capture``, ``n_customers``,
        ``churn_rate``. Ready to log as metrics (``{scorer}_{metric}``).

    Raises
    ------
    ChurnInputError
        A single class in the labels, labels other than 0/1, a score of the wrong
        length, with NaN, or for other customers.

    Examples
    --------
    >>> from segml.models._churn_evaluation import evaluate_churn
    >>> y = [1, 0, 1, 0]
    >>> table = evaluate_churn(y, {"model": [0.8, 0.3, 0.6, 0.4], "days": [200, 10, 20, 30]})
    >>> table[["roc_auc", "pr_auc", "brier", "top_decile_lift"]].round(3)
            roc_auc  pr_auc  brier  top_decile_lift
    scorer
    model      1.00   1.000  0.113              2.0
    days       0.75   0.833    NaN              2.0
    """
    if not scores:
        raise ChurnInputError("scores is empty: pass at least one name -> score.")
    # Imported here: scikit-learn takes a second to import, and scoring never evaluates.
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    rows = {}
    for name, score in scores.items():
        y, s = _check_inputs(y_true, score, name)
        is_probability = bool(((s >= 0) & (s <= 1)).all())
        # The top decile holds ceil(n / 10) customers, at least one.
        top = _expected_positives_in_top(y, s, np.array([int(np.ceil(len(y) / 10))]))[0]
        n_top = int(np.ceil(len(y) / 10))
        rows[name] = {
            "roc_auc": float(roc_auc_score(y, s)),
            "pr_auc": float(average_precision_score(y, s)),
            "brier": float(brier_score_loss(y, s)) if is_probability else float("nan"),
            "top_decile_lift": float(top / n_top / y.mean()),
            "top_decile_capture": float(top / y.sum()),
            "n_customers": len(y),
            "churn_rate": float(y.mean()),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "scorer"
    return table
