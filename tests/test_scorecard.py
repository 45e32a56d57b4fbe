"""TierScorecard: the practice table on hand-computed customers, measures, config errors."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml

from segml.models._segments_input import SegmentInputError
from segml.models.scorecard import (
    PRACTICE_CONFIG,
    TierConfigError,
    TierScorecard,
    purchases_per_month,
    repurchase_rate,
)


@pytest.fixture(scope="module")
def card() -> TierScorecard:
    return TierScorecard.practice()


@pytest.fixture
def config() -> dict:
    return yaml.safe_load(PRACTICE_CONFIG.read_text())


def _customers(rows):
    """rows: (id, n_orders, tenure_days, total_spend, repurchase_rate)."""
    frame = pd.DataFrame(
        rows, columns=["customer_id", "n_orders", "tenure_days", "total_spend", "repurchase_rate"]
    )
    return frame.set_index("customer_id")


def test_boundaries_belong_to_the_band_above(card):
    # Each measure exactly on a boundary, then just below it.
    scores = card.score(
        _customers(
            [
                ("at", 4, 20, 10_000.0, 0.8),  # 4/month (tenure floored to a month), 10,000, 80%
                ("below", 4, 31, 9_999.99, 0.7999),  # 4 / (31/30.4375) = 3.93/month
                ("middle_low_edges", 2, 30, 5_000.0, 0.5),
                ("under_middle", 1, 30, 4_999.0, 0.49),
            ]
        )
    )
    assert scores["purchase_frequency_band"].tolist() == ["high", "middle", "middle", "low"]
    assert scores["spend_band"].tolist() == ["high", "middle", "middle", "low"]
    assert scores["loyalty_band"].tolist() == ["high", "middle", "middle", "low"]
    assert scores["total_points"].tolist() == [15.0, 9.0, 9.0, 3.0]
    assert scores["tier"].tolist() == ["VIP", "regular", "regular", "prospect"]


def test_hand_computed_customers(card):
    scores = card.score(
        _customers(
            [
                # 60 orders in 365 days: 60 / (365 / 30.4375) = 5.003/month -> high (5)
                # 12,000 -> high (5); 0.9 -> high (5): 15 -> VIP
                ("ana", 60, 365, 12_000.0, 0.9),
                # 36 / (365 / 30.4375) = 3.002 -> middle (3); 7,500 -> middle (3);
                # 0.55 -> middle (3): 9 -> regular
                ("ben", 36, 365, 7_500.0, 0.55),
                # 48 / (730 / 30.4375) = 2.001 -> middle (3); 11,000 -> high (5);
                # 0.85 -> high (5): 13 -> VIP
                ("cai", 48, 730, 11_000.0, 0.85),
                # 1 / 1 = 1 -> low (1); 100 -> low (1); 0 -> low (1): 3 -> prospect
                ("dee", 1, 0, 100.0, 0.0),
                # 3.5 per month (the practice table's gap between 3 and 4) is middle:
                # 7 orders in 60.875 days; 5,000 middle (3); 0.3 low (1): 7 -> regular
                ("eve", 7, 60.875, 5_000.0, 0.3),
            ]
        )
    )
    assert scores["purchase_frequency"].round(3).tolist() == [5.003, 3.002, 2.001, 1.0, 3.5]
    assert scores["total_points"].tolist() == [15.0, 9.0, 13.0, 3.0, 7.0]
    assert scores["tier"].tolist() == ["VIP", "regular", "VIP", "prospect", "regular"]
    assert list(scores["tier"].cat.categories) == ["VIP", "regular", "prospect"]
    assert scores.index.tolist() == ["ana", "ben", "cai", "dee", "eve"]


def test_purchases_per_month_floors_tenure_at_one_month():
    table = pd.DataFrame({"n_orders": [3, 3, 61], "tenure_days": [0, 30.4375, 30.4375 * 2]})
    assert purchases_per_month(table).tolist() == [3.0, 3.0, 30.5]


def test_repurchase_rate_counts_months_after_the_first():
    log = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "b", "c", "d"],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-31",
                    "2024-01-02",  # a: first month January (two orders, counted once)
                    "2024-03-15",
                    "2024-07-01",  # a: March, and July which is after as_of
                    "2024-05-01",
                    "2024-06-30",  # b: first month May; June is eligible and bought
                    "2024-06-30",  # c: first purchase in the as_of month: rate 0
                    "2024-02-10",  # d: never came back: 0 / 4
                ]
            ),
        }
    )
    rate = repurchase_rate(log, as_of="2024-06-30")
    # a: eligible Feb..Jun = 5 months, bought in March only -> 0.2
    assert rate.to_dict() == {"a": 0.2, "b": 1.0, "c": 0.0, "d": 0.0}
    assert rate.index.name == "customer_id"


def test_extra_criterion_from_a_customer_column(config):
    config["criteria"].append(
        {
            "name": "advocacy",
            "measure": "willingness_to_recommend",
            "missing_points": 1,
            "bands": [
                {"label": "high", "lower": 9, "points": 5},
                {"label": "middle", "lower": 7, "upper": 9, "points": 3},
                {"label": "low", "upper": 7, "points": 1},
            ],
        }
    )
    config["tiers"] = [
        {"label": "VIP", "lower": 17},
        {"label": "regular", "lower": 9, "upper": 17},
        {"label": "prospect", "upper": 9},
    ]
    card = TierScorecard(**config)
    customers = _customers([("a", 60, 365, 12_000.0, 0.9), ("b", 60, 365, 12_000.0, 0.9)])
    customers["willingness_to_recommend"] = [9.0, float("nan")]
    scores = card.score(customers)
    assert scores["advocacy_band"].tolist() == ["high", "missing"]
    assert scores["total_points"].tolist() == [20.0, 16.0]
    assert scores["tier"].tolist() == ["VIP", "regular"]


def test_missing_column_names_the_fix(card):
    customers = _customers([("a", 1, 10, 5.0, 0.0)]).drop(columns="repurchase_rate")
    with pytest.raises(
        SegmentInputError, match=r"'repurchase_rate'.*repurchase_rate\(transactions"
    ):
        card.score(customers)


def test_missing_values_without_missing_points_are_counted(card):
    customers = _customers([("a", 1, 10, 5.0, float("nan")), ("b", 1, 10, 5.0, float("nan"))])
    with pytest.raises(SegmentInputError, match="missing for 2 customer"):
        card.score(customers)


def test_definitions_describe_rules_with_currency(card):
    definitions = card.definitions()
    assert list(definitions) == ["VIP", "regular", "prospect"]
    assert definitions["regular"]["definition"]["rule"] == "7 <= total_points < 13"
    spend = definitions["VIP"]["definition"]["criteria"][1]
    assert spend["bands"]["high"] == {"rule": "x >= 10000 USD", "points": 5.0}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["criteria"][0]["bands"][1].update(lower=2.5),
            r"criteria\[0\] \(purchase_frequency\)\.bands: values in \[2, 2.5\) fall in no band",
        ),
        (
            lambda c: c["criteria"][1]["bands"][1].update(upper=12_000),
            r"criteria\[1\] \(spend\)\.bands: bands 'middle' and 'high' overlap on "
            r"\[10000, 12000\)",
        ),
        (
            lambda c: c["criteria"][2]["bands"][0].update(upper=1.0),
            r"values from 1 up fall in no band; leave out 'upper'",
        ),
        (
            lambda c: c["criteria"][2]["bands"][2].update(lower=0.0),
            r"values below 0 fall in no band; leave out 'lower'",
        ),
        (
            lambda c: c["criteria"][0]["bands"][0].update(pionts=5),
            r"criteria\[0\] \(purchase_frequency\)\.bands\[0\] has unknown field\(s\) \['pionts'\]",
        ),
        (
            lambda c: c["criteria"][0].update(weight=2),
            r"criteria\[0\] has unknown field\(s\) \['weight'\]",
        ),
        (
            lambda c: c["criteria"][0]["bands"][0].pop("points"),
            r"bands\[0\] lacks the required field\(s\) \['points'\]",
        ),
        (
            lambda c: c["tiers"].reverse(),
            r"tiers must be listed best first .* expected order \['VIP', 'regular', 'prospect'\]",
        ),
        (lambda c: c["tiers"][1].update(lower=8), r"tiers: values in \[7, 8\) fall in no band"),
        (
            lambda c: c["criteria"][1]["bands"][0].update(lower="10k"),
            r"bands\[0\]\.lower must be a number or null; got '10k'",
        ),
        (
            lambda c: c["criteria"][1].update(name="purchase_frequency"),
            r"name\(s\) \['purchase_frequency'\] appear more than once",
        ),
    ],
)
def test_config_errors_name_the_key(config, edit, message):
    bad = copy.deepcopy(config)
    edit(bad)
    with pytest.raises(TierConfigError, match=message):
        TierScorecard(**bad).fit()


def test_yaml_unknown_top_level_key(tmp_path, config):
    config["currncy"] = "EUR"
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(TierConfigError, match=r"unknown key\(s\) \['currncy'\].*allowed keys"):
        TierScorecard.from_yaml(path)


def test_yaml_missing_required_key(tmp_path, config):
    del config["tiers"]
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(TierConfigError, match="required keys are"):
        TierScorecard.from_yaml(path)


def test_currency_and_thresholds_come_from_config(config):
    config["currency"] = "EUR"
    config["criteria"][1]["bands"] = [
        {"label": "high", "lower": 100, "points": 5},
        {"label": "low", "upper": 100, "points": 1},
    ]
    card = TierScorecard(**config)
    scores = card.score(_customers([("a", 1, 10, 100.0, 0.0), ("b", 1, 10, 99.0, 0.0)]))
    assert scores["spend_points"].tolist() == [5.0, 1.0]
    assert (
        card.definitions()["VIP"]["definition"]["criteria"][1]["bands"]["high"]["rule"]
        == "x >= 100 EUR"
    )


# --------------------------------------------------------------------- value tiers
from segml.models.value_tiers import ValueTiers  # noqa: E402


def _values():
    # clv 1..10; current spend 10..1 (the opposite order)
    return pd.DataFrame(
        {
            "clv": [float(v) for v in range(1, 11)],
            "total_spend": [float(v) for v in range(10, 0, -1)],
            "industry": ["retail"] * 5 + ["tech"] * 5,
        },
        index=pd.Index([f"c{i}" for i in range(10)], name="customer_id"),
    )


def test_value_tiers_by_quantile():
    # np.quantile(1..10, [0.5, 0.8]) = 5.5, 8.2: high >= 8.2, medium [5.5, 8.2)
    tiers = ValueTiers().fit(_values())
    assert tiers.cutoffs_["__all__"] == pytest.approx([5.5, 8.2])
    out = tiers.predict(_values())
    assert out["value_tier"].tolist() == ["low"] * 5 + ["medium"] * 3 + ["high"] * 2
    assert list(out["value_tier"].cat.categories) == ["high", "medium", "low"]


def test_value_class_core_important_potential():
    table = pd.DataFrame({"clv": [100.0, 100.0, 1.0, 1.0], "total_spend": [100.0, 1.0, 100.0, 1.0]})
    # class_quantile 0.5: cut-offs are 50.5 on both; high means >= 50.5
    out = ValueTiers(class_quantile=0.5).fit(table).predict(table)
    assert out["value_class"].tolist() == ["core", "potential", "important", "maintain"]


def test_value_tiers_within_groups():
    tiers = ValueTiers(group_column="industry", current_column=None).fit(_values())
    # retail clv 1..5: cut-offs quantile(.5)=3, quantile(.8)=4.2; tech 6..10: 8, 9.2
    assert tiers.cutoffs_["retail"] == pytest.approx([3.0, 4.2])
    assert tiers.cutoffs_["tech"] == pytest.approx([8.0, 9.2])
    out = tiers.predict(_values())
    assert out["value_tier"].tolist() == ["low", "low", "medium", "medium", "high"] * 2
    unseen = _values().iloc[:1].assign(industry="mining", clv=9.0)
    assert tiers.predict(unseen)["value_tier"].tolist() == ["high"]  # all-customer cut-offs


def test_value_tier_thresholds_in_value_units():
    tiers = ValueTiers(
        method="threshold",
        current_column=None,
        bands=[{"label": "high", "lower": 8}, {"label": "low", "upper": 8}],
    )
    assert (
        tiers.fit(_values()).predict(_values())["value_tier"].tolist() == ["low"] * 7 + ["high"] * 3
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"method": "median"}, "method must be 'quantile' or 'threshold'"),
        (
            {"bands": [{"label": "high", "lower": 80}, {"label": "low", "upper": 80}]},
            "quantiles strictly between 0 and 1",
        ),
        ({"classes": {"core": {"current": "high", "predicted": "high"}}}, "no class for the cell"),
        (
            {
                "classes": {
                    "a": {"current": "high", "predicted": "high"},
                    "b": {"current": "high", "predicted": "high"},
                }
            },
            "'a' and 'b' both claim",
        ),
    ],
)
def test_value_tier_config_errors(params, message):
    with pytest.raises(TierConfigError, match=message):
        ValueTiers(**params).fit(_values())


def test_value_tiers_missing_clv_is_named():
    with pytest.raises(SegmentInputError, match=r"lacks the column\(s\) \['clv'\]"):
        ValueTiers().fit(_values().drop(columns="clv"))


def test_value_tiers_config_file_is_the_default():
    model = ValueTiers.from_yaml(PRACTICE_CONFIG.parent / "value_tiers.yaml")
    default = ValueTiers()
    assert [dict(b) for b in model.bands] == [dict(b) for b in default.bands]
    assert model.classes == default.classes
    assert (model.class_quantile, model.current_column) == (0.7, "total_spend")


def test_tables_within_groups(config):
    # Retail customers get lower spend thresholds; other industries use the default.
    retail = copy.deepcopy(config["criteria"])
    retail[1]["bands"] = [
        {"label": "high", "lower": 1_000, "points": 5},
        {"label": "middle", "lower": 500, "upper": 1_000, "points": 3},
        {"label": "low", "upper": 500, "points": 1},
    ]
    card = TierScorecard(**config, group_column="industry", groups={"retail": {"criteria": retail}})
    customers = _customers([("a", 1, 30, 1_000.0, 0.0), ("b", 1, 30, 1_000.0, 0.0)])
    customers["industry"] = ["retail", "tech"]
    scores = card.score(customers)
    assert scores["spend_band"].tolist() == ["high", "low"]
    assert scores["total_points"].tolist() == [7.0, 3.0]
    assert scores["tier"].tolist() == ["regular", "prospect"]
    assert scores.index.tolist() == ["a", "b"]


def test_predict_gives_the_tiers_of_score_with_and_without_groups(card, config):
    # predict grades without building the band columns; it must agree with score.
    retail = copy.deepcopy(config["criteria"])
    retail[1]["bands"] = [
        {"label": "high", "lower": 1_000, "points": 5},
        {"label": "low", "upper": 1_000, "points": 1},
    ]
    grouped = TierScorecard(
        **config, group_column="industry", groups={"retail": {"criteria": retail}}
    )
    customers = _customers(
        [
            ("a", 60, 365, 12_000.0, 0.9),
            ("b", 1, 30, 1_000.0, 0.0),
            ("c", 36, 365, 7_500.0, 0.55),
            ("d", 1, 30, 1_000.0, 0.0),
        ]
    )
    customers["industry"] = ["tech", "retail", "retail", "tech"]
    for scorecard in (card, grouped):
        tiers = scorecard.predict(customers)
        pd.testing.assert_series_equal(tiers, scorecard.score(customers)["tier"])
    assert grouped.predict(customers).tolist() == ["VIP", "regular", "regular", "prospect"]
    assert list(tiers.cat.categories) == ["VIP", "regular", "prospect"] and tiers.cat.ordered


def test_group_tables_must_keep_names(config):
    renamed = copy.deepcopy(config["criteria"])
    renamed[0]["name"] = "orders"
    card = TierScorecard(
        **config, group_column="industry", groups={"retail": {"criteria": renamed}}
    )
    with pytest.raises(TierConfigError, match=r"groups.retail: criteria \['orders', 'spend'"):
        card.fit()
    card = TierScorecard(**config, group_column="industry", groups={"retail": {"colour": 1}})
    with pytest.raises(TierConfigError, match=r"groups.retail has unknown field\(s\) \['colour'\]"):
        card.fit()


# ----------------------------------------------------------- quantile band edges
import json  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from segml.models.scorecard import (  # noqa: E402
    DEFAULT_CONFIG,
    MAX_TIER_SHARE,
    TierConcentrationWarning,
)
from segml.scoring import customer_features  # noqa: E402

CONFIGS = PRACTICE_CONFIG.parent


def _simulated_customers(n: int, seed: int, scale: float = 1.0) -> pd.DataFrame:
    """Customers with continuous measures (no ties), ``scale`` multiplying every one."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "n_orders": rng.integers(1, 40, n).astype(float),
            "tenure_days": rng.uniform(40, 700, n),
            "total_spend": rng.lognormal(4, 1, n) * scale,
            "repurchase_rate": rng.uniform(0, 1, n) ** 2,
        },
        index=pd.Index([f"c{i:05d}" for i in range(n)], name="customer_id"),
    )
    frame["n_orders"] *= scale
    return frame


