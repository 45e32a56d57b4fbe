"""RFMSegments: quintile scores with ties kept together, the named grid, config errors."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segml import rfm_summary
from segml.models._scorecard_bands import TierConfigError
from segml.models.rfm_segments import DEFAULT_RFM_SEGMENTS, RFMSegments, rfm_edges

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "rfm_segments.yaml"


def _table():
    # R: days 0..9 (0 is best); F: orders 10..1; M: spend 0..9
    return pd.DataFrame(
        {
            "days_since_last_purchase": np.arange(10),
            "n_orders": np.arange(10, 0, -1),
            "total_spend": np.arange(10, dtype=float),
        },
        index=pd.Index([f"c{i}" for i in range(10)], name="customer_id"),
    )


def test_quintile_scores_by_hand():
    scores = RFMSegments().fit(_table()).predict(_table())
    assert scores["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scores["f_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scores["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores["rfm_score"].tolist()[:3] == ["551", "551", "442"]
    assert scores["rfm_segment"].tolist() == [
        "champions",
        "champions",
        "loyal",
        "loyal",
        "need attention",
        "need attention",
        "hibernating",
        "hibernating",
        "hibernating",
        "hibernating",
    ]


def test_ties_share_the_lowest_score():
    # 6 of 10 customers have one order: all F = 1; two orders has 60% below it: F = 4.
    orders = [1, 1, 1, 1, 1, 1, 2, 2, 3, 9]
    assert rfm_edges(orders) == [2.0, 2.0, 2.0, 3.0]
    table = _table().assign(n_orders=orders)
    scores = RFMSegments().fit(table).predict(table)
    assert scores["f_score"].tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_scores_are_order_invariant(cdnow_sample):
    rfm = rfm_summary(cdnow_sample, as_of="1998-06-30")
    scores = RFMSegments().fit(rfm).predict(rfm)
    shuffled = rfm.sample(frac=1.0, random_state=2)
    again = RFMSegments().fit(shuffled).predict(shuffled).reindex(rfm.index)
    pd.testing.assert_frame_equal(scores, again)
    # With heavy ties, quintiles are uneven but each score is a contiguous value range.
    for column, score in (("n_orders", "f_score"), ("total_spend", "m_score")):
        ranges = rfm[column].groupby(scores[score]).agg(["min", "max"])
        assert (ranges["max"].iloc[:-1].to_numpy() < ranges["min"].iloc[1:].to_numpy()).all()


def test_new_customers_scored_against_fit_edges():
    model = RFMSegments().fit(_table())
    new = pd.DataFrame(
        {"days_since_last_purchase": [0, 100], "n_orders": [50, 1], "total_spend": [1000.0, 0.0]}
    )
    assert model.predict(new)["rfm_segment"].tolist() == ["champions", "hibernating"]


def test_scores_within_groups():
    table = pd.concat([_table(), _table().assign(total_spend=lambda t: t.total_spend * 100)])
    table.index = [f"c{i}" for i in range(20)]
    table["industry"] = ["retail"] * 10 + ["tech"] * 10
    scores = RFMSegments(group_column="industry").fit(table).predict(table)
    # Within its industry every customer gets the same M score as in the single table.
    assert scores["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5] * 2


def test_config_file_is_the_default_table():
    model = RFMSegments.from_yaml(CONFIG)
    segments = [{k: v for k, v in s.items() if k != "description"} for s in model.segments]
    assert segments == [dict(s) for s in DEFAULT_RFM_SEGMENTS]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop(0), r"no segment covers the \(R, F\) cell\(s\) \[\(5, 4\), \(5, 5\)\]"),
        (lambda s: s[1].update(r=[3, 5]), r"segments\[1\] \(loyal\) overlaps \['champions'\]"),
        (
            lambda s: s[0].update(r=[5, 6]),
            r"segments\[0\] \(champions\)\.r must be \[lowest, highest\]",
        ),
        (
            lambda s: s[0].update(colour="gold"),
            r"segments\[0\] has unknown field\(s\) \['colour'\]",
        ),
    ],
)
def test_config_errors(edit, message):
    segments = [dict(s) for s in copy.deepcopy(DEFAULT_RFM_SEGMENTS)]
    edit(segments)
    with pytest.raises(TierConfigError, match=message):
        RFMSegments(segments=segments).fit(_table())
