"""load_transactions: every kind of bad input has a defined, tested behaviour."""

from __future__ import annotations

import re

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
    odd = tmp_path / "data.json"
    odd.write_text("x")
    with pytest.raises(TransactionsError, match="Cannot tell the format"):
        load_transactions(odd)
    fake = tmp_path / "data.xlsx"
    fake.write_text("x")
    with pytest.raises(TransactionsError, match=r"data.xlsx is not an Excel .xlsx workbook"):
        load_transactions(fake)


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
    clean, report = load_transactions(_raw(amount=["$1,234.50", "$ 20", "(15.00)"]))
    assert clean["amount"].tolist() == [1234.5, 20.0]
    assert report.dropped == {"negative_amount": 1}  # (15.00) is a return, in USD
    assert report.currencies == {"USD": 2}


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


# --- issue 11: amounts, currencies, dates, ids and orders read right, or refused ------


def _log(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "customer_id": [f"c{i}" for i in range(n)],
        "timestamp": ["2024-01-01"] * n,
        "amount": ["1"] * n,
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_european_amounts_are_read_with_the_decimal_comma_they_show(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text(
        "customer_id;timestamp;amount\na;2024-01-01;1.234,50 €\nb;2024-01-02;12,50 €\n"
        "c;2024-01-03;3 €\nd;2024-01-04;1.250 €\n",
        encoding="utf-8",
    )
    clean, report = load_transactions(path)
    # 1.250 alone would be ambiguous; the column's other values settle the comma.
    assert clean["amount"].tolist() == [1234.5, 12.5, 3.0, 1250.0]
    assert report.settings["decimal"] == ","
    assert report.currencies == {"EUR": 4}
    assert report.dropped == {} and report.flagged == {} and report.warnings == []


def test_a_column_with_both_decimal_signs_is_refused_naming_rows_and_the_fix():
    with pytest.raises(TransactionsError) as info:
        load_transactions(_log(amount=["1,234.50", "12,50", "7", "2.5"]))
    message = str(info.value)
    assert (
        "Column 'amount' mixes decimal points (2 row(s), e.g. row 1: '1,234.50'; row 4: '2.5')"
        in (message)
    )
    assert "decimal commas (1 row(s), e.g. row 2: '12,50')" in message
    assert "decimal=',' (--decimal ,) or decimal='.' (--decimal .)" in message


def test_an_explicit_decimal_reads_one_way_and_counts_the_values_that_do_not_fit():
    clean, report = load_transactions(
        _log(amount=["1.234", "12,5", "1,234.50", "1.234.567,8"]), decimal=","
    )
    assert clean["amount"].tolist() == [1234.0, 12.5, 1234567.8]
    assert report.dropped == {"unparseable_amount": 1}
    assert report.examples["unparseable_amount"][0]["amount"] == "1,234.50"
    assert report.settings["decimal"] == ","
    clean, _ = load_transactions(_log(amount=["1,250", "0,5"]), decimal=".")
    assert clean["amount"].tolist() == [1250.0]  # "0,5" has no reading with a point


def test_ambiguous_amounts_are_read_with_a_point_flagged_and_warned():
    clean, report = load_transactions(_log(amount=["1,250", "2.500", "7"]))
    assert clean["amount"].tolist() == [1250.0, 2.5, 7.0]
    assert report.dropped == {} and report.rows_kept == 3
    assert report.flagged == {"ambiguous_amount": 2}
    assert [row["amount"] for row in report.examples["ambiguous_amount"]] == ["1,250", "2.500"]
    (warning,) = report.warnings
    assert "2 amount(s) such as row 1: '1,250'" in warning
    assert "decimal=',' (--decimal ,)" in warning
    assert report.settings["decimal"] == "."
    text = str(report)
    assert "rows kept but flagged:\n    ambiguous_amount: 2" in text
    assert "  warning: column 'amount': 2 amount(s)" in text


def test_numeric_amounts_skip_the_text_rules():
    clean, report = load_transactions(_raw(amount=[1.234, 1250.0, 12.5]))
    assert clean["amount"].tolist() == [1.234, 1250.0, 12.5]
    assert report.settings["decimal"] == "auto" and report.flagged == {}


@pytest.mark.parametrize(
    "text, value, code",
    [
        ("93.88 USD", 93.88, "USD"),
        ("USD 93.88", 93.88, "USD"),
        ("USD93.88", 93.88, "USD"),
        ("93.88USD", 93.88, "USD"),
        ("EUR 10.00", 10.0, "EUR"),
        ("12,50 €", 12.5, "EUR"),
        ("€12,50", 12.5, "EUR"),
        ("¥1,200", 1200.0, "JPY"),
        ("£ 7.5", 7.5, "GBP"),
        ("₹100", 100.0, "INR"),
        ("US$ 3", 3.0, "USD"),
        ("-$5", -5.0, "USD"),
        ("($12.00)", -12.0, "USD"),
        ("12.00- USD", -12.0, "USD"),
    ],
)
def test_currency_codes_and_symbols_before_or_after_the_number(text, value, code):
    clean, report = load_transactions(
        _log(amount=[text, "1"]), returns="net", zero_amounts="keep", drop_duplicates=False
    )
    if value > 0:
        assert clean["amount"].tolist() == [value, 1.0]
    else:  # a return of another customer: no purchase to net it against
        assert report.dropped == {"return_without_purchase": 1}
    assert report.currencies == {code: 1}
    assert report.settings["currency"] == code
    assert (
        report.notes[0]
        == f"1 amount(s) without a currency marker read as {code}, the only currency in the column"
    )


def test_badly_marked_amounts_are_unparseable():
    clean, report = load_transactions(_log(amount=["$5€", "--5", "(5", "USD 5 EUR", "5"]))
    assert clean["amount"].tolist() == [5.0]
    assert report.dropped == {"unparseable_amount": 4}


def test_a_column_mixing_currencies_is_refused_or_one_is_picked():
    raw = _log(amount=["10.00 USD", "EUR 5.00", "7.50 USD", "3.00"])
    with pytest.raises(TransactionsError) as info:
        load_transactions(raw)
    message = str(info.value)
    assert "holds amounts in 2 currencies: USD (2 row(s), e.g. row 1: '10.00 USD'); " in message
    assert "EUR (1 row(s), e.g. row 2: 'EUR 5.00')" in message
    assert "never added together: pick one with currency='USD' (--currency USD)" in message
    clean, report = load_transactions(raw, currency="USD")
    assert clean["amount"].tolist() == [10.0, 7.5]
    # The bare 3.00 could be either: it is not taken to be USD.
    assert report.dropped == {"other_currency": 1, "missing_currency": 1}
    assert report.currencies == {"USD": 2, "EUR": 1}
    assert report.settings["currency"] == "USD"


def test_picking_a_currency_the_column_does_not_hold_drops_everything():
    with pytest.raises(TransactionsError, match=r"No transactions left.*other_currency: 2"):
        load_transactions(_log(amount=["5 €", "7"]), currency="USD")
    clean, report = load_transactions(_log(amount=["5 €", "7"]), currency="€")
    assert clean["amount"].tolist() == [5.0, 7.0] and report.settings["currency"] == "EUR"


def test_a_currency_column_is_never_summed_across_currencies():
    raw = _log(amount=["10", "5", "7", "2 USD"], cur=["USD", "eur", "USD", ""])
    with pytest.raises(TransactionsError, match=r"2 currencies: USD \(3 row\(s\)"):
        load_transactions(raw, currency_column="cur")
    clean, report = load_transactions(raw, currency_column="cur", currency="EUR")
    assert clean["amount"].tolist() == [5.0]
    assert report.dropped == {"other_currency": 3}
    assert report.settings["currency_column"] == "cur"
    conflict = _log(amount=["5 €"], cur=["USD"])
    with pytest.raises(TransactionsError, match=r"Column 'cur' and the currency written"):
        load_transactions(conflict, currency_column="cur")
    with pytest.raises(TransactionsError, match=r"\['nope'\] not found"):
        load_transactions(raw, currency_column="nope")


def test_day_first_dates_are_detected_from_the_values_that_show_it():
    clean, report = load_transactions(_log(timestamp=["05/01/1997", "13/01/1997", "1997-01-07"]))
    # 05/01/1997 beside 13/01/1997 is 5 January, not 1 May; ISO dates are unaffected.
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("1997-01-05"),
        pd.Timestamp("1997-01-13"),
        pd.Timestamp("1997-01-07"),
    ]
    assert report.settings["dayfirst"] is True and report.warnings == []
    clean, report = load_transactions(_log(timestamp=["05/01/1997", "01/13/1997 10:30"]))
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("1997-05-01"),
        pd.Timestamp("1997-01-13 10:30"),
    ]
    assert report.settings["dayfirst"] is False


