"""The built site in a real browser (Debian's Chromium driven by Playwright).

Every page loads without console errors and without any request leaving 127.0.0.1,
axe-core finds no serious or critical accessibility violation, every chart placeholder draws its marks, a slider changes a chart, and charts also draw
from file://. With TIPLINE_SCREENSHOTS=1 (e.g. `TIPLINE_SCREENSHOTS=1 make test`), screenshots of every
page are written to _build/screenshots/ for a person to look at (viewport-sized: a full-page
screenshot re-lays out the charts, and taking them is not a check, so a plain run skips them).
"""
from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from helpers import (AXE_OPTIONS, BLOCKING, CHART_BOXES, CHROMIUM, HOSTILE, HOSTILE_NOTE, NO_BROWSER, ROOT, Quiet, Tab, chart_misfits, chart_problems, export_every_chart, over_goal, page_weight, pdf_pages_text,
                     open_page, screenshot, serving, site_pages, wait_for_charts)

pytestmark = pytest.mark.skipif(NO_BROWSER, reason=f"no browser at {CHROMIUM} (.ci/run installs Debian's chromium)")


def test_every_page_at_a_desktop_width_draws_passes_axe_fits_exports_its_charts_and_is_light(built_site, browser):
    """Every page at 1280 px, loaded from a local server alone: its charts drawn with visible
    marks, no console error, no request to another host, no serious or critical axe-core finding;
    no chart wider than its box, no title or label cut (by the box, the drawing's edge or an
    ellipsis), no two texts overlapping, no text under the export button, no legend label hidden by
    anything floating over the page (helpers.chart_problems; the phone's width is test_reading's);
    every chart saved as PNG and as SVG with its figure number and source (helpers.export_every_chart),
    in the same visit, after the checks of the page as loaded; and what a first-time reader
    downloads for the page, gzipped as GitHub Pages serves it (helpers.page_weight: this tab's
    HTTP cache is off), within its goal (helpers.over_goal; the phone pass checks it at 375 px)."""
    pages = site_pages(built_site)
    assert len(pages) >= 10
    total_charts, exported, inaccessible, misfits, heavy = 0, 0, [], [], []
    with serving(built_site) as server, Tab(browser, 1280, height=740, weigh=True) as tab:
        redirect, _, _ = tab.visit(f"{server}/index.html")
        redirect.wait_for_url("**/chapters/summary.html")
        for name in pages + ["search.html", "404.html"]:
            weight = page_weight(tab, f"{server}/{name}")
            page, errors, outside = tab.page, tab.errors, tab.outside
            total_charts += weight["charts"]
            heavy += over_goal(name, weight)
            drawn = page.locator(".tipline-chart svg.marks, .tipline-chart canvas.marks").count()
            assert drawn == page.locator(".tipline-chart").count(), f"{name}: {drawn} charts drawn"
            assert not page.locator(".tipline-chart:has-text('could not be drawn')").count(), name
            empty = page.evaluate("""() => [...document.querySelectorAll('.tipline-chart')].filter(c =>
                ![...c.querySelectorAll('g.role-mark path, g.role-mark line')].some(m => {
                    const box = m.getBBox(); return box.width > 0 || box.height > 0; })).map(c => c.id)""")
            assert not empty, f"{name}: charts without visible marks {empty}"
            screenshot(page, name.replace("/", "_") + ".png")
            result = Axe().run(page, options=AXE_OPTIONS).response
            inaccessible += [f"{name}: {v['id']} ({v['impact']}) at {v['nodes'][0]['target']}"
                             for v in result["violations"] if v["impact"] in BLOCKING]
            misfits += chart_misfits(page, name, phone=False)  # it scrolls the page
            exported += export_every_chart(page, name)
            assert not errors, f"{name}: console errors {errors}"
            assert not outside, f"{name}: requests to other hosts {outside}"
    assert total_charts >= 30 and exported == 2 * total_charts, (total_charts, exported)
    assert not inaccessible, "axe-core, serious or critical:\n" + "\n".join(inaccessible)
    assert not misfits, f"{len(misfits)} chart problems at 1280 px:\n" + "\n".join(misfits)
    assert not heavy, "heavier than their goals:\n" + "\n".join(heavy)


