"""Shared fixtures: a copy of the repository built once per test session with `make book`,
shared by every pytest-xdist worker, and one browser per worker.

`make test` runs pytest with `-n auto`. The controller process starts the one book build in the
background as soon as pytest is configured, so the chapters' nbval tests and the data tests run
while it builds; every worker's `built_site` waits for that build (a file lock decides who starts
it when pytest runs without the controller, e.g. `pytest tests/test_build.py`).
"""
from __future__ import annotations

import fcntl
import functools
import http.server
import os
import shutil
import signal
import subprocess
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
BROWSER_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


def pytest_unconfigure(config):
    folder = getattr(config, "_tipline_shared", None)
    if folder:
        folder = Path(folder)
        if (folder / "pid").exists() and not (folder / "status").exists():
            try:  # a run that ended early (-x, Ctrl-C): stop the build rather than leave it orphaned
                os.killpg(int((folder / "pid").read_text()), signal.SIGTERM)
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
