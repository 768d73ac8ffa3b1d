"""Top-down: from a genuine U.S. CyberTipline report to its outcome, by accounting.

For one calendar year, the model spreads the investigations and arrests that ICAC task forces
report (federal fiscal years, every origin of case) over the reports NCMEC made available to
them. Investigations and arrests each have their own unmeasured terms, drawn from priors whose
shape and bounds are recorded with their evidence in data/assumptions.csv:

* ``share_investigations`` / ``share_arrests``: the share of ICAC investigations (arrests) in
  cases begun by a report; the rest are proactive, undercover or peer-to-peer cases;
* ``reports_per_investigation`` / ``reports_per_arrest``: how many reports one report-begun
  investigation (arrest) accounts for;
* ``lag_investigations`` / ``lag_arrests``: years from a report to the investigation (arrest)
  it feeds.

The federal fiscal year (October-September) is centred a quarter of a year *before* the calendar
year of the same number, so the fiscal counts that match a calendar year of reports lie
0.25 + lag years later: each count is scaled by its own measured growth over that offset::

    investigated reports = investigations x share_i x reports_per_investigation x (1 + g_i)^(0.25 + lag_i)
    arrest reports       = arrests x share_a x reports_per_arrest x (1 + g_a)^(0.25 + lag_a)
    never investigated   = reports - investigated reports

A draw that investigates more reports than exist, or arrests on more reports than it
investigates, is impossible: it is rejected (never clipped), and the acceptance rate is kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..evidence.data import load
from .model import downstream

# The outcome classes, named by what is counted. The keys are kept from the first edition (answer.json
# and the claims ledger use them); the labels are what a reader sees. "No case opened" does not mean
# nobody looked: task forces say they review every tip. It means the report is not among those that
# ICAC's count of investigations takes in within the lag the model allows, and it holds reports still
# waiting, reports handed to agencies outside ICAC, and reports folded into a case begun otherwise.
OUTCOMES = ("never_investigated", "investigated_no_arrest", "arrest")
OUTCOME_LABELS = {"never_investigated": "No case opened",
                  "investigated_no_arrest": "Case opened, no arrest",
                  "arrest": "Arrest"}
OUTCOME_COUNTS = {
    "never_investigated": "reviewed or waiting, but not taken into any investigation in ICAC's count within the lag",
    "investigated_no_arrest": "taken into an investigation in ICAC's count, with no arrest in it",
    "arrest": "taken into an investigation that led to an arrest in ICAC's count",
}
PARAMETERS = ("share_investigations", "reports_per_investigation", "lag_investigations",
              "share_arrests", "reports_per_arrest", "lag_arrests", "conviction_share")
PARAMETER_LABELS = {"share_investigations": "Share of ICAC investigations begun by a report",
                    "reports_per_investigation": "Reports per report-begun investigation",
                    "lag_investigations": "Years from report to investigation",
                    "share_arrests": "Share of ICAC arrests in cases begun by a report",
                    "reports_per_arrest": "Reports per report-begun arrest",
                    "lag_arrests": "Years from report to arrest",
                    "conviction_share": "Share of arrests ending in conviction"}
# Federal outcomes enter only the definition that counts reports made available to federal
# agencies, and only in years with HSI counts of both investigations and arrests.
FEDERAL_PARAMETERS = ("share_federal_investigations", "share_federal_arrests")
PARAMETER_LABELS |= {"share_federal_investigations": "Share of HSI investigations begun by a report",
                     "share_federal_arrests": "Share of HSI arrests in cases begun by a report",
                     "funnel_slope": "Bottom-up: change in a task force's log-odds per tip with the log of its tips"}
FEDERAL_AGENCY = "hsi"
FISCAL_LEAD = 0.25  # a federal fiscal year is centred on 1 April, a calendar year on 1 July
SEED = 20240501
LEVEL = 0.9  # the central interval reported for every outcome
DRAWS = 20_000

# Which reports count as "genuine, U.S. jurisdiction": the main definition and three variants.
DEFINITIONS = {
    "actionable_state_local": "Actionable reports made available to ICAC task forces and local agencies",
    "all_state_local": "All reports made available to ICAC task forces and local agencies (actionable and informational)",
    "us_located": "All reports on U.S.-located users (NCMEC's transparency-report series)",
    "actionable_us_agencies": "Actionable reports made available to any U.S. agency, federal included (a report sent to two agencies counts twice)",
}
MAIN = "actionable_state_local"
FEDERAL = "actionable_us_agencies"


def reach(count, share, per_case, growth, lag):
    """Reports accounted for by `count` fiscal-year cases (investigations or arrests)."""
    return (np.asarray(count, dtype=float) * np.asarray(share, dtype=float) * np.asarray(per_case, dtype=float)
            * (1 + np.asarray(growth, dtype=float)) ** (FISCAL_LEAD + np.asarray(lag, dtype=float)))


def cases(given: "Inputs", definition: str, values, investigations, arrests):
    """Report-begun investigations (after the year offset; times reports per investigation they
    give the reports investigated) and reports ending in an arrest, for one definition. `values`
    maps parameter names to numbers or arrays (a setting, or a frame of draws). The federal
    definition adds HSI's cases, which absorb reports as ICAC's do (the same drawn reports per
    case and lags)."""
    investigations_reach = reach(investigations, values["share_investigations"], 1.0, given.growth,
                                 values["lag_investigations"])
    arrested = reach(arrests, values["share_arrests"], values["reports_per_arrest"], given.arrest_growth,
                     values["lag_arrests"])
    if definition == FEDERAL:
        federal = given.federal
        if federal is None:
            raise ValueError(f"no federal outcomes for {given.year}: the federal definition cannot be modelled")
        investigations_reach = investigations_reach + reach(
            federal.investigations, values["share_federal_investigations"], 1.0, federal.growth, values["lag_investigations"])
        arrested = arrested + reach(federal.arrests, values["share_federal_arrests"], values["reports_per_arrest"],
                                    federal.arrest_growth, values["lag_arrests"])
    return investigations_reach, arrested


def possible(reports, investigated, arrested) -> np.ndarray:
    """True where a setting is possible: no more reports investigated than exist, none arrested
    that were not investigated."""
    return (np.asarray(investigated) <= np.asarray(reports)) & (np.asarray(arrested) <= np.asarray(investigated))


def outcome_shares(reports, investigated, arrested) -> dict[str, np.ndarray]:
    """Share of `reports` in each outcome, given the reports investigated and the reports that
    ended in an arrest. Refuses impossible settings instead of clipping them."""
    reports = np.asarray(reports, dtype=float)
    investigated, arrested = np.asarray(investigated, dtype=float), np.asarray(arrested, dtype=float)
    if np.any(reports <= 0):
        raise ValueError("reports must be positive")
    if np.any(investigated < 0) or np.any(arrested < 0):
        raise ValueError("counts cannot be negative")
    if not np.all(possible(reports, investigated, arrested)):
        raise ValueError("impossible setting: more reports investigated than exist, or arrests on reports never investigated")
    return {"never_investigated": 1 - investigated / reports,
            "investigated_no_arrest": (investigated - arrested) / reports,
            "arrest": arrested / reports}


def threshold(reports, investigations_reach, arrested):
    """Reports per report-begun investigation above which "never investigated" stops being the
    most common outcome, the other terms held fixed.

    `investigations_reach` is investigations x share x offset (reports investigated per report
    absorbed by one case). With m reports per case, never investigated (R - m c) beats
    investigated without arrest (m c - arrested) while m < (R + arrested) / (2 c), and beats
    arrest while m < (R - arrested) / c; the smaller bound is the threshold.
    """
    reports, c, arrested = (np.asarray(x, dtype=float) for x in (reports, investigations_reach, arrested))
    return np.minimum((reports + arrested) / (2 * c), (reports - arrested) / c)


def _rounding_unit(value: float) -> int:
    """'More than 12,600' is a number rounded down to its last non-zero digit."""
    value, unit = int(value), 1
    while value and value % (unit * 10) == 0:
        unit *= 10
    return unit


@dataclass(frozen=True)
class Inputs:
    """The measured quantities for one year, with where each comes from."""
    year: int
    reports: dict[str, int]
    investigations: float
    investigations_more_than: bool
    arrests: float
    arrests_more_than: bool
    growth: float           # of ICAC investigations, a year
    arrest_growth: float    # of ICAC arrests, a year
    grades: tuple[str, ...]
    federal: "FederalCases | None" = None  # HSI counts for the same fiscal year, if published


@dataclass(frozen=True)
class FederalCases:
    """HSI child-exploitation investigations and arrests for one fiscal year (every source of
    case, worldwide), the only federal agency with counts for the modelled years."""
    investigations: float
    arrests: float
    growth: float           # of HSI investigations, a year
    arrest_growth: float    # of HSI arrests, a year
    grades: tuple[str, ...]


def years() -> list[int]:
    """Calendar years for which reports by recipient and ICAC investigations and arrests exist."""
    recipients = set(load("recipients")["year"])
    cases = set(downstream("icac", "investigations").index) & set(downstream("icac", "arrests").index)
    return sorted(recipients & cases)


def growth(measure: str, agency: str = "icac") -> float:
    """Mean annual growth of an agency's fiscal-year series between its first and last year."""
    rows = load("downstream")
    rows = rows[(rows["agency"] == agency) & (rows["measure"] == measure) & (rows["period"] == "fiscal_year")
                & (rows["period_start"] == rows["period_end"])]
    series = rows.set_index("period_end")["value"]
    first, last = series.index.min(), series.index.max()
    return float((series[last] / series[first]) ** (1 / (last - first)) - 1)


