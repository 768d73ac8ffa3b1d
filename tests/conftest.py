"""Shared fixtures: a copy of the repository built once per test session with `make book`,
shared by every pytest-xdist worker, and one browser per worker.

`make test` runs pytest with `-n auto`. The controller process starts the one book build in the
background as soon as pytest is configured, so the chapters' nbval tests and the data tests run
while it builds; every worker's `built_site` waits for that build (a file lock decides who starts
it when pytest runs without the controller, e.g. `pytest tests/test_build.py`).

A second shared copy, the edited book (fixture `edited_book`), carries several independent data
edits and is rebuilt once, as soon as the shared build is done: the tests of an edited CSV, an
edited sources.csv and hostile text in the data read it instead of each rebuilding a copy.
Tests are handed out longest first (pytest_collection_modifyitems), those of the edited copy last.
"""
from __future__ import annotations

import csv
import fcntl
import functools
import io
import http.server
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
IGNORE = shutil.ignore_patterns(".venv", "_build", ".git", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis")
SHARED = "TIPLINE_SHARED_BUILD"  # the folder of the session's one build, inherited by xdist workers
# Debian's Chromium (what .ci/run installs); TIPLINE_CHROMIUM points elsewhere, e.g. to the
# Google Chrome that GitHub's Ubuntu runners ship
CHROMIUM = Path(os.environ.get("TIPLINE_CHROMIUM", "/usr/bin/chromium"))
# no host name but 127.0.0.1 resolves: nothing a page asks of another host leaves the machine
# (test_browser._open records every such request, which fails the test)
BROWSER_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def copy_repo(target: Path) -> Path:
    """A working copy of the repository (sources only) for tests that edit or build it."""
    shutil.copytree(ROOT, target, ignore=IGNORE)
    return target


def copy_built(built_site: Path, target: Path) -> Path:
    """A copy of the session's built book, its site and execution cache included, so a test
    can start from a published book and rebuild only what its change touches."""
    shutil.copytree(built_site.parents[1], target, symlinks=True,
                    ignore=shutil.ignore_patterns("screenshots", "__pycache__"))
    return target


def book_command(repo: Path, pdf: bool = False) -> tuple[list[str], dict]:
    """`make book` for a copy; only the session's shared build prints the PDF (25-40 s of Chromium),
    which tests of rebuilt copies never look at."""
    env = dict(os.environ, TIPLINE_DATA=str(repo / "data"), TIPLINE_PDF="1" if pdf else "0")
    env.pop("PYTHONPATH", None)
    # -o: never (re)install into the shared virtual environment from a temporary copy
    return ["make", "-o", f"{VENV}/bin/jupyter-book", "book", f"VENV={VENV}"], env


def make_book(repo: Path) -> subprocess.CompletedProcess:
    command, env = book_command(repo)
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=900)


def _start_shared_build(folder: Path) -> None:
    """Start the session's build once (whoever comes first, under a file lock)."""
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "started").exists():
            return
        repo = copy_repo(folder / "book")
        command, env = book_command(repo, pdf=True)
        shell = f'{" ".join(command)} > ../build.log 2>&1; echo $? > ../status.tmp; mv ../status.tmp ../status'
        process = subprocess.Popen(["sh", "-c", shell], cwd=repo, env=env, start_new_session=True)
        (folder / "pid").write_text(str(process.pid))
        (folder / "started").write_text(str(time.time()))


# ---------------------------------------------------------------- the session's edited copy
# Tests of a rebuild after a data edit share ONE copy of the built book carrying several
# independent edits, rebuilt once (each edit touches a different file and field; each test checks
# its own edit's effect, and test_build checks that every chapter executed for exactly the edited
# files it read). Started as soon as pytest is configured; it waits for the shared build.

