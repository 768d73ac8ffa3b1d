"""`make book`: validate, execute only what an edit can change (on every core), publish whole.

    python -m tipline.site.build              # what `make book` runs
    python -m tipline.site.build --notebooks  # `make notebooks`: execute every chapter in place, in parallel

1. Every dataset is validated (a broken CSV stops the build) and references.bib is regenerated
   from data/sources.csv, so the bibliography page follows the sources table.
2. Each chapter's record (_build/.records/NAME.json, written after it last executed) holds the
   content hashes of everything its outputs can depend on:
   * its code cells (prose cells never change an output);
   * every dataset it read, as listed by tipline.evidence.data.track while it executed (TIPLINE_DEPS):
     hashes of the data it actually read, so a CSV reverted after an interrupted build can never
     bring back an output computed from the other version;
   * every module of the book it imported (tipline/*.py ...), listed from the kernel's
     sys.modules after its last cell: a change in tipline/presentation/charts.py re-executes only the chapters
     that imported charts. This is exact for imports; a module that read some other file at
     execution time would not be seen, which is why the next item exists;
   * the repository files its code names (scripts/benchmark.json, CITATION.cff);
   * settings shared by every chapter: data/datapackage.json, requirements.txt, the `execute`
     section of _config.yml and the Python version.
   A chapter whose record does not match, or whose outputs are missing from jupyter-cache, is
   stale. Everything else (title, theme, CSS, _toc.yml, prose) rebuilds pages without executing;
   a change in the package's code also starts Sphinx from a fresh environment, since Sphinx does
   not notice that its extensions (tipline.site.sphinx) changed.
3. Stale chapters execute in a pool of TIPLINE_WORKERS kernels (default: one per core), longest
   first, one progress line each; their outputs go into jupyter-cache, then their record.
   Meanwhile Sphinx starts and waits (tipline.site.build is also a Sphinx extension) until every
   output is cached, then builds the site from the cache into _build/.work without executing.
   answer.json (tipline/estimates/answer.py) is computed in its own process at the same time, kept under a
   name made from the datasets it read, the package's code and the pins, and copied into the
   site at the end, so an edit that cannot change it does not recompute it.
4. Only when everything succeeded is the new site copied beside _build/html and swapped in by
   two renames with SIGINT/SIGTERM blocked. A failed build (bad data, a failing chapter, a
   Sphinx warning) removes _build/html, so nothing stale stays published; an interrupted build
   (SIGINT, SIGTERM) leaves the previous site exactly as it was.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

BOOK = Path.cwd()  # the Makefile runs this from the book's folder
BUILD = BOOK / "_build"
SITE = BUILD / "html"
WORK = BUILD / ".work"  # Sphinx's own tree (doctrees, html), reused between builds
DIRTY = WORK / "BUILDING"  # present while Sphinx writes: an interrupted tree is not reused
RECORDS = BUILD / ".records"
DEPS = BUILD / ".deps"
STATE = BUILD / ".inputs.json"
CHAPTERS = BOOK / "chapters"
# files a chapter's code may read by name, beside data/ (which tipline.evidence.data tracks)
NAMED_FILES = {"benchmark.json": "scripts/benchmark.json", "CITATION.cff": "CITATION.cff"}
# every file the site is made from: when none changed and no chapter is stale, nothing is built
SITE_INPUTS = ["chapters", "_static", "data", "tipline", "_config.yml", "_toc.yml", "references.bib",
               "CITATION.cff", "CHANGELOG.md", "requirements.txt", "pyproject.toml", "scripts/benchmark.json"]
PROBE = ("import sys as _s, json as _j\n"
         "print(_j.dumps(sorted({getattr(m, '__file__', None) or '' for m in list(_s.modules.values())})))")


class Failed(Exception):
    """The build cannot publish: bad data, a failing chapter or a Sphinx warning."""


class Interrupted(Exception):
    pass


STORE = threading.Lock()  # held while a chapter's outputs and record are written


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file(path: Path) -> str:
    return _hash(path.read_bytes()) if path.is_file() else "missing"


def _say(text: str, stream=sys.stdout) -> None:
    print(text, file=stream, flush=True)


# ---------------------------------------------------------------- what each chapter depends on

def _config() -> dict:
    import yaml

    return yaml.safe_load((BOOK / "_config.yml").read_text()) or {}


def settings() -> str:
    """Inputs of every chapter's outputs that are not recorded per chapter."""
    from ..evidence.data import DATA

    execute = json.dumps(_config().get("execute", {}), sort_keys=True)
    parts = [execute, sys.version, _file(BOOK / "requirements.txt"), _file(DATA / "datapackage.json")]
    return _hash("\n".join(parts).encode())


