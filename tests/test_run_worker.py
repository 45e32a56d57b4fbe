"""The run's worker: figures, report.html and the predictive calibration made beside
the MLflow logging (segml.tracking._run_worker) log exactly what one process logs.

Real runs into a real SQLite store: the forked worker, a worker that dies, and no
worker at all (the path of platforms without fork) log the same files, byte for
byte, and the same metrics.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from mlflow import MlflowClient

import segml.tracking._run_worker as run_worker
import segml.tracking._train as train_module
from segml.tracking import train
from segml.tracking._run_worker import RunWorker

EXPERIMENT = "segml-worker-test"
MODEL_NAME = "segml-worker-test-scorer"
# Every figure a run logs (the CDNOW sample; a run always has these 17).
FIGURES = {
    "clv/calibration_vs_holdout_purchases.png",
    "clv/frequency_recency_expected_purchases.png",
    "clv/p_alive_matrix.png",
    "clv/period_transactions.png",
    "clv/clv_distribution.png",
    "clv/cumulative_repeat_transactions.png",
    "clv/clv_fan.png",
    "clv/p_buy_reliability.png",
    "segments/tier_counts.png",
    "segments/tier_shares.png",
    "segments/frequency_vs_spend.png",
    "segments/segment_profiles.png",
    "segments/silhouette_curve.png",
    "churn/roc.png",
    "churn/precision_recall.png",
    "churn/calibration.png",
    "churn/lift.png",
}


def sample_config() -> dict:
    return {
        "data": {"source": "cdnow-sample", "name": "CDNOW sample"},
        "transactions": {"drop_duplicates": False},
        "clv": {"time_unit": "W"},
        "segments": {"n_segments": [3, 4], "random_state": 0},
        "churn": {"random_state": 0, "calibration_method": "sigmoid"},
        # A seed for the CLV intervals' draws (default: a fresh one per fit), so that
        # two runs score alike.
        "scorer": {"churn_horizon_days": 90, "clv_holdout_days": 273, "random_state": 0},
        "gates": {"churn_min_lead": -0.02},
        "run": {
            "as_of": "1998-06-30",
            "experiment_name": EXPERIMENT,
            "registered_model_name": MODEL_NAME,
        },
    }


def logged(uri: str, run_id: str, folder: Path) -> tuple[dict[str, str], dict[str, float]]:
    """Every artifact of the run but the model (path -> sha256), and its metrics.

    The report shows the run id: it is blanked before hashing.
    """
    client = MlflowClient(tracking_uri=uri)
    local = Path(client.download_artifacts(run_id, "", str(folder)))
    files = {}
    for path in local.rglob("*"):
        if path.is_file():
            data = path.read_bytes().replace(run_id.encode(), b"RUN")
            files[path.relative_to(local).as_posix()] = hashlib.sha256(data).hexdigest()
    return files, client.get_run(run_id).data.metrics


def assert_same(run, other) -> None:
    """The same files (by content) and the same metrics, naming any that differ."""
    (files, metrics), (other_files, other_metrics) = run, other
    assert sorted(files) == sorted(other_files)
    assert [p for p in files if files[p] != other_files[p]] == []
    assert {k: v for k, v in metrics.items() if other_metrics[k] != v} == {}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield folder, f"sqlite:///{folder}/mlflow.db"


@pytest.fixture(scope="module")
def with_worker(store):
    folder, uri = store
    result = train(sample_config(), tracking_uri=uri)
    return logged(uri, result.run_id, folder / "with_worker")


def test_a_run_logs_every_figure_once_with_the_worker(with_worker):
    files, metrics = with_worker
    assert {p.removeprefix("figures/") for p in files if p.startswith("figures/")} == FIGURES
    assert "report.html" in files and "predictive_reliability.csv" in files
    assert not any(Path(p).name in ("worker_done.json", "predictive.json") for p in files)
    assert not any(".claims" in p for p in files)
    assert metrics["predictive.count_coverage"] == pytest.approx(0.928, abs=5e-4)


@pytest.mark.skipif(sys.platform != "linux", reason="the worker is forked on Linux only")
def test_a_worker_that_dies_changes_nothing_that_is_logged(store, with_worker, monkeypatch):
    folder, uri = store
    parent = os.getpid()
    measure = train_module._predictive_report

    def dies_in_the_worker(scorer, clean):
        if os.getpid() != parent:  # the forked worker only
            os._exit(3)
        return measure(scorer, clean)

    monkeypatch.setattr(train_module, "_predictive_report", dies_in_the_worker)
    result = train(sample_config(), tracking_uri=uri)
    assert MlflowClient(tracking_uri=uri).get_run(result.run_id).info.status == "FINISHED"
    assert_same(logged(uri, result.run_id, folder / "worker_died"), with_worker)


def test_without_fork_the_training_process_logs_the_same(store, with_worker, monkeypatch):
    folder, uri = store
    monkeypatch.setattr(RunWorker, "start", lambda self: False)  # as on Windows / macOS
    result = train(sample_config(), tracking_uri=uri)
    assert_same(logged(uri, result.run_id, folder / "no_worker"), with_worker)


@pytest.mark.skipif(sys.platform != "linux", reason="the worker is forked on Linux only")
def test_each_figure_is_drawn_once_by_one_of_the_two_processes(tmp_path):
    # Each drawing leaves a note named after the figure and the process that drew it.
    def figure(path):
        drawn = Figure(figsize=(1, 1))
        drawn.suptitle(path)
        (tmp_path / "log").mkdir(exist_ok=True)
        (tmp_path / "log" / f"{path.replace('/', '_')}.{os.getpid()}").touch()
        return drawn

    paths = [f"f/{i}.png" for i in range(12)]
    worker = RunWorker(
        tmp_path / "out",
        figures=lambda: {p: (lambda p=p: figure(p)) for p in paths},
        predictive=lambda: {"x": 0.1 + 0.2},
        late_figures=lambda predictive: {"g/late.png": Figure(figsize=(1, 1))},
        report=lambda: "<p>page</p>",
    )
    (tmp_path / "out").mkdir()
    assert worker.start()
    folder, predictive = worker.finish()
    assert predictive == {"x": 0.1 + 0.2}  # exactly, through the worker's JSON
    assert sorted(p.relative_to(folder / "figures").as_posix() for p in folder.rglob("*.png")) == (
        sorted([*paths, "g/late.png"])
    )
    notes = [p.name for p in (tmp_path / "log").iterdir()]
    # Every figure drawn exactly once, by the worker or by this process.
    assert sorted(n.rsplit(".", 1)[0] for n in notes) == sorted(p.replace("/", "_") for p in paths)
    assert (folder / "report.html").read_text() == "<p>page</p>"


def test_a_failing_figure_raises_in_the_training_process(tmp_path):
    def broken():
        raise ValueError("cannot draw: no customers")

    worker = RunWorker(
        tmp_path,
        figures=lambda: {"a.png": broken},
        predictive=lambda: None,
        late_figures=lambda predictive: {},
        report=lambda: "",
    )
    worker.start()
    with pytest.raises(ValueError, match="cannot draw: no customers"):
        worker.finish()
    worker.close()


def test_the_worker_encodes_the_calibration_exactly():
    import pandas as pd

    table = pd.DataFrame(
        {"bin": ["[0.0, 0.1)", "[0.1, 0.2)"], "n": [5, 7], "mean_predicted": [1 / 3, 2 / 7]}
    )
    report = {"p_buy_brier": 1 / 9, "n_customers": 12, "reliability": table}
    back = run_worker._decode(run_worker._encode(report))
    assert back["p_buy_brier"] == 1 / 9 and back["n_customers"] == 12
    pd.testing.assert_frame_equal(back["reliability"], table)
    assert run_worker._decode(run_worker._encode(None)) is None


def test_closing_stops_a_busy_worker_even_when_the_host_catches_sigterm(tmp_path):
    # A host that handles SIGTERM itself (a job runner's graceful stop) must not keep
    # close() waiting for a worker that is still busy: the child resets the handler.
    import signal
    import time

    previous = signal.signal(signal.SIGTERM, lambda *args: None)
    try:
        worker = RunWorker(
            tmp_path,
            figures=lambda: {},
            predictive=lambda: time.sleep(30),
            late_figures=lambda predictive: {},
            report=lambda: "",
        )
        assert worker.start()
        time.sleep(0.5)  # the worker is in its 30 s calibration
        started = time.perf_counter()
        worker.close()
        assert time.perf_counter() - started < 10
    finally:
        signal.signal(signal.SIGTERM, previous)
