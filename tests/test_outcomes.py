"""The top-down outcome model: properties that must hold for any input, and its use of data/."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tipline import load
from tipline.estimates import outcomes

reports = st.floats(1e3, 1e7)
share = st.floats(0.01, 1)
per_case = st.floats(1, 20)
growth = st.floats(0, 0.3)
lag = st.floats(0, 1)


@st.composite
def settings_(draw):
    """One setting of the identity: national counts, the terms, and the reports they reach."""
    investigations = draw(st.floats(1e2, 1e6))
    arrests = draw(st.floats(0, 1)) * investigations
    return dict(reports=draw(reports), investigations=investigations, arrests=arrests,
                share_i=draw(share), share_a=draw(share), per_investigation=draw(per_case), per_arrest=draw(per_case),
                growth_i=draw(growth), growth_a=draw(growth), lag_i=draw(lag), lag_a=draw(lag))


def _reached(s):
    investigated = outcomes.reach(s["investigations"], s["share_i"], s["per_investigation"], s["growth_i"], s["lag_i"])
    arrested = outcomes.reach(s["arrests"], s["share_a"], s["per_arrest"], s["growth_a"], s["lag_a"])
    return float(investigated), float(arrested)


@settings(max_examples=300, deadline=None)
@given(settings_())
def test_possible_settings_give_fractions_and_impossible_ones_are_refused(s):
    investigated, arrested = _reached(s)
    if outcomes.possible(s["reports"], investigated, arrested):
        shares = outcomes.outcome_shares(s["reports"], investigated, arrested)
        values = np.array([shares[o] for o in outcomes.OUTCOMES])
        assert ((values >= -1e-12) & (values <= 1 + 1e-12)).all()
        assert values.sum() == pytest.approx(1)
    else:  # rejected, never clipped into "everything investigated"
        with pytest.raises(ValueError, match="impossible"):
            outcomes.outcome_shares(s["reports"], investigated, arrested)


@settings(max_examples=300, deadline=None)
@given(st.floats(1e3, 1e7), st.floats(1e-4, 1), st.floats(0, 0.2), st.floats(1, 10))
def test_never_investigated_is_the_mode_exactly_below_the_threshold(reports_, reach_share, arrest_share, m):
    """With c reports reached per unit of reports-per-case, never investigated comes first iff m < X."""
    c = reach_share * reports_ / 4
    arrested = arrest_share * min(reports_, m * c)
    assume(outcomes.possible(reports_, m * c, arrested))
    x = float(outcomes.threshold(reports_, c, arrested))
    assume(abs(m - x) > 1e-6 * x)  # away from an exact tie
    shares = outcomes.outcome_shares(reports_, m * c, arrested)
    first = max(outcomes.OUTCOMES, key=lambda o: shares[o])
    assert (first == "never_investigated") == (m < x)


@settings(max_examples=200, deadline=None)
@given(settings_(), st.floats(1.01, 3))
def test_more_reports_per_case_means_fewer_never_investigated(s, factor):
    before_inv, arrested = _reached(s)
    bigger = dict(s, per_investigation=s["per_investigation"] * factor)
    after_inv, _ = _reached(bigger)
    assume(outcomes.possible(s["reports"], after_inv, arrested) and outcomes.possible(s["reports"], before_inv, arrested))
    before = outcomes.outcome_shares(s["reports"], before_inv, arrested)["never_investigated"]
    after = outcomes.outcome_shares(s["reports"], after_inv, arrested)["never_investigated"]
    assert after < before


def test_the_fiscal_offset_moves_counts_forward_by_their_own_growth():
    # a fiscal year is centred a quarter before the calendar year: with no lag, counts still grow by a quarter-year
    assert outcomes.FISCAL_LEAD == 0.25
    assert outcomes.reach(100, 1, 1, 0.1, 0) == pytest.approx(100 * 1.1 ** 0.25)
    assert outcomes.reach(100, 1, 1, 0.1, 0.5) > outcomes.reach(100, 1, 1, 0.1, 0)
    rows = load("downstream").query("agency == 'icac' and measure == 'arrests' and period == 'fiscal_year' and period_start == period_end")
    series = rows.set_index("period_end")["value"]
    first, last = series.index.min(), series.index.max()
    expected = (series[last] / series[first]) ** (1 / (last - first)) - 1
    given_ = outcomes.inputs(outcomes.years()[-1])
    assert given_.arrest_growth == pytest.approx(expected)
    assert given_.arrest_growth != pytest.approx(given_.growth)  # arrests are not scaled by investigations' growth


def test_draws_that_investigate_more_reports_than_exist_are_rejected_not_clipped():
    priors = outcomes.assumptions().copy()
    # a deliberately wide prior so that some draws are impossible
    priors.loc["reports_per_investigation", ["distribution", "low", "high"]] = ["uniform", 1, 40]
    frame = outcomes.draw(outcomes.years()[0], draws=4000, priors=priors)
    assert 0 < outcomes.acceptance(frame) < 1
    rejected = frame[~frame["accepted"]]
    assert rejected["never_investigated"].isna().all()
    accepted = outcomes.accepted_draws(frame)
    assert (accepted["never_investigated"] >= 0).all() and (accepted["arrest"] <= 1 - accepted["never_investigated"] + 1e-12).all()
    assert (accepted["never_investigated"] > 0).all(), "an accepted draw investigated every report: clipping, not rejection"
    result = outcomes.summary(frame)
    assert result.loc["never_investigated", "median"] == pytest.approx(accepted["never_investigated"].median())


def test_monte_carlo_is_reproducible_and_stays_inside_the_priors():
    year = outcomes.years()[-1]
    first, second = outcomes.draw(year, draws=2000), outcomes.draw(year, draws=2000)
    assert first.equals(second)
    priors = outcomes.assumptions()
    for name in outcomes.PARAMETERS:
        assert first[name].between(priors.loc[name, "low"], priors.loc[name, "high"]).all(), name
    accepted = outcomes.accepted_draws(first)
    assert (accepted["conviction"] <= accepted["arrest"]).all()
    result = outcomes.summary(first)
    assert (result["low"] <= result["median"]).all() and (result["median"] <= result["high"]).all()
    assert result["mode_share"].dropna().sum() == pytest.approx(1)


def test_priors_match_their_stated_shape():
    priors = outcomes.assumptions()
    rng = np.random.default_rng(1)
    for name in outcomes.PARAMETERS:
        row = priors.loc[name]
        if row["distribution"] == "beta":
            assert row["a"] > 0 and row["b"] > 0, f"{name}: a beta prior needs both shape parameters"
        sample = outcomes.prior(row, rng, 40_000)
        low, middle, high = outcomes.prior_quantiles(row)
        assert np.quantile(sample, 0.5) == pytest.approx(middle, abs=0.02 * (row["high"] - row["low"]))
        assert np.quantile(sample, 0.05) == pytest.approx(low, abs=0.02 * (row["high"] - row["low"]))
        assert np.quantile(sample, 0.95) == pytest.approx(high, abs=0.02 * (row["high"] - row["low"]))


def test_priors_that_have_evidence_are_not_uniform_boxes():
    priors = outcomes.assumptions()
    # the funnels inform these two: they must carry a shaped prior, not a box
    assert priors.loc["share_investigations", "distribution"] == "beta"
    assert priors.loc["reports_per_investigation", "distribution"] == "beta"
    assert (priors["justification"].str.contains("because nothing better exists") == (priors["distribution"] == "uniform")).all(), \
        "every uniform prior says why it is uniform, and only those"


def test_the_model_reads_its_inputs_from_data():
    year = outcomes.years()[-1]
    given_ = outcomes.inputs(year)
    recipients = load("recipients").query("year == @year and label == 'actionable'")
    expected = recipients[recipients["recipient"].isin(["icac", "local"])]["reports"].sum()
    assert given_.reports[outcomes.MAIN] == expected
    assert given_.arrests < given_.investigations


def test_the_threshold_of_a_draw_agrees_with_its_mode():
    frame = outcomes.accepted_draws(outcomes.draw(outcomes.years()[0], draws=5000))
    below = frame["reports_per_investigation"] < frame["threshold"]
    assert ((frame["mode"] == "never_investigated") == below).all()
    summary = outcomes.threshold_summary(outcomes.draw(outcomes.years()[0], draws=5000))
    assert summary["probability_below"] == pytest.approx(below.mean())


def test_rounding_unit_of_more_than_counts():
    assert outcomes._rounding_unit(12600) == 100
    assert outcomes._rounding_unit(137000) == 1000
    assert outcomes._rounding_unit(203467) == 1


def test_the_condition_is_the_mode_in_every_draw_and_impossible_products_are_rejected():
    """No case opened comes first exactly while share x reports per case lies below the draw's line,
    and no accepted draw puts more reports in cases than exist."""
    priors = outcomes.assumptions("per_case_up_to_10")  # wide enough for both sides of the line and rejections
    frame = outcomes.draw(outcomes.years()[-1], draws=5000, priors=priors)
    accepted = outcomes.accepted_draws(frame)
    below = accepted["product"] < accepted["flip_product"]
    assert 0.2 < below.mean() < 0.9
    assert ((accepted["mode"] == "never_investigated") == below).all()
    assert (accepted["product"] <= accepted["product_ceiling"]).all()
    assert not frame.loc[frame["product"] > frame["product_ceiling"], "accepted"].any()
    assert (frame["product"] > frame["product_ceiling"]).any()
    summary = outcomes.condition(frame)
    assert summary["probability_below"] == pytest.approx(below.mean())
    assert summary["low"] <= summary["median"] <= summary["high"] < summary["ceiling"]


def test_a_prior_set_replaces_only_the_parameters_it_names():
    baseline = outcomes.assumptions()
    assert outcomes.prior_sets()[0] == outcomes.BASELINE and len(outcomes.prior_sets()) >= 7
    for name in outcomes.prior_sets()[1:]:
        changed = outcomes.changed(name)
        assert changed, f"{name} changes nothing"
        priors = outcomes.assumptions(name)
        assert list(priors.index) == list(baseline.index)
        same = [p for p in baseline.index if p not in changed]
        assert priors.loc[same, ["distribution", "low", "high"]].equals(baseline.loc[same, ["distribution", "low", "high"]])
        assert (priors.loc[changed, "prior_set"] == name).all()
    with pytest.raises(KeyError, match="no prior set"):
        outcomes.assumptions("nowhere")


def test_a_wider_prior_on_reports_per_arrest_lowers_the_share_without_an_arrest():
    year = outcomes.years()[-1]
    base = outcomes.no_arrest(outcomes.draw(year, draws=5000))
    wide = outcomes.no_arrest(outcomes.draw(year, draws=5000, priors=outcomes.assumptions("per_arrest_up_to_10")))
    assert wide["low"] < base["low"] and wide["median"] < base["median"]


# --- the federal definition: reports sent to federal agencies come with federal outcomes ------------

def _federal_year() -> int:
    years = [year for year in outcomes.years() if outcomes.FEDERAL in outcomes.definitions(year)]
    assert years, "no modelled year has HSI counts: the federal definition would never be modelled"
    return years[-1]


def test_the_federal_definition_uses_federal_outcomes():
    year = _federal_year()
    given_ = outcomes.inputs(year)
    assert given_.federal.investigations > 0 and given_.federal.arrests > 0
    without = outcomes.at(year, outcomes.FEDERAL, share_federal_investigations=0, share_federal_arrests=0)
    central = outcomes.at(year, outcomes.FEDERAL)
    every = outcomes.at(year, outcomes.FEDERAL, share_federal_investigations=1, share_federal_arrests=1)
    # with no HSI case begun by a report, the federal definition is ICAC's cases over more reports
    values = outcomes.central_setting()
    investigated = outcomes.reach(given_.investigations, values["share_investigations"], values["reports_per_investigation"],
                                  given_.growth, values["lag_investigations"])
    arrested = outcomes.reach(given_.arrests, values["share_arrests"], values["reports_per_arrest"], given_.arrest_growth,
                              values["lag_arrests"])
    icac_only = outcomes.outcome_shares(given_.reports[outcomes.FEDERAL], investigated, arrested)
    assert without["never_investigated"] == pytest.approx(float(icac_only["never_investigated"]))
    # HSI's cases can only lower the share never investigated and raise the share arrested
    assert every["never_investigated"] < central["never_investigated"] < without["never_investigated"]
    assert every["arrest"] > central["arrest"] > without["arrest"]


def test_a_year_without_federal_outcomes_is_not_modelled_under_the_federal_definition():
    for year in outcomes.years():
        has_federal = outcomes.federal_cases(year) is not None
        assert (outcomes.FEDERAL in outcomes.definitions(year)) == has_federal
        assert outcomes.MAIN in outcomes.definitions(year)
        if not has_federal:
            with pytest.raises(ValueError, match="no federal outcomes"):
                outcomes.draw(year, outcomes.FEDERAL, draws=10)


def test_federal_terms_leave_the_other_definitions_draws_unchanged():
    year = _federal_year()
    main, federal = outcomes.draw(year, draws=2000), outcomes.draw(year, outcomes.FEDERAL, draws=2000)
    for name in outcomes.PARAMETERS + ("investigations", "arrests"):
        assert main[name].equals(federal[name]), name
    priors = outcomes.assumptions()
    for name in outcomes.FEDERAL_PARAMETERS:
        assert federal[name].between(priors.loc[name, "low"], priors.loc[name, "high"]).all(), name


def test_the_missing_federal_investigations_are_exactly_what_would_change_the_answer():
    year = _federal_year()
    frame = outcomes.draw(year, outcomes.FEDERAL, draws=3000)
    accepted = outcomes.accepted_draws(frame)
    given_ = outcomes.inputs(year)
    reach_, arrested = outcomes.cases(given_, outcomes.FEDERAL, accepted, accepted["investigations"], accepted["arrests"])
    summary = outcomes.missing_investigations(frame, year)
    assert summary["low"] <= summary["median"] <= summary["high"]
    # per draw: add the missing reach and never investigated ties with the runner-up; add 1% less and it still leads
    m, reports = accepted["reports_per_investigation"], given_.reports[outcomes.FEDERAL]
    bound = np.minimum((reports + arrested) / 2, reports - arrested)
    missing = np.maximum(0, bound / m - reach_)
    for scale, leads in ((1.0, False), (0.99, True)):
        shares = outcomes.outcome_shares(np.full(len(m), reports), (reach_ + scale * missing) * m, arrested)
        runner_up = np.maximum(shares["investigated_no_arrest"], shares["arrest"])
        if leads:
            assert (shares["never_investigated"] > runner_up).all()
        else:
            assert (shares["never_investigated"] <= runner_up + 1e-9).all()


# --- the evidence on the condition: bounds at single task forces, in the direction they hold ---------

def _funnel(unit, tips, cases, attribution, measure="investigations_opened", tips_qualifier="exact"):
    base = dict(unit=unit, unit_name=unit.title(), state="XX", scope="test", period="calendar_year", period_start="2020-01-01",
                period_end="2020-12-31", source_id="test", locator="here", grade="secondary", note="")
    return [dict(base, measure="tips_received", value=tips, qualifier=tips_qualifier, attribution="not_applicable"),
            dict(base, measure=measure, value=cases, qualifier="exact", attribution=attribution)]


def test_each_published_count_bounds_what_it_can_and_only_from_above():
    from tipline.estimates import condition

    rows = pd.DataFrame(_funnel("proactive", 500, 900, "all_work", "cases_opened") + _funnel("tips", 663, 583, "from_tips")
                        + _funnel("unknown", 1000, 250, "unknown") + _funnel("rounded", 3000, 600, "unknown", tips_qualifier="more_than"))
    found = condition.evidence(rows).set_index(["unit", "quantity"])
    # 500 tips among 900 cases of every origin: at most 5 in 9 cases begun by a report, and at most 5/9 reports per case overall
    assert found.loc[("proactive", "share"), "high"] == pytest.approx(500 / 900)
    assert found.loc[("proactive", "product"), "high"] == pytest.approx(500 / 900)
    # cases tied to tips bound reports per case, not the share
    assert found.loc[("tips", "per_case"), "high"] == pytest.approx(663 / 583)
    assert ("tips", "share") not in found.index and ("tips", "product") not in found.index
    # cases of unknown origin bound the product only, and more tips than cases bound no share
    assert found.loc[("unknown", "product"), "high"] == pytest.approx(4.0) and ("unknown", "share") not in found.index
    # "more than 3,000 tips" bounds at the top of its rounding unit, the loosest value it allows
    assert found.loc[("rounded", "product"), "high"] == pytest.approx(4000 / 600)
    assert (found["low"] <= found["high"]).all()
