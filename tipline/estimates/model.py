"""From reports to outcomes: the arithmetic the chapters share.

Calendar years (NCMEC) and federal fiscal years (ICAC, October-September) are kept
apart in the data; where a chapter sets one beside the other it says so, and the
`period` column of every stage records which kind of year it is.
"""
from __future__ import annotations

import pandas as pd

from ..evidence.data import load

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


def icac_feedback() -> pd.DataFrame:
    """ICAC task forces' feedback to NCMEC per year (feedback.csv), beside the reports NCMEC made
    available to them (recipients.csv), for the years feedback.csv gives: `feedback` (instances),
    `actionable`, `informational`, `made_available` (the two together), and feedback per 100
    actionable reports and per 100 reports made available (`per_100_actionable`, `per_100`). Per
    100 actionable reports is the base NCMEC's 2022 relabelling of the two moved least."""
    feedback = load("feedback")
    feedback = feedback[feedback["recipient"] == "icac"].set_index("year")["feedback_instances"].sort_index()
    recipients = load("recipients")
    icac = recipients[recipients["recipient"] == "icac"].pivot(index="year", columns="label", values="reports")
    table = pd.DataFrame({"feedback": feedback, "actionable": icac["actionable"].reindex(feedback.index),
                          "informational": icac["informational"].reindex(feedback.index)})
    table["made_available"] = table["actionable"] + table["informational"]
    if table.isna().any().any():
        missing = sorted(table.index[table.isna().any(axis=1)])
        raise ValueError(f"recipients.csv: no ICAC actionable and informational counts for the feedback years {missing}")
    table["per_100_actionable"] = 100 * table["feedback"] / table["actionable"]
    table["per_100"] = 100 * table["feedback"] / table["made_available"]
    return table


def _single_years(agency: str, measure: str) -> pd.DataFrame:
    rows = load("downstream")
    rows = rows[(rows["agency"] == agency) & (rows["measure"] == measure)
                & (rows["period_start"] == rows["period_end"])]
    return rows.set_index("period_end").sort_index()


def downstream(agency: str, measure: str) -> pd.Series:
    """A single-year downstream series (e.g. ICAC arrests) indexed by year."""
    return _single_years(agency, measure)["value"]


def downstream_grades(agency: str, measure: str) -> pd.Series:
    """The grade of each year's count of `downstream(agency, measure)`: how weak its source is."""
    return _single_years(agency, measure)["grade"]


YEAR_KINDS = {"calendar_year": "Calendar year (NCMEC counts)", "fiscal_year": "Federal fiscal year (ICAC counts)"}


def funnel(year: int) -> pd.DataFrame:
    """The stages from all reports to ICAC arrests for one year.

    Columns: stage, count, period (calendar_year or fiscal_year), kind (the same in words),
    unit (what one count is), order, and ratio (count / the count of the stage before). The
    third stage counts deliveries, not reports: one report made available to several agencies
    counts once for each, and reports with no known location go to federal agencies, so it can
    exceed the U.S.-located reports above it.
    """
    reports = preferred_reports().loc[year, "all"]
    location = load("user_location")
    us_located = location[(location["year"] == year) & (location["series"] == "transparency_report")
                          & (location["location"] == "us")]["reports"].iloc[0]
    recipients = load("recipients")
    icac = recipients[(recipients["year"] == year) & (recipients["recipient"] == "icac")]
    icac_actionable = icac[icac["label"] == "actionable"]["reports"].iloc[0]
    stages = [
        ("All CyberTipline reports", reports, "calendar_year", "reports"),
        ("Reports on U.S.-located users", us_located, "calendar_year", "reports"),
        ("Actionable deliveries to U.S. agencies", us_agency_reports().loc[year, "actionable"], "calendar_year", "deliveries"),
        ("Actionable reports made available to ICAC task forces", icac_actionable, "calendar_year", "deliveries"),
    ]
    investigations, arrests = downstream("icac", "investigations"), downstream("icac", "arrests")
    if year in investigations.index:
        stages.append(("ICAC investigations (all sources)", investigations[year], "fiscal_year", "investigations"))
    if year in arrests.index:
        stages.append(("ICAC arrests (all sources)", arrests[year], "fiscal_year", "arrests"))
    frame = pd.DataFrame(stages, columns=["stage", "count", "period", "unit"])
    frame["kind"] = frame["period"].map(YEAR_KINDS)
    frame["order"] = range(len(frame))
    frame["ratio"] = frame["count"] / frame["count"].shift(1)
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


