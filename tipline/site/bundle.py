"""The chart bundle: vl-convert's vega, vega-lite and vega-embed in one file, served by the site
itself (tipline.site.sphinx publishes it as _static/tipline-charts.js).

Bundling takes about 2 s and holds the interpreter's lock throughout, so the result is kept in the
book's _build (which outlives Sphinx's tree) under the package's version, with its hash: made when
it is missing, made again (and said so) when it does not match its hash, never published damaged.
A build that executes chapters makes it beforehand, in a process of its own, while the chapters
run (tipline.site.build.prepare_pages: `python -I tipline/site/bundle.py _build`).
"""
from __future__ import annotations

import hashlib
import sys
from importlib.metadata import version
from pathlib import Path


def _files(keep: Path) -> tuple[Path, Path]:
    kept = keep / f".vega-bundle-{version('vl-convert-python')}.js"
    return kept, kept.with_name(kept.name + ".sha256")


def is_kept(keep: Path) -> bool:
    """Whether `keep` holds the bundle of the installed vl-convert, whole."""
    kept, digest = _files(keep)
    return kept.is_file() and digest.is_file() and hashlib.sha256(kept.read_bytes()).hexdigest() == digest.read_text()


def kept(keep: Path) -> Path:
    """The bundle kept in `keep`, made first if it is missing or damaged."""
    import vl_convert

    keep.mkdir(parents=True, exist_ok=True)
    path, digest = _files(keep)
    if path.exists() and not is_kept(keep):
        print(f"{path}: damaged (its hash does not match): removed, bundling again", file=sys.stderr, flush=True)
        path.unlink()
    if not path.exists():  # written whole: an interrupted build never leaves half a bundle to reuse
        code = vl_convert.javascript_bundle()
        part = path.with_name(path.name + ".part")
        part.write_text(code)
        digest.write_text(hashlib.sha256(part.read_bytes()).hexdigest())
        part.replace(path)
    return path


if __name__ == "__main__":
    kept(Path(sys.argv[1]))