def _median_card() -> TierScorecard:
    return TierScorecard(
        criteria=[
            {
                "name": "spend",
                "measure": "total_spend",
                "bands": [
                    {"label": "high", "lower": {"at_quantile": 0.5}, "points": 5},
                    {"label": "low", "upper": {"at_quantile": 0.5}, "points": 1},
                ],
            }
        ],
        tiers=[{"label": "top", "lower": 5}, {"label": "rest", "upper": 5}],
    )


def test_quantile_edge_known_answer():
    # Spend 1..10: the median (linear interpolation) is 5.5; 5.5 is high, 5.4 is low.
    card = _median_card().fit(pd.DataFrame({"total_spend": np.arange(1.0, 11.0)}))
    assert card.edges_ == {"spend": [5.5]}
    assert card.edge_quantiles_ == {"spend": [0.5]}
    assert card.tier_shares_ == {"top": 0.5, "rest": 0.5}
    assert card.predict(pd.DataFrame({"total_spend": [5.5, 5.4]})).tolist() == ["top", "rest"]


def test_quantile_edges_equal_numpy_quantiles_and_are_kept_at_scoring():
    train = _simulated_customers(4_000, seed=1)
    card = TierScorecard.default().fit(train)
    measures = {
        "purchase_frequency": purchases_per_month(train).to_numpy(),
        "spend": train["total_spend"].to_numpy(),
        "loyalty": train["repurchase_rate"].to_numpy(),
    }
    for name, values in measures.items():
        assert card.edges_[name] == np.quantile(values, [0.7, 0.9]).tolist(), name
        assert card.edge_quantiles_[name] == [0.7, 0.9]
    # Other customers, every amount 10x: graded with the training edges, not their own.
    other = _simulated_customers(1_000, seed=2, scale=10.0)
    scores = card.score(other)
    for name, values in {
        "purchase_frequency": purchases_per_month(other).to_numpy(),
        "spend": other["total_spend"].to_numpy(),
    }.items():
        expected = np.array(["low", "middle", "high"])[
            np.searchsorted(card.edges_[name], values, side="right")
        ]
        assert scores[f"{name}_band"].tolist() == expected.tolist(), name
    assert (scores["spend_band"] == "high").mean() > 0.5  # not 10% as a refit would give
    refit = TierScorecard.default().fit(other)
    assert refit.edges_["spend"] != card.edges_["spend"]


