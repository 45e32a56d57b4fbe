"""Scoring a Parquet log read in pieces of whole customers equals reading it whole.

The model is real (a scorer fitted on a simulated log and exported as the MLflow
folder `segml score` reads); the log is messy on purpose, with what only a whole
customer can clean: exact duplicate rows and returns read in different Arrow
batches, ids written two ways (" 42" and "42"), missing ids, zero amounts and rows
after as_of. Batches of 97 rows and pieces of 40-60 customers make many customers
likely to straddle a batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from segml.batch import ScoreError, _pieces, score_transactions
from segml.datasets import simulate_transactions
from segml.transactions import TransactionsError

AS_OF = "2021-09-30"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from segml.models import CLVModel, SegmentModel
    from segml.scoring import CustomerScorer, customer_features
    from segml.tracking import cast_to_signature, export_model

    log = simulate_transactions(1_500, seed=3)
    scorer = CustomerScorer(
        clv=CLVModel(time_unit="W"), segments=SegmentModel(n_segments=3, random_state=0)
    ).fit(log, as_of="2021-06-30")
    example = customer_features(log.head(30), as_of="2021-06-30", windows_days=(90,))
    path = tmp_path_factory.mktemp("pieces") / "model"
    export_model(scorer, path, input_example=cast_to_signature(example, scorer.feature_columns_))
    return path


@pytest.fixture(scope="module")
def messy_log(tmp_path_factory) -> tuple:
    """A log whose cleaning needs whole customers, shuffled, with an extra column."""
    log = simulate_transactions(600, seed=11).reset_index(drop=True)
    rng = np.random.default_rng(0)
    log["channel"] = rng.choice(["web", "shop"], len(log))
    twins = log.sample(40, random_state=1)  # exact duplicates: dropped wherever they are
    returns = log.sample(30, random_state=2).assign(amount=lambda f: -f["amount"] / 2)
    zero = log.sample(10, random_state=3).assign(amount=0.0)
    padded = log.sample(25, random_state=4)
    padded = padded.assign(customer_id=" " + padded["customer_id"] + " ")  # same customers
    missing = log.sample(5, random_state=5).assign(customer_id=None)
    messy = pd.concat([log, twins, returns, zero, padded, missing], ignore_index=True)
    messy = messy.sample(frac=1.0, random_state=6).reset_index(drop=True)
    path = tmp_path_factory.mktemp("logs") / "log.parquet"
    messy.to_parquet(path, row_group_size=300)
    return path, messy


@pytest.fixture
def tiny_batches(monkeypatch):
    monkeypatch.setattr(_pieces, "BATCH_ROWS", 97)


@pytest.mark.parametrize("returns", ["net", "drop"])
def test_pieces_score_exactly_as_the_whole_log(model_dir, messy_log, tiny_batches, returns):
    path, messy = messy_log
    options = {"returns": returns}
    whole = score_transactions(model_dir, path, as_of=AS_OF, columns=options, read_rows=10**9)
    seen = []
    pieces = score_transactions(
        model_dir,
        path,
        as_of=AS_OF,
        columns=options,
        read_rows=0,
        chunk_customers=40,
        on_progress=lambda done, total: seen.append((done, total)),
    )
    pd.testing.assert_frame_equal(pieces.scores, whole.scores)
    assert pieces.scores["customer_id"].is_unique
    assert pieces.n_customers == whole.n_customers
    assert pieces.n_transactions == whole.n_transactions
    # The report counts what cleaning the whole log counts.
    a, b = pieces.report, whole.report
    assert (a.rows_read, a.rows_kept, a.dropped) == (b.rows_read, b.rows_kept, b.dropped)
    assert a.rows_read == len(messy) and a.source == str(path)
    assert b.dropped["duplicate_row"] >= 40 and b.dropped["missing_customer_id"] == 5
    assert seen[0] == (0, len(pieces.scores)) and seen[-1][0] == len(pieces.scores)


def test_pieces_write_the_same_file(model_dir, messy_log, tiny_batches, tmp_path):
    path, _ = messy_log
    written = {}
    for name, read_rows in (("whole", 10**9), ("pieces", 0)):
        out = tmp_path / f"{name}.parquet"
        score_transactions(
            model_dir, path, as_of=AS_OF, out=out, read_rows=read_rows, chunk_customers=60
        )
        written[name] = pq.read_table(out)
    assert written["pieces"].equals(written["whole"])
    assert written["pieces"].schema.equals(written["whole"].schema)


def test_a_customer_is_in_one_piece_whatever_the_batches(messy_log, tiny_batches):
    path, messy = messy_log
    reader = _pieces.piece_reader(path, {}, min_rows=0)
    distinct = reader.distinct_ids()
    assert distinct.is_monotonic_increasing and distinct.is_unique
    pieces = list(reader.pieces(distinct, 4))
    ids = [set(p["customer_id"].dropna().str.strip()) for p in pieces]
    assert sum(map(len, ids)) == len(set().union(*ids)) == len(distinct)
    assert sum(map(len, pieces)) == len(messy)
    # In id order: each piece's ids come after the previous piece's.
    assert all(max(x) < min(y) for x, y in zip(ids, ids[1:], strict=False))


def test_what_cannot_be_cleaned_piece_by_piece_is_read_whole(tmp_path, messy_log):
    path, messy = messy_log
    assert _pieces.piece_reader(path, {"currency_column": "channel"}, min_rows=0) is None
    text = tmp_path / "text_amounts.parquet"
    messy.assign(amount=messy["amount"].map("{:.2f}".format)).to_parquet(text)
    assert _pieces.piece_reader(text, {}, min_rows=0) is None  # decimal mark: whole column
    csv = tmp_path / "log.csv"
    messy.head(5).to_csv(csv, index=False)
    assert _pieces.piece_reader(csv, {}, min_rows=0) is None


def test_as_of_before_the_log_is_the_same_error(model_dir, messy_log, tiny_batches, tmp_path):
    path, _ = messy_log
    out = tmp_path / "scores.parquet"
    out.write_text("last night")
    for read_rows in (10**9, 0):
        with pytest.raises(ScoreError, match=r"as_of 2019-01-01 is before the first transaction"):
            score_transactions(model_dir, path, as_of="2019-01-01", out=out, read_rows=read_rows)
        assert out.read_text() == "last night"


def test_a_log_with_nothing_kept_is_the_loaders_error(model_dir, tmp_path, tiny_batches):
    path = tmp_path / "zeros.parquet"
    simulate_transactions(50, seed=1).assign(amount=0.0).to_parquet(path)
    with pytest.raises(TransactionsError, match=r"No transactions left .* zero_amount") as error:
        score_transactions(model_dir, path, as_of=AS_OF, read_rows=0, chunk_customers=3)
    assert error.value.report.rows_read == error.value.report.dropped["zero_amount"]


def test_64_bit_ids_with_missing_ones_are_read_exactly_in_pieces_and_whole(
    model_dir, tiny_batches, tmp_path
):
    # Integer ids above 2**53 in a column with nulls (as Spark or pyarrow write them):
    # pandas would read them as float64 and round 2**53 + 1 to 2**53, merging two
    # customers, or split one customer's rows between two pieces.
    import pyarrow as pa

    log = simulate_transactions(300, seed=11).reset_index(drop=True)
    ids = [
        None if row % 200 == 0 else 2**53 + int(value)
        for row, value in enumerate(log["customer_id"])
    ]
    path = tmp_path / "big_ids.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": pa.array(ids, pa.int64()),
                "timestamp": pa.array(log["timestamp"]),
                "amount": pa.array(log["amount"]),
            }
        ),
        path,
    )
    expected = {str(i) for i in ids if i is not None}
    whole = score_transactions(model_dir, path, as_of=AS_OF, read_rows=10**9)
    pieces = score_transactions(model_dir, path, as_of=AS_OF, read_rows=0, chunk_customers=40)
    known = {str(2**53 + int(v)) for v in log.loc[log["timestamp"] <= AS_OF, "customer_id"]}
    assert set(whole.scores["customer_id"]) == known & expected
    assert whole.scores["customer_id"].is_unique
    pd.testing.assert_frame_equal(pieces.scores, whole.scores)
    missing = sum(i is None for i in ids)
    assert pieces.report.dropped["missing_customer_id"] == missing
    assert whole.report.dropped["missing_customer_id"] == missing