RECIPIENTS = ("2024,icac,actionable,816361", "2024,icac,actionable,826361")  # one value in a charted CSV
SOURCE_TITLE = ("CY 2023 Report to the Committees", "CY 2023 Retitled Report to the Committees")  # a bibliography entry
HOSTILE = '<script>window.__pwned = 1</script><img src="data:," onerror="window.__pwned = 2"> --> <!--<script> </script>'
HOSTILE_JUSTIFICATION = "A hostile justification for the range: " + HOSTILE  # assumptions.csv, a Styler table
HOSTILE_NOTE = "A hostile note. " + HOSTILE  # policy_events.csv, chapter 5's chart tooltips
# the datasets the edited copy changes, by the names its build reports them with
EDITED_DATASETS = {"recipients", "sources", "assumptions", "policy_events"}


def set_cell(path: Path, key: str, column: str, value: str) -> None:
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"))))
    row = next(r for r in rows if r[0] == key)
    row[rows[0].index(column)] = value
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name}: {old!r} occurs {text.count(old)} times"
    path.write_text(text.replace(old, new))


def edit_copy(repo: Path) -> None:
    """The edits of the shared edited copy, each in its own file."""
    _replace_once(repo / "data" / "recipients.csv", *RECIPIENTS)
    _replace_once(repo / "data" / "sources.csv", *SOURCE_TITLE)
    set_cell(repo / "data" / "assumptions.csv", "conviction_share", "justification", HOSTILE_JUSTIFICATION)
    set_cell(repo / "data" / "policy_events.csv", "2024-05-07", "description", HOSTILE_NOTE)


def _build_edited_copy(folder: Path) -> None:
    """(In its own process.) Wait for the shared build, copy it, build the copy unchanged, edit it,
    build it again; the outputs go to folder/edited/*.out and the result to folder/edited/status."""
    edited = folder / "edited"
    while not (folder / "status").exists():
        time.sleep(0.2)
    try:
        if (folder / "status").read_text().strip() != "0":
            raise RuntimeError("the shared build failed")
        repo = copy_built(folder / "book" / "_build" / "html", edited / "book")
        unchanged = make_book(repo)
        (edited / "unchanged.out").write_text(unchanged.stdout + "\n---- stderr\n" + unchanged.stderr)
        edit_copy(repo)
        result = make_book(repo)
        (edited / "build.out").write_text(result.stdout)
        (edited / "build.err").write_text(result.stderr)
        status = str(result.returncode)
    except BaseException as error:  # noqa: BLE001 (said in the status, for the waiting tests)
        status = f"error: {error!r}"
    (edited / "status.tmp").write_text(status)
    (edited / "status.tmp").replace(edited / "status")


def _start_edited_build(folder: Path) -> None:
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "edited").exists():
            return
        (folder / "edited").mkdir()
        process = subprocess.Popen([sys.executable, __file__, "edited", str(folder)], cwd=ROOT, start_new_session=True)
        (folder / "edited" / "pid").write_text(str(process.pid))


def _shared_folder(config) -> Path:
    folder = os.environ.get(SHARED)
    if not folder:
        folder = tempfile.mkdtemp(prefix="tipline-site-")
        os.environ[SHARED] = folder
        config._tipline_shared = folder  # removed by whoever created it, when pytest ends
    return Path(folder)


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # workers inherit the controller's folder through the environment
    folder = _shared_folder(config)
    # a full run (`make test`, no paths given) starts the build at once, before any worker exists
    if config.args_source == pytest.Config.ArgsSource.TESTPATHS:
        _start_shared_build(folder)
        _start_edited_build(folder)


def pytest_unconfigure(config):
    folder = getattr(config, "_tipline_shared", None)
    if folder:
        folder = Path(folder)
        for build in (folder, folder / "edited"):
            if (build / "pid").exists() and not (build / "status").exists():
                try:  # a run that ended early (-x, Ctrl-C): stop the build rather than leave it orphaned
                    os.killpg(int((build / "pid").read_text()), signal.SIGTERM)
                    time.sleep(1)
                except ProcessLookupError:
                    pass
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def built_site(pytestconfig) -> Path:
    folder = _shared_folder(pytestconfig)
    _start_shared_build(folder)
    deadline = time.time() + 900
    while not (folder / "status").exists():
        assert time.time() < deadline, "the shared book build did not finish in 15 minutes"
        time.sleep(0.2)
    status = (folder / "status").read_text().strip()
    assert status == "0", (folder / "build.log").read_text()[-5000:]
    return folder / "book" / "_build" / "html"


