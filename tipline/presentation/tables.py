"""Tables for people: every table of the book, and the data table under every chart.

`table(frame, caption=..., formats=...)` is the one way a chapter shows a table (pandas' Styler
is not used: it leaves cell text unescaped unless every call asks otherwise). It writes the HTML
itself, so every header, row label, cell and caption is escaped on its way into the page (a CSV
cell with HTML in it is shown as text, never run); numbers get thousands separators by default,
missing values show as a dash, and the caption is the table's own <caption>, so it cannot drift
away from the table it describes. The only markup a chapter can add is a link (`links`), built
from escaped parts.

`data_table(spec)` turns a chart's spec into the table of what it draws: only the fields the
chart shows (its axes, legends and tooltips, in the tooltip's order), under the titles the chart
gives them, formatted as the chart formats them (d3 formats such as ",", ".1%", ".2f").
"""
from __future__ import annotations

import html
import math
import numbers
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

DASH = "\u2014"
Format = str | Callable[[object], str]


# --- values -----------------------------------------------------------------------------------

D3 = re.compile(r"(?P<comma>,)?(?:\.(?P<precision>[0-9]+))?(?P<trim>~)?(?P<kind>[dfsegr%])?")


def d3_number(value: float, spec: str | None) -> str:
    """`value` as a reader reads it, given the d3 format a chart uses for it (None: a default).

    A table shows exact values: SI prefixes ("~s", an axis's 10k) become thousands separators,
    "d" is a whole number without separators (years), a bare "%" keeps one decimal."""
    match = D3.fullmatch(spec or "")
    if not match:
        raise ValueError(f"a number format this table does not know: {spec!r}")
    comma = "," if match["comma"] or match["kind"] in ("s", None) else ""
    precision = None if match["precision"] is None else int(match["precision"])
    kind = match["kind"]
    if kind == "%":
        return f"{100 * value:{comma}.{1 if precision is None else precision}f}%"
    if kind == "d":
        return f"{round(value):d}"
    if kind == "f":
        return f"{value:{comma}.{6 if precision is None else precision}f}"
    if kind in ("e", "g", "r") and precision is not None:
        return f"{value:{comma}.{precision}g}"
    return plain_number(value)


def plain_number(value: float) -> str:
    """A whole number with thousands separators; otherwise up to three significant digits."""
    if float(value).is_integer():
        return f"{round(value):,}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f}".rstrip("0").rstrip(".")


def cell_text(value, fmt: Format | None = None) -> str:
    """One cell's text (not yet escaped): missing values as a dash, yes/no for true/false, numbers
    with thousands separators; `fmt` (a format string or a function) where a column has one."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if callable(fmt):
        return str(fmt(value))
    if isinstance(fmt, str):
        return fmt.format(value)
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Number):
        return plain_number(value)
    return str(value)


def _label(value) -> str:
    """A header or row label, escaped: names as written (a year stays 2024, not 2,024)."""
    if isinstance(value, tuple):
        return " ".join(_label(part) for part in value if str(part))
    if isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_)) and float(value).is_integer():
        return str(int(value))
    return html.escape(cell_text(value))


def _address(url: str) -> str:
    """A link's address, escaped for an attribute; only relative or http(s) addresses."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url) and not re.match(r"^https?://", url):
        raise ValueError(f"a table link must be relative or http(s): {url!r}")
    return html.escape(url, quote=True)


# --- tables written by the chapters ------------------------------------------------------------

NUMBER_TEXT = re.compile(r"(?:about |more than |at least |fewer than |under |over )?-?[0-9][0-9,]*(?:\.[0-9]+)?%?(?: [\u2020\u2021*])?")


def _numeric(texts: list[str]) -> bool:
    """A column of numbers (as shown, qualifiers and source marks allowed): aligned on the right."""
    shown = [text for text in texts if text != DASH]
    return bool(shown) and all(NUMBER_TEXT.fullmatch(text) for text in shown)


def _years(name, values: pd.Series) -> bool:
    """A column of years ("Year", "Calendar year of reports"): whole numbers written without a
    thousands separator."""
    numbers_ = pd.to_numeric(values.dropna(), errors="coerce")
    return ("year" in str(name).lower() and len(numbers_) > 0 and bool(numbers_.notna().all())
            and bool((numbers_ % 1 == 0).all()) and bool(numbers_.between(1800, 2200).all()))


