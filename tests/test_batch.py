"""segml.batch without a model: outputs committed all or none, and the cleaning a
scoring run uses (the model's, then the given options, conflicts named).

The scoring runs themselves (with a trained model) are in tests/test_score.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from segml.batch import (
    APPLIED_SETTINGS,
    CleaningConflict,
    CleaningWarning,
    atomic_outputs,
    scoring_options,
)
from segml.batch._cleaning import warn_conflicts


def files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def outputs(tmp_path) -> list[Path]:
    """Last night's three outputs of one run."""
    paths = [tmp_path / name for name in ("s.migration_tier.csv", "s.migration_seg.csv", "s.csv")]
    for path in paths:
        path.write_text(f"old {path.name}\n")
    return paths


def test_every_output_is_replaced_together(outputs, tmp_path):
    with atomic_outputs(outputs) as temps:
        assert [t.parent for t in temps] == [tmp_path] * 3
        for tmp, path in zip(temps, outputs, strict=True):
            assert tmp.name.startswith(f".{path.name}.{os.getpid()}.")
        for tmp, path in zip(temps, outputs, strict=True):
            tmp.write_text(f"new {path.name}\n")
        # Nothing is replaced before the block ends.
        assert all(p.read_text().startswith("old") for p in outputs)
    assert files(tmp_path) == {p.name: f"new {p.name}\n" for p in outputs}


def test_an_error_in_the_block_replaces_nothing(outputs, tmp_path):
    before = files(tmp_path)
    with pytest.raises(RuntimeError, match="migration failed"), atomic_outputs(outputs) as temps:
        temps[0].write_text("half")
        raise RuntimeError("migration failed")
    assert files(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)


def test_a_target_that_is_a_folder_replaces_nothing(outputs, tmp_path):
    outputs[1].unlink()
    outputs[1].mkdir()
    before = files(tmp_path)
    with pytest.raises(IsADirectoryError) as error, atomic_outputs(outputs) as temps:
        for tmp in temps:
            tmp.write_text("new\n")
    assert error.value.filename == str(outputs[1])
    assert files(tmp_path) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(
    shutil.which("chattr") is None or os.geteuid() != 0,
    reason="needs chattr and root to make a file immutable",
)
def test_a_rename_failing_after_others_succeeded_puts_them_back(outputs, tmp_path):
    """The migration files are renamed first; when the scores cannot be replaced
    (here: an immutable file, which even root cannot replace), they get their old
    contents back."""
    before = files(tmp_path)
    made = subprocess.run(["chattr", "+i", str(outputs[-1])], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"this filesystem has no immutable flag: {made.stderr.decode().strip()}")
    try:
        with pytest.raises(PermissionError), atomic_outputs(outputs) as temps:
            for tmp in temps:
                tmp.write_text("new\n")
    finally:
        subprocess.run(["chattr", "-i", str(outputs[-1])], check=True)
    assert files(tmp_path) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_outputs_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        with atomic_outputs([tmp_path / "a.csv"]) as (tmp,):
            tmp.write_text("x\n")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644


def test_a_folder_that_cannot_hold_the_temp_files_fails_before_any_work(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    with pytest.raises(OSError), atomic_outputs([blocker / "scores.csv"]):
        pytest.fail("the block must not run")  # pragma: no cover


# ----------------------------------------------------------------------- cleaning
def test_the_models_cleaning_applies_and_given_options_win():
    model = {
        "customer_id": "client",
        "drop_duplicates": False,
        "returns": "net",
        "dayfirst": None,
        "sep": ";",  # a file-format setting of the training file: not applied
        "as_of": "1998-06-30",  # a run setting: not applied
    }
    options, conflicts = scoring_options(model, {"dayfirst": True, "returns": "net"})
    assert options["customer_id"] == "client" and options["drop_duplicates"] is False
    assert options["dayfirst"] is True and options["returns"] == "net"
    assert "sep" not in options and "as_of" not in options
    # dayfirst was undecided at training (None) and returns agrees: no conflict.
    assert conflicts == []

    options, conflicts = scoring_options(model, {"drop_duplicates": True, "customer_id": "cust"})
    assert options["drop_duplicates"] is True and options["customer_id"] == "cust"
    assert conflicts == [  # in the order given
        CleaningConflict("drop_duplicates", False, True),
        CleaningConflict("customer_id", "client", "cust"),
    ]


def test_a_setting_the_model_left_at_the_default_conflicts_with_another_value():
    options, conflicts = scoring_options({"customer_id": "customer_id"}, {"zero_amounts": "keep"})
    assert conflicts == [CleaningConflict("zero_amounts", "drop", "keep")]
    assert options == {"customer_id": "customer_id", "zero_amounts": "keep"}


def test_a_model_without_recorded_cleaning_takes_the_given_options_silently():
    options, conflicts = scoring_options(None, {"drop_duplicates": False})
    assert options == {"drop_duplicates": False} and conflicts == []


def test_conflicts_are_warnings_naming_both_values():
    with pytest.warns(CleaningWarning) as caught:
        warn_conflicts([CleaningConflict("returns", "drop", "net")])
    warning = caught[0].message
    assert (warning.key, warning.model_value, warning.given_value) == ("returns", "drop", "net")
    assert str(warning).startswith(
        "returns='net' contradicts the model's cleaning: it was trained with returns='drop'."
    )


def test_applied_settings_are_loader_parameters():
    import inspect

    from segml.transactions import load_transactions

    parameters = inspect.signature(load_transactions).parameters
    assert {"customer_id", "timestamp", "amount", "returns", "drop_duplicates"} <= set(
        APPLIED_SETTINGS
    )
    missing = [name for name in APPLIED_SETTINGS if name not in parameters]
    assert missing == [], f"load_transactions lacks {missing}"


# --------------------------------------------------------------- tracking store
def score_command(tmp_path, *args: str):
    from typer.testing import CliRunner

    from segml.cli import app

    log = tmp_path / "log.csv"
    log.write_text("customer_id,timestamp,amount\na,2024-01-01,10\n")
    out = tmp_path / "scores.csv"
    out.write_text("last night\n")
    command = ["score", "--model", "models:/segml@champion", "--transactions", str(log)]
    command += ["--as-of", "2024-01-31", "--out", str(out), *args]
    return CliRunner().invoke(app, command), out


def test_a_missing_sqlite_store_is_an_error_not_a_new_store(tmp_path):
    """Issue 11.15: `segml score` checks its tracking URI as train does."""
    database = tmp_path / "typo.db"
    result, out = score_command(tmp_path, "--tracking-uri", f"sqlite:///{database}")
    assert result.exit_code == 1
    assert f"No MLflow store at {database}" in " ".join(result.output.split())
    assert not database.exists()  # nothing created
    assert out.read_text() == "last night\n"


def test_a_file_store_and_a_password_are_never_shown(tmp_path):
    result, _ = score_command(tmp_path, "--tracking-uri", f"file://{tmp_path}/mlruns")
    assert result.exit_code == 1 and "is not supported" in result.output
    # A server that is down (closed port), with credentials in the URI: refused at
    # once, and the password never printed.
    result, out = score_command(tmp_path, "--tracking-uri", "http://user:s3cret@127.0.0.1:9")
    assert result.exit_code == 1
    assert "s3cret" not in result.output and "user:***@127.0.0.1:9" in result.output
    assert out.read_text() == "last night\n"
