"""segml.io: every file format and option is read the same way; outputs are written atomically."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from segml import load_transactions
from segml.datasets import cdnow_path, load_cdnow
from segml.io import ReadError, atomic_output, atomic_write_bytes, read_table, write_table
from segml.persistence import write_json


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_semicolon_csv_with_decimal_commas_is_sniffed(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "client;date;value\n00042;13/01/1997;1.234,50 €\n7;05/01/1997;12,50 €\n",
        encoding="utf-8",
    )
    frame, info = read_table(path)
    assert info["sep"] == ";" and info["encoding"] == "utf-8"
    assert frame.to_dict("list") == {
        "client": ["00042", "7"],
        "date": ["13/01/1997", "05/01/1997"],
        "value": ["1.234,50 €", "12,50 €"],
    }
    clean, report = load_transactions(path, customer_id="client", timestamp="date", amount="value")
    assert clean["amount"].tolist() == [1234.5, 12.5]
    assert clean["timestamp"].tolist() == [pd.Timestamp("1997-01-13"), pd.Timestamp("1997-01-05")]
    assert report.settings["sep"] == ";"


def test_quoted_separators_do_not_fool_the_sniffer_and_an_explicit_sep_wins(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('id,note,amount\n1,"a;b;c",2.5\n2,"d;e;f",3.5\n')
    frame, info = read_table(path)
    assert info["sep"] == "," and frame["note"].tolist() == ["a;b;c", "d;e;f"]
    frame, info = read_table(path, sep=";")
    assert info["sep"] == ";" and list(frame.columns) == ["id,note,amount"]


def test_tab_separated_txt_and_tsv(tmp_path):
    text = "customer_id\ttimestamp\tamount\n001\t2024-01-01\t9.5\n"
    (tmp_path / "log.txt").write_text(text)
    (tmp_path / "log.tsv").write_text(text)
    for name in ("log.txt", "log.tsv"):
        frame, info = read_table(tmp_path / name)
        assert info["sep"] == "\t"
        assert frame.iloc[0].tolist() == ["001", "2024-01-01", "9.5"]


def test_runs_of_spaces_like_cdnow_master(tmp_path):
    path = tmp_path / "master.txt"
    # As lifetimes ships CDNOW_master.txt: a leading space, aligned columns, CRLF.
    path.write_bytes(
        b" customer_id  date number_of_cds  dollar_value\r\n"
        b" 00001 19970101  1   11.77\r\n 00002 19970112  5   77.00\r\n"
    )
    frame, info = read_table(path)
    assert info["sep"] == r"\s+"
    assert list(frame.columns) == ["customer_id", "date", "number_of_cds", "dollar_value"]
    assert frame.values.tolist() == [
        ["00001", "19970101", "1", "11.77"],
        ["00002", "19970112", "5", "77.00"],
    ]


def test_the_shipped_cdnow_master_reads_as_load_cdnow():
    clean, report = load_transactions(
        cdnow_path(),
        timestamp="date",
        amount="dollar_value",
        zero_amounts="keep",
        drop_duplicates=False,
    )
    expected = load_cdnow()
    assert report.rows_read == len(expected) == 69_659
    assert report.settings["sep"] == r"\s+"
    assert clean["customer_id"].tolist() == expected["customer_id"].tolist()
    assert clean["timestamp"].tolist() == expected["timestamp"].tolist()
    assert clean["amount"].tolist() == expected["amount"].tolist()


def test_utf8_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("customer_id,timestamp,amount\nzoë,2024-01-01,5\n".encode("utf-8-sig"))
    frame, info = read_table(path)
    assert list(frame.columns) == ["customer_id", "timestamp", "amount"]  # no "\ufeff"
    assert info["encoding"] == "utf-8" and info["warnings"] == []
    clean, report = load_transactions(path)
    assert clean["customer_id"].tolist() == ["zoë"] and report.warnings == []


def test_a_windows_1252_file_is_read_with_a_warning_naming_the_option(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(
        "customer_id;timestamp;amount\nJosé;2024-01-01;12,50 €\nMüller;2024-01-02;3,00 €\n".encode(
            "cp1252"
        )
    )
    clean, report = load_transactions(path)
    assert clean["customer_id"].tolist() == ["José", "Müller"]
    assert clean["amount"].tolist() == [12.5, 3.0]
    assert report.currencies == {"EUR": 2}
    assert report.settings["encoding"] == "cp1252"
    assert len(report.warnings) == 1
    assert "not valid UTF-8" in report.warnings[0]
    assert "encoding= (--encoding)" in report.warnings[0]
    assert "warning: latin.csv is not valid UTF-8" in str(report)
    # Saying the encoding reads the same, without the warning.
    _, told = load_transactions(path, encoding="cp1252")
    assert told.warnings == [] and told.settings["encoding"] == "cp1252"


def test_a_wrong_explicit_encoding_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("customer_id,timestamp,amount\nJosé,2024-01-01,1\n".encode("cp1252"))
    with pytest.raises(ReadError, match=r"not valid utf-8 \(.*\); pass the file's encoding with"):
        read_table(path, encoding="utf-8")
    # 0x81 is not a Windows-1252 character either: the fix is named, not a codec traceback.
    path.write_bytes(b"customer_id,timestamp,amount\na\x81,2024-01-01,1\n")
    with pytest.raises(ReadError, match=r"not valid UTF-8 or Windows-1252 .*--encoding"):
        read_table(path)
    frame, _ = read_table(path, encoding="latin-1")
    assert frame["customer_id"].tolist() == ["a\x81"]


def test_xlsx_first_sheet_by_default_and_a_named_sheet(tmp_path):
    path = tmp_path / "orders.xlsx"
    january = pd.DataFrame(
        {
            "customer_id": ["00042", "7"],
            "timestamp": pd.to_datetime(["2024-01-02", "2024-01-03"]),
            "amount": [12.5, 3.0],
        }
    )
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        january.to_excel(writer, sheet_name="january", index=False)
        january.assign(amount=[1.0, 2.0]).to_excel(writer, sheet_name="february", index=False)
    clean, report = load_transactions(path)
    assert clean["customer_id"].tolist() == ["00042", "7"]  # text cells keep their zeros
    assert clean["amount"].tolist() == [12.5, 3.0]
    assert clean["timestamp"].tolist() == january["timestamp"].tolist()
    assert report.settings["sheet_name"] == 0
    clean, _ = load_transactions(path, sheet_name="february")
    assert clean["amount"].tolist() == [1.0, 2.0]
    with pytest.raises(ReadError, match=r"has no sheet 'march'.*\['january', 'february'\]"):
        read_table(path, sheet_name="march")


def test_gzip_csv_parquet_and_bad_files(tmp_path):
    frame = pd.DataFrame({"customer_id": ["001"], "timestamp": ["2024-01-01"], "amount": ["2"]})
    frame.to_csv(tmp_path / "log.csv.gz", index=False, sep=";")
    got, info = read_table(tmp_path / "log.csv.gz")
    assert info["sep"] == ";" and got.values.tolist() == [["001", "2024-01-01", "2"]]
    frame.to_parquet(tmp_path / "log.pq")
    got, info = read_table(tmp_path / "log.pq")
    assert info["format"] == "parquet" and got.values.tolist() == [["001", "2024-01-01", "2"]]
    with pytest.raises(ReadError, match="No file at"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ReadError, match="is empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "log.json").write_text("{}")
    with pytest.raises(ReadError, match="Cannot tell the format"):
        read_table(tmp_path / "log.json")


@pytest.mark.parametrize(
    "write",
    [
        lambda path: write_table(pd.DataFrame({"a": [1]}), path.with_suffix(".csv")),
        lambda path: write_table(pd.DataFrame({"a": [1]}), path.with_suffix(".parquet")),
        lambda path: atomic_write_bytes(b"{}", path.with_suffix(".json")),
        lambda path: write_json({"r": 0.243}, path.with_suffix(".json")),  # saved models
    ],
    ids=["csv", "parquet", "bytes", "persistence-json"],
)
def test_outputs_get_the_usual_permissions_not_0600(tmp_path, umask_022, write):
    write(tmp_path / "out")
    (written,) = tmp_path.iterdir()
    assert _mode(written) == 0o644
    os.umask(0o077)
    write(tmp_path / "out")  # replacing it: the mask in force then
    assert _mode(written) == 0o600


def test_atomic_output_keeps_the_old_file_on_failure_and_follows_the_umask(tmp_path, umask_022):
    path = tmp_path / "scores.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_output(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]  # no temp file left
    with atomic_output(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)  # a writer that makes it private
        os.write(fd, b"new\n")
        os.close(fd)
    assert path.read_text() == "new\n" and _mode(path) == 0o644


def test_persistence_re_exports_the_writers():
    import segml.io
    import segml.persistence

    assert segml.persistence.write_table is segml.io.write_table
    assert segml.persistence.atomic_write_bytes is segml.io.atomic_write_bytes


def test_read_source_reads_files_through_the_loader_and_bundled_names_without_file_options(
    tmp_path,
):
    from segml._config import read_source

    path = tmp_path / "orders.csv"
    path.write_text("customer_id;timestamp;amount\na;13/01/1997;12,50\n")
    clean, report = read_source(path, {"sep": ";", "encoding": "utf-8"})
    assert clean["amount"].tolist() == [12.5] and report.settings["sep"] == ";"
    # A bundled dataset is no file: sep/encoding/sheet_name do not apply to it.
    clean, report = read_source("cdnow-sample", {"sep": ";", "encoding": "cp1252"})
    assert report.source == "cdnow-sample (bundled with the lifetimes package)"
    assert report.rows_read == 6919 and report.settings["sep"] is None


def test_integer_ids_with_nulls_are_read_exactly_from_parquet(tmp_path):
    # pandas reads an int64 column with nulls as float64, which rounds 2**53 + 1.
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"customer_id": pa.array([2**53 + 1, None, 2**53 + 2])}), path)
    frame, _ = read_table(path)
    assert frame["customer_id"].dtype == "Int64"
    assert frame["customer_id"].tolist()[::2] == [2**53 + 1, 2**53 + 2]
