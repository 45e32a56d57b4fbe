"""Faults of real processes: a training run killed with SIGKILL, two runs at once.

Every test here starts `segml train` (or its Python twin) as a real process on a
real SQLite store in a temporary folder and checks what is left for the next
command: no RUNNING run whose process is gone, no registered version without an
alias, no crash when two runs create the same new store.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml
from mlflow import MlflowClient

from segml.tracking import runs_table, train
from tests.test_tracking import sample_config

SEGML = str(Path(sys.executable).with_name("segml"))
EXPERIMENT = "faults"
MODEL = "faults-scorer"


def _environment() -> dict[str, str]:
    """The test's environment without MLflow settings (the URI is given explicitly)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def _config(folder: Path) -> Path:
    path = folder / "run.yaml"
    path.write_text(
        yaml.safe_dump(sample_config(experiment_name=EXPERIMENT, registered_model_name=MODEL))
    )
    return path


def _statuses(database: Path) -> list[str]:
    """Run statuses in the store, read-only (the store may be mid-write)."""
    if not database.exists():
        return []
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            return [row[0] for row in connection.execute("SELECT status FROM runs")]
    except sqlite3.OperationalError:  # tables not created yet
        return []


def _unaliased_versions(uri: str) -> list[str]:
    client = MlflowClient(tracking_uri=uri)
    versions = client.search_model_versions(f"name='{MODEL}'")
    if not versions:
        return []
    # search_model_versions leaves .aliases empty: the registered model has them.
    aliased = {str(v) for v in client.get_registered_model(MODEL).aliases.values()}
    return [f"{MODEL} {v.version}" for v in versions if str(v.version) not in aliased]


def test_a_run_killed_while_logging_is_failed_by_the_next_segml_runs(tmp_path):
    database = tmp_path / "mlflow.db"
    uri = f"sqlite:///{database}"
    process = subprocess.Popen(
        [SEGML, "train", "--config", str(_config(tmp_path)), "--tracking-uri", uri],
        cwd=tmp_path,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while _statuses(database) != ["RUNNING"]:
        assert process.poll() is None, "segml train ended before its run started"
        assert time.monotonic() < deadline, "no RUNNING run after 180 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # while it logs: nothing can clean up
    process.wait()
    assert _statuses(database) == ["RUNNING"]  # what the kill leaves behind

    listed = subprocess.run(
        [SEGML, "runs", "--experiment", EXPERIMENT, "--tracking-uri", uri],
        cwd=tmp_path,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert _statuses(database) == ["FAILED"]
    assert "FAILED" in listed.stdout and "RUNNING" not in listed.stdout
    assert _unaliased_versions(uri) == []  # killed before registering: no version


def test_a_run_killed_after_registering_leaves_no_version_without_an_alias(tmp_path):
    # The process kills itself with SIGKILL at the moment it would move the alias:
    # the version exists, has no alias, and its run is RUNNING.
    database = tmp_path / "mlflow.db"
    uri = f"sqlite:///{database}"
    script = textwrap.dedent(
        """
        import os, signal, sys
        from mlflow import MlflowClient
        from segml.tracking import train

        def killed(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        MlflowClient.set_registered_model_alias = killed
        train(sys.argv[1], tracking_uri=sys.argv[2])
        """
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, str(_config(tmp_path)), uri],
        cwd=tmp_path,
        env=_environment(),
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL
    assert _statuses(database) == ["RUNNING"]
    assert _unaliased_versions(uri) == [f"{MODEL} 1"]

    # The next run (this process: its own pid differs) cleans up first and says so.
    steps = []
    result = train(
        _config(tmp_path), tracking_uri=uri, on_step=lambda name, seconds: steps.append(name)
    )
    notes = [name for name in steps if name.startswith("marked stale run")]
    assert len(notes) == 1
    assert "FAILED: it was RUNNING but its process" in notes[0]
    assert f"deleted its unaliased registered {MODEL} version 1" in notes[0]
    assert sorted(_statuses(database)) == ["FAILED", "FINISHED"]
    assert _unaliased_versions(uri) == []
    assert result.aliases == ["candidate"]
    table = runs_table(tracking_uri=uri, experiment_name=EXPERIMENT)
    assert table["status"].tolist() == ["FINISHED", "FAILED"]
    assert table.attrs["stale_runs_failed"] == []  # nothing left to clean


def test_a_run_of_a_live_process_is_left_alone(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    from segml.tracking._store import prepare_store, process_tags

    prepare_store(uri)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(EXPERIMENT)
    mine = client.create_run(experiment_id, tags=process_tags())  # this live process
    other = client.create_run(experiment_id, tags={"segml.pid": "1", "segml.host": "elsewhere"})
    untagged = client.create_run(experiment_id)  # another tool's run
    notices = []
    table = runs_table(tracking_uri=uri, experiment_name=EXPERIMENT, on_notice=notices.append)
    assert notices == [] and set(table["status"]) == {"RUNNING"}
    for run in (mine, other, untagged):
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
    # A pid that belongs to a process started after the run (pid reused) is stale.
    reused = client.create_run(experiment_id, tags=process_tags(), start_time=1_000)
    table = runs_table(tracking_uri=uri, experiment_name=EXPERIMENT, on_notice=notices.append)
    assert len(notices) == 1 and reused.info.run_id in notices[0]
    assert client.get_run(reused.info.run_id).info.status == "FAILED"
    assert client.get_run(mine.info.run_id).info.status == "RUNNING"


def test_two_trainings_started_at_once_on_a_new_store_both_succeed(tmp_path):
    # Before the store lock, one of them crashed in MLflow's schema migration.
    runs = 2
    database = tmp_path / "new" / "mlflow.db"
    uri = f"sqlite:///{database}"
    config = _config(tmp_path)
    processes = [
        subprocess.Popen(
            [SEGML, "train", "--config", str(config), "--tracking-uri", uri],
            cwd=tmp_path,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(runs)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    assert _statuses(database) == ["FINISHED"] * runs
    client = MlflowClient(tracking_uri=uri)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))
    assert versions == list(range(1, runs + 1))
    assert str(client.get_registered_model(MODEL).aliases["candidate"]) in {"1", "2"}
    assert (database.parent / "mlflow.db.lock").exists()
