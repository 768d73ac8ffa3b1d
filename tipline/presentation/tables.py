"""Tables escape their text: a CSV cell with HTML in it is shown as text, never run.

pandas' Styler writes cell text and header labels into the page as HTML unless told
otherwise, and the `styler.format.escape` option only covers a Styler's default formatting:
a chapter's own `.format({...})` call resets the cells it formats to no escaping, and
headers are never escaped. `escape_tables()` (called by `tipline.chapter`) makes "html" the
default of `Styler.format` and `Styler.format_index` and escapes both header axes of every
new Styler, so every table of the book escapes whatever formatting a chapter asks for. A
formatter still receives the escaped text, so code may wrap it in markup of its own, e.g.
`.format({"Dataset": lambda name: f'<a href="../data/{name}">{name}</a>'})`.
"""
from __future__ import annotations

import functools

import pandas as pd
from pandas.io.formats.style import Styler


def escape_tables() -> None:
    if getattr(Styler, "_tipline_escapes", False):
        return
    pd.set_option("styler.format.escape", "html")
    original_init, original_format, original_format_index = Styler.__init__, Styler.format, Styler.format_index

    @functools.wraps(original_format)
    def format(self, *args, escape="html", **kwargs):
        return original_format(self, *args, escape=escape, **kwargs)

    @functools.wraps(original_format_index)
    def format_index(self, *args, escape="html", **kwargs):
        return original_format_index(self, *args, escape=escape, **kwargs)

    @functools.wraps(original_init)
    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.format_index(axis=0)
        self.format_index(axis=1)

    Styler.__init__, Styler.format, Styler.format_index = init, format, format_index
    Styler._tipline_escapes = True


def _titles(node, found: dict | None = None) -> dict:
    """field name -> the title the chart gives it (axes, legends, tooltips), from anywhere in a spec."""
    found = {} if found is None else found
    if isinstance(node, dict):
        if isinstance(node.get("field"), str) and isinstance(node.get("title"), str):
            found.setdefault(node["field"], node["title"])
        for value in node.values():
            _titles(value, found)
    elif isinstance(node, list):
        for value in node:
            _titles(value, found)
    return found


def data_table(spec: dict) -> str:
    """The rows a chart is drawn from, as escaped HTML tables in a closed <details> element:
    readable without JavaScript, by screen readers, and in print (tipline-site.js opens them)."""
    datasets = list(spec.get("datasets", {}).values())
    if isinstance(spec.get("data"), dict) and isinstance(spec["data"].get("values"), list):
        datasets.append(spec["data"]["values"])
    titles = _titles(spec)
    tables = []
    for rows in datasets:
        frame = pd.DataFrame(rows)
        frame.columns = [titles.get(column, column.replace("_", " ").capitalize()) for column in frame.columns]
        tables.append(frame.to_html(index=False, border=0, escape=True, na_rep="", classes="tipline-data-table"))
    if not tables:
        return ""
    count = sum(len(rows) for rows in datasets)
    return (f'<details class="tipline-chart-data"><summary>The data drawn in this chart ({count:,} '
            f'{"row" if count == 1 else "rows"})</summary>'
            + "".join(tables) + "</details>")
