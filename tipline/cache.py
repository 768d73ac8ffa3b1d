"""Keep `make book` honest and quick: re-execute exactly the chapters whose inputs changed.

jupyter-cache keys a chapter's outputs on its code alone, and Sphinx does not watch data/, so a
changed CSV would otherwise publish old numbers. Before each build this module:

1. validates every dataset (a broken CSV stops the build, whichever chapters use it);
   if nothing at all changed since the last successful build, it says so and Sphinx is skipped;
2. compares the hashes of data/, the tipline package and the build configuration with the ones
   recorded after the last successful build;
3. if the package or configuration changed, drops the whole cache (every chapter re-executes);
   otherwise drops the cached outputs of each chapter that read a changed dataset, as recorded
   by `tipline.chapter()` while it executed, and marks its notebook as changed for Sphinx.

After a successful build, `python -m tipline.cache --record` stores the hashes.

    python -m tipline.cache            # before the build
    python -m tipline.cache --record   # after a successful build
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from .data import DATA, DataError, load_all, package

# paths of the book being built: the Makefile runs this from the book's folder
BOOK = Path.cwd()
BUILD = BOOK / "_build"
STATE = BUILD / ".inputs.json"
DEPS = BUILD / ".deps"
CACHE = BUILD / ".jupyter_cache"
CHAPTERS = BOOK / "chapters"
# everything that can change any chapter's output without changing its code
CODE = sorted((BOOK / "tipline").glob("*.py")) + [BOOK / name for name in (
    "_config.yml", "_toc.yml", "requirements.txt", "CITATION.cff", "scripts/benchmark.json")]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pages() -> str:
    """Everything else Sphinx reads: chapters (code and prose), styles, the bibliography."""
    paths = sorted(CHAPTERS.glob("*")) + sorted((BOOK / "_static").glob("*")) + [BOOK / "references.bib"]
    return hashlib.sha256(b"".join(p.name.encode() + _digest(p).encode() for p in paths if p.is_file())).hexdigest()


def fingerprint() -> dict:
    files = {resource["name"]: _digest(DATA / resource["path"]) for resource in package()["resources"]}
    code = hashlib.sha256(b"".join(_digest(p).encode() for p in CODE if p.exists())).hexdigest()
    return {"code": code, "schema": _digest(DATA / "datapackage.json"), "datasets": files, "pages": _pages()}


UP_TO_DATE = 10  # exit status: nothing changed since the last successful build


def _drop_everything() -> None:
    for name in (".jupyter_cache", "html", "jupyter_execute", ".doctrees", ".deps"):
        shutil.rmtree(BUILD / name, ignore_errors=True)


def _drop_chapter(chapter: Path) -> None:
    """Forget one chapter's cached outputs and make Sphinx read it again."""
    if CACHE.exists():
        import nbformat
        from jupyter_cache import get_cache

        cache = get_cache(str(CACHE))
        try:
            record = cache.match_cache_notebook(nbformat.read(chapter, as_version=4))
            cache.remove_cache(record.pk)
        except KeyError:
            pass
    os.utime(chapter)


def stale_chapters(old: dict, new: dict) -> list[Path] | None:
    """The chapters to re-execute, or None when everything must be rebuilt."""
    if not old or old.get("code") != new["code"] or old.get("schema") != new["schema"]:
        return None
    changed = {name for name, digest in new["datasets"].items() if old["datasets"].get(name) != digest}
    stale = []
    for chapter in sorted(CHAPTERS.glob("*.ipynb")):
        record = DEPS / f"{chapter.stem}.txt"
        used = set(record.read_text().split()) if record.exists() else None
        if used is None or used & changed:
            stale.append(chapter)
    return stale


def prepare() -> str | None:
    """Validate, then drop what is stale; None when the published site is already current."""
    load_all()  # raises DataError naming file, line and column
    new = fingerprint()
    old = json.loads(STATE.read_text()) if STATE.exists() else {}
    if old == new and (BUILD / "html" / "index.html").exists():
        return None
    stale = stale_chapters(old, new)
    if stale is None:
        _drop_everything()
        return "inputs changed: re-executing every chapter" if old else "first build: executing every chapter"
    for chapter in stale:
        _drop_chapter(chapter)
    if not stale:
        return "data unchanged: cached chapters reused"
    return "data changed: re-executing " + ", ".join(c.stem for c in stale)


def record() -> None:
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(fingerprint(), indent=1, sort_keys=True))


if __name__ == "__main__":
    try:
        if "--record" in sys.argv:
            record()
        else:
            status = prepare()
            if status is None:
                print("nothing changed since the last build: _build/html is up to date")
                sys.exit(UP_TO_DATE)
            print(status)
    except DataError as error:
        print(f"invalid data: {error}", file=sys.stderr)
        sys.exit(1)
