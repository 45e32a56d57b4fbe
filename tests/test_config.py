"""Run configs: every bad value is one ConfigError naming the key, before anything runs."""

from __future__ import annotations

import pytest

from segml._config import ConfigError, check_config, load_config

BASE = {"data": {"source": "cdnow-sample"}, "run": {"as_of": "1998-06-30"}}


def config_with(**sections) -> dict:
    config = {section: dict(values) for section, values in BASE.items()}
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        # A list given as one value: each used to end in a TypeError traceback (or,
        # for text, silently became a list of characters).
        (
            "scorer",
            {"windows_days": 30},
            r"scorer\.windows_days must be a list of int like \[90\], got 30 \(int\) "
            r"\(write a list even for one value: \[30\]\)",
        ),
        (
            "segments",
            {"features": "total_spend"},
            r"segments\.features must be a list of str like \['days_since_last_purchase'",
        ),
        ("clv", {"penalizer_retries": 0.1}, r"clv\.penalizer_retries must be a list of float"),
        ("segments", {"n_segments": "five"}, r"segments\.n_segments must be int or a list of int"),
        ("segments", {"n_segments": [3, "4"]}, r"segments\.n_segments must be int or a list"),
        ("scorer", {"windows_days": [30, 9.5]}, r"scorer\.windows_days must be a list of int"),
        ("clv", {"horizon_months": "12"}, r"clv\.horizon_months must be int like 12, got '12'"),
        ("clv", {"horizon_months": True}, r"clv\.horizon_months must be int"),
        ("churn", {"learning_rate": "fast"}, r"churn\.learning_rate must be float like 0\.15"),
        ("transactions", {"returns": "keep"}, r"transactions\.returns must be one of \['drop'"),
        ("transactions", {"drop_duplicates": "no"}, r"transactions\.drop_duplicates must be bool"),
        ("run", {"as_of": 19980630}, r"run\.as_of must be text or null \(empty\), got 19980630"),
        ("run", {"as_of": "30/06/98x"}, r"run\.as_of must be a date like 1998-06-30, got '30/"),
        ("features", {"as_of": "soon"}, r"features\.as_of must be a date like 1998-06-30"),
        ("data", {"source": ["a.csv"]}, r"data\.source must be text"),
        ("data", {"name": 5}, r"data\.name must be text"),
    ],
)
def test_a_value_of_the_wrong_kind_names_the_key(section, values, message):
    with pytest.raises(ConfigError, match=message):
        check_config(config_with(**{section: values}))


def test_a_section_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError, match=r"section 'segments' must be a mapping.*got 5 \(int\)"):
        check_config({**BASE, "segments": 5})


def test_python_configs_may_hold_tuples_and_numpy_numbers():
    import numpy as np

    config = config_with(segments={"n_segments": (3, 4), "random_state": np.int64(0)})
    config["clv"] = {"horizon_months": np.int64(6), "monthly_discount_rate": np.float64(0.01)}
    assert check_config(config) == config


def test_values_of_the_right_kind_pass_unchanged():
    config = config_with(
        segments={"n_segments": [3, 4], "features": ["n_orders", "total_spend"]},
        scorer={"windows_days": [30, 90]},
        clv={"horizon_months": 6, "monthly_discount_rate": 0, "penalizer_retries": [0.01, 1]},
        transactions={"returns": "net", "timestamp_format": None},
    )
    assert check_config(config) == config


@pytest.mark.parametrize(
    ("run", "data", "message"),
    [
        (
            {"registered_model_name": "scorer@prod"},
            {},
            r"run\.registered_model_name 'scorer@prod' may not contain '@'",
        ),
        ({"registered_model_name": "team/scorer"}, {}, r"may not contain '/'"),
        ({"registered_model_name": "it's"}, {}, r"may not contain \"'\""),
        ({"registered_model_name": 'say "hi"'}, {}, r"may not contain '\"'"),
        ({"registered_model_name": ""}, {}, r"run\.registered_model_name must be a non-empty"),
        ({"registered_model_name": "   "}, {}, r"run\.registered_model_name must be a non-empty"),
        (
            {"registered_model_name": "m" * 257},
            {},
            r"run\.registered_model_name is 257 characters long; MLflow allows at most 256",
        ),
        ({"experiment_name": ""}, {}, r"run\.experiment_name must be a non-empty name"),
        (
            {"experiment_name": "e" * 300},
            {},
            r"run\.experiment_name is 300 characters long; MLflow allows at most 256",
        ),
        (
            {},
            {"name": "n" * 240},
            # 240 + " as of 1998-06-30" (17) + the data digest " [12345678]" (11).
            r"run name made from data\.name .* is 268 characters long; MLflow allows at most "
            r"250: shorten data\.name",
        ),
        (
            {"name": "r" * 251},
            {},
            r"run name made from run\.name .* is 251 characters long; MLflow allows at most "
            r"250: shorten run\.name \(or --run-name\)",
        ),
        (
            {"description": "d" * 4001},
            {},
            r"run\.description is 4001 characters long; at most 4000",
        ),
    ],
)
def test_bad_names_are_refused_naming_the_key_and_the_rule(run, data, message):
    with pytest.raises(ConfigError, match=message):
        check_config(config_with(run=run, data=data))


