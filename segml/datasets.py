"""Transaction logs to learn and test with: CDNOW (real) and a BG/NBD simulator (ground truth).

CDNOW is the CD retailer panel used throughout the CLV literature: every first-time
buyer of 1997 Q1 followed until June 1998. The ``lifetimes`` package ships two files,
read here from the installed package (no download):

- ``CDNOW_master.txt``: all 23,570 customers, 69,659 transactions.
- ``CDNOW_sample.txt``: the 1/10 sample (2,357 customers, 6,919 transactions) behind
  Fader, Hardie & Lee (2005), "Counting your customers the easy way".

Examples
--------
>>> from segml.datasets import load_cdnow
>>> cdnow = load_cdnow(sample=True)
>>> cdnow["customer_id"].nunique(), len(cdnow)
(2357, 6919)
>>> list(cdnow.columns)
['customer_id', 'timestamp', 'amount', 'quantity']
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["cdnow_path", "load_cdnow", "simulate_transactions"]


def cdnow_path(sample: bool = False) -> Path:
    """Path of the CDNOW file inside the installed ``lifetimes`` package.

    Found without importing lifetimes (its import sets pandas options and warns).
    """
    spec = find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The CDNOW data ships inside the 'lifetimes' package, which is not installed: "
            "pip install lifetimes==0.11.3"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets"
    return folder / ("CDNOW_sample.txt" if sample else "CDNOW_master.txt")


def load_cdnow(sample: bool = False) -> pd.DataFrame:
    """Load the CDNOW transaction log in segml's canonical columns.

    Parameters
    ----------
    sample : bool, default False
        ``True`` for the 2,357-customer sample of the papers, ``False`` for all
        23,570 customers.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (str: zero-padded master ids such as ``"00042"`` for the
        master file; the sample's own ids ``"0001"`` .. ``"2357"`` for the sample),
        ``timestamp`` (datetime64, day resolution), ``amount`` (float64, dollars)
        and ``quantity`` (int64, number of CDs), one row per transaction, in file order.

    Examples
    --------
    >>> from segml.datasets import load_cdnow
    >>> master = load_cdnow()
    >>> master["customer_id"].nunique()
    23570
    >>> master["timestamp"].min().date(), master["timestamp"].max().date()
    (datetime.date(1997, 1, 1), datetime.date(1998, 6, 30))
    """
    path = cdnow_path(sample)
    if sample:
        raw = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            names=["master_id", "customer_id", "date", "quantity", "amount"],
            dtype={"master_id": str, "customer_id": str, "date": str},
        )
    else:
        raw = pd.read_csv(
            path,
            sep=r"\s+",
            header=0,
            names=["customer_id", "date", "quantity", "amount"],
            dtype={"customer_id": str, "date": str},
        )
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype(str),
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d").astype("datetime64[ns]"),
            "amount": raw["amount"].astype("float64"),
            "quantity": raw["quantity"].astype("int64"),
        }
    )


def simulate_transactions(
    n_customers: int,
    *,
    seed: int,
    start: str = "2020-01-01",
    end: str = "2021-12-31",
    acquisition_days: int = 84,
    r: float = 0.243,
    alpha: float = 4.414,
    a: float = 0.793,
    b: float = 2.426,
    p: float = 6.25,
    q: float = 3.74,
    gamma: float = 15.44,
) -> pd.DataFrame:
    """Draw a transaction log from a BG/NBD purchase process with Gamma-Gamma spend.

    Each customer makes a first purchase on a day drawn uniformly in the first
    ``acquisition_days`` days after ``start`` (as CDNOW's 12-week cohort). While
    alive, purchases follow a Poisson process with rate ``lambda ~ Gamma(r, alpha)``
    per week; after each purchase the customer drops out with probability
    ``p_drop ~ Beta(a, b)`` (Fader, Hardie & Lee 2005, section 2). Each customer's
    mean spend is ``nu ~ Gamma(q, gamma)`` and each purchase's amount is
    ``Gamma(p, nu)`` (Fader & Hardie 2013, eq. 1-2). Defaults are the published CDNOW
    estimates, in weeks. Purchases are rounded to the day and end on ``end``.

    Parameters
    ----------
    n_customers : int
        Number of customers.
    seed : int
        Seed of the random generator; the same seed gives the same log.
    start, end : str
        First and last day of the log.
    acquisition_days : int, default 84
        Length of the window in which customers make their first purchase.
    r, alpha, a, b : float
        BG/NBD parameters (rate in purchases per week).
    p, q, gamma : float
        Gamma-Gamma spend parameters.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (str, zero-padded), ``timestamp``, ``amount``, sorted by
        customer and time. Ground truth per customer is not returned; the parameters
        are the truth that fitted models should recover.

    Examples
    --------
    >>> from segml.datasets import simulate_transactions
    >>> log = simulate_transactions(1000, seed=0)
    >>> log["customer_id"].nunique()
    1000
    >>> bool((log["amount"] > 0).all())
    True
    """
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}.")
    rng = np.random.default_rng(seed)
    start_day = np.datetime64(pd.Timestamp(start).date(), "D")
    end_day = np.datetime64(pd.Timestamp(end).date(), "D")
    horizon_days = int((end_day - start_day).astype(int))
    if horizon_days <= acquisition_days:
        raise ValueError(
            f"The log from {start} to {end} is {horizon_days} days long; it must be longer "
            f"than acquisition_days={acquisition_days}."
        )

    first_day = rng.integers(0, acquisition_days, size=n_customers)
    rate_per_day = rng.gamma(r, 1.0 / alpha, size=n_customers) / 7.0
    p_drop = rng.beta(a, b, size=n_customers)
    mean_spend_scale = rng.gamma(q, 1.0 / gamma, size=n_customers)  # nu: rate of spend

    # Repeat purchases, drawn in rounds: every customer still alive and inside the
    # window draws the next inter-purchase gap; after it they may drop out.
    customers = [np.arange(n_customers)]
    days = [first_day.astype(float)]
    current = first_day.astype(float)
    alive = np.ones(n_customers, dtype=bool)
    active = np.arange(n_customers)
    while active.size:
        gaps = rng.exponential(1.0 / np.maximum(rate_per_day[active], 1e-300))
        current[active] += gaps
        inside = current[active] <= horizon_days
        active = active[inside]
        if not active.size:
            break
        customers.append(active)
        days.append(current[active].copy())
        # After a purchase, drop out with probability p (the BG/NBD "coin flip").
        dropped = rng.random(active.size) < p_drop[active]
        alive[active[dropped]] = False
        active = active[~dropped]

    customer_index = np.concatenate(customers)
    day_offset = np.floor(np.concatenate(days)).astype("int64")
    amount = rng.gamma(p, 1.0 / mean_spend_scale[customer_index])
    order = np.lexsort((day_offset, customer_index))
    width = len(str(n_customers))
    ids = np.char.zfill(np.arange(1, n_customers + 1).astype(str), width)
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids[customer_index[order]], dtype="str"),
            "timestamp": (start_day + day_offset[order]).astype("datetime64[ns]"),
            "amount": np.round(amount[order], 2),
        }
    )
