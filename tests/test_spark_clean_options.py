"""The Spark cleaner decides decimal signs, day/month order and currency per column as the loader.

Small hand-made files, one local Spark session (shared with ``test_spark.py`` when
both run). Each file is cleaned by :func:`segml.load_transactions` and by
:func:`segml.spark.clean_transactions`; rows, counts, warnings and the resolved
settings must be the same.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("pyspark", reason='the Spark path needs the extra: pip install -e ".[spark]"')


import segml  # noqa: E402
import segml.spark as ss  # noqa: E402
from tests.test_spark import assert_cleaned_like_the_loader  # noqa: E402

NAMES = dict(customer_id="cust", timestamp="date", amount="value")


def _both(spark, path: Path, sep: str = ",", **options):
    expected, report = segml.load_transactions(path, **NAMES, **options)
    raw = spark.read.csv(str(path), header=True, escape='"', sep=sep)
    clean, spark_report = ss.clean_transactions(raw, **NAMES, **options, source=str(path))
    assert_cleaned_like_the_loader(clean, spark_report, expected, report)
    assert spark_report.currencies == report.currencies
    assert spark_report.flagged == report.flagged
    assert spark_report.warnings == report.warnings
    for key in ("decimal", "dayfirst", "currency"):
        assert spark_report.settings[key] == report.settings[key], key
    return expected, report


def test_european_amounts_and_day_first_dates_are_read_as_the_loader(spark, tmp_path):
    path = tmp_path / "eu.csv"
    pd.DataFrame(
        {
            "cust": ["a", "a", "b", "c", "d"],
            "date": ["13/01/1997", "05/02/1997", "14/01/1997", "2300-01-01", "02/03/1997"],
            "value": ["1.234,50 €", "12,50 €", "3", "1.250", "7 €"],
        }
    ).to_csv(path, index=False, sep=";")
    clean, report = _both(spark, path, sep=";")
    # Read a second time on Spark: the batches first read a point and month-first.
    assert clean["amount"].tolist() == [1234.5, 12.5, 3.0, 7.0]
    assert clean["timestamp"].dt.strftime("%Y-%m-%d").tolist() == [
        "1997-01-13",
        "1997-02-05",
        "1997-01-14",
        "1997-03-02",
    ]
    assert report.dropped == {"out_of_range_timestamp": 1}
    assert (report.settings["decimal"], report.settings["dayfirst"]) == (",", True)
    assert report.currencies == {"EUR": 3}
    _, report = _both(spark, path, sep=";", dayfirst=False)
    assert report.dropped == {"contradicts_dayfirst": 2, "out_of_range_timestamp": 1}


def test_ambiguous_values_are_flagged_and_warned_as_the_loader(spark, tmp_path):
    path = tmp_path / "ambiguous.csv"
    pd.DataFrame(
        {
            "cust": ["a", "b", "c"],
            "date": ["05/01/1997", "2024-01-01", "06/01/1997"],
            "value": ["1,250", "12", "3"],
        }
    ).to_csv(path, index=False)
    clean, report = _both(spark, path)
    assert clean["amount"].tolist() == [1250.0, 12.0, 3.0]
    assert report.flagged == {"ambiguous_amount": 1} and len(report.warnings) == 2


def test_mixed_columns_and_pandas_only_options_are_refused(spark, tmp_path):
    path = tmp_path / "mixed.csv"
    pd.DataFrame(
        {
            "cust": ["a", "b", "c"],
            "date": ["13/01/1997", "01/13/1997", "2024-01-01"],
            "value": ["5 USD", "1", "3 EUR"],
        }
    ).to_csv(path, index=False)
    raw = spark.read.csv(str(path), header=True)
    with pytest.raises(
        segml.TransactionsError,
        match=r"mixes day-first dates \(1 row\(s\), e.g. row 1: '13/01/1997'\) and month-first "
        r"dates \(1 row\(s\), e.g. row 2: '01/13/1997'\)",
    ):
        ss.clean_transactions(raw, **NAMES)
    with pytest.raises(
        segml.TransactionsError,
        match=r"holds amounts in 2 currencies: EUR \(1 row\(s\), e.g. row 3: '3 EUR'\); "
        r"USD \(1 row\(s\), e.g. row 1: '5 USD'\)",
    ):
        ss.clean_transactions(raw, **NAMES, dayfirst=True)
    for option, flag in (("currency", "--currency"), ("order_id", "--order-id")):
        with pytest.raises(
            segml.TransactionsError,
            match=rf"does not implement {option}= \({flag}\); clean this log with the pandas",
        ):
            ss.clean_transactions(raw, **NAMES, **{option: "x"})


# --- reading: Spark takes its reading decisions from segml.io -------------------------


def _read_both(spark, path: Path, **read):
    """The loader's result vs Spark's reading (score_file's) then cleaning."""
    from segml.spark._score import _add_read_info, _read_raw

    expected, report = segml.load_transactions(path, **NAMES, **read)
    raw, info = _read_raw(spark, path, **read)
    clean, spark_report = ss.clean_transactions(raw, **NAMES, source=str(path))
    _add_read_info(spark_report, info)
    assert_cleaned_like_the_loader(clean, spark_report, expected, report)
    assert spark_report.warnings == report.warnings
    for key in ("sep", "encoding", "sheet_name"):
        assert spark_report.settings[key] == report.settings[key], key
    return expected, report


LOG = pd.DataFrame(
    {
        "cust": ["0042", "Jürgen", "Zoë", "0042"],
        "date": ["1997-01-13", "1997-02-05", "1997-01-14", "1997-03-02"],
        "value": ["12.50", "3", "1250.75", "7"],
    }
)


def test_a_semicolon_file_with_a_byte_order_mark_is_read_as_the_loader(spark, tmp_path):
    path = tmp_path / "orders.csv"
    LOG.to_csv(path, index=False, sep=";", encoding="utf-8-sig")
    clean, report = _read_both(spark, path)
    assert (report.settings["sep"], report.settings["encoding"]) == (";", "utf-8")
    assert clean["customer_id"].tolist() == ["0042", "Jürgen", "Zoë", "0042"]
    assert clean["amount"].tolist() == [12.5, 3.0, 1250.75, 7.0]
    assert report.warnings == []
    rows = ss.read_transactions(spark, path, **NAMES).collect()
    assert [(r.customer_id, r.amount) for r in rows] == list(
        zip(clean.customer_id, clean.amount, strict=True)
    )


def test_a_windows_1252_file_is_read_as_the_loader_with_its_warning(spark, tmp_path):
    path = tmp_path / "orders.csv"
    # "€" and "Œ" are bytes 0x80 and 0x8C in cp1252, control characters in Latin-1.
    log = LOG.assign(cust=LOG["cust"].replace({"0042": "€Œ"}))
    log.to_csv(path, index=False, encoding="cp1252")
    clean, report = _read_both(spark, path)
    assert clean["customer_id"].tolist() == ["€Œ", "Jürgen", "Zoë", "€Œ"]
    assert report.settings["encoding"] == "cp1252"
    assert report.warnings == [
        "orders.csv is not valid UTF-8; it was read as Windows-1252 (cp1252). If its text "
        "looks wrong, pass the right encoding with encoding= (--encoding), e.g. "
        "encoding='latin-1'."
    ]
    # Given, the encoding is no warning; Python's name reaches Spark as Java's.
    _, report = _read_both(spark, path, encoding="latin-1")
    assert (report.settings["encoding"], report.warnings) == ("latin-1", [])
    # An encoding Spark's reader does not take is read on the driver (0x8C is "Ś").
    clean, report = _read_both(spark, path, encoding="cp1250")
    assert clean["customer_id"].tolist() == ["€Ś", "Jürgen", "Zoë", "€Ś"]


def test_a_non_utf8_byte_after_the_sniffed_head_is_not_read_as_utf8(spark, tmp_path):
    """pandas falls back to cp1252 mid-file; Spark checks the whole file first."""
    path = tmp_path / "long.csv"
    filler = pd.DataFrame({"cust": ["a"] * 5000, "date": "1997-01-01", "value": "1"})
    pd.concat([filler, LOG]).to_csv(path, index=False, encoding="cp1252")
    assert path.stat().st_size > 64 * 1024
    clean, report = _read_both(spark, path)
    assert report.settings["encoding"] == "cp1252" and len(report.warnings) == 1
    assert {"Jürgen", "Zoë"} <= set(clean["customer_id"])


def test_a_text_file_separated_by_runs_of_spaces_is_read_on_the_driver(spark, tmp_path):
    path = tmp_path / "cdnow_like.txt"
    lines = ["cust        date   value"] + [
        f"{c:>6}  {d}  {v:>8}" for c, d, v in LOG.itertuples(index=False) if c.isascii()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    clean, report = _read_both(spark, path)
    assert report.settings["sep"] == r"\s+"
    assert clean["customer_id"].tolist() == ["0042", "0042"]  # leading zeros kept
    assert clean["amount"].tolist() == [12.5, 7.0]


def test_an_excel_sheet_is_read_as_the_loader(spark, tmp_path):
    path = tmp_path / "orders.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"x": [1]}).to_excel(writer, sheet_name="notes", index=False)
        LOG.assign(value=[12.5, 3, 1250.75, None]).to_excel(
            writer, sheet_name="orders", index=False
        )
    clean, report = _read_both(spark, path, sheet_name="orders")
    assert clean["amount"].tolist() == [12.5, 3.0, 1250.75]
    assert report.dropped == {"missing_amount": 1}
    rows = ss.read_transactions(spark, path, sheet_name=1, **NAMES).collect()
    assert [r.amount for r in rows][:3] == [12.5, 3.0, 1250.75] and rows[3].amount is None
    with pytest.raises(ss.SparkInputError, match=r"has no sheet 'x'; pass sheet_name="):
        ss.read_transactions(spark, path, sheet_name="x", **NAMES)
    with pytest.raises(ss.SparkInputError, match=r"use \.csv, \.csv\.gz, \.tsv, \.txt, \.xlsx"):
        ss.read_transactions(spark, tmp_path / "orders.json", **NAMES)


def test_64_bit_integer_ids_with_nulls_are_cleaned_exactly_as_the_loader(spark, tmp_path):
    # A pandas UDF gets a long column with nulls as float64, which rounds ids above
    # 2**53 (two customers would merge): the ids reach the parser as text.
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "ids.parquet"
    ids = [2**53 + 1, 2**53 + 2, None, 2**53 + 3, 2**53 + 1]
    pq.write_table(
        pa.table(
            {
                "customer_id": pa.array(ids, pa.int64()),
                "timestamp": pa.array(["2024-01-0" + str(day) for day in range(1, 6)]),
                "amount": pa.array([1.0, 2.0, 3.0, 4.0, 5.0]),
            }
        ),
        path,
    )
    expected, report = segml.load_transactions(path)
    assert sorted(expected["customer_id"].unique()) == [str(2**53 + k) for k in (1, 2, 3)]
    clean, spark_report = ss.clean_transactions(spark.read.parquet(str(path)), source=str(path))
    assert_cleaned_like_the_loader(clean, spark_report, expected, report)


def test_returns_and_duplicates_with_typed_extra_columns_are_cleaned_as_the_loader(spark, tmp_path):
    # Netting and repeated rows are the loader's own functions run per bucket of
    # customers: extra columns take part in "equal rows" exactly as in pandas (64-bit
    # integers above 2**53 kept apart, -0.0 equal to 0.0, missing values equal).
    import pyarrow as pa
    import pyarrow.parquet as pq

    big = 2**53
    rows = [
        # customer, day, amount, 64-bit extra, float extra, instant extra
        ("a", 1, 10.0, big + 1, 0.0, 0),
        ("a", 1, 10.0, big, 0.0, 0),  # differs only by the 64-bit value: kept
        ("a", 1, 10.0, big + 1, -0.0, 0),  # equal to the first: duplicate_row
        ("b", 1, 5.0, None, None, 1),
        ("b", 1, -8.0, None, None, 1),  # excess 3: fully_returned, excess note
        ("b", 2, 6.0, None, None, None),
        ("b", 2, 6.0, None, None, None),  # missing values equal: duplicate_row
        ("c", 3, -2.0, 7, 1.5, 2),  # return_without_purchase
        ("c", 4, 2.0, 7, 1.5, 2),
        ("d", 1, 3.0, 1, 1.0, 3),
        ("d", 1, 3.0, 1, 1.0, 3),  # duplicate_row
        ("d", 1, -3.0, 1, 1.0, 3),  # nets the second: fully_returned, no longer a repeat
    ]
    path = tmp_path / "typed.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": pa.array([r[0] for r in rows]),
                "timestamp": pa.array([f"2024-01-0{r[1]}" for r in rows]),
                "amount": pa.array([r[2] for r in rows]),
                "ref": pa.array([r[3] for r in rows], pa.int64()),
                "score": pa.array([r[4] for r in rows], pa.float64()),
                "seen": pa.array(
                    [None if r[5] is None else 1_700_000_000_000_000 + r[5] for r in rows],
                    pa.timestamp("us", tz="UTC"),
                ),
            }
        ),
        path,
    )
    expected, report = segml.load_transactions(path, returns="net")
    assert report.dropped == {
        "return_without_purchase": 1,
        "return_netted": 2,
        "fully_returned": 2,
        "duplicate_row": 2,
    }
    frame = spark.read.parquet(str(path))
    clean, spark_report = ss.clean_transactions(frame, returns="net", source=str(path))
    assert_cleaned_like_the_loader(
        clean.select("customer_id", "timestamp", "amount"),
        spark_report,
        expected[["customer_id", "timestamp", "amount"]],
        report,
    )
    for reason, examples in report.examples.items():  # the same rows, in input order
        shown = [(e["customer_id"], e["amount"]) for e in spark_report.examples[reason]]
        assert shown == [(e["customer_id"], e["amount"]) for e in examples], reason


def test_returns_examples_are_the_first_rows_in_input_order_on_both_engines(spark, tmp_path):
    # The loader sorts each customer's rows by time to net returns; the report's
    # examples must still be the first rows of the file, as Spark lists them.
    path = tmp_path / "unsorted.csv"
    lines = ["cust,date,value"]
    for customer in ("z", "y", "x", "w"):  # customers in reverse order in the file
        lines += [
            f"{customer},2024-01-02,-1",
            f"{customer},2024-01-03,5",
            f"{customer},2024-01-04,-2",
        ]
    path.write_text("\n".join(lines) + "\n")
    expected, report = _both(spark, path, returns="net")
    first = [e["cust"] for e in report.examples["return_without_purchase"]]
    assert first == ["z", "y", "x"]
    assert [e["cust"] for e in report.examples["return_netted"]] == ["z", "y", "x"]
    raw = spark.read.csv(str(path), header=True)
    _, spark_report = ss.clean_transactions(raw, **NAMES, returns="net", source=str(path))
    for reason in ("return_without_purchase", "return_netted"):
        assert spark_report.examples[reason] == report.examples[reason], reason
