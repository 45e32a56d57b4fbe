"""SegmentModel: value ordering, id stability across retrains, row-order invariance, persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segml import rfm_summary
from segml.models.segments import SegmentInputError, SegmentModel
from segml.persistence import PersistenceError

AS_OF = "1998-06-30"


@pytest.fixture(scope="module")
def rfm(cdnow_sample) -> pd.DataFrame:
    return rfm_summary(cdnow_sample, as_of=AS_OF)


@pytest.fixture(scope="module")
def fitted(rfm) -> SegmentModel:
    return SegmentModel(n_segments=[3, 4, 5], random_state=0).fit(rfm)


def _blobs(sizes_by_spend, seed=0) -> pd.DataFrame:
    """Well-separated groups of customers: (days, orders, spend) around given centres."""
    rng = np.random.default_rng(seed)
    rows = []
    for days, orders, spend, n in sizes_by_spend:
        rows.append(
            pd.DataFrame(
                {
                    "days_since_last_purchase": np.round(days * np.exp(rng.normal(0, 0.05, n))),
                    "n_orders": np.round(orders * np.exp(rng.normal(0, 0.05, n))).clip(1),
                    "total_spend": spend * np.exp(rng.normal(0, 0.05, n)),
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    table.index = pd.Index([f"c{i:04d}" for i in range(len(table))], name="customer_id")
    return table


def test_ids_are_ordered_by_mean_total_spend(fitted, rfm):
    segment = fitted.predict(rfm)
    mean_spend = rfm["total_spend"].groupby(segment).mean()
    assert list(mean_spend.index) == list(range(fitted.n_segments_))
    assert mean_spend.is_monotonic_decreasing
    assert fitted.value_column_ == "total_spend"
    assert fitted.segment_values_ == pytest.approx(mean_spend.to_dict())


def test_ids_are_ordered_by_clv_when_given():
    # Spend says group A is best, CLV says group C is: CLV wins.
    table = _blobs([(5, 20, 1000.0, 30), (50, 5, 200.0, 30), (300, 1, 20.0, 30)])
    table["clv"] = np.repeat([1.0, 50.0, 900.0], 30)
    model = SegmentModel(n_segments=3).fit(table)
    assert model.value_column_ == "clv"
    segment = model.predict(table)
    assert segment[:30].tolist() == [2] * 30  # the high-spend group has the lowest CLV
    assert segment[60:].tolist() == [0] * 30
    assert model.segment_values_ == {0: 900.0, 1: 50.0, 2: 1.0}


def test_chooses_k_by_silhouette_on_well_separated_groups():
    table = _blobs([(5, 20, 1000.0, 40), (60, 5, 200.0, 40), (300, 1, 20.0, 40), (5, 1, 30.0, 40)])
    model = SegmentModel(n_segments=[2, 3, 4, 5, 6], random_state=1).fit(table)
    assert model.n_segments_ == 4
    assert sorted(model.silhouette_scores_) == [2, 3, 4, 5, 6]
    assert max(model.silhouette_scores_, key=model.silhouette_scores_.get) == 4
    assert sorted(model.segment_sizes_.values()) == [40, 40, 40, 40]


def test_shuffled_rows_give_identical_fit_and_segments(fitted, rfm):
    shuffled = rfm.sample(frac=1.0, random_state=11)
    refit = SegmentModel(n_segments=[3, 4, 5], random_state=0).fit(shuffled)
    np.testing.assert_array_equal(refit.cluster_centers_, fitted.cluster_centers_)
    assert refit.silhouette_scores_ == fitted.silhouette_scores_
    original = pd.Series(fitted.predict(rfm), index=rfm.index)
    again = pd.Series(refit.predict(shuffled), index=shuffled.index).reindex(rfm.index)
    pd.testing.assert_series_equal(original, again)


def test_customer_id_column_instead_of_index(rfm, fitted):
    as_column = rfm.reset_index().sample(frac=1.0, random_state=3)
    refit = SegmentModel(n_segments=[3, 4, 5], random_state=0).fit(as_column)
    np.testing.assert_array_equal(refit.cluster_centers_, fitted.cluster_centers_)


def test_retrain_on_resampled_data_keeps_ids_and_names(fitted, rfm):
    # A previous model whose ids are deliberately NOT in value order: a retrain
    # without `previous` would renumber by value; with it, ids and names carry over.
    document = fitted.to_dict()
    k = fitted.n_segments_
    permutation = list(range(k))[::-1]  # old id i is now called k - 1 - i
    document["segment_ids"] = [permutation[i] for i in document["segment_ids"]]
    document["segment_names"] = {
        str(permutation[int(i)]): f"name-of-{i}" for i in document["segment_names"]
    }
    previous = SegmentModel.from_dict(document)

    resampled = rfm.sample(frac=0.8, random_state=5)
    retrained = SegmentModel(n_segments=k, random_state=9).fit(resampled, previous=previous)
    assert retrained.matched_previous_
    assert retrained.segment_names_ == previous.segment_names_
    agreement = (retrained.predict(rfm) == previous.predict(rfm)).mean()
    assert agreement > 0.95

    unmatched = SegmentModel(n_segments=k, random_state=9).fit(resampled)
    assert (unmatched.predict(rfm) == previous.predict(rfm)).mean() < 0.5


def test_retrain_with_more_segments_gives_new_ids_after_the_old():
    two = _blobs([(5, 20, 1000.0, 40), (300, 1, 20.0, 40)])
    three = _blobs([(5, 20, 1000.0, 40), (300, 1, 20.0, 40), (60, 5, 200.0, 40)], seed=1)
    previous = SegmentModel(n_segments=2).fit(two)
    grown = SegmentModel(n_segments=3).fit(three, previous=previous)
    segment = grown.predict(three)
    assert set(segment[:40]) == {0} and set(segment[40:80]) == {1} and set(segment[80:]) == {2}
    assert grown.segment_names_[0] == previous.segment_names_[0]
    assert grown.segment_names_[1] == previous.segment_names_[1]


def test_previous_with_other_features_is_refused(fitted, rfm):
    model = SegmentModel(features=["n_orders", "total_spend"], n_segments=3)
    with pytest.raises(SegmentInputError, match="same features"):
        model.fit(rfm, previous=fitted)


def test_json_round_trip_predicts_identically_and_holds_no_pickle(fitted, rfm, tmp_path):
    path = tmp_path / "segments.json"
    fitted.save(path)
    document = json.loads(path.read_text())
    assert document["format"] == "segml.SegmentModel"
    loaded = SegmentModel.load(path)
    np.testing.assert_array_equal(loaded.cluster_centers_, fitted.cluster_centers_)
    np.testing.assert_array_equal(loaded.predict(rfm), fitted.predict(rfm))
    assert loaded.segment_names_ == fitted.segment_names_
    assert loaded.silhouette_scores_ == fitted.silhouette_scores_


def test_load_refuses_other_documents(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(PersistenceError, match="Not a saved segml.SegmentModel"):
        SegmentModel.load(path)


def test_centroids_are_in_feature_units():
    table = _blobs([(5, 20, 1000.0, 20), (300, 1, 20.0, 20)])
    centroids = SegmentModel(n_segments=2).fit(table).centroids()
    assert centroids.loc[0, "total_spend"] == pytest.approx(1000.0, rel=0.05)
    assert centroids.loc[1, "days_since_last_purchase"] == pytest.approx(300.0, rel=0.05)


def test_assign_gives_ids_and_names(fitted, rfm):
    assigned = fitted.assign(rfm)
    assert list(assigned.columns) == ["segment", "segment_name"]
    assert (assigned["segment_name"] == assigned["segment"].map(fitted.segment_names_)).all()


def test_missing_feature_column_is_named(rfm):
    with pytest.raises(SegmentInputError, match=r"lacks the column\(s\) \['n_orders'\]"):
        SegmentModel(n_segments=2).fit(rfm.drop(columns="n_orders"))


def test_negative_values_are_counted(rfm):
    bad = rfm.copy()
    bad.iloc[:3, bad.columns.get_loc("total_spend")] = -1.0
    with pytest.raises(SegmentInputError, match="'total_spend' has 3 negative value"):
        SegmentModel(n_segments=2).fit(bad)


def test_repeated_customers_are_counted(rfm):
    with pytest.raises(SegmentInputError, match="2 customer_id value\\(s\\) repeat"):
        SegmentModel(n_segments=2).fit(pd.concat([rfm, rfm.iloc[:2]]))


def test_too_few_customers_for_k(rfm):
    with pytest.raises(SegmentInputError, match="3 customers cannot make 5 segments"):
        SegmentModel(n_segments=5).fit(rfm.iloc[:3])


def test_predict_before_fit_says_how_to_fix(rfm):
    with pytest.raises(SegmentInputError, match="not fitted yet"):
        SegmentModel().predict(rfm)


def test_shared_pass_silhouettes_equal_scikit_learn():
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    from segml.models.segments import _silhouettes

    z = np.random.default_rng(0).normal(size=(600, 3))
    labelings = {k: KMeans(k, n_init=1, random_state=0).fit(z).labels_ for k in (2, 3, 5)}
    ours = _silhouettes(z, labelings, chunk_rows=128)
    for k, labels in labelings.items():
        assert ours[k] == pytest.approx(silhouette_score(z, labels), abs=1e-12)


# ------------------------------------------------------------------ segment names
from segml.models.segments import _NAME_WORDS, _name_levels  # noqa: E402


def _word_levels(model: SegmentModel) -> pd.DataFrame:
    """The level (-2..2) each segment's name gives each feature, read back from its words."""
    levels = {}
    for sid, name in model.segment_names_.items():
        words = set(name.split(" #")[0].split(", "))
        levels[sid] = {
            feature: next(
                (
                    lv
                    for lv, w in zip((-2, -1, 1, 2), _NAME_WORDS[feature], strict=True)
                    if w in words
                ),
                0,
            )
            for feature in model.features_
        }
    return pd.DataFrame(levels).T.sort_index()