def test_a_column_mixing_day_orders_is_refused_naming_rows_and_the_fix(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(
        "customer_id,timestamp,amount\na,13/01/1997,1\nb,05/01/1997,1\nc,01/13/1997,1\n"
    )
    with pytest.raises(TransactionsError) as info:
        load_transactions(path)
    message = str(info.value)
    assert "mixes day-first dates (1 row(s), e.g. row 1: '13/01/1997')" in message
    assert "month-first dates (1 row(s), e.g. row 3: '01/13/1997')" in message
    assert "dayfirst=True (--dayfirst) or dayfirst=False (--monthfirst)" in message


def test_a_given_day_order_counts_the_dates_that_contradict_it():
    raw = _log(timestamp=["13/01/1997", "05/01/1997", "01/13/1997", "1997-01-13", "31/02/1997"])
    clean, report = load_transactions(raw, dayfirst=True)
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("1997-01-13"),
        pd.Timestamp("1997-01-05"),
        pd.Timestamp("1997-01-13"),
    ]
    assert report.dropped == {"unparseable_timestamp": 1, "contradicts_dayfirst": 1}
    assert report.examples["contradicts_dayfirst"][0]["timestamp"] == "01/13/1997"
    clean, report = load_transactions(raw, dayfirst=False)
    # 31/02/1997 is no date either way round: unparseable, not a contradiction.
    assert report.dropped == {"unparseable_timestamp": 1, "contradicts_dayfirst": 1}
    assert report.examples["contradicts_dayfirst"][0]["timestamp"] == "13/01/1997"
    assert clean["timestamp"].tolist()[:2] == [
        pd.Timestamp("1997-05-01"),
        pd.Timestamp("1997-01-13"),
    ]


