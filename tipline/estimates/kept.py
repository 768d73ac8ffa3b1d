"""Where answer.json is kept between builds, named by the content of what it was computed from.

Light on purpose (no model imports): `make book` asks `kept_path()` on every run, also when nothing
changed; tipline.estimates.answer computes, keeps and loads the file.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
from pathlib import Path

from ..evidence import data

# Where `make book` keeps answer.json between builds (and nbval's kernels find it): one file, named by
# the content of everything it is computed from, beside the list of the datasets it read; in the
# _build folder beside the data it was computed from (a test's edited copy of data/ keeps its own)
KEPT = data.DATA.parent / "_build" / "answer"
READ = KEPT / "datasets.txt"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def kept_path() -> Path:
    """Where answer.json for the current inputs is kept: the name is made from the content of the
    datasets it read when it was last computed (every dataset if that is unknown), the schema, the
    pinned libraries, the Python version and the code of the only layers it can import
    (tipline.evidence and tipline.estimates: tests/test_layers.py holds it to them). A change in the
    code that makes it read another dataset changes the name too, so the list is never out of date."""
    resources = {resource["name"]: data.DATA / resource["path"] for resource in data.package()["resources"]}
    listed = set(READ.read_text().split()) & set(resources) if READ.is_file() else set(resources)
    package = data.ROOT / "tipline"
    files = [resources[name] for name in sorted(listed)] + [data.DATA / "datapackage.json", data.ROOT / "requirements.txt",
                                                            package / "__init__.py"]
    files += sorted((package / "evidence").glob("*.py")) + sorted((package / "estimates").glob("*.py"))
    key = hashlib.sha256(f"{sys.version_info[:2]}".encode())
    for path in files:
        key.update(f"{path.name} {_digest(path)}\n".encode())
    return KEPT / f"answer-{key.hexdigest()[:20]}.json"


def write_whole(path: Path, text: str) -> None:
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_text(text, encoding="utf-8")
    part.replace(path)


@contextlib.contextmanager
def computing():
    """Held while one process computes answer.json: another process that needs it (nbval's kernels
    and `make book` at once, say) waits and then reads the kept file instead of computing it too.
    Without a writable _build (a read-only checkout) each process computes on its own."""
    try:
        KEPT.mkdir(parents=True, exist_ok=True)
        guard = (KEPT / ".computing.lock").open("w")
    except OSError:
        yield
        return
    with guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        yield


def store(text: str, names: set[str]) -> Path:
    """Keep answer.json's `text` and the list of the datasets `names` it was computed from."""
    KEPT.mkdir(parents=True, exist_ok=True)
    write_whole(READ, "".join(f"{name}\n" for name in sorted(names)))
    target = kept_path()  # named from the list just written
    write_whole(target, text)
    for old in KEPT.glob("answer-*.json"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


def kept_text(target: Path) -> str | None:
    """The kept file's text, or None when there is none; a damaged one (cut short, overwritten) is
    removed with a message naming it, and computed again."""
    if not target.is_file():
        return None
    text = target.read_text(encoding="utf-8", errors="replace")
    try:
        json.loads(text)
    except ValueError:
        print(f"{target.relative_to(data.DATA.parent)} was damaged (not valid JSON): removed, computing answer.json again",
              file=sys.stderr, flush=True)
        target.unlink(missing_ok=True)
        return None
    return text
