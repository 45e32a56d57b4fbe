"""Benchmark: batch scoring with a saved model vs lifetimes' customer_lifetime_value.

Issue 7's comparison (segml's whole scoring against lifetimes' CLV step alone), kept
for its step timings and profile. Issue 15's targets are measured by
``bench_score_baseline.py`` (like for like: the same outputs without segml; and the
duckdb floor), ``bench_fixed_costs.py`` (``--help``, model loading, 1,000 customers)
and ``bench_score_memory.py`` (30M transactions read in pieces).

Issue 7, "Speed". In one run:

1. fits a :class:`segml.scoring.CustomerScorer` on a smaller simulated log
   (``--train-customers``, another seed) and exports it with
   ``segml.tracking.export_model`` (an MLflow "models from code" folder);
2. simulates ``--n-customers`` customers (default 1,000,000, about 3M transactions)
   to Parquet and, in a fresh process, scores them end to end: read the Parquet
   file, ``mlflow.pyfunc.load_model``, ``customer_features``, ``cast_to_signature``,
   ``predict`` (CLV, P(alive), segment, tier, churn probability, action, ...);
3. in another fresh process, computes the same 12-month CLV of the same customers
   with lifetimes' ``GammaGammaFitter.customer_lifetime_value`` using the saved
   model's own parameters (the baseline: the CLV step alone), and checks that
   both give the same CLV;
4. with ``--memory-customers`` (default 3,500,000: about 10M transactions), the peak
   RSS of a fresh process that reads that log, builds its features and predicts in
   one piece, and of one that runs the batch job's chunked path
   (``segml.tracking._score.score_transactions``, what ``segml score`` calls).

Target: end-to-end scoring at least 10x faster than the lifetimes CLV step alone;
10M transactions within 4 GB. ``--profile`` prints a cProfile of ``predict``.

``--model PATH`` scores with an existing exported model (or fits and keeps one
there), e.g. to compare scorers saved by two versions of segml.

Run from the repository root::

    /tmp/venv/bin/python bench/bench_score.py
    /tmp/venv/bin/python bench/bench_score.py --n-customers 100000 --memory-customers 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import StepClock, run_isolated  # noqa: E402

AS_OF = "2021-12-31"  # the simulator's last day
TRAIN_AS_OF = "2021-09-30"  # the scorer is trained on an earlier date of another log


def _fit_and_export(n_customers: int, seed: int, model_path: str) -> dict:
    from segml import simulate_transactions
    from segml.models import CLVModel, SegmentModel
    from segml.scoring import CustomerScorer, customer_features
    from segml.tracking import cast_to_signature, export_model

    log = simulate_transactions(n_customers, seed=seed)
    started = time.perf_counter()
    scorer = CustomerScorer(clv=CLVModel(time_unit="W"), segments=SegmentModel(n_segments=5)).fit(
        log, as_of=TRAIN_AS_OF
    )
    fit_seconds = time.perf_counter() - started
    example = customer_features(log.head(50), as_of=TRAIN_AS_OF, windows_days=scorer.windows_days)
    export_model(
        scorer,
        model_path,
        input_example=cast_to_signature(example.head(5), scorer.feature_columns_),
    )
    return {
        "fit_seconds": fit_seconds,
        "timings": dict(scorer.timings_),
        "windows_days": list(scorer.windows_days),
        "clv": scorer.clv_.to_dict(),
    }


def _score(log_path: str, model_path: str, out: str | None, profile: bool) -> dict:
    import mlflow
    import pandas as pd

    from segml.scoring import customer_features
    from segml.tracking import cast_to_signature

    clock = StepClock()
    log = clock("read Parquet", pd.read_parquet, log_path)
    model = clock("load model (pyfunc)", mlflow.pyfunc.load_model, model_path)
    metadata = model.metadata.get_input_schema().input_names()
    columns = [c for c in metadata if c != "customer_id"]
    scorer = model.unwrap_python_model()._scorer
    features = clock(
        "customer_features", customer_features, log, as_of=AS_OF, windows_days=scorer.windows_days
    )
    del log
    model_input = clock("cast_to_signature", cast_to_signature, features, columns)
    del features
    if profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
    scores = clock("predict (pyfunc)", model.predict, model_input)
    report = None
    if profile:
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        report = text.getvalue()
    if out is not None:
        scores[["customer_id", "clv", "churn_probability"]].to_parquet(out)
    return {"steps": clock.steps, "rows": len(scores), "profile": report}


def _lifetimes_clv(rfm_path: str, clv_document: dict, out: str) -> dict:
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes warns at import under pandas 3
        from lifetimes import BetaGeoFitter, GammaGammaFitter

    rfm = pd.read_parquet(rfm_path)
    # The saved model's own parameters: the baseline is lifetimes' CLV step alone.
    bgf, ggf = BetaGeoFitter(), GammaGammaFitter()
    bgf.params_ = pd.Series(clv_document["purchase_params"])[["r", "alpha", "a", "b"]]
    ggf.params_ = pd.Series(clv_document["gamma_gamma_params"])[["p", "q", "v"]]
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # as fit() sets it
    settings = clv_document["hyperparameters"]
    clock = StepClock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clv = clock(
            "customer_lifetime_value",
            ggf.customer_lifetime_value,
            bgf,
            rfm["frequency"],
            rfm["recency"],
            rfm["T"],
            rfm["monetary_value"],
            time=settings["horizon_months"],
            discount_rate=settings["monthly_discount_rate"],
            freq=settings["time_unit"],
        )
    clv.rename("clv").to_frame().to_parquet(out)
    return {"steps": clock.steps}


def _memory(log_path: str, model_path: str) -> dict:
    import psutil

    before = psutil.Process().memory_info().rss
    result = _score(log_path, model_path, None, False)
    result["rss_before_mb"] = before / 2**20
    return result


def _memory_batch(log_path: str, model_path: str, out: str) -> dict:
    """The batch job's path: ``score_transactions`` (chunks of customers, atomic write)."""
    import psutil

    from segml.tracking._score import score_transactions

    before = psutil.Process().memory_info().rss
    started, cpu = time.perf_counter(), time.process_time()
    result = score_transactions(model_path, log_path, as_of=AS_OF, out=out)
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "steps": dict(getattr(result, "seconds", {}) or {}),
        "rss_before_mb": before / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-customers", type=int, default=1_000_000)
    parser.add_argument("--train-customers", type=int, default=50_000)
    parser.add_argument(
        "--memory-customers",
        type=int,
        default=3_500_000,
        help="customers of the peak-memory run (0 skips it)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile the 1M predict")
    parser.add_argument(
        "--model",
        help="an exported model folder to score with (fitted and "
        "exported there first if it does not exist)",
    )
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from segml import rfm_summary, simulate_transactions

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if args.model and Path(args.model).exists():
            model_path = args.model
            document = json.loads(next(Path(model_path).rglob("scorer.json")).read_text())
            fit = {"clv": document["clv"]}
            print(f"scorer: the saved model {model_path} (as of {document['as_of']})")
        else:
            model_path = args.model or str(folder / "model")
            fitted = run_isolated(_fit_and_export, args.train_customers, args.seed + 1, model_path)
            fit = fitted["result"]
            print(
                f"scorer fitted on {args.train_customers:,} simulated customers as of "
                f"{TRAIN_AS_OF} in {fit['fit_seconds']:.1f} s ("
                + ", ".join(f"{k} {v:.1f} s" for k, v in fit["timings"].items())
                + f") and exported to {model_path}"
            )

        started = time.perf_counter()
        log = simulate_transactions(args.n_customers, seed=args.seed)
        log_path = str(folder / "log.parquet")
        log.to_parquet(log_path)
        # The baseline's input: the same customers' RFM in the model's unit (weeks as
        # days / 7), made once here and not timed.
        unit_days = {"D": 1, "W": 7}[fit["clv"]["hyperparameters"]["time_unit"]]
        rfm = rfm_summary(log, as_of=AS_OF, time_unit="D", unit_multiplier=unit_days)
        rfm[["frequency", "recency", "T", "monetary_value"]].to_parquet(folder / "rfm.parquet")
        print(
            f"scoring input: {args.n_customers:,} customers, {len(log):,} transactions as of "
            f"{AS_OF} (simulated in {time.perf_counter() - started:.1f} s)"
        )
        del log, rfm

        ours = run_isolated(
            _score, log_path, model_path, str(folder / "ours.parquet"), args.profile
        )
        theirs = run_isolated(
            _lifetimes_clv, str(folder / "rfm.parquet"), fit["clv"], str(folder / "theirs.parquet")
        )
        a = pd.read_parquet(folder / "ours.parquet").set_index("customer_id")
        b = pd.read_parquet(folder / "theirs.parquet")

        memory = None
        if args.memory_customers:
            os.remove(log_path)
            big = simulate_transactions(args.memory_customers, seed=args.seed + 2)
            n_rows = len(big)
            big.to_parquet(log_path)
            del big
            memory = run_isolated(_memory, log_path, model_path)
            try:
                import segml.tracking._score  # noqa: F401
            except ImportError:  # the batch scorer is not there yet
                batch = None
            else:
                batch = run_isolated(
                    _memory_batch, log_path, model_path, str(folder / "scores.parquet")
                )

    s, t = ours["result"]["steps"], theirs["result"]["steps"]
    print(f"\n{'segml scoring, end to end':34s}{'wall s':>9s}{'CPU s':>8s}")
    for name, (wall, cpu) in s.items():
        print(f"  {name:32s}{wall:9.2f}{cpu:8.2f}")
    end_to_end = sum(wall for wall, _ in s.values())
    end_to_end_cpu = sum(cpu for _, cpu in s.values())
    in_memory = end_to_end - s["read Parquet"][0] - s["load model (pyfunc)"][0]
    print(f"  {'total (read to scores)':32s}{end_to_end:9.2f}{end_to_end_cpu:8.2f}")
    print(f"  {'features + cast + predict':32s}{in_memory:9.2f}")
    lt_wall, lt_cpu = t["customer_lifetime_value"]
    print(
        f"{'lifetimes customer_lifetime_value':34s}{lt_wall:9.2f}{lt_cpu:8.2f}"
        "   (baseline, CLV only)"
    )
    print(
        f"ratio: lifetimes CLV step / segml end-to-end scoring = {lt_wall / end_to_end:.1f}x wall, "
        f"{lt_cpu / end_to_end_cpu:.1f}x CPU (target >= 10x); / features+cast+predict "
        f"{lt_wall / in_memory:.1f}x; / predict alone {lt_wall / s['predict (pyfunc)'][0]:.1f}x"
    )
    # What the target leaves: the steps no scoring job can skip (read the log, build
    # the features the model reads) against a tenth of the baseline.
    budget = lt_wall / 10
    unavoidable = s["read Parquet"][0] + s["customer_features"][0]
    print(
        f"10x budget: {budget:.2f} s; reading the log and building the model's features "
        f"alone took {unavoidable:.2f} s ({unavoidable / budget:.1f}x the budget), before "
        "loading the model and predicting"
    )
    print(
        f"peak RSS: segml scoring process {ours['peak_mb']:.0f} MB, "
        f"lifetimes {theirs['peak_mb']:.0f} MB"
    )
    same_ids = a.index.equals(b.index)
    rel = float(np.max(np.abs(a["clv"].to_numpy() / b["clv"].to_numpy() - 1)))
    print(
        f"same CLV: customers identical {same_ids}, {len(a):,} rows; max relative difference "
        f"{rel:.1e}"
    )
    if memory is not None:
        m = memory["result"]["steps"]
        print(
            f"\npeak memory, {args.memory_customers:,} customers / {n_rows:,} transactions: "
            f"process peak RSS {memory['peak_mb']:.0f} MB (after imports "
            f"{memory['result']['rss_before_mb']:.0f} MB; target < 4096 MB: "
            f"{'met' if memory['peak_mb'] < 4096 else 'MISSED'}) scoring in one piece "
            "(customer_features + predict on the whole log); "
            + ", ".join(f"{k} {w:.1f} s" for k, (w, _) in m.items())
        )
        if batch is not None:
            r = batch["result"]
            print(
                f"  batch path segml.tracking._score.score_transactions (chunks of customers, "
                f"Parquet out): peak RSS {batch['peak_mb']:.0f} MB (target < 4096 MB: "
                f"{'met' if batch['peak_mb'] < 4096 else 'MISSED'}), {r['seconds']:.1f} s wall, "
                f"{r['cpu']:.1f} s CPU"
                + (
                    "; " + ", ".join(f"{k} {v:.1f} s" for k, v in r["steps"].items())
                    if r["steps"]
                    else ""
                )
            )
    if ours["result"]["profile"]:
        print("\ncProfile of predict (1M customers), by cumulative time:")
        print(ours["result"]["profile"])


if __name__ == "__main__":
    main()
