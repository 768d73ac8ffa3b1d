"""What readers take away: numbered figures with permanent links, each chart's data as a table,
PNG and SVG downloads carrying the figure's caption and source line, a citation and a
last-updated date on every page (tipline/reader.py, _static/tipline-readers.js)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
import yaml

from conftest import ROOT
from tipline.charts import specs
from tipline.reader import data_tables, last_updated

CHAPTERS = ["summary", "01_referral", "02_reporters", "03_urgency", "04_jurisdiction", "05_platforms_policy",
            "06_interpretations", "best_inference", "appendix_data", "appendix_reproducibility", "appendix_claims",
            "appendix_dive_arrests", "appendix_dive_encryption", "appendix_dive_triage", "bibliography"]


class _Tables(HTMLParser):
    """The tables inside each chart-data <details>, by chart id: [(dataset, header, rows)]."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list] = {}
        self.chart = self.cell = None
        self.row: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "details" and "tipline-chart-data" in (attrs.get("class") or ""):
            self.chart = attrs["data-chart"]
            self.tables[self.chart] = []
        elif self.chart and tag == "table":
            self.tables[self.chart].append((attrs["data-dataset"], [], []))
        elif self.chart and tag == "tr":
            self.row = []
        elif self.chart and tag in ("td", "th"):
            self.cell = ""

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if self.chart and tag in ("td", "th") and self.row is not None:
            self.row.append(self.cell)
            self.cell = None
        elif self.chart and tag == "tr":
            _, header, rows = self.tables[self.chart][-1]
            (rows if header else header).extend([self.row] if header else self.row)
            self.row = None
        elif tag == "details":
            self.chart = None


def _page(built_site, name):
    return (built_site / "chapters" / f"{name}.html").read_text(encoding="utf-8")


def test_every_chart_has_a_numbered_caption_an_anchor_and_a_copy_link(built_site):
    seen = 0
    for name in CHAPTERS:
        html = _page(built_site, name)
        charts = re.findall(r'<div class="tipline-chart" id="([^"]+)" data-figure="([^"]+)"', html)
        assert len(charts) == html.count('class="tipline-chart"'), f"{name}: a chart without a figure number"
        seen += len(charts)
        for index, (_, anchor) in enumerate(charts, 1):
            assert re.fullmatch(r"figure-([0-9]+-|[a-f]-)?[0-9]+", anchor), anchor
            assert anchor.endswith(f"-{index}"), f"{name}: figures out of order ({anchor} is chart {index})"
            assert html.count(f'id="{anchor}"') == 1, f"{name}: anchor {anchor} missing or repeated"
            assert f'href="#{anchor}"' in html, f"{name}: no permalink to {anchor}"
            assert f'class="tipline-copy-link" data-anchor="{anchor}"' in html, f"{name}: no copy-link button for {anchor}"
    assert seen >= 30
    # chapter numbers follow the table of contents, appendix letters the appendix titles
    assert 'data-figure="figure-3-2"' in _page(built_site, "03_urgency")
    assert re.search(r'href="#figure-3-2">Figure 3\.2</a></strong>: <em>reports by category', _page(built_site, "03_urgency"))
    assert 'data-figure="figure-c-1"' in _page(built_site, "appendix_claims")
    assert "Figure: " not in re.sub(r"<[^>]+>", "", _page(built_site, "02_reporters")), "an unnumbered caption is left"


def test_every_chart_has_its_data_as_a_table_with_the_rows_it_was_given(built_site):
    for name in CHAPTERS:
        html = _page(built_site, name)
        parser = _Tables()
        parser.feed(html)
        charts = specs(html)
        assert set(parser.tables) == set(charts), f"{name}: charts and data tables differ"
        for chart_id, spec in charts.items():
            expected = data_tables(spec)
            found = parser.tables[chart_id]
            assert [table[0] for table in found] == [table[0] for table in expected], (name, chart_id)
            for (_, header, rows), (_, columns, values) in zip(found, expected):
                assert header == columns and rows == values, f"{name}: the table under {chart_id} is not its data"
                assert rows, f"{name}: an empty data table under {chart_id}"


def test_data_tables_escape_their_cells():
    from tipline.reader import _table_html

    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    html = _table_html("Figure 1", "chart-1", {"datasets": {"d": [{"note": hostile, hostile: 1}]}})
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_every_page_has_a_citation_and_a_last_updated_date(built_site):
    record = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    for name in CHAPTERS:
        html = _page(built_site, name)
        meta = re.search(r'<section class="tipline-page-meta".*?</section>', html, re.S)
        assert meta, f"{name}: no citation"
        date = re.search(r'Last updated <time datetime="([0-9]{4}-[0-9]{2}-[0-9]{2})" data-from="(git|file)">\1</time>', meta.group(0))
        assert date, f"{name}: no last-updated date"
        citation = re.sub(r"<[^>]+>", "", re.search(r'<p class="tipline-citation">(.*?)</p>', meta.group(0), re.S).group(0))
        title = re.search(r"<title>(.*?)(?: &#8212;| —)", html).group(1)
        for part in (record["authors"][0]["name"], f"version {record['version']}", f"chapters/{name}.html", date.group(1)):
            assert part in citation, f"{name}: the citation lacks {part!r}"
        assert re.sub(r"^[0-9]+\. ", "", re.sub(r"<[^>]+>", "", title)) in citation.replace("&amp;", "&"), f"{name}: the citation lacks the page title"
        assert re.search(r'href="(appendix_reproducibility\.html)?#how-to-cite"', meta.group(0)), f"{name}: no link to How to cite"
    assert 'id="how-to-cite"' in _page(built_site, "appendix_reproducibility")


