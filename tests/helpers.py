"""What the tests share beside conftest.py's fixtures: the repository's paths, copies of the book and
builds of them, the parsers of a build's output, edits of data/, and the browser's arguments.

The books a session builds once, each in its own folder under pytest's session folder, started in
the background as soon as a full run is configured (conftest.pytest_configure) or when a fixture
first asks for one (`start`), and waited for through a file lock the building process holds until
it has finished (`finished`):

* "site": the repository as it is, built with the PDF (TIPLINE_PDF=1): what the browser, reader and
  link tests read;
* "edited": a copy of the repository built after independent data edits (`edit_copy`), each in its
  own file and field, each checked by its own test (the committed chapters are stamped, so its
  build executes only those that read an edited dataset);
* "mini": a book of three small chapters reading data/us_counts.csv and the changes page
  (`make_mini`), for the build's own cases: failures, interrupts, locks, settings, the sandbox.
  Each case works on a copy of it (`copy_built`), so no case costs a build of the whole book.

    python tests/helpers.py variant NAME FOLDER   # (what `start` runs in the background)
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import functools
import gzip
import hashlib
import http.server
import io
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
sys.path.insert(0, str(ROOT))
from tipline.site.browser import ARGS as BROWSER_ARGS, CHROMIUM  # noqa: E402,F401 (one argument list for tests, bench and pdf)

IGNORE = shutil.ignore_patterns(".venv", "_build", ".git", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis")
# settings that change what a build makes: a test build gets only those it asks for
SETTINGS = ("TIPLINE_DATA", "TIPLINE_PDF", "TIPLINE_URL_PREFIX", "TIPLINE_WORKERS", "PYTHONPATH")


# ---------------------------------------------------------------- copies and builds

def copy_repo(target: Path) -> Path:
    """A working copy of the repository (sources only) for tests that edit or build it."""
    shutil.copytree(ROOT, target, ignore=IGNORE)
    return target


def copy_built(book: Path, target: Path) -> Path:
    """A copy of a built book (its folder, or its _build/html), its _build included, so a test can
    start from a published book and rebuild only what its change touches."""
    book = book.parents[1] if book.name == "html" else book
    shutil.copytree(book, target, symlinks=True, ignore=shutil.ignore_patterns("screenshots", "__pycache__"))
    return target


def book_command(repo: Path, **settings: str) -> tuple[list[str], dict]:
    """`make book` in a copy, with only the given settings (e.g. TIPLINE_PDF="1")."""
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS}
    env.update(settings)
    # -o: never (re)install into the shared virtual environment from a temporary copy
    return ["make", "-o", f"{VENV}/bin/jupyter-book", "book", f"VENV={VENV}"], env


def make_book(repo: Path, timeout: int = 900, **settings: str) -> subprocess.CompletedProcess:
    command, env = book_command(repo, **settings)
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)


def executed(output: str) -> set[str]:
    """The chapters a build executed, from its progress lines ("executing 3/14 02_reporters ... 1.8 s")."""
    return set(re.findall(r"^executing \d+/\d+ (\S+) \.\.\. ", output, re.M))


def stale(output: str) -> dict[str, str]:
    """Why each stale chapter had to execute, from the build's reason lines
    ("  data changed: recipients, sources: 01_referral, summary")."""
    reasons = {}
    for line in re.findall(r"^  (.+: .+)$", output.split("\nexecuting ")[0], re.M):
        why, names = line.rsplit(": ", 1)
        reasons.update(dict.fromkeys(names.split(", "), why))
    return reasons


def failure(result: subprocess.CompletedProcess) -> str:
    """The one BUILD FAILED line a failed build ends with (asserting there is exactly one, last)."""
    assert result.returncode != 0, result.stdout[-2000:]
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "BUILD FAILED" in line]
    assert len(lines) == 1, result.stdout[-3000:] + result.stderr[-3000:]
    # make's own "make: *** [Makefile:NN: book] Error 1" follows what the build said ("make[1]: ***"
    # when the tests themselves run under make, as `make test` and CI run them)
    last = [line for line in result.stderr.splitlines() if line.strip() and not re.match(r"make(\[\d+\])?: \*\*\*", line)][-1]
    assert last == lines[0], f"the BUILD FAILED line is not the last one:\n{result.stderr[-2000:]}"
    return lines[0]


def snapshot(site: Path) -> dict[str, str]:
    """Every file of a site with the hash of its content."""
    return {p.relative_to(site).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(site.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- edits of data/

def set_cell(path: Path, key: str, column: str, value: str) -> None:
    """Set `column` of the row whose first cell is `key` in a CSV file."""
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"))))
    row = next(r for r in rows if r[0] == key)
    row[rows[0].index(column)] = value
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def replace_once(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of `old`, keeping every other byte (some files end lines in CRLF)."""
    text = path.read_bytes().decode("utf-8")
    assert text.count(old) == 1, f"{path.name}: {old!r} occurs {text.count(old)} times"
    path.write_bytes(text.replace(old, new).encode("utf-8"))


