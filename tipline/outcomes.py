"""Best inference: from a genuine U.S. CyberTipline report to its outcome, with uncertainty.

For one calendar year, the model spreads the investigations and arrests that ICAC task forces
report (federal fiscal years, all sources of cases) over the reports NCMEC made available to
them. Three quantities no source publishes are parameters drawn from ranges kept, with their
justification, in data/assumptions.csv:

* ``cybertip_share``: the share of ICAC investigations (and arrests) that begin with a report;
* ``reports_per_investigation``: how many reports one investigation (or arrest) accounts for;
* ``fiscal_lag_years``: the offset between the calendar year of the reports and the fiscal year
  of the cases, applied through the measured growth of ICAC investigations.

A report ends in one of three outcomes::

    investigated reports = min(reports, investigations x lag x share x reports per investigation)
    arrest reports       = min(investigated, arrests x lag x share x reports per investigation)
    never investigated   = reports - investigated

``conviction_share`` splits the arrest outcome further where a reader wants the last stage.
Everything here is plain numpy on arrays, so the same function serves one setting, a Monte
Carlo draw of 20,000 settings, and the property tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import load
from .model import downstream

OUTCOMES = ("never_investigated", "investigated_no_arrest", "arrest")
OUTCOME_LABELS = {"never_investigated": "Never investigated",
                  "investigated_no_arrest": "Investigated, no arrest",
                  "arrest": "Arrest"}
PARAMETERS = ("cybertip_share", "reports_per_investigation", "fiscal_lag_years")
PARAMETER_LABELS = {"cybertip_share": "Share of ICAC cases begun by a report",
                    "reports_per_investigation": "Reports per investigation",
                    "fiscal_lag_years": "Calendar/fiscal-year offset",
                    "conviction_share": "Share of arrests ending in conviction"}
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


def outcome_shares(reports, investigations, arrests, cybertip_share, reports_per_investigation,
                   lag_factor=1.0) -> dict[str, np.ndarray]:
    """Share of `reports` in each outcome; every argument may be a scalar or an array."""
    reports = np.asarray(reports, dtype=float)
    if np.any(reports <= 0):
        raise ValueError("reports must be positive")
    if np.any(np.asarray(arrests) > np.asarray(investigations)):
        raise ValueError("arrests cannot exceed investigations")
    reach = np.asarray(lag_factor, dtype=float) * np.asarray(cybertip_share, dtype=float) \
        * np.asarray(reports_per_investigation, dtype=float)
    investigated = np.minimum(reports, np.asarray(investigations, dtype=float) * reach)
    arrested = np.minimum(investigated, np.asarray(arrests, dtype=float) * reach)
    return {"never_investigated": 1 - investigated / reports,
            "investigated_no_arrest": (investigated - arrested) / reports,
            "arrest": arrested / reports}


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
    growth: float
    grades: tuple[str, ...]


def years() -> list[int]:
    """Calendar years for which reports by recipient and ICAC investigations and arrests exist."""
    recipients = set(load("recipients")["year"])
    cases = set(downstream("icac", "investigations").index) & set(downstream("icac", "arrests").index)
    return sorted(recipients & cases)


def investigation_growth() -> float:
    """Mean annual growth of ICAC investigations across the fiscal years published."""
    rows = load("downstream").query("agency == 'icac' and measure == 'investigations' "
                                    "and period == 'fiscal_year' and period_start == period_end")
    series = rows.set_index("period_end")["value"]
    first, last = series.index.min(), series.index.max()
    return (series[last] / series[first]) ** (1 / (last - first)) - 1


def inputs(year: int) -> Inputs:
    recipients = load("recipients").query("year == @year")
    state_local = recipients[recipients["recipient"].isin(["icac", "local"])]
    us_agencies = recipients[recipients["recipient"].isin(["icac", "local", "federal"])]
    location = load("user_location").query("year == @year and series == 'transparency_report' and location == 'us'")
    rows = load("downstream").query("agency == 'icac' and period_start == @year and period_end == @year")
    rows = rows.set_index("measure")
    return Inputs(
        year=year,
        reports={"actionable_state_local": int(state_local.query("label == 'actionable'")["reports"].sum()),
                 "all_state_local": int(state_local["reports"].sum()),
                 "us_located": int(location["reports"].sum()),
                 "actionable_us_agencies": int(us_agencies.query("label == 'actionable'")["reports"].sum())},
        investigations=float(rows.loc["investigations", "value"]),
        investigations_more_than=rows.loc["investigations", "qualifier"] == "more_than",
        arrests=float(rows.loc["arrests", "value"]),
        arrests_more_than=rows.loc["arrests", "qualifier"] == "more_than",
        growth=investigation_growth(),
        grades=tuple(sorted(set(rows["grade"]) | set(us_agencies["grade"]))),
    )


def assumptions() -> pd.DataFrame:
    return load("assumptions").set_index("parameter")


def draw(year: int, definition: str = MAIN, draws: int = DRAWS, seed: int = SEED,
         ranges: pd.DataFrame | None = None) -> pd.DataFrame:
    """Monte Carlo: one row per draw with the parameters and the three outcome shares.

    Parameters are independent and uniform over their ranges; a "more than" count is uniform
    over its rounding unit (more than 12,600 -> 12,600 to 12,700).
    """
    ranges = assumptions() if ranges is None else ranges
    rng = np.random.default_rng(seed)
    given = inputs(year)
    frame = pd.DataFrame({name: rng.uniform(ranges.loc[name, "low"], ranges.loc[name, "high"], draws)
                          for name in PARAMETERS + ("conviction_share",)})
    bump = rng.uniform(0, 1, (2, draws))
    investigations = given.investigations + given.investigations_more_than * bump[0] * _rounding_unit(given.investigations)
    arrests = given.arrests + given.arrests_more_than * bump[1] * _rounding_unit(given.arrests)
    lag = (1 + given.growth) ** frame["fiscal_lag_years"].to_numpy()
    shares = outcome_shares(given.reports[definition], investigations, arrests,
                            frame["cybertip_share"].to_numpy(), frame["reports_per_investigation"].to_numpy(), lag)
    for outcome in OUTCOMES:
        frame[outcome] = shares[outcome]
    frame["conviction"] = frame["arrest"] * frame["conviction_share"]
    frame["mode"] = frame[list(OUTCOMES)].idxmax(axis=1)
    return frame


def summary(frame: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Median and central interval of each outcome share, and how often it is the most common."""
    tail = (1 - level) / 2
    rows = []
    for outcome in OUTCOMES + ("conviction",):
        values = frame[outcome]
        rows.append({"outcome": outcome, "median": values.median(), "low": values.quantile(tail),
                     "high": values.quantile(1 - tail),
                     "mode_share": (frame["mode"] == outcome).mean() if outcome in OUTCOMES else np.nan})
    return pd.DataFrame(rows).set_index("outcome")


