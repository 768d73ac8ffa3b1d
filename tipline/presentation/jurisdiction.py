"""Charts and tables of chapter 4 (which reports are about the United States, and who receives them).

`location_chart` draws where reported users are, as shares of all reports; `us_counts_table` lays
out NCMEC's counts of U.S. reports (model.us_counts) by year, each figure with its qualifier and
the grade of its source, as the chapter's tables show them.
"""
from __future__ import annotations

import altair as alt
import pandas as pd

from ..estimates import outcomes
from . import tables
from .text import qualified

WHERE = {"us": "United States", "international": "Outside the U.S.", "unknown": "Unknown"}
# the mark after a figure that is not from the publisher itself
GRADE_MARKS = {"primary": "", "transcription": " \u2020", "secondary": " \u2021"}


def location_chart(split: pd.DataFrame) -> alt.Chart:
    """Stacked shares by year; `split` has year, location, where (WHERE's words), reports and share."""
    return alt.Chart(split, description="Stacked bars: share of reports relating to users in the United States, outside it, or at an unknown location, 2020 to 2024.").mark_bar().encode(
        x=alt.X("year:O", title="Calendar year"),
        y=alt.Y("share:Q", stack="normalize", title="Share of all reports", axis=alt.Axis(format="%")),
        color=alt.Color("where:N", title="User location", sort=["United States", "Unknown", "Outside the U.S."]),
        order=alt.Order("location:N"),
        tooltip=[alt.Tooltip("year:O", title="Calendar year"), alt.Tooltip("where:N", title="User location"),
                 alt.Tooltip("reports:Q", format=",", title="Reports"), alt.Tooltip("share:Q", format=".1%", title="Share of all reports")],
    ).properties(width="container", height=260, title="Where reported users are")


def shown_counts(counts: pd.DataFrame) -> pd.Series:
    """Each count as the tables print it: its qualifier's words, the number, and its grade's mark."""
    return pd.Series([qualified(v, q) + GRADE_MARKS[g]
                      for q, v, g in zip(counts["qualifier"], counts["reports"], counts["grade"])], index=counts.index)


def us_counts_table(counts: pd.DataFrame, unit: str, caption: str) -> tables.Table:
    """The counts of one unit (model.DISTINCT or model.DELIVERIES), a row per count in the order of
    `counts` and a column per year that has one; the model's own denominator is marked."""
    rows = counts[counts["unit"] == unit].assign(shown=lambda frame: shown_counts(frame))
    keys = list(dict.fromkeys(rows["key"]))
    years = sorted(counts["year"].unique())
    table = rows.pivot(index="key", columns="year", values="shown").reindex(index=keys, columns=years).dropna(axis=1, how="all")
    labels = rows.drop_duplicates("key").set_index("key")["count"].reindex(keys)
    labels[labels.index == outcomes.MAIN] += " (the model's denominator)"
    table.insert(0, "Count", labels)
    table.columns = [str(c) for c in table.columns]
    return tables.table(table, caption=caption)
