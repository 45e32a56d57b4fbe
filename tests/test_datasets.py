"""CDNOW as shipped by lifetimes, and the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from segml.datasets import cdnow_path, simulate_transactions


def test_cdnow_master_and_sample_sizes(cdnow, cdnow_sample):
    assert (cdnow["customer_id"].nunique(), len(cdnow)) == (23570, 69659)
    assert (cdnow_sample["customer_id"].nunique(), len(cdnow_sample)) == (2357, 6919)
    assert cdnow["customer_id"].iloc[0] == "00001"  # zero-padded ids stay strings
    assert cdnow["timestamp"].min() == pd.Timestamp("1997-01-01")
    assert cdnow["timestamp"].max() == pd.Timestamp("1998-06-30")
    # Everyone's first purchase is in the first quarter of 1997 (the cohort).
    assert cdnow.groupby("customer_id")["timestamp"].min().max() < pd.Timestamp("1997-04-01")
    # The sample is a subset of the master log: its master ids and rows are all there.
    raw = pd.read_csv(cdnow_path(sample=True), sep=r"\s+", header=None, dtype=str)
    master_rows = set(
        zip(cdnow["customer_id"], cdnow["timestamp"].dt.strftime("%Y%m%d"), strict=True)
    )
    assert set(zip(raw[0], raw[2], strict=True)) <= master_rows


def test_simulation_is_reproducible_and_seeded():
    a = simulate_transactions(500, seed=1)
    pd.testing.assert_frame_equal(a, simulate_transactions(500, seed=1))
    assert not a.equals(simulate_transactions(500, seed=2))
    assert a["customer_id"].nunique() == 500
    assert a["timestamp"].between("2020-01-01", "2021-12-31").all()
    assert (a["amount"] > 0).all()


def test_simulated_repeat_purchases_match_the_bgnbd_expectation():
    """Mean repeat purchases in (0, t] equal E[X(t)], Fader, Hardie & Lee (2005) eq. 7."""
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    log = simulate_transactions(
        40_000, seed=11, start="2020-01-01", end="2020-12-31", acquisition_days=1
    )
    t = 365 / 7  # every customer starts on day 0 and is watched for 365 days (weeks)
    expected = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    )
    repeats = log.groupby("customer_id").size() - 1
    standard_error = repeats.std() / np.sqrt(len(repeats))
    assert repeats.mean() == pytest.approx(expected, abs=4 * standard_error)


def test_simulated_spend_matches_gamma_gamma_mean():
    """E[amount] = p * gamma / (q - 1) (Fader & Hardie 2013, eq. 4), over customers."""
    p, q, gamma = 6.25, 3.74, 15.44
    log = simulate_transactions(40_000, seed=5)
    per_customer = log.groupby("customer_id")["amount"].first()  # one draw per customer
    assert per_customer.mean() == pytest.approx(p * gamma / (q - 1), rel=0.03)


def test_simulation_rejects_impossible_settings():
    with pytest.raises(ValueError, match="n_customers must be at least 1"):
        simulate_transactions(0, seed=0)
    with pytest.raises(ValueError, match="longer than acquisition_days"):
        simulate_transactions(10, seed=0, start="2020-01-01", end="2020-02-01")
