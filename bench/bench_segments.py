"""Benchmark: SegmentModel choosing k in 3-8 and fitting, vs one scikit-learn KMeans fit.

Simulates N customers (default 1,000,000), computes their RFM table, then in the
same run times, on the same customers:

- baseline: one ``sklearn.cluster.KMeans`` fit (k-means++, scikit-learn's default
  ``n_init``) with the k that SegmentModel chose, on the same standardised log
  features;
- SegmentModel.fit with ``n_segments=[3, ..., 8]`` (choosing k by silhouette on a
  seeded sample, then the full fit);
- SegmentModel.predict on all customers.

Target: choosing k and fitting in under 10x the baseline. Prints both and the ratio.

Run: python bench/bench_segments.py [--n-customers 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from sklearn.cluster import KMeans

    from segml import rfm_summary, simulate_transactions
    from segml.models.segments import SegmentModel

    started = time.perf_counter()
    log = simulate_transactions(args.n_customers, seed=args.seed)
    rfm = rfm_summary(log, as_of="2021-12-31")
    del log
    print(f"data: {len(rfm):,} customers ({time.perf_counter() - started:.1f} s to simulate + RFM)")

    model = SegmentModel(n_segments=[3, 4, 5, 6, 7, 8], random_state=0)
    started = time.perf_counter()
    model.fit(rfm)
    fit_seconds = time.perf_counter() - started

    started = time.perf_counter()
    segments = model.predict(rfm)
    predict_seconds = time.perf_counter() - started

    z = model.transform(rfm)  # the same standardised log features
    started = time.perf_counter()
    baseline = KMeans(n_clusters=model.n_segments_, random_state=0).fit(z)
    baseline_seconds = time.perf_counter() - started

    ratio = fit_seconds / baseline_seconds
    print(
        f"silhouette by k (sample of {model.selection_sample_size:,}): "
        + ", ".join(f"{k}: {s:.3f}" for k, s in model.silhouette_scores_.items())
    )
    print(f"chosen k = {model.n_segments_}; sizes {model.segment_sizes_}")
    print(
        f"baseline  sklearn KMeans(k={model.n_segments_}) single fit : {baseline_seconds:8.2f} s "
        f"({baseline.n_iter_} iterations)"
    )
    print(f"segml     SegmentModel choose k in 3-8 + fit   : {fit_seconds:8.2f} s")
    print(f"segml     SegmentModel.predict (all customers) : {predict_seconds:8.2f} s")
    print(f"ratio     choose+fit / baseline                : {ratio:8.2f}x  (target < 10x)")
    same = np.bincount(segments, minlength=model.n_segments_)
    assert same.sum() == len(rfm)
    print("PASS" if ratio < 10 else "FAIL")


if __name__ == "__main__":
    main()
