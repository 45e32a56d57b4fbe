"""Benchmark: the scorer's training tables on Spark local[2] against pandas.

Issue 15, point 8 ("a bench figure for Spark local[2] against pandas on 1M
customers") and point 7 ("keep a Spark-SQL piece only where a bench shows it is
needed"). In one run:

1. simulates ``--n-customers`` customers (default 1,000,000, about 3M transactions)
   to one Parquet file;
2. in fresh processes, ``--repeats`` times each (medians printed):

   - **pandas**: read the file, :func:`segml.scoring.training_tables` (features at
     ``as_of``, the CLV calibration/holdout split, churn features and labels at the
     two cutoffs);
   - **spark**: a ``local[2]`` session, read the file,
     :func:`segml.spark.training_tables` (the same pandas functions per bucket of
     customers, the tables collected to the driver); the session's start is timed
     apart;
   - with ``--features`` (default on): the features at ``as_of`` alone on Spark,
     computed by the pandas function per bucket (``applyInPandas``, what
     ``segml.spark.customer_features`` does now) and by the Spark-SQL
     re-implementation it replaced (read from git, ``--sql-commit``), each written to
     Spark's ``noop`` sink so every column is computed;

3. checks that the Spark tables equal the pandas tables (bit for bit).

Wall seconds and CPU seconds (user + system of the process and, for Spark, of the
JVM and its Python workers) are printed side by side. Issue 15 sets no ratio for
Spark local[2]; on one machine Spark is expected to be slower than pandas (it
shuffles the log and moves it through Arrow to Python workers): its point is that
the driver never holds the raw log. The baseline is pandas on the same file.

Run from the repository root::

    .venv/bin/python bench/bench_spark_train.py
    .venv/bin/python bench/bench_spark_train.py --n-customers 100000 --repeats 1
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import run_isolated  # noqa: E402

AS_OF = "2021-12-15"  # two weeks before the simulated log ends (labels need data_end)
OPTIONS = dict(time_unit="W", churn_horizon_days=90, clv_holdout_days=180)


def _simulate(n_customers: int, path: str) -> dict:
    from segml import simulate_transactions

    log = simulate_transactions(n_customers, seed=11)
    # Microsecond timestamps: Spark reads them (pandas writes nanoseconds).
    log.astype({"timestamp": "datetime64[us]"}).to_parquet(path, index=False)
    return {"rows": len(log), "customers": int(log["customer_id"].nunique())}


def _digest(tables) -> str:
    """A hash of every table and label of a TrainingTables (values, index, columns)."""
    import pandas as pd

    digest = hashlib.sha256()
    for name in (
        "features",
        "cal_holdout",
        "churn_train_features",
        "churn_test_features",
        "churn_train_labels",
        "churn_test_labels",
    ):
        table = getattr(tables, name)
        digest.update(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
        frame = table.to_frame() if isinstance(table, pd.Series) else table
        digest.update(repr(list(frame.columns)).encode())
    return digest.hexdigest()[:16]


def _cpu_seconds(with_descendants: bool) -> float:
    import psutil

    own = psutil.Process()
    times = own.cpu_times()
    total = times.user + times.system
    if with_descendants:
        for child in own.children(recursive=True):
            try:
                t = child.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return total


def _pandas_tables(path: str) -> dict:
    import pandas as pd

    from segml.scoring import training_tables

    started = time.perf_counter()
    log = pd.read_parquet(path)
    tables = training_tables(log, as_of=AS_OF, **OPTIONS)
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "cpu": _cpu_seconds(False),
        "digest": _digest(tables),
        "customers": len(tables.features),
    }


def _session(partitions: int):
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    return (
        SparkSession.builder.master("local[2]")
        .appName("segml bench")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def _spark_tables(path: str, partitions: int) -> dict:
    from segml.spark._buckets import quiet_pandas_interop

    started = time.perf_counter()
    with quiet_pandas_interop():
        spark = _session(partitions)
    spark.sparkContext.setLogLevel("ERROR")
    session_seconds = time.perf_counter() - started
    import segml.spark as ss

    cpu_before = _cpu_seconds(True)
    started = time.perf_counter()
    tables = ss.training_tables(spark.read.parquet(path), as_of=AS_OF, **OPTIONS)
    wall = time.perf_counter() - started
    cpu = _cpu_seconds(True) - cpu_before
    spark.stop()
    return {
        "wall": wall,
        "cpu": cpu,
        "session": session_seconds,
        "digest": _digest(tables),
        "customers": len(tables.features),
    }


def _spark_features(path: str, partitions: int, engine: str, sql_module: str | None) -> dict:
    from segml.spark._buckets import quiet_pandas_interop

    with quiet_pandas_interop():
        spark = _session(partitions)
    spark.sparkContext.setLogLevel("ERROR")
    if engine == "sql":
        import importlib.util

        spec = importlib.util.spec_from_file_location("segml_features_sql", sql_module)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        customer_features = module.customer_features
    else:
        from segml.spark import customer_features
    frame = spark.read.parquet(path)
    cpu_before = _cpu_seconds(True)
    started = time.perf_counter()
    features = customer_features(frame, as_of=AS_OF, partitions=partitions)
    features.write.format("noop").mode("overwrite").save()
    wall = time.perf_counter() - started
    cpu = _cpu_seconds(True) - cpu_before
    spark.stop()
    return {"wall": wall, "cpu": cpu}


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run["result"][key] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--partitions", type=int, default=16, help="customer buckets (shuffle partitions)"
    )
    parser.add_argument("--features", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--sql-commit",
        default="79dc778",
        help="git commit holding the Spark-SQL segml/spark/_features.py (the replaced one)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="segml-bench-spark-") as folder:
        path = str(Path(folder) / "log.parquet")
        size = run_isolated(_simulate, args.n_customers, path)["result"]
        print(
            f"log: {size['customers']:,} customers, {size['rows']:,} transactions; "
            f"as_of {AS_OF}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        pandas_runs = [run_isolated(_pandas_tables, path) for _ in range(args.repeats)]
        spark_runs = [
            run_isolated(_spark_tables, path, args.partitions) for _ in range(args.repeats)
        ]
        digests = {run["result"]["digest"] for run in pandas_runs + spark_runs}
        print(f"\ntraining tables (medians of {args.repeats}, fresh processes)")
        # Peak RSS of the Python process; Spark's JVM and workers are not in it.
        print(f"{'engine':<28}{'wall s':>9}{'cpu s':>9}{'peak MB (Python)':>18}")
        for name, runs in (("pandas (baseline)", pandas_runs), ("spark local[2]", spark_runs)):
            peak = statistics.median(run["peak_mb"] for run in runs)
            wall, cpu = _median(runs, "wall"), _median(runs, "cpu")
            print(f"{name:<28}{wall:>9.2f}{cpu:>9.2f}{peak:>18.0f}")
        ratio = _median(spark_runs, "wall") / _median(pandas_runs, "wall")
        print(
            f"spark / pandas wall: {ratio:.2f}x (target: none set; figure for the README); "
            f"spark session start {_median(spark_runs, 'session'):.2f} s, not included"
        )
        print(f"tables equal bit for bit: {len(digests) == 1} ({sorted(digests)})")

        if args.features:
            sql_path = str(Path(folder) / "features_sql.py")
            source = subprocess.run(
                ["git", "show", f"{args.sql_commit}:segml/spark/_features.py"],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parent.parent,
            ).stdout
            Path(sql_path).write_text(source)
            runs = {
                engine: [
                    run_isolated(_spark_features, path, args.partitions, engine, sql_path)
                    for _ in range(args.repeats)
                ]
                for engine in ("pandas per bucket", "sql")
            }
            print(f"\nfeatures at as_of on Spark local[2] (medians of {args.repeats})")
            print(f"{'implementation':<34}{'wall s':>9}{'cpu s':>9}")
            labels = {
                "pandas per bucket": "pandas function per bucket (now)",
                "sql": "Spark SQL (replaced; baseline)",
            }
            for engine, label in labels.items():
                print(
                    f"{label:<34}{_median(runs[engine], 'wall'):>9.2f}"
                    f"{_median(runs[engine], 'cpu'):>9.2f}"
                )
            ratio = _median(runs["pandas per bucket"], "wall") / _median(runs["sql"], "wall")
            print(f"per-bucket / SQL wall: {ratio:.2f}x")


if __name__ == "__main__":
    main()
