"""Benchmark: peak memory of ``segml score`` on 30M transactions (issue 15, target 4).

Simulates ``--n-customers`` customers (default 10,000,000: about 31M transactions)
into one Parquet file, in parts of 1M customers (distinct ids) each sorted by time,
so a customer's rows are spread over several Arrow batches; then, each in a fresh
process:

- ``segml score`` (whole process, Parquet in, Parquet out): the log is read in pieces
  of whole customers (``segml.batch._pieces``), so memory follows the piece;
- baseline: ``pandas.read_parquet`` of the same log, the first step of scoring it
  whole (what ``segml score`` did before: every later step adds to it).

Prints peak RSS (the process's own, ``os.wait4``) beside the 4 GB target, and the
wall and CPU time. Run from the repository root::

    .venv/bin/python bench/bench_score_memory.py
    .venv/bin/python bench/bench_score_memory.py --n-customers 1000000   # a quick look
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import AS_OF, run_command, run_isolated, scoring_model  # noqa: E402

TARGET_MB = 4096
PART = 1_000_000


def _simulate_parts(path: str, n_customers: int, seed: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from segml import simulate_transactions

    rows, writer = 0, None
    for number, start in enumerate(range(0, n_customers, PART)):
        part = simulate_transactions(min(PART, n_customers - start), seed=seed + number)
        part["customer_id"] = (part["customer_id"].astype("int64") + start).astype("str")
        table = pa.Table.from_pandas(
            part.sort_values("timestamp", kind="stable"), preserve_index=False
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        rows += len(part)
    writer.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-customers", type=int, default=10_000_000)
    parser.add_argument("--model", help="exported model folder (fitted there if missing)")
    parser.add_argument("--log", help="Parquet log to keep between runs (simulated if missing)")
    args = parser.parse_args()

    python = sys.executable
    segml = str(Path(python).with_name("segml"))
    folder = Path(tempfile.mkdtemp(prefix="bench_memory_"))
    try:
        model = scoring_model(args.model or str(folder / "model"))
        log = args.log or str(folder / "log.parquet")
        if not Path(log).exists():
            made = run_isolated(_simulate_parts, log, args.n_customers, 0)
            print(f"simulated {made['result']:,} transactions in {made['seconds']:.0f} s")
        import pyarrow.parquet as pq

        n_rows = pq.ParquetFile(log).metadata.num_rows
        out = str(folder / "scores.parquet")
        ours = run_command(
            [
                segml,
                "score",
                "--model",
                model,
                "--transactions",
                log,
                "--as-of",
                AS_OF,
                "--out",
                out,
            ]
        )
        read = run_command([python, "-c", f"import pandas as pd; pd.read_parquet({log!r})"])
        n_scored = pq.ParquetFile(out).metadata.num_rows
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"\n{args.n_customers:,} customers, {n_rows:,} transactions; {n_scored:,} scored")
    verdict = "met" if ours["peak_mb"] < TARGET_MB else "MISSED"
    print(
        f"  segml score (pieces of whole customers)    peak RSS {ours['peak_mb']:7.0f} MB   "
        f"{ours['seconds']:6.1f} s wall {ours['cpu']:6.1f} s CPU   "
        f"target < {TARGET_MB} MB: {verdict}"
    )
    print(
        f"  baseline: pandas.read_parquet, whole log   peak RSS {read['peak_mb']:7.0f} MB   "
        f"{read['seconds']:6.1f} s wall {read['cpu']:6.1f} s CPU"
    )
    steps = [line for line in ours["stderr"].splitlines() if line.startswith("done ")]
    print("  segml score steps: " + "; ".join(s[5:] for s in steps))


if __name__ == "__main__":
    main()
