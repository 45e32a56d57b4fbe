"""Benchmark: the fixed costs of scoring (issue 15, target 3), each in fresh processes.

1. ``segml score --help``: target under 0.5 s; beside it a bare ``python -c pass``
   and ``python -c "import typer, rich"`` (what any Typer command pays).
2. Loading a saved scoring model with :func:`segml.tracking.load_scoring_model`
   (imports included, timed inside a fresh process): target under 0.3 s; beside it
   ``mlflow.pyfunc.load_model`` of the same folder.
3. ``segml score`` on 1,000 customers (about 2,850 transactions), Parquet in and
   Parquet out, whole process: target under 1.5 s; beside it two import floors: what
   any scorer of a Parquet log with pandas imports (``import pandas,
   pyarrow.parquet``), and what one that runs the booster with scikit-learn imports
   (``... sklearn.ensemble, sklearn.calibration``; segml evaluates its saved trees
   with numpy and imports no scikit-learn to score).

Each figure is the median of ``--runs`` fresh processes (contenders alternate), wall
and user+sys CPU. The scorer is fitted once on 50,000 simulated customers with the
boosted churn classifier (``--model`` keeps it between runs)::

    .venv/bin/python bench/bench_fixed_costs.py
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import AS_OF, alternate, median, scoring_model, simulated_log  # noqa: E402

HELP_TARGET, LOAD_TARGET, SCORE_1K_TARGET = 0.5, 0.3, 1.5

_LOAD_SEGML = """
import sys, time
started = time.perf_counter()
from segml.tracking._load import load_scoring_model
load_scoring_model(sys.argv[1])
loaded = time.perf_counter()
load_scoring_model(sys.argv[1])
print(time.perf_counter() - loaded, loaded - started)
"""
# The modules a loaded scorer needs, imported before the clock starts.
_LOAD_SEGML_IMPORTED = """
import sys, time
import segml.scoring, segml.tracking._load
started = time.perf_counter()
segml.tracking._load.load_scoring_model(sys.argv[1])
print(time.perf_counter() - started)
"""
_LOAD_MLFLOW = """
import sys, time, warnings
started = time.perf_counter()
import mlflow.pyfunc
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    mlflow.pyfunc.load_model(sys.argv[1])
print(time.perf_counter() - started)
"""


def _line(name: str, runs: list[dict], target: float | None = None, inner: int | None = None):
    wall = median(
        r["seconds"] if inner is None else float(r["stdout"].split()[inner]) for r in runs
    )
    cpu = median(r["cpu"] for r in runs)
    verdict = ""
    if target is not None:
        verdict = f"   target < {target} s: {'met' if wall < target else 'MISSED'}"
    print(f"  {name:58s}{wall:7.2f} s wall {cpu:6.2f} s CPU{verdict}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", help="exported model folder (fitted there if missing)")
    args = parser.parse_args()

    python = sys.executable
    segml = str(Path(python).with_name("segml"))
    folder = Path(tempfile.mkdtemp(prefix="bench_fixed_"))
    try:
        model = scoring_model(args.model or str(folder / "model"))
        log = str(folder / "log_1k.parquet")
        rows = simulated_log(log, 1_000, seed=0)
        out = str(folder / "scores.parquet")

        print(f"fixed costs, medians of {args.runs} fresh processes (contenders alternate)")
        runs = alternate(
            {
                "help": [segml, "score", "--help"],
                "pass": [python, "-c", "pass"],
                "typer": [python, "-c", "import typer, rich.console"],
            },
            args.runs,
        )
        print("1. segml score --help")
        _line("segml score --help", runs["help"], HELP_TARGET)
        _line("baseline: python -c pass", runs["pass"])
        _line("baseline: python -c 'import typer, rich.console'", runs["typer"])

        runs = alternate(
            {
                "segml": [python, "-c", _LOAD_SEGML, model],
                "imported": [python, "-c", _LOAD_SEGML_IMPORTED, model],
                "mlflow": [python, "-c", _LOAD_MLFLOW, model],
            },
            args.runs,
        )
        print("2. load the saved scoring model (time inside a fresh process; CPU: whole process)")
        _line("load_scoring_model, imports included", runs["segml"], LOAD_TARGET, inner=-1)
        _line("load_scoring_model, after importing its modules", runs["imported"], LOAD_TARGET, -1)
        _line("load_scoring_model, second load in the process", runs["segml"], inner=0)
        _line("baseline: mlflow.pyfunc.load_model, imports included", runs["mlflow"], inner=-1)

        score = [segml, "score", "--model", model, "--transactions", log]
        score += ["--as-of", AS_OF, "--out", out]
        floor = "import pandas, pyarrow.parquet"
        sklearn_floor = f"{floor}, sklearn.ensemble, sklearn.calibration"
        runs = alternate(
            {
                "score": score,
                "floor": [python, "-c", floor],
                "sklearn": [python, "-c", sklearn_floor],
            },
            args.runs,
        )
        print(f"3. segml score, 1,000 customers ({rows:,} transactions), Parquet in and out")
        _line("segml score (whole process)", runs["score"], SCORE_1K_TARGET)
        _line("baseline: import pandas, pyarrow", runs["floor"])
        _line("baseline: import pandas, pyarrow, sklearn.ensemble", runs["sklearn"])
        peak = max(r["peak_mb"] for r in runs["score"])
        print(f"  segml score peak RSS {peak:.0f} MB")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
