"""Every sentence true (issue 10): what a reader sees in the built book.

* no raw MyST role ({glue:text}, {cite:p} ...) and no unresolved glue key in any page;
* no snake_case value (a column name such as calendar_year) in any chart's axis, legend, facet
  header, tooltip or text label;
* each chart's source note names each source once, and says how many;
* a guarded sentence the data no longer support stops the build, publishes nothing and is quoted.
"""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from helpers import execute_chapter, visible_text
from tipline.evidence import ledger
from tipline.evidence.data import DataError, load, package
from tipline.presentation.notes import source_note
from tipline.presentation.text import FalseSentence, break_words, claim, pick, qualified

SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


# ---------------------------------------------------------------- finding what readers see

def chart_specs(html: str) -> list[dict]:
    """The Vega-Lite spec of every chart on a page.

    Specs are written either inline, as `tiplineEmbed("id", {...});`, or in
    `<script type="application/json">` blocks read by one site script; both are found here, so a
    change of renderer only needs this function adapted.
    """
    found = [m.group(1) for m in re.finditer(r'tiplineEmbed\("[^"]+", (\{.*?\})\);</script>', html, re.S)]
    found += [m.group(1) for m in re.finditer(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S)]
    specs = []
    for text in found:
        spec = json.loads(text.replace("<\\/", "</"))
        if isinstance(spec, dict) and "spec" in spec and "$schema" not in spec:
            spec = spec["spec"]  # a block may wrap the spec with its options
        if isinstance(spec, dict) and ("mark" in spec or "layer" in spec or "facet" in spec or "spec" in spec
                                       or "hconcat" in spec or "vconcat" in spec or "concat" in spec):
            specs.append(spec)
    return specs


CHANNELS_WITH_TITLE = ("x", "y", "color", "opacity", "shape", "size", "strokeDash", "column", "row", "facet", "fill", "stroke")
CHANNELS_WITH_VALUES = ("color", "opacity", "shape", "size", "strokeDash", "column", "row", "facet", "fill", "stroke", "text", "tooltip")


def _definitions(node, inherited_data=None):
    """(channel, field definition, data name) for every encoding in a spec, layers and facets included."""
    if isinstance(node, dict):
        data = node.get("data", {}).get("name", inherited_data) if isinstance(node.get("data"), dict) else inherited_data
        for channel, definition in (node.get("encoding") or {}).items():
            for one in definition if isinstance(definition, list) else [definition]:
                if isinstance(one, dict):
                    yield channel, one, data
        if isinstance(node.get("facet"), dict):
            facet = node["facet"]
            if "field" in facet:
                yield "facet", facet, data
            for channel in ("row", "column"):
                if isinstance(facet.get(channel), dict):
                    yield channel, facet[channel], data
        for key in ("layer", "hconcat", "vconcat", "concat"):
            for child in node.get(key, []):
                yield from _definitions(child, data)
        if isinstance(node.get("spec"), dict):
            yield from _definitions(node["spec"], data)


def _shown_title(channel: str, definition: dict) -> str | None:
    """The title a reader sees for a channel, or None when none is drawn."""
    if channel in ("xOffset", "yOffset", "order", "detail", "x2", "y2", "text"):
        return None
    if definition.get("legend", {}) is None and channel not in ("x", "y"):
        return None
    if definition.get("axis", {}) is None and channel in ("x", "y"):
        return None
    if channel in ("column", "row", "facet") and (definition.get("header") or {}).get("title") is None and "title" in (definition.get("header") or {}):
        return None
    if "title" in definition:
        title = definition["title"]
        return None if title is None else " ".join(title) if isinstance(title, list) else str(title)
    if channel not in CHANNELS_WITH_TITLE + ("tooltip",):
        return None
    return definition.get("field")  # Vega-Lite falls back to the field name


def problems_in_spec(spec: dict) -> list[str]:
    """Every snake_case title or value a reader could see in the chart."""
    datasets = spec.get("datasets", {})
    found = []
    for channel, definition, data in _definitions(spec):
        title = _shown_title(channel, definition)
        if title and SNAKE.search(title):
            found.append(f"{channel} title {title!r}")
        field = definition.get("field")
        shows_values = channel in CHANNELS_WITH_VALUES or (
            channel in ("x", "y") and definition.get("type") in ("nominal", "ordinal")
            and (definition.get("axis") or {}).get("labels", True) is not False and definition.get("axis", {}) is not None)
        if channel in ("color", "opacity", "shape", "size", "strokeDash", "fill", "stroke") and definition.get("legend", {}) is None:
            shows_values = False
        if field and shows_values:
            rows = [row for name, table in datasets.items() if data in (None, name) for row in table]
            for value in {row.get(field) for row in rows if isinstance(row, dict)}:
                if isinstance(value, str) and SNAKE.search(value):
                    found.append(f"{channel} value {value!r} of field {field!r}")
    return found