def test_chapters_have_charts(built_site):
    for name in ["summary", "01_referral", "02_reporters", "03_urgency", "04_jurisdiction",
                 "05_platforms_policy", "06_interpretations", "best_inference", "appendix_claims",
                 "appendix_dive_arrests", "appendix_dive_encryption", "appendix_dive_triage"]:
        assert "tipline-chart" in (built_site / "chapters" / f"{name}.html").read_text(), name


def _eventually(page, check, seconds: float = 5) -> bool:
    """Whether `check()` comes true within `seconds`, asked every 100 ms: a chart drawn again after
    an input, a drawer's slide, a scroll take their time, longer on a busy machine; what never
    gets there fails."""
    import time

    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(100)
    return True


def test_slider_changes_the_outcome_chart(server, browser):
    # the one slider illustration is the model chapter's (chapter 6 no longer repeats it, issue 10)
    page, errors, _ = open_page(browser, f"{server}/chapters/best_inference.html")
    wait_for_charts(page)
    slider = page.locator("input[type=range]").first
    chart = page.locator(".tipline-chart", has=page.locator("input[type=range]")).first
    before = chart.locator("svg.marks").inner_html()
    slider.fill("1")
    assert _eventually(page, lambda: chart.locator("svg.marks").inner_html() != before), "moving the slider did not change the chart"
    assert not errors


def test_charts_draw_from_file_urls(built_site, browser):
    page, errors, outside = open_page(browser, (built_site / "chapters" / "01_referral.html").as_uri())
    assert wait_for_charts(page) >= 2
    assert not errors and not outside


def _bars(chart):
    """The widths of the bars a chart draws, in drawing order."""
    return chart.evaluate("""el => [...el.querySelectorAll('g.role-mark path')].map(p => p.getBBox().width.toFixed(2))""")


def test_what_if_explorer_recomputes_outcomes_in_the_browser(server, browser):
    """The model chapter's condition chart: two sliders move a reader's setting of the two unknowns,
    and the chart names the outcome that comes first there (computed in the browser)."""
    page, errors, outside = open_page(browser, f"{server}/chapters/best_inference.html")
    wait_for_charts(page)
    chart = page.locator(".tipline-chart", has=page.locator("input[type=range]")).first
    sliders = chart.locator("input[type=range]")
    assert sliders.count() == 2

    def texts():
        return chart.evaluate("el => [...el.querySelectorAll('svg.marks text')].map(t => t.textContent)")

    before = texts()
    assert "No case opened first" in before
    sliders.nth(1).fill(sliders.nth(1).get_attribute("max"))  # the most reports per case: more in cases than exist
    _eventually(page, lambda: texts() != before)
    after = texts()
    assert before != after and after.count("Impossible") == before.count("Impossible") + 1, after
    # keyboard: a reader reaches a slider with the Tab key and moves it with the arrow keys
    for _ in range(300):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.type") == "range":
            break
    else:
        pytest.fail("no slider can be reached with the Tab key")
    value = page.evaluate("document.activeElement.value")
    drawn = chart.locator("svg.marks").inner_html()
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.value") != value
    assert _eventually(page, lambda: chart.locator("svg.marks").inner_html() != drawn)
    assert not errors and not outside


def _inject(page_text: str, code: str) -> str:
    """A page with inline code where unescaped data would have put it: in the head and beside a chart."""
    text = page_text.replace("<body", f"<script>{code}</script><body", 1)
    at = text.index('<div class="tipline-chart"')
    return text[:at] + f'<script>{code}</script><img alt="" src="data:," onerror="{code}">' + text[at:]


