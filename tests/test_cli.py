"""The segml command line: validate and features, their errors and their outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from segml.cli import app
from segml.datasets import load_cdnow

runner = CliRunner()


def _orders(tmp_path, text: str):
    path = tmp_path / "orders.csv"
    path.write_text(text)
    return path


def test_validate_prints_the_report(tmp_path):
    path = _orders(
        tmp_path,
        "client,date,value\nc1,2024-01-01,10\nc1,2024-01-02,-3\nc2,not-a-date,5\n",
    )
    result = runner.invoke(
        app,
        [
            "validate",
            str(path),
            "--customer-id",
            "client",
            "--timestamp",
            "date",
            "--amount",
            "value",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rows read: 3" in result.stdout
    assert "negative_amount: 1" in result.stdout
    assert "unparseable_timestamp: 1" in result.stdout
    # Example rows stay as the data holds them (not reworded as options).
    assert "e.g. client=c2, date=not-a-date, value=5" in result.stdout


def test_validate_fails_clearly_on_a_missing_column(tmp_path):
    path = _orders(tmp_path, "client,date,value\nc1,2024-01-01,10\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "not found" in result.output and "['client', 'date', 'value']" in result.output


def test_features_writes_rfm_and_never_overwrites_on_failure(tmp_path):
    path = _orders(
        tmp_path, "customer_id,timestamp,amount\na,2024-01-01,10\na,2024-01-11,20\nb,2024-01-05,8\n"
    )
    out = tmp_path / "rfm.parquet"
    result = runner.invoke(app, ["features", str(path), "--as-of", "2024-01-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rfm = pd.read_parquet(out)
    assert rfm.loc["a", "frequency"] == 1.0 and rfm.loc["a", "T"] == 30.0
    before = out.read_bytes()

    result = runner.invoke(app, ["features", str(path), "--as-of", "2023-01-01", "--out", str(out)])
    assert result.exit_code == 1
    # In command-line words: the option, not the Python keyword.
    assert "No transaction on or before --as-of 2023-01-01" in result.output
    assert "as_of=" not in result.output
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv", "rfm.parquet"]


def test_features_csv_output_and_required_as_of(tmp_path):
    path = _orders(tmp_path, "customer_id,timestamp,amount\na,2024-01-01,10\n")
    result = runner.invoke(app, ["features", str(path), "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and "--as-of is required" in result.output
    result = runner.invoke(
        app, ["features", str(path), "--as-of", "2024-01-02", "--out", str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 0
    assert pd.read_csv(tmp_path / "x.csv")["customer_id"].tolist() == ["a"]


def test_features_from_the_cdnow_config(tmp_path):
    out = tmp_path / "cdnow.parquet"
    config = Path(__file__).resolve().parent.parent / "configs" / "cdnow.yaml"
    result = runner.invoke(app, ["features", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rfm = pd.read_parquet(out)
    # The config drops zero-value rows: a customer appears only with a paid purchase by
    # the config's as_of (1997-09-30).
    cdnow = load_cdnow()
    paid = cdnow[(cdnow["amount"] > 0) & (cdnow["timestamp"] <= "1997-09-30")]
    assert sorted(rfm.index) == sorted(paid["customer_id"].unique())
    assert len(rfm) < 23570
    assert rfm["T"].max() == pytest.approx(272 / 7)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "data: {source: cdnow}\nfeatures: {as_of: 1997-09-30, time_units: D}\n",
            "unknown key(s) ['time_units'] in section 'features'",
        ),
        ("data: {source: cdnow}\nfeaturez: {}\n", "unknown section 'featurez'"),
        (
            "data: {source: cdnow}\nfeatures: {as_of: 1997-09-30, unit_multiplier: seven}\n",
            "features.unit_multiplier must be",
        ),
        ("features: {as_of: 1997-09-30}\n", "data.source is required"),
        ("data: [1, 2\n", "is not valid YAML"),
    ],
)
def test_config_errors_name_the_key(tmp_path, yaml_text, message):
    config = tmp_path / "run.yaml"
    config.write_text(yaml_text)
    result = runner.invoke(
        app, ["features", "--config", str(config), "--out", str(tmp_path / "o.parquet")]
    )
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())


def test_help_for_each_command():
    for command in ("validate", "features"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
    # Every command, with the options a user reaches for. Rich draws boxes and wraps to
    # the terminal: a wide plain terminal, and whitespace normalised, keep names whole.
    env = {"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1", "TERM": "dumb"}

    def help_text(*command: str) -> str:
        result = runner.invoke(app, [*command, "--help"], env=env)
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    top = help_text()
    for command in ("validate", "features", "train", "score", "runs"):
        assert f" {command} " in top, command
    expected = {
        ("validate",): ["--customer-id", "--timestamp", "--amount", "--returns", "--as-of"],
        ("features",): [
            "--out",
            "--as-of",
            "--config",
            "--customer-id",
            "--time-unit",
            "--unit-multiplier",
        ],
        ("train",): [
            "--config",
            "--tracking-uri",
            "--export",
            "--promote",
            "--allow-failed-gates",
            "--run-name",
            "--description",
        ],
        ("score",): [
            "--model",
            "--transactions",
            "--as-of",
            "--out",
            "--config",
            "--customer-id",
            "--tracking-uri",
            "--previous",
            "--engine",
        ],
        ("runs",): ["--experiment", "--tracking-uri", "--wide", " diff "],
        ("compare",): ["--candidate", "--champion", "--transactions", "--as-of"],
        ("promote",): ["--version", "--allow-failed-gates"],
        ("report",): ["--out", "--tracking-uri"],
        ("runs", "diff"): ["--tracking-uri", "run_a", "run_b"],
    }
    for command, options in expected.items():
        text = help_text(*command)
        assert f"Usage: segml {' '.join(command)} " in text
        for option in options:
            assert option in text, (command, option)


def test_command_line_options_override_the_config(tmp_path):
    log = tmp_path / "orders.csv"
    log.write_text("client,date,value\na,2024-01-01,10\na,2024-01-15,20\n")
    config = tmp_path / "run.yaml"
    config.write_text(
        "data: {source: orders.csv}\n"
        "transactions: {customer_id: client, timestamp: date, amount: value}\n"
        "features: {as_of: 2024-01-31, unit_multiplier: 7}\n"
    )
    out = tmp_path / "rfm.parquet"
    result = runner.invoke(
        app, ["features", "--config", str(config), "--unit-multiplier", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rfm = pd.read_parquet(out)
    assert rfm.loc["a", "recency"] == 14.0  # days: the option beat the config's weeks
    assert rfm.loc["a", "T"] == 30.0


# ------------------------------------------------------ one option set, CLI words
def help_words(*command: str) -> str:
    env = {"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1", "TERM": "dumb"}
    result = runner.invoke(app, [*command, "--help"], env=env)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_every_command_reading_a_log_takes_the_same_cleaning_options():
    from segml.cli._options import CLEANING_OPTIONS

    flags = ["--config"]
    for option in CLEANING_OPTIONS:
        flags.extend(
            option.flags[0].split("/") if option.flags else [option.name.replace("_", "-")]
        )
    flags = [flag if flag.startswith("--") else f"--{flag}" for flag in flags]
    assert {"--decimal", "--dayfirst", "--monthfirst", "--keep-duplicates", "--sep"} <= set(flags)
    for command in ("validate", "features", "train", "score"):
        text = help_words(command)
        missing = [flag for flag in flags if f"{flag} " not in text]
        assert missing == [], (command, missing)


def test_validate_with_the_cdnow_config_reports_what_training_keeps():
    """`segml train` loads its data with the config's transactions section; validate
    with the same config keeps exactly those rows (duplicates kept, zero amounts not)."""
    from segml._config import load_config, read_source, section_kwargs

    config = Path(__file__).resolve().parent.parent / "configs" / "cdnow.yaml"
    settings = load_config(config)
    _, training = read_source(settings["data"]["source"], section_kwargs(settings, "transactions"))
    result = runner.invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"rows kept: {training.rows_kept:,}" in result.stdout
    assert training.rows_kept == 69_579 and "duplicate_row" not in result.stdout
    # The loader's defaults, as `segml validate cdnow` used before, drop duplicates too.
    result = runner.invoke(app, ["validate", "cdnow"])
    assert result.exit_code == 0 and "duplicate_row: 255" in result.stdout


def test_new_loader_options_reach_the_loader(tmp_path):
    path = _orders(tmp_path, "client;date;value\nc1;05/01/1997;12,50\nc2;13/01/1997;1.234,50\n")
    result = runner.invoke(
        app,
        [
            "validate",
            str(path),
            "--customer-id",
            "client",
            "--timestamp",
            "date",
            "--amount",
            "value",
            "--sep",
            ";",
            "--decimal",
            ",",
            "--dayfirst",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rows kept: 2" in result.stdout
    out = tmp_path / "rfm.csv"
    result = runner.invoke(
        app,
        [
            "features",
            str(path),
            "--customer-id",
            "client",
            "--timestamp",
            "date",
            "--amount",
            "value",
            "--sep",
            ";",
            "--decimal",
            ",",
            "--dayfirst",
            "--as-of",
            "1997-01-31",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rfm = pd.read_csv(out, index_col=0)
    assert rfm.loc["c2", "T"] == 18.0  # 13 January read day first
    assert rfm.loc["c1", "T"] == 26.0  # so 05/01 is 5 January, not May 1


def test_loader_errors_name_options_not_keyword_arguments(tmp_path):
    path = _orders(tmp_path, "client,date,value\nc1,2024-01-01,10\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "--customer-id client --timestamp date --amount value" in message
    assert "customer_id='client'" not in message and "load_transactions(" not in message

    zeros = _orders(tmp_path, "customer_id,timestamp,amount\na,2024-01-01,0\n")
    result = runner.invoke(app, ["validate", str(zeros)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "zero_amount: 1" in message  # the report, printed above the error
    assert "the report is printed above" in message and ".report" not in message


# --------------------------------------------------------------- failed writes
def test_features_into_a_folder_is_one_error_line(tmp_path):
    path = _orders(tmp_path, "customer_id,timestamp,amount\na,2024-01-01,10\n")
    out = tmp_path / "rfm.parquet"
    out.mkdir()
    result = runner.invoke(app, ["features", str(path), "--as-of", "2024-01-31", "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
    assert f"Cannot write {out}" in " ".join(result.output.split())
    assert out.is_dir() and list(out.iterdir()) == []


FULL_DISK = """
import resource, signal, sys
# A file size limit makes every write past it fail with EFBIG, as a full disk fails
# with ENOSPC: SIGXFSZ ignored, the write raises OSError instead of killing us.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
sys.argv = ["segml", *sys.argv[2:]]
from segml.cli import app
app()
"""


def test_features_on_a_full_disk_is_one_error_line_and_keeps_the_old_output(tmp_path):
    """Issue 11.16: a failed write is one `error:` line, exit 1, the old file intact."""
    import os
    import subprocess
    import sys

    log = load_cdnow(sample=True)
    source = tmp_path / "log.parquet"
    log.to_parquet(source)
    out = tmp_path / "rfm.csv"
    out.write_text("last night's features\n")
    limit = 20_000  # bytes: below the 2,357-customer table, above everything else
    command = [sys.executable, "-c", FULL_DISK, str(limit), "features", str(source)]
    command += ["--as-of", "1997-09-30", "--out", str(out)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f"error: Cannot write {out}: File too large" in errors[0]
    assert "file size limit" in errors[0] and "the previous" in errors[0]
    assert out.read_text() == "last night's features\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.parquet", "rfm.csv"]


def test_a_tab_separator_can_be_typed_as_backslash_t(tmp_path):
    path = tmp_path / "orders.txt"
    path.write_text("customer_id\ttimestamp\tamount\na b\t2024-01-01\t10\nc\t2024-01-02\t5\n")
    result = runner.invoke(app, ["validate", str(path), "--sep", "\\t"])
    assert result.exit_code == 0, result.output
    assert "rows kept: 2" in result.stdout
