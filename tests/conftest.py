"""Shared fixtures: a copy of the repository built once per session with `make book`."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
IGNORE = shutil.ignore_patterns(".venv", "_build", ".git", "__pycache__", "*.egg-info", ".pytest_cache")


def copy_repo(target: Path) -> Path:
    """A working copy of the repository (sources only) for tests that edit or build it."""
    shutil.copytree(ROOT, target, ignore=IGNORE)
    return target


def copy_built(built_site: Path, target: Path) -> Path:
    """A copy of the session's built book, its site and execution cache included, so a test
    can start from a published book and rebuild only what its change touches."""
    shutil.copytree(built_site.parents[1], target, ignore=shutil.ignore_patterns("screenshots", "__pycache__"))
    return target


def make_book(repo: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TIPLINE_DATA=str(repo / "data"))
    # -o: never (re)install into the shared virtual environment from a temporary copy
    return subprocess.run(["make", "-o", f"{VENV}/bin/jupyter-book", "book", f"VENV={VENV}"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("site") / "book")
    result = make_book(repo)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return repo / "_build" / "html"