class EditedData:
    """A copy of data/ to edit (the `edited_data` fixture): `set_cell`, `replace` and `path`."""

    def __init__(self, folder: Path):
        self.path = folder
        shutil.copytree(ROOT / "data", folder)

    def set_cell(self, name: str, key: str, column: str, value: str) -> Path:
        set_cell(self.path / name, key, column, value)
        return self.path / name

    def replace(self, name: str, old: str, new: str) -> Path:
        replace_once(self.path / name, old, new)
        return self.path / name


# ---------------------------------------------------------------- the edited copy of the book

# the row the mini book's chapters glue, and an edit of it: a dataset answer.json does not read, so an
# edit makes the build execute the chapters but never compute answer.json again (8 processor-s)
MINI_ROW = ("2024,by_country_referrals,949287", "2024,by_country_referrals,959287")
MINI_VALUE = ("949,287", "959,287")  # as the chapters print it
# one value of a CSV that chapter 2 glues into its prose and charts (read by three chapters, not by answer.json)
REFERRALS = ("2024,Snapchat,Snap,280000,", "2024,Snapchat,Snap,290000,")
HOSTILE = '<script>window.__pwned = 1</script><img src="data:," onerror="window.__pwned = 2"> --> <!--<script> </script>'
# policy_events.csv: chapter 5's chart tooltips and the table of the chart's data (tipline.presentation.tables);
# it also quotes the attribute that carries the pages' security policy, which must stay text (test_security)
POLICY_QUOTE = ' (The attribute http-equiv="Content-Security-Policy" is quoted here.)'
HOSTILE_NOTE = "A hostile note. " + HOSTILE + POLICY_QUOTE
# the datasets the edited copy changes, by the names its build reports them with
EDITED_DATASETS = {"us_referrals", "policy_events"}


def edit_copy(repo: Path) -> None:
    """The edits of the session's edited copy, each in its own file."""
    replace_once(repo / "data" / "us_referrals.csv", *REFERRALS)
    set_cell(repo / "data" / "policy_events.csv", "2024-05-07", "description", HOSTILE_NOTE)


# ---------------------------------------------------------------- the mini book

MINI = ("mini_a", "mini_b", "mini_c")
SOURCE_TITLE = ("CY 2023 Report to the Committees", "CY 2023 Retitled Report to the Committees")  # a bibliography entry


def mini_chapter(name: str, extra: str = "") -> object:
    """A chapter that glues one value of data/us_counts.csv (MINI_ROW) into its prose (and runs `extra`).
    With TIPLINE_TEST_HOLD=text in the build's environment, it waits (until the build stops it)
    while another chapter's notebook already holds `text`: a test can interrupt a build after its
    first chapter, and know that no other chapter ran, however busy the machine."""
    import nbformat

    code = nbformat.v4.new_code_cell
    cells = [code(f'import glob, os, time\nfrom tipline import chapter, load\nfrom tipline.presentation.text import count, say\nchapter("{name}")\n'
                  'hold = os.environ.get("TIPLINE_TEST_HOLD")\n'
                  f'while hold and any(hold in open(path).read() for path in glob.glob("*.ipynb") if path != "{name}.ipynb"):\n'
                  '    time.sleep(0.2)', metadata={"tags": ["remove-cell"]}),
             code('rows = load("us_counts")\n'
                  'referred = rows[(rows["year"] == 2024) & (rows["count"] == "by_country_referrals")]\n'
                  f'say("{name}_referrals", count(referred["reports"].sum()))' + (f"\n{extra}" if extra else ""),
                  metadata={"tags": ["remove-cell"]}),
             nbformat.v4.new_markdown_cell(f"# Chapter {name}\n\nIn 2024 NCMEC resolved {{glue:text}}`{name}_referrals` "
                                           "referrals to the United States.")]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def write_chapter(repo: Path, name: str, extra: str = "") -> Path:
    import nbformat

    path = repo / "chapters" / f"{name}.ipynb"
    nbformat.write(mini_chapter(name, extra), path)
    return path


