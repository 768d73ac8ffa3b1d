"""Reader experience in a real browser: phone layout, dark mode (with an axe-core contrast scan),
print, offline search, the 404 page, and page weight. The axe-core scan of every page runs
with the page checks in test_browser.py.

With TIPLINE_SCREENSHOTS=1, screenshots land in _build/screenshots/ (desktop, phone, dark) for a
person to inspect.
"""
from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# the browser and the server are conftest's session fixtures: one Chromium per test process
from helpers import (AXE_OPTIONS, BLOCKING, CHROMIUM, NO_BROWSER, SHOTS, Tab, chart_misfits, open_page, over_goal, page_weight,
                     screenshot, serving, site_pages, wait_for_charts)

pytestmark = pytest.mark.skipif(NO_BROWSER, reason=f"no browser at {CHROMIUM} (.ci/run installs Debian's chromium)")


# Every table shown (not those inside a closed disclosure) fits its box: a table too wide for it is
# laid out a row at a time (tipline-site.js), and each of its cells then shows its column's name.
TABLES_ON_A_PHONE = """() => [...document.querySelectorAll('table.tipline-table, table.tipline-data-table')]
  .filter(t => t.parentElement.clientWidth > 0).flatMap(t => {
    const caption = (t.querySelector('caption') || {textContent: t.rows[0].textContent}).textContent.slice(0, 50);
    const found = [];
    if (t.getBoundingClientRect().width > t.parentElement.clientWidth + 1) found.push(`a table wider than its box: ${caption}`);
    if (t.classList.contains('tipline-stacked')) {
      const cells = [...t.querySelectorAll('tbody td:not(:first-child)')];
      const unnamed = cells.filter(td => { const label = getComputedStyle(td, '::before').content;
        return !td.dataset.label || label !== JSON.stringify(td.dataset.label); });
      if (unnamed.length) found.push(`${unnamed.length} cells shown without their column's name: ${caption}`);
    }
    return found; })"""


def test_every_page_and_every_chart_fit_a_phone_screen_and_each_page_is_light(built_site, browser):
    """Every page at 375 px: nothing wider than the screen, every table readable (TABLES_ON_A_PHONE);
    every chart drawn in its phone layout with its plotted area at least 60% of its box, and none
    of the chart rules broken (helpers.chart_problems: nothing cut, overlapping, under the export
    button or hidden behind a floating button). And what a first-time reader downloads for each
    page, gzipped as GitHub Pages serves it (helpers.page_weight: the browser's cache is off in this
    tab), within its goal (helpers.over_goal)."""
    problems, heavy, charts = [], [], 0
    tab = Tab(browser, width=375, height=740, weigh=True)  # no cache: every visit is a first-time reader's
    with serving(built_site) as server:  # compressing, as GitHub Pages does
        for name in site_pages(built_site) + ["search.html", "404.html"]:
            weight = page_weight(tab, f"{server}/{name}")
            page, errors, outside = tab.page, tab.errors, tab.outside
            charts += weight["charts"]
            heavy += over_goal(name, weight)
            screenshot(page, "phone_" + name.replace("/", "_") + ".png")
            overflow = page.evaluate("document.documentElement.scrollWidth")
            if overflow > 400:
                problems.append(f"{name}: page is {overflow}px wide")
            wide = page.evaluate("""() => [...document.querySelectorAll('.tipline-chart')]
                .filter(c => c.getBoundingClientRect().right > window.innerWidth + 1).map(c => c.id)""")
            if wide:
                problems.append(f"{name}: charts overflow the screen {wide}")
            problems += [f"{name}: {problem}" for problem in page.evaluate(TABLES_ON_A_PHONE)]
            problems += chart_misfits(page, name, phone=True)  # last: it scrolls the page
            assert not errors and not outside, f"{name}: {errors} {outside}"
    tab.close()
    assert charts >= 30
    assert not problems, f"{len(problems)} problems at 375 px:\n" + "\n".join(problems)
    assert not heavy, "heavier than their goals:\n" + "\n".join(heavy)


def test_charts_fill_their_container(server, browser):
    with Tab(browser) as tab:
        for width in (1280, 375):
            tab.page.set_viewport_size({"width": width, "height": 900})
            page, _, _ = tab.visit(f"{server}/chapters/01_referral.html")
            wait_for_charts(page)
            ratios = page.evaluate("""() => [...document.querySelectorAll('.tipline-chart')].map(c => {
                const svg = c.querySelector('svg.marks'); return svg.getBoundingClientRect().width / c.clientWidth; })""")
            assert ratios and all(0.6 <= r <= 1.01 for r in ratios), (width, ratios)


def test_dark_mode_keeps_charts_and_text_legible(server, browser):
    page, errors, _ = open_page(browser, f"{server}/chapters/best_inference.html")
    page.evaluate("document.documentElement.dataset.theme = 'dark'")
    wait_for_charts(page)
    page.wait_for_timeout(200)
    screenshot(page, "dark_best_inference.png")
    body = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert body not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), "dark theme did not apply"
    cards = page.evaluate("[...document.querySelectorAll('.tipline-chart')].map(c => getComputedStyle(c).backgroundColor)")
    assert cards and set(cards) == {"rgb(255, 255, 255)"}, "charts lost their light card in dark mode"
    result = Axe().run(page, options={**AXE_OPTIONS, "runOnly": ["color-contrast"]}).response
    serious = [v for v in result["violations"] if v["impact"] in BLOCKING]
    assert not serious, [(v["id"], v["nodes"][0]["target"]) for v in serious]
    assert not errors


