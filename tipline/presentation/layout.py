"""Two layouts of every chart: one for a phone, one for a wider column, derived from the chart's
Vega-Lite spec by the renderer (tipline.presentation.charts) and chosen by the site script
(_static/tipline-site.js) from the width the chart is given.

Vega-Lite lays a chart out inside the width it gets, but it does not wrap text: a long category
label takes a fixed share of the width, a legend stays one row, a title is cut. So the layouts are
made here, with Vega-Lite's own means:

* titles, axis titles and legend labels longer than the line allowed are broken into lines
  (arrays of strings, which Vega draws as lines; legend and axis labels through `labelExpr`);
  nothing is truncated, and the data table under the chart keeps the full text;
* legends go below the chart, in as many columns as fit (one on a phone);
* a horizontal chart whose category labels would take a large share of the width (always, on a
  phone) gets its labels above its bars or points, so the plot keeps the whole width, and the
  value labels drawn beside its marks move to the right end of the label's line;
* on a phone, panels side by side are stacked, and the panels of a compound chart, which cannot
  take the container's width in Vega-Lite, get a width the site script corrects once the chart is
  drawn (`usermeta.tiplineFit` says where).

Text widths are estimated for DejaVu Sans, the widest of the fonts `system-ui` resolves to on the
systems checked (phones' Roboto and San Francisco are narrower), so lines fit with room to spare.
"""
from __future__ import annotations

import copy
import json
import math

NARROW_BELOW = 560  # px: a chart given less width than this is drawn in its phone layout
PHONE_TEXT = 260  # px a line of text may take in the phone layout: a 320-px screen leaves a chart 280
PHONE_LEGEND = 200  # px a legend label may take on a phone: legends start where the plot does, after the y axis
WIDE_TEXT = 520  # px a line of text may take in the wide layout (at least NARROW_BELOW wide)
LINE = 15  # px from one line of 12-px text to the next
FIT_WIDTH = 240  # px: a compound chart's panel width on a phone until the site script fits it

_NARROW_CHARS = set("iljI.,:;|!'` ")
_MID_CHARS = set("ftr()[]-/")
BLANK = "\u200b"  # the text of a blank line: a zero-width space (vega trims spaces from each line)
LEGEND_CHANNELS = ("color", "fill", "stroke", "opacity", "shape", "size", "strokeDash")


def text_width(text: str, size: float = 12, bold: bool = False) -> float:
    """Width in px of `text` set in DejaVu Sans at `size` px, estimated from character classes."""
    em = 0.0
    for char in str(text):
        if char in _NARROW_CHARS:
            em += 0.3
        elif char in _MID_CHARS:
            em += 0.4
        elif char.isdigit():
            em += 0.64
        elif char in "mwMW%":
            em += 0.95
        elif char.isupper():
            em += 0.72
        else:
            em += 0.61
    return em * size * (1.1 if bold else 1.0)


def wrap(text: str, width: float, size: float = 12, bold: bool = False) -> list[str]:
    """`text` in lines of at most `width` px, broken between words (a word longer than a line stays whole)."""
    lines: list[str] = []
    for word in str(text).split():
        if lines and text_width(lines[-1] + " " + word, size, bold) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def _wrapped(text, width: float, size: float = 12, bold: bool = False):
    """A title as Vega-Lite takes it: one string if it fits on a line, else a list of lines."""
    if isinstance(text, list):
        text = " ".join(str(part) for part in text)
    if not isinstance(text, str):
        return text
    lines = wrap(text, width, size, bold)
    return lines if len(lines) > 1 else lines[0]


def label_expr(values, width: float, lines: int | None = None) -> tuple[str | None, int]:
    """A Vega expression breaking each label among `values` into lines of at most `width` px, and
    the most lines any label takes. With `lines`, every label becomes exactly that many lines,
    blank ones first, so labels drawn downwards from one point (baseline "top") all end level."""
    broken = {value: wrap(value, width) for value in values if isinstance(value, str)}
    most = max([len(parts) for parts in broken.values()] + [1])
    if lines is None:
        chosen = {value: parts for value, parts in broken.items() if len(parts) > 1}
        default = "datum.label"
    else:
        # a blank line holds a zero-width space: SVG moves a line down by its first character, and an
        # empty line has none (two empty lines in a row would collapse into one)
        chosen = {value: [BLANK] * (lines - len(parts)) + parts for value, parts in broken.items()}
        default = "[" + "".join(f"{json.dumps(BLANK)}, " for _ in range(lines - 1)) + "datum.label]" if lines > 1 else "datum.label"
    chosen = {value: parts for value, parts in chosen.items() if len(parts) > 1}
    if not chosen:
        return None, most
    # data reach the expression only as JSON string literals (quotes and backslashes escaped)
    keys, texts = json.dumps(list(chosen)), json.dumps(list(chosen.values()))
    return f"indexof({keys}, datum.label) >= 0 ? {texts}[indexof({keys}, datum.label)] : {default}", most


