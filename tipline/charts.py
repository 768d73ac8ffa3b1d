"""Chart theme, an offline Altair renderer, and the source line under every chart.

The renderer writes a placeholder <div> and the chart's spec as data, in a
<script type="application/json"> block that no browser executes; the one site script
_static/tipline-charts.js (vega, vega-lite and vega-embed bundled from the pinned
vl-convert-python package by tipline.sphinx) reads every such block and draws it. No
inline code per chart, so the pages' Content-Security-Policy can forbid inline scripts.
Nothing is fetched from a CDN, and ids are derived from the spec, so re-executing a
notebook gives byte-identical output for nbval.
"""
from __future__ import annotations

import hashlib
import html
import json
import re

import altair as alt
import pandas as pd

from .data import sources

PALETTE = ["#1f5a96", "#c8553d", "#4f9d69", "#8a6bb1", "#d4a017", "#5b6770", "#2a9d8f", "#b5838d"]
GRADE_LABEL = {"primary": "primary source", "transcription": "third-party transcription",
               "secondary": "secondary source"}
_count = 0


def _embed(spec: dict, **_options) -> dict:
    global _count
    _count += 1
    payload = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    chart_id = f"chart-{hashlib.sha1(payload.encode()).hexdigest()[:10]}-{_count}"
    label = html.escape(spec.get("description", "Chart"), quote=True)
    # a figure (not role="img"), so the sliders inside an interactive chart stay reachable by
    # assistive technology; focusable because a chart wider than a phone screen scrolls sideways
    return {"text/html": (f'<div class="tipline-chart" id="{chart_id}" role="figure" tabindex="0" aria-label="{label}">'
                          f'</div>\n<script type="application/json" class="tipline-spec" data-chart="{chart_id}">'
                          f'{script_json(payload)}</script>\n{data_table(spec)}')}


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


def script_json(payload: str) -> str:
    """JSON text safe inside any <script> element: no cell text can close the element or open
    an HTML comment there (<!--<script>), because < > & are written as JSON escapes."""
    return payload.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


SPEC_BLOCK = re.compile(r'<script type="application/json" class="tipline-spec" data-chart="([^"]+)">(.*?)</script>', re.S)


def specs(page: str) -> dict[str, dict]:
    """The chart specs embedded in a built page, by chart id (for tests and tools)."""
    return {chart_id: json.loads(text) for chart_id, text in SPEC_BLOCK.findall(page)}


def _theme() -> alt.theme.ThemeConfig:
    return {
        "config": {
            "background": "#ffffff",
            "font": "system-ui, -apple-system, 'Segoe UI', sans-serif",
            "view": {"stroke": None, "continuousWidth": 600, "continuousHeight": 300},
            "range": {"category": PALETTE},
            "axis": {"labelFontSize": 12, "titleFontSize": 12, "gridColor": "#e6e6e6",
                     "labelColor": "#333333", "titleColor": "#333333"},
            "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom",
                       "labelColor": "#333333", "titleColor": "#333333"},
            "title": {"fontSize": 14, "anchor": "start", "color": "#222222"},
        }
    }


def setup() -> None:
    """Register the offline renderer and the house theme; call once per notebook."""
    global _count
    _count = 0
    alt.renderers.register("tipline", _embed)
    alt.renderers.enable("tipline")
    alt.theme.register("tipline", enable=True)(_theme)
    alt.data_transformers.disable_max_rows()


def _compact(locators: pd.Series) -> str:
    """'p. 1, table X; p. 2, table X' -> 'pp. 1-2, table X' (other locators kept as they are)."""
    pages: dict[str, list[int]] = {}
    others = []
    for locator in dict.fromkeys(locators):
        match = re.fullmatch(r"p\. (\d+), (.+)", locator)
        if match:
            pages.setdefault(match.group(2), []).append(int(match.group(1)))
        else:
            others.append(locator)
    parts = []
    for where, numbers in pages.items():
        numbers = sorted(set(numbers))
        if len(numbers) == 1:
            parts.append(f"p. {numbers[0]}, {where}")
        elif numbers == list(range(numbers[0], numbers[-1] + 1)):
            parts.append(f"pp. {numbers[0]}\u2013{numbers[-1]}, {where}")
        else:
            parts.append(f"pp. {', '.join(map(str, numbers))}, {where}")
    return "; ".join(parts + others)


def source_note(frame: pd.DataFrame, dataset: str) -> "SourceNote":
    """The source line for a chart or table drawn from rows of `dataset`."""
    registry = sources()
    parts = []
    for source_id, rows in frame.groupby("source_id", sort=False):
        entry = registry.loc[source_id]
        locators = _compact(rows["locator"])
        title = html.escape(entry["title"])
        if isinstance(entry["url"], str) and entry["url"]:
            title = f'<a href="{html.escape(entry["url"], quote=True)}">{title}</a>'
        parts.append(f"{html.escape(entry['publisher'])}, <em>{title}</em> ({html.escape(entry['published'])}), "
                     f"{html.escape(locators)} [{GRADE_LABEL[entry['grade']]}]")
    link = f'<a href="../data/{dataset}.csv" download>{dataset}.csv</a>'
    return SourceNote("<p class=\"tipline-source\"><strong>Source:</strong> " + " · ".join(parts)
                      + f". <strong>Data:</strong> {link}.</p>")


class SourceNote(str):
    def _repr_html_(self) -> str:
        return str(self)
