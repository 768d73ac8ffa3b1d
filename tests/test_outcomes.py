"""The outcome model: properties that must hold for any input, and its use of data/."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipline import outcomes

reports = st.floats(1, 1e8)
counts = st.floats(0, 1e7)
share = st.floats(0, 1)
per_case = st.floats(1, 20)
lag = st.floats(0.5, 2)


@st.composite
def settings_(draw):
    investigations = draw(counts)
    arrests = draw(st.floats(0, 1)) * investigations
    return dict(reports=draw(reports), investigations=investigations, arrests=arrests,
                cybertip_share=draw(share), reports_per_investigation=draw(per_case), lag_factor=draw(lag))


@settings(max_examples=300, deadline=None)
@given(settings_())
def test_shares_are_fractions_that_sum_to_one(setting):
    shares = outcomes.outcome_shares(**setting)
    values = np.array([shares[o] for o in outcomes.OUTCOMES], dtype=float)
    assert ((values >= -1e-12) & (values <= 1 + 1e-12)).all()
    assert values.sum() == pytest.approx(1)


@settings(max_examples=200, deadline=None)
@given(settings_(), st.sampled_from(["cybertip_share", "reports_per_investigation", "lag_factor", "investigations"]),
       st.floats(1, 3))
def test_more_capacity_never_means_fewer_reports_investigated(setting, name, factor):
    before = outcomes.outcome_shares(**setting)
    bigger = dict(setting, **{name: setting[name] * factor})
    if name == "cybertip_share":
        bigger[name] = min(1.0, bigger[name])
    after = outcomes.outcome_shares(**bigger)
    assert after["never_investigated"] <= before["never_investigated"] + 1e-12
    if name != "investigations":
        assert after["arrest"] >= before["arrest"] - 1e-12


@settings(max_examples=200, deadline=None)
@given(settings_(), st.floats(1, 3))
def test_more_reports_mean_a_larger_share_never_investigated(setting, factor):
    before = outcomes.outcome_shares(**setting)
    after = outcomes.outcome_shares(**dict(setting, reports=setting["reports"] * factor))
    assert after["never_investigated"] >= before["never_investigated"] - 1e-12
    assert after["arrest"] <= before["arrest"] + 1e-12


def test_degenerate_settings_give_the_obvious_answer():
    none = outcomes.outcome_shares(1000, 500, 50, cybertip_share=0, reports_per_investigation=3)
    assert none["never_investigated"] == 1 and none["arrest"] == 0
    flood = outcomes.outcome_shares(1000, 5000, 50, cybertip_share=1, reports_per_investigation=1)
    assert flood["never_investigated"] == 0
    assert flood["arrest"] == pytest.approx(0.05)
    everyone = outcomes.outcome_shares(1000, 1000, 1000, cybertip_share=1, reports_per_investigation=1)
    assert everyone["arrest"] == 1


def test_impossible_inputs_are_refused():
    with pytest.raises(ValueError, match="positive"):
        outcomes.outcome_shares(0, 10, 1, 0.5, 1)
    with pytest.raises(ValueError, match="exceed"):
        outcomes.outcome_shares(100, 10, 11, 0.5, 1)


def test_rounding_unit_of_more_than_counts():
    assert outcomes._rounding_unit(12600) == 100
    assert outcomes._rounding_unit(137000) == 1000
    assert outcomes._rounding_unit(203467) == 1


def test_monte_carlo_is_reproducible_and_stays_inside_the_ranges():
    year = outcomes.years()[-1]
    first, second = outcomes.draw(year, draws=2000), outcomes.draw(year, draws=2000)
    assert first.equals(second)
    ranges = outcomes.assumptions()
    for name in outcomes.PARAMETERS:
        assert first[name].between(ranges.loc[name, "low"], ranges.loc[name, "high"]).all()
    assert (first["conviction"] <= first["arrest"]).all()
    result = outcomes.summary(first)
    assert (result["low"] <= result["median"]).all() and (result["median"] <= result["high"]).all()
    assert result["mode_share"].dropna().sum() == pytest.approx(1)


def test_the_model_reads_its_inputs_from_data():
    year = outcomes.years()[-1]
    given_ = outcomes.inputs(year)
    recipients = outcomes.load("recipients").query("year == @year and label == 'actionable'")
    expected = recipients[recipients["recipient"].isin(["icac", "local"])]["reports"].sum()
    assert given_.reports[outcomes.MAIN] == expected
    assert given_.arrests < given_.investigations


def test_sensitivity_swings_are_ordered_and_bounded():
    table = outcomes.sensitivity(outcomes.years()[-1])
    assert list(table["swing"]) == sorted(table["swing"], reverse=True)
    assert table[["at_low", "at_high"]].stack().between(0, 1).all()


def test_verdict_wording_never_overstates():
    import pandas as pd
    assert outcomes.verdict(pd.Series({"never_investigated": 1.0, "investigated_no_arrest": 0.0, "arrest": 0.0})) \
        == "never investigated in all plausible settings"
    assert "depends" in outcomes.verdict(pd.Series({"never_investigated": 0.99, "investigated_no_arrest": 0.01, "arrest": 0}))
    assert outcomes.verdict(pd.Series({"never_investigated": 0.4, "investigated_no_arrest": 0.35, "arrest": 0.25})) \
        .startswith("depends on the assumptions")
