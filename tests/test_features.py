"""rfm_summary and calibration_holdout equal lifetimes, and hold their invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segml import calibration_holdout, rfm_summary
from segml.features import CALENDAR_COLUMNS, LIFETIMES_COLUMNS
from segml.features._rfm import FeatureError

# (time_unit, unit_multiplier, as_of for CDNOW, as_of for the simulated log). Weekly
# ends are Sundays: lifetimes reads the whole week of its end date (see rfm_summary).
UNITS = [
    ("D", 1, "1997-09-30", "2021-06-30"),
    ("D", 7, "1997-09-30", "2021-06-30"),
    ("W", 1, "1997-09-28", "2021-06-27"),
]


def _assert_equal_to_lifetimes(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    theirs = theirs.sort_index()
    assert ours.index.tolist() == [str(i) for i in theirs.index]
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[column].to_numpy(), theirs[column].to_numpy())
    np.testing.assert_allclose(
        ours["monetary_value"].to_numpy(), theirs["monetary_value"].to_numpy(), rtol=1e-12, atol=0
    )


@pytest.mark.parametrize("data", ["cdnow", "simulated"])
@pytest.mark.parametrize(("time_unit", "multiplier", "cdnow_end", "sim_end"), UNITS)
def test_rfm_summary_equals_lifetimes(
    request, lifetimes_utils, data, time_unit, multiplier, cdnow_end, sim_end
):
    log = request.getfixturevalue(data)
    as_of = cdnow_end if data == "cdnow" else sim_end
    ours = rfm_summary(log, as_of=as_of, time_unit=time_unit, unit_multiplier=multiplier)
    theirs = lifetimes_utils.summary_data_from_transaction_data(
        log,
        "customer_id",
        "timestamp",
        monetary_value_col="amount",
        observation_period_end=as_of,
        freq=time_unit,
        freq_multiplier=multiplier,
    )
    _assert_equal_to_lifetimes(ours, theirs)


@pytest.mark.parametrize("data", ["cdnow", "simulated"])
@pytest.mark.parametrize(("time_unit", "multiplier"), [("D", 1), ("D", 7), ("W", 1)])
def test_calibration_holdout_equals_lifetimes(
    request, lifetimes_utils, data, time_unit, multiplier
):
    log = request.getfixturevalue(data)
    # Sundays, so weekly periods end with the dates (see rfm_summary's notes).
    cal, obs = ("1997-09-28", "1998-06-28") if data == "cdnow" else ("2021-03-28", "2021-12-26")
    ours = calibration_holdout(
        log,
        calibration_end=cal,
        observation_end=obs,
        time_unit=time_unit,
        unit_multiplier=multiplier,
    )
    theirs = lifetimes_utils.calibration_and_holdout_data(
        log,
        "customer_id",
        "timestamp",
        calibration_period_end=cal,
        observation_period_end=obs,
        freq=time_unit,
        freq_multiplier=multiplier,
        monetary_value_col="amount",
    ).sort_index()
    assert list(ours.columns) == list(theirs.columns)
    assert ours.index.tolist() == theirs.index.tolist()
    for column in theirs.columns:
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-12, atol=0)


def test_published_cdnow_sample_summary(cdnow_sample):
    """The CDNOW sample's calibration summary as in Fader, Hardie & Lee (2005)."""
    split = calibration_holdout(
        cdnow_sample,
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        unit_multiplier=7,
    )
    assert len(split) == 2357
    assert split["T_cal"].max() == pytest.approx(272 / 7)  # 1997-01-01 to 1997-09-30
    assert split["duration_holdout"].iloc[0] == 39.0  # 273 days = 39 weeks
    # The paper's table: 1,411 of 2,357 made no repeat purchase in 39 weeks.
    assert int((split["frequency_cal"] == 0).sum()) == 1411


