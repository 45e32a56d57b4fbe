"""The segment map: sizes, profiles, attributes, actions; JSON/CSV round trips; diff."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from segml.models.scorecard import TierScorecard
from segml.models.segments import SegmentModel
from segml.scoring import (
    DEFAULT_ACTIONS,
    SegmentMap,
    SegmentMapError,
    build_segment_map,
    load_actions,
)

ACTIONS = Path(__file__).resolve().parents[1] / "configs" / "actions.yaml"


@pytest.fixture
def scored() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tier": pd.Categorical(
                ["VIP", "regular", "regular", "prospect", "prospect", "prospect"],
                categories=["VIP", "regular", "prospect"],
            ),
            "segment": [0, 1, 1, 2, 2, 1],
            "total_spend": [12_000.0, 6_000.0, 8_000.0, 100.0, 300.0, 5_500.0],
            "n_orders": [50, 20, 30, 1, 3, 10],
            "churn_probability": [0.1, 0.2, 0.3, 0.9, 0.7, 0.2],
            "industry": ["retail", "retail", "tech", "tech", "tech", "retail"],
        },
        index=pd.Index([f"c{i}" for i in range(6)], name="customer_id"),
    )


def test_sizes_shares_profiles_by_hand(scored):
    smap = build_segment_map(scored, attribute_columns=["industry"])
    assert [(e["column"], e["label"]) for e in smap.entries] == [
        ("segment", 0),
        ("segment", 1),
        ("segment", 2),
        ("tier", "VIP"),
        ("tier", "regular"),
        ("tier", "prospect"),
    ]
    regular = smap.entry("tier", "regular")
    assert regular["size"] == 2 and regular["share"] == pytest.approx(1 / 3)
    assert regular["profile"]["mean"]["total_spend"] == 7_000.0
    assert regular["profile"]["median"]["n_orders"] == 25.0
    assert regular["attributes"]["industry"] == {"retail": 0.5, "tech": 0.5}
    segment1 = smap.entry("segment", 1)
    assert segment1["profile"]["mean"]["churn_probability"] == pytest.approx(0.7 / 3)
    assert smap.n_customers == 6


def test_actions_levels_and_at_risk(scored):
    smap = build_segment_map(scored)
    levels = DEFAULT_ACTIONS["levels"]
    assert smap.lookup("tier") == {
        "VIP": levels["top"],
        "regular": levels["middle"],
        # mean churn 0.6 >= 0.5: the at-risk action is added to the tier's own
        "prospect": f"{levels['low']} {levels['at_risk']}",
    }
    # k-means segments: level from the value rank (0 best, last worst)
    assert [smap.entry("segment", s)["level"] for s in (0, 1, 2)] == ["top", "middle", "low"]
    assert smap.entry("segment", 2)["at_risk"] is True


def test_definitions_from_the_models(scored):
    card = TierScorecard.practice()
    smap = build_segment_map(scored, columns=["tier"], definitions={"tier": card.definitions()})
    assert smap.entry("tier", "VIP")["definition"]["rule"] == "total_points >= 13"


def test_segment_model_definitions_and_empty_segments():
    table = pd.DataFrame(
        {
            "days_since_last_purchase": [1, 2, 300, 310],
            "n_orders": [9, 8, 1, 1],
            "total_spend": [900.0, 800.0, 10.0, 12.0],
        },
        index=pd.Index(list("abcd"), name="customer_id"),
    )
    model = SegmentModel(n_segments=2).fit(table)
    scored = table.join(model.assign(table)).iloc[:2]  # nobody left in segment 1
    smap = build_segment_map(scored, definitions={"segment": model.definitions()})
    assert [e["size"] for e in smap.entries] == [2, 0]
    assert smap.entry("segment", 1)["name"] == model.segment_names_[1]
    assert smap.entry("segment", 1)["definition"]["centroid"]["n_orders"] == pytest.approx(1.0)
    assert smap.entry("segment", 1)["profile"]["mean"]["total_spend"] is None


def test_json_round_trip_is_exact(scored, tmp_path):
    smap = build_segment_map(
        scored, attribute_columns=["industry"], metadata={"as_of": "2024-06-30"}
    )
    smap.to_json(tmp_path / "map.json")
    back = SegmentMap.from_json(tmp_path / "map.json")
    assert back == smap
    assert back.metadata == {"as_of": "2024-06-30"}
    assert back.diff(smap)["status"].eq("same").all()


def test_csv_has_one_row_per_entry(scored, tmp_path):
    smap = build_segment_map(scored, attribute_columns=["industry"])
    smap.to_csv(tmp_path / "map.csv")
    table = pd.read_csv(tmp_path / "map.csv")
    assert len(table) == 6
    row = table[(table["column"] == "tier") & (table["label"] == "regular")].iloc[0]
    assert row["size"] == 2
    assert row["mean_total_spend"] == 7_000.0
    assert row["share_industry=retail"] == 0.5


def test_diff_reports_changes(scored):
    before = build_segment_map(scored)
    changed = scored.copy()
    changed.loc["c1", "tier"] = "VIP"
    changed["segment"] = [0, 1, 1, 2, 2, 3]
    after = build_segment_map(changed)
    diff = before.diff(after)
    assert diff.loc[("tier", "VIP"), "size_before"] == 1
    assert diff.loc[("tier", "VIP"), "size_after"] == 2
    assert diff.loc[("tier", "VIP"), "status"] == "changed"
    assert diff.loc[("tier", "VIP"), "mean_total_spend_change"] == pytest.approx(9_000.0 - 12_000.0)
    assert diff.loc[("segment", "3"), "status"] == "added"
    assert diff.loc[("tier", "prospect"), "status"] == "same"


def test_actions_file_equals_the_built_in_defaults():
    assert load_actions(ACTIONS) == DEFAULT_ACTIONS


def test_custom_actions_by_label(scored):
    actions = yaml.safe_load(ACTIONS.read_text())
    actions["by_label"]["tier"]["VIP"] = "Call within a week."
    smap = build_segment_map(scored, columns=["tier"], actions=actions)
    assert smap.entry("tier", "VIP")["action"] == "Call within a week."


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ({"level": {}}, r"unknown key\(s\) \['level'\]"),
        ({"levels": {"top": "x"}}, r"levels must give an action for exactly"),
        ({"at_risk_churn_probability": 2}, r"probability in \[0, 1\]; got 2"),
    ],
)
def test_actions_config_errors(scored, actions, message):
    with pytest.raises(SegmentMapError, match=message):
        build_segment_map(scored, actions=actions)


def test_input_errors_name_the_column(scored):
    with pytest.raises(SegmentMapError, match=r"lacks the column\(s\) \['region'\]"):
        build_segment_map(scored, attribute_columns=["region"])
    with pytest.raises(SegmentMapError, match="none of the grouping columns"):
        build_segment_map(scored[["total_spend"]])
    missing = scored.assign(segment=[0, 1, None, 2, 2, 1])
    with pytest.raises(SegmentMapError, match="'segment' has 1 missing label"):
        build_segment_map(missing)


# ------------------------------------------------------- actions by tier and risk
import copy  # noqa: E402

import numpy as np  # noqa: E402

from segml.models.churn import ChurnModel  # noqa: E402
from segml.models.clv import CLVModel  # noqa: E402
from segml.scoring import OUTPUT_COLUMNS, CustomerScorer, customer_features  # noqa: E402
from segml.scoring._scorer import STRING_OUTPUT_COLUMNS  # noqa: E402
from segml.scoring._segment_map import risk_actions  # noqa: E402

RETENTION_CALL = "Retention call by the account manager; personal offer."


def test_risk_actions_give_each_tier_its_own_action_per_band(scored):
    scored = scored.assign(risk_band=["high", "low", "high", "high", "medium", "low"])
    smap = build_segment_map(scored)
    vip = smap.entry("tier", "VIP")
    assert vip["actions_by_risk"]["high"] == {
        "action": RETENTION_CALL,
        "reason": "tier VIP, risk high",
        "size": 1,
    }
    assert vip["actions_by_risk"]["low"]["action"] == DEFAULT_ACTIONS["levels"]["top"]
    regular = smap.entry("tier", "regular")["actions_by_risk"]
    assert [regular[b]["size"] for b in ("high", "medium", "low")] == [1, 0, 1]
    prospect = smap.entry("tier", "prospect")
    assert prospect["actions_by_risk"]["high"]["action"] == (
        "Automated win-back email; no paid incentive."
    )
    assert prospect["action_reason"] == (
        "tier prospect: level low; mean churn_probability 0.60 >= 0.5 (at risk)"
    )
    assert "actions_by_risk" not in smap.entry("segment", 0)  # tiers carry them by default
    table = smap.to_frame().set_index(["column", "label"])
    assert table.loc[("tier", "VIP"), "action_risk_high"] == RETENTION_CALL
    assert table.loc[("tier", "VIP"), "size_risk_high"] == 1
    assert table.loc[("tier", "VIP"), "action_reason"] == "tier VIP: level top"


def test_old_actions_configs_keep_the_tier_action_at_high_risk(scored):
    # An actions file written before by_risk existed: high risk adds the at-risk action
    # to the tier's own, so a VIP at high risk keeps the account manager.
    old = yaml.safe_load(ACTIONS.read_text())
    del old["by_risk"]
    table = risk_actions(old, ["VIP", "regular", "prospect"])
    levels = DEFAULT_ACTIONS["levels"]
    assert table["VIP"] == {
        "high": f"{levels['top']} {levels['at_risk']}",
        "medium": levels["top"],
        "low": levels["top"],
    }
    smap = build_segment_map(scored, actions=old)
    assert smap.entry("tier", "regular")["actions_by_risk"]["medium"]["action"] == levels["middle"]


@pytest.mark.parametrize(
    ("by_risk", "message"),
    [
        (
            {"actions": {"VIP": {"high": "Call."}}},
            r"by_risk.actions.VIP must give one action for each risk band "
            r"\['high', 'medium', 'low'\]; got \['high'\]",
        ),
        ({"column": "value_tier"}, r"by_risk.column must be one of \['tier', 'segment'\]"),
        ({"colum": "tier"}, r"by_risk has unknown key\(s\) \['colum'\]"),
        (
            {"actions": {"vip": {"high": "a", "medium": "b", "low": "c"}}},
            r"names tier label\(s\) \['vip'\] that this run does not have; its tier labels are "
            r"\['VIP', 'regular', 'prospect'\]",
        ),
    ],
)
def test_by_risk_config_errors_name_the_fix(scored, by_risk, message):
    with pytest.raises(SegmentMapError, match=message):
        build_segment_map(scored, actions={"by_risk": by_risk})


@pytest.fixture(scope="module")
def scorer(cdnow_sample) -> CustomerScorer:
    # Risk thresholds low enough that some VIPs are at high risk on the sample.
    churn = ChurnModel(random_state=0, high_risk_threshold=0.6, medium_risk_threshold=0.3)
    return CustomerScorer(
        clv=CLVModel(time_unit="W"), segments=SegmentModel(n_segments=4), churn=churn
    ).fit(cdnow_sample, as_of="1998-06-30")


@pytest.fixture(scope="module")
def sample_features(cdnow_sample) -> pd.DataFrame:
    return customer_features(cdnow_sample, as_of="1998-06-30")


def test_a_vip_at_high_risk_gets_the_vip_at_high_risk_action(scorer, sample_features):
    scores = scorer.predict(sample_features)
    assert list(scores.columns) == list(OUTPUT_COLUMNS)
    assert OUTPUT_COLUMNS[8:10] == ("action", "action_reason")
    for column in STRING_OUTPUT_COLUMNS:
        assert scores[column].dtype == "str", column
    vip_high = scores[(scores["tier"] == "VIP") & (scores["risk_band"] == "high")]
    assert len(vip_high) > 0
    assert set(vip_high["action"]) == {RETENTION_CALL}
    assert set(vip_high["action_reason"]) == {"tier VIP, risk high"}
    # Every customer: the table's action for their tier and band, and the reason.
    table = risk_actions(None, scorer.scorecard_.tier_labels_)
    expected = [table[t][b] for t, b in zip(scores["tier"], scores["risk_band"], strict=True)]
    assert scores["action"].tolist() == expected
    assert (
        scores["action_reason"] == "tier " + scores["tier"] + ", risk " + scores["risk_band"]
    ).all()
    # The segment map shows the same table, with the customers in each cell.
    entry = scorer.segment_map_.entry("tier", "VIP")["actions_by_risk"]["high"]
    assert entry["action"] == RETENTION_CALL and entry["size"] == len(vip_high)


def test_actions_keyed_on_segments(scorer, sample_features):
    by_segment = copy.copy(scorer)
    by_segment.actions = {
        "by_risk": {
            "column": "segment",
            "actions": {"0": {"high": "Call now.", "medium": "Check in.", "low": "top"}},
        }
    }
    scores = by_segment.predict(sample_features)
    best = scores[(scores["segment"] == 0) & (scores["risk_band"] == "high")]
    assert len(best) > 0 and set(best["action"]) == {"Call now."}
    name = scorer.segments_.segment_names_[0]
    assert set(best["action_reason"]) == {f"segment 0 ({name}), risk high"}
    # Segments the table leaves out follow their level (the worst segment is low).
    levels = DEFAULT_ACTIONS["levels"]
    worst = scores[scores["segment"] == 3]
    expected = worst["risk_band"].map(
        {
            "high": f"{levels['low']} {levels['at_risk']}",
            "medium": levels["low"],
            "low": levels["low"],
        }
    )
    assert len(worst) > 0 and (worst["action"] == expected).all()


def test_saved_scorer_keeps_edges_actions_and_reasons(scorer, sample_features, tmp_path):
    scorer.save(tmp_path / "scorer")
    back = CustomerScorer.load(tmp_path / "scorer")
    assert back.scorecard_.edges_ == scorer.scorecard_.edges_
    assert back.scorecard_.edge_quantiles_["spend"] == [0.7, 0.9]
    assert scorer.scorecard_.edges_["spend"] == pytest.approx(
        np.quantile(sample_features["total_spend"], [0.7, 0.9]).tolist()
    )
    pd.testing.assert_frame_equal(back.predict(sample_features), scorer.predict(sample_features))
    # Scored on later data, the tiers use the edges learnt at training.
    later = sample_features.assign(total_spend=sample_features["total_spend"] * 10)
    spend_band = back.scorecard_.score(later)["spend_band"]
    assert (spend_band == "high").mean() > 0.5