def test_ambiguous_numeric_dates_are_read_month_first_with_a_warning():
    clean, report = load_transactions(_log(timestamp=["05/01/1997", "02/03/97"]))
    assert clean["timestamp"].tolist() == [pd.Timestamp("1997-05-01"), pd.Timestamp("1997-02-03")]
    assert report.settings["dayfirst"] is False
    (warning,) = report.warnings
    assert "2 date(s) such as row 1: '05/01/1997' read month-first" in warning
    assert "dayfirst=True (--dayfirst)" in warning


def test_dates_out_of_pandas_range_are_dropped_one_by_one(tmp_path):
    clean, report = load_transactions(
        _log(timestamp=["2300-01-01", "1600-05-01", "2024-01-02", "01/02/2999"])
    )
    assert clean["timestamp"].tolist() == [pd.Timestamp("2024-01-02")]
    assert report.dropped == {"out_of_range_timestamp": 3}
    assert report.examples["out_of_range_timestamp"][0]["timestamp"] == "2300-01-01"
    _, report = load_transactions(_log(timestamp=np.array([23000101, 20240101])))
    assert report.dropped == {"out_of_range_timestamp": 1}
    path = tmp_path / "far.parquet"
    pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "timestamp": pd.Series(
                [pd.Timestamp("2300-01-01"), pd.Timestamp("2024-01-01")], dtype="datetime64[us]"
            ),
            "amount": [1.0, 2.0],
        }
    ).to_parquet(path)
    clean, report = load_transactions(path)
    assert report.dropped == {"out_of_range_timestamp": 1} and clean["amount"].tolist() == [2.0]


@pytest.mark.parametrize("as_of", [19980630, 19980630.0, np.int64(19980630)])
def test_a_number_as_of_is_refused_not_read_as_1970(as_of):
    with pytest.raises(TransactionsError, match=r"is a number, not a date.*as_of='1998-06-30'"):
        load_transactions(_raw(), as_of=as_of)