def federal_cases(year: int) -> FederalCases | None:
    """HSI investigations and arrests for the fiscal year `year`; None if either is unpublished."""
    rows = load("downstream")
    rows = rows[(rows["agency"] == FEDERAL_AGENCY) & (rows["period"] == "fiscal_year")
                & (rows["period_start"] == year) & (rows["period_end"] == year)
                & rows["measure"].isin(["investigations", "arrests"])].set_index("measure")
    if len(rows) != 2:
        return None
    if set(rows["qualifier"]) != {"exact"}:
        raise ValueError(f"HSI counts for {year} are not exact; the model draws only ICAC's rounding")
    return FederalCases(investigations=float(rows.loc["investigations", "value"]),
                        arrests=float(rows.loc["arrests", "value"]),
                        growth=growth("investigations", FEDERAL_AGENCY),
                        arrest_growth=growth("arrests", FEDERAL_AGENCY),
                        grades=tuple(sorted(set(rows["grade"]))))


def definitions(year: int) -> list[str]:
    """The definitions that can be modelled for `year`: the federal one needs federal outcomes,
    so that it never adds reports without the cases that follow them."""
    return [d for d in DEFINITIONS if d != FEDERAL or federal_cases(year) is not None]


def inputs(year: int) -> Inputs:
    recipients = load("recipients")
    recipients = recipients[recipients["year"] == year]
    state_local = recipients[recipients["recipient"].isin(["icac", "local"])]
    us_agencies = recipients[recipients["recipient"].isin(["icac", "local", "federal"])]
    location = load("user_location")
    location = location[(location["year"] == year) & (location["series"] == "transparency_report")
                        & (location["location"] == "us")]
    rows = load("downstream")
    rows = rows[(rows["agency"] == "icac") & (rows["period_start"] == year) & (rows["period_end"] == year)]
    rows = rows.set_index("measure")
    return Inputs(
        year=year,
        reports={"actionable_state_local": int(state_local[state_local["label"] == "actionable"]["reports"].sum()),
                 "all_state_local": int(state_local["reports"].sum()),
                 "us_located": int(location["reports"].sum()),
                 "actionable_us_agencies": int(us_agencies[us_agencies["label"] == "actionable"]["reports"].sum())},
        investigations=float(rows.loc["investigations", "value"]),
        investigations_more_than=rows.loc["investigations", "qualifier"] == "more_than",
        arrests=float(rows.loc["arrests", "value"]),
        arrests_more_than=rows.loc["arrests", "qualifier"] == "more_than",
        growth=growth("investigations"),
        arrest_growth=growth("arrests"),
        grades=tuple(sorted(set(rows["grade"]) | set(us_agencies["grade"]))),
        federal=federal_cases(year),
    )


