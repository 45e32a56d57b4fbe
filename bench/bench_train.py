"""Benchmark: the modelling core of a training run, segml vs plain lifetimes + scikit-learn.

Issue 6, "Speed". Simulates N customers (default 1,000,000: about 2.8-3.1M
transactions), writes them to Parquet, then in the same run times, each contender in
its own fresh process (so its peak RSS is its own), on the same file:

- segml: ``rfm_summary`` (features, weeks as days / 7) -> ``CLVModel(time_unit="W")``
  fit (BG/NBD + Gamma-Gamma) -> ``predict`` (12-month CLV, P(alive), expected
  purchases for every customer) -> ``SegmentModel(n_segments=K)`` fit (fixed k);
- baseline: lifetimes' ``summary_data_from_transaction_data`` (same unit), the same
  calendar RFM with a pandas ``groupby`` (lifetimes does not make it),
  ``BetaGeoFitter`` + ``GammaGammaFitter`` fit, ``customer_lifetime_value`` for every
  customer, then scikit-learn ``StandardScaler`` on ``log1p`` of the same three
  segmentation features + ``KMeans(K)``.

Reading the Parquet file is timed separately (it is the same for both). Peak memory
is the peak RSS of each contender's process (reading the file included). Target:
segml at least 10x faster, segml peak under 1.5 GB. Both CLV fits are compared
(parameters and CLV, relative) so the speed is for the same numbers.

Each contender runs ``--repeat`` times (default 3), alternating, each in a fresh
process; the table shows per-step medians and the ratio compares the medians of the
per-run core totals (a single fresh-process run varies by up to 2x on the 2-core VM).

MLflow logging is reported separately: ``segml.tracking.train`` on
``configs/cdnow.yaml`` into a temporary SQLite store, with its per-step seconds
(``TrainResult.seconds``; "log run and register model" is the MLflow part).

Run from the repository root::

    /tmp/venv/bin/python bench/bench_train.py                      # 1,000,000 customers
    /tmp/venv/bin/python bench/bench_train.py --n-customers 100000 --skip-mlflow
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import StepClock, run_isolated  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2021-12-31"  # the simulator's last day
SEGMENT_FEATURES = ["days_since_last_purchase", "n_orders", "total_spend"]


def _segml(path: str, out: str, k: int) -> dict:
    import pandas as pd

    # Libraries segml imports lazily are imported before the clock starts, as the
    # baseline's are: the steps time computation, not imports.
    import pyarrow.compute  # noqa: F401
    import scipy.optimize  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import threadpoolctl  # noqa: F401

    from segml import rfm_summary
    from segml.models import CLVModel, SegmentModel

    clock = StepClock()
    log = clock("read Parquet", pd.read_parquet, path)
    rfm = clock("features", rfm_summary, log, as_of=AS_OF, time_unit="D", unit_multiplier=7)
    del log
    model = clock("CLV fit", CLVModel(time_unit="W").fit, rfm)
    clv = clock("CLV for every customer", model.predict, rfm)
    segments = clock(
        "segments (fixed k)",
        lambda: SegmentModel(n_segments=k).fit(rfm.assign(clv=clv["clv"].to_numpy())),
    )
    labels = segments.predict(rfm.assign(clv=clv["clv"].to_numpy()))
    pd.DataFrame({"clv": clv["clv"].to_numpy(), "segment": labels}, index=rfm.index).to_parquet(out)
    return {
        "steps": clock.steps,
        "params": {**model.purchase_params_, **model.gamma_gamma_params_},
        "sizes": sorted(segments.segment_sizes_.values(), reverse=True),
    }


def _baseline(path: str, out: str, k: int) -> dict:
    import numpy as np
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes warns at import under pandas 3
        from lifetimes import BetaGeoFitter, GammaGammaFitter
        from lifetimes.utils import summary_data_from_transaction_data

    clock = StepClock()
    log = clock("read Parquet", pd.read_parquet, path)

    def features(log):
        rfm = summary_data_from_transaction_data(
            log,
            "customer_id",
            "timestamp",
            monetary_value_col="amount",
            observation_period_end=AS_OF,
            freq="D",
            freq_multiplier=7,
        )
        calendar = log.groupby("customer_id").agg(
            last=("timestamp", "max"), n_orders=("amount", "size"), total_spend=("amount", "sum")
        )
        calendar["days_since_last_purchase"] = (
            pd.Timestamp(AS_OF) - calendar["last"].dt.normalize()
        ).dt.days
        return rfm.join(calendar[SEGMENT_FEATURES])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes' pandas/numpy deprecation warnings
        rfm = clock("features", features, log)
        del log
        f, r, T, m = (rfm[c] for c in ("frequency", "recency", "T", "monetary_value"))
        repeat = f > 0

        def fit():
            bgf = BetaGeoFitter().fit(f, r, T)
            ggf = GammaGammaFitter().fit(f[repeat], m[repeat])
            return bgf, ggf

        bgf, ggf = clock("CLV fit", fit)
        clv = clock(
            "CLV for every customer",
            lambda: ggf.customer_lifetime_value(
                bgf, f, r, T, m, time=12, discount_rate=0.01, freq="W"
            ),
        )

    def segments():
        z = StandardScaler().fit_transform(np.log1p(rfm[SEGMENT_FEATURES].to_numpy("float64")))
        return KMeans(n_clusters=k, random_state=0).fit(z)

    kmeans = clock("segments (fixed k)", segments)
    pd.DataFrame({"clv": clv.to_numpy(), "segment": kmeans.labels_}, index=rfm.index).to_parquet(
        out
    )
    return {
        "steps": clock.steps,
        "params": {**bgf.params_.to_dict(), **ggf.params_.to_dict()},
        "sizes": sorted(np.bincount(kmeans.labels_).tolist(), reverse=True),
    }


def _train_cdnow(folder: str) -> dict:
    """``segml.tracking.train`` on the CDNOW config, into a fresh SQLite store."""
    from segml._config import load_config
    from segml.tracking import train

    config = load_config(REPO / "configs" / "cdnow.yaml")
    for key in ("scorecard_config", "actions_config"):
        if config["run"].get(key):
            config["run"][key] = str(REPO / config["run"][key])
    os.chdir(folder)  # MLflow's default artifact root is relative to the working directory
    started, cpu = time.perf_counter(), time.process_time()
    result = train(config, tracking_uri=f"sqlite:///{folder}/mlflow.db")
    return {
        "seconds": dict(result.seconds),
        "total": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "version": result.version,
    }


def _median_steps(runs: list[dict]) -> dict[str, tuple[float, float]]:
    """Per step, the median wall and CPU seconds over runs."""
    import numpy as np

    steps = runs[0]["result"]["steps"]
    return {
        name: tuple(float(np.median([r["result"]["steps"][name][i] for r in runs])) for i in (0, 1))
        for name in steps
    }


def _median_total(runs: list[dict], names: list[str]) -> tuple[float, float]:
    """The median over runs of the summed wall and CPU seconds of the named steps."""
    import numpy as np

    return tuple(
        float(np.median([sum(r["result"]["steps"][n][i] for n in names) for r in runs]))
        for i in (0, 1)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=5, help="fixed number of segments")
    parser.add_argument("--skip-mlflow", action="store_true", help="skip the CDNOW MLflow run")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs of each")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from segml import simulate_transactions

    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "log.parquet")
        started = time.perf_counter()
        log = simulate_transactions(args.n_customers, seed=args.seed)
        log.to_parquet(path)
        print(
            f"simulated {args.n_customers:,} customers, {len(log):,} transactions "
            f"({os.path.getsize(path) / 2**20:.0f} MB Parquet) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        del log

        ours_runs, theirs_runs = [], []
        for _ in range(args.repeat):  # alternating, each run in a fresh process
            ours_runs.append(run_isolated(_segml, path, str(Path(folder) / "ours.parquet"), args.k))
            theirs_runs.append(
                run_isolated(_baseline, path, str(Path(folder) / "theirs.parquet"), args.k)
            )
        ours, theirs = ours_runs[-1], theirs_runs[-1]
        a = pd.read_parquet(Path(folder) / "ours.parquet")
        b = pd.read_parquet(Path(folder) / "theirs.parquet")

        mlflow_run = None
        if not args.skip_mlflow:
            store = Path(folder) / "mlflow"
            store.mkdir()
            mlflow_run = run_isolated(_train_cdnow, str(store))

    s, t = _median_steps(ours_runs), _median_steps(theirs_runs)
    print(f"\nmedians of {args.repeat} fresh-process run(s) of each")
    print(f"{'step':26s}{'segml s':>9s}{'CPU s':>8s}{'baseline s':>12s}{'CPU s':>8s}{'ratio':>8s}")
    for name in s:
        ratio = t[name][0] / s[name][0] if s[name][0] > 0 else float("inf")
        print(
            f"{name:26s}{s[name][0]:9.2f}{s[name][1]:8.2f}{t[name][0]:12.2f}{t[name][1]:8.2f}"
            f"{ratio:7.1f}x"
        )
    core = [n for n in s if n != "read Parquet"]
    ours_s, ours_cpu = _median_total(ours_runs, core)
    theirs_s, theirs_cpu = _median_total(theirs_runs, core)
    print(
        f"{'modelling core (no read)':26s}{ours_s:9.2f}{ours_cpu:8.2f}{theirs_s:12.2f}"
        f"{theirs_cpu:8.2f}{theirs_s / ours_s:7.1f}x"
    )
    with_read = ours_s + s["read Parquet"][0], theirs_s + t["read Parquet"][0]
    print(
        f"{'core + read Parquet':26s}{with_read[0]:9.2f}{'':8s}{with_read[1]:12.2f}{'':8s}"
        f"{with_read[1] / with_read[0]:7.1f}x"
    )
    ours_peak = max(r["peak_mb"] for r in ours_runs)
    theirs_peak = max(r["peak_mb"] for r in theirs_runs)
    print(f"peak RSS of the process: segml {ours_peak:.0f} MB, baseline {theirs_peak:.0f} MB")
    print(
        "core per run (s): segml "
        + ", ".join(f"{_median_total([r], core)[0]:.2f}" for r in ours_runs)
        + "; baseline "
        + ", ".join(f"{_median_total([r], core)[0]:.2f}" for r in theirs_runs)
    )

    # Same numbers: both fits, and the CLV each library computes with its own fit.
    p_ours, p_theirs = ours["result"]["params"], theirs["result"]["params"]
    param_rel = max(abs(p_ours[n] / p_theirs[n] - 1) for n in p_theirs)
    same_index = a.index.equals(b.index)
    clv_rel = float(np.max(np.abs(a["clv"].to_numpy() / b["clv"].to_numpy() - 1)))
    from sklearn.metrics import adjusted_rand_score

    ari = adjusted_rand_score(a["segment"].to_numpy(), b["segment"].to_numpy())
    print(
        f"same numbers: customers identical {same_index}; parameters max relative difference "
        f"{param_rel:.1e}; CLV max relative difference {clv_rel:.1e}"
    )
    print(
        f"segments (k={args.k}): sizes segml {ours['result']['sizes']}, "
        f"baseline {theirs['result']['sizes']}; adjusted Rand index {ari:.3f}"
    )
    speed = theirs_s / ours_s
    print(
        f"targets: >= 10x faster: {'met' if speed >= 10 else 'MISSED'} ({speed:.1f}x wall, "
        f"{theirs_cpu / ours_cpu:.1f}x CPU); segml peak < 1.5 GB: "
        f"{'met' if ours_peak < 1536 else 'MISSED'} ({ours_peak:.0f} MB)"
    )

    if mlflow_run is not None:
        run = mlflow_run["result"]
        print(
            f"\nMLflow: segml.tracking.train on configs/cdnow.yaml (sqlite store), "
            f"{run['total']:.1f} s wall, {run['cpu']:.1f} s CPU, peak RSS "
            f"{mlflow_run['peak_mb']:.0f} MB; per step:"
        )
        for name, seconds in run["seconds"].items():
            print(f"  {name:40s}{seconds:8.2f} s")
        logging = run["seconds"].get("log run and register model", float("nan"))
        print(f"  MLflow logging share: {logging / run['total']:.0%} of the run")


if __name__ == "__main__":
    main()