def test_ids_written_as_floats_are_one_customer(tmp_path):
    # An export that wrote half the ids as floats: 30 customers, not 60.
    ids = [str(i) for i in range(1, 31)] + [f"{i}.0" for i in range(1, 31)]
    path = tmp_path / "floats.csv"
    pd.DataFrame(
        {"customer_id": ids, "timestamp": ["2024-01-01"] * 30 + ["2024-01-02"] * 30, "amount": "1"}
    ).to_csv(path, index=False)
    clean, _ = load_transactions(path)
    assert clean["customer_id"].nunique() == 30
    clean, _ = load_transactions(
        _log(customer_id=["7", "7.00", "00042.0", "1.5", "1e3"]), drop_duplicates=False
    )
    assert clean["customer_id"].tolist() == ["7", "7", "00042", "1.5", "1e3"]


def test_ids_differing_only_by_leading_zeros_stay_apart_with_a_warning():
    raw = _log(customer_id=["42", "00042", "042", "7", "0007", "00100", "abc"])
    clean, report = load_transactions(raw)
    assert clean["customer_id"].tolist() == ["42", "00042", "042", "7", "0007", "00100", "abc"]
    (warning,) = report.warnings
    assert "4 pair(s) of customer ids differ only by leading zeros (e.g. '42' and '042')" in warning
    _, report = load_transactions(_log(customer_id=["00042", "00007"]))  # fixed width
    assert report.warnings == []


def test_returns_net_against_their_own_order():
    raw = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "a", "b", "b"],
            "order": ["o1", "o2", "o1", "o3", "o3", "o9", "o1"],
            "timestamp": [
                "2024-01-01",
                "2024-01-02",
                "2024-01-03",  # returns part of o1, after o2 was bought
                "2024-01-04",
                "2024-01-05",
                "2024-01-05",  # b returns an order it never bought (o1 is a's)
                "2024-01-06",
            ],
            "amount": [100.0, 50.0, -30.0, 10.0, 20.0, -5.0, -1.0],
        }
    )
    raw = pd.concat(
        [
            raw,
            pd.DataFrame(
                {
                    "customer_id": ["a"],
                    "order": ["o3"],
                    "timestamp": ["2024-01-06"],
                    "amount": [-25.0],
                }
            ),
        ],
        ignore_index=True,
    )
    clean, report = load_transactions(raw, returns="net", order_id="order")
    # o1 100 - 30; o2 untouched; o3's -25 empties its latest purchase (20) and takes 5 of 10.
    assert clean[["order", "amount"]].values.tolist() == [["o1", 70.0], ["o2", 50.0], ["o3", 5.0]]
    assert report.dropped == {
        "return_without_purchase": 2,
        "return_netted": 2,
        "fully_returned": 1,
    }
    assert report.settings["order_id"] == "order"
    # Without the order id the return nets against the latest earlier purchase (o2).
    clean, _ = load_transactions(raw.iloc[:3], returns="net")
    assert clean["amount"].tolist() == [100.0, 20.0]


def test_report_settings_are_the_resolved_json_ready_options_and_show_in_dict_and_text():
    import json

    clean, report = load_transactions(
        _log(
            customer_id=["42", "042"],
            timestamp=["13/01/1997", "14/01/1997"],
            amount=["12,50 €", "1.250 €"],
        ),
        zero_amounts="keep",
    )
    assert report.settings == {
        "customer_id": "customer_id",
        "timestamp": "timestamp",
        "amount": "amount",
        "order_id": None,
        "currency_column": None,
        "timestamp_format": None,
        "timezone": "UTC",
        "returns": "drop",
        "zero_amounts": "keep",
        "drop_duplicates": True,
        "on_invalid": "drop",
        "decimal": ",",
        "currency": "EUR",
        "dayfirst": True,
        "sep": None,
        "encoding": None,
        "sheet_name": None,
    }
    document = report.to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["currencies"] == {"EUR": 2} and document["flagged"] == {}
    assert document["settings"] == report.settings
    assert len(document["warnings"]) == 1
    text = str(report)
    assert "  currencies: EUR (2)" in text
    assert "  warning: column 'customer_id': 1 pair(s)" in text