def test_the_policy_blocks_injected_inline_code_while_every_chart_draws(built_site, browser, tmp_path):
    # the probe page is served from a site of its own (links to the built site's folders and one new
    # page): the session's built site is shared with the tests running beside this one, and a page
    # added to it would be a page of the book to them
    source = (built_site / "chapters" / "05_platforms_policy.html").read_text(encoding="utf-8")
    assert 'http-equiv="Content-Security-Policy"' in source
    site = tmp_path / "site"
    (site / "chapters").mkdir(parents=True)
    for entry in built_site.iterdir():
        if entry.name != "chapters":
            (site / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    probe = site / "chapters" / "_csp_probe.html"
    with serving(site, Quiet) as server:
        # without the policy the injected code runs: the probe itself works
        probe.write_text(_inject(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", source),
                                 "window.__injected = (window.__injected || 0) + 1"), encoding="utf-8")
        page, _, _ = open_page(browser, f"{server}/chapters/_csp_probe.html")
        page.wait_for_function("window.__injected >= 2", timeout=5000)
        page.close()
        # with it, nothing injected runs, the browser says so, and the charts still draw
        probe.write_text(_inject(source, "window.__injected = (window.__injected || 0) + 1"), encoding="utf-8")
        page, errors, outside = open_page(browser, f"{server}/chapters/_csp_probe.html")
        charts = wait_for_charts(page)
        assert charts >= 2
        assert page.locator(".tipline-chart svg.marks").count() == charts
        page.wait_for_timeout(300)
        assert page.evaluate("window.__injected") is None
        refused = [e for e in errors if "Content Security Policy" in e]
        assert len(refused) >= 3, errors
        assert not [e for e in errors if e not in refused], errors
        assert not outside
        page.close()


def test_hostile_text_in_the_data_is_shown_as_text_and_runs_nothing(edited_book, browser):
    """Script and '<!--<script>' in a free-text field of the data (policy_events.csv, put there by
    the session's edited copy, helpers.edit_copy) reach chapter 5 as text: in its chart's tooltips
    (the chart's data) and in the table of that data (tipline.presentation.tables, which every table
    of the book goes through); in the browser nothing of it runs."""
    site = edited_book.site
    policy = edited_book.page("05_platforms_policy")
    assert "<!--<script>" not in policy and "<script>window.__pwned" not in policy and 'onerror="window.__pwned' not in policy
    assert "A hostile note. &lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;img" in policy, "the note is not in the data table as text"
    from tipline.presentation.charts import specs

    notes = [row.get("description") for spec in specs(policy).values()
             for rows in spec.get("datasets", {}).values() for row in rows]
    assert HOSTILE_NOTE in notes and HOSTILE in HOSTILE_NOTE, "the hostile note is not in the chart's data as text"
    with serving(site, Quiet) as url, Tab(browser) as tab:
        page, errors, outside = tab.visit(f"{url}/chapters/05_platforms_policy.html")
        charts = wait_for_charts(page)
        assert charts and page.locator(".tipline-chart svg.marks").count() == charts
        page.locator("details.tipline-chart-data").first.evaluate("d => { d.open = true; }")  # the table shown
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None
        assert not errors and not outside, (errors, outside)


# ---------------------------------------------------------------- navigation at every width

def _clickable(page, locator) -> bool:
    """Whether a reader can click `locator` now: it is inside the viewport and it, not something
    drawn over it, is what a click at its centre reaches (no scrolling: a drawer off-screen fails)."""
    return locator.evaluate("""el => { const r = el.getBoundingClientRect();
        if (r.width < 1 || r.height < 1 || r.right > innerWidth || r.bottom > innerHeight || r.left < 0 || r.top < 0) return false;
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return !!hit && (hit === el || el.contains(hit)); }""")


def _visible_one(page, selector):
    shown = [button for button in page.locator(selector).all() if button.is_visible()]
    assert len(shown) == 1, f"{selector}: {len(shown)} visible buttons"
    return shown[0]


@pytest.mark.full
@pytest.mark.parametrize("width", [375, 900, 1280])
def test_the_navigation_toggle_opens_the_book_contents_and_a_chapter_link_works(server, browser, width):
    """The ☰ button ("Toggle primary sidebar"), clicked as a reader clicks it: below the theme's
    992 px breakpoint it opens the book's contents in a drawer; above it the contents show beside the
    page and the button hides and shows them. Either way a chapter link then works."""
    page, errors, outside = open_page(browser, f"{server}/chapters/01_referral.html", width=width)
    page.set_viewport_size({"width": width, "height": 800})
    toggle = _visible_one(page, ".primary-toggle")
    link = page.locator("#pst-primary-sidebar a, #pst-primary-sidebar-modal a").filter(has_text="Who reports").first
    if width >= 992:
        assert _clickable(page, link), "the contents are not shown beside a wide page"
        toggle.click()
        assert _eventually(page, lambda: not _clickable(page, link)), "the button did not hide the contents"
        toggle.click()
    else:
        assert not _clickable(page, link), "the drawer is open before the button is pressed"
        toggle.click()
        _until(page, "document.querySelector('#pst-primary-sidebar-modal').open", 5)  # the drawer opens
        link.scroll_into_view_if_needed()
    assert _eventually(page, lambda: _clickable(page, link)), f"no clickable chapter link after pressing the button at {width} px"
    link.click()
    page.wait_for_url("**/chapters/02_reporters.html", timeout=5000)
    assert not errors and not outside, (errors, outside)
    page.close()


@pytest.mark.full
@pytest.mark.parametrize("width", [375, 900, 1280])
def test_the_contents_button_opens_the_page_sections_and_a_section_link_closes_it(server, browser, width):
    """The page's own contents: at 1280 px a column beside the text; narrower, the "Contents" button
    (secondary toggle) opens them in a drawer, and following a section link closes the drawer again
    (tipline-site.js) so the reader sees the section."""
    page, errors, outside = open_page(browser, f"{server}/chapters/01_referral.html", width=width)
    page.set_viewport_size({"width": width, "height": 800})
    link = page.locator("#pst-secondary-sidebar a, #pst-secondary-sidebar-modal a").filter(has_text="From reports to arrests").first
    if width < 1200:  # sphinx-book-theme shows the page's contents beside the text from 1200 px
        assert not _clickable(page, link)
        _visible_one(page, ".secondary-toggle").click()
        _until(page, "document.querySelector('#pst-secondary-sidebar-modal').open", 5)  # the drawer opens
    assert _eventually(page, lambda: _clickable(page, link)), f"no clickable section link at {width} px"
    link.click()
    _until(page, "location.hash === '#from-reports-to-arrests'", 5)
    heading = page.locator("#from-reports-to-arrests h2")
    assert _eventually(page, lambda: _clickable(page, heading)), "the section is not what the reader sees after following its link"
    assert not page.evaluate("[...document.querySelectorAll('dialog')].some(d => d.open)"), "a drawer stayed open"
    assert not errors and not outside, (errors, outside)
    page.close()


# ---------------------------------------------------------------- charts at a phone's width and a desktop's

def test_the_chart_rules_catch_what_they_claim():
    good = {"layout": "phone", "box": 335, "svg": 335, "over": 0, "plot": 300, "overlapping": [], "cut": [], "covered": []}
    assert chart_problems(good, phone=True) == []
    assert chart_problems(dict(good, plot=62), phone=True) == ["plotted area 62 px of a 335-px box"]
    assert chart_problems(dict(good, plot=62), phone=False) == []
    assert chart_problems(dict(good, layout="wide"), phone=True) == ["drawn in the wide layout"]
    assert chart_problems(dict(good, over=295), phone=True) == ["295 px wider than its box"]
    assert chart_problems(dict(good, overlapping=["10k / 100M"]), phone=True) == ["overlapping: 10k / 100M"]


def _until(page, expression: str, seconds: float = 15) -> None:
    """Wait until `expression` is true in the page. (Playwright's wait_for_function polls with eval,
    which the pages' security policy refuses; page.evaluate is not subject to it.)"""
    assert _eventually(page, lambda: page.evaluate(expression), seconds), f"not true after {seconds} s: {expression}"


@pytest.mark.full
def test_a_chart_is_drawn_again_in_the_layout_that_suits_a_new_width(server, browser):
    """A phone turned sideways or a window made narrower: each chart is drawn again in the layout for
    its new width (a compound chart's panels fitted again), with no console error."""
    page, errors, outside = open_page(browser, f"{server}/chapters/02_reporters.html", width=1280)
    charts = wait_for_charts(page)
    layouts = "() => [...document.querySelectorAll('.tipline-chart[data-ready]')].map(c => c.getAttribute('data-layout'))"
    _until(page, f"document.querySelectorAll('.tipline-chart[data-ready]').length >= {charts}")
    assert set(page.evaluate(layouts)) == {"wide"}
    page.set_viewport_size({"width": 375, "height": 740})
    _until(page, f"document.querySelectorAll('.tipline-chart[data-ready][data-layout=phone]').length >= {charts}")
    measured = [page.locator(".tipline-chart").nth(index).evaluate(CHART_BOXES) for index in range(charts)]
    assert not [problem for chart in measured for problem in chart_problems(chart, phone=True)]
    page.set_viewport_size({"width": 1280, "height": 900})
    _until(page, f"document.querySelectorAll('.tipline-chart[data-ready][data-layout=wide]').length >= {charts}")
    assert not errors and not outside
    page.close()


# ---------------------------------------------------------------- the printed book

@pytest.mark.full
def test_the_pdf_prints_every_chart_whole_and_no_control(built_site):
    """Each page as tipline.site.pdf laid it out when it printed it (print stylesheet, the printed
    column's width; the printer records the layout, pdf.LAYOUT): every chart lies inside the column
    and is no taller than a page, and no control shows (export menu, sliders, buttons, closed
    disclosures). In book.pdf, every text each chart draws (tick labels, value labels, titles,
    legends) is on that page's sheets: a chart cut at the page's edge loses the texts past it (the
    cut 100M tick and 20,512,803 label of the summary's first figure, the 100% ticks of the model
    chapter's charts)."""
    import json
    import unicodedata

    from pypdf import PdfReader

    from tipline.site import pdf

    book = PdfReader(built_site / pdf.NAME)
    texts = pdf_pages_text(built_site / pdf.NAME)
    names = pdf.pages_in_order(ROOT)
    starts = [book.get_destination_page_number(item) for item in book.outline] + [len(book.pages)]
    assert len(starts) == len(names) + 1, "one bookmark per page of the book"
    layout = json.loads((built_site.parent / ".work" / "_build" / pdf.LAYOUT).read_text())
    assert list(layout) == names, "the printer recorded another list of pages"

    def squash(text: str) -> str:
        # Chromium sets "fi", "ffi" as ligatures (NFKC spells them out); blank lines of a chart's
        # labels hold a zero-width space (tipline.presentation.layout.BLANK)
        return re.sub(r"[\s\u200b]+", "", unicodedata.normalize("NFKC", text))

    problems, charts = [], 0
    for index, name in enumerate(names):
        printed = squash(" ".join(texts[starts[index]:starts[index + 1]]))
        for chart in layout[name]["charts"]:
            charts += 1
            where = f"{name}, {chart['id']}"
            if chart["left"] < -1 or chart["right"] > pdf.COLUMN_PX + 1:
                problems.append(f"{where}: drawn from {chart['left']:.0f} to {chart['right']:.0f} px, the column is {pdf.COLUMN_PX} px")
            if chart["height"] > pdf.PAGE_HEIGHT_PX:
                problems.append(f"{where}: {chart['height']:.0f} px tall, a page holds {pdf.PAGE_HEIGHT_PX} px")
            missing = [text for text in chart["texts"] if squash(text) not in printed]
            if missing:
                problems.append(f"{where}: not in the PDF: {missing[:6]}")
        problems += [f"{name}: a control is printed: {control}" for control in layout[name]["controls"]]
    assert charts >= 30
    assert not problems, "\n".join(problems)