def _whole(value) -> str:
    return str(int(value))


def _right(numeric: bool) -> str:
    return ' class="tipline-number"' if numeric else ""


class Table:
    """A table ready for the page: Jupyter shows its HTML; its plain repr is a short summary."""

    def __init__(self, markup: str, summary: str):
        self.html, self.summary = markup, summary

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.summary


def table(frame: pd.DataFrame, caption: str | None = None, formats: Mapping[str, Format] | None = None,
          index: bool = False, links: Mapping[str, Callable[[object], str]] | None = None) -> Table:
    """`frame` as an HTML table for readers; every piece of text in it is escaped.

    caption: what the table shows (plain text), written as its <caption> "Table: ...": the site
             numbers it ("Table 4.1: ...", tipline.site.reader), like a figure.
    formats: per column, a format string ("{:.1%}") or a function returning the cell's text;
             other numbers get thousands separators (and at most three significant decimals),
             except in a column of years (its name says "year"), which are written as they are.
    index:   show the row labels, as row headers under the index's name.
    links:   per column, a function from the cell's value to the (relative or http) address the
             cell links to.
    """
    formats, links = dict(formats or {}), dict(links or {})
    unknown = (set(formats) | set(links)) - set(frame.columns)
    if unknown:
        raise KeyError(f"formats or links for columns the table does not have: {sorted(map(str, unknown))}")
    formats.update({column: _whole for column in frame.columns if column not in formats and _years(column, frame[column])})
    texts = {column: [cell_text(value, formats.get(column)) for value in frame[column]] for column in frame.columns}
    numeric = {column: _numeric(values) for column, values in texts.items()}
    head = "".join(f'<th scope="col"{_right(numeric[name])}>{_label(name)}</th>' for name in frame.columns)
    if index:
        head = f'<th scope="col">{_label(frame.index.name or "")}</th>' + head
    rows = []
    for position, label in enumerate(frame.index):
        cells = [f'<th scope="row">{_label(label)}</th>'] if index else []
        for column in frame.columns:
            value, text = frame[column].iloc[position], html.escape(texts[column][position])
            if column in links and text != DASH:
                text = f'<a href="{_address(links[column](value))}">{text}</a>'
            # data-label: the column's header, which a table too wide for its screen shows before
            # each cell when it is laid out one row at a time (_static/tipline-site.js)
            cells.append(f'<td{_right(numeric[column])} data-label="{_label(column)}">{text}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    title = f"<caption>Table: {html.escape(caption)}</caption>" if caption else ""
    markup = (f'<table class="tipline-table">{title}<thead><tr>{head}</tr></thead>'
              f'<tbody>{"".join(rows)}</tbody></table>')
    return Table(markup, f"Table: {caption or 'untitled'} ({len(frame):,} rows)")


# --- the data drawn in a chart ------------------------------------------------------------------

# channels whose field a reader sees (an axis, a legend, a label, a tooltip) and that can name a
# field with no title; `order`, `detail` and `key` only arrange marks: their fields are internal
LEGEND_CHANNELS = {"color", "fill", "stroke", "shape", "size", "strokeDash", "opacity", "row", "column", "facet"}
SHOWN_CHANNELS = LEGEND_CHANNELS | {"x", "y", "x2", "y2", "theta", "text", "xOffset", "yOffset", "latitude", "longitude"}
# words in a title that describe the drawing, not the value: not repeated in a table's header
DRAWING_NOTE = re.compile(r"\s*\((?=[^)]*(?:scale|click|hover|median and))[^)]*\)", re.I)


class _Field:
    def __init__(self, name: str):
        self.name = name
        self.tooltip_title = self.other_title = self.format = self.axis_format = None
        self.in_tooltip = self.shown = self.categorical = False

    @property
    def header(self) -> str:
        """The tooltip's title; else the field's own name if written for readers ("Low end");
        else an axis or legend title (which may describe several fields); else the name in words."""
        title = self.tooltip_title or (self.name if _readable(self.name) else self.other_title)
        title = DRAWING_NOTE.sub("", title).strip() if title else ""
        title = title or self.name.replace("_", " ")
        return title[:1].upper() + title[1:]

    @property
    def number_format(self) -> str | None:
        """The tooltip's format (what a reader reads on hover). An axis's format only where the
        tooltip gives none: always for a field the tooltip does not show, and "d" (whole numbers:
        years on a quantitative axis) for one it does, since an axis may show the field transformed
        (a stack normalised to shares)."""
        if self.format:
            return self.format
        return self.axis_format if not self.in_tooltip or self.axis_format == "d" else None


def _fields(spec: dict) -> list[_Field]:
    """Every field the chart shows a reader, tooltip fields first in the tooltip's order, then the
    others in the order met, with the titles and number formats the spec gives them."""
    found: dict[str, _Field] = {}
    tooltip_order: list[str] = []

    def note(channel: str, definition: dict) -> None:
        field = found.setdefault(definition["field"], _Field(definition["field"]))
        title = definition.get("title") if isinstance(definition.get("title"), str) else None
        axis = definition.get("axis") if isinstance(definition.get("axis"), dict) else {}
        field.categorical = field.categorical or definition.get("type") in ("nominal", "ordinal", "temporal")
        if channel == "tooltip":
            field.in_tooltip = True
            field.tooltip_title = field.tooltip_title or title
            field.format = field.format or definition.get("format")
            if field.name not in tooltip_order:
                tooltip_order.append(field.name)
        else:
            field.other_title = field.other_title or title
            field.axis_format = field.axis_format or definition.get("format") or axis.get("format")
        field.shown = field.shown or channel in LEGEND_CHANNELS or (channel in SHOWN_CHANNELS and bool(title))

    def visit(node) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "encoding" and isinstance(value, dict):
                    for channel, definition in value.items():
                        for item in definition if isinstance(definition, list) else [definition]:
                            for part in (item, item.get("condition")) if isinstance(item, dict) else ():
                                if isinstance(part, dict) and isinstance(part.get("field"), str):
                                    note(channel, part)
                else:
                    visit(value)

    visit(spec)
    ordered = [found[name] for name in tooltip_order] + [f for name, f in found.items() if name not in tooltip_order]
    return [f for f in ordered if f.in_tooltip or f.shown or _readable(f.name)]


def _readable(name: str) -> bool:
    """A field name written for readers ("Calendar year"), not an identifier ("per_100", "x")."""
    return bool(re.search(r"[A-Z ]", name))


def data_table(spec: dict) -> str:
    """The rows a chart draws, as tables of what the reader sees, in a closed <details> element:
    readable without JavaScript, by screen readers, and in print (tipline-site.js opens them)."""
    datasets = list(spec.get("datasets", {}).values())
    if isinstance(spec.get("data"), dict) and isinstance(spec["data"].get("values"), list):
        datasets.append(spec["data"]["values"])
    fields = _fields(spec)
    tables, count = [], 0
    for rows in datasets:
        present = {key for row in rows for key in row}
        columns, headers = [], []
        for field in fields:
            header = field.header
            if field.name in present and header not in headers:  # one column per thing shown
                columns.append(field)
                headers.append(header)
        if not columns or not rows:
            continue
        frame = pd.DataFrame([[row.get(f.name) for f in columns] for row in rows], columns=headers)
        formats = {header: _value_format(field) for header, field in zip(headers, columns)}
        tables.append(table(frame, formats=formats).html.replace('class="tipline-table"', 'class="tipline-data-table"', 1))
        count += len(rows)
    if not tables:
        return ""
    return (f'<details class="tipline-chart-data"><summary>The data drawn in this chart ({count:,} '
            f'{"row" if count == 1 else "rows"})</summary>' + "".join(tables) + "</details>")


def _value_format(field: _Field) -> Callable[[object], str]:
    """How a column's values read: categories (years on an ordinal axis too) as they are; numbers
    as the chart formats them."""
    def show(value) -> str:
        if isinstance(value, numbers.Number) and not isinstance(value, bool) and not field.categorical:
            return d3_number(value, field.number_format)
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            return str(int(value)) if float(value).is_integer() else str(value)
        return cell_text(value)
    return show
