"""`make book`: validate, execute in place only the chapters whose inputs changed, build, publish whole.

    python -m tipline.site.build     # what `make book` runs, from the book's folder

The committed notebooks are the one place for the chapters' outputs: what the site shows and what
nbval compares. Each chapter carries a stamp in its metadata (`tipline`) with the content hashes of
everything its outputs were computed from:

* its code cells (prose never changes an output);
* every dataset it read (tipline.evidence.data lists them from `chapter("NAME")` on), including
  those answer.json was computed from when it calls `answer.load()`: the content actually read,
  so a CSV reverted after an interrupted build cannot bring back an output of the other version;
* every module of the book it imported, from the kernel's sys.modules after its last cell (a change
  in tipline/presentation/charts.py re-executes only the chapters that import it);
* the repository files its code names (NAMED_FILES);
* the settings every chapter shares: data/datapackage.json, requirements.txt, the `execute`
  section of _config.yml and the Python version (major.minor).

1. A lock (_build/.lock) lets one build run at a time in a folder; a second one stops at once.
2. Every dataset is validated (a broken CSV stops the build, naming file, line and column) and
   references.bib is regenerated from data/sources.csv.
3. A chapter whose stamp does not match its inputs is stale. answer.json (tipline.estimates.answer)
   is computed once, first, unless it is kept already for the current inputs; stale chapters
   execute in place on every core (TIPLINE_WORKERS, default one more than there are cores), longest first, one
   progress line each, and are written back with their new outputs and stamp. Each kernel runs
   under tipline.site.sandbox: it can read the book but write only into its own scratch folder
   (_build/.kernels/NAME), so a cell cannot change data/, _static/ or the notebooks. Meanwhile
   one worker also imports what step 4 will (prepare_pages), so that step, on one core, starts sooner.
4. Sphinx (`-n -W --keep-going`, execution off) runs in this process and builds the pages from the
   notebooks into _build/.work. Anything else that shapes the site (title, theme, CSS, table of
   contents, prose, TIPLINE_PDF, TIPLINE_URL_PREFIX) rebuilds the pages without executing; a change
   in the package's code or in those two settings starts Sphinx from a fresh tree. When no input
   changed at all, Sphinx is not started.
5. Only then is the new site put together beside _build/html (Sphinx's pages plus the files the
   build lists: the datasets data/datapackage.json names, as plain files, the package itself,
   answer.json and the benchmark) and swapped in by two renames that no SIGINT/SIGTERM can split.

A failure of any kind ends in one line "BUILD FAILED: <file>: <reason>" and leaves the published
site as it was; so does an interrupt (SIGINT, SIGTERM), which also stops every kernel and the
Chromium that prints the PDF, and removes the build's scratch folders.
"""
from __future__ import annotations

import copy
import fcntl
import functools
import hashlib
import importlib
import io
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from pathlib import Path

BOOK = Path.cwd()  # the Makefile runs this from the book's folder
BUILD = BOOK / "_build"
SITE = BUILD / "html"
WORK = BUILD / ".work"  # Sphinx's own tree (doctrees, html), reused between builds
DIRTY = WORK / "BUILDING"  # present while Sphinx writes: an interrupted tree is not reused
KERNELS = BUILD / ".kernels"  # each kernel's scratch folder, the only place it may write
STATE = BUILD / ".site-inputs.json"
LOCK = BUILD / ".lock"
LOG = BUILD / "sphinx.log"
TIMINGS = BUILD / ".timings.json"  # each chapter's last execution time, to start the longest first
CHAPTERS = BOOK / "chapters"
STAMP = "tipline"  # the notebook metadata key of a chapter's stamp
# files a chapter's code may read, beside data/ (which tipline.evidence.data tracks): the text in a
# chapter's code that means it reads the file (the file's name, or the function that reads it)
NAMED_FILES = {"CITATION.cff": "CITATION.cff", "citation_record": "CITATION.cff"}
# every file the site is made from, beside the chapters' own inputs and LOOK: when none changed and no
# chapter is stale, nothing is built (releases/: each published version's figures, which the
# changes page compares)
SITE_INPUTS = ["chapters", "tipline", "_config.yml", "_toc.yml", "references.bib",
               "CITATION.cff", "CHANGELOG.md", "requirements.txt", "pyproject.toml", "scripts/benchmark.json",
               "releases"]