def source_notes(html: str) -> list[str]:
    return re.findall(r'<div class="tipline-source">.*?</div>', html, re.S)


# ---------------------------------------------------------------- the helpers can fail

def test_spec_checker_finds_raw_field_names_and_values():
    spec = {"data": {"name": "d"}, "datasets": {"d": [{"period": "calendar_year", "n": 1}]}, "mark": "point",
            "encoding": {"x": {"field": "n", "type": "quantitative", "title": "Count"},
                         "color": {"field": "period", "type": "nominal", "title": "Kind of year"},
                         "tooltip": [{"field": "arrests_per_100", "type": "quantitative"}]}}
    found = problems_in_spec(spec)
    assert "color value 'calendar_year' of field 'period'" in found
    assert "tooltip title 'arrests_per_100'" in found
    spec["datasets"]["d"][0]["period"] = "Calendar year"
    spec["encoding"]["tooltip"][0]["title"] = "Arrests per 100 reports"
    assert problems_in_spec(spec) == []


def test_spec_finder_reads_both_embeddings():
    inline = '<div></div><script>tiplineEmbed("chart-1", {"mark":"bar","title":"a<\\/b"});</script>'
    block = '<script type="application/json" id="x">{"mark":"line"}</script>'
    assert [s["mark"] for s in chart_specs(inline + block)] == ["bar", "line"]


def test_claim_and_pick_refuse_what_the_data_do_not_support():
    with pytest.raises(FalseSentence, match="rose in every year"):
        claim("k", "Reports rose in every year.", False)
    assert pick("k2", -3, above="rose", below="fell") == "fell"
    with pytest.raises(FalseSentence):
        pick("k3", float("nan"), above="rose", below="fell")


# ---------------------------------------------------------------- series breaks (issue 22)

def test_a_span_that_crosses_a_break_says_so():
    words = break_words("recipients", 2020, 2023)
    assert words.startswith("Series break in 2022.") and "differentiated between actionable and informational" in words
    assert break_words("recipients", 2022, 2023) == ""  # starts on the new basis: nothing to disclose
    assert break_words("reports_annual", 2023, 2024).startswith("Series break in 2024 (a secondary source).")


def test_adding_a_break_row_makes_its_disclosure_appear():
    table = load("breaks")
    assert ledger.breaks_within("feedback", 2020, 2023, table=table).empty
    added = pd.concat([table, pd.DataFrame([{"dataset": "feedback", "series": "", "year": 2021, "what_changed": "A test change.",
                                             "source_id": "ncmec_ojjdp_2023", "locator": "p. 10", "grade": "primary",
                                             "period": "calendar_year"}])], ignore_index=True)
    assert list(ledger.breaks_within("feedback", 2020, 2023, table=added)["year"]) == [2021]
    rows = load("feedback").query("recipient == 'icac'")
    assert list(ledger.breaks_in(rows, table=added)["year"]) == [2021]
    assert ledger.breaks_in(rows.query("year >= 2021"), table=added).empty


def test_a_break_of_one_series_concerns_only_its_rows():
    table = pd.concat([load("breaks"), pd.DataFrame([{"dataset": "esp_reports", "series": "provider == 'Facebook'", "year": 2022,
                                                      "what_changed": "A test change to one provider's count.",
                                                      "source_id": "ncmec_esp_2022", "locator": "p. 3", "grade": "primary",
                                                      "period": "calendar_year"}])], ignore_index=True)
    esp = load("esp_reports").query("year >= 2021 and year <= 2023")
    facebook, google = esp[esp["provider"] == "Facebook"], esp[esp["provider"] == "Google"]
    assert list(ledger.breaks_in(facebook, table=table)["year"]) == [2022]
    assert ledger.breaks_in(google, table=table).empty
    assert list(ledger.breaks_within("esp_reports", 2021, 2023, rows=google, table=table)["year"]) == []
    assert list(ledger.breaks_within("esp_reports", 2021, 2023, rows=facebook, table=table)["year"]) == [2022]