def test_naive_dates_in_any_format_are_in_the_timezone_already():
    raw = _log(timestamp=["Jan 5 2024", "2024-01-05", "05/01/2024 10:00"])
    clean, report = load_transactions(raw, timezone="Asia/Tokyo", dayfirst=True)
    # Not read as UTC and shifted by Tokyo's 9 hours.
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2024-01-05"),
        pd.Timestamp("2024-01-05"),
        pd.Timestamp("2024-01-05 10:00"),
    ]
    assert report.notes == []
    clean, report = load_transactions(
        _log(timestamp=["Jan 5 2024 10:00 +02:00"]), timezone="Asia/Tokyo"
    )
    assert clean["timestamp"].tolist() == [pd.Timestamp("2024-01-05 17:00")]
    assert report.notes == [
        "timezone-aware timestamps converted to Asia/Tokyo and stored without zone"
    ]


def test_a_purchases_only_log_is_read_without_an_amount():
    # lifetimes' example_transactions.csv: an id and a date per purchase, no amount.
    from lifetimes.datasets import load_transaction_data

    raw = load_transaction_data()
    clean, report = load_transactions(raw, customer_id="id", timestamp="date", amount=None)
    assert list(clean.columns) == ["customer_id", "timestamp"]
    assert report.settings["amount"] is None
    # Replayed by batch scoring as given: a purchases-only model scores with the same call.
    again, _ = load_transactions(raw, **report.settings)
    pd.testing.assert_frame_equal(again, clean)
    # Rows repeating an earlier (id, date) are the only ones dropped.
    assert report.dropped == {"duplicate_row": int(raw.duplicated().sum())}
    assert len(clean) == len(raw.drop_duplicates()) == report.rows_kept
    assert clean["customer_id"].nunique() == raw["id"].nunique()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"currency": "EUR"}, "currency='EUR'"),
        ({"currency_column": "cur"}, "currency_column='cur'"),
        ({"returns": "net"}, "returns='net'"),
    ],
)
def test_options_that_need_an_amount_are_refused_without_one(options, named):
    raw = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"], "cur": ["EUR"]})
    with pytest.raises(TransactionsError, match=re.escape(named) + ".*needs an amount column"):
        load_transactions(raw, amount=None, **options)


def test_an_amount_column_is_not_silently_ignored_when_amount_is_none():
    raw = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"], "amount": [3.0]})
    with pytest.raises(TransactionsError, match="has an 'amount' column: pass amount='amount'"):
        load_transactions(raw, amount=None)


def test_whole_number_dates_in_a_float_column_are_dates_not_nanoseconds():
    # An integer date column with a gap reaches pandas as floats (19970101.0, NaN).
    raw = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "timestamp": [19970101.0, np.nan, 19970305.0],
            "amount": [1.0, 2.0, 3.0],
        }
    )
    clean, report = load_transactions(raw)
    assert clean["timestamp"].tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-03-05")]
    assert report.dropped == {"missing_timestamp": 1}


def test_the_duplicate_check_equals_pandas_duplicated_on_every_kind_of_column():
    """_duplicated finds candidates by a row hash, then asks pandas: the answer must be
    exactly ``DataFrame.duplicated`` where pandas calls values equal and the bits differ
    (-0.0 and 0.0, None and NaN, NaN and NaT), for ids, text, small ints, bools,
    nullable floats, float32 and zoned timestamps."""
    from segml.transactions import _duplicated

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 300))
        ids = rng.choice(np.array(["a", "b", None, "c"], dtype=object), n)
        amount = rng.choice(np.array([0.0, -0.0, np.nan, 1.5, 2.0]), n)
        stamps = pd.to_datetime(rng.choice(np.array(["2020-01-01", "2020-01-02", None]), n))
        text = rng.choice(np.array([None, np.nan, "x", "y"], dtype=object), n)
        small = rng.integers(0, 3, n).astype("int8")
        frames = [
            pd.DataFrame(
                {"customer_id": pd.array(ids, dtype="str"), "timestamp": stamps, "amount": amount}
            ),
            pd.DataFrame(
                {"customer_id": ids, "amount": amount, "note": text, "n": small, "b": small > 0}
            ),
            pd.DataFrame({"customer_id": ids, "amount": pd.array(amount, dtype="Float64")}),
            pd.DataFrame(
                {"timestamp": stamps.tz_localize("UTC"), "amount": amount.astype("float32")}
            ),
        ]
        for frame in frames:
            frame.index = rng.permutation(n) + 7
            expected = frame.duplicated(keep="first")
            assert expected.any() or n < 30  # the check is not vacuous
            pd.testing.assert_series_equal(_duplicated(frame), expected)