# the stylesheets, scripts and templates: Sphinx copies _static only when it writes a page, so a
# change to any of them rewrites every page (site_inputs()["look"])
LOOK = ["_static", "_templates"]
# run after a chapter's last cell: the modules it imported and the datasets it read (None: it never
# imported tipline.evidence.data, so count every dataset)
PROBE = ("import sys as _s, json as _j\n"
         "_m = sorted({getattr(m, '__file__', None) or '' for m in list(_s.modules.values())})\n"
         "_d = _s.modules.get('tipline.evidence.data')\n"
         "print(_j.dumps({'modules': _m, 'datasets': _d.read() if _d else None}))")


class Failed(Exception):
    """The build cannot publish. str() is "<file>: <reason>"; `details` (a traceback, Sphinx's
    warnings) is printed before the one BUILD FAILED line."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


class Interrupted(Exception):
    pass


STORE = threading.Lock()  # held while a chapter is written back, so an interrupt cannot cut it in half
# set when a chapter's first cell starts: the worker that started its kernel has made the imports
# that takes (nbclient, jupyter_client, IPython's paths), which prepare_pages must not race
KERNEL_RUNNING = threading.Event()
STOPPING = threading.Event()  # set when the build fails or is interrupted: no kernel starts after it


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"


def _say(text: str, stream=sys.stdout) -> None:
    print(text, file=stream, flush=True)


def _relative(path: Path | str) -> str:
    try:
        return Path(path).resolve().relative_to(BOOK.resolve()).as_posix()
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- stamps: what each chapter read

def _config() -> dict:
    import yaml

    return yaml.safe_load((BOOK / "_config.yml").read_text()) or {}


def settings() -> dict:
    """The inputs of every chapter's outputs that are not recorded per chapter."""
    from ..evidence.data import DATA

    execute = json.dumps(_config().get("execute", {}), sort_keys=True)
    return {"python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "requirements.txt": _digest(BOOK / "requirements.txt"),
            "data/datapackage.json": _digest(DATA / "datapackage.json"),
            "_config.yml execute": hashlib.sha256(execute.encode()).hexdigest()[:16]}


def code_hash(notebook) -> str:
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    kernel = notebook.metadata.get("kernelspec", {}).get("name", "")
    return hashlib.sha256(json.dumps([kernel, code]).encode()).hexdigest()[:16]


def dataset_files() -> dict[str, Path]:
    """Every dataset data/datapackage.json lists, by resource name."""
    from ..evidence.data import DATA, package

    return {resource["name"]: DATA / resource["path"] for resource in package(DATA)["resources"]}


def stale_reason(notebook, shared: dict | None = None, datasets: dict[str, Path] | None = None) -> str | None:
    """Why a chapter must execute again (naming the input that changed), or None when its stamp
    matches its inputs and every code cell has its outputs."""
    shared = settings() if shared is None else shared
    datasets = dataset_files() if datasets is None else datasets
    stamp = notebook.metadata.get(STAMP)
    if not stamp:
        return "never executed by make book"
    if stamp.get("code") != code_hash(notebook):
        return "code changed"
    if any(cell.cell_type == "code" and cell.get("execution_count") is None for cell in notebook.cells):
        return "outputs missing"
    changed = sorted(name for name in set(shared) | set(stamp.get("settings", {}))
                     if stamp.get("settings", {}).get(name) != shared.get(name))
    if changed:
        return "settings changed: " + ", ".join(changed)
    changed = sorted(name for name, digest in stamp.get("datasets", {}).items()
                     if name not in datasets or _digest(datasets[name]) != digest)
    if changed:
        return "data changed: " + ", ".join(changed)
    changed = sorted(path for path, digest in {**stamp.get("modules", {}), **stamp.get("files", {})}.items()
                     if _digest(BOOK / path) != digest)
    if changed:
        return "changed: " + ", ".join(changed)
    return None