BASELINE = "baseline"


def prior_sets() -> list[str]:
    """The names of the prior sets in data/assumptions.csv: the baseline first, then the alternatives
    in the order the file lists them."""
    return [BASELINE] + [name for name in dict.fromkeys(load("assumptions")["prior_set"]) if name != BASELINE]


def assumptions(prior_set: str = BASELINE) -> pd.DataFrame:
    """The priors, one row per parameter: the baseline's, with the rows of `prior_set` in their place."""
    rows = load("assumptions")
    if prior_set not in set(rows["prior_set"]):
        raise KeyError(f"no prior set {prior_set!r} in assumptions.csv")
    chosen = rows[rows["prior_set"] == prior_set].set_index("parameter")
    baseline = rows[rows["prior_set"] == BASELINE].set_index("parameter")
    return pd.concat([chosen, baseline.drop(index=chosen.index, errors="ignore")]).loc[baseline.index]


def changed(prior_set: str) -> list[str]:
    """The parameters a prior set changes from the baseline."""
    rows = load("assumptions")
    return list(rows.loc[rows["prior_set"] == prior_set, "parameter"]) if prior_set != BASELINE else []


def prior(row: pd.Series, rng: np.random.Generator, size: int) -> np.ndarray:
    """Draws from one parameter's prior: uniform on [low, high], or a beta(a, b) stretched to it."""
    if row["distribution"] == "uniform":
        return rng.uniform(row["low"], row["high"], size)
    return row["low"] + (row["high"] - row["low"]) * rng.beta(row["a"], row["b"], size)


