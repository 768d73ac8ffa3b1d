"""Shared fixtures and the order of the session (tests/helpers.py holds what they are made of).

Two tiers: `make check` runs `pytest -m "not full" tests` (data, model, prose guards, stamps,
layers: well under a second each, no book build, no notebook execution, no browser); `make test`
runs everything, in one test process more than there are cores (the Makefile's TEST_WORKERS). A
test that builds the book, executes a notebook, runs Sphinx or starts Chromium is marked `full`
(pytest.ini), and so is every nbval item.

The session builds each book once (helpers: "site", "edited", "mini"), in the background, started as
soon as a full run is configured, so the chapters' nbval tests and the fast tests run meanwhile;
every xdist worker finds them in the session's folder (pytest's base temporary folder, which
xdist shares out to its workers as subfolders).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import helpers
from helpers import CHROMIUM


def _books(config) -> Path:
    """The session's folder of built books, the same for the controller and every worker."""
    base = config._tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "books"
    folder.mkdir(exist_ok=True)
    return folder


def _full_run(config) -> bool:
    return (config.args_source == pytest.Config.ArgsSource.TESTPATHS
            and "not full" not in (config.option.markexpr or "") and not config.option.collectonly)


@pytest.hookimpl(trylast=True)  # after pytest's own tmp_path set-up
def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER") or not _full_run(config):
        return
    folder = _books(config)
    config._tipline_books = folder  # removed when pytest ends
    for name in ("site", "edited", "mini"):
        helpers.start(folder, name)


def pytest_unconfigure(config):
    folder = getattr(config, "_tipline_books", None)
    if folder:
        import psutil

        for process in psutil.process_iter():  # a run that ended early (-x, Ctrl-C): stop its builds
            try:
                if any(str(folder) in part for part in process.cmdline()):
                    process.kill()
            except psutil.Error:
                pass
        shutil.rmtree(folder, ignore_errors=True)


def _finished(config, name: str) -> helpers.Built:
    built = helpers.finished(_books(config), name)
    logs = "".join(built.log(f)[-3000:] for f in ("build.out", "build.err"))
    assert built.status == "0", f"the {name} book's build failed ({built.status}):\n{logs}"
    return built


@pytest.fixture(scope="session")
def built_site(pytestconfig) -> Path:
    """The repository's book as published (with book.pdf)."""
    return _finished(pytestconfig, "site").site


@pytest.fixture(scope="session")
def edited_book(pytestconfig) -> helpers.Built:
    """The session's edited copy (helpers.edit_copy) after its build (`.log("build.out")`)."""
    return _finished(pytestconfig, "edited")


@pytest.fixture(scope="session")
def mini_book(pytestconfig) -> Path:
    """The folder of the built mini book (helpers.make_mini): copy it before changing anything."""
    return _finished(pytestconfig, "mini").repo


@pytest.fixture
def edited_data(tmp_path) -> helpers.EditedData:
    """A copy of data/ to edit one cell or line of (`.set_cell`, `.replace`; `.path` is the folder)."""
    return helpers.EditedData(tmp_path / "data")


@pytest.fixture(scope="session")
def server(built_site):
    with helpers.serving(built_site, helpers.Quiet) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """One Chromium per test process, shared by every browser test it runs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=helpers.BROWSER_ARGS)
        yield chromium
        chromium.close()


# Fixtures that mean a test builds, executes or opens a browser: a test using one is marked `full`.
FULL_FIXTURES = {"built_site", "edited_book", "mini_book", "server", "browser"}
# The slowest tests (seconds in a full `make test` on a 2-core machine, pytest --durations): each
# group below starts with them, so no long test is left running alone at the end.
SLOW = {
    "test_every_page_at_a_desktop_width_draws_passes_axe_fits_exports_its_charts_and_is_light": 90,
    "test_an_interrupt_keeps_the_old_site_and_a_reverted_csv_is_published_everywhere": 40,
    "test_every_page_and_every_chart_fit_a_phone_screen_and_each_page_is_light": 35,
    "test_the_pdf_and_url_prefix_settings_make_the_site_stale": 21,
    "test_damaged_kept_files_are_discarded_by_name_and_made_again": 18,
    "test_the_pdf_prints_every_chart_whole_and_no_control": 16,
    "test_a_damaged_saved_page_is_discarded_and_every_page_built_afresh": 15,
    "test_nbval_fails_when_a_csv_value_changes": 14,
    "test_a_second_build_stops_at_once_and_the_first_publishes": 13,
    "test_an_edited_stylesheet_and_template_reach_every_page": 13,
}


def pytest_collection_modifyitems(config, items):
    """nbval items (which execute notebooks) and tests that ask for a built book or a browser are
    `full`, so `make check` never starts one (a test that builds or executes by itself carries the
    mark in its file). Then the order in which xdist hands out tests: those that need no built book
    first (while the books build), then those of the shared book, slowest first, then those of the
    mini book, and the edited copy's last."""
    for item in items:
        if item.nodeid.split("::")[0].endswith(".ipynb") or FULL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.full)

    def key(item):
        fixtures = set(getattr(item, "fixturenames", ()))
        group = 3 if "edited_book" in fixtures else 2 if "mini_book" in fixtures else 1 if fixtures & {"built_site", "server"} else 0
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
