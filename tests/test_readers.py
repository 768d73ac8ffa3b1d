"""What readers take away: numbered figures with permanent links, each chart's data as a table,
PNG and SVG downloads carrying the figure's caption and source line (saved from every chart in
test_browser's desktop pass, helpers.export_every_chart), a citation and a last-updated date on
every page (tipline/site/reader.py, _static/tipline-readers.js)."""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from html import unescape as html_unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, pdf_pages_text, pdf_raster_pages
from tipline.presentation.charts import specs
from tipline.site.reader import last_updated

CHAPTERS = ["summary", "01_referral", "02_reporters", "03_urgency", "04_jurisdiction", "05_platforms_policy",
            "06_interpretations", "best_inference", "appendix_data", "appendix_reproducibility", "appendix_claims",
            "appendix_dive_arrests", "appendix_dive_encryption", "appendix_dive_triage", "bibliography"]


class _Tables(HTMLParser):
    """The tables in the data <details> that follows each chart, by chart id: [[row of cells]]."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list] = {}
        self.last_chart = self.chart = self.cell = None
        self.row: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and "tipline-chart" in (attrs.get("class") or "").split():
            self.last_chart = attrs["id"]
        elif tag == "details" and "tipline-chart-data" in (attrs.get("class") or "") and self.last_chart:
            self.chart, self.last_chart = self.last_chart, None
            self.tables[self.chart] = []
        elif self.chart and tag == "table":
            self.tables[self.chart].append([])
        elif self.chart and tag == "tr":
            self.row = []
        elif self.chart and tag in ("td", "th") and self.row is not None:
            self.cell = ""

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if self.chart and tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif self.chart and tag == "tr":
            self.tables[self.chart][-1].append(self.row)
            self.row = None
        elif tag == "details":
            self.chart = None


def _number(cell: str) -> tuple[float, float] | None:
    """A table cell read back as a number, with half a unit of its last digit shown (the rounding
    it may carry): "38.3%" -> (0.383, 0.0005), "1,234" -> (1234, 0.5); None for words."""
    match = re.fullmatch(r"(-?[0-9,]*\.?([0-9]*))(%?)", cell)
    if not match or not re.search(r"[0-9]", cell):
        return None
    value = float(match.group(1).replace(",", ""))
    step = 0.5 * 10 ** -len(match.group(2))
    return (value / 100, step / 100) if match.group(3) else (value, step)


def _same(cell: str, value) -> bool:
    """Whether a table cell shows a data value as a reader reads it (numbers to the digits shown)."""
    if value is None or value != value:
        return cell in ("", "\u2014")
    if isinstance(value, bool):
        return cell in (str(value), "yes" if value else "no")
    if isinstance(value, (int, float)):
        number = _number(cell)
        return number is not None and abs(number[0] - value) <= number[1] * (1 + 1e-9) + 1e-12
    # a date string the browser parsed: "2024-05-07" drawn as "2024-05-07T00:00:00.000Z"
    return cell == str(value) or (isinstance(value, str) and value.startswith(cell + "T"))


def _rows(spec: dict) -> list[list[dict]]:
    """The rows a chart spec is given, one list per dataset."""
    datasets = list(spec.get("datasets", {}).values())
    if isinstance(spec.get("data"), dict) and isinstance(spec["data"].get("values"), list):
        datasets.append(spec["data"]["values"])
    return datasets


def _table_problem(table: list[list[str]], rows: list[dict]) -> str | None:
    header, body = table[0], table[1:]
    if len(body) != len(rows):
        return f"{len(body)} rows shown, {len(rows)} given"
    fields = list(dict.fromkeys(key for row in rows for key in row))
    for column, title in enumerate(header):
        if not any(all(_same(cells[column], row.get(field)) for cells, row in zip(body, rows)) for field in fields):
            return f"column {title!r} shows no field of the data"
    return None


def _mismatch(shown: list[list[list[str]]], given: list[list[dict]]) -> str | None:
    """Why the tables shown (header row first) do not hold the datasets given, or None if they do:
    each table is one dataset, with its number of rows, each column one field, row by row (a table
    shows the fields a chart shows, so it may leave some out, and an annotation's dataset)."""
    if not shown or len(shown) > len(given):  # a dataset that only places words on the chart has no table
        return f"{len(shown)} tables for {len(given)} datasets"
    left = list(given)
    for table in shown:
        problems = [_table_problem(table, rows) for rows in left]
        if None not in problems:
            return "; ".join(problems)
        left.pop(problems.index(None))
    return None


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
    # every page of chapters/ (this check took in test_security's row count of every chart's table)
    checked = 0
    for name in sorted(page.stem for page in (built_site / "chapters").glob("*.html")):
        html = _page(built_site, name)
        parser = _Tables()
        parser.feed(html)
        charts = specs(html)
        assert set(parser.tables) == set(charts), f"{name}: a chart without its data table"
        for chart_id, spec in charts.items():
            problem = _mismatch(parser.tables[chart_id], _rows(spec))
            assert problem is None, f"{name}, {chart_id}: {problem}"
            checked += 1
    assert checked >= 30


def test_the_table_check_catches_a_wrong_cell():
    shown = [[["Year", "Reports"], ["2023", "36,210,368"], ["2024", "12.3%"]]]
    assert _mismatch(shown, [[{"reports": 36210368, "year": 2023}, {"reports": 0.1234567, "year": 2024}]]) is None
    assert _mismatch(shown, [[{"reports": 36210368, "year": 2023}, {"reports": 0.2, "year": 2024}]]) is not None
    assert _mismatch(shown, [[{"reports": 36210368, "year": 2023}, {"reports": 0.1236, "year": 2024}]]) is not None
    assert _mismatch(shown, [[{"reports": 36210368, "year": 2023}]]) is not None


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

from helpers import NO_BROWSER, Tab, wait_for_charts  # noqa: E402


@pytest.mark.skipif(NO_BROWSER, reason="no browser")
def test_the_drawn_data_match_the_tables_in_the_browser(server, browser):  # noqa: F811
    tab = Tab(browser)
    for name in ("02_reporters", "best_inference", "appendix_claims"):
        page, errors, _ = tab.visit(f"{server}/chapters/{name}.html")
        wait_for_charts(page)
        found = page.evaluate("""() => [...document.querySelectorAll('.tipline-chart')].map(chart => {
            const spec = JSON.parse(document.querySelector(`script.tipline-spec[data-chart="${chart.id}"]`).textContent);
            const details = chart.parentElement.querySelector('details.tipline-chart-data');
            const tables = [...details.querySelectorAll('table')].map(table =>
                [...table.querySelectorAll('tr')].map(tr => [...tr.children].map(cell => cell.textContent.trim())));
            const drawn = Object.entries(spec.datasets || {}).map(([dataset, rows]) => {
                const keys = [...new Set(rows.flatMap(row => Object.keys(row)))];
                return chart.tiplineView.data(dataset).map(row => Object.fromEntries(keys.map(key =>
                    [key, row[key] instanceof Date ? row[key].toISOString() : (row[key] === undefined ? null : row[key])])));
            });
            return {id: chart.id, tables, drawn}; })""")
        assert found
        for chart in found:
            problem = _mismatch(chart["tables"], chart["drawn"])
            assert problem is None, f"{name}, {chart['id']}: the table is not what the chart drew: {problem}"
        assert not errors
    tab.close()


@pytest.mark.skipif(NO_BROWSER, reason="no browser")
def test_copy_link_puts_the_figure_address_on_the_clipboard(server, browser):  # noqa: F811
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{server}/chapters/03_urgency.html")
    page.locator('button.tipline-copy-link[data-anchor="figure-3-2"]').click()
    page.wait_for_function("() => document.querySelector('button[data-anchor=\"figure-3-2\"]').textContent === 'Link copied'")  # a function: see helpers.wait_for_charts
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


def _errata(text: str) -> dict[str, list[tuple[str, str]]]:
    """{version: [(title, body)]} for every version with an "Errata" section."""
    found = {}
    for entry in text.split("\n## ")[1:]:
        version = entry.split(" ", 1)[0]
        if "### Errata" in entry:
            errata = entry.split("### Errata")[1].split("\n### ")[0]
            found[version] = re.findall(r"^[0-9]+\. \*\*(.+?)\*\*(.*?)(?=^[0-9]+\. \*\*|\Z)", errata, re.M | re.S)
    return found


def test_every_erratum_says_which_version_corrects_it():
    errata = _errata((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))
    assert errata and all(errata.values())
    for version, items in errata.items():
        for title, body in items:
            assert f"Corrected in {version}" in " ".join(body.split()), f"{version}: {title!r} does not say where it is corrected"


def test_the_errata_of_0_2_0_state_what_was_wrong():
    items = _errata((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))["0.2.0"]
    assert len(items) >= 7
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
    from tipline.site.reader import url_prefix

    assert url_prefix({}) == "/"
    assert url_prefix({"TIPLINE_URL_PREFIX": "/tipline-book/"}) == "/tipline-book/"
    assert url_prefix({"TIPLINE_URL_PREFIX": "tipline-book"}) == "/tipline-book/"
    with pytest.raises(ValueError):
        url_prefix({"TIPLINE_URL_PREFIX": '/"><script>/'})


def test_citation_cff_follows_the_published_schema():
    from tipline.site.reader import CFF_SCHEMA, validate_citation

    record = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    validate_citation(record)
    assert json.loads(CFF_SCHEMA.read_text())["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    for key, value in [("authors", [{"nmae": "a typo"}]), ("date-released", "2026-11-31"), ("version", ""),
                       ("doi", "not a doi"), ("licence", "CC-BY-4.0")]:
        broken = {**record, key: value}
        with pytest.raises(ValueError, match="Citation File Format"):
            validate_citation(broken)


# --- lighter pages ---------------------------------------------------------------------------------

def test_the_icon_font_keeps_every_icon_the_site_draws(built_site):
    from fontTools.ttLib import TTFont

    from tipline.site.reader import icon_codepoints

    drawn = {int(code, 16) for code in re.findall(r'content: "\\(f[0-9a-f]{3})"', (ROOT / "_static" / "tipline.css").read_text())}
    assert len(drawn) >= 10
    assert drawn <= icon_codepoints(built_site / "_static")
    font = TTFont(built_site / "_static" / "vendor" / "fontawesome" / "webfonts" / "fa-solid-900.woff2")
    assert drawn <= set(font.getBestCmap()), "an icon the site draws was cut from the font"
    assert len(font.getBestCmap()) < 100, "the icon font was not reduced to the icons in use"


def test_a_cut_icon_font_is_the_same_bytes_in_every_build(tmp_path):
    """A font cut down to the icons in use keeps the original's date: fontTools would write the time
    of the build into it, so that two builds of the same sources published different fonts. A
    damaged kept copy is cut again."""
    import pydata_sphinx_theme
    from fontTools.ttLib import TTFont

    from tipline.site.reader import _subset_fonts

    original = next(Path(pydata_sphinx_theme.__file__).parent.rglob("fa-solid-900.woff2"))
    cut = []
    for build in ("first", "second"):
        fonts = tmp_path / build / "static" / "vendor" / "fontawesome" / "webfonts"
        fonts.mkdir(parents=True)
        shutil.copy(original, fonts / original.name)
        _subset_fonts(tmp_path / build / "static", {0xF0C9, 0xF13D}, tmp_path / build / "kept")
        cut.append((fonts / original.name).read_bytes())
    font = TTFont(io.BytesIO(cut[0]))
    assert set(font.getBestCmap()) == {0xF0C9, 0xF13D}
    assert font["head"].modified == TTFont(original)["head"].modified, "the cut font carries the build's time"
    assert cut[0] == cut[1]
    # the kept copy is what the next build publishes; damaged, it is cut again, not published
    (kept,) = (tmp_path / "first" / "kept").glob(".font-fa-solid-900-*.woff2")
    fonts = tmp_path / "first" / "static" / "vendor" / "fontawesome" / "webfonts"
    for damage in (b"wOF2 cut short", kept.read_bytes()[:-1] + b"\0"):
        kept.write_bytes(damage)
        shutil.copy(original, fonts / original.name)
        _subset_fonts(tmp_path / "first" / "static", {0xF0C9, 0xF13D}, tmp_path / "first" / "kept")
        assert (fonts / original.name).read_bytes() == cut[0] == kept.read_bytes()


def test_unused_icon_rules_go_and_used_ones_stay():
    from tipline.site.reader import prune_icon_rules

    css = '.fa-bars:before,.fa-navicon:before{content:"\\f0c9"}.fa-anchor:before{content:"\\f13d"}.x{color:red}'
    assert prune_icon_rules(css, {"fa-bars"}) == '.fa-bars:before,.fa-navicon:before{content:"\\f0c9"}.x{color:red}'


# --- the PDF ---------------------------------------------------------------------------------------

def test_a_raster_image_in_a_pdf_is_found(tmp_path):
    """pdf_raster_pages finds an image on the second page of a small PDF (so the book's check can fail)."""
    import pypdfium2
    import pypdfium2.raw

    document = pypdfium2.PdfDocument.new()
    document.new_page(100, 100)
    page = document.new_page(100, 100)
    image = pypdfium2.PdfImage.new(document)
    image.set_bitmap(pypdfium2.PdfBitmap.new_native(4, 4, pypdfium2.raw.FPDFBitmap_BGR))
    page.insert_obj(image)
    page.gen_content()
    document.save(tmp_path / "raster.pdf")
    document.close()
    assert pdf_raster_pages(tmp_path / "raster.pdf") == [1]


@pytest.mark.skipif(NO_BROWSER, reason="no browser")
def test_the_pdf_holds_every_chapter_and_every_chart_as_vector_graphics(built_site):
    from pypdf import PdfReader

    from tipline.site.pdf import pages_in_order

    pdf = built_site / "book.pdf"
    assert pdf.exists(), "book.pdf was not made"
    reader = PdfReader(pdf)
    titles = [" ".join(item.title.split()) for item in reader.outline]
    names = pages_in_order(ROOT)
    assert len(titles) == len(names)
    for name, title in zip(names, titles):
        page_title = re.search(r"<title>(.*?)(?: &#8212;| —)", (built_site / f"{name}.html").read_text(encoding="utf-8"), re.S)
        assert page_title and html_unescape(re.sub(r"<[^>]+>", "", page_title.group(1))).split() == title.split(), (name, title)
    text = " ".join(" ".join(page.split()) for page in pdf_pages_text(pdf))
    for name in names:
        html = (built_site / f"{name}.html").read_text(encoding="utf-8")
        for number in re.findall(r'class="tipline-figure-number reference external" href="#[^"]+">(Figure [0-9A-Z.]+)</a>', html):
            assert number in text, f"{name}: {number} is not in the PDF"
    assert text.count("Figure ") >= 30
    assert not pdf_raster_pages(pdf), "a raster image in the PDF: charts must be vector"
    for name in names:
        assert 'The whole book as a PDF</a>' in (built_site / f"{name}.html").read_text(encoding="utf-8"), name


# --- tables for people, no raw output, no code, no notes for the team ------------------------------
# Checks over a parsed page, each tried on a small page first (so each can fail), then on every page.

from bs4 import BeautifulSoup  # noqa: E402

RAW_NUMBER = re.compile(r"-?[0-9]{5,}(\.[0-9]+)?|-?[0-9]*\.[0-9]{4,}|-?[0-9]{4}\.0")  # 20512803.0, 0.760933, 2024.0
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")  # oklahoma_osbi, tips_received, more_than
# words written for the team, not for readers (issue 20: "Not yet re-read by us ... team research dossier")
TEAM_NOTES = re.compile(r"re-read by us|research dossier|\bdossier\b|\bTODO\b|\bFIXME\b|\bXXX\b|for the team|note to self", re.I)
# the one page that may show code: how to rebuild the book
CODE_PAGES = {"chapters/appendix_reproducibility.html"}


def page_problems(html: str, name: str = "page") -> list[str]:
    """What a reader should not meet on a page: raw numbers or snake_case values in a table, output
    printed as raw text (a Python string's repr), code where the page is for readers, and notes
    written for the team."""
    soup = BeautifulSoup(html, "html.parser")
    main = soup.find("main") or soup
    problems = []
    for cell in main.select("table th, table td"):
        text = " ".join(cell.get_text(" ").split())
        if RAW_NUMBER.fullmatch(text.replace(" ", "")):
            problems.append(f"{name}: a raw number in a table: {text!r}")
        if SNAKE_CASE.fullmatch(text):
            problems.append(f"{name}: a snake_case value in a table: {text!r}")
    for output in main.select("div.output.text_plain, div.output.stream, div.output.stderr, div.cell_output pre"):
        problems.append(f"{name}: raw output on the page: {output.get_text()[:80]!r}")
    if name not in CODE_PAGES and main.select("div.cell_input, details.hide.above-input"):
        problems.append(f"{name}: code shown to readers ({len(main.select('div.cell_input'))} cells)")
    for match in TEAM_NOTES.finditer(main.get_text(" ")):
        problems.append(f"{name}: a note for the team: {match.group(0)!r}")
    return problems


def test_the_page_checks_find_what_they_look_for():
    clean = ('<main><table><tr><th>Year</th><th>Reports</th><th>Share</th></tr><tr><td>2024</td><td>20,512,803</td>'
             '<td>76.1%</td></tr><tr><td>Oklahoma (OSBI)</td><td>1.5</td><td>more than 900</td></tr></table>'
             '<div class="cell_output"><div class="output text_html"><p>fine</p></div></div></main>')
    assert page_problems(clean) == []
    for bad in ("20512803.0", "0.760933", "2024.0", "20512803", "oklahoma_osbi", "tips_received"):
        assert page_problems(clean.replace("20,512,803", bad)), bad
    assert page_problems(clean.replace('<p>fine</p></div>', "</div><div class=\"output text_plain\"><pre>'The total grew.'</pre></div>"))
    assert page_problems(clean.replace("<main>", '<main><div class="cell_input"><pre>x = 1</pre></div>'))
    assert page_problems(clean.replace("<main>", '<main><div class="cell_input"></div>'), "chapters/appendix_reproducibility.html") == []
    assert page_problems(clean.replace("fine", "Not yet re-read by us: from the team research dossier."))


def _site_pages(built_site) -> list[tuple[str, str]]:
    return [(str(path.relative_to(built_site)), path.read_text(encoding="utf-8"))
            for path in sorted(built_site.rglob("*.html")) if "_static" not in path.parts]


@pytest.mark.full
def test_no_page_shows_raw_values_raw_output_code_or_team_notes(built_site):
    pages = _site_pages(built_site)
    assert len(pages) >= 20
    problems = [problem for name, html in pages for problem in page_problems(html, name)]
    assert not problems, "\n".join(problems[:40])


def test_tables_escape_format_and_caption_themselves():
    import pandas as pd

    from tipline.presentation.tables import table

    hostile = '<script>alert(1)</script>'
    frame = pd.DataFrame({hostile: [hostile, None], "Reports": [20512803.0, 1234], "Share": [0.760933, 0.5]},
                         index=pd.Index(["<b>a</b>", "b"], name="<i>row</i>"))
    html = table(frame, caption=f"a caption {hostile}", formats={"Share": "{:.1%}"}, index=True).html
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html
    # the header, the caption and the cell, and the column's name on each of its two cells (data-label)
    assert html.count("&lt;script&gt;") == 5 and html.count('data-label="&lt;script&gt;alert(1)&lt;/script&gt;"') == 2
    assert "<caption>Table: a caption &lt;script&gt;" in html
    cells = re.findall(r"<t[dh]\b[^>]*>(.*?)</t[dh]>", html)
    assert cells[4:8] == ["&lt;b&gt;a&lt;/b&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;", "20,512,803", "76.1%"], cells
    assert cells[-3:] == ["\u2014", "1,234", "50.0%"], cells
    years = table(pd.DataFrame({"Calendar year": [2021, 2024], "Reports": [2021, 2024]})).html
    assert re.findall(r"<td\b[^>]*>(.*?)</td>", years) == ["2021", "2,021", "2024", "2,024"]
    linked = table(pd.DataFrame({"Dataset": ["a.csv"]}), links={"Dataset": lambda name: f"../data/{name}"}).html
    assert '<a href="../data/a.csv">a.csv</a>' in linked
    with pytest.raises(ValueError):
        table(pd.DataFrame({"Dataset": ["x"]}), links={"Dataset": lambda name: "javascript:alert(1)"})
    with pytest.raises(KeyError):
        table(frame, formats={"no such column": "{}"})


def test_a_chart_table_shows_what_the_chart_shows_in_its_words():
    from tipline.presentation.tables import d3_number, data_table

    rows = [{"year": 2024, "reports": 20512803.0, "share": 0.760933, "order": 1, "source_id": "ncmec_ojjdp_2023",
             "stage": "All reports", "label": "20,512,803 (1 in 16)"}]
    spec = {"datasets": {"d": rows}, "data": {"name": "d"}, "layer": [
        {"mark": "point", "encoding": {
            "x": {"field": "reports", "type": "quantitative", "title": "Count (logarithmic scale)", "axis": {"format": "~s"}},
            "y": {"field": "stage", "type": "nominal", "sort": {"field": "order"}, "title": None},
            "color": {"field": "year", "type": "ordinal", "title": "Calendar year"},
            "tooltip": [{"field": "stage", "type": "nominal", "title": "Stage"},
                        {"field": "share", "type": "quantitative", "format": ".1%", "title": "Share of all reports"}]}},
        {"mark": "text", "encoding": {"text": {"field": "label", "type": "nominal"}, "y": {"field": "stage", "type": "nominal"}}}]}
    table = data_table(spec)
    headers = re.findall(r"<th\b[^>]*>(.*?)</th>", table)
    cells = re.findall(r"<td\b[^>]*>(.*?)</td>", table)
    assert headers == ["Stage", "Share of all reports", "Count", "Calendar year"], headers
    assert cells == ["All reports", "76.1%", "20,512,803", "2024"], cells
    assert "(1 row)" in table and "ncmec" not in table and "Order" not in table
    assert [d3_number(0.5, ".0%"), d3_number(2024, "d"), d3_number(1234.5678, ",.2f"), d3_number(1e6, "~s")] == \
        ["50%", "2024", "1,234.57", "1,000,000"]


def test_a_source_note_links_every_dataset_its_rows_come_from(monkeypatch):
    import pandas as pd

    from tipline import load
    from tipline.evidence import data
    from tipline.presentation.notes import drawn_from, source_note

    data.track("a test")
    recipients, downstream = load("recipients"), load("downstream")
    rows = pd.concat([recipients.head(2), downstream.head(1).assign(shown="a column a chapter added")])
    assert drawn_from(rows) == ["recipients", "downstream"]
    note = source_note(rows, "recipients")
    assert 'href="../data/recipients.csv"' in note and 'href="../data/downstream.csv"' in note
    with pytest.raises(ValueError, match="its rows come from"):
        source_note(recipients.head(2), "downstream")
    made_up = recipients.head(1).assign(reports=-1)
    with pytest.raises(ValueError, match="matches no dataset"):
        drawn_from(made_up)


@pytest.mark.full
def test_every_table_caption_is_part_of_its_table(built_site):
    numbered = 0
    for name, html in _site_pages(built_site):
        soup = BeautifulSoup(html, "html.parser")
        main = soup.find("main") or soup
        for paragraph in main.find_all(["p", "em"]):
            assert not paragraph.get_text().strip().startswith("Table:"), f"{name}: a table caption outside its table"
        for caption in main.select("table.tipline-table > caption"):
            number = caption.select_one("a.tipline-table-number")
            assert number and re.fullmatch(r"Table ([0-9]+\.|[A-F]\.)?[0-9]+", number.get_text()), f"{name}: {caption}"
            assert caption.parent.get("id") == number["href"][1:], f"{name}: the caption's link is not its table's"
            numbered += 1
    assert numbered >= 13


@pytest.mark.full
def test_figures_json_holds_every_glued_figure_with_its_page_and_sentence(built_site):
    from tipline.site.figures import glued

    document = json.loads((built_site / "data" / "figures.json").read_text(encoding="utf-8"))
    by_key = {figure["key"]: figure for figure in document["figures"]}
    assert len(by_key) == len(document["figures"]) >= 300, "a key twice, or too few figures"
    checked = 0
    for notebook_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for key, entry in glued(json.loads(notebook_path.read_text(encoding="utf-8"))).items():
            figure = by_key.get(key)
            assert figure, f"{notebook_path.stem}: {key} is not in figures.json"
            assert figure["value"] == entry["value"] and figure["page"] == f"chapters/{notebook_path.stem}", key
            assert (built_site / figure["url"]).exists() and all((built_site / path).exists() for path in figure["sources"]), key
            checked += 1
    assert checked == len(by_key)
    # every figure the prose uses comes with the sentence that states it, and the sentence holds its value
    from tipline.site.figures import GLUE_ROLE

    prose = {key for path in (ROOT / "chapters").glob("*.ipynb") for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
             if cell["cell_type"] == "markdown" for key in GLUE_ROLE.findall("".join(cell["source"]))}
    assert len(prose) >= 400
    unstated = [key for key in prose if key in by_key and not by_key[key]["sentence"]]
    assert not unstated, f"figures in the prose without their sentence: {unstated[:10]}"
    assert all(figure["value"] in figure["sentence"] for figure in document["figures"] if figure["sentence"])


@pytest.mark.full
def test_the_data_to_take_away_is_linked_from_the_summary_and_the_data_appendix(built_site):
    import zipfile

    package = json.loads((ROOT / "data" / "datapackage.json").read_text(encoding="utf-8"))
    with zipfile.ZipFile(built_site / "data" / "datasets.zip") as archive:
        names = archive.namelist()
        assert names[0] == "data/datapackage.json"
        assert sorted(names[1:]) == sorted(f"data/{resource['path']}" for resource in package["resources"])
        assert archive.read("data/recipients.csv") == (ROOT / "data" / "recipients.csv").read_bytes()
    for name in ("summary", "appendix_data"):
        html = _page(built_site, name)
        for target in ("../data/answer.json", "../data/figures.json", "../data/datasets.zip"):
            assert f'href="{target}"' in html, f"{name}: no link to {target}"


def test_the_data_archive_is_the_same_for_the_same_data_and_refuses_links(tmp_path):
    from tipline.site.reader import write_archive

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "datapackage.json").write_text(json.dumps({"resources": [{"name": "a", "path": "a.csv"}]}))
    write_archive(folder, tmp_path / "one.zip")
    write_archive(folder, tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    (folder / "a.csv").unlink()
    (folder / "a.csv").symlink_to("/etc/hostname")
    with pytest.raises(ValueError, match="not a plain file"):
        write_archive(folder, tmp_path / "three.zip")


@pytest.mark.full
def test_every_chart_data_link_names_a_published_dataset(built_site):
    links = 0
    for name in CHAPTERS:
        for note in re.findall(r'<div class="tipline-source">.*?</div>', _page(built_site, name), re.S):
            data = re.search(r"<strong>Data:</strong>(.*?)</p>", note, re.S).group(1)
            targets = re.findall(r'href="\.\./data/([a-z0-9_]+\.csv)"', data)
            assert targets, f"{name}: a source note without a data link"
            assert len(targets) == len(set(targets)) and all((built_site / "data" / t).exists() for t in targets), (name, targets)
            links += len(targets)
    # summary Figure 1 draws arrests from downstream.csv besides recipients.csv (issue 20)
    first = re.findall(r'<div class="tipline-source">.*?</div>', _page(built_site, "summary"), re.S)[1]
    assert "downstream.csv" in first and "recipients.csv" in first, first
    assert links >= 50


# --- figures across releases ------------------------------------------------------------------------

def _notebook(markdown: str, glue: dict[str, str]) -> dict:
    outputs = [{"output_type": "display_data", "data": {"application/papermill.record/text/plain": repr(value)},
                "metadata": {"scrapbook": {"name": key, "mime_prefix": "application/papermill.record/"},
                             "tipline": {"datasets": ["recipients"]}}} for key, value in glue.items()]
    return {"cells": [{"cell_type": "code", "source": "", "outputs": outputs}, {"cell_type": "markdown", "source": markdown}]}


def test_figures_are_read_back_with_the_sentence_that_states_them():
    from tipline.site.figures import changed, glued, page_figures

    notebook = _notebook("# A page\n\nReports rose. In {glue:text}`year` there were **{glue:text}`reports`** "
                         "reports {cite:p}`ncmec_ojjdp_2023`, see [the data](x.ipynb). Nothing else.",
                         {"year": "2024", "reports": "20,512,803", "unused": "7"})
    assert glued(notebook)["reports"] == {"value": "20,512,803", "datasets": ["recipients"]}
    figures = {figure["key"]: figure for figure in page_figures("chapters/x", notebook, glued(notebook))}
    assert figures["reports"]["sentence"] == "In 2024 there were 20,512,803 reports, see the data."
    assert figures["reports"]["title"] == "A page" and figures["unused"]["sentence"] == ""
    later = [dict(figures["year"]), dict(figures["reports"], value="20,000,000")]
    rows = changed(list(figures.values()), later)
    assert [(row["key"], row["was"], row["now"]) for row in rows] == [("reports", "20,512,803", "20,000,000")]
    gone = changed(list(figures.values()), [dict(figures["reports"])])
    assert [(row["key"], row["now"]) for row in gone] == [("year", None)]  # "unused" was never stated


def test_each_release_records_the_figures_committed_at_its_commit():
    from tipline.site.figures import RELEASES, release_commit, releases

    records = releases()
    assert [record["version"] for record in records][:3] == ["0.1.0", "0.2.0", "0.2.1"]
    versions = re.findall(r"^## ([0-9.]+) \(([0-9-]+)\)$", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    for version, date in versions:
        record = json.loads((RELEASES / f"{version}.json").read_text(encoding="utf-8"))
        assert record["date"] == date and len(record["figures"]) >= 200, version
        assert release_commit(version) == record["commit"], f"{version}: recorded from another commit"


@pytest.mark.full
def test_the_changes_page_lists_the_figures_that_changed_in_each_release(built_site):
    from tipline.site.figures import changed, releases

    html = _page(built_site, "changes")
    records = releases()
    for before, after in zip(records, records[1:]):
        heading = f"From {before['version']} to {after['version']}"
        assert heading in html, heading
        section = html.split(heading, 1)[1].split('class="rubric"', 1)[0]
        rows = changed(before["figures"], after["figures"])
        assert section.count("<tr>") == len(rows) + 1, (heading, section.count("<tr>"), len(rows))
    assert f"From {records[-1]['version']} to" in html.replace("</p>", "")


# --- citations, bibliography, header, order ---------------------------------------------------------

def test_a_page_citation_closes_its_title_once():
    from tipline.site.reader import page_citation

    record = {"authors": [{"name": "The team"}], "title": "The book", "version": "1.0"}
    assert "\u201cWhat happens to a report?\u201d In" in page_citation(record, "What happens to a report?", "2026-01-01", "u")
    assert "\u201cReferral.\u201d In" in page_citation(record, "Referral", "2026-01-01", "u")


@pytest.mark.full
def test_bibliography_labels_are_the_citations_words(built_site):
    bibliography = BeautifulSoup(_page(built_site, "bibliography"), "html.parser")
    labels = {entry["id"]: " ".join(entry.select_one(".label").get_text().strip("[]").split())
              for entry in bibliography.select("div.citation")}
    assert len(labels) >= 60 and len(set(labels.values())) == len(labels), "labels repeat"
    assert not [label for label in labels.values() if not re.search(r", (n\.d\.(-[a-z])?|[0-9]{4}[a-z]?)$", label)]
    cited = 0
    for name in CHAPTERS:
        for link in BeautifulSoup(_page(built_site, name), "html.parser").select('main a[href^="bibliography.html#"]'):
            target = link["href"].split("#", 1)[1]
            assert " ".join(link.get_text().split()) == labels[target], (name, link.get_text(), labels[target])
            cited += 1
    assert cited >= 30


@pytest.mark.full
def test_the_header_offers_the_pdf_and_the_citation_and_one_search(built_site):
    for name in CHAPTERS:
        soup = BeautifulSoup(_page(built_site, name), "html.parser")
        header = soup.select_one(".bd-header-article")
        links = {a.get_text(" ", strip=True): a["href"] for a in header.select("a.tipline-header-link")}
        assert links.get("Cite") == "#cite-this-page" and soup.find(id="cite-this-page"), name
        assert links.get("PDF") == "../book.pdf", f"{name}: no PDF in the header"
        assert not soup.select(".bd-sidebar-primary form.bd-search, .bd-sidebar-primary .search-button-field"), \
            f"{name}: a second search box in the sidebar"
        assert len(soup.select(".bd-header-article .search-button, .bd-header-article button.search-button")) <= 1


def test_the_pages_about_the_answer_are_listed_with_it():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    parts = {part["caption"]: [chapter["file"] for chapter in part["chapters"]] for part in toc["parts"]}
    assert parts["The answer"][:2] == ["chapters/best_inference", "chapters/safe_to_say"]
    assert {"chapters/by_design", "chapters/time_and_backlog", "chapters/data_requests"} <= set(parts["The answer"])
    assert all(page.startswith("chapters/appendix_") or page == "chapters/bibliography" for page in parts["Appendices"])


def test_an_exported_image_has_no_instructions_and_separated_sources():
    from tipline.site.reader import image_caption, image_sources

    assert image_caption("Figure 2", "each stage as a point; hover for the kind of year.") == "Figure 2: each stage as a point."
    note = ('<div class="tipline-source"><details><summary>Sources (2)</summary><ul><li>NCMEC, <em>Report</em> (2024), '
            'p. 4 [primary source]</li><li>Robert Grimm, <em>Data</em> (2025) [third-party transcription]</li></ul>'
            '</details><p><strong>Data:</strong> <a href="../data/a.csv">a.csv</a>, <a href="../data/b.csv">b.csv</a></p></div>')
    assert image_sources(note) == ("Sources: NCMEC, Report (2024), p. 4 [primary source]; "
                                   "Robert Grimm, Data (2025) [third-party transcription]")


def test_author_year_labels_and_letters_for_one_publisher_in_one_year():
    import pandas as pd
    from pybtex.database import Entry, Person

    from tipline.presentation.notes import cited_years
    from tipline.site.bibstyle import author_year

    entry = Entry("misc", fields={"year": "2024a"}, persons={"author": [Person("{National Center for Missing \\& Exploited Children}")]})
    assert author_year(entry) == "National Center for Missing & Exploited Children, 2024a"
    two = Entry("misc", fields={"year": "2020"}, persons={"author": [Person("Smith, Ann"), Person("Jones, Bo")]})
    assert author_year(two) == "Smith and Jones, 2020"
    registry = pd.DataFrame({"source_id": ["b", "a", "c", "d", "e"], "publisher": ["P", "P", "P", "Q", "Q"],
                             "published": ["2024-05", "2024-01", "2023", "n.d.", "n.d."], "title": ["x", "y", "z", "u", "v"]})
    assert cited_years(registry) == {"a": "2024a", "b": "2024b", "c": "2023", "d": "n.d.-a", "e": "n.d.-b"}


def test_an_entry_is_formatted_once_and_a_changed_entry_again():
    """bibstyle keeps each entry's formatted text by what the entry is made of: the same entry
    (as sphinxcontrib-bibtex asks twice a build) is formatted once, and an entry with the same key
    but another title or author is formatted afresh, never shown with the kept text."""
    from pybtex.backends.plaintext import Backend
    from pybtex.database import Entry, Person

    from tipline.site import bibstyle

    def entry(title, author="Office of Juvenile Justice and Delinquency Prevention"):
        made = Entry("misc", fields={"title": title, "year": "2025", "url": "https://example.org/a"},
                     persons={"author": [Person("{" + author + "}")]})
        made.key = "ojjdp_test_entry"
        return made

    bibstyle.register()
    style, formatted = bibstyle.Style(), []
    original = bibstyle.Plain.format_entry

    def counted(self, label, made, bib_data=None):
        formatted.append(made.fields["title"])
        return original(self, label, made, bib_data)

    bibstyle.Plain.format_entry = counted
    try:
        texts = [style.format_entry(label, made).text.render(Backend())
                 for label, made in [("a", entry("A title")), ("b", entry("A title")),
                                     ("a", entry("Another \\& title")), ("a", entry("A title", "Someone else"))]]
    finally:
        bibstyle.Plain.format_entry = original
    assert formatted == ["A title", "Another \\& title", "A title"], formatted
    assert texts[0] == texts[1] and "Another & title" in texts[2] and "Someone else" in texts[3], texts
    assert style.format_entry("z", entry("A title")).label == "z"