def test_training_shares_follow_the_quantiles():
    card = TierScorecard.default().fit(_simulated_customers(5_000, seed=3))
    for name in ("spend", "loyalty"):
        shares = card.band_shares_[name]
        assert shares["high"] == pytest.approx(0.1, abs=1e-3)
        assert shares["middle"] == pytest.approx(0.2, abs=1e-3)
    assert sum(card.tier_shares_.values()) == pytest.approx(1.0)
    assert list(card.tier_shares_) == ["VIP", "regular", "prospect"]


def test_fitted_edges_round_trip_through_json():
    train = _simulated_customers(2_000, seed=4)
    card = TierScorecard.default().fit(train)
    document = json.loads(json.dumps(card.to_dict()))
    assert document["format"] == "segml.TierScorecard" and document["format_version"] == 2
    back = TierScorecard.from_dict(document)
    assert back.edges_ == card.edges_
    assert back.tier_shares_ == card.tier_shares_
    other = _simulated_customers(500, seed=5, scale=3.0)
    pd.testing.assert_frame_equal(back.score(other), card.score(other))


def test_old_documents_load_and_foreign_versions_are_refused(config):
    # format_version 1: the bare parameters a CustomerScorer saved before this version.
    old = TierScorecard.from_dict(
        {"criteria": config["criteria"], "tiers": config["tiers"], "currency": "USD"}
    )
    customers = _customers([("a", 48, 365, 12_000.0, 1.0), ("b", 1, 200, 80.0, 0.0)])
    assert old.predict(customers).tolist() == ["VIP", "prospect"]
    assert old.edges_["spend"] == [5_000.0, 10_000.0] and old.edge_quantiles_["spend"] is None
    newer = TierScorecard.practice().fit(customers).to_dict() | {"format_version": 3}
    with pytest.raises(TierConfigError, match="format_version 3; this segml reads version 2"):
        TierScorecard.from_dict(newer)