def make_mini(target: Path) -> Path:
    """A copy of the repository whose book is three small chapters and the changes page. (Not the
    bibliography: sphinxcontrib-bibtex formats all of its 150 entries on every build, 1.5 s of each;
    the one case that needs the page adds it, with `add_to_mini`.)"""
    repo = copy_repo(target)
    for chapter in (repo / "chapters").glob("*.ipynb"):
        chapter.unlink()
    for name in MINI:
        write_chapter(repo, name)
    (repo / "_toc.yml").write_text("format: jb-book\nroot: chapters/mini_a\nchapters:\n"
                                   + "".join(f"  - file: chapters/{name}\n" for name in MINI[1:] + ("changes",)))
    return repo


def add_to_mini(repo: Path, page: str) -> None:
    """Add a page of the repository's book (e.g. "bibliography") to a copy of the mini book."""
    toc = repo / "_toc.yml"
    toc.write_text(toc.read_text() + f"  - file: chapters/{page}\n")


# ---------------------------------------------------------------- the session's books

class Built:
    """A book the session built (see the module's docstring), once its build has finished."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.repo = folder / "book"
        self.site = self.repo / "_build" / "html"
        self.status = (folder / "status").read_text().strip() if (folder / "status").exists() else "never finished"

    def log(self, name: str) -> str:
        path = self.folder / name
        return path.read_text() if path.exists() else ""

    def page(self, name: str) -> str:
        return (self.site / "chapters" / f"{name}.html").read_text(encoding="utf-8")


def start(folder: Path, name: str) -> None:
    """Start building book `name` in folder/name unless it was started; the building process holds
    folder/name.lock (taken here, before it starts) until it has finished."""
    with (folder / "start.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if (folder / name).exists():
            return
        (folder / name).mkdir()
        lock = (folder / f"{name}.lock").open("w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.Popen([sys.executable, __file__, "variant", name, str(folder)], cwd=ROOT, start_new_session=True,
                         pass_fds=[lock.fileno()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lock.close()  # the child's copy of the descriptor keeps the lock until it exits


def finished(folder: Path, name: str) -> Built:
    """Book `name` once its build has finished (started if it was not)."""
    start(folder, name)
    with (folder / f"{name}.lock").open() as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # waits for the building process to end
    return Built(folder / name)


def _build_variant(name: str, folder: Path) -> None:
    """(In the background process.) Build book `name`; its outputs and status go into folder/name."""
    out = folder / name

    def run(repo: Path, label: str, **settings) -> subprocess.CompletedProcess:
        result = make_book(repo, **settings)
        (out / f"{label}.out").write_text(result.stdout)
        (out / f"{label}.err").write_text(result.stderr)
        return result

    try:
        if name == "site":  # each book starts from the repository's kept answer.json (one computation a session)
            repo = copy_repo(out / "book")
            seed_answer(repo / "data")
            status = run(repo, "build", TIPLINE_PDF="1").returncode
        elif name == "mini":
            repo = make_mini(out / "book")
            seed_answer(repo / "data")
            status = run(repo, "build").returncode
        elif name == "edited":  # from the sources, like "site", so both build at once from the start
            repo = copy_repo(out / "book")
            seed_answer(repo / "data")  # its edits are of datasets answer.json does not read
            edit_copy(repo)
            status = run(repo, "build").returncode
        else:
            raise ValueError(name)
    except BaseException as error:  # noqa: BLE001 (said in the status, for the waiting tests)
        status = f"error: {error!r}"
    (out / "status").write_text(str(status))



# ---------------------------------------------------------------- serving a site as GitHub Pages does

class Quiet(http.server.SimpleHTTPRequestHandler):
    """A static server that does not log every request."""

    def log_message(self, *args):
        pass


class Compressing(Quiet):
    """Serves text assets gzip-compressed when the browser asks, as GitHub Pages does (the page-weight
    test and `make bench` measure with it)."""
    TEXT = {".html", ".js", ".css", ".json", ".svg", ".csv", ".txt"}
    compressed: dict[tuple, bytes] = {}  # (path, size, mtime): gzipped bytes, so each file is compressed once

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if path.is_file() and path.suffix in self.TEXT and "gzip" in self.headers.get("Accept-Encoding", ""):
            stat = path.stat()
            key = (str(path), stat.st_size, stat.st_mtime_ns)
            if key not in self.compressed:
                self.compressed[key] = gzip.compress(path.read_bytes())
            body = self.compressed[key]
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(str(path)))
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()


@contextlib.contextmanager
def serving(site: Path, handler=Compressing):
    """The site at http://127.0.0.1:PORT for the duration of the block (yields the address)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


