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
    card = TierScorecard.default()
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
