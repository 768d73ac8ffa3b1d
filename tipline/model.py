"""From reports to outcomes: the arithmetic the chapters share.

Calendar years (NCMEC) and federal fiscal years (ICAC, October-September) are kept
apart in the data; where a chapter sets one beside the other it says so, and the
`period` column of every stage records which kind of year it is.
"""
from __future__ import annotations

import pandas as pd

from .data import load

US_AGENCIES = ("icac", "local", "federal")


def preferred_reports() -> pd.DataFrame:
    """Reports per year by reporter (columns all, esp, public), preferred rows only."""
    annual = load("reports_annual")
    table = annual[annual["preferred"]].pivot(index="year", columns="reporter", values="reports")
    missing_public = table["public"].isna() & table["esp"].notna() & table["all"].notna()
    table.loc[missing_public, "public"] = table["all"] - table["esp"]
    return table


def us_agency_reports() -> pd.DataFrame:
    """Reports made available to U.S. agencies (ICAC, local, federal) per year and label."""
    recipients = load("recipients")
    us = recipients[recipients["recipient"].isin(US_AGENCIES)]
    table = us.pivot_table(index="year", columns="label", values="reports", aggfunc="sum")
    table["total"] = table["actionable"] + table["informational"]
    table["informational_share"] = table["informational"] / table["total"]
    return table


def downstream(agency: str, measure: str) -> pd.Series:
    """A single-year downstream series (e.g. ICAC arrests) indexed by year."""
    rows = load("downstream")
    rows = rows[(rows["agency"] == agency) & (rows["measure"] == measure)
                & (rows["period_start"] == rows["period_end"])]
    return rows.set_index("period_end")["value"].sort_index()


def funnel(year: int) -> pd.DataFrame:
    """The stages from all reports to ICAC arrests for one year, with their kind of year."""
    reports = preferred_reports().loc[year, "all"]
    location = load("user_location")
    us_located = location[(location["year"] == year) & (location["series"] == "transparency_report")
                          & (location["location"] == "us")]["reports"].iloc[0]
    recipients = load("recipients")
    icac = recipients[(recipients["year"] == year) & (recipients["recipient"] == "icac")]
    icac_actionable = icac[icac["label"] == "actionable"]["reports"].iloc[0]
    stages = [
        ("All CyberTipline reports", reports, "calendar_year"),
        ("Reports on U.S.-located users", us_located, "calendar_year"),
        ("Actionable reports made available to U.S. agencies", us_agency_reports().loc[year, "actionable"], "calendar_year"),
        ("Actionable reports made available to ICAC task forces", icac_actionable, "calendar_year"),
    ]
    investigations, arrests = downstream("icac", "investigations"), downstream("icac", "arrests")
    if year in investigations.index:
        stages.append(("ICAC investigations (all sources)", investigations[year], "fiscal_year"))
    if year in arrests.index:
        stages.append(("ICAC arrests (all sources)", arrests[year], "fiscal_year"))
    frame = pd.DataFrame(stages, columns=["stage", "count", "period"])
    frame["order"] = range(len(frame))
    return frame


def icac_arrests_per_actionable_report() -> pd.DataFrame:
    """ICAC arrests (fiscal year, every origin of case) per 100 actionable reports made available
    to ICAC task forces (calendar year of the same number), for every year where both are published.

    This ratio is neither a ceiling nor a floor on the share of reports that end in an arrest:
    arrests from proactive cases (not begun by a report) and arrests by other agencies push it
    away from that share in opposite directions, one arrest resting on several reports raises the
    share above it, and "more than" counts and the fiscal-year offset move it a little either way.
    """
    recipients = load("recipients")
    offered = recipients[(recipients["recipient"] == "icac") & (recipients["label"] == "actionable")]
    offered = offered.set_index("year")["reports"]
    arrests = downstream("icac", "arrests")
    years = sorted(set(offered.index) & set(arrests.index))
    frame = pd.DataFrame({"year": years, "actionable_to_icac": offered.loc[years].values,
                          "icac_arrests": arrests.loc[years].values})
    frame["arrests_per_100"] = 100 * frame["icac_arrests"] / frame["actionable_to_icac"]
    return frame