# ---------------------------------------------------------------- what a page shows

class _Text(HTMLParser):
    """Visible text of a page: no <script>, <style>, <pre> or <code> (code cells may quote roles)."""

    SKIP = {"script", "style", "pre", "code"}

    def __init__(self):
        super().__init__()
        self.depth, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


# ---------------------------------------------------------------- pages in Chromium

SHOTS = ROOT / "_build" / "screenshots"
SCREENSHOTS = os.environ.get("TIPLINE_SCREENSHOTS") == "1"
# On a developer's machine without Chromium the browser checks are skipped with a reason; in CI
# (CI=true) they run and fail, so a missing browser can never pass as a green build.
NO_BROWSER = not CHROMIUM.exists() and not os.environ.get("CI")
# no preloading of stylesheets: axe would re-fetch the theme's @imports relative to the page
# (a request no reader makes), which the server answers with a 404
AXE_OPTIONS = {"resultTypes": ["violations"], "preload": False}
BLOCKING = ("serious", "critical")  # the axe impacts that fail a test
LOCAL = ("http://127.0.0.1", "file://", "data:", "blob:")


def screenshot(page, name: str) -> None:
    """A screenshot of what the viewport shows, for authors, when TIPLINE_SCREENSHOTS=1."""
    if SCREENSHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name))


class Tab:
    """One browser tab that visits page after page, as a reader following links, for a test that
    visits many pages. Opening a tab costs Chromium about 1.5 processor seconds; a visit in an open
    tab a fraction of that. Each visit has its own console errors, requests to other hosts and
    (with `weigh=True`) downloaded bytes.

    weigh=True: the HTTP cache is off, so every visit is a first-time reader's, and the size of
    every response is recorded in `sizes` (page_weight)."""

    def __init__(self, browser, width=1280, height=900, weigh=False, alone=False):
        from urllib.parse import urlparse

        if alone:  # a page with a context of its own, which closing the page closes
            self.page = browser.new_page(viewport={"width": width, "height": height})
            self.context = self.page.context
        else:
            self.context = browser.new_context(viewport={"width": width, "height": height})
            self.page = self.context.new_page()
        self.errors, self.outside, self.sizes, self.pending = [], [], [], set()
        if weigh:
            devtools = self.context.new_cdp_session(self.page)
            devtools.send("Network.enable")
            devtools.send("Network.setCacheDisabled", {"cacheDisabled": True})
            self.page.on("request", lambda r: self.pending.add(r))
            self.page.on("requestfailed", lambda r: self.pending.discard(r))

            def finished(r):
                self.pending.discard(r)
                self.sizes.append(r.sizes()["responseBodySize"])

            self.page.on("requestfinished", finished)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def request(r):
            if not (r.url.startswith(LOCAL) or urlparse(r.url).hostname is None):
                self.outside.append(r.url)

        # observed, not intercepted: intercepting every request would turn off the browser's cache
        self.page.on("request", request)

    def visit(self, url):
        """The tab at `url` (after its load event), with the console errors and the requests to other
        hosts of this visit alone."""
        self.errors, self.outside, self.sizes = [], [], []
        self.pending.clear()
        self.page.goto(url, wait_until="load")
        return self.page, self.errors, self.outside

    def close(self):
        self.context.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_page(browser, url, width=1280):
    """A page at `url` in a tab of its own, its console errors and the requests it made to any other
    host. Such requests cannot leave the machine: the browser resolves no host name but 127.0.0.1
    (BROWSER_ARGS); each one is recorded here."""
    return Tab(browser, width, alone=True).visit(url)