def code_hash(notebook) -> str:
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    kernel = notebook.metadata.get("kernelspec", {}).get("name", "")
    return _hash(json.dumps([kernel, code]).encode())


def _dataset_files() -> dict[str, Path]:
    from ..evidence.data import DATA, package

    return {resource["name"]: DATA / resource["path"] for resource in package()["resources"]}


def stale_reason(chapter: Path, notebook, record: dict | None, datasets: dict[str, Path], shared: str,
                 cached: bool) -> str | None:
    """Why `chapter` must execute again, or None when its cached outputs are current."""
    if record is None:
        return "never executed"
    if record.get("code") != code_hash(notebook):
        return "code changed"
    if record.get("settings") != shared:
        return "settings changed"
    changed = [name for name, digest in record.get("datasets", {}).items()
               if name not in datasets or _file(datasets[name]) != digest]
    if changed:
        return "data changed: " + ", ".join(sorted(changed))
    changed = [name for name, digest in {**record.get("modules", {}), **record.get("files", {})}.items()
               if _file(BOOK / name) != digest]
    if changed:
        return "changed: " + ", ".join(sorted(changed))
    if not cached:
        return "outputs not in the cache"
    return None


def _cache():
    from jupyter_cache import get_cache

    path = _config().get("execute", {}).get("cache") or "_build/.jupyter_cache"
    return get_cache(str(BOOK / path))




# ---------------------------------------------------------------- executing chapters

