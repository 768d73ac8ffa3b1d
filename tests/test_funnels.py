"""The bottom-up fit to task-force funnels: how counts enter, the grid posterior, the held-out check."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import betabinom

from tipline.estimates import funnels

FIXTURE = Path(__file__).parent / "fixtures" / "task_force_funnels.csv"


@pytest.fixture(scope="module")
def fixture_rows() -> pd.DataFrame:
    return pd.read_csv(FIXTURE, keep_default_na=False)


def _unit(name, tips, count, attribution="from_tips", qualifier="exact", start="2020-01-01", end="2020-12-31", measure="arrests"):
    base = dict(unit=name, unit_name=name.title(), state="XX", scope="test", period="calendar_year", period_start=start,
                period_end=end, source_id="test", locator="here", grade="secondary", note="")
    return [dict(base, measure="tips_received", value=tips, qualifier="exact", attribution="not_applicable"),
            dict(base, measure=measure, value=count, qualifier=qualifier, attribution=attribution)]


def test_counts_enter_as_what_they_are(fixture_rows):
    table = funnels.observations(fixture_rows).set_index(["unit", "period_start", "stage"])
    assert table.loc[("ne_florida_intercept", "2023-01-01", "investigations"), "kind"] == "exact"
    assert table.loc[("sw_missouri_cctf", "2019-01-01", "arrests"), "kind"] == "at_most"       # all of the unit's work
    assert table.loc[("nebraska_icac", "2019-01-01", "arrests"), "kind"] == "at_most"          # attribution unknown
    houston = table.loc[("houston_metro_icac", "2010-01-01", "investigations")]
    assert not houston["usable"] and "above the tips" in houston["why_not"]                   # 539 investigations, 417 tips
    # cases opened (all work) are not an investigation count of tips
    assert ("sw_missouri_cctf", "2019-01-01", "investigations") not in table.index


def test_more_than_a_count_of_all_work_bounds_nothing():
    rows = pd.DataFrame(_unit("a", 500, 150, attribution="all_work", qualifier="more_than"))
    row = funnels.observations(rows).iloc[0]
    assert not row["usable"]
    rows = pd.DataFrame(_unit("b", 500, 150, attribution="from_tips", qualifier="more_than"))
    assert funnels.observations(rows).iloc[0]["kind"] == "at_least"


def test_conflicting_sources_prefer_the_better_grade():
    rows = pd.DataFrame(_unit("a", 1000, 40) + [dict(_unit("a", 1000, 90)[1], grade="primary", source_id="agency")])
    assert funnels.observations(rows).iloc[0]["count"] == 90


def test_the_held_out_rule_takes_latest_periods_and_the_newest_year(fixture_rows):
    table = funnels.observations(fixture_rows)
    held = table[funnels.held_out(table)]
    assert set(zip(held["unit"], held["period_start"], held["stage"])) == {
        # the latest period of units with several
        ("nebraska_icac", "2020-01-01", "investigations"), ("nebraska_icac", "2020-01-01", "arrests"),
        ("sw_missouri_cctf", "2019-01-01", "arrests"),
        # everything ending in the newest year of the fixture (2023)
        ("ne_florida_intercept", "2023-01-01", "investigations"), ("ne_florida_intercept", "2023-01-01", "warrants"),
        ("ne_florida_intercept", "2023-01-01", "arrests"), ("ne_florida_intercept", "2023-01-01", "charges")}


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 60), st.integers(1, 300), st.floats(0.05, 20), st.floats(0.05, 200))
def test_the_term_by_term_cdf_is_the_beta_binomial_cdf(count, tips, a, b):
    count = min(count, tips)
    ours = funnels.log_cdf(count, tips, np.array([a]), np.array([b]))[0]
    assert ours == pytest.approx(betabinom.logcdf(count, tips, a, b), abs=1e-9)


def test_the_fit_recovers_a_known_rate_and_is_deterministic():
    rows = [r for i, (n, y) in enumerate([(1000, 98), (800, 83), (1200, 118), (500, 52), (900, 88), (700, 71)])
            for r in _unit(f"u{i}", n, y)]
    table = funnels.observations(pd.DataFrame(rows))
    fitted = funnels.fit(table, "arrests")
    assert fitted.weights.sum() == pytest.approx(1)
    mean = fitted.mean_rate()
    assert mean["low"] < 0.1 < mean["high"] and mean["median"] == pytest.approx(0.1, abs=0.01)
    new = fitted.predictive()
    assert new["low"] <= mean["median"] <= new["high"]
    assert funnels.fit(table, "arrests").predictive() == new


def test_an_upper_bound_can_only_pull_the_rate_down():
    rows = [r for i, (n, y) in enumerate([(1000, 98), (800, 83), (1200, 118)]) for r in _unit(f"u{i}", n, y)]
    without = funnels.fit(funnels.observations(pd.DataFrame(rows)), "arrests").mean_rate()["median"]
    bounded = rows + _unit("proactive", 2000, 40, attribution="all_work")
    with_bound = funnels.fit(funnels.observations(pd.DataFrame(bounded)), "arrests").mean_rate()["median"]
    assert with_bound < without
    loose = rows + _unit("loose", 2000, 1900, attribution="all_work")  # a bound far above any rate says almost nothing
    with_loose = funnels.fit(funnels.observations(pd.DataFrame(loose)), "arrests").mean_rate()["median"]
    assert with_loose == pytest.approx(without, abs=0.01)


def test_a_stage_with_too_few_unit_periods_is_not_fitted():
    rows = [r for i in range(funnels.MIN_UNITS - 1) for r in _unit(f"u{i}", 100, 10)]
    assert funnels.fit(funnels.observations(pd.DataFrame(rows)), "arrests") is None


def test_validation_flags_a_held_out_figure_outside_the_interval():
    rows = [r for i, (n, y) in enumerate([(1000, 98), (800, 83), (1200, 118), (500, 52), (900, 88)]) for r in _unit(f"u{i}", n, y)]
    fitted = funnels.fit(funnels.observations(pd.DataFrame(rows)), "arrests")
    far = funnels.observations(pd.DataFrame(_unit("far", 1000, 700) + _unit("near", 1000, 101, start="2021-01-01", end="2021-12-31")))
    checked = funnels.validate(fitted, far).set_index("unit")
    assert not checked.loc["far", "covered"] and checked.loc["near", "covered"]
    # a bound is checked from its one side only
    bound = funnels.observations(pd.DataFrame(_unit("bound", 1000, 700, attribution="all_work")))
    assert funnels.validate(fitted, bound).iloc[0]["covered"]


def test_the_book_data_fits_both_main_stages_without_seeing_the_held_out_rows():
    result = funnels.run()
    for stage in ("investigations", "arrests"):
        fitted = result.fits[stage]
        assert fitted is not None
        seen = set(zip(fitted.data["unit"], fitted.data["period_start"]))
        held = result.table[result.table["held_out"] & (result.table["stage"] == stage)]
        assert not seen & set(zip(held["unit"], held["period_start"])), f"{stage}: a held-out row was fitted"
    fitted_stages = [stage for stage, fitted in result.fits.items() if fitted is not None]
    held = result.table["held_out"] & result.table["usable"] & result.table["stage"].isin(fitted_stages)
    assert len(result.validation) == int(held.sum()) > 0