def test_quantile_table_must_be_fitted_on_data():
    card = TierScorecard.default()
    assert not hasattr(card, "edges_")
    with pytest.raises(SegmentInputError, match=r"quantiles of the training data .* call fit"):
        card.predict(_simulated_customers(10, seed=0))
    with pytest.raises(
        TierConfigError,
        match=r"\['loyalty', 'purchase_frequency', 'spend'\].*"
        r"fit\(customers\)",
    ):
        card.fit()


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        (
            [
                {"label": "high", "lower": {"at_quantile": 0.9}, "points": 5},
                {"label": "low", "upper": 100, "points": 1},
            ],
            r"mixes numeric edges \(criteria\[0\] \(spend\)\.bands\[1\]\.upper\)",
        ),
        (
            [
                {"label": "high", "lower": {"at_quantile": 1.5}, "points": 5},
                {"label": "low", "upper": {"at_quantile": 1.5}, "points": 1},
            ],
            r"bands\[0\]\.lower\.at_quantile must be a number with 0 < q < 1; got 1\.5",
        ),
        (
            [
                {"label": "high", "lower": {"quantile": 0.9}, "points": 5},
                {"label": "low", "upper": {"quantile": 0.9}, "points": 1},
            ],
            r"bands\[0\]\.lower must be a number, null, or \{at_quantile: q\}",
        ),
        (
            [
                {"label": "high", "lower": {"at_quantile": 0.9}, "points": 5},
                {"label": "low", "upper": {"at_quantile": 0.8}, "points": 1},
            ],
            r"values in \[0\.8, 0\.9\) fall in no band",
        ),
    ],
)
def test_quantile_config_errors_name_the_key(bands, message):
    card = TierScorecard(
        criteria=[{"name": "spend", "measure": "total_spend", "bands": bands}],
        tiers=[{"label": "top", "lower": 5}, {"label": "rest", "upper": 5}],
    )
    with pytest.raises(TierConfigError, match=message):
        card.fit(pd.DataFrame({"total_spend": [1.0, 2.0]}))