def _kernel_manager(folder: str):
    """Kernels talk over Unix sockets in a private folder: no TCP ports, no plain-text warning."""
    from jupyter_client.manager import KernelManager
    from traitlets import CaselessStrEnum, default

    class LocalKernel(KernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _ip_default(self):
            return os.path.join(folder, uuid.uuid4().hex[:12])

    return LocalKernel


def execute(chapter: Path, kernel_manager, timeout: int) -> tuple[object, dict, float]:
    """Run one chapter in a fresh kernel; return the executed notebook, what it used, the time."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    from nbclient import NotebookClient

    notebook = nbformat.read(chapter, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    start = time.perf_counter()
    try:
        # "immediate": the outputs are in; a graceful shutdown would idle half a second per chapter
        NotebookClient(notebook, timeout=timeout, allow_errors=False, record_timing=False, shutdown_kernel="immediate",
                       kernel_manager_class=kernel_manager, resources={"metadata": {"path": str(chapter.parent)}}
                       ).execute()
    except (CellExecutionError, CellTimeoutError) as error:
        raise Failed(f"chapter {chapter.stem} failed after {time.perf_counter() - start:.1f} s:\n{error}") from None
    seconds = time.perf_counter() - start
    probe = notebook.cells.pop()
    loaded = json.loads("".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout"))
    modules = {}
    for name in loaded:
        path = Path(name)
        if path.is_file() and path.is_relative_to(BOOK) and ".venv" not in path.relative_to(BOOK).parts:
            modules[path.relative_to(BOOK).as_posix()] = _file(path)
    return notebook, modules, seconds


def _record_path(chapter: Path) -> Path:
    return RECORDS / f"{chapter.stem}.json"


def store(cache, chapter: Path, executed, modules: dict, seconds: float, datasets: dict[str, Path],
          shared: str, before: dict[str, str]) -> None:
    """Outputs into jupyter-cache, then the record: an interrupt between the two leaves no record,
    so the chapter simply executes again."""
    from jupyter_cache.base import CacheBundleIn

    _record_path(chapter).unlink(missing_ok=True)
    cached = cache.cache_notebook_bundle(CacheBundleIn(executed, str(chapter), data={"execution_seconds": seconds}),
                                         check_validity=False, overwrite=True)
    deps = DEPS / f"{chapter.stem}.txt"
    # a chapter that never called chapter("NAME") recorded nothing: count it as reading everything
    read = deps.read_text().split() if deps.exists() else list(before)
    code = "\n".join(cell.source for cell in executed.cells if cell.cell_type == "code")
    record = {
        "code": code_hash(executed),
        "settings": shared,
        # the hashes taken before execution started: a CSV edited meanwhile makes the record stale
        "datasets": {name: before[name] for name in sorted(set(read)) if name in before},
        "modules": modules,
        "files": {path: _file(BOOK / path) for name, path in NAMED_FILES.items() if name in code},
        "seconds": round(seconds, 2),
        # checked by its existence, so a build with nothing to execute never opens the cache database
        "outputs": os.path.relpath(cache._get_notebook_path_cache(cached.hashkey), BOOK),
    }
    RECORDS.mkdir(parents=True, exist_ok=True)
    temporary = _record_path(chapter).with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=1, sort_keys=True))
    temporary.replace(_record_path(chapter))


# ---------------------------------------------------------------- Sphinx, publishing

def sphinx_waits(app, env, docnames) -> None:
    """Sphinx extension hook: hold reading until the build's executions are all cached."""
    go = os.environ.get("TIPLINE_WAIT")
    while go and not Path(go).exists():
        time.sleep(0.05)
    # from here on Sphinx changes its tree: an interrupt until the build succeeds leaves it untrusted
    # (one while Sphinx still waited, e.g. during the executions, leaves it as good as before)
    dirty = os.environ.get("TIPLINE_DIRTY")
    if dirty:
        Path(dirty).touch()


def setup(app):
    app.connect("env-before-read-docs", sphinx_waits)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def _jupyter_book() -> str:
    return str(Path(sys.executable).parent / "jupyter-book")


def start_sphinx(go: Path, log: Path) -> subprocess.Popen:
    if DIRTY.exists():  # the last Sphinx run was interrupted: its tree is not trusted
        shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TIPLINE_WAIT=str(go), TIPLINE_DIRTY=str(DIRTY), PYTHONUNBUFFERED="1")
    command = [_jupyter_book(), "build", "-n", "-W", "--keep-going", "--path-output", str(WORK), "."]
    with log.open("w") as handle:
        return subprocess.Popen(command, cwd=BOOK, env=env, stdout=handle, stderr=subprocess.STDOUT)


BUNDLE_SCRIPT = ("import os, sys, vl_convert\n"
                 "temporary = sys.argv[1] + '.part'\n"
                 "open(temporary, 'w').write(vl_convert.javascript_bundle())\n"
                 "os.replace(temporary, sys.argv[1])\n")


def prepare_chart_bundle() -> None:
    """Bundle vega for tipline.site.sphinx while the chapters execute, into the file where it keeps the
    bundle between builds: otherwise a cold build makes it at the very end, on one core. If the
    file is not complete in time, tipline.site.sphinx simply makes it itself."""
    from importlib.metadata import version

    bundle = WORK / "_build" / f".vega-bundle-{version('vl-convert-python')}.js"
    if not bundle.exists():
        bundle.parent.mkdir(parents=True, exist_ok=True)
        subprocess.Popen([sys.executable, "-c", BUNDLE_SCRIPT, str(bundle)], cwd=BOOK)


ANSWER_SCRIPT = "import sys\nfrom tipline.site.build import keep_answer\nkeep_answer(sys.argv[1])\n"


def keep_answer(target) -> None:
    """Compute answer.json into `target` whole (written beside it, then renamed), recording the
    datasets it read (tipline.evidence.data.track) for the next build's `answer_file()`."""
    from ..estimates.answer import write
    from ..evidence.data import track

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    track("answer")
    write(target.with_name(target.name + ".part")).replace(target)


