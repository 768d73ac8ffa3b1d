"""The whole book as one PDF (book.pdf beside the site), printed by Chromium from the built pages.

Why Chromium rather than vl-convert: the PDF is then the site itself, printed -- prose with its
glued numbers, numbered captions, source lines, data tables, citations -- laid out by the same
print stylesheet readers get from their browser, with no second layout to keep in step. Vega draws
every chart as SVG and Chromium prints SVG as vector paths, so charts stay sharp at any zoom. Each
page is printed on its own, then pypdf joins them in the order of the table of contents with one
bookmark per page.

A page is laid out for print before its charts are drawn (`prepare`): the print stylesheet, and a
window exactly as wide as the printed column, so every chart is drawn for the width it is printed
at (in the layout the site script picks for that width) and none runs past the page's edge; the
print stylesheet (_static/tipline.css) scales a chart taller than a page down to fit one and hides
every control (the export menu, sliders, buttons); data tables and source lists are opened.

Called at the end of an HTML build (tipline.site.reader) when TIPLINE_PDF=1: the Pages workflow and the
test suite's shared build set it; an author's `make book` skips the 13-20 s of printing. Without it,
or without a browser, the book is built without a PDF and the pages do not link to one.
"""
from __future__ import annotations

import functools
import http.server
import io
import json
import os
import re
import threading
import time
from pathlib import Path

import yaml

from .browser import ARGS, CHROMIUM  # the arguments the tests and the benchmark use too
NAME = "book.pdf"
PAPER = "Letter"
MARGINS_MM = {"top": 15, "bottom": 15, "left": 14, "right": 14}
# the printed column in CSS px (96 per inch): Letter is 8.5 by 11 inches
COLUMN_PX = round((8.5 * 25.4 - MARGINS_MM["left"] - MARGINS_MM["right"]) / 25.4 * 96)
PAGE_HEIGHT_PX = round((11 * 25.4 - MARGINS_MM["top"] - MARGINS_MM["bottom"]) / 25.4 * 96)
# what a printed page opens (_static/tipline-site.js opens the same when a reader prints)
PRINTED_OPEN = "details.tipline-chart-data, .tipline-source details, details.tipline-changes"


# How each page lay when it was printed, kept beside Sphinx's output folder (so never published) for
# tests/test_browser.py: every chart inside the column and no taller than a page, the texts it draws
# (which the test looks for in the PDF's text), and any control left showing
LAYOUT = "pdf-layout.json"
# the controls a printed page still shows (none should)
PRINTED_CONTROLS = """() => [...document.querySelectorAll(
    'button, input, select, textarea, [role=button], .vega-embed > details, summary')].filter(e => {
  const r = e.getBoundingClientRect();
  if (r.width === 0 || r.height === 0 || getComputedStyle(e).visibility === 'hidden') return false;
  // an opened disclosure whose line prints as a plain heading (no marker) is not a control on paper
  return !(e.tagName === 'SUMMARY' && e.parentElement.open && getComputedStyle(e).display !== 'list-item');
}).map(e => (e.tagName + ' ' + (e.textContent || e.getAttribute('aria-label') || '').trim()).slice(0, 60))"""

# each chart as printed: where its drawing lies, how tall it is, the texts it draws
PRINTED_CHARTS = """() => [...document.querySelectorAll('.tipline-chart')].map(el => {
  const r = el.querySelector('svg.marks').getBoundingClientRect();
  return {id: el.id, layout: el.getAttribute('data-layout'), left: r.left, right: r.right, height: r.height,
          texts: [...el.querySelectorAll('svg.marks text')].filter(t => t.textContent.trim()
            && getComputedStyle(t).opacity !== '0').map(t => t.textContent)}; })"""