def test_tier_bands_take_numbers_only():
    card = TierScorecard(
        criteria=[
            {"name": "spend", "measure": "total_spend", "bands": [{"label": "all", "points": 1}]}
        ],
        tiers=[
            {"label": "top", "lower": {"at_quantile": 0.5}},
            {"label": "rest", "upper": {"at_quantile": 0.5}},
        ],
    )
    with pytest.raises(TierConfigError, match="tier bands apply to total points"):
        card.fit()


def test_tied_quantiles_leave_the_band_between_empty():
    # 60% of customers never came back: the 0.3 and 0.5 quantiles are both 0, so the
    # middle band [0, 0) holds nobody and every 0 is graded "high" with 0 <= x.
    rate = np.r_[np.zeros(60), np.linspace(0.1, 1, 40)]
    card = TierScorecard(
        criteria=[
            {
                "name": "loyalty",
                "measure": "repurchase_rate",
                "bands": [
                    {"label": "high", "lower": {"at_quantile": 0.5}, "points": 5},
                    {
                        "label": "middle",
                        "lower": {"at_quantile": 0.3},
                        "upper": {"at_quantile": 0.5},
                        "points": 3,
                    },
                    {"label": "low", "upper": {"at_quantile": 0.3}, "points": 1},
                ],
            }
        ],
        tiers=[{"label": "top", "lower": 5}, {"label": "rest", "upper": 5}],
    )
    with pytest.warns(TierConcentrationWarning, match="100.0% of the 100 training customers"):
        card.fit(pd.DataFrame({"repurchase_rate": rate}))
    assert card.edges_ == {"loyalty": [0.0, 0.0]}
    assert card.band_shares_["loyalty"] == {"high": 1.0, "middle": 0.0, "low": 0.0}