def answer_file() -> Path:
    """Where the book's answer.json (tipline/estimates/answer.py) is kept between builds, named by the content
    of everything it is computed from: the datasets it read last time (all of them if unknown), the
    schema, the package's code and the pinned libraries. A change in the code that makes it read
    other datasets changes the name too, so the list is never out of date when it is used."""
    from ..evidence.data import DATA

    datasets = _dataset_files()
    read = DEPS / "answer.txt"
    names = sorted(set(read.read_text().split()) & set(datasets)) if read.exists() else sorted(datasets)
    files = [datasets[name] for name in names] + [Path(DATA) / "datapackage.json"]
    files += sorted((BOOK / "tipline").rglob("*.py")) + [BOOK / "requirements.txt"]
    key = _hash("".join(path.name + _file(path) for path in files).encode())[:20]
    return WORK / "_build" / f".answer-{key}.json"


def prepare_answer() -> subprocess.Popen | None:
    """Compute answer.json while the chapters execute (it takes seconds: the model's draws and the
    funnel fit), instead of at the end of the Sphinx build on one core; None if it is kept already."""
    target = Path(os.environ.get("TIPLINE_ANSWER") or answer_file())
    if target.exists():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in target.parent.glob(".answer-*.json*"):
        old.unlink()
    with (BUILD / "answer.log").open("w") as log:
        process = subprocess.Popen([sys.executable, "-c", ANSWER_SCRIPT, str(target)], cwd=BOOK, stdout=log, stderr=subprocess.STDOUT)
    target.with_name(target.name + ".pid").write_text(str(process.pid))
    return process


def answer_ready() -> Path:
    """answer.json for this build's inputs, for tipline.site.sphinx at the end of the build: waits for the
    copy `make book` is computing, or computes it (a plain `jupyter-book build`, or that copy failed:
    then the same error stops Sphinx)."""
    target = Path(os.environ.get("TIPLINE_ANSWER") or answer_file())
    running = target.with_name(target.name + ".pid")
    while not target.exists() and running.exists():
        try:
            os.kill(int(running.read_text()), 0)
        except (ProcessLookupError, ValueError):
            break
        time.sleep(0.05)
    if not target.exists():
        keep_answer(target)
    running.unlink(missing_ok=True)
    return target


def publish() -> None:
    """Replace _build/html by the new site in two renames that no SIGINT/SIGTERM can split."""
    new, old = BUILD / ".html-new", BUILD / ".html-old"
    shutil.rmtree(new, ignore_errors=True)
    shutil.copytree(WORK / "_build" / "html", new)
    signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        if SITE.exists():
            SITE.rename(old)
        new.rename(SITE)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    shutil.rmtree(old, ignore_errors=True)


def recover() -> None:
    """After a build killed without warning (SIGKILL, power) between the two renames."""
    old = BUILD / ".html-old"
    if old.exists() and not SITE.exists():
        old.rename(SITE)
    for leftover in (old, BUILD / ".html-new"):
        shutil.rmtree(leftover, ignore_errors=True)


def site_inputs() -> str:
    digest = hashlib.sha256()
    for name in SITE_INPUTS:
        path = BOOK / name
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(BOOK).as_posix().encode() + _file(file).encode())
    return digest.hexdigest()


def extensions() -> str:
    """The code Sphinx runs but does not watch: the book's extensions and the pinned packages."""
    files = sorted((BOOK / "tipline").rglob("*.py")) + [BOOK / "requirements.txt"]
    return _hash("".join(_file(path) for path in files).encode())


def write_bibliography() -> None:
    """references.bib from data/sources.csv (python -m tipline.site.bib), when either has changed."""
    from . import bib
    from ..evidence.data import DATA

    target, seen = BOOK / "references.bib", BUILD / ".bib-inputs"
    inputs = _hash("".join(_file(p) for p in (DATA / "sources.csv", Path(bib.__file__), target)).encode())
    if seen.exists() and seen.read_text() == inputs:
        return
    text = bib.render()
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
        _say("references.bib regenerated from data/sources.csv")
        inputs = _hash("".join(_file(p) for p in (DATA / "sources.csv", Path(bib.__file__), target)).encode())
    seen.write_text(inputs)