def export_every_chart(page, name: str) -> int:
    """Save every chart of `page` as PNG and as SVG through its own menu, as a reader does; each file
    is named for its figure, the PNG is an image, the SVG carries the figure number and a source
    line. Returns the number of files checked. (Run after any check of the page as loaded: each
    menu opened draws a framed copy of its chart, kept in the page.)"""
    exported = 0
    # the menu's toggle is named for screen readers
    assert page.locator(".tipline-chart summary:not([aria-label])").count() == 0, name
    for index in range(page.locator(".tipline-chart").count()):
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
            if name.endswith("02_reporters.html") and index == 0:
                SHOTS.mkdir(parents=True, exist_ok=True)  # the exported images, for a look
                shutil.copy(path, SHOTS / f"export_{download.value.suggested_filename}")
            assert download.value.suggested_filename == f"{chart.get_attribute('data-figure')}.{kind.lower()}"
            content = path.read_bytes()
            if kind == "PNG":
                assert content.startswith(b"\x89PNG") and len(content) > 2000, f"{name}: PNG export"
            else:
                text = content.decode("utf-8")
                assert text.lstrip().startswith("<svg") and re.search(r"Sources?:", text), f"{name}: SVG export lacks its source"
                words = re.sub(r"<[^>]+>", " ", text)
                assert caption.split(":")[0] in words, f"{name}: SVG export lacks its figure number"
            exported += 1
        chart.locator("details > summary").click()
    return exported


def wait_for_charts(page, timeout: int = 15000) -> int:
    """Wait until every chart of the page has drawn its marks; the number of charts."""
    expected = page.locator(".tipline-chart").count()
    if expected:
        # a function, not an expression: Playwright evaluates an expression again with eval() on
        # each poll, which the pages' security policy refuses (a page whose charts had not drawn at
        # the first check failed with an EvalError); a function is evaluated once and then called
        page.wait_for_function(
            f"() => document.querySelectorAll('.tipline-chart svg.marks, .tipline-chart canvas.marks').length >= {expected}",
            timeout=timeout)
    return expected


# Measured from the bounding boxes of the SVG elements vega draws (not from pixels): the chart's
# box (the placeholder's content box), its plotted views (the root frame, or each panel of a
# compound chart), and every text (titles, axis and legend labels, labels drawn as marks).
CHART_BOXES = """el => {
  const style = getComputedStyle(el), outer = el.getBoundingClientRect();
  const box = {left: outer.left + parseFloat(style.paddingLeft), right: outer.right - parseFloat(style.paddingRight)};
  const svg = el.querySelector("svg.marks"), drawn = svg.getBoundingClientRect();
  const root = svg.querySelector("g.mark-group.role-frame.root");
  const frame = root.querySelector(":scope > g > path.background");
  let views = [...svg.querySelectorAll("g.mark-group.role-scope")].filter(g => g.parentElement.closest("g.mark-group") === root)
    .map(g => g.querySelector(":scope > g > path.background")).filter(Boolean);
  const area = r => r.width > 0 && r.height > 0;
  if (!views.length || (frame && area(frame.getBoundingClientRect()))) views = [frame];
  const plots = views.filter(v => v && area(v.getBoundingClientRect())).map(v => v.getBoundingClientRect().width);
  const role = t => ((t.closest("g.mark-text") || {className: {baseVal: ""}}).className.baseVal.match(/role-([a-z-]+)/) || [, "?"])[1];
  const texts = [...svg.querySelectorAll("text")].filter(t => t.textContent.trim() && getComputedStyle(t).opacity !== "0")
    .map(t => { const r = t.getBoundingClientRect();
      return {role: role(t), text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom}; })
    .filter(t => t.right > t.left);
  const meet = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const overlapping = [];
  texts.forEach((a, i) => texts.slice(i + 1).forEach(b => { if (meet(a, b)) overlapping.push(a.text + " / " + b.text); }));
  const cut = texts.filter(t => t.text.endsWith("\\u2026") || t.left < box.left - 1 || t.right > box.right + 1
      || t.top < drawn.top - 1 || t.bottom > drawn.bottom + 1).map(t => t.role + " '" + t.text + "'");
  const menu = el.querySelector(".vega-embed > details > summary");
  const covered = menu ? texts.filter(t => meet(t, menu.getBoundingClientRect())).map(t => t.text) : [];
  return {layout: el.getAttribute("data-layout"), box: box.right - box.left, svg: drawn.width,
          over: Math.max(drawn.right - box.right, el.scrollWidth - el.clientWidth), plot: plots.length ? Math.min(...plots) : 0,
          overlapping, cut, covered};
}"""

