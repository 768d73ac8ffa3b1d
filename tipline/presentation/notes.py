"""The source note under every chart and table: each source named once, with its locators and
grade, and a link to the data drawn. Every value from the registry is escaped on its way into the page."""
from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

from ..evidence import ledger
from ..evidence.data import datasets_read, load, sources

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


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as text that compares equal across dtypes (2024 and 2024.0 after a concat; NaN as "")."""
    def text(value) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            return repr(float(value))
        return str(value)
    return frame.map(text)


def drawn_from(frame: pd.DataFrame) -> list[str]:
    """The datasets the rows of `frame` come from: a dataset counts when some row of `frame` holds
    one of its rows (every column of the dataset present with the same values; columns a chapter
    added do not matter). A row that says where it comes from (a `dataset` column, as the rows
    tipline.estimates.model derives carry) counts for that dataset. Only the datasets the chapter
    has loaded are candidates, and every row must come from one of them: a row that matches none
    stops the chapter, naming it."""
    rows = _comparable(frame.reset_index(drop=True))
    unmatched = pd.Series(True, index=rows.index)
    found = []
    if "dataset" in rows.columns:
        named = rows["dataset"].isin(datasets_read())
        found = list(dict.fromkeys(rows.loc[named, "dataset"]))
        unmatched &= ~named
    for name in datasets_read():
        if name == "sources":
            continue
        dataset = load(name)
        if not set(dataset.columns) <= set(rows.columns):
            continue
        columns = list(dataset.columns)
        known = set(map(tuple, _comparable(dataset[columns]).itertuples(index=False)))
        here = pd.Series([tuple(row) in known for row in rows[columns].itertuples(index=False)], index=rows.index)
        if here.any():
            found += [name] if name not in found else []
            unmatched &= ~here
    if unmatched.any():
        row = frame.reset_index(drop=True).loc[unmatched.idxmax()]
        raise ValueError(f"a row of this source note matches no dataset the chapter loaded "
                         f"(source_id {row.get('source_id')!r}, locator {row.get('locator')!r}): "
                         "pass rows as they were loaded, with every column of their dataset")
    return found


def source_note(frame: pd.DataFrame, dataset: str | None = None) -> "SourceNote":
    """One compact source note for a chart or table drawn from the rows in `frame`.

    Each source is named once, however many rows cite it: a "Sources (n)" disclosure lists
    publisher, title, date, the locators used and the grade; the "Data:" line links every dataset
    the rows come from (`drawn_from`; `dataset`, if given, must be one of them). Every value from
    the registry is html-escaped on its way into the page.
    """
    drawn = drawn_from(frame)
    if dataset is not None and dataset not in drawn:
        raise ValueError(f"the source note names {dataset!r}, but its rows come from {', '.join(drawn) or 'no dataset'}")
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
    # the named dataset first, then the others alphabetically: the order the chapter happened to load
    # them in (answer.load() notes answer.json's datasets at once) must not change the page
    linked = ([dataset] if dataset else []) + sorted(set(drawn) - {dataset})
    links = ", ".join(f'<a href="../data/{html.escape(name, quote=True)}.csv" download>{html.escape(name)}.csv</a>'
                      for name in linked)
    return SourceNote(f'<div class="tipline-source"><details><summary>Sources ({len(items)})</summary>'
                      f'<ul>{"".join(items)}</ul></details><p><strong>Data:</strong> {links}</p>'
                      f'{breaks_html(frame)}</div>')  # a series break the rows cross (data/breaks.csv)


def _year(published: str) -> str:
    return published[:4] if re.fullmatch(r"[0-9]{4}", published[:4], re.ASCII) else "n.d."


def cited_years(registry: pd.DataFrame) -> dict[str, str]:
    """Each source's year as citations print it (references.bib's `year`, tipline.site.bib): when
    one publisher has several sources in a year, a letter tells them apart in the text and in the
    bibliography alike ("2024a", "2024b"; "n.d.-a"), in the order of publication date, then title."""
    rows = registry.reset_index() if "source_id" not in registry.columns else registry
    rows = rows.assign(year=rows["published"].map(_year)).sort_values(["published", "title", "source_id"], kind="stable")
    groups = rows.groupby(["publisher", "year"], sort=False)["source_id"]
    found = {}
    for source_id, year, position, size in zip(rows["source_id"], rows["year"], groups.cumcount(), groups.transform("size")):
        letter = "abcdefghijklmnopqrstuvwxyz"[position] if size > 1 else ""
        found[source_id] = year + (("-" if year == "n.d." else "") + letter if letter else "")
    return found


def citation_labels() -> dict[str, str]:
    """Each source as the text cites it and the bibliography labels it: "Publisher, 2024a"."""
    registry = sources()
    years = cited_years(registry)
    return {source_id: f"{registry.loc[source_id, 'publisher']}, {year}" for source_id, year in years.items()}


DOWNLOADS = (
    ("answer.json", "the headline figures, machine-readable: each outcome's median and interval by year and definition"),
    ("figures.json", "every figure the prose states, with its page, the sentence that states it and the datasets behind it"),
    ("datasets.zip", "every dataset of the book with its datapackage.json (a Frictionless Data Package: fields, "
                     "types, constraints and sources)"),
)


def downloads() -> "SourceNote":
    """Links to the data a reader can take away, all published beside the datasets in <site>/data/
    (tipline.site.reader writes figures.json and datasets.zip; tipline.site.sphinx answer.json)."""
    items = "".join(f'<li><a href="../data/{name}" download>{name}</a>: {html.escape(words)}</li>' for name, words in DOWNLOADS)
    return SourceNote(f'<div class="tipline-downloads"><p><strong>Take the data away.</strong></p><ul>{items}</ul></div>')


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