def test_calendar_columns_on_a_hand_made_log():
    log = pd.DataFrame(
        {
            "customer_id": ["x", "x", "x", "y"],
            "timestamp": pd.to_datetime(
                ["2024-03-01 09:00", "2024-03-01 18:30", "2024-03-10 12:00", "2024-03-05 00:00"]
            ),
            "amount": [30.0, 10.0, 20.0, 5.0],
        }
    )
    rfm = rfm_summary(log, as_of="2024-03-31")
    assert list(rfm.columns) == [*LIFETIMES_COLUMNS, *CALENDAR_COLUMNS]
    x = rfm.loc["x"]
    assert (x["frequency"], x["recency"], x["T"], x["monetary_value"]) == (1.0, 9.0, 30.0, 20.0)
    assert (x["n_orders"], x["total_spend"], x["avg_order_value"]) == (3, 60.0, 20.0)
    assert (x["days_since_last_purchase"], x["tenure_days"]) == (21, 30)
    assert x["first_purchase"] == pd.Timestamp("2024-03-01 09:00")
    assert x["last_purchase"] == pd.Timestamp("2024-03-10 12:00")
    assert rfm["n_orders"].dtype == np.int64 and rfm["tenure_days"].dtype == np.int64


def test_transactions_after_as_of_and_customers_not_yet_seen_are_ignored():
    log = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-02-01"]),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    rfm = rfm_summary(log, as_of="2024-01-31")
    assert rfm.index.tolist() == ["a"]
    assert rfm.loc["a", "frequency"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_unit": "M"}, "time_unit must be one of"),
        ({"unit_multiplier": 0}, "unit_multiplier must be a positive number"),
        ({"as_of": "not a date"}, "Cannot read as_of='not a date' as a date"),
        ({"as_of": "1990-01-01"}, "No transaction on or before as_of=1990-01-01"),
    ],
)
def test_rfm_summary_errors(cdnow_sample, kwargs, message):
    kwargs = {"as_of": "1997-09-30", **kwargs}
    with pytest.raises(FeatureError, match=message):
        rfm_summary(cdnow_sample, **kwargs)


def test_rfm_summary_names_missing_columns():
    frame = pd.DataFrame(
        {"client": ["a"], "timestamp": [pd.Timestamp("2024-01-01")], "amount": [1.0]}
    )
    with pytest.raises(FeatureError, match=r"lack the column\(s\) \['customer_id'\].*found"):
        rfm_summary(frame, as_of="2024-01-02")


def test_calibration_holdout_errors(cdnow_sample):
    with pytest.raises(FeatureError, match="must be after calibration_end"):
        calibration_holdout(
            cdnow_sample, calibration_end="1998-01-01", observation_end="1997-01-01"
        )
    with pytest.raises(FeatureError, match="holdout period is empty"):
        calibration_holdout(
            cdnow_sample, calibration_end="1998-07-01", observation_end="1998-12-31"
        )


# Property tests on random small logs.
_logs = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "00042"]),
        st.integers(min_value=0, max_value=120),  # day offset
        st.integers(min_value=0, max_value=23),  # hour
        st.floats(min_value=0.01, max_value=1e4, allow_nan=False),
    ),
    min_size=1,
    max_size=40,
)


