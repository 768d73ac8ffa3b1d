"""Chart theme, an offline Altair renderer, and shared chart builders (the data table under each
chart is tipline.presentation.tables, its source line tipline.presentation.notes).

The renderer writes a placeholder <div> and the chart's two layouts (for a phone and for a wider
column: tipline.presentation.layout) as data, in <script type="application/json"> blocks that no
browser executes; the site script _static/tipline-site.js draws the layout that suits the width
the chart is given, with vega, vega-lite and vega-embed from _static/tipline-charts.js (bundled from
the pinned vl-convert-python package by tipline.site.sphinx). No
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

from . import layout
from .notes import source_note  # noqa: F401  (chapters call charts.source_note)
from .tables import data_table

PALETTE = ["#1f5a96", "#c8553d", "#4f9d69", "#8a6bb1", "#d4a017", "#5b6770", "#2a9d8f", "#b5838d"]
_count = 0


def _embed(spec: dict, **_options) -> dict:
    """The placeholder of a chart and its two layouts (tipline.presentation.layout) as data: the
    wide one in the `tipline-spec` block, the phone one in the `tipline-spec-phone` block, which
    names the wide block's datasets rather than repeating them; the site script draws the one that
    suits the width the chart is given."""
    global _count
    _count += 1
    usermeta = dict(spec.get("usermeta") or {})
    own_phone = usermeta.pop("tiplinePhone", None)
    chart = {key: value for key, value in spec.items() if key != "usermeta"}
    if usermeta:
        chart["usermeta"] = usermeta
    wide, phone = layout.wide(chart), layout.phone(own_phone or chart)
    phone["datasets"] = {name: rows for name, rows in phone.get("datasets", {}).items()
                         if wide.get("datasets", {}).get(name) != rows}
    if not phone["datasets"]:
        del phone["datasets"]
    payload = json.dumps(wide, sort_keys=True, separators=(",", ":"))
    chart_id = f"chart-{hashlib.sha1(payload.encode()).hexdigest()[:10]}-{_count}"
    label = html.escape(spec.get("description", "Chart"), quote=True)
    phone_payload = json.dumps(phone, sort_keys=True, separators=(",", ":"))
    # a figure (not role="img"), so the sliders inside an interactive chart stay reachable by
    # assistive technology; focusable because a chart wider than a phone screen scrolls sideways
    return {"text/html": (f'<div class="tipline-chart" id="{chart_id}" role="figure" tabindex="0" aria-label="{label}" '
                          f'data-narrow-below="{layout.NARROW_BELOW}"></div>\n'
                          f'<script type="application/json" class="tipline-spec" data-chart="{chart_id}">{script_json(payload)}</script>\n'
                          f'<script type="application/json" class="tipline-spec-phone" data-chart="{chart_id}">{script_json(phone_payload)}</script>\n'
                          f'{data_table(chart)}')}


def phone_layout(chart: alt.TopLevelMixin, phone_chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """`chart`, drawn as `phone_chart` where it is given less than layout.NARROW_BELOW px (the
    generic phone layout is then made from `phone_chart`). For the few charts whose phone layout
    is a different design, not the same chart with lines broken and labels moved."""
    return chart.properties(usermeta={"tiplinePhone": phone_chart.to_dict()})


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


def ratio_words(ratio: float) -> str:
    """'1 in 16' or '×1.9': a stage's size against the stage above it (empty for the first stage)."""
    if ratio != ratio:  # NaN: the first stage has nothing above it
        return ""
    if ratio >= 1:
        return f"×{ratio:.1f}"
    return f"1 in {1 / ratio:,.0f}"


def funnel_chart(stages: pd.DataFrame, title: str) -> alt.LayerChart:
    """Points on a logarithmic axis (no bars from an arbitrary 1), each labelled with its count
    and its ratio to the stage above ("1 in 16", "×1.9"), coloured by the kind of year."""
    import math

    frame = stages.copy()
    frame["label"] = [f"{count:,.0f}" + (f" ({ratio_words(ratio)})" if ratio_words(ratio) else "")
                      for count, ratio in zip(frame["count"], frame["ratio"])]
    low = 10 ** math.floor(math.log10(frame["count"].min()))
    high = 10 ** math.ceil(math.log10(frame["count"].max() * 300))
    top = math.ceil(math.log10(frame["count"].max()))
    ticks = [10 ** k for k in range(int(math.log10(low)), top + 1)]
    base = alt.Chart(frame).encode(
        y=alt.Y("stage:N", sort=alt.SortField("order"), title=None, axis=alt.Axis(labelLimit=0)),
        x=alt.X("count:Q", scale=alt.Scale(type="log", domain=[low, high]),
                title="Count (logarithmic scale)", axis=alt.Axis(format="~s", values=ticks)),
    )
    points = base.mark_point(filled=True, size=110, opacity=1).encode(
        color=alt.Color("kind:N", title="Kind of year", legend=alt.Legend(labelLimit=0, columns=1),
                        scale=alt.Scale(domain=list(dict.fromkeys(frame["kind"])), range=["#1f5a96", "#c8553d"])),
        tooltip=[alt.Tooltip("stage:N", title="Stage"), alt.Tooltip("count:Q", format=",", title="Count"),
                 alt.Tooltip("kind:N", title="Kind of year"), alt.Tooltip("label:N", title="Count (size against the stage above)")],
    )
    labels = base.mark_text(align="left", dx=9, fontSize=11, color="#333333").encode(text="label:N")
    return alt.layer(points, labels).properties(width="container", height=40 * len(frame), title=title)
