"""The source note under every chart and table: each source named once, with its locators and
grade, and a link to the data drawn. Every value from the registry is escaped on its way into the page."""
from __future__ import annotations

import html
import re

import pandas as pd

from ..evidence import ledger
from ..evidence.data import sources

GRADE_LABEL = {"primary": "primary source", "transcription": "third-party transcription",
               "secondary": "secondary source"}

def compact_locators(locators: pd.Series) -> str:
    """'p. 1, table X; p. 2, table X' -> 'pp. 1-2, table X'; 'entry, field a; entry, field b' ->
    'entry, field a; field b' (each locator once, in the order first met)."""
    pages: dict[str, list[int]] = {}
    others: dict[str, list[str]] = {}
    for locator in dict.fromkeys(locators):
        match = re.fullmatch(r"p\. ([0-9]+), (.+)", locator)
        if match:
            pages.setdefault(match.group(2), []).append(int(match.group(1)))
        else:
            head, _, rest = locator.partition(", ")
            others.setdefault(head, []).append(rest)
    parts = []
    for where, numbers in pages.items():
        numbers = sorted(set(numbers))
        if len(numbers) == 1:
            parts.append(f"p. {numbers[0]}, {where}")
        elif numbers == list(range(numbers[0], numbers[-1] + 1)):
            parts.append(f"pp. {numbers[0]}\u2013{numbers[-1]}, {where}")
        else:
            parts.append(f"pp. {', '.join(map(str, numbers))}, {where}")
    for head, rests in others.items():
        details = [rest for rest in rests if rest]
        parts.append(f"{head}, {'; '.join(details)}" if details else head)
    return "; ".join(parts)


def source_note(frame: pd.DataFrame, dataset: str) -> "SourceNote":
    """One compact source note for a chart or table drawn from rows of `dataset`.

    Each source is named once, however many rows cite it: a "Sources (n)" disclosure lists
    publisher, title, date, the locators used and the grade; the data link stays visible.
    Every value from the registry is html-escaped on its way into the page.
    """
    registry = sources()
    items = []
    for source_id, rows in frame.groupby("source_id", sort=False):
        entry = registry.loc[source_id]
        locators = compact_locators(rows["locator"])
        title = html.escape(entry["title"])
        if isinstance(entry["url"], str) and entry["url"]:
            title = f'<a href="{html.escape(entry["url"], quote=True)}">{title}</a>'
        items.append(f"<li>{html.escape(entry['publisher'])}, <em>{title}</em> ({html.escape(str(entry['published']))}), "
                     f"{html.escape(locators)} [{GRADE_LABEL[entry['grade']]}]</li>")
    name = html.escape(dataset, quote=True)
    link = f'<a href="../data/{name}.csv" download>{name}.csv</a>'
    return SourceNote(f'<div class="tipline-source"><details><summary>Sources ({len(items)})</summary>'
                      f'<ul>{"".join(items)}</ul></details><p><strong>Data:</strong> {link}</p>'
                      f'{breaks_html(frame)}</div>')  # a series break the rows cross (data/breaks.csv)


def breaks_html(frame: pd.DataFrame) -> str:
    """One escaped paragraph per series break (data/breaks.csv) that the rows of a chart or table
    cross, with its source and grade; empty if none."""
    registry = sources()
    parts = []
    for row in ledger.breaks_in(frame).itertuples(index=False):
        entry = registry.loc[row.source_id]
        title = html.escape(entry["title"])
        if isinstance(entry["url"], str) and entry["url"]:
            title = f'<a href="{html.escape(entry["url"], quote=True)}">{title}</a>'
        parts.append(f'<p class="tipline-break"><strong>Series break, {row.year}:</strong> {html.escape(row.what_changed)} '
                     f'(<em>{title}</em>, {html.escape(row.locator)} [{GRADE_LABEL[entry["grade"]]}])</p>')
    return "".join(parts)


class SourceNote(str):
    def _repr_html_(self) -> str:
        return str(self)
