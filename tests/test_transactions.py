"""load_transactions: every kind of bad input has a defined, tested behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segml import DataQualityReport, TransactionsError, load_transactions


def _raw(**columns) -> pd.DataFrame:
    base = {
        "customer_id": ["a", "b", "c"],
        "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"],
        "amount": [10.0, 20.0, 30.0],
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_clean_input_passes_through_with_canonical_types():
    clean, report = load_transactions(_raw(channel=["web", "shop", "web"]))
    assert list(clean.columns) == ["customer_id", "timestamp", "amount", "channel"]
    assert clean["customer_id"].dtype == "str"
    assert clean["timestamp"].dtype == "datetime64[ns]"
    assert clean["amount"].dtype == np.float64
    assert (report.rows_read, report.rows_kept, report.dropped) == (3, 3, {})


def test_column_mapping_keeps_extra_columns(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "client,date,value,quantity,industry\n"
        "00042,2024-01-01,12.50,2,retail\n"
        "00042,2024-01-05,7.25,1,retail\n"
        "7,2024-01-03,3,1,telecom\n"
    )
    clean, report = load_transactions(path, customer_id="client", timestamp="date", amount="value")
    assert clean["customer_id"].tolist() == ["00042", "00042", "7"]  # leading zeros kept
    assert clean["industry"].tolist() == ["retail", "retail", "telecom"]
    assert report.source == str(path)


def test_parquet_and_numeric_ids(tmp_path):
    path = tmp_path / "orders.parquet"
    pd.DataFrame(
        {
            "id": [42.0, 7.0, np.nan],
            "ts": pd.to_datetime(["2024-01-01"] * 3),
            "amt": [1.0, 2.0, 3.0],
        }
    ).to_parquet(path)
    clean, report = load_transactions(path, customer_id="id", timestamp="ts", amount="amt")
    assert clean["customer_id"].tolist() == ["42", "7"]  # 42.0 read as float is id "42"
    assert report.dropped == {"missing_customer_id": 1}


def test_mixed_type_ids_are_strings():
    clean, _ = load_transactions(_raw(customer_id=[42, "00042", " 42 "]))
    assert clean["customer_id"].tolist() == ["42", "00042", "42"]


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(TransactionsError, match="is empty"):
        load_transactions(path)


def test_header_only_file_has_zero_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("customer_id,timestamp,amount\n")
    with pytest.raises(TransactionsError, match="has 0 rows"):
        load_transactions(path)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(TransactionsError, match="No file at"):
        load_transactions(tmp_path / "nope.csv")
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(TransactionsError, match="Cannot tell the format"):
        load_transactions(odd)


def test_missing_required_column_lists_columns_found():
    raw = pd.DataFrame({"client": ["a"], "timestamp": ["2024-01-01"], "amount": [1.0]})
    with pytest.raises(TransactionsError) as info:
        load_transactions(raw)
    message = str(info.value)
    assert "['customer_id'] not found" in message
    assert "['client', 'timestamp', 'amount']" in message
    assert "customer_id='client'" in message


def test_unparseable_timestamps_are_counted_with_examples():
    raw = _raw(timestamp=["2024-01-01", "yesterday", "2024-13-45"])
    clean, report = load_transactions(raw)
    assert clean["customer_id"].tolist() == ["a"]
    assert report.dropped == {"unparseable_timestamp": 2}
    assert [row["timestamp"] for row in report.examples["unparseable_timestamp"]] == [
        "yesterday",
        "2024-13-45",
    ]


def test_unparseable_timestamps_can_raise():
    raw = _raw(timestamp=["2024-01-01", "yesterday", "2024-13-45"])
    with pytest.raises(
        TransactionsError, match=r"'timestamp': 2 value\(s\) are not dates.*timestamp_format"
    ):
        load_transactions(raw, on_invalid="raise")


def test_explicit_timestamp_format_and_integer_dates():
    clean, _ = load_transactions(
        _raw(timestamp=["31/01/2024", "01/02/2024", "15/02/2024"]), timestamp_format="%d/%m/%Y"
    )
    assert clean["timestamp"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-31",
        "2024-02-01",
        "2024-02-15",
    ]
    clean, _ = load_transactions(_raw(timestamp=[19970101, 19970102, 19970103]))
    assert clean["timestamp"].iloc[0] == pd.Timestamp("1997-01-01")


def test_timezone_aware_timestamps_are_converted_to_utc_and_made_naive():
    raw = _raw(
        timestamp=["2024-01-01T23:30:00+02:00", "2024-01-02T01:00:00-05:00", "2024-01-03T00:00:00Z"]
    )
    clean, report = load_transactions(raw)
    assert clean["timestamp"].dt.tz is None
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01 21:30"),
        pd.Timestamp("2024-01-02 06:00"),
        pd.Timestamp("2024-01-03 00:00"),
    ]
    assert any("converted to UTC" in note for note in report.notes)
    aware = pd.DataFrame(
        {
            "customer_id": ["a"],
            "timestamp": pd.to_datetime(["2024-06-01 12:00"]).tz_localize("Asia/Tokyo"),
            "amount": [1.0],
        }
    )
    clean, _ = load_transactions(aware, timezone="Europe/Paris")
    assert clean["timestamp"].iloc[0] == pd.Timestamp("2024-06-01 05:00")


def test_dates_after_as_of_are_dropped():
    clean, report = load_transactions(_raw(), as_of="2024-01-02")
    assert clean["customer_id"].tolist() == ["a", "b"]
    assert report.dropped == {"after_as_of": 1}


@pytest.mark.parametrize(
    ("amounts", "reason"),
    [
        (["12", "abc", "3"], "unparseable_amount"),
        ([12.0, np.nan, 3.0], "missing_amount"),
        ([12.0, np.inf, 3.0], "infinite_amount"),
        ([12.0, 0.0, 3.0], "zero_amount"),
        ([12.0, -5.0, 3.0], "negative_amount"),
    ],
)
def test_bad_amounts_are_dropped_by_reason(amounts, reason):
    clean, report = load_transactions(_raw(amount=amounts))
    assert clean["customer_id"].tolist() == ["a", "c"]
    assert report.dropped == {reason: 1}
    assert report.examples[reason][0]["customer_id"] == "b"


def test_amounts_written_as_text_with_currency():
    clean, _ = load_transactions(_raw(amount=["$1,234.50", "€ 20", "(15.00)"]), returns="drop")
    assert clean["amount"].tolist() == [1234.5, 20.0]


def test_zero_amounts_can_be_kept():
    clean, report = load_transactions(_raw(amount=[12.0, 0.0, 3.0]), zero_amounts="keep")
    assert clean["amount"].tolist() == [12.0, 0.0, 3.0] and report.dropped == {}


def test_unparseable_amounts_can_raise():
    with pytest.raises(
        TransactionsError, match=r"'amount': 1 value\(s\) are not numbers.*\['abc'\]"
    ):
        load_transactions(_raw(amount=["12", "abc", "3"]), on_invalid="raise")


def test_returns_net_against_the_latest_earlier_purchase():
    raw = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c"],
            "timestamp": [
                "2024-01-01",
                "2024-01-05",
                "2024-01-06",
                "2024-01-02",
                "2024-01-03",
                "2024-01-01",
            ],
            "amount": [100.0, 50.0, -20.0, 30.0, -30.0, -5.0],
        }
    )
    clean, report = load_transactions(raw, returns="net")
    assert clean[["customer_id", "amount"]].values.tolist() == [["a", 100.0], ["a", 30.0]]
    assert report.dropped == {
        "return_without_purchase": 1,
        "return_netted": 2,
        "fully_returned": 1,
    }


def test_exact_duplicates_are_dropped_and_counted():
    raw = _raw(customer_id=["a", "a", "b"], timestamp=["2024-01-01"] * 3, amount=[5.0, 5.0, 5.0])
    clean, report = load_transactions(raw)
    assert len(clean) == 2 and report.dropped == {"duplicate_row": 1}
    clean, report = load_transactions(raw, drop_duplicates=False)
    assert len(clean) == 3 and report.dropped == {}


def test_missing_customer_ids():
    clean, report = load_transactions(_raw(customer_id=["a", None, "  "]))
    assert clean["customer_id"].tolist() == ["a"]
    assert report.dropped == {"missing_customer_id": 2}


@pytest.mark.parametrize("dtype", ["str", object, "string"])
def test_text_ids_are_stripped_and_blank_ones_are_missing_in_every_text_dtype(dtype):
    ids = pd.Series([" a", "a ", "\tb", "", "   ", None, "c"], dtype=dtype)
    raw = pd.DataFrame(
        {
            "customer_id": ids,
            "timestamp": pd.date_range("2024-01-01", periods=7).astype(str),
            "amount": np.arange(1.0, 8.0),
        }
    )
    clean, report = load_transactions(raw)
    assert clean["customer_id"].tolist() == ["a", "a", "b", "c"]
    assert report.dropped == {"missing_customer_id": 3}


def test_blank_timestamps_and_amounts_in_text_columns_are_missing():
    raw = _raw(timestamp=["2024-01-01", " ", "2024-01-03"], amount=["10", "20", "  "])
    clean, report = load_transactions(raw.astype({"timestamp": "str", "amount": "str"}))
    assert clean["customer_id"].tolist() == ["a"]
    assert report.dropped == {"missing_timestamp": 1, "missing_amount": 1}


def test_nothing_left_raises_with_the_report_attached():
    with pytest.raises(
        TransactionsError, match=r"No transactions left.*negative_amount: 3"
    ) as info:
        load_transactions(_raw(amount=[-1.0, -2.0, -3.0]))
    assert isinstance(info.value.report, DataQualityReport)
    assert info.value.report.rows_read == 3 and info.value.report.rows_kept == 0


def test_input_is_never_mutated():
    raw = _raw(customer_id=[1, 2, 2], amount=["1", "x", "3"])
    before = raw.copy()
    load_transactions(raw)
    pd.testing.assert_frame_equal(raw, before)


def test_report_text_and_dict():
    _, report = load_transactions(_raw(amount=[12.0, -5.0, 3.0]))
    text = str(report)
    assert "rows read: 3" in text and "negative_amount: 1" in text and "amount=-5.0" in text
    assert report.to_dict()["dropped"] == {"negative_amount": 1}
    assert report.to_dict()["examples"]["negative_amount"][0]["amount"] == "-5.0"


def test_bad_options_are_named():
    with pytest.raises(TransactionsError, match="returns must be 'drop' or 'net'"):
        load_transactions(_raw(), returns="keep")


def test_cdnow_round_trip_through_csv(tmp_path, cdnow_sample):
    path = tmp_path / "cdnow.csv"
    cdnow_sample.to_csv(path, index=False)
    clean, report = load_transactions(path)
    assert report.rows_read == 6919
    zero = int((cdnow_sample["amount"] == 0).sum())
    duplicated = int(cdnow_sample[cdnow_sample["amount"] != 0].duplicated().sum())
    assert report.dropped == {"zero_amount": zero, "duplicate_row": duplicated}
    assert len(clean) == 6919 - zero - duplicated


def test_a_return_at_the_same_moment_as_its_purchase_is_netted_whatever_the_row_order():
    raw = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "timestamp": ["2024-01-01 10:00", "2024-01-01 10:00", "2024-01-02 09:00"],
            "amount": [-40.0, 100.0, 5.0],  # the return comes first in the file
        }
    )
    clean, report = load_transactions(raw, returns="net")
    assert clean["amount"].tolist() == [60.0, 5.0]
    assert report.dropped == {"return_netted": 1}


def test_returns_larger_than_their_purchase_are_reported():
    raw = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "timestamp": ["2024-01-01", "2024-01-03", "2024-01-04"],
            "amount": [50.0, 30.0, -45.0],
        }
    )
    clean, report = load_transactions(raw, returns="net")
    assert clean["amount"].tolist() == [50.0]
    assert report.dropped == {"return_netted": 1, "fully_returned": 1}
    assert any("exceeded their purchases by 15.00" in note for note in report.notes)
