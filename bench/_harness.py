"""Shared timing harness for the benchmarks: each contender runs in a fresh process.

A fresh process per contender gives each one a clean heap, so the peak resident
memory it reports (``ru_maxrss``) belongs to that contender alone.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import resource
import time
from collections.abc import Callable


def _child(target: Callable, args: tuple, queue) -> None:
    import psutil

    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    result = target(*args)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queue.put(
        {
            "seconds": seconds,
            "peak_mb": peak / 2**20,
            "rss_before_mb": before / 2**20,
            "result": result,
        }
    )


def run_isolated(target: Callable, *args) -> dict:
    """Run ``target(*args)`` in a new process; return seconds, peak RSS and its result."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(target, args, queue))
    process.start()
    while True:
        try:
            out = queue.get(timeout=1.0)
            break
        except queue_module.Empty:  # still running, unless the child died
            if not process.is_alive():
                raise SystemExit(
                    f"{target.__name__} died (exit code {process.exitcode}) without a result"
                ) from None
    process.join()
    return out


class StepClock:
    """Wall and CPU seconds per step (the machine is shared: CPU time is the steadier)."""

    def __init__(self):
        self.steps: dict[str, tuple[float, float]] = {}

    def __call__(self, name, function, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        self.steps[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        return result


AS_OF = "2021-12-31"  # the simulator's last day: scoring date of the scoring benches
TRAIN_AS_OF = "2021-09-30"  # their scorer is trained on an earlier date of another log


def _fit_and_export_scorer(model_path: str, n_customers: int, seed: int) -> dict:
    from segml import simulate_transactions
    from segml.models import CLVModel, SegmentModel
    from segml.scoring import CustomerScorer, customer_features
    from segml.tracking import cast_to_signature, export_model

    log = simulate_transactions(n_customers, seed=seed)
    started = time.perf_counter()
    # churn_fallback=False: the scoring benches time the boosted churn classifier (the
    # expensive case), not the one-feature baseline a run deploys when it wins.
    scorer = CustomerScorer(
        clv=CLVModel(time_unit="W"), segments=SegmentModel(n_segments=5), churn_fallback=False
    ).fit(log, as_of=TRAIN_AS_OF)
    fit_seconds = time.perf_counter() - started
    example = customer_features(log.head(50), as_of=TRAIN_AS_OF, windows_days=scorer.windows_days)
    export_model(
        scorer,
        model_path,
        input_example=cast_to_signature(example.head(5), scorer.feature_columns_),
    )
    # The baseline scores churn with scikit-learn's own fitted classifier.
    from segml.persistence import dump_skops

    dump_skops(scorer.churn_.calibrated_, baseline_churn_file(model_path))
    return {"fit_seconds": fit_seconds}


def baseline_churn_file(model_path: str):
    """Where :func:`scoring_model` saves the scorer's fitted scikit-learn churn
    classifier with skops, for the like-for-like baseline (segml saves the trees as
    numbers in the model folder; this file is not part of the model)."""
    from pathlib import Path

    return Path(str(model_path).rstrip("/") + ".churn_classifier.skops")


def scoring_model(model_path: str, n_customers: int = 50_000, seed: int = 1) -> str:
    """An exported scoring model at ``model_path``: fitted there (in a fresh process) on
    ``n_customers`` simulated customers as of :data:`TRAIN_AS_OF` unless it exists."""
    from pathlib import Path

    if not (Path(model_path) / "MLmodel").exists() or not baseline_churn_file(model_path).exists():
        import shutil

        shutil.rmtree(model_path, ignore_errors=True)  # a model saved by an older segml
        fitted = run_isolated(_fit_and_export_scorer, model_path, n_customers, seed)
        print(
            f"scorer fitted on {n_customers:,} simulated customers as of {TRAIN_AS_OF} in "
            f"{fitted['result']['fit_seconds']:.1f} s, exported to {model_path}"
        )
    return model_path


def simulated_log(path: str, n_customers: int, seed: int = 0) -> int:
    """Simulate ``n_customers`` customers' transactions to a Parquet file (in a fresh
    process, so the caller's memory stays small) unless it exists; returns its rows."""
    from pathlib import Path

    if not Path(path).exists():
        run_isolated(_simulate_to_parquet, path, n_customers, seed)
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _simulate_to_parquet(path: str, n_customers: int, seed: int) -> None:
    from segml import simulate_transactions

    simulate_transactions(n_customers, seed=seed).to_parquet(path)


def run_command(argv: list[str], env: dict | None = None) -> dict:
    """Run a command in a fresh process: its wall seconds, user+sys CPU, peak RSS.

    The CPU and peak RSS are the child's own (``os.wait4``). Raises SystemExit with
    the command's stderr when it fails.
    """
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}):\n{stderr[-3000:]}")
    return {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
        "stdout": stdout,
        "stderr": stderr,
    }


def alternate(contenders: dict[str, list[str]], runs: int = 3) -> dict[str, list[dict]]:
    """Run each command ``runs`` times, alternating contenders (A B A B ...), so both
    meet the same machine load; returns every run per contender."""
    results: dict[str, list[dict]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, argv in contenders.items():
            results[name].append(run_command(argv))
    return results


def median(values) -> float:
    import statistics

    return float(statistics.median(values))
