"""The chart bundle: vl-convert's vega, vega-lite and vega-embed in one file, served by the site
itself (tipline.site.sphinx publishes it as _static/tipline-charts.js).

Bundling takes about 2 s and holds the interpreter's lock throughout, so the result is kept in the
book's _build (which outlives Sphinx's tree) under the package's version, with its hash: made when
it is missing, made again (and said so) when it does not match its hash, never published damaged.
A build that executes chapters makes it beforehand, in a process of its own, while the chapters
run (tipline.site.build.prepare_pages: `python -I tipline/site/bundle.py _build`).

`whole` and `keep` are how a build keeps a file it made between builds, with the hash of its
content beside it (the bundle here, the cut icon fonts in tipline.site.reader). This module
imports only the standard library, so it runs as a script of its own.
"""
from __future__ import annotations

import hashlib
import sys
from importlib.metadata import version
from pathlib import Path


def whole(path: Path) -> bytes | None:
    """The content of a file kept with its hash beside it (NAME.sha256); None when either is
    missing or they disagree."""
    digest = path.with_name(path.name + ".sha256")
    if not (path.is_file() and digest.is_file()):
        return None
    data = path.read_bytes()
    return data if hashlib.sha256(data).hexdigest() == digest.read_text() else None


def keep(path: Path, data: bytes) -> None:
    """Keep `data` at `path`, with its hash beside it; written whole (an interrupted build never
    leaves half a file to reuse)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    path.with_name(path.name + ".sha256").write_text(hashlib.sha256(data).hexdigest())
    part.replace(path)


def _path(folder: Path) -> Path:
    return folder / f".vega-bundle-{version('vl-convert-python')}.js"


def is_kept(folder: Path) -> bool:
    """Whether `folder` holds the bundle of the installed vl-convert, whole."""
    return whole(_path(folder)) is not None


def kept(folder: Path) -> Path:
    """The bundle kept in `folder`, made first if it is missing or damaged."""
    import vl_convert

    path = _path(folder)
    if whole(path) is None:
        if path.exists():
            print(f"{path}: damaged (its hash does not match): removed, bundling again", file=sys.stderr, flush=True)
            path.unlink()
        keep(path, vl_convert.javascript_bundle().encode("utf-8"))
    return path


if __name__ == "__main__":
    kept(Path(sys.argv[1]))
