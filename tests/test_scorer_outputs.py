"""The scorer's predictive columns (issue 13 point 5): P(buy in N days), the next
purchase (days and dates) and the CLV predictive interval, equal to
predictive_summary on the same RFM, typed for every output, identical after a save
and load, through MLflow's pyfunc (a real SQLite store) and whatever the chunks.

One scorer is fitted on the CDNOW sample (weeks, 4 segments, random_state=0).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from segml.models._predictive import predictive_summary
from segml.models.churn import early_warning
from segml.models.clv import CLVModel
from segml.models.segments import SegmentModel
from segml.scoring import (
    OUTPUT_COLUMNS,
    STRING_OUTPUT_COLUMNS,
    CustomerScorer,
    ScorerError,
    customer_features,
)
from segml.scoring._scorer import DATE_OUTPUT_COLUMNS
from segml.tracking._model import cast_to_signature, model_signature, predict_with_ids

AS_OF = "1998-06-30"
PREDICTIVE = [
    "p_buy_30d",
    "p_buy_90d",
    "p_buy_again",
    "next_purchase_days",
    "next_purchase_low_days",
    "next_purchase_high_days",
    "next_purchase_date",
    "next_purchase_low",
    "next_purchase_high",
    "clv_low",
    "clv_high",
]
FLOATS = [c for c in PREDICTIVE if c not in DATE_OUTPUT_COLUMNS]


def _scorer(**kwargs) -> CustomerScorer:
    return CustomerScorer(
        clv=CLVModel(time_unit="W"), segments=SegmentModel(n_segments=4, random_state=0), **kwargs
    )


@pytest.fixture(scope="module")
def fitted(cdnow_sample) -> CustomerScorer:
    return _scorer(random_state=0).fit(cdnow_sample, as_of=AS_OF)


@pytest.fixture(scope="module")
def features(cdnow_sample) -> pd.DataFrame:
    return customer_features(cdnow_sample, as_of=AS_OF)


@pytest.fixture(scope="module")
def scores(fitted, features) -> pd.DataFrame:
    return fitted.predict(features, as_of=AS_OF)


def _iso(stamps: pd.Series) -> pd.Series:
    """Dates as the scorer writes them: ISO text, missing where NaT."""
    return pd.Series(
        pd.array(stamps.dt.strftime("%Y-%m-%d").to_numpy(dtype=object), dtype="str"),
        index=stamps.index,
        name=stamps.name,
    )


def test_the_predictive_columns_follow_the_base_ones_with_their_types(fitted, scores):
    assert fitted.output_columns_ == list(OUTPUT_COLUMNS) == list(scores.columns)
    assert list(OUTPUT_COLUMNS[-len(PREDICTIVE) :]) == PREDICTIVE
    assert set(DATE_OUTPUT_COLUMNS) <= set(STRING_OUTPUT_COLUMNS)
    for name in FLOATS:
        assert scores[name].dtype == np.float64, name
    for name in DATE_OUTPUT_COLUMNS:
        assert scores[name].dtype == "str", name
        present = scores[name].dropna()
        assert present.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all(), name
        assert (present > AS_OF).all()  # at least one day after the scoring day
    # The CLV model's parameter-only interval is not a score (clv_low / clv_high are).
    assert not {"clv_lower", "clv_upper"} & set(scores.columns)
    assert fitted.predictive_settings_ == {
        "p_buy_windows_days": [30, 90],
        "interval_level": 0.8,
        "n_draws": 200,
        "seed": 0,
    }
    assert fitted.notices_ == []


def test_values_equal_predictive_summary_on_the_same_rfm(fitted, features, scores):
    summary = predictive_summary(
        fitted.clv_,
        fitted.clv_features(features),
        as_of=AS_OF,
        windows_days=(30, 90),
        level=0.8,
        n_draws=200,
        random_state=0,
    )
    assert list(summary.columns) == PREDICTIVE
    for name in FLOATS:
        pd.testing.assert_series_equal(scores[name], summary[name], check_exact=True)
    for name in DATE_OUTPUT_COLUMNS:
        pd.testing.assert_series_equal(scores[name], _iso(summary[name]))
    assert (0 <= scores["clv_low"]).all() and (scores["clv_low"] <= scores["clv_high"]).all()


def test_a_customer_unlikely_to_buy_again_gets_no_date_and_the_probability_says_why(scores):
    no_date = scores["next_purchase_date"].isna()
    assert no_date.equals(scores["p_buy_again"] <= 0.5)
    assert scores["next_purchase_days"].isna().equals(no_date)
    assert 0.05 < no_date.mean() < 0.95  # both kinds of customer are on the sample
    # The 90% end exists only where p_buy_again > 0.9 (and it is within 100 years:
    # one-time buyers of the sample have p_buy_again 1 and a slow rate); the 10% end
    # wherever p_buy_again > 0.1.
    high = scores["next_purchase_high"].notna()
    assert (scores.loc[high, "p_buy_again"] > 0.9).all()
    assert scores.loc[~high, "next_purchase_high_days"].isna().all()
    assert scores["next_purchase_low"].isna().equals(scores["p_buy_again"] <= 0.1)
    dated = scores.dropna(subset=["next_purchase_high"])
    assert (dated["next_purchase_low"] <= dated["next_purchase_date"]).all()
    assert (dated["next_purchase_date"] <= dated["next_purchase_high"]).all()


def test_without_as_of_the_dates_are_missing_and_the_rest_is_the_same(fitted, features, scores):
    bare = fitted.predict(features)
    assert bare[list(DATE_OUTPUT_COLUMNS)].isna().all().all()
    rest = [c for c in scores.columns if c not in DATE_OUTPUT_COLUMNS]
    pd.testing.assert_frame_equal(bare[rest], scores[rest], check_exact=True)


def test_score_dates_count_from_its_as_of(fitted, cdnow_sample, scores):
    pd.testing.assert_frame_equal(fitted.score(cdnow_sample, as_of=AS_OF), scores)
    later = fitted.score(cdnow_sample, as_of="1998-07-30")
    dated = later["next_purchase_date"].dropna()
    offset = pd.to_datetime(dated) - pd.Timestamp("1998-07-30")
    assert (offset.dt.days == np.ceil(later.loc[dated.index, "next_purchase_days"])).all()


def test_a_bad_as_of_is_refused_by_name(fitted, features):
    with pytest.raises(ScorerError, match=r"as_of must be a date such as '1998-06-30'.*19980630"):
        fitted.predict(features, as_of=19980630)
    with pytest.raises(ScorerError, match=r"as_of 'yesterday' is not a date"):
        fitted.predict(features, as_of="yesterday")


def test_each_customer_scores_the_same_alone_in_chunks_and_in_any_order(fitted, features, scores):
    # Needs B's draws seeded per customer (INTERFACES.md, "predictive outputs do not
    # depend on the other customers in the call").
    rng = np.random.default_rng(3)
    shuffled = features.iloc[rng.permutation(len(features))]
    parts = [
        fitted.predict(shuffled.iloc[start : start + 97], as_of=AS_OF)
        for start in range(0, len(shuffled), 97)
    ]
    chunked = pd.concat(parts).loc[scores.index]
    pd.testing.assert_frame_equal(chunked, scores, check_exact=True)
    alone = fitted.predict(features.loc[["0001"]], as_of=AS_OF)
    pd.testing.assert_frame_equal(alone, scores.loc[["0001"]], check_exact=True)


def test_a_saved_scorer_scores_identically_and_keeps_its_seed(tmp_path, cdnow_sample, features):
    unseeded = _scorer().fit(cdnow_sample, as_of=AS_OF)  # random_state=None: a seed is drawn
    seed = unseeded.predictive_settings_["seed"]
    assert isinstance(seed, int)
    loaded = CustomerScorer.load(unseeded.save(tmp_path / "scorer"))
    assert loaded.predictive_settings_ == unseeded.predictive_settings_
    assert loaded.output_columns_ == unseeded.output_columns_
    pd.testing.assert_frame_equal(
        loaded.predict(features, as_of=AS_OF),
        unseeded.predict(features, as_of=AS_OF),
        check_exact=True,
    )
    document = json.loads((tmp_path / "scorer" / "scorer.json").read_text())
    assert document["format_version"] == 3
    assert document["predictive"]["seed"] == seed
    assert document["settings"]["random_state"] is None
    assert document["notices"] == []


def test_a_scorer_saved_before_the_predictive_columns_scores_as_it_did(
    fitted, tmp_path, features, scores
):
    folder = fitted.save(tmp_path / "scorer")
    path = folder / "scorer.json"
    document = json.loads(path.read_text())
    document["format_version"] = 2
    for key in ("predictive", "notices"):
        del document[key]
    for key in ("p_buy_windows_days", "interval_level", "n_draws", "random_state"):
        del document["settings"][key]
    path.write_text(json.dumps(document))
    old = CustomerScorer.load(folder)
    assert old.output_columns_ == list(OUTPUT_COLUMNS[:10])
    assert old.predictive_settings_ is None
    pd.testing.assert_frame_equal(
        old.predict(features, as_of=AS_OF), scores[list(OUTPUT_COLUMNS[:10])], check_exact=True
    )


def test_other_windows_level_and_draws_name_and_shape_the_columns(cdnow_sample, features):
    scorer = _scorer(p_buy_windows_days=[7, 365], interval_level=0.5, n_draws=50, random_state=1)
    scores = scorer.fit(cdnow_sample, as_of=AS_OF).predict(features, as_of=AS_OF)
    assert ["p_buy_7d", "p_buy_365d"] == [c for c in scores.columns if c.startswith("p_buy_")][:2]
    summary = predictive_summary(
        scorer.clv_,
        scorer.clv_features(features),
        windows_days=(7, 365),
        level=0.5,
        n_draws=50,
        random_state=1,
    )
    for name in ("p_buy_7d", "p_buy_365d", "next_purchase_high_days", "clv_low", "clv_high"):
        pd.testing.assert_series_equal(scores[name], summary[name], check_exact=True)
    # A 50% interval's ends are the 25% and 75% quantiles: they exist only where
    # p_buy_again exceeds them.
    assert (scores.dropna(subset=["next_purchase_high"])["p_buy_again"] > 0.75).all()
    assert scores.loc[scores["p_buy_again"] <= 0.25, "next_purchase_low"].isna().all()
    assert (scores.dropna(subset=["next_purchase_low"])["p_buy_again"] > 0.25).all()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"p_buy_windows_days": [30, 30]}, r"p_buy_windows_days must be .*distinct"),
        ({"p_buy_windows_days": [0]}, r"p_buy_windows_days must be .*positive"),
        ({"p_buy_windows_days": "30"}, r"p_buy_windows_days must be"),
        ({"interval_level": 1.0}, r"interval_level must be a number in \(0, 1\)"),
        ({"n_draws": 1}, r"n_draws must be a whole number >= 2, got 1"),
        ({"random_state": -1}, r"random_state must be >= 0, got -1"),
    ],
)
def test_bad_predictive_settings_are_refused_before_fitting(cdnow_sample, settings, message):
    with pytest.raises(ScorerError, match=message):
        _scorer(**settings).fit(cdnow_sample, as_of=AS_OF)


def test_the_signature_types_every_output_and_takes_as_of(fitted):
    signature = model_signature(fitted)
    outputs = {spec.name: spec for spec in signature.outputs.inputs}
    assert list(outputs) == ["customer_id", *OUTPUT_COLUMNS]
    for name in DATE_OUTPUT_COLUMNS:
        assert outputs[name].type.name == "string" and not outputs[name].required
    for name in FLOATS:
        assert outputs[name].type.name == "double" and not outputs[name].required
    assert outputs["clv"].required and outputs["segment"].type.name == "long"
    assert [(p.name, p.dtype.name, p.default) for p in signature.params.params] == [
        ("as_of", "string", None)
    ]


@pytest.fixture(scope="module")
def registered(tmp_path_factory, fitted, features):
    """The scorer logged and registered in a real SQLite store (version 1)."""
    import mlflow

    from segml.tracking._model import log_model
    from segml.tracking._store import prepare_store

    folder = tmp_path_factory.mktemp("outputs-registry")
    uri = f"sqlite:///{folder}/mlflow.db"
    prepare_store(uri)
    model_input = cast_to_signature(features, fitted.feature_columns_)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.create_experiment(
            "outputs", artifact_location=(folder / "mlruns").as_uri()
        )
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            with mlflow.start_run(experiment_id=experiment):
                log_model(
                    fitted, input_example=model_input.head(3), registered_model_name="outputs"
                )
            model = mlflow.pyfunc.load_model("models:/outputs/1")
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
    return model, model_input


def test_mlflows_pyfunc_gives_the_same_values_with_the_as_of_parameter(registered, fitted, scores):
    model, model_input = registered
    theirs = model.predict(model_input, params={"as_of": AS_OF})
    expected = scores.rename_axis("customer_id").reset_index()
    pd.testing.assert_frame_equal(theirs, expected, check_exact=True)
    pd.testing.assert_frame_equal(predict_with_ids(fitted, model_input, as_of=AS_OF), expected)
    # No parameter: the same scores, no dates.
    bare = model.predict(model_input)
    assert bare[list(DATE_OUTPUT_COLUMNS)].isna().all().all()
    logged = [spec.name for spec in model.metadata.get_output_schema().inputs]
    assert logged == ["customer_id", *OUTPUT_COLUMNS]


def test_the_early_warning_list_shows_the_next_purchase_and_the_clv_interval(scores):
    table = early_warning(scores, top_n=10)
    for name in ("clv_low", "clv_high", "next_purchase_date", "p_buy_again"):
        assert name in table.columns
    row = table.index[0]
    assert table.loc[row, "clv_high"] == scores.loc[row, "clv_high"]
    columns = list(table.columns)
    assert columns.index("clv_low") == columns.index("clv") + 1
    # Scores without them (an older model) give the list as before.
    older = early_warning(scores[list(OUTPUT_COLUMNS[:10])], top_n=10)
    assert not {"clv_low", "next_purchase_date"} & set(older.columns)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(table["next_purchase_date"].dropna().iloc[0]))