def test_concentration_warning_names_the_criterion_to_recut():
    # Five customers buy 2.5 times a month (middle) but never in another month; the
    # others buy twice a year with loyalty up to 0.7 (low or middle); nobody spends
    # 5,000 (100% low). The best total is 3 + 1 + 1 or 1 + 1 + 3 = 5: all prospects.
    customers = pd.DataFrame(
        {
            "n_orders": [30.0] * 5 + [2.0] * 195,
            "tenure_days": 365.25,
            "total_spend": 50.0,
            "repurchase_rate": [0.0] * 5 + np.linspace(0, 0.7, 195).tolist(),
        }
    )
    with pytest.warns(TierConcentrationWarning) as caught:
        card = TierScorecard.practice().fit(customers)
    message = str(caught[0].message)
    assert "100.0% of the 200 training customers are in tier 'prospect'" in message
    assert "Re-cut criterion 'spend' (total_spend)" in message
    assert "band 'low' (total_spend < 5000 USD)" in message
    assert "at_quantile" in message
    assert card.tier_shares_["prospect"] == 1.0 > MAX_TIER_SHARE


@pytest.fixture(scope="module")
def cdnow_features(cdnow) -> pd.DataFrame:
    return customer_features(cdnow, as_of="1998-06-30")


def test_practice_table_on_cdnow_warns_and_the_cdnow_config_spreads(cdnow_features):
    with pytest.warns(TierConcentrationWarning, match="Re-cut criterion 'spend'"):
        practice = TierScorecard.practice().fit(cdnow_features)
    assert practice.tier_shares_["prospect"] > 0.99  # 99.6% before
    run = yaml.safe_load((CONFIGS / "cdnow.yaml").read_text())["run"]
    path = CONFIGS / run["scorecard_config"]
    assert path == DEFAULT_CONFIG
    with warnings.catch_warnings():
        warnings.simplefilter("error", TierConcentrationWarning)
        card = TierScorecard.from_yaml(path).fit(cdnow_features)
    # All 23,570 customers of the master log, uncleaned (the run cleans 68 away and
    # gets 9.8% / 21.4% / 68.8%).
    shares = {tier: round(share, 3) for tier, share in card.tier_shares_.items()}
    assert shares == {"VIP": 0.098, "regular": 0.215, "prospect": 0.688}
    assert card.edges_["spend"] == pytest.approx(
        np.quantile(cdnow_features["total_spend"], [0.7, 0.9]).tolist()
    )


def test_quantile_edges_are_learnt_within_each_group():
    retail = pd.DataFrame({"total_spend": np.arange(1.0, 11.0), "industry": "retail"})
    tech = pd.DataFrame({"total_spend": np.arange(101.0, 111.0), "industry": "tech"})
    train = pd.concat([retail, tech], ignore_index=True)
    card = TierScorecard(
        **_median_card().get_params() | {"group_column": "industry", "groups": {"retail": {}}}
    ).fit(train)
    assert card.group_edges_ == {"retail": {"spend": [5.5]}}
    assert card.edges_ == {"spend": [105.5]}  # the customers of the default table
    new = pd.DataFrame({"total_spend": [6.0, 6.0], "industry": ["retail", "tech"]})
    assert card.predict(new).tolist() == ["top", "rest"]
    back = TierScorecard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert back.predict(new).tolist() == ["top", "rest"]
    with pytest.raises(
        TierConfigError,
        match=r"groups.retail: no training customer has "
        r"industry == 'retail'",
    ):
        TierScorecard(**card.get_params()).fit(tech)
