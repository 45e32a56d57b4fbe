"""Benchmark: segml's CLVModel against plain lifetimes on a large simulated customer base.

Targets (issue 3): fitting BG/NBD + Gamma-Gamma at least 10x faster than lifetimes'
``fit`` on the full table, 12-month CLV for every customer at least 20x faster than
lifetimes' ``customer_lifetime_value``, with the same numbers (parameters to 1e-6,
CLV to 1e-9 relative).

The RFM table is simulated directly in numpy (BG/NBD purchases with the published
CDNOW parameters, daily resolution over two years, times in weeks = days / 7), which
is what ``rfm_summary(simulate_transactions(...), time_unit="D", unit_multiplier=7)``
would give, without building a multi-million-row transaction log.

Run from the repository root::

    /tmp/venv/bin/python bench/bench_clv.py                 # 1,000,000 customers
    /tmp/venv/bin/python bench/bench_clv.py --n-customers 20000
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segml.models import CLVModel, _bgnbd, _gamma_gamma  # noqa: E402


def simulate_rfm(n_customers: int, seed: int = 0) -> pd.DataFrame:
    """BG/NBD + Gamma-Gamma customers (FHL 2005 CDNOW parameters), RFM in weeks."""
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426  # per week
    p, q, gamma = 6.25, 3.74, 15.44
    rng = np.random.default_rng(seed)
    n = n_customers
    first_day = rng.integers(0, 84, n)
    age_days = 730 - first_day  # two-year log, first purchase in the first 12 weeks
    rate_per_day = rng.gamma(r, 1.0 / alpha, n) / 7.0
    p_drop = rng.beta(a, b, n)
    frequency = np.zeros(n)
    last_day = np.zeros(n)
    clock = np.zeros(n)
    active = np.arange(n)
    while active.size:
        clock[active] += rng.exponential(1.0, active.size) / rate_per_day[active]
        inside = clock[active] <= age_days[active]
        active = active[inside]
        day = np.floor(clock[active])
        # Several purchases on one day are one period, as in rfm_summary.
        new_day = day > last_day[active]
        frequency[active[new_day]] += 1
        last_day[active] = day
        active = active[rng.random(active.size) >= p_drop[active]]
    nu = rng.gamma(q, 1.0 / gamma, n)
    repeat = frequency > 0
    monetary = np.zeros(n)
    # Mean of x Gamma(p, nu) amounts is Gamma(p x, nu x).
    monetary[repeat] = rng.gamma(p * frequency[repeat], 1.0 / (nu[repeat] * frequency[repeat]))
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": np.where(repeat, last_day, 0.0) / 7.0,
            "T": age_days / 7.0,
            "monetary_value": monetary,
        },
        index=pd.Index([f"{i:07d}" for i in range(n)], name="customer_id"),
    )


def _timed(call):
    """Result, wall-clock seconds and CPU seconds (the machine may be shared)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - start, time.process_time() - start_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rfm, seconds, _ = _timed(lambda: simulate_rfm(args.n_customers, args.seed))
    f, r, T, m = (rfm[c] for c in ("frequency", "recency", "T", "monetary_value"))
    repeat = f > 0
    n_distinct = len(rfm[["frequency", "recency", "T"]].drop_duplicates())
    print(
        f"customers: {len(rfm):,} ({int(repeat.sum()):,} repeat buyers, {n_distinct:,} distinct "
        f"(frequency, recency, T) rows); simulated in {seconds:.1f} s"
    )

    # --- segml (timed without tracemalloc, which slows every numpy allocation). Both
    # libraries are imported before timing; scipy.optimize is imported lazily by segml.
    import scipy.optimize  # noqa: F401

    t = {}
    _, *t["seg_bg"] = _timed(
        lambda: _bgnbd.fit(
            f.to_numpy(), r.to_numpy(), T.to_numpy(), penalizer_coef=0.0, max_iter=1000
        )
    )
    _, *t["seg_gg"] = _timed(
        lambda: _gamma_gamma.fit(
            f[repeat].to_numpy(), m[repeat].to_numpy(), penalizer_coef=0.0, max_iter=1000
        )
    )
    model, *t["seg_fit"] = _timed(lambda: CLVModel(time_unit="W").fit(rfm))
    _, *t["seg_clv"] = _timed(lambda: model.clv(rfm))
    # Memory that segml allocates on top of the RFM table, measured in a second run.
    tracemalloc.start()
    CLVModel(time_unit="W").fit(rfm).clv(rfm)
    _, segml_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    segml_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # --- plain lifetimes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        bgf, *t["lt_bg"] = _timed(lambda: BetaGeoFitter().fit(f, r, T))
        ggf, *t["lt_gg"] = _timed(lambda: GammaGammaFitter().fit(f[repeat], m[repeat]))
        lt_clv_values, *t["lt_clv"] = _timed(
            lambda: ggf.customer_lifetime_value(
                bgf, f, r, T, m, time=12, discount_rate=0.01, freq="W"
            )
        )
    # Same numbers: parameters of both fits, and CLV with lifetimes' own parameters.
    bg_rel = np.max(
        np.abs(np.array(list(model.purchase_params_.values())) / bgf.params_.to_numpy() - 1)
    )
    gg_rel = np.max(
        np.abs(np.array(list(model.gamma_gamma_params_.values())) / ggf.params_.to_numpy() - 1)
    )
    same_params = CLVModel.from_dict(
        {
            **model.to_dict(),
            "purchase_params": bgf.params_.to_dict(),
            "gamma_gamma_params": ggf.params_.to_dict(),
        }
    )
    clv_rel = np.max(np.abs(same_params.clv(rfm).to_numpy() / lt_clv_values.to_numpy() - 1))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"{'':28s}{'segml':>10s}{'lifetimes':>12s}{'ratio':>9s}{'CPU ratio':>11s}")
    rows = [
        ("fit BG/NBD", ["seg_bg"], ["lt_bg"]),
        ("fit Gamma-Gamma", ["seg_gg"], ["lt_gg"]),
        ("fit both", ["seg_bg", "seg_gg"], ["lt_bg", "lt_gg"]),
        ("CLVModel.fit (+checks, SEs)", ["seg_fit"], ["lt_bg", "lt_gg"]),
        ("12-month CLV, all customers", ["seg_clv"], ["lt_clv"]),
    ]
    for name, ours, theirs in rows:
        ours_s, theirs_s = sum(t[k][0] for k in ours), sum(t[k][0] for k in theirs)
        cpu_ratio = sum(t[k][1] for k in theirs) / sum(t[k][1] for k in ours)
        print(
            f"{name:28s}{ours_s:9.3f}s{theirs_s:11.3f}s{theirs_s / ours_s:8.1f}x{cpu_ratio:10.1f}x"
        )
    print(
        f"max relative difference: BG/NBD params {bg_rel:.1e}, Gamma-Gamma params {gg_rel:.1e}, "
        f"CLV {clv_rel:.1e}"
    )
    print(
        f"peak memory: segml fit + CLV allocates {segml_peak / 2**20:.0f} MB at most; process "
        f"peak RSS {segml_rss_mb:.0f} MB before lifetimes ran, {peak_rss_mb:.0f} MB after"
    )
    fit_ratio = (t["lt_bg"][0] + t["lt_gg"][0]) / t["seg_fit"][0]
    clv_ratio = t["lt_clv"][0] / t["seg_clv"][0]
    print(
        f"targets: fit >= 10x: {'met' if fit_ratio >= 10 else 'MISSED'} ({fit_ratio:.1f}x); "
        f"CLV >= 20x: {'met' if clv_ratio >= 20 else 'MISSED'} ({clv_ratio:.1f}x); "
        f"same numbers: {'yes' if max(bg_rel, gg_rel) < 1e-6 and clv_rel < 1e-9 else 'NO'}"
    )


if __name__ == "__main__":
    main()
