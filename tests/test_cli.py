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
    assert "No transaction on or before as_of=2023-01-01" in result.output
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
            "features.unit_multiplier must be int like 1",
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
        ("train",): ["--config", "--tracking-uri", "--export", "--promote"],
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
        ("runs",): ["--experiment", "--tracking-uri", " diff "],
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