def make_stamp(notebook, found: dict, before: dict, shared: dict) -> dict:
    """The stamp of a chapter just executed: the hashes taken before it started (a file edited
    meanwhile leaves the stamp stale) of what the probe saw it import and read."""
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    read = found["datasets"] if found["datasets"] is not None else list(before["datasets"])  # no chapter(): all
    modules = {}
    for name in found["modules"]:
        path = Path(name)
        if path.is_file() and path.is_relative_to(BOOK) and ".venv" not in path.relative_to(BOOK).parts:
            relative = path.relative_to(BOOK).as_posix()
            modules[relative] = before["modules"].get(relative) or _digest(path)
    return {"code": code_hash(notebook), "settings": shared,
            "datasets": {name: before["datasets"][name] for name in sorted(set(read)) if name in before["datasets"]},
            "modules": dict(sorted(modules.items())),
            "files": {path: _digest(BOOK / path) for name, path in NAMED_FILES.items() if name in code}}


# ---------------------------------------------------------------- executing chapters in place

def kernel_manager(scratch: Path):
    """nbclient's own asynchronous kernel manager (which raises DeadKernelError within about two
    seconds of a kernel dying), with the kernel started under tipline.site.sandbox and talking over
    abstract Unix sockets: no TCP port, no socket file."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    from . import sandbox

    class SandboxedKernel(AsyncKernelManager):
        @default("transport")
        def _transport_default(self):
            return "ipc"

        @default("ip")
        def _ip_default(self):
            return "@tipline-" + uuid.uuid4().hex[:16]

        @default("connection_file")
        def _connection_file_default(self):
            return str(scratch / "kernel.json")

        def format_kernel_cmd(self, extra_arguments=None):
            return sandbox.command([str(scratch), "/dev"], super().format_kernel_cmd(extra_arguments))

    return SandboxedKernel


def kernel_env(scratch: Path) -> dict:
    """The kernel's environment: the book's own package first, every cache in its scratch folder."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(BOOK)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    for name in ("TMPDIR", "IPYTHONDIR", "MPLCONFIGDIR", "XDG_CACHE_HOME", "JUPYTER_RUNTIME_DIR"):
        env[name] = str(scratch)
    return env


