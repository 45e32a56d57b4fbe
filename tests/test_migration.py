"""Migration matrix between two scorings, on a hand-made pair."""

from __future__ import annotations

import pandas as pd
import pytest

from segml.scoring import LOST, NEW, MigrationError, migration_matrix

TIERS = ["VIP", "regular", "prospect"]


@pytest.fixture
def pair():
    last_month = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f", "g"],
            "tier": ["VIP", "VIP", "regular", "regular", "regular", "prospect", "prospect"],
        }
    )
    this_month = pd.DataFrame(
        {
            "tier": pd.Categorical(
                ["VIP", "regular", "VIP", "regular", "prospect", "VIP", "regular"], categories=TIERS
            )
        },
        index=pd.Index(["a", "b", "c", "d", "f", "h", "i"], name="customer_id"),
    )
    return last_month, this_month


def test_counts_by_hand(pair):
    # a VIP->VIP, b VIP->regular, c regular->VIP, d regular->regular, e regular->lost,
    # f prospect->prospect, g prospect->lost, h new->VIP, i new->regular
    matrix = migration_matrix(*pair)
    expected = pd.DataFrame(
        [[1, 1, 0, 0], [1, 1, 0, 1], [0, 0, 1, 1], [1, 1, 0, 0]],
        index=pd.Index(TIERS + [NEW], name="previous", dtype=object),
        columns=pd.Index(TIERS + [LOST], name="current", dtype=object),
    )
    pd.testing.assert_frame_equal(matrix, expected)
    assert matrix.to_numpy().sum() == 9  # every customer in either scoring once


def test_row_shares(pair):
    shares = migration_matrix(*pair, normalize="row")
    assert shares.loc["regular"].tolist() == pytest.approx([1 / 3, 1 / 3, 0, 1 / 3])
    assert shares.loc[NEW].tolist() == pytest.approx([0.5, 0.5, 0, 0])
    all_shares = migration_matrix(*pair, normalize="all")
    assert all_shares.to_numpy().sum() == pytest.approx(1.0)


def test_segments_as_series_with_integer_labels():
    before = pd.Series({"a": 0, "b": 1, "c": 1})
    after = pd.Series({"a": 1, "b": 1, "c": 2})
    matrix = migration_matrix(before, after)
    assert list(matrix.index) == [0, 1, 2, NEW]
    assert list(matrix.columns) == [0, 1, 2, LOST]
    assert matrix.loc[1, 2] == 1 and matrix.loc[0, 1] == 1 and matrix.loc[1, 1] == 1


def test_errors_name_the_problem(pair):
    last_month, this_month = pair
    with pytest.raises(MigrationError, match="lacks the column 'segment'"):
        migration_matrix(last_month, this_month, column="segment")
    repeated = pd.concat([this_month, this_month.iloc[:2]])
    with pytest.raises(MigrationError, match="current scoring has 2 repeated customer_id"):
        migration_matrix(last_month, repeated)
    with pytest.raises(MigrationError, match="lacks the label"):
        migration_matrix(last_month, this_month, order=["VIP"])
    with pytest.raises(MigrationError, match="normalize must be"):
        migration_matrix(last_month, this_month, normalize="col")