def pages_in_order(srcdir: Path) -> list[str]:
    """The book's pages as the table of contents orders them (e.g. 'chapters/summary')."""
    toc = yaml.safe_load((Path(srcdir) / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]
    for part in toc.get("parts", []):
        names += [entry["file"] for entry in part.get("chapters", [])]
    return names


# The printer reaches no host but its own local server, whatever a page asks for, in four layers
# (each of which keeps the browser's HTTP cache working, so the chart bundle is compiled once, not
# once a page as when every request was intercepted to check its host):
# 1. every response of the printer's server carries ONLY_THIS_SITE: the browser loads scripts,
#    styles, images, fonts, frames, workers and data from this server alone (its origin, port
#    included), whatever the page's own policy says or omits (that one still applies too: a page
#    must satisfy both); and the page is sandboxed: no pop-up window, no form sent, no navigation
#    of another window, no refresh of itself;
# 2. a page's own navigations (a link followed, `location` set) are held in the browser until the
#    printer lets those to this server go on (DevTools' Fetch domain, for documents only);
# 3. every request the browser makes anyway is seen, and one to another address stops the printer;
# 4. so does every refusal the browser reports (its console messages, which no page can silence).
ONLY_THIS_SITE = "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; sandbox allow-scripts allow-same-origin"
LOCAL_SCHEMES = ("data:", "blob:", "about:")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Content-Security-Policy", ONLY_THIS_SITE)
        super().end_headers()

    def log_message(self, *args):
        pass


def prepare(page, url: str) -> None:
    """Load `url` in `page` laid out as it is printed: print stylesheet, the printed column's width,
    every chart drawn (in its final size) for that width, data tables and source lists open."""
    page.set_viewport_size({"width": COLUMN_PX, "height": PAGE_HEIGHT_PX})
    page.emulate_media(media="print")
    page.goto(url, wait_until="load")
    charts = page.locator(".tipline-chart").count()
    # polled with page.evaluate: Playwright's wait_for_function evaluates its predicate with eval,
    # which the pages' Content-Security-Policy refuses
    deadline = time.monotonic() + 60
    while page.evaluate("document.querySelectorAll('.tipline-chart[data-ready] svg.marks').length") < charts:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: the charts were not drawn in 60 s")
        page.wait_for_timeout(100)
    page.evaluate(f"document.querySelectorAll({PRINTED_OPEN!r}).forEach(d => {{ d.open = true; }})")


def make(site: Path, names: list[str], layout: Path | None = None) -> Path:
    """Print every page of the built site in `names` and join them into site/book.pdf; with
    `layout`, write there how each page lay when it was printed (LAYOUT)."""
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader, PdfWriter

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{server.server_address[1]}/"
    writer = PdfWriter()
    printed_as = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            context = browser.new_context(service_workers="block")
            elsewhere: list[str] = []

            def seen(request):  # layer 3
                if not request.url.startswith((local,) + LOCAL_SCHEMES):
                    elsewhere.append(request.url)

            def refused(message):  # layer 4: "Refused to load the script 'http://...' because it violates ..."
                if message.type == "error":
                    elsewhere.extend(url for url in re.findall(r"https?://[^\s'\"]+", message.text) if not url.startswith(local))

            context.on("request", seen)
            page = context.new_page()
            page.on("console", refused)
            devtools = context.new_cdp_session(page)  # layer 2

            def navigation(event):
                url = event["request"]["url"]
                if url.startswith((local,) + LOCAL_SCHEMES):
                    devtools.send("Fetch.continueRequest", {"requestId": event["requestId"]})
                else:
                    elsewhere.append(url)
                    devtools.send("Fetch.failRequest", {"requestId": event["requestId"], "errorReason": "BlockedByClient"})

            devtools.on("Fetch.requestPaused", navigation)
            devtools.send("Fetch.enable", {"patterns": [{"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"}]})
            for name in names:
                prepare(page, f"{local}{name}.html")
                printed_as[name] = {"charts": page.evaluate(PRINTED_CHARTS), "controls": page.evaluate(PRINTED_CONTROLS)}
                title = page.evaluate("(document.querySelector('article h1') || {}).textContent || document.title")
                margin = {side: f"{mm}mm" for side, mm in MARGINS_MM.items()}
                printed = PdfReader(io.BytesIO(page.pdf(format=PAPER, print_background=True, margin=margin)))
                if elsewhere:
                    raise RuntimeError(f"{name}.html asked for {elsewhere[0]}, which is not this site: "
                                       "the PDF printer refused the request and stops")
                first = len(writer.pages)
                for sheet in printed.pages:
                    writer.add_page(sheet)
                writer.add_outline_item(" ".join(title.replace("#", "").split()), first)
            page.wait_for_timeout(100)  # anything a page asked for after it was printed
            if elsewhere:
                raise RuntimeError(f"{names[-1]}.html, or a page before it, asked for {elsewhere[0]}, which is not this "
                                   "site: the PDF printer refused the request and stops")
            browser.close()
    finally:
        server.shutdown()
    writer.add_metadata({"/Title": "What happens to a CyberTipline report?"})
    target = site / NAME
    with target.open("wb") as handle:
        writer.write(handle)
    if layout is not None:
        layout.write_text(json.dumps(printed_as), encoding="utf-8")
    return target


def wanted() -> bool:
    return os.environ.get("TIPLINE_PDF", "0") == "1" and CHROMIUM.exists()