def test_last_updated_comes_from_the_repository_history(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("these tests run in a git checkout: the date must come from its history")
    expected = subprocess.run(["git", "log", "-1", "--format=%cs", "--", "chapters/02_reporters.ipynb"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert last_updated(ROOT / "chapters" / "02_reporters.ipynb") == (expected, "git")
    # a copy without history: the file's own date, and said so
    copy = tmp_path / "page.ipynb"
    copy.write_text("{}")
    date, how = last_updated(copy)
    assert how == "file" and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", date)


# --- in the browser -------------------------------------------------------------------------------

from test_browser import NO_BROWSER, SHOTS, _open, _wait_for_charts, browser, server  # noqa: E402,F401


@pytest.mark.skipif(NO_BROWSER, reason="no browser")
def test_every_chart_exports_png_and_svg_with_its_caption_and_source(built_site, server, browser):  # noqa: F811
    exported = 0
    for name in CHAPTERS:
        page, errors, outside = _open(browser, f"{server}/chapters/{name}.html")
        count = _wait_for_charts(page)
        for index in range(count):
            chart = page.locator(".tipline-chart").nth(index)
            links = chart.locator(".vega-actions a")
            chart.locator("details > summary").click()
            assert sorted(links.all_inner_texts()) == ["Save as PNG", "Save as SVG"], f"{name}: other actions offered"
            caption = chart.get_attribute("data-caption")
            for kind in ("SVG", "PNG"):
                link = chart.locator(".vega-actions a", has_text=f"Save as {kind}")
                with page.expect_download() as download:  # a click at once: the link waits for its image
                    link.click()
                path = download.value.path()
                if name == "02_reporters" and index == 0:
                    SHOTS.mkdir(parents=True, exist_ok=True)  # the exported images, for a look
                    shutil.copy(path, SHOTS / f"export_{download.value.suggested_filename}")
                assert download.value.suggested_filename == f"{chart.get_attribute('data-figure')}.{kind.lower()}"
                content = path.read_bytes()
                if kind == "PNG":
                    assert content.startswith(b"\x89PNG") and len(content) > 2000, f"{name}: PNG export"
                else:
                    text = content.decode("utf-8")
                    assert text.lstrip().startswith("<svg") and "Source:" in text, f"{name}: SVG export lacks its source"
                    words = re.sub(r"<[^>]+>", " ", text)
                    assert caption.split(":")[0] in words, f"{name}: SVG export lacks its figure number"
                exported += 1
            chart.locator("details > summary").click()
        page.close()
        assert not errors and not outside, (name, errors, outside)
    assert exported >= 60


@pytest.mark.skipif(NO_BROWSER, reason="no browser")
def test_the_drawn_data_match_the_tables_in_the_browser(server, browser):  # noqa: F811
    for name in ("02_reporters", "best_inference", "appendix_claims"):
        page, errors, _ = _open(browser, f"{server}/chapters/{name}.html")
        _wait_for_charts(page)
        mismatched = page.evaluate("""() => {
          const bad = [];
          document.querySelectorAll('.tipline-chart').forEach(chart => {
            const details = document.querySelector(`details.tipline-chart-data[data-chart="${chart.id}"]`);
            details.querySelectorAll('table').forEach(table => {
              const header = [...table.querySelectorAll('thead th')].map(th => th.textContent);
              const shown = [...table.querySelectorAll('tbody tr')].map(tr => [...tr.children].map(td => td.textContent));
              const drawn = chart.tiplineView.data(table.dataset.dataset)
                .map(row => header.map(key => row[key] === undefined || row[key] === null ? '' : String(row[key])));
              if (JSON.stringify(shown) !== JSON.stringify(drawn)) { bad.push(chart.id + ' ' + table.dataset.dataset); }
            });
          });
          return bad; }""")
        assert not mismatched, f"{name}: tables differ from the charts' data {mismatched}"
        assert not errors
        page.close()


@pytest.mark.skipif(NO_BROWSER, reason="no browser")
def test_copy_link_puts_the_figure_address_on_the_clipboard(server, browser):  # noqa: F811
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{server}/chapters/03_urgency.html")
    page.locator('button.tipline-copy-link[data-anchor="figure-3-2"]').click()
    page.wait_for_function("document.querySelector('button[data-anchor=\"figure-3-2\"]').textContent === 'Link copied'")
    assert page.evaluate("navigator.clipboard.readText()") == f"{server}/chapters/03_urgency.html#figure-3-2"
    # the citation names the page's address when served
    assert page.locator(".tipline-cite-url").inner_text() == f"{server}/chapters/03_urgency.html"
    page.goto(f"{server}/chapters/03_urgency.html#figure-3-2")
    assert page.evaluate("document.getElementById('figure-3-2').getBoundingClientRect().top") < 200
    context.close()


# --- changes ---------------------------------------------------------------------------------------

def _versions(text: str) -> list[tuple[str, str]]:
    """[(version, date or 'unreleased')] from CHANGELOG.md's '## X.Y.Z (...)' headings, newest first."""
    return re.findall(r"^## ([0-9]+\.[0-9]+\.[0-9]+) \(([0-9]{4}-[0-9]{2}-[0-9]{2}|unreleased)\)$", text, re.M)


def test_the_changelog_is_dated_and_agrees_with_the_citation():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = _versions(text)
    assert len(versions) == text.count("\n## "), "a version heading without a date (or '(unreleased)')"
    released = [(version, date) for version, date in versions if date != "unreleased"]
    assert released and all(date == "unreleased" for _, date in versions[:len(versions) - len(released)]), \
        "an unreleased version below a released one"
    record = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert released[0] == (record["version"], str(record["date-released"])), \
        "CITATION.cff does not cite the newest released version in CHANGELOG.md"
    dates = [date for _, date in released]
    assert dates == sorted(dates, reverse=True), "versions are not newest first"


def test_the_first_entry_states_the_errata_being_corrected():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    first = text.split("\n## ")[1].split("\n## ")[0]
    errata = first.split("### Errata")[1].split("\n### ")[0]
    items = re.findall(r"^[0-9]+\. \*\*(.+?)\*\*(.*?)(?=^[0-9]+\. \*\*|\Z)", errata, re.M | re.S)
    assert len(items) >= 7
    assert all("Corrected in 0.2.0" in " ".join(body.split()) for _, body in items), "an erratum does not say where it is corrected"
    said = " ".join(" ".join(" ".join(item) for item in items).split()).lower()
    for subject in ("ceiling", "at least 92%", "85.9%", "priors", "clipped", "fiscal-year offset", "wrong sign",
                    "script", "escaped", "claims.csv", "query", "never evaluated"):
        assert subject in said, f"the errata do not mention {subject!r}"


def test_the_changes_page_is_published_from_the_changelog(built_site):
    html = _page(built_site, "changes")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    for version, date in _versions((ROOT / "CHANGELOG.md").read_text(encoding="utf-8")):
        assert f"{version} ({date})" in text, f"the changes page lacks version {version}"
    assert "Errata: corrected in 0.2.0" in text
    assert 'href="changes.html">What changed</a>' in _page(built_site, "02_reporters")


# --- maintained parts instead of hand-written ones -------------------------------------------------

def test_the_404_page_comes_from_sphinx_notfound_page_with_absolute_links(built_site):
    html = (built_site / "404.html").read_text(encoding="utf-8")
    assert 'id="home" href="/index.html"' in html
    assert 'http-equiv="Content-Security-Policy"' in html
    links = re.findall(r'(?:href|src)="([^"#][^"]*)"', html)
    relative = [link for link in links if not link.startswith(("/", "http:", "https:", "data:", "mailto:"))]
    assert not relative, f"the 404 page has relative links, broken at any other address: {relative[:5]}"


def test_the_url_prefix_of_a_project_site():
    from tipline.reader import url_prefix

    assert url_prefix({}) == "/"
    assert url_prefix({"TIPLINE_URL_PREFIX": "/tipline-book/"}) == "/tipline-book/"
    assert url_prefix({"TIPLINE_URL_PREFIX": "tipline-book"}) == "/tipline-book/"
    with pytest.raises(ValueError):
        url_prefix({"TIPLINE_URL_PREFIX": '/"><script>/'})


def test_datasets_are_published_by_html_extra_path(built_site):
    assert (ROOT / "_extra" / "data").resolve() == (ROOT / "data").resolve()
    published = sorted(p.name for p in (built_site / "data").iterdir())
    expected = sorted(p.name for p in (ROOT / "data").iterdir() if p.suffix in (".csv", ".json"))
    assert set(expected) <= set(published), set(expected) - set(published)
    assert (built_site / "data" / "recipients.csv").read_bytes() == (ROOT / "data" / "recipients.csv").read_bytes()


def test_citation_cff_follows_the_published_schema():
    from tipline.reader import CFF_SCHEMA, validate_citation

    record = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    validate_citation(record)
    assert json.loads(CFF_SCHEMA.read_text())["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    for key, value in [("authors", [{"nmae": "a typo"}]), ("date-released", "2026-11-31"), ("version", ""),
                       ("doi", "not a doi"), ("licence", "CC-BY-4.0")]:
        broken = {**record, key: value}
        with pytest.raises(ValueError, match="Citation File Format"):
            validate_citation(broken)