# Whether anything the page draws over a chart (a floating button) hides one of its legend labels:
# the legend is put where the theme's "Back to top" button used to float (90% down the screen), the
# page is scrolled up a little (which shows that button), and each label's centre is probed.
LEGEND_HIDDEN = """async el => {
  const labels = [...el.querySelectorAll("g.role-legend-label text, g.role-legend-title text")];
  if (!labels.length) return [];
  const legend = el.querySelector("g.role-legend").getBoundingClientRect();
  // "instant": the theme's stylesheet asks for smooth scrolling, which a second scroll would interrupt
  window.scrollBy({top: legend.top + legend.height / 2 - innerHeight * 0.9 + 40, behavior: "instant"});
  // scroll handlers run before the next frame's callbacks: two frames later they have all run
  const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  await frames();
  window.scrollBy({top: -40, behavior: "instant"});
  await frames();
  return labels.filter(t => { const r = t.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return r.bottom < innerHeight && !(hit && el.contains(hit)); }).map(t => t.textContent);
}"""


def chart_problems(measured: dict, phone: bool) -> list[str]:
    """What breaks the chart rules, from CHART_BOXES' measurements."""
    found = []
    if phone and measured["layout"] != "phone":
        found.append(f"drawn in the {measured['layout']} layout")
    if phone and measured["plot"] < 0.6 * measured["box"]:
        found.append(f"plotted area {measured['plot']:.0f} px of a {measured['box']:.0f}-px box")
    if measured["over"] > 1:
        found.append(f"{measured['over']:.0f} px wider than its box")
    found += [f"cut: {text}" for text in measured["cut"]]
    found += [f"overlapping: {pair}" for pair in measured["overlapping"]]
    found += [f"under the export button: {text}" for text in measured["covered"]]
    return found


def chart_misfits(page, name: str, phone: bool) -> list[str]:
    """What breaks the chart rules (chart_problems, LEGEND_HIDDEN) in each chart of an open page;
    run it last on a page: LEGEND_HIDDEN scrolls it."""
    problems = []
    for index in range(page.locator(".tipline-chart").count()):
        chart = page.locator(".tipline-chart").nth(index)
        found = chart_problems(chart.evaluate(CHART_BOXES), phone=phone)
        found += [f"legend label hidden: {text}" for text in chart.evaluate(LEGEND_HIDDEN)]
        problems += [f"{name} chart {index + 1}: {problem}" for problem in found]
    return problems


def site_pages(built_site):
    """The site's pages with content (index.html is only a redirect to the summary; search and
    genindex have none)."""
    return sorted(p.relative_to(built_site).as_posix() for p in built_site.rglob("*.html")
                  if "_static" not in p.parts and p.name not in ("index.html", "genindex.html", "search.html"))