def prior_quantiles(row: pd.Series, qs=(0.05, 0.5, 0.95)) -> list[float]:
    """Quantiles of one prior (exact: scipy's beta, or the uniform's straight line)."""
    from scipy.stats import beta

    if row["distribution"] == "uniform":
        return [row["low"] + q * (row["high"] - row["low"]) for q in qs]
    return [row["low"] + (row["high"] - row["low"]) * beta.ppf(q, row["a"], row["b"]) for q in qs]


def draw(year: int, definition: str = MAIN, draws: int = DRAWS, seed: int = SEED,
         priors: pd.DataFrame | None = None) -> pd.DataFrame:
    """Monte Carlo: one row per proposed draw, with its parameters, whether it is possible
    (`accepted`) and, for accepted draws, the outcome shares. Use `accepted_draws()` for the
    posterior sample; the share of accepted rows is the acceptance rate.

    A "more than" count is uniform over its rounding unit (more than 12,600 -> 12,600 to 12,700).
    """
    priors = assumptions() if priors is None else priors
    rng = np.random.default_rng(seed)
    given = inputs(year)
    frame = pd.DataFrame({name: prior(priors.loc[name], rng, draws) for name in PARAMETERS})
    bump = rng.uniform(0, 1, (2, draws))
    frame["investigations"] = given.investigations + given.investigations_more_than * bump[0] * _rounding_unit(given.investigations)
    frame["arrests"] = given.arrests + given.arrests_more_than * bump[1] * _rounding_unit(given.arrests)
    reports = given.reports[definition]
    if definition == FEDERAL:  # drawn after every other term, so the other definitions' draws are unchanged
        for name in FEDERAL_PARAMETERS:
            frame[name] = prior(priors.loc[name], rng, draws)
    investigations_reach, arrested = cases(given, definition, frame, frame["investigations"], frame["arrests"])
    investigated = investigations_reach * frame["reports_per_investigation"]
    frame["accepted"] = possible(reports, investigated, arrested)
    frame["threshold"] = threshold(reports, investigations_reach, arrested)
    # the same line in terms of the product share x reports per case (reports taken in per ICAC investigation)
    frame["product"] = frame["share_investigations"] * frame["reports_per_investigation"]
    frame["flip_product"] = frame["threshold"] * frame["share_investigations"]
    frame["product_ceiling"] = reports * frame["share_investigations"] / investigations_reach  # every report in a case
    for outcome in OUTCOMES:
        frame[outcome] = np.nan
    ok = frame["accepted"].to_numpy()
    shares = outcome_shares(reports, investigated[ok], arrested[ok])
    for outcome in OUTCOMES:
        frame.loc[ok, outcome] = shares[outcome]
    frame["conviction"] = frame["arrest"] * frame["conviction_share"]
    frame["mode"] = None
    frame.loc[ok, "mode"] = frame.loc[ok, list(OUTCOMES)].astype(float).idxmax(axis=1)
    return frame


def accepted_draws(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["accepted"]]


def acceptance(frame: pd.DataFrame) -> float:
    return float(frame["accepted"].mean())