def central_setting(ranges: pd.DataFrame | None = None) -> dict[str, float]:
    ranges = assumptions() if ranges is None else ranges
    return {name: (ranges.loc[name, "low"] + ranges.loc[name, "high"]) / 2 for name in PARAMETERS}


def _shares(given: Inputs, definition: str, values: dict[str, float]) -> dict[str, float]:
    shares = outcome_shares(given.reports[definition], given.investigations, given.arrests,
                            values["cybertip_share"], values["reports_per_investigation"],
                            (1 + given.growth) ** values["fiscal_lag_years"])
    return {k: float(v) for k, v in shares.items()}


def at(year: int, definition: str = MAIN, **setting) -> dict[str, float]:
    """Outcome shares for one explicit setting (missing parameters at the middle of their range)."""
    return _shares(inputs(year), definition, central_setting() | setting)


def sensitivity(year: int, outcome: str = "never_investigated", definition: str = MAIN) -> pd.DataFrame:
    """One-at-a-time swings: each parameter to the ends of its range, the others at the middle."""
    ranges = assumptions()
    given, middle = inputs(year), central_setting(ranges)
    base = _shares(given, definition, middle)[outcome]
    rows = []
    for name in PARAMETERS:
        low = _shares(given, definition, middle | {name: ranges.loc[name, "low"]})[outcome]
        high = _shares(given, definition, middle | {name: ranges.loc[name, "high"]})[outcome]
        rows.append({"parameter": name, "label": PARAMETER_LABELS[name], "meaning": ranges.loc[name, "meaning"], "at_low": low,
                     "at_high": high, "swing": abs(high - low), "base": base})
    return pd.DataFrame(rows).sort_values("swing", ascending=False).reset_index(drop=True)


def verdict(mode_share: pd.Series) -> str:
    """Words for the robustness of the mode: never stronger than the draws allow."""
    top = mode_share.idxmax()
    label = OUTCOME_LABELS[top].lower()
    if mode_share[top] == 1.0:
        return f"{label} in all plausible settings"
    if mode_share[top] >= 0.5:
        return f"{label} in most settings, but it depends on the assumptions"
    return "depends on the assumptions: no outcome is the most common in most settings"