def seed_answer(data: Path) -> None:
    """Give an edited copy of data/ the repository's kept answer.json (computed once per session, by
    whichever process asks first). The kept file is named by the content of the datasets it was
    computed from: a copy whose edits it never read finds it under the same name and reads it; a copy
    that changed one of them looks for another name and computes its own."""
    from tipline.estimates import answer

    kept = answer.keep()
    target = data.parent / "_build" / "answer"
    target.mkdir(parents=True, exist_ok=True)
    for path in (kept, kept.parent / "datasets.txt"):
        shutil.copy2(path, target / path.name)


def execute_chapter(name: str, data: Path, folder: Path) -> subprocess.CompletedProcess:
    """Execute one chapter on its own (nbconvert, in `folder`) against the datasets in `data`."""
    copy = folder / "chapters" / f"{name}.ipynb"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "chapters" / f"{name}.ipynb", copy)
    seed_answer(data)
    env = dict(os.environ, TIPLINE_DATA=str(data))
    return subprocess.run([str(VENV / "bin" / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                           "--output", str(folder / "out.ipynb"), str(copy)],
                          cwd=copy.parent, env=env, capture_output=True, text=True, timeout=300)


def pdf_pages_text(pdf: Path) -> list[str]:
    """The text of each page of `pdf`, as PDFium (Chromium's own PDF engine, through pypdfium2) reads
    it: about a second for book.pdf's 240 pages, where pypdf took 20."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        return [page.get_textpage().get_text_bounded() for page in document]
    finally:
        document.close()


def pdf_raster_pages(pdf: Path) -> list[int]:
    """The pages of `pdf` that hold a raster image (an image object on the page or in any form it
    draws), where a chart drawn as vector graphics holds none."""
    import pypdfium2
    import pypdfium2.raw

    document = pypdfium2.PdfDocument(pdf)
    try:
        return [index for index, page in enumerate(document)
                if next(page.get_objects(filter=(pypdfium2.raw.FPDF_PAGEOBJ_IMAGE,)), None) is not None]
    finally:
        document.close()


# What a first-time reader may download for one page, gzipped, in MB (issue 14's goals), as the
# desktop and phone passes measure it (page_weight): a page with charts carries the chart bundle.
TEXT_PAGE_MB, CHART_PAGE_MB = 0.25, 0.45
# The one page allowed over its goal, and why (Appendix B says so too): the model chapter shows
# about 40 KB of its own code under "Show code cell source", about 30 KB compressed.
OVER_GOAL = {"chapters/best_inference.html": 0.50}


def over_goal(name: str, weight: dict) -> list[str]:
    """The page's weight (page_weight) against its goal: [] within it, else one line saying by how
    much. A page under 50 KB means the measurement is broken, and fails at once."""
    assert weight["bytes"] > 50_000, f"{name}: implausibly light, {weight['bytes']} bytes: the measurement is broken"
    goal = OVER_GOAL.get(name, CHART_PAGE_MB if weight["charts"] else TEXT_PAGE_MB)
    return [f"{name}: {weight['bytes'] / 1e6:.3f} MB (goal {goal} MB)"] if weight["bytes"] / 1e6 > goal else []


def page_weight(tab: Tab, url: str) -> dict:
    """What a first-time reader downloads for one page (`tab` made with `Tab(browser, weigh=True)`),
    and how long its charts take to draw after the load event."""
    page, _, _ = tab.visit(url)
    charts = wait_for_charts(page, timeout=30000)
    drawn = page.evaluate("(performance.now() - performance.getEntriesByType('navigation')[0].loadEventEnd) / 1000") if charts else 0.0
    # everything asked for by then, the fonts its text uses included, has arrived (Playwright's
    # "networkidle" would wait half a second more on every page, for the same bytes)
    page.evaluate("document.fonts.ready.then(() => new Promise(done => requestAnimationFrame(() => done())))")
    deadline = time.monotonic() + 30
    while tab.pending and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    assert not tab.pending, f"{url}: still loading after 30 s: {sorted(r.url for r in tab.pending)}"
    resources = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)") + [page.url]
    return {"charts": charts, "requests": len(tab.sizes), "bytes": int(sum(tab.sizes)), "resources": resources,
            "charts_drawn_after_load_seconds": round(max(drawn, 0.0), 3)}


if __name__ == "__main__" and sys.argv[1:2] == ["variant"]:
    _build_variant(sys.argv[2], Path(sys.argv[3]))
