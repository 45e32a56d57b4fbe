"""RetentionModel (shifted-beta-geometric): Fader & Hardie (2007) estimates and projections."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln

from segml.models import RetentionInputError, RetentionModel, survivors_to_tenure

# Fader & Hardie (2007), "How to project customer retention", Table 1, years 0-7.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


@pytest.mark.parametrize(
    ("survivors", "alpha", "beta"), [(REGULAR, "0.704", "1.182"), (HIGH_END, "0.668", "3.806")]
)
def test_reproduces_the_published_estimates(survivors, alpha, beta):
    model = RetentionModel().fit_survivors(survivors)
    assert f"{model.params_['alpha']:.3f}" == alpha
    assert f"{model.params_['beta']:.3f}" == beta
    assert model.n_customers_ == 1000
    assert all(np.isfinite(v) and v > 0 for v in model.standard_errors_.values())


def test_projected_survival_follows_the_published_parameters():
    model = RetentionModel().fit_survivors(REGULAR)
    # Projection to year 12 (the paper's figure): S(t) = B(alpha, beta+t) / B(alpha, beta).
    t = np.arange(13)
    a, b = 0.704, 1.182
    published = np.exp(betaln(a, b + t) - betaln(a, b))
    np.testing.assert_allclose(model.survival(t), published, rtol=2e-3)
    assert (1000 * model.survival([8, 12])).round().tolist() == [220.0, 170.0]
    # The recursions of eq. 3-6 agree with the closed forms.
    s = model.survival(t)
    np.testing.assert_allclose(model.retention_rate(t[1:]), s[1:] / s[:-1], rtol=1e-12)
    np.testing.assert_allclose(model.churn_pmf(t[1:]), s[:-1] - s[1:], rtol=1e-10)
    # Heterogeneity: the retention rate rises with tenure.
    assert np.all(np.diff(model.retention_rate(t[1:])) > 0)


def test_per_customer_rows_equal_the_cohort_counts():
    table = survivors_to_tenure(REGULAR)
    one_row_each = table.loc[table.index.repeat(table["count"])].drop(columns="count")
    grouped = RetentionModel().fit(table)
    expanded = RetentionModel().fit(one_row_each.reset_index(drop=True))
    np.testing.assert_allclose(
        list(expanded.params_.values()), list(grouped.params_.values()), rtol=1e-7
    )
    assert expanded.log_likelihood_ == pytest.approx(grouped.log_likelihood_, rel=1e-12)
    assert grouped.log_likelihood(table) == pytest.approx(grouped.log_likelihood_, rel=1e-12)


def test_derl_equals_the_discounted_sum_it_stands_for():
    model = RetentionModel().fit_survivors(HIGH_END)
    a, b = model.params_["alpha"], model.params_["beta"]
    table = pd.DataFrame({"tenure": [0, 1, 4, 2], "churned": [False, False, False, True]})
    derl = model.derl(table, discount_rate=0.1)
    k = np.arange(2000)  # 1.1 ** -2000 is far below rounding
    for tenure, value in zip(table["tenure"][:3], derl[:3], strict=True):
        n = tenure + 1
        direct = np.sum(np.exp(betaln(a, b + n + k) - betaln(a, b + n - 1)) / 1.1**k)
        assert value == pytest.approx(direct, rel=1e-10)
    assert derl.iloc[3] == 0.0
    # Longer tenure, longer expected residual lifetime (the loyal remain).
    assert derl.iloc[0] < derl.iloc[1] < derl.iloc[2]


def test_round_trip_and_bad_input():
    model = RetentionModel().fit_survivors(REGULAR)
    loaded = RetentionModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert loaded.params_ == model.params_
    np.testing.assert_array_equal(loaded.survival(range(10)), model.survival(range(10)))
    with pytest.raises(RetentionInputError, match="never increase"):
        survivors_to_tenure([1000, 1200, 500])
    bad = pd.DataFrame({"tenure": [0, 2, 3], "churned": [True, False, True]})
    with pytest.raises(RetentionInputError, match=r"1 of 3 churned customers have tenure 0"):
        RetentionModel().fit(bad)
    with pytest.raises(RetentionInputError, match="None of the 2 customers churned"):
        RetentionModel().fit(pd.DataFrame({"tenure": [1, 2], "churned": [False, False]}))
