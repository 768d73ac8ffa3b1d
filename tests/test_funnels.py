"""The bottom-up fit to task-force funnels: how counts enter, the grid posterior with a size
effect, and the leave-one-unit-out check against two baselines."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import betabinom

from tipline import load
from tipline.estimates import funnels

FIXTURE = Path(__file__).parent / "fixtures" / "task_force_funnels.csv"


@pytest.fixture(scope="module")
def fixture_rows() -> pd.DataFrame:
    return pd.read_csv(FIXTURE, keep_default_na=False)


def _unit(name, tips, count, attribution="from_tips", qualifier="exact", start="2020-01-01", end="2020-12-31",
          measure="arrests", tips_qualifier="exact", tips_measure="tips_received"):
    base = dict(unit=name, unit_name=name.title(), state="XX", scope="test", period="calendar_year", period_start=start,
                period_end=end, source_id="test", locator="here", grade="secondary", note="")
    return [dict(base, measure=tips_measure, value=tips, qualifier=tips_qualifier, attribution="not_applicable"),
            dict(base, measure=measure, value=count, qualifier=qualifier, attribution=attribution)]


def _units(pairs, **kwargs):
    return pd.DataFrame([r for i, (n, y) in enumerate(pairs) for r in _unit(f"u{i}", n, y, **kwargs)])


# rates that fall with volume as tips^-0.5: 10% at 300 tips, about 3.2% at 3,000, 1% at 30,000
FALLING = [(300, 30), (600, 42), (1000, 55), (2000, 77), (3000, 95), (6000, 134), (10000, 173), (30000, 300)]


def test_counts_enter_as_what_they_are(fixture_rows):
    table = funnels.observations(fixture_rows).set_index(["unit", "period_start", "stage"])
    assert table.loc[("ne_florida_intercept", "2023-01-01", "investigations"), "kind"] == "exact"
    assert table.loc[("sw_missouri_cctf", "2019-01-01", "arrests"), "kind"] == "at_most"       # all of the unit's work
    assert table.loc[("nebraska_icac", "2019-01-01", "arrests"), "kind"] == "at_most"          # attribution unknown
    houston = table.loc[("houston_metro_icac", "2010-01-01", "investigations")]
    assert not houston["usable"] and "above the tips" in houston["why_not"]                   # 539 investigations, 417 tips
    # cases opened from all work are an investigation count too: 899 cases on 519 tips bound nothing
    missouri = table.loc[("sw_missouri_cctf", "2019-01-01", "investigations")]
    assert missouri["measure"] == "cases_opened" and not missouri["usable"]
    # "more than 13,353 tips" is a lower bound on the tips
    assert table.loc[("illinois_ag_icac", "2019-01-01", "arrests"), "tips_side"] == 1


def test_lower_bounds_enter_as_lower_bounds_and_bound_nothing_for_all_work():
    rows = pd.DataFrame(_unit("a", 500, 150, attribution="all_work", qualifier="more_than"))
    assert not funnels.observations(rows).iloc[0]["usable"]
    for qualifier in ("more_than", "at_least"):
        rows = pd.DataFrame(_unit("b", 500, 150, attribution="from_tips", qualifier=qualifier))
        assert funnels.observations(rows).iloc[0]["kind"] == "at_least"


def test_tips_investigated_count_as_tips_handled_only_without_a_count_received():
    rows = pd.DataFrame(_unit("a", 4534, 468, attribution="unknown", tips_measure="tips_investigated"))
    row = funnels.observations(rows).iloc[0]
    assert row["tips"] == 4534 and row["tips_measure"] == "tips_investigated" and row["kind"] == "at_most"
    both = pd.concat([rows, pd.DataFrame(_unit("a", 5000, 468)[:1])])
    assert funnels.observations(both).iloc[0]["tips"] == 5000


def test_conflicting_sources_prefer_the_better_grade():
    rows = pd.DataFrame(_unit("a", 1000, 40) + [dict(_unit("a", 1000, 90)[1], grade="primary", source_id="agency")])
    assert funnels.observations(rows).iloc[0]["count"] == 90
    beaten = funnels.left_out(rows)
    assert len(beaten) == 1 and beaten.iloc[0]["value"] == 40 and "preferred" in beaten.iloc[0]["why_not"]


def test_every_row_of_the_funnel_data_is_used_or_left_out_with_a_reason():
    rows = load("task_force_funnels")
    table = funnels.observations(rows)
    used = {i for pair in table.loc[table["usable"], "rows"] for i in pair}
    out = funnels.left_out(rows)
    assert not used & set(out.index), "a row both used and left out"
    assert used | set(out.index) == set(rows.index), "a row neither used nor left out"
    assert (out["why_not"].str.len() > 10).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 400), st.integers(1, 30_000), st.floats(0.001, 50), st.floats(0.01, 5_000))
def test_the_term_by_term_cdf_is_the_beta_binomial_cdf(count, tips, a, b):
    count = min(count, tips)
    reference = betabinom.logcdf(count, tips, a, b)
    ours = funnels.log_cdf(count, tips, np.array([a]), np.array([b]))[0]
    if np.isfinite(reference) and reference > -700:
        assert ours == pytest.approx(reference, abs=1e-7)
    assert ours <= 0


def test_a_more_than_count_of_tips_averages_over_its_rounding_unit():
    exact = [funnels.loglik(n, 30, "exact", "no_size") for n in (3000, 3500, 4000)]
    averaged = funnels.loglik(3000, 30, "exact", "no_size", tips_side=1)
    assert np.allclose(averaged, logsumexp(np.stack(exact), axis=0) - np.log(3))


def test_the_size_model_recovers_a_falling_rate_and_is_deterministic():
    table = funnels.observations(_units(FALLING))
    fitted = funnels.fit(table, "arrests", "size")
    assert fitted.weights.sum() == pytest.approx(1)
    slope = fitted.slope()
    assert slope["low"] < -0.5 < slope["high"] and slope["high"] < -0.2
    small, large = fitted.mean_rate_at(300), fitted.mean_rate_at(30_000)
    assert small["median"] == pytest.approx(0.1, rel=0.35) and large["median"] == pytest.approx(0.01, rel=0.5)
    # a new unit's rate spreads around the mean rate; an average over many units spreads less
    new, many = fitted.predictive_at(3000), fitted.average_of_units(3000, 61)
    assert new["low"] < many["low"] <= many["median"] <= many["high"] < new["high"]
    assert funnels.fit(table, "arrests", "size").predictive_at(3000) == new


def test_without_the_size_term_the_slope_is_zero_and_the_rate_does_not_move():
    fitted = funnels.fit(funnels.observations(_units(FALLING)), "arrests", "no_size")
    assert fitted.slope() == {"median": 0.0, "low": 0.0, "high": 0.0, "level": funnels.LEVEL}
    assert fitted.mean_rate_at(300) == fitted.mean_rate_at(30_000)


def test_an_upper_bound_can_only_pull_the_rate_down():
    rows = _units([(1000, 98), (800, 83), (1200, 118)])
    without = funnels.fit(funnels.observations(rows), "arrests", "no_size").mean_rate_at(1000)["median"]
    bounded = pd.concat([rows, pd.DataFrame(_unit("proactive", 1000, 40, attribution="all_work"))])
    assert funnels.fit(funnels.observations(bounded), "arrests", "no_size").mean_rate_at(1000)["median"] < without
    loose = pd.concat([rows, pd.DataFrame(_unit("loose", 1000, 990, attribution="all_work"))])
    with_loose = funnels.fit(funnels.observations(loose), "arrests", "no_size").mean_rate_at(1000)["median"]
    assert with_loose == pytest.approx(without, abs=0.01)


def test_a_stage_with_too_few_unit_periods_is_not_fitted():
    rows = _units([(100, 10)] * (funnels.MIN_UNITS - 1))
    assert funnels.fit(funnels.observations(rows), "arrests") is None


def test_leaving_one_unit_out_scores_the_size_model_above_its_baselines_when_rates_fall_with_volume():
    table = funnels.observations(_units(FALLING))
    scores = {model: funnels.cross_validate(funnels.fit(table, "arrests", model)) for model in funnels.MODELS}
    total = {model: frame["log_score"].sum() for model, frame in scores.items()}
    assert total["size"] > total["no_size"] > total["pooled"]
    assert (scores["size"]["figures"] == 1).all() and len(scores["size"]) == len(FALLING)


def test_leaving_one_unit_out_flags_a_unit_unlike_the_others():
    rows = pd.concat([_units([(1000, 98), (800, 83), (1200, 118), (500, 52), (900, 88)]),
                      pd.DataFrame(_unit("far", 1000, 700))])
    scores = funnels.cross_validate(funnels.fit(funnels.observations(rows), "arrests", "no_size")).set_index("unit")
    assert scores.loc["far", "inside"] == 0 and scores.drop("far")["inside"].sum() >= 4
    assert scores.loc["far", "log_score"] < scores.drop("far")["log_score"].min() - 10
    # a bound is checked from its one side: a high ceiling is consistent, a low one is not
    high = pd.concat([rows.iloc[:10], pd.DataFrame(_unit("ceiling", 1000, 700, attribution="all_work"))])
    low = pd.concat([rows.iloc[:10], pd.DataFrame(_unit("ceiling", 1000, 5, attribution="all_work"))])
    for frame, inside in ((high, 1), (low, 0)):
        scored = funnels.cross_validate(funnels.fit(funnels.observations(frame), "arrests", "no_size")).set_index("unit")
        assert scored.loc["ceiling", "inside"] == inside


def test_investigations_conducted_bound_the_cases_opened_and_other_tips_are_not_tips():
    conducted = pd.DataFrame(_unit("a", 1000, 400, attribution="from_tips", measure="investigations_conducted"))
    row = funnels.observations(conducted).iloc[0]
    assert row["stage"] == "investigations" and row["kind"] == "at_most"  # cases worked on include older ones
    other = pd.DataFrame(_unit("b", 3000, 700, tips_measure="cybercrime_tips_received", measure="investigations_opened"))
    assert funnels.observations(other).empty
    out = funnels.left_out(other).set_index("measure")
    assert "not CyberTipline reports" in out.loc["cybercrime_tips_received", "why_not"]
    assert out.loc["investigations_opened", "why_not"] == "no count of tips for the same unit and period"


def test_mixture_quantiles_match_a_known_distribution_and_stay_in_the_unit_interval():
    """The quantile search finds a beta distribution's quantiles to 1e-9, and a distribution with
    mass below 0 (a normal approximation near 0) gets a lower quantile of 0, not an error."""
    from scipy.stats import beta, norm

    found = funnels._mixture_quantiles(lambda p: beta.cdf(p, 2, 30), 0.9)
    for key, q in (("median", 0.5), ("low", 0.05), ("high", 0.95)):
        assert abs(found[key] - beta.ppf(q, 2, 30)) < 1e-9, (key, found[key])
    near_zero = funnels._mixture_quantiles(lambda p: norm.cdf((p - 0.01) / 0.02), 0.9)
    assert near_zero["low"] == 0.0 and abs(near_zero["median"] - 0.01) < 1e-9 and near_zero["high"] < 1