# ---------------------------------------------------------------- the build

def build() -> int:
    import nbformat

    from ..evidence import validate
    from ..evidence.data import DataError

    started = time.perf_counter()
    BUILD.mkdir(exist_ok=True)
    recover()
    try:
        validate()
    except DataError as error:
        raise Failed(f"invalid data: {error}") from None
    write_bibliography()

    datasets = _dataset_files()
    before = {name: _file(path) for name, path in datasets.items()}
    shared = settings()
    chapters = sorted(CHAPTERS.glob("*.ipynb"))
    stale, seconds = {}, {}
    for chapter in chapters:
        notebook = nbformat.read(chapter, as_version=4)
        path = _record_path(chapter)
        record = json.loads(path.read_text()) if path.exists() else None
        cached = bool(record and record.get("outputs") and (BOOK / record["outputs"]).is_file())
        reason = stale_reason(chapter, notebook, record, datasets, shared, cached)
        if reason:
            stale[chapter] = reason
            # without a timing yet, the largest notebooks are taken to be the slowest
            seconds[chapter] = (record or {}).get("seconds", chapter.stat().st_size / 1e6)
    inputs = {"site": site_inputs(), "extensions": extensions()}
    try:
        old = json.loads(STATE.read_text()) if STATE.exists() else {}
    except ValueError:
        old = {}
    if not stale and SITE.joinpath("index.html").exists() and old == inputs:
        _say("nothing changed since the last build: _build/html is up to date")
        return 0
    if old.get("extensions") != inputs["extensions"]:
        shutil.rmtree(WORK, ignore_errors=True)  # Sphinx does not notice its extensions' code change
    _say(f"{len(chapters)} chapters: {len(stale)} to execute, {len(chapters) - len(stale)} from the cache")
    for reason in sorted(set(stale.values())):
        _say(f"  {reason}: " + ", ".join(c.stem for c, why in stale.items() if why == reason))
    for chapter in stale:
        os.utime(chapter)  # Sphinx reads a chapter again only when its file is newer
    STATE.unlink(missing_ok=True)

    runtime = Path(tempfile.mkdtemp(prefix="tipline-"))
    go = runtime / "go"
    log = BUILD / "sphinx.log"
    # the book's own package, not whichever copy is installed, in the kernels and in Sphinx
    os.environ["PYTHONPATH"] = os.pathsep.join([str(BOOK)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    os.environ["TIPLINE_DEPS"] = str(DEPS)
    # named before the computation starts, which rewrites the list of datasets it read
    os.environ["TIPLINE_ANSWER"] = str(answer_file())
    answer = prepare_answer()
    sphinx = start_sphinx(go, log)
    prepare_chart_bundle()
    try:
        workers = worker_count()
        timeout = int(_config().get("execute", {}).get("timeout", 180))
        order = sorted(stale, key=lambda c: -seconds[c])  # longest first: no long chapter runs alone at the end
        kernel = _kernel_manager(str(runtime))
        cache = _cache() if order else None
        done, total = 0, 0.0
        executing = time.perf_counter()

        def run(chapter: Path) -> None:
            nonlocal done, total
            (DEPS / f"{chapter.stem}.txt").unlink(missing_ok=True)
            executed, modules, took = execute(chapter, kernel, timeout)
            with STORE:
                store(cache, chapter, executed, modules, took, datasets, shared, before)
                done += 1
                total += took
                _say(f"executing {done}/{len(order)} {chapter.stem} ... {took:.1f} s")

        if order:
            in_parallel(run, order, workers)
            _say(f"executed {len(order)} chapters in {time.perf_counter() - executing:.1f} s on {workers} workers "
                 f"(the chapters' own times add up to {total:.1f} s)")
        go.touch()
        pages = time.perf_counter()
        while sphinx.poll() is None:
            if answer is not None:
                answer.poll()  # reaps it when done, so that Sphinx sees it has ended (answer_ready)
            time.sleep(0.05)
        if answer is not None and answer.wait() != 0:
            raise Failed("computing answer.json failed (log in _build/answer.log):\n"
                         + (BUILD / "answer.log").read_text()[-3000:])
        if sphinx.returncode != 0:
            lines = log.read_text().splitlines(True)
            problems = [line for line in lines if "WARNING" in line or "ERROR" in line]
            raise Failed("Sphinx failed (warnings are errors; full log in _build/sphinx.log):\n"
                         + "".join(problems[:40]) + "".join(lines[-15:]))
        _say(f"built the pages in {time.perf_counter() - pages:.1f} s")
        DIRTY.unlink(missing_ok=True)
        publish()
    finally:
        if answer is not None and answer.poll() is None:
            answer.kill()
            answer.wait()
        if sphinx.poll() is None:
            sphinx.kill()
            sphinx.wait()
        shutil.rmtree(runtime, ignore_errors=True)
    STATE.write_text(json.dumps(inputs))
    _say(f"published _build/html in {time.perf_counter() - started:.1f} s")
    return 0


def worker_count() -> int:
    """Chapters executed at once: one per core unless TIPLINE_WORKERS says otherwise."""
    return max(1, int(os.environ.get("TIPLINE_WORKERS") or os.cpu_count() or 1))


def in_parallel(run, chapters: list[Path], workers: int) -> None:
    """`run(chapter)` for every chapter on `workers` threads; the first failure is raised at once,
    without waiting for the chapters still running (nor on an interrupt)."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(run, chapter) for chapter in chapters]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and future.exception():
                raise future.exception()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def notebooks(chapters: list[Path]) -> int:
    """Execute chapters in place on every core (for committing their outputs: nbval compares them)."""
    import nbformat

    runtime = tempfile.mkdtemp(prefix="tipline-")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(BOOK)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    kernel = _kernel_manager(runtime)
    timeout = int(_config().get("execute", {}).get("timeout", 180))
    lock, done = threading.Lock(), 0

    def run(chapter: Path) -> None:
        nonlocal done
        executed, _, took = execute(chapter, kernel, timeout)
        nbformat.write(executed, chapter)
        with lock:
            done += 1
            _say(f"executing {done}/{len(chapters)} {chapter.stem} ... {took:.1f} s")

    try:
        in_parallel(run, chapters, worker_count())
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    return 0


def _interrupt(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def _stop_children() -> None:
    """Kernels run in their own sessions, so a terminal's Ctrl-C does not reach them."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass


def main() -> int:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if "--notebooks" in sys.argv:
            chosen = [Path(arg).resolve() for arg in sys.argv[1:] if arg.endswith(".ipynb")]
            return notebooks(chosen or sorted(CHAPTERS.glob("*.ipynb")))
        try:
            return build()
        except (Interrupted, Failed):
            raise
        except Exception:  # anything unexpected fails the build the same way, with its traceback
            import traceback

            raise Failed(traceback.format_exc()) from None
    except Interrupted as stop:
        STORE.acquire(timeout=30)  # let a chapter being stored finish: cache and record stay consistent
        _stop_children()
        if "--notebooks" in sys.argv:
            _say(f"interrupted ({stop})", sys.stderr)
            os._exit(130)
        shutil.rmtree(WORK, ignore_errors=True)
        _say(f"interrupted ({stop}): nothing was published, the previous site in _build/html is unchanged", sys.stderr)
        status = 130
    except Failed as error:
        STORE.acquire(timeout=30)
        _stop_children()
        _say(str(error), sys.stderr)
        if "--notebooks" in sys.argv:
            os._exit(1)
        shutil.rmtree(SITE, ignore_errors=True)
        shutil.rmtree(WORK, ignore_errors=True)
        STATE.unlink(missing_ok=True)
        _say("BUILD FAILED: nothing was published", sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # do not wait for worker threads whose kernels were just stopped


if __name__ == "__main__":
    sys.exit(main())