def _frame(rows) -> pd.DataFrame:
    ids, days, hours, amounts = zip(*rows, strict=True)
    stamps = (
        pd.Timestamp("2024-01-01")
        + pd.to_timedelta(days, unit="D")
        + pd.to_timedelta(hours, unit="h")
    )
    return pd.DataFrame({"customer_id": list(ids), "timestamp": stamps, "amount": list(amounts)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_logs, as_of_day=st.integers(min_value=0, max_value=150), seed=st.integers(0, 2**16))
def test_rfm_properties(rows, as_of_day, seed):
    log = _frame(rows)
    as_of = pd.Timestamp("2024-01-01") + pd.Timedelta(days=as_of_day)
    if (log["timestamp"].dt.normalize() > as_of).all():
        return
    rfm = rfm_summary(log, as_of=as_of)
    assert ((rfm["recency"] >= 0) & (rfm["recency"] <= rfm["T"])).all()
    seen = log[log["timestamp"].dt.normalize() <= as_of]
    distinct_days = seen.groupby("customer_id")["timestamp"].apply(
        lambda s: s.dt.normalize().nunique()
    )
    assert (rfm["frequency"] < distinct_days.loc[rfm.index]).all()
    assert (rfm["n_orders"] >= rfm["frequency"] + 1).all()

    shuffled = log.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        rfm_summary(shuffled, as_of=as_of), rfm, check_exact=False, rtol=1e-12
    )

    later = pd.DataFrame(
        {
            "customer_id": ["a", "zz"],
            "timestamp": [as_of + pd.Timedelta(days=1)] * 2,
            "amount": [5.0, 6.0],
        }
    )
    extended = pd.concat([log, later], ignore_index=True)
    pd.testing.assert_frame_equal(rfm_summary(extended, as_of=as_of), rfm)


def test_input_is_not_mutated(cdnow_sample):
    before = cdnow_sample.copy()
    rfm_summary(cdnow_sample, as_of="1997-06-30")
    calibration_holdout(cdnow_sample, calibration_end="1997-06-30", observation_end="1997-12-31")
    pd.testing.assert_frame_equal(cdnow_sample, before)


def test_missing_values_are_refused_with_a_count():
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "timestamp": pd.to_datetime(["2024-01-01", None, None]),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    with pytest.raises(FeatureError, match=r"'timestamp' has 2 missing value\(s\)"):
        rfm_summary(frame, as_of="2024-01-02")


@pytest.mark.parametrize(
    "ids",
    [
        ["b", "a", "c", "a"],
        ["00042", "00007", "10000", "00042", "99999"],
        ["é1", "zz", "e2", "é1", "~~"],  # two bytes each, one of them non-ASCII
        ["12345678", "12345677", "02345678"],  # the full eight bytes
        ["abc", "ab", "b"],  # mixed widths, compared position by position
        ["a\x00", "a", "a\x00b", "b"],  # a NUL byte sorts after "the id has ended"
        ["", "a", ""],
        ["000000000042", "000000000007", "100000000000"],  # decimal, two 8-digit halves
        ["1" * 19, "0" * 19, "1" * 18 + "0"],  # too many digits for 64 bits with rows
        ["x" * 17 + "a", "x" * 17, "y"],  # mixed widths past 16 bytes: hashed
    ],
)
def test_customer_codes_follow_the_sorted_order_of_the_ids(ids):
    from segml.features._codes import _customer_codes

    codes, sorted_ids = _customer_codes(pd.Series(ids, dtype="str"))
    expected = sorted(set(ids), key=str.encode)  # byte order
    assert sorted_ids.to_pylist() == expected
    assert codes.tolist() == [expected.index(i) for i in ids]


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.lists(st.integers(0, 10**9).map("{:09d}".format), min_size=1, max_size=40),
        st.lists(st.integers(0, 10**6).map(str), min_size=1, max_size=40),
        st.lists(st.text(alphabet="ab0\x00é~", max_size=6), min_size=1, max_size=40),
        st.lists(st.text(alphabet="abcdefghij", min_size=4, max_size=4), min_size=1),
    )
)
def test_customer_codes_match_sorting_the_ids_on_every_path(ids):
    """Decimal, mixed-radix and hashed ids: codes are ranks in byte order."""
    from segml.features._codes import _customer_codes

    codes, sorted_ids = _customer_codes(pd.Series(ids, dtype="str"))
    expected = sorted(set(ids), key=str.encode)
    rank = {value: i for i, value in enumerate(expected)}
    assert sorted_ids.to_pylist() == expected
    assert codes.tolist() == [rank[i] for i in ids]