DISTINCT = "distinct reports"
DELIVERIES = "deliveries"
RECIPIENT_NAMES = {"icac": "ICAC task forces", "local": "local agencies", "federal": "federal agencies"}  # as shown in us_counts()


def us_counts() -> pd.DataFrame:
    """Every U.S. count of CyberTipline reports the book uses or could use, one row per count and year.

    Columns: key (a stable name), count (what a reader sees), unit ("distinct reports", or
    "deliveries" where one report made available to several agencies is counted once for each),
    year, reports, qualifier, grade, source_id, locator and dataset. Sums the book forms from
    deliveries (e.g. the model's denominator) are rows too, with the grade of their weakest part.
    """
    rows = []

    def add(key, count, unit, frame, dataset, value_column="reports"):
        for _, row in frame.iterrows():
            rows.append({"key": key, "count": count, "unit": unit, "year": int(row["year"]),
                         "reports": row[value_column], "qualifier": row.get("qualifier", "exact") or "exact",
                         "grade": row["grade"], "source_id": row["source_id"], "locator": row["locator"],
                         "dataset": dataset})

    location = load("user_location")
    us = location[location["location"] == "us"]
    add("us_located", "U.S.-located users (reports to Congress)", DISTINCT,
        us[us["series"] == "transparency_report"], "user_location")
    add("by_country_us", "By-country table, U.S. row", DISTINCT,
        us[us["series"] == "by_country"], "user_location")
    other = load("us_counts")
    labels = {"by_country_referrals": "By-country table, U.S. referrals",
              "by_country_informational": "By-country table, U.S. informational",
              "ncmec_referred_us": "NCMEC statement of U.S. referrals, as quoted by a fact-check site"}
    for key, label in labels.items():
        add(key, label, DISTINCT, other[other["count"] == key], "us_counts")
    escalations = load("escalations")
    add("global_platform_us_referrals", "Global Platform, U.S. referrals", DISTINCT,
        escalations[(escalations["scope"] == "us") & (escalations["measure"] == "referrals")], "escalations")

    recipients = load("recipients")
    for recipient, name in RECIPIENT_NAMES.items():
        for label in ("actionable", "informational"):
            part = recipients[(recipients["recipient"] == recipient) & (recipients["label"] == label)]
            add(f"{recipient}_{label}", f"{name[0].upper() + name[1:]}: {label}", DELIVERIES,
                part, "recipients")

    weakest = {"primary": 0, "transcription": 1, "secondary": 2}

    def combine(key, count, parts):
        chosen = recipients[recipients.apply(lambda r: (r["recipient"], r["label"]) in parts, axis=1)]
        for year, group in chosen.groupby("year"):
            if len(group) != len(parts):
                continue
            grade = max(group["grade"], key=weakest.get)
            rows.append({"key": key, "count": count, "unit": DELIVERIES, "year": int(year),
                         "reports": group["reports"].sum(), "qualifier": "exact", "grade": grade,
                         "source_id": ", ".join(dict.fromkeys(group["source_id"])),
                         "locator": "sum of the rows above", "dataset": "recipients"})

    combine("actionable_state_local", "ICAC task forces and local agencies: actionable",
            [("icac", "actionable"), ("local", "actionable")])
    combine("all_state_local", "ICAC task forces and local agencies: all",
            [(r, lab) for r in ("icac", "local") for lab in ("actionable", "informational")])
    combine("actionable_us_agencies", "All U.S. agencies: actionable",
            [(r, "actionable") for r in RECIPIENT_NAMES])
    combine("all_us_agencies", "All U.S. agencies: all",
            [(r, lab) for r in RECIPIENT_NAMES for lab in ("actionable", "informational")])
    frame = pd.DataFrame(rows)
    frame["reports"] = frame["reports"].astype(int)
    return frame