def test_yaml_anchors_and_aliases_are_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "data: {source: cdnow-sample}\nsegments: &shared {random_state: 0}\nchurn: *shared\n"
    )
    with pytest.raises(
        ConfigError,
        match=r"run\.yaml: YAML anchors and aliases \(&name / \*name\) are not allowed in "
        r"configs \(line 2, column 11\): write the values out",
    ):
        load_config(config)


def test_an_alias_bomb_is_refused_without_expanding(tmp_path):
    # "Billion laughs": 9 levels of 9 aliases each, under 1 KB, stand for 9**9
    # (387 million) strings once expanded; walking it took 64 s and 4.3 GB before.
    levels = ["a: &a [" + ", ".join(['"lol"'] * 9) + "]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("data: {source: cdnow-sample}\nrun:\n  " + "\n  ".join(levels) + "\n")
    assert bomb.stat().st_size < 1024
    # Refused while composing, at the first anchor: nothing is ever expanded (were it
    # expanded, this test would run out of time and memory instead of failing).
    with pytest.raises(ConfigError, match=r"anchors and aliases .* \(line 3, column 6\)"):
        load_config(bomb)


def test_the_shipped_cdnow_config_loads():
    from importlib.resources import files

    config = load_config(str(files("segml") / "configs" / "cdnow.yaml"))
    assert config["segments"]["n_segments"] == [3, 4, 5, 6, 7, 8]
    assert config["scorer"]["windows_days"] == [90]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "scorer: {windows_days: 30}\n",
            "error: run.yaml: scorer.windows_days must be a list of int like [90], got 30 (int)",
        ),
        (
            "segments: {n_segments: {five: 5}}\n",
            "error: run.yaml: segments.n_segments must be int or a list of int like 5",
        ),
        (
            "run: {as_of: 1998-06-30, registered_model_name: 'scorer@prod'}\n",
            "error: run.yaml: run.registered_model_name 'scorer@prod' may not contain '@'",
        ),
        (
            "run: {as_of: 1998-06-30, experiment_name: ''}\n",
            "error: run.yaml: run.experiment_name must be a non-empty name.",
        ),
        (
            "base: &base {random_state: 0}\nchurn: *base\n",
            "error: run.yaml: YAML anchors and aliases (&name / *name) are not allowed",
        ),
    ],
)
def test_segml_train_refuses_a_bad_config_in_one_line_before_fitting(
    tmp_path, monkeypatch, yaml_text, message
):
    from typer.testing import CliRunner

    from segml.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.yaml").write_text("data: {source: cdnow-sample}\n" + yaml_text)
    result = CliRunner().invoke(app, ["train", "--config", "run.yaml"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), result.output
    assert list(tmp_path.iterdir()) == [tmp_path / "run.yaml"]  # no store, nothing fitted


def test_scorecard_and_actions_configs_refuse_aliases_too(tmp_path):
    # A run config names these files (run.scorecard_config, run.actions_config); they
    # are read by the same alias-refusing reader, so a bomb there is refused as well.
    from segml.models import TierConfigError, TierScorecard
    from segml.scoring import SegmentMapError, load_actions

    bomb = "a: &a [lol, lol]\nb: [*a, *a]\n"
    scorecard = tmp_path / "scorecard.yaml"
    scorecard.write_text(bomb)
    with pytest.raises(TierConfigError, match=r"anchors and aliases"):
        TierScorecard.from_yaml(scorecard)
    actions = tmp_path / "actions.yaml"
    actions.write_text(bomb)
    with pytest.raises(SegmentMapError, match=r"anchors and aliases"):
        load_actions(actions)
    with pytest.raises(SegmentMapError, match=r"No actions config at"):
        load_actions(tmp_path / "missing.yaml")