def _rows(node, found: list) -> list:
    """Every inline data row in a spec: its datasets and any data.values, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasets" and isinstance(value, dict):
                for rows in value.values():
                    found.extend(row for row in rows if isinstance(row, dict))
            elif key == "values" and isinstance(value, list) and value and isinstance(value[0], dict):
                found.extend(row for row in value if isinstance(row, dict))
            else:
                _rows(value, found)
    elif isinstance(node, list):
        for value in node:
            _rows(value, found)
    return found


def _values(rows: list, field: str) -> list:
    return list(dict.fromkeys(row[field] for row in rows if field in row and isinstance(row[field], (str, int, float))))


def _units(node, inherited: dict | None = None):
    """(unit spec, its encoding merged with its parents') for every single view under `node`."""
    if not isinstance(node, dict):
        return
    encoding = dict(inherited or {})
    encoding.update(node.get("encoding") or {})
    if "mark" in node:
        yield node, encoding
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for child in node.get(key, []):
            yield from _units(child, encoding)
    if isinstance(node.get("spec"), dict):
        yield from _units(node["spec"], encoding)


def _mark(unit: dict) -> str:
    return unit["mark"]["type"] if isinstance(unit["mark"], dict) else unit["mark"]


def _discrete(channel) -> bool:
    return isinstance(channel, dict) and channel.get("type") in ("nominal", "ordinal") and "field" in channel


def _continuous(channel) -> bool:
    return isinstance(channel, dict) and (channel.get("type") == "quantitative" or "datum" in channel or "aggregate" in channel)


def _title(spec: dict, width: float) -> None:
    title = spec.get("title")
    if isinstance(title, str) and text_width(title, 14, True) > width:
        spec["title"] = {"text": _wrapped(title, width, 14, True)}
    elif isinstance(title, dict):
        if isinstance(title.get("text"), (str, list)):
            title["text"] = _wrapped(title["text"], width, 14, True)
        if isinstance(title.get("subtitle"), (str, list)):
            title["subtitle"] = _wrapped(title["subtitle"], width, 12)


def _legends(root: dict, rows: list, width: float, phone: bool) -> None:
    """Every legend below the chart, labels never cut: long ones broken into lines, in as many
    columns as the width holds (one on a phone)."""
    legends = []
    for unit, _ in _units(root):
        for name, channel in (unit.get("encoding") or {}).items():
            if name in LEGEND_CHANNELS and isinstance(channel, dict) and "field" in channel and channel.get("legend", {}) is not None:
                legends.append(channel)
    fields = list(dict.fromkeys(channel["field"] for channel in legends))
    share = width / max(len(fields), 1) if not phone else PHONE_LEGEND + 30
    for channel in legends:
        values = [value for value in _values(rows, channel["field"]) if isinstance(value, str)]
        legend = channel.get("legend") or {}
        for key in ("columns", "orient", "direction", "labelLimit", "titleLimit"):
            legend.pop(key, None)
        expr, _ = label_expr(values, share - 30)
        if expr and "labelExpr" not in legend:
            legend["labelExpr"] = expr
        widest = max([min(text_width(value), share - 30) for value in values] + [40])
        legend["columns"] = 1 if phone else max(1, min(len(values) or 1, math.floor(share / (widest + 40))))
        legend.update({"orient": "bottom", "labelLimit": 0, "titleLimit": 0})
        if isinstance(channel.get("title"), (str, list)):
            channel["title"] = _wrapped(channel["title"], share - 10, 12, True)
        channel["legend"] = legend


def _labels_above(root: dict, rows: list, width: float, phone: bool) -> None:
    """A horizontal chart (categories on y, quantities on x) with its category labels above its
    marks: the plot keeps the whole width. On a phone always; in a wide column when the labels
    would take more than a third of it."""
    views = [(unit, encoding) for unit, encoding in _units(root)
             if _discrete(encoding.get("y")) and (_continuous(encoding.get("x")) or encoding.get("x") is None)
             and isinstance((unit.get("encoding") or {}).get("y"), dict)]
    if not views:
        return
    field = views[0][1]["y"]["field"]
    values = [str(value) for value in _values(rows, field)]
    if not phone and max([text_width(value) for value in values] + [0]) <= width / 3:
        return
    if any((unit["encoding"]["y"].get("axis", {}) is None) for unit, _ in views):
        return
    # value labels beside the marks move to the right end of the label's line: make room for them
    texts = [unit for unit, encoding in views if _mark(unit) == "text" and isinstance((unit.get("encoding") or {}).get("x"), dict)
             and "field" in unit["encoding"]["x"]]
    room = 0
    for unit in texts:
        shown = (unit.get("encoding") or {}).get("text") or {}
        if isinstance(shown, dict) and "field" in shown:
            texts_shown = _values(rows, shown["field"])
            fmt = shown.get("format", "")
            room = max([room] + [text_width(f"{value:,.0f}" if isinstance(value, (int, float)) and "," in fmt else str(value), 11) + 12
                                 for value in texts_shown])
    _, lines = label_expr(values, width - room)
    expr, _ = label_expr(values, width - room, lines=lines)
    offset_band = 0
    for unit, encoding in views:
        offset = encoding.get("yOffset")
        per_item = 12 if _mark(unit) in ("bar", "rect") else 10
        if isinstance(offset, dict) and "field" in offset:
            offset_band = max(offset_band, len(_values(rows, offset["field"])) * per_item)
    band = offset_band or (16 if any(_mark(unit) in ("bar", "rect") for unit, _ in views) else 12)
    step = lines * LINE + band + 12
    inner = round(1 - band / step, 3)
    for unit, encoding in views:
        channel = unit["encoding"]["y"]
        axis = channel.get("axis") or {}
        axis.update({"labelAlign": "left", "labelBaseline": "top", "labelLineHeight": LINE, "labelPadding": -1,
                     "labelOffset": -(band // 2 + 3 + lines * LINE), "labelLimit": 0, "ticks": False, "domain": False,
                     "title": None, "orient": "left"})
        if expr:
            axis["labelExpr"] = expr
        channel["axis"] = axis
        channel["title"] = None
        scale = channel.get("scale") or {}
        if offset_band or _mark(unit) in ("bar", "rect"):
            # the band holds the marks; the inner padding above each band holds its label
            scale.update({"paddingInner": inner, "paddingOuter": round(inner / 2 + 0.05, 3), "align": 0.9})
        else:
            scale.update({"padding": 0.55, "align": 0.9})
        channel["scale"] = scale
    for unit in texts:
        mark = unit["mark"] if isinstance(unit["mark"], dict) else {"type": unit["mark"]}
        mark.update({"align": "right", "baseline": "top", "dx": 0, "dy": -(band // 2 + 3 + LINE)})
        unit["mark"] = mark
        unit["encoding"]["x"] = {"value": "width"}
    view = root.get("spec", root) if "facet" in root else root
    view["height"] = {"step": step, "for": "position"} if offset_band else {"step": step}


def _stack_panels(spec: dict, rows: list) -> None:
    """Panels side by side, one above the other, their headers broken into lines; panel widths for
    the site script to fit."""
    if "hconcat" in spec:
        spec["vconcat"] = spec.pop("hconcat")
    facet = spec.get("facet")
    if isinstance(facet, dict) and isinstance(facet.get("column"), dict):
        column = facet.pop("column")
        if not facet:  # a column facet alone becomes a wrapped facet of one column
            spec["facet"] = column
            spec["columns"] = 1
        header = column.get("header") or {}
        header.update({"labelOrient": "top", "labelAnchor": "start", "labelAlign": "left", "labelAngle": 0, "labelLimit": 0})
        expr, _ = label_expr(_values(rows, column.get("field", "")), PHONE_TEXT - 60)
        if expr:
            header["labelExpr"] = expr
        column["header"] = header
    paths = []
    if "facet" in spec or "repeat" in spec:
        spec.pop("width", None)
        spec.setdefault("spec", {})["width"] = FIT_WIDTH
        paths.append(["spec", "width"])
    for key in ("vconcat", "concat"):
        for index, child in enumerate(spec.get(key, [])):
            child["width"] = FIT_WIDTH
            paths.append([key, index, "width"])
    if paths:
        spec.setdefault("usermeta", {})["tiplineFit"] = paths


def _axis_titles(root: dict, width: float) -> None:
    for unit, _ in _units(root):
        channel = (unit.get("encoding") or {}).get("x")
        if isinstance(channel, dict) and isinstance(channel.get("title"), (str, list)):
            channel["title"] = _wrapped(channel["title"], width - 20, 12, True)


def _constant_texts(root: dict, width: float) -> None:
    for unit, _ in _units(root):
        shown = (unit.get("encoding") or {}).get("text")
        if isinstance(shown, dict) and isinstance(shown.get("value"), str) and text_width(shown["value"]) > width - 20:
            shown["value"] = wrap(shown["value"], width - 20)


def phone(spec: dict) -> dict:
    """The chart's layout for a phone (under NARROW_BELOW px)."""
    spec = copy.deepcopy(spec)
    rows = _rows(spec, [])
    config = spec.setdefault("config", {})
    # several legends one below the other, not side by side
    config.setdefault("legend", {}).update({"orient": "bottom", "direction": "vertical", "labelLimit": 0, "titleLimit": 0,
                                            "layout": {"bottom": {"direction": "vertical", "anchor": "start"}}})
    config.setdefault("axis", {}).update({"labelOverlap": True, "titleLimit": 0})
    config.setdefault("axisX", {}).update({"labelAngle": 0})
    _title(spec, PHONE_TEXT)
    _stack_panels(spec, rows)
    _legends(spec, rows, PHONE_TEXT, phone=True)
    _labels_above(spec, rows, PHONE_TEXT, phone=True)
    _axis_titles(spec, PHONE_TEXT)
    _constant_texts(spec, PHONE_TEXT)
    return spec


def wide(spec: dict) -> dict:
    """The chart's layout for a column at least NARROW_BELOW px wide (and for print)."""
    spec = copy.deepcopy(spec)
    rows = _rows(spec, [])
    _title(spec, WIDE_TEXT)
    _legends(spec, rows, WIDE_TEXT, phone=False)
    _labels_above(spec, rows, WIDE_TEXT, phone=False)
    return spec