def test_every_source_note_shows_the_breaks_its_rows_cross():
    recipients = load("recipients").query("recipient == 'icac'")
    assert "Series break, 2022:" in source_note(recipients.query("year in [2021, 2022]"), "recipients")
    assert "Series break" not in source_note(recipients.query("year in [2022, 2023]"), "recipients")
    # rows of several datasets, concatenated as the chapters do, are still recognised
    mixed = pd.concat([load("feedback").query("recipient == 'icac'"), recipients.query("year in [2020, 2023]")])
    assert "Series break, 2022:" in source_note(mixed, "feedback")


def test_a_break_whose_series_names_no_column_is_refused(tmp_path):
    breaks = load("breaks")
    breaks.loc[0, "series"] = "colour == 'blue'"
    with pytest.raises(DataError, match=r"breaks\.csv, line 2, column 'series'.*unknown column 'colour'"):
        ledger.check_breaks(breaks, list(range(2, len(breaks) + 2)), package(), tmp_path / "breaks.csv")


def test_counts_carry_their_sources_qualifier():
    assert qualified(12600, "more_than") == "more than 12,600"
    assert qualified(203467, "approximately") == "approximately 203,467"
    assert qualified(949287, "exact") == "949,287"


# ---------------------------------------------------------------- the built book

def _pages(built_site):
    return sorted(built_site.rglob("*.html"))


def test_no_raw_role_or_unresolved_glue_key_in_any_page(built_site):
    bad = []
    for page in _pages(built_site):
        html = page.read_text()
        text = visible_text(html)
        for pattern in (r"\{glue:[a-z]+\}", r"\{cite:[a-z]+\}", r"\{(?:ref|numref|doc|eq)\}", r"glue:text"):
            for match in re.finditer(pattern, text):
                bad.append(f"{page.relative_to(built_site)}: {text[max(0, match.start() - 40):match.end() + 40]!r}")
        if 'class="problematic"' in html:
            bad.append(f"{page.relative_to(built_site)}: a role docutils could not resolve")
    assert not bad, "\n".join(bad[:20])


def test_no_snake_case_shown_in_any_chart(built_site):
    bad, charts = [], 0
    for page in _pages(built_site):
        for spec in chart_specs(page.read_text()):
            charts += 1
            bad += [f"{page.name}: {problem}" for problem in problems_in_spec(spec)]
    assert charts > 20, f"only {charts} charts found: has the way specs are embedded changed?"
    assert not bad, "\n".join(bad[:30])


def test_each_chart_source_note_names_each_source_once(built_site):
    checked = 0
    for page in sorted((built_site / "chapters").glob("*.html")):
        html = page.read_text()
        positions = [m.start() for m in re.finditer(r'class="tipline-chart"', html)]
        for position in positions:
            following = re.search(r'<div class="tipline-source">.*?</div>', html[position:], re.S)
            if following is None:
                continue  # test_build checks that every chart has a source line
            note = following.group(0)
            titles = re.findall(r"<li>.*?<em>(.*?)</em>", note, re.S)
            declared = re.search(r"Sources \(([0-9]+)\)", note)
            assert declared, f"{page.name}: a source note without its count"
            assert int(declared.group(1)) == len(titles), f"{page.name}: 'Sources ({declared.group(1)})' lists {len(titles)}"
            duplicates = {t for t in titles if titles.count(t) > 1}
            assert not duplicates, f"{page.name}: a source note names {duplicates} more than once"
            assert re.search(r'href="\.\./data/[^"]+\.csv" download', note), f"{page.name}: source note without a data link"
            checked += 1
    assert checked > 20


@pytest.mark.full
@pytest.mark.parametrize("chapter, key, words", [
    ("06_interpretations", "ch6_feedback", "fell from about 68 to about"),
    ("safe_to_say", "sts_s9", "feedback instances per 100 actionable reports made available to them in 2020")])
def test_a_guarded_sentence_the_data_no_longer_support_stops_its_chapter(edited_data, tmp_path, chapter, key, words):
    """Both guarded feedback sentences (this took in test_safe_to_say's execution of its page and the
    whole-book rebuild that stopped on whichever came first): each chapter executed on its own
    against data in which ICAC feedback in 2023 is raised so far that the rate no longer fell from
    2020. That a failing chapter stops `make book` and publishes nothing is tests/test_build.py's."""
    edited_data.replace("feedback.csv", "2023,icac,312343,", "2023,icac,912343,")
    result = execute_chapter(chapter, edited_data.path, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "FalseSentence" in output and f"sentence '{key}'" in output, output[-3000:]
    assert words in output, "the message does not quote the sentence"
