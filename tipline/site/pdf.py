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
# (none intercepts requests in the browser, which would turn its HTTP cache off: the chart bundle
# is compiled once, not once a page):
# 1. the printer's server is also the browser's proxy for every address, 127.0.0.1 included: it
#    serves its own site and refuses any other address (navigations, pop-ups, forms and loads
#    alike): nothing reaches another host or port;
# 2. every response carries ONLY_THIS_SITE, so the browser itself loads nothing from elsewhere
#    (whatever a page's own policy says or omits; that one still applies too) and sandboxes the
#    page: no pop-up window, no form sent, no automatic refresh;
# 3. every request a page makes to another address is seen, and stops the printer, naming it;
# 4. so does every refusal the browser reports in a page's console (which no page can silence).
ONLY_THIS_SITE = "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; sandbox allow-scripts allow-same-origin"
LOCAL_SCHEMES = ("data:", "blob:", "about:")


class _OnlyThisSite(http.server.SimpleHTTPRequestHandler):
    """Serves the built site, as a server and as the browser's proxy: a request for any other
    address, and any form sent, is refused (403). (Not noted here: Chromium asks for addresses of
    its own, which no page made; the page's own requests are seen by layers 3 and 4.)"""
    origin = ""  # http://127.0.0.1:PORT, once the server listens

    def _own(self) -> bool:
        if self.path.startswith(self.origin + "/"):  # through the proxy: the whole address
            self.path = self.path[len(self.origin):]
        elif not self.path.startswith("/"):
            self.send_error(403, "the PDF printer serves its own site alone")
            return False
        return True

    def do_GET(self):
        if self._own():
            super().do_GET()

    def do_HEAD(self):
        if self._own():
            super().do_HEAD()

    def do_POST(self):  # the site takes no form, and another address is refused
        self.send_error(403, "the PDF printer serves its own site alone, and takes no form")

    do_CONNECT = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

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

    handler = type("Handler", (_OnlyThisSite,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    handler.origin = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = f"{handler.origin}/"
    writer = PdfWriter()
    printed_as = {}
    try:
        with sync_playwright() as playwright:
            # "<-loopback>": 127.0.0.1 goes through the proxy too (Chromium leaves it out by default)
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS,
                                                 proxy={"server": handler.origin, "bypass": "<-loopback>"})
            context = browser.new_context(service_workers="block")
            elsewhere: list[str] = []  # what layers 3 and 4 saw

            def seen(request):  # layer 3
                if not request.url.startswith((local,) + LOCAL_SCHEMES):
                    elsewhere.append(request.url)

            def reported(message):  # layer 4: "Refused to load the script 'http://...' because it violates ..."
                if message.type == "error":
                    elsewhere.extend(url for url in re.findall(r"https?://[^\s'\"]+", message.text) if not url.startswith(local))

            def stop_if_asked(where: str) -> None:
                if elsewhere:
                    raise RuntimeError(f"{where} asked for {elsewhere[0]}, which is not this site: "
                                       "the PDF printer refused the request and stops")

            context.on("request", seen)
            page = context.new_page()
            page.on("console", reported)
            for name in names:
                prepare(page, f"{local}{name}.html")
                printed_as[name] = {"charts": page.evaluate(PRINTED_CHARTS), "controls": page.evaluate(PRINTED_CONTROLS)}
                title = page.evaluate("(document.querySelector('article h1') || {}).textContent || document.title")
                margin = {side: f"{mm}mm" for side, mm in MARGINS_MM.items()}
                printed = PdfReader(io.BytesIO(page.pdf(format=PAPER, print_background=True, margin=margin)))
                stop_if_asked(f"{name}.html")
                first = len(writer.pages)
                for sheet in printed.pages:
                    writer.add_page(sheet)
                writer.add_outline_item(" ".join(title.replace("#", "").split()), first)
            page.wait_for_timeout(100)  # anything a page asked for after it was printed
            stop_if_asked(f"{names[-1]}.html, or a page before it,")
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
