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