def _assert_names_follow_each_feature(model: SegmentModel) -> None:
    names = list(model.segment_names_.values())
    assert len(set(names)) == len(names), names
    levels = _word_levels(model)
    centroids = model.centroids().sort_index()
    for feature in model.features_:
        for a in centroids.index:
            for b in centroids.index:
                if centroids.loc[a, feature] < centroids.loc[b, feature]:
                    assert levels.loc[a, feature] <= levels.loc[b, feature], (feature, names)


def test_name_levels_known_answer():
    # One feature, z of five centroids: two above average 1 SD apart, one just above,
    # one average, one below.
    z = np.array([[1.6], [0.6], [0.55], [0.0], [-0.7]])
    assert _name_levels(z).ravel().tolist() == [2, 1, 1, 0, -1]
    # Alone on its side, a centroid is far only from 1.5 SD.
    assert _name_levels(np.array([[1.4], [-1.5]])).ravel().tolist() == [1, -2]
    # Several on one side: far from 0.5 SD beyond the mildest (0.9 + 0.5 = 1.4).
    assert _name_levels(np.array([[1.4], [0.9], [1.39]])).ravel().tolist() == [2, 1, 1]


def test_segments_differing_3x_in_spend_get_different_spend_words(cdnow):
    # CDNOW at the end of the log, k = 3 as the silhouette picks: the two segments
    # above average spend differ about 3x (266 against 99 dollars at the centroid);
    # both were named "high-spend" before.
    customers = rfm_summary(cdnow, as_of=AS_OF)
    model = SegmentModel(n_segments=3, random_state=0).fit(customers)
    spend = model.centroids()["total_spend"]
    assert spend[0] / spend[1] > 2.5
    assert model.segment_names_ == {
        0: "very recent, very frequent, top-spend",
        1: "high-spend",
        2: "lapsed, infrequent, low-spend",
    }
    _assert_names_follow_each_feature(model)
    for k in (5, 6, 8):
        _assert_names_follow_each_feature(SegmentModel(n_segments=k, random_state=0).fit(customers))


def test_repeated_names_are_numbered_in_value_order():
    table = _blobs([(5, 20, 1000.0, 30), (50, 5, 200.0, 30), (300, 1, 20.0, 30)])
    model = SegmentModel(n_segments=3, segment_names=["same", "same", "other"]).fit(table)
    assert model.segment_names_ == {0: "same", 1: "same #2", 2: "other"}