class EditedBook:
    """The session's edited copy (see edit_copy) after its rebuild."""

    def __init__(self, folder: Path):
        self.repo = folder / "book"
        self.site = self.repo / "_build" / "html"
        self.unchanged = (folder / "unchanged.out").read_text()  # `make book` before the edits
        self.stdout = (folder / "build.out").read_text()  # `make book` after them
        self.stderr = (folder / "build.err").read_text()

    def page(self, name: str) -> str:
        return (self.site / "chapters" / f"{name}.html").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def edited_book(pytestconfig, built_site) -> EditedBook:
    folder = _shared_folder(pytestconfig)
    _start_edited_build(folder)
    edited = folder / "edited"
    deadline = time.time() + 900
    while not (edited / "status").exists():
        assert time.time() < deadline, "the edited copy's build did not finish in 15 minutes"
        time.sleep(0.2)
    status = (edited / "status").read_text().strip()
    logs = "".join((edited / name).read_text()[-3000:] for name in ("unchanged.out", "build.out", "build.err")
                   if (edited / name).exists())
    assert status == "0", f"{status}\n{logs}"
    return EditedBook(edited)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def server(built_site):
    handler = functools.partial(_Quiet, directory=str(built_site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="session")
def browser():
    """One Chromium per test process, shared by every browser test it runs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield chromium
        chromium.close()


# The slowest tests (seconds in a full run on a quiet 2-core machine, pytest --durations): each
# group below starts with them, so no long test is left running alone at the end.
SLOW = {
    "test_every_page_loads_offline_draws_its_charts_and_passes_axe": 88,
    "test_every_chart_exports_png_and_svg_with_its_caption_and_source": 43,
    "test_an_interrupt_keeps_the_old_site_and_a_reverted_csv_is_published_everywhere": 39,
    "test_pages_are_light": 32,
    "test_every_page_fits_a_phone_screen": 29,
    "test_the_pdf_holds_every_chapter_and_every_chart_as_vector_graphics": 21,
    "test_a_title_change_rebuilds_pages_without_executing_and_an_interrupted_sphinx_keeps_the_site": 17,
    "test_every_chart_offers_svg_and_png_downloads_and_nothing_else": 12,
    "test_a_broken_chapter_or_dataset_fails_the_build_and_publishes_nothing": 11,
    "test_dark_mode_keeps_charts_and_text_legible": 10,
    "test_the_drawn_data_match_the_tables_in_the_browser": 9,
    "test_nbval_fails_when_a_csv_value_changes": 8,
    "test_a_statement_the_data_no_longer_support_stops_the_page": 7,
    "test_a_guarded_sentence_the_data_no_longer_support_stops_the_build": 6,
}


def pytest_collection_modifyitems(config, items):
    """The order in which pytest-xdist hands out tests (after the notebooks, which xdist puts first
    as the largest groups): tests that do not need the built book run while it builds; then those
    that need it, slowest first; the tests of the edited copy (built after the shared build) last."""
    def key(item):
        fixtures = set(getattr(item, "fixturenames", ()))
        group = 2 if "edited_book" in fixtures else 1 if fixtures & {"built_site", "server"} else 0
        return group, -SLOW.get(getattr(item, "originalname", item.name), 0)

    items.sort(key=key)


def pytest_xdist_make_scheduler(config, log):
    """nbval runs a notebook's cells in order in one kernel, so under pytest-xdist every cell of a
    notebook goes to the same worker; every other test is scheduled on its own. (xdist's
    `--dist loadgroup` cannot do this under pytest 9: it renames items through an attribute
    pytest no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class NotebookScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return path if path.endswith(".ipynb") else nodeid

    return NotebookScheduling(config, log)


if __name__ == "__main__" and sys.argv[1:2] == ["edited"]:
    _build_edited_copy(Path(sys.argv[2]))