def summary(frame: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Median and central interval of each outcome share over the accepted draws, and how often
    each outcome is the most common."""
    frame = accepted_draws(frame) if "accepted" in frame else frame
    tail = (1 - level) / 2
    rows = []
    for outcome in OUTCOMES + ("conviction",):
        values = frame[outcome].astype(float)
        rows.append({"outcome": outcome, "median": values.median(), "low": values.quantile(tail),
                     "high": values.quantile(1 - tail),
                     "mode_share": (frame["mode"] == outcome).mean() if outcome in OUTCOMES else np.nan})
    return pd.DataFrame(rows).set_index("outcome")


def no_arrest(frame: pd.DataFrame, level: float = LEVEL) -> dict:
    """The robust figure: the share of reports with no arrest (never investigated or investigated
    without arrest), median and central interval over the accepted draws."""
    values = 1 - accepted_draws(frame)["arrest"].astype(float)
    tail = (1 - level) / 2
    return {"median": float(values.median()), "low": float(values.quantile(tail)),
            "high": float(values.quantile(1 - tail)), "level": level}


def threshold_summary(frame: pd.DataFrame, level: float = LEVEL) -> dict:
    """The threshold X over the accepted draws (median and interval), and how often the drawn
    reports per investigation lies below it (the probability that never investigated comes first)."""
    accepted = accepted_draws(frame)
    tail = (1 - level) / 2
    below = accepted["reports_per_investigation"] < accepted["threshold"]
    return {"median": float(accepted["threshold"].median()), "low": float(accepted["threshold"].quantile(tail)),
            "high": float(accepted["threshold"].quantile(1 - tail)), "level": level,
            "probability_below": float(below.mean())}


def condition(frame: pd.DataFrame, level: float = LEVEL) -> dict:
    """The mode as a condition. "No case opened" comes first exactly while the product
    share_investigations x reports_per_investigation (reports taken into cases per ICAC investigation
    of any origin) stays below the flip line (R + A) / (2 I'), where I' is the investigations moved to
    the calendar year; the line moves a little with the arrest and lag terms, so it is summarised
    over the accepted draws. Also: how often the drawn product lies below it, which is the
    probability the priors give the mode, and the largest product the counts allow (every report in
    a case, R / I')."""
    accepted = accepted_draws(frame)
    tail = (1 - level) / 2
    line, ceiling = accepted["flip_product"], accepted["product_ceiling"]
    return {"median": float(line.median()), "low": float(line.quantile(tail)), "high": float(line.quantile(1 - tail)),
            "level": level, "probability_below": float((accepted["product"] < line).mean()),
            "ceiling": float(ceiling.median())}


def central_setting(priors: pd.DataFrame | None = None) -> dict[str, float]:
    """Every parameter at the median of its prior."""
    priors = assumptions() if priors is None else priors
    return {name: float(prior_quantiles(priors.loc[name], (0.5,))[0]) for name in PARAMETERS + FEDERAL_PARAMETERS}


def at(year: int, definition: str = MAIN, **setting) -> dict[str, float]:
    """Outcome shares for one explicit setting (missing parameters at their prior medians);
    NaN everywhere if the setting is impossible."""
    given, values = inputs(year), central_setting() | setting
    reports = given.reports[definition]
    investigations_reach, arrested = cases(given, definition, values, given.investigations, given.arrests)
    investigated = investigations_reach * values["reports_per_investigation"]
    if not possible(reports, investigated, arrested):
        return {outcome: float("nan") for outcome in OUTCOMES}
    return {k: float(v) for k, v in outcome_shares(reports, investigated, arrested).items()}


def threshold_at(year: int, definition: str = MAIN, **setting) -> float:
    """The threshold X for one explicit setting (missing parameters at their prior medians)."""
    given, values = inputs(year), central_setting() | setting
    investigations_reach, arrested = cases(given, definition, values, given.investigations, given.arrests)
    return float(threshold(given.reports[definition], investigations_reach, arrested))


def missing_investigations(frame: pd.DataFrame, year: int, level: float = LEVEL) -> dict:
    """For the federal definition: how many more report-begun investigations a year, by agencies
    with no published counts (the FBI above all), would make "never investigated" lose first place,
    each draw's reports per investigation and arrests held fixed. Never investigated comes first
    while m c < min((R + A) / 2, R - A) (see `threshold`), so the missing reach is that bound over
    m minus c, turned into fiscal-year cases with HSI's growth and the draw's lag."""
    given = inputs(year)
    accepted = accepted_draws(frame)
    reports = given.reports[FEDERAL]
    investigations_reach, arrested = cases(given, FEDERAL, accepted, accepted["investigations"], accepted["arrests"])
    bound = np.minimum((reports + arrested) / 2, reports - arrested)
    missing = np.maximum(0, bound / accepted["reports_per_investigation"] - investigations_reach)
    per_year = missing / (1 + given.federal.growth) ** (FISCAL_LEAD + accepted["lag_investigations"])
    tail = (1 - level) / 2
    return {"median": float(per_year.median()), "low": float(per_year.quantile(tail)),
            "high": float(per_year.quantile(1 - tail)), "level": level,
            "hsi_investigations": given.federal.investigations}