def execute(chapter: Path, timeout: int) -> tuple[object, dict, float]:
    """Run one chapter in a fresh sandboxed kernel; return the executed notebook, what the probe
    saw it import and read, and the time it took."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from . import sandbox

    notebook = nbformat.read(chapter, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    scratch = KERNELS / chapter.stem
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    where = _relative(chapter)
    current = {"cell": 0}
    client = NotebookClient(notebook, timeout=timeout, allow_errors=False, record_timing=False, shutdown_kernel="immediate",
                            kernel_manager_class=kernel_manager(scratch), resources={"metadata": {"path": str(chapter.parent)}},
                            on_cell_start=lambda cell, cell_index: (current.update(cell=cell_index + 1), KERNEL_RUNNING.set()))
    if STOPPING.is_set():
        raise Interrupted("stopping")
    if not sandbox.available():
        raise Failed(f"{where}: cannot be executed safely: this system offers no Landlock (Linux 5.13 or later), "
                     "which keeps a chapter from writing outside its scratch folder")
    start = time.perf_counter()
    log = (scratch / "kernel.log").open("w")
    try:
        client.execute(env=kernel_env(scratch), stdout=log, stderr=log)  # never the build's own output
    except CellExecutionError as error:
        raise Failed(f"{where}: cell {current['cell']} raised {error.ename}: {error.evalue}".strip(), str(error)) from None
    except CellTimeoutError:
        raise Failed(f"{where}: cell {current['cell']} ran longer than the {timeout} s the `execute` section of _config.yml allows") from None
    except DeadKernelError:
        log.close()
        said = (scratch / "kernel.log").read_text(errors="replace").strip()
        raise Failed(f"{where}: its kernel died in cell {current['cell']} (the process ended: os._exit, a crash, "
                     "or the out-of-memory killer)", said[-2000:]) from None
    finally:
        log.close()
    seconds = time.perf_counter() - start
    probe = notebook.cells.pop()
    found = json.loads("".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout"))
    return notebook, found, seconds


def write_back(chapter: Path, notebook, read_as: bytes) -> None:
    """The executed chapter replaces its file whole; never over an edit made while it executed."""
    import nbformat

    if chapter.read_bytes() != read_as:
        raise Failed(f"{_relative(chapter)}: changed while it executed; run `make book` again")
    part = chapter.with_name(f".{chapter.name}.part")
    nbformat.write(notebook, part)
    part.replace(chapter)


def worker_count() -> int:
    """Chapters executed at once: one more than there are cores, unless TIPLINE_WORKERS says
    otherwise. A kernel spends its first second or so starting and waiting for its handshake, and
    a worker waits while it does: with one worker per core a cold build of the book left the
    processors idle for about an eighth of its execution phase. With one more, four cold builds
    of a fresh checkout on two cores took 29.9-30.6 s against 29.4-32.6 s, and 1.16-1.17 times
    the processor limit against 1.24-1.25 (scripts/bench.py's measure, run back to back)."""
    return max(1, int(os.environ.get("TIPLINE_WORKERS") or (os.cpu_count() or 1) + 1))


def in_parallel(jobs: list, workers: int) -> None:
    """Run the callables in `jobs` on `workers` threads in order; the first failure is raised at
    once, without waiting for the jobs still running (nor on an interrupt)."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = pending = [pool.submit(job) for job in jobs]
        # waited for in slices: Python runs a signal's handler in the main thread only, and a
        # signal that the system hands to another thread does not wake a wait without a timeout
        # (an interrupt would then wait for a chapter to finish)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            if any(future.exception() for future in done):
                break
        for future in futures:
            if future.done() and future.exception():
                raise future.exception()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def uses_answer(notebook) -> bool:
    """Whether a chapter reads answer.json (it then waits until the build has kept it)."""
    return any("answer" in cell.source for cell in notebook.cells if cell.cell_type == "code")


def execution_order(reads_answer: dict[Path, bool], timings: dict[str, float], computing: bool, workers: int) -> list[Path]:
    """The order in which the chapters (each with whether it reads answer.json) are handed to the
    workers: the longest first (by the chapter's last time in `timings`; without one, the largest
    notebook is taken to be the slowest), so that the last to finish are short and no worker runs
    alone for long at the end. A chapter that reads answer.json waits for it: while it is being
    computed (`computing`, on a worker of its own), the three longest chapters per other worker
    that do not read it go first."""
    chapters = sorted(reads_answer, key=lambda chapter: -timings.get(chapter.stem, chapter.stat().st_size / 1e6))
    if computing:
        lead = [chapter for chapter in chapters if not reads_answer[chapter]][:3 * max(1, workers - 1)]
        chapters = lead + [chapter for chapter in chapters if chapter not in lead]
    return chapters


def execute_stale(stale: dict[Path, str], shared: dict) -> Path:
    """answer.json kept first, then every stale chapter executed in place; returns answer.json."""
    import nbformat

    from ..estimates import kept as kept_answer
    from . import bundle  # noqa: F401 (imported here, before the workers start: prepare_pages uses it)

    notebooks = {chapter: nbformat.read(chapter, as_version=4) for chapter in stale}
    reads_answer = {chapter: uses_answer(notebook) for chapter, notebook in notebooks.items()}
    timeout = int(_config().get("execute", {}).get("timeout", 180))
    datasets = dataset_files()
    before = {"datasets": {name: _digest(path) for name, path in datasets.items()},
              "modules": {path.relative_to(BOOK).as_posix(): _digest(path) for path in (BOOK / "tipline").rglob("*.py")}}
    answered: Future = Future()
    kept: list[Path] = []
    kept_path = kept_answer.kept_path()
    computing = kept_answer.kept_text(kept_path) is None  # the model (scipy and all) is imported only to compute it

    def keep_answer() -> None:
        try:
            path = kept_path
            if computing:
                from ..estimates import answer

                path = answer.keep()
            kept.append(path)
            answered.set_result(True)
        except Exception as error:  # the chapters waiting for it fail the same way
            answered.set_exception(error)
            raise Failed(f"tipline/estimates/answer.py: computing answer.json failed: {type(error).__name__}: {error}",
                         _traceback()) from None

    done, total = 0, 0.0
    try:
        timings = json.loads(TIMINGS.read_text())
    except (OSError, ValueError):
        timings = {}

    def run(chapter: Path) -> None:
        nonlocal done, total
        if reads_answer[chapter]:
            answered.result()
        read_as = chapter.read_bytes()
        executed, found, took = execute(chapter, timeout)
        executed.metadata[STAMP] = make_stamp(executed, found, before, shared)
        with STORE:
            write_back(chapter, executed, read_as)
            done += 1
            total += took
            timings[chapter.stem] = round(took, 2)
            TIMINGS.write_text(json.dumps(timings, indent=1, sort_keys=True))
            _say(f"executing {done}/{len(stale)} {chapter.stem} ... {took:.1f} s")

    workers = worker_count()
    chapters = execution_order(reads_answer, timings, computing, workers)
    started = time.perf_counter()
    jobs = [lambda chapter=chapter: run(chapter) for chapter in chapters]
    if chapters:  # the pages' imports, before the chapters that wait for answer.json (prepare_pages)
        first_waiting = next((i for i, chapter in enumerate(chapters) if reads_answer[chapter]), len(chapters))
        jobs.insert(max(first_waiting, min(workers, len(chapters))), lambda: prepare_pages(answered))
    in_parallel([keep_answer] + jobs, workers)
    if chapters:
        _say(f"executed {len(chapters)} chapters in {time.perf_counter() - started:.1f} s on {workers} workers "
             f"(the chapters' own times add up to {total:.1f} s)")
    return kept[0]


# ---------------------------------------------------------------- Sphinx, in this process

@functools.cache
def pages_config() -> dict:
    """Sphinx's configuration, from _config.yml and _toc.yml by jupyter-book's own reader."""
    from jupyter_book.config import get_final_config

    config, _ = get_final_config(user_yaml=BOOK / "_config.yml", sourcedir=BOOK, use_external_toc=True,
                                 cli_config={"external_toc_path": (BOOK / "_toc.yml").as_posix(), "nitpicky": True,
                                             "latex_individualpages": False})
    return config


# what the pages phase imports on its way besides Sphinx, its theme and its extensions (modules
# imported where they are used, so that a build with nothing to do stays quick; python -X importtime)
LATER_IMPORTS = ["sphinx.builders.html", "myst_nb.sphinx_ext", "altair", "jsonschema", "fontTools.subset",
                 "tipline.presentation.charts", "tipline.presentation.tables", "tipline.site.figures"]


def prepare_pages(answered: Future) -> None:
    """Make the chart bundle, import what the pages phase will (LATER_IMPORTS, Sphinx, its theme
    and every extension), register the bibliography's plugins and format its entries
    (bibstyle.warm): a build that executes chapters does this on a worker meanwhile
    (execute_stale), 2.5 s that the pages phase, on one core, no longer spends (4.5 s in a new
    checkout, which has no kept bundle). A module that fails to import, or an entry that cannot
    be read, is left to Sphinx, which names it.

    Not while another thread imports: two threads importing modules in different orders can
    deadlock (Python then refuses one of the imports). So only once a kernel runs (starting the
    first one imports what myst-nb imports too: nbclient, jupyter_client) and answer.json is kept
    (computing it imports scipy's parts as it goes)."""
    from . import bibstyle, bundle

    # the chart bundle first, in a process of its own: bundling holds the interpreter's lock for
    # about 2 s, which would stall the other worker's kernel
    if not STOPPING.is_set() and not bundle.is_kept(BUILD):
        # as an isolated script, like the sandbox: `-m tipline.site.bundle` would import pandas first
        made = subprocess.run([sys.executable, "-I", bundle.__file__, str(BUILD)], cwd=BOOK, capture_output=True, text=True)
        if made.returncode == 0 and made.stderr.strip():  # a damaged kept bundle, made again; a failure
            _say(made.stderr.strip(), sys.stderr)          # is the pages phase's to report, as without this
    if not KERNEL_RUNNING.wait(timeout=600):
        return
    with suppress(Exception):  # a failure is the answer's job to report
        answered.result()
    config = pages_config()
    for name in ["sphinx.application", config.get("html_theme")] + config.get("extensions", []) + LATER_IMPORTS:
        with suppress(Exception):
            importlib.import_module(name)
    bibstyle.register()
    with suppress(Exception):  # an entry pybtex cannot read is Sphinx's to name
        for bib in config.get("bibtex_bibfiles", []):
            bibstyle.warm(BOOK / bib)


def sphinx(fresh: bool, every_page: bool) -> None:
    """Build the pages from the notebooks as they are (execution off) into _build/.work, from a
    fresh tree or rewriting every page if asked; every warning is an error, reported with its file."""
    from sphinx.application import Sphinx
    from sphinx.errors import SphinxError
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    if fresh or DIRTY.exists():  # the code Sphinx runs changed, or its last run was cut short
        shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    DIRTY.touch()
    config = copy.deepcopy(pages_config())  # Sphinx may change what it is given
    warnings = io.StringIO()
    with LOG.open("w") as status:
        class Both(io.TextIOBase):  # Sphinx's warnings, into the log and kept for the failure message
            def write(self, text):
                status.write(text)
                return warnings.write(text)

        saved = WORK / "_build" / ".doctrees" / "environment.pickle"
        if saved.exists() and not fresh:
            try:  # Sphinx would start afresh without a word
                with saved.open("rb") as handle:
                    pickle.load(handle)
            except Exception as error:  # noqa: BLE001 (whatever a damaged file raises)
                _say(f"{_relative(saved)} could not be read ({type(error).__name__}): discarded, every page is read again", sys.stderr)
                saved.unlink()
        try:
            with patch_docutils(BOOK), docutils_namespace():
                app = Sphinx(srcdir=BOOK, confdir=None, outdir=WORK / "_build" / "html", doctreedir=WORK / "_build" / ".doctrees",
                             buildername="html", confoverrides=config, status=status, warning=Both(), freshenv=fresh,
                             warningiserror=True, keep_going=True, parallel=1)
                app.build(force_all=every_page)
        except Exception as error:
            cause = getattr(error, "orig_exc", None) or error.__cause__ or error
            if isinstance(cause, (pickle.UnpicklingError, EOFError)) and not fresh:  # a saved page, damaged
                _say(f"{_relative(WORK)}: Sphinx's saved pages were damaged ({type(cause).__name__}: {cause}): "
                     "discarded, building every page afresh", sys.stderr)
                return sphinx(fresh=True, every_page=True)
            if isinstance(error, SphinxError):
                raise Failed(_sphinx_reason(str(cause)), _traceback()) from None
            raise
    if app.statuscode:
        problems = [line for line in warnings.getvalue().splitlines() if "WARNING" in line or "ERROR" in line]
        first = problems[0] if problems else "Sphinx failed (see _build/sphinx.log)"
        raise Failed(_sphinx_reason(first), "\n".join(problems[:40]) + "\n(the full log is _build/sphinx.log)")
    DIRTY.unlink()


def _sphinx_reason(text: str) -> str:
    """A Sphinx message with its paths relative to the book: '<file>: <reason>'."""
    text = text.replace(str(WORK / "_build" / "html") + "/", "").replace(str(BOOK) + "/", "").strip()
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    match = re.match(r"(\S+?):(\d+): (?:WARNING|ERROR): (.*)", text, re.S)
    if match:
        return f"{match.group(1)}, line {match.group(2)}: {match.group(3)}"
    match = re.match(r"(\S+?): (?:WARNING|ERROR): (.*)", text, re.S)
    return f"{match.group(1)}: {match.group(2)}" if match else text


def _traceback() -> str:
    import traceback

    return traceback.format_exc()


# ---------------------------------------------------------------- publishing

def listed_files(kept_answer: Path) -> dict[str, Path]:
    """What the build publishes beside Sphinx's pages, under data/: the datasets the package lists
    (plain files inside data/, never links), the package itself, answer.json and the benchmark."""
    from ..evidence.data import DATA

    folder = DATA.resolve()
    files = {"datapackage.json": DATA / "datapackage.json", **{path.name: path for path in dataset_files().values()}}
    for name, path in files.items():
        if path.is_symlink() or not path.is_file() or path.resolve().parent != folder:
            raise Failed(f"{_relative(path)}: not published: a dataset must be a plain file inside data/, not a link or a folder")
    files["answer.json"] = kept_answer
    benchmark = BOOK / "scripts" / "benchmark.json"
    if benchmark.is_file():
        files["benchmark.json"] = benchmark
    return files


def publish(files: dict[str, Path]) -> None:
    """Put the new site together beside _build/html (Sphinx's pages plus `files` in data/), then
    replace _build/html in two renames that no SIGINT/SIGTERM can split. A failure before the
    renames (a full disk, a read-only folder) leaves the published site untouched."""
    new, old = BUILD / ".html-new", BUILD / ".html-old"

    def copy(source, target):  # stops at the first file that cannot be written, naming it
        try:
            shutil.copy2(source, target, follow_symlinks=False)
        except OSError as error:
            raise Failed(f"{_relative(target)}: publishing failed: {error.strerror or error}") from None

    try:
        shutil.rmtree(new, ignore_errors=True)
        shutil.copytree(WORK / "_build" / "html", new, copy_function=copy)
        (new / "data").mkdir(exist_ok=True)
        for name, source in files.items():
            copy(source, new / "data" / name)
    except (OSError, Failed) as error:
        shutil.rmtree(new, ignore_errors=True)
        if isinstance(error, Failed):
            raise
        raise Failed(f"{_relative(error.filename or new)}: publishing failed: {error.strerror or error}") from None
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
    for leftover in (old, BUILD / ".html-new", KERNELS):
        shutil.rmtree(leftover, ignore_errors=True)
    for part in CHAPTERS.glob(".*.ipynb.part"):
        part.unlink()


def site_inputs() -> dict:
    """The content of everything the site is made from beside the chapters' stamps ("site"); the
    code Sphinx runs without watching it, its extensions in tipline/site and the pins ("code": a
    change starts Sphinx from a fresh tree); and the settings that change the pages ("settings":
    a change rewrites every page)."""
    from ..evidence.data import DATA
    from . import pdf, reader

    def tree(paths: list[Path]) -> str:
        digest = hashlib.sha256()
        for path in paths:
            files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
            for file in files:
                digest.update(f"{file.relative_to(path.parent).as_posix()} {_digest(file)}\n".encode())
        return digest.hexdigest()

    try:
        prefix = reader.url_prefix()
    except ValueError as error:
        raise Failed(f"TIPLINE_URL_PREFIX (environment): {error}") from None
    return {"site": tree([BOOK / name for name in SITE_INPUTS] + [DATA]),
            "code": tree([BOOK / "tipline" / "site", BOOK / "requirements.txt"]),
            "settings": {"pdf": pdf.wanted(), "url_prefix": prefix},
            # Sphinx copies _static only when it writes a page: a changed stylesheet, script or
            # template rewrites every page (and so reaches the site)
            "look": tree([BOOK / name for name in LOOK])}


def write_bibliography(registry) -> None:
    """references.bib from data/sources.csv (python -m tipline.site.bib), when either has changed;
    `registry`: the sources as validated."""
    from ..evidence.data import DATA
    from . import bib

    target, seen = BOOK / "references.bib", BUILD / ".bib-inputs"

    def inputs() -> str:
        return "".join(_digest(path) for path in (DATA / "sources.csv", Path(bib.__file__), target))

    if seen.exists() and seen.read_text() == inputs():
        return
    text = bib.render(DATA, registry)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
        _say("references.bib regenerated from data/sources.csv")
    seen.write_text(inputs())


@contextmanager
def lock():
    """One build at a time in this folder: a second one stops at once, touching nothing."""
    try:
        BUILD.mkdir(exist_ok=True)
        handle = LOCK.open("a+")
    except OSError as error:
        raise Failed(f"{_relative(error.filename or LOCK)}: cannot write: {error.strerror}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise Failed(f"{_relative(LOCK)}: another `make book` (process {holder}) is building this book; "
                         "wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


# ---------------------------------------------------------------- the build

def build() -> int:
    import nbformat

    from ..evidence import validate
    from ..evidence.data import DataError

    started = time.perf_counter()
    recover()
    try:
        frames = validate()
    except DataError as error:
        raise Failed(str(error)) from None
    write_bibliography(frames["sources"])

    shared = settings()
    datasets = dataset_files()
    chapters = sorted(CHAPTERS.glob("*.ipynb"))
    stale = {}
    for chapter in chapters:
        reason = stale_reason(nbformat.read(chapter, as_version=4), shared, datasets)
        if reason:
            stale[chapter] = reason
    try:
        old = json.loads(STATE.read_text()) if STATE.exists() else {}
    except ValueError:
        old = {}
    from ..estimates import kept

    if not stale and SITE.joinpath("index.html").exists() and kept.kept_path().exists() and old == site_inputs():
        _say("nothing changed since the last build: _build/html is up to date")
        return 0
    _say(f"{len(chapters)} chapters: {len(stale)} to execute, {len(chapters) - len(stale)} up to date")
    for reason in sorted(set(stale.values())):
        _say(f"  {reason}: " + ", ".join(c.stem for c, why in stale.items() if why == reason))
    STATE.unlink(missing_ok=True)
    kept = execute_stale(stale, shared)
    shutil.rmtree(KERNELS, ignore_errors=True)
    inputs = site_inputs()  # after the executions, which rewrote the stale chapters
    pages = time.perf_counter()
    sphinx(fresh=old.get("code") != inputs["code"],
           every_page=old.get("settings") != inputs["settings"] or old.get("look") != inputs["look"])
    _say(f"built the pages in {time.perf_counter() - pages:.1f} s")
    publish(listed_files(kept))
    STATE.write_text(json.dumps(inputs))
    _say(f"published _build/html in {time.perf_counter() - started:.1f} s")
    return 0


RECEIVED: list[str] = []  # the signal that interrupted this build


def _interrupt(signum, frame):
    """SIGINT or SIGTERM ends the build, and is recorded: raised wherever this process happens to be
    (in threading's lock bookkeeping, say, while a second signal from make arrives), it can surface
    as another error, which main() then reports as the interrupt it was."""
    RECEIVED.append(signal.Signals(signum).name)
    raise Interrupted(RECEIVED[0])


def _stop_children() -> None:
    """Kernels (and the Chromium that prints the PDF) run in their own sessions, so a terminal's
    Ctrl-C does not reach them: stop every process this build started. STOPPING (main() sets it
    first) keeps workers from starting kernels; one may still have been starting as the first list
    was taken, so the lists are taken again until one comes back empty. (A kernel left running kept the build's output
    open, and the `make book` that started it never ended.)"""
    try:
        import psutil
    except Exception:  # noqa: BLE001 (no way to list them)
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            children = psutil.Process().children(recursive=True)
        except Exception:  # noqa: BLE001
            return
        if not children:
            return
        for child in children:
            try:
                child.kill()
            except Exception:  # noqa: BLE001
                pass
        # a kill is delivered asynchronously: wait until they have ended, so that nothing this
        # build started outlives it
        psutil.wait_procs(children, timeout=max(0.1, deadline - time.monotonic()))
        time.sleep(0.05)


def _failed_where(error: BaseException) -> str:
    """An unexpected exception as '<file of the book>, line N: <type>: <message>'."""
    import traceback

    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith(str(BOOK)) and ".venv" not in f.filename]
    where = f"{_relative(frames[-1].filename)}, line {frames[-1].lineno}" if frames else "tipline/site/build.py"
    return f"{where}: {type(error).__name__}: {error}"


def main() -> int:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    # the book's own package, not whichever copy is installed, in this process and its kernels
    sys.path.insert(0, str(BOOK))
    try:
        with lock():
            try:
                status = build()
            except BaseException as error:
                # still holding the lock: stop what this build started and remove its scratch folders
                STOPPING.set()
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                STORE.acquire(timeout=30)  # let a chapter being written back finish
                _stop_children()
                shutil.rmtree(KERNELS, ignore_errors=True)
                if RECEIVED and not isinstance(error, Interrupted):  # an error the interrupt caused where it landed
                    raise Interrupted(RECEIVED[0]) from None
                if isinstance(error, (Interrupted, Failed)):
                    raise
                raise Failed(_failed_where(error), _traceback()) from None  # anything unexpected, named
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # published: an interrupt now changes nothing
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        lines = []
    except Interrupted as stop:
        status, lines = 130, [f"interrupted ({stop}): nothing was published, the previous site in _build/html is unchanged"]
    except Failed as error:
        status = 1
        lines = [error.details.rstrip(), f"BUILD FAILED: {error} (nothing was published; _build/html is as it was)"]
    for line in lines:
        if line:
            _say(line, sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # ended at once: not waiting for worker threads whose kernels were just stopped, nor for the
    # interpreter to take apart the 3,000 modules Sphinx and pandas loaded (half a second, in every
    # build); every file the build wrote is closed by now, and the lock released
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