def test_a_chapter_prints_without_navigation(server, browser, tmp_path):
    page, _, _ = open_page(browser, f"{server}/chapters/01_referral.html")
    wait_for_charts(page)
    page.emulate_media(media="print")
    hidden = page.evaluate("""() => ['.bd-sidebar-primary', '.bd-header', '.prev-next-area']
        .map(s => document.querySelector(s)).filter(Boolean).every(e => getComputedStyle(e).display === 'none')""")
    assert hidden, "navigation is printed"
    assert page.locator(".tipline-chart svg.marks").first.is_visible()
    pdf = page.pdf(path=str(SHOTS.parent / "print_01_referral.pdf"))
    assert pdf[:4] == b"%PDF" and len(pdf) > 10_000


def test_offline_search_finds_chapters(server, browser):
    page, errors, outside = open_page(browser, f"{server}/search.html?q=arrests")
    page.wait_for_selector("#search-results ul.search li", timeout=15000)
    hits = page.locator("#search-results ul.search li a").all_inner_texts()
    assert any("inference" in h.lower() or "referral" in h.lower() for h in hits), hits
    assert not errors and not outside


def test_not_found_page_and_favicon(built_site, server, browser):
    assert (built_site / "404.html").exists() and (built_site / "favicon.svg").exists()
    page, errors, outside = open_page(browser, f"{server}/404.html")
    assert page.locator("article h1").inner_text() == "Page not found"
    assert page.locator("a#home").get_attribute("href").endswith("index.html")
    # served at any address, so its links are absolute (under TIPLINE_URL_PREFIX on a project site)
    assert page.locator("link[rel=icon]").get_attribute("href").startswith("/_static/favicon")
    assert page.locator("link[rel=stylesheet]").count() and not page.locator("link[rel=stylesheet]:not([href^='/'])").count()
    assert not errors and not outside
    chapter = (built_site / "chapters" / "summary.html").read_text()
    assert 'rel="icon"' in chapter and "favicon.svg" in chapter


def test_chart_bundle_loads_only_where_charts_are(server, browser):
    tab = Tab(browser)

    def scripts(name):
        page, _, _ = tab.visit(f"{server}/chapters/{name}.html")
        requested = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        return [url for url in requested if "tipline-charts.js" in url]
    assert scripts("01_referral"), "chart page without the chart bundle"
    assert not scripts("bibliography"), "the chart bundle loads on a page without charts"
    tab.close()


def test_no_source_maps_are_published(built_site):
    assert not list(built_site.rglob("*.map"))


@pytest.mark.full
def test_one_search_box_and_the_header_links_at_every_width(server, browser):
    """Issue 20: two search boxes on a desktop; the PDF and the citation only in the footer."""
    tab = Tab(browser)
    for width in (375, 900, 1280):
        tab.page.set_viewport_size({"width": width, "height": 900})
        # another address each time (the server ignores the query), so each visit loads the page
        # afresh rather than only moving within it
        page, errors, _ = tab.visit(f"{server}/chapters/03_urgency.html?width={width}")
        visible = page.evaluate("""() => [...document.querySelectorAll(
                '.search-button-field, .search-button, form.bd-search input')].filter(el => {
            const box = el.getBoundingClientRect(), style = getComputedStyle(el);
            return box.width > 0 && box.height > 0 && style.visibility !== 'hidden' && style.display !== 'none'; }).length""")
        assert visible == 1, f"{width}px: {visible} search boxes"
        for name in ("Cite", "PDF"):
            link = page.locator("a.tipline-header-link", has_text=name)
            box = link.bounding_box()
            assert box and box["y"] < 80 and box["x"] + box["width"] <= width, f"{width}px: {name} not in the header"
        page.locator("a.tipline-header-link", has_text="Cite").click()
        # the theme scrolls smoothly: the citation must come into view once the scrolling ends
        in_view = """() => { const box = document.getElementById('cite-this-page').getBoundingClientRect();
            return box.top >= 0 && box.bottom <= innerHeight; }"""
        try:
            page.wait_for_function(in_view, timeout=5000)
        except PlaywrightTimeout:
            pytest.fail(f"{width}px: the citation is not in view 5 s after the link is followed")
        assert not errors
    tab.close()


def test_a_table_is_read_row_by_row_only_where_it_does_not_fit(server, browser):
    """The model chapter's ladder (Table 2) is a table beside a desktop page's text, a list of rows
    at a phone's width, and a table again when the window widens."""
    ladder = "document.querySelectorAll('table.tipline-table')[1]"
    page, errors, _ = open_page(browser, f"{server}/chapters/best_inference.html", width=1280)
    assert "the ladder" in page.evaluate(f"{ladder}.caption.textContent")
    assert not page.evaluate(f"{ladder}.classList.contains('tipline-stacked')"), "a table that fits was taken apart"
    assert page.evaluate(f"getComputedStyle({ladder}.querySelector('tbody tr')).display") == "table-row"
    page.set_viewport_size({"width": 375, "height": 740})
    page.wait_for_function(f"() => {ladder}.classList.contains('tipline-stacked')", timeout=5000)
    first = page.evaluate(f"""(() => {{ const td = {ladder}.querySelector('tbody td:nth-child(2)');
        return [getComputedStyle(td).display, getComputedStyle(td, '::before').content, td.getBoundingClientRect().right]; }})()""")
    assert first[0] == "block" and first[1] == '"What is counted"' and first[2] <= 375, first
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_function(f"() => !{ladder}.classList.contains('tipline-stacked')", timeout=5000)
    assert not errors
    page.close()
