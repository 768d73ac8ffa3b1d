"""Benchmark the book on this machine and write scripts/benchmark.json (`make bench`).

Measured in one run, in a temporary copy of the book so the working tree is untouched:

* cold build, no-op rebuild, rebuild after editing one CSV, and rebuild after changing only the
  book's title (`make book`; the title must not execute any chapter);
* the floor: an empty book with the same configuration and extensions, plus the bare
  execution time of every chapter with nbclient (no Sphinx); the cold build is reported as a
  ratio to floor + executions;
* growth: synthetic books of 7, 14 and 28 chapter copies, each built cold with one worker
  (serial) and with one per core (parallel), so the cost per chapter is measured, not assumed;
* `make test` wall time (in the working tree; skip with --no-tests);
* per page in headless Chromium, served gzip-compressed as GitHub Pages serves it: bytes
  transferred (and the uncompressed size of the same files), requests, and the time from the
  load event until every chart on the page has drawn its marks.

It is a script, not a test: timings vary with the machine, so they are reported, not asserted.
"""
from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
OUT = ROOT / "scripts" / "benchmark.json"
EDITED = ("emerging_reports.csv", "2022,calendar_year,financial_sextortion,10731", "2022,calendar_year,financial_sextortion,10732")
TARGETS = {"cold_over_floor": 0.65, "noop_seconds": 2.0, "one_csv_over_cold": 0.35, "tests_seconds": 120.0,
           "page_megabytes": 1.2, "charts_drawn_seconds": 1.0,
           "title_executions": 0}
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


GROWTH = (7, 14, 28)
# chapters without links to other chapters, so any number of renamed copies builds under -n -W
LINK_FREE = ["01_referral", "02_reporters", "03_urgency", "04_jurisdiction", "05_platforms_policy", "appendix_claims",
             "appendix_data", "appendix_dive_arrests", "appendix_dive_encryption", "appendix_dive_triage",
             "appendix_reproducibility", "best_inference"]


def timed(command: list[str], cwd: Path, env: dict | None = None, output: list | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed in {cwd}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    if output is not None:
        output.append(result.stdout)
    return elapsed


def make_book(book: Path, workers: int | None = None, output: list | None = None) -> float:
    env = dict(os.environ, TIPLINE_DATA=str(book / "data"))
    env.pop("PYTHONPATH", None)
    if workers:
        env["TIPLINE_WORKERS"] = str(workers)
    return timed(["make", "-o", f"{VENV}/bin/jupyter-book", "book", f"VENV={VENV}"], book, env, output)


def synthetic(work: Path, chapters: int) -> Path:
    """A copy of the book whose chapters are `chapters` renamed copies of the link-free chapters."""
    import nbformat

    book = copy_book(work / f"synthetic_{chapters}")
    source = book / "chapters"
    originals = {name: nbformat.read(source / f"{name}.ipynb", as_version=4) for name in LINK_FREE}
    for path in source.glob("*.ipynb"):
        path.unlink()
    names = []
    for number in range(chapters):
        original = LINK_FREE[number % len(LINK_FREE)]
        name = f"s{number:02d}_{original}"
        notebook = originals[original]
        for cell in notebook.cells:  # links to chapters the synthetic book lacks become plain text
            if cell.cell_type == "markdown":
                cell.source = re.sub(r"\[([^\]]+)\]\((?:[^)]*\.(?:ipynb|md))?(?:#[^)]*)?\)", r"\1", cell.source)
                # copies of one chapter would declare the same targets: a duplicate label fails -W
                cell.source = re.sub(r"^\([A-Za-z0-9_-]+\)=[ \t]*\n?", "", cell.source, flags=re.M)
        first = notebook.cells[0]
        saved = first.source
        first.source = saved.replace(f'chapter("{original}")', f'chapter("{name}")')
        nbformat.write(notebook, source / f"{name}.ipynb")
        first.source = saved
        names.append(name)
    toc = ["format: jb-book", f"root: chapters/{names[0]}", "chapters:"]
    toc += [f"  - file: chapters/{name}" for name in names[1:] + ["bibliography"]]
    (book / "_toc.yml").write_text("\n".join(toc) + "\n")
    return book


def growth(work: Path) -> list[dict]:
    rows = []
    for chapters in GROWTH:
        book = synthetic(work, chapters)
        row = {"chapters": chapters}
        for mode, workers in (("serial", 1), ("parallel", os.cpu_count() or 1)):
            shutil.rmtree(book / "_build", ignore_errors=True)
            row[f"{mode}_seconds"] = round(make_book(book, workers), 1)
        row["workers"] = os.cpu_count() or 1
        rows.append(row)
        shutil.rmtree(book, ignore_errors=True)
        print(f"growth: {row}", flush=True)
    return rows


def copy_book(target: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", "_build", ".git", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis")
    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def floor(work: Path) -> float:
    """An empty book with the same configuration and extensions: the fixed cost of a build."""
    empty = work / "empty"
    empty.mkdir()
    for name in ("_config.yml", "references.bib", "CITATION.cff"):
        shutil.copy2(ROOT / name, empty / name)
    # sphinx-notfound-page cannot render its 404 page in a book of one page without a table of
    # contents (the theme finds no navigation to parse); the page it adds costs a fraction of a second
    config = empty / "_config.yml"
    config.write_text(config.read_text().replace("    - notfound.extension\n", ""))
    (empty / "_extra").mkdir()  # html_extra_path (the real book publishes data/ from it)
    shutil.copytree(ROOT / "_static", empty / "_static")
    (empty / "data").mkdir()
    shutil.copy2(ROOT / "data" / "sources.csv", empty / "data" / "sources.csv")
    (empty / "index.md").write_text("# Empty\n\nA page.\n")
    (empty / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    return timed([str(VENV / "bin" / "jupyter-book"), "build", "-n", "-W", "--keep-going", "."], empty,
                 dict(os.environ, TIPLINE_DATA=str(ROOT / "data")))


def executions(book: Path) -> dict[str, float]:
    """Each chapter executed alone with nbclient, as jupyter-cache would, without Sphinx."""
    import nbformat
    from nbclient import NotebookClient

    sys.path.insert(0, str(ROOT))
    from tipline.site.build import _kernel_manager  # the kernels `make book` starts (Unix sockets)

    seconds = {}
    sockets = tempfile.mkdtemp(prefix="tipline-bench-")
    for path in sorted((book / "chapters").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(path.parent)}},
                       kernel_manager_class=_kernel_manager(sockets), shutdown_kernel="immediate").execute()
        seconds[path.stem] = time.perf_counter() - start
    return seconds


class Compressing(http.server.SimpleHTTPRequestHandler):
    """Serves text assets gzip-compressed when the browser asks, as GitHub Pages does."""
    TEXT = {".html", ".js", ".css", ".json", ".svg", ".csv", ".txt"}
    compressed: dict[tuple, bytes] = {}  # (path, size, mtime): gzipped bytes, so each file is compressed once

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if path.is_file() and path.suffix in self.TEXT and "gzip" in self.headers.get("Accept-Encoding", ""):
            stat = path.stat()
            key = (str(path), stat.st_size, stat.st_mtime_ns)
            if key not in self.compressed:
                self.compressed[key] = gzip.compress(path.read_bytes())
            body = self.compressed[key]
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(str(path)))
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()


def pages(site: Path) -> list[dict]:
    from playwright.sync_api import sync_playwright

    handler = functools.partial(Compressing, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows = []
    names = sorted(p.relative_to(site).as_posix() for p in site.glob("chapters/*.html"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name in names:
            context = browser.new_context()  # a fresh cache: what a first-time reader downloads
            page = context.new_page()
            sizes = []
            page.on("requestfinished", lambda request: sizes.append(request.sizes()["responseBodySize"]))
            page.goto(f"{base}/{name}", wait_until="load")
            charts = page.locator(".tipline-chart").count()
            drawn = 0.0
            if charts:
                page.wait_for_function(
                    f"document.querySelectorAll('.tipline-chart svg.marks').length >= {charts}", polling="raf", timeout=30000)
                drawn = page.evaluate("(performance.now() - performance.getEntriesByType('navigation')[0].loadEventEnd) / 1000")
            page.wait_for_load_state("networkidle")
            files = {}
            for url in page.evaluate("performance.getEntriesByType('resource').map(e => e.name)") + [page.url]:
                local = site / url.split("?")[0].split("/", 3)[3]
                files[local] = local.stat().st_size if local.is_file() else 0
            rows.append({"page": name, "charts": charts, "requests": len(sizes), "bytes": int(sum(sizes)),
                         "uncompressed_bytes": int(sum(files.values())),
                         "charts_drawn_after_load_seconds": round(max(drawn, 0.0), 3)})
            context.close()
        browser.close()
    server.shutdown()
    return rows


def machine() -> dict:
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    return {"cores": os.cpu_count(), "memory_gib": round(int(memory) / 2**20, 1), "cpu": cpu,
            "python": platform.python_version(), "system": f"{platform.system()} {platform.release()}"}


README = ROOT / "README.md"
MARKERS = ("<!-- bench: written by scripts/bench.py from scripts/benchmark.json -->", "<!-- /bench -->")


def busy_seconds() -> float:
    """Processor time the whole machine has spent busy since boot (/proc/stat: every core, every
    process). The test suite runs some of its work in processes pytest does not wait for (its
    shared builds), which a child-rusage count would miss."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is already in user


def readme_sentence(result: dict) -> str:
    """The README's statement of build and test times, from the benchmark's numbers."""
    s, m = result["seconds"], result["machine"]
    tests = ("`make test` was not timed in that run" if s.get("tests") is None else
             f"`make test` took {s['tests']:.0f} s" + ("" if result.get("tests_passed") else " (and failed)"))
    load = m.get("load_average")
    shared = "" if load is None else f"; the load average was {load:.1f} when the run began"
    return (f"Measured by `make bench` on {result['measured']} on {m['cores']} cores ({m['cpu']}{shared}): "
            f"a cold `make book` took {s['cold_build']:.0f} s, a rebuild after editing one CSV "
            f"{s['one_csv_rebuild']:.0f} s, a rebuild with nothing changed {s['noop_rebuild']:.1f} s; {tests}.")


def write_readme(result: dict) -> None:
    text = README.read_text()
    start, end = text.index(MARKERS[0]) + len(MARKERS[0]), text.index(MARKERS[1])
    README.write_text(text[:start] + "\n" + readme_sentence(result) + "\n" + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-tests", action="store_true", help="skip timing `make test`")
    parser.add_argument("--no-growth", action="store_true", help="skip the synthetic books of 7, 14 and 28 chapters")
    parser.add_argument("--readme", action="store_true", help="only rewrite the README's timing sentence from benchmark.json")
    options = parser.parse_args()
    if options.readme:
        write_readme(json.loads(OUT.read_text()))
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        book = copy_book(work / "book")
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cold_log = []
        cold = make_book(book, output=cold_log)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # the driver's own phase lines: chapters executing on every core, then Sphinx's pages
        executing = re.search(r"^executed \d+ chapters in ([0-9.]+) s", cold_log[0], re.M)
        pages_phase = re.search(r"^built the pages in ([0-9.]+) s", cold_log[0], re.M)
        # processor time of the cold build (make, the driver, every kernel, Sphinx): on n cores it
        # cannot take less than this divided by n
        cold_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        noop = make_book(book)
        csv = book / "data" / EDITED[0]
        csv.write_text(csv.read_text().replace(EDITED[1], EDITED[2]))
        one_csv = make_book(book)
        config = book / "_config.yml"
        config.write_text(re.sub(r'^title: "', 'title: "Retitled: ', config.read_text(), count=1, flags=re.M))
        title_log = []
        title = make_book(book, output=title_log)
        title_executed = len(re.findall(r"^executing \d+/", title_log[0], re.M))
        empty = floor(work)
        executed = executions(book)
        page_rows = pages(book / "_build" / "html")
        growth_rows = [] if options.no_growth else growth(work)
    tests = tests_passed = tests_cpu = None
    if not options.no_tests:
        start, busy = time.perf_counter(), busy_seconds()
        finished = subprocess.run(["make", "test"], cwd=ROOT, capture_output=True, text=True)
        tests = time.perf_counter() - start
        tests_cpu = busy_seconds() - busy
        tests_passed = finished.returncode == 0
        # a failed run says which tests failed (the benchmark records only pass or fail)
        (ROOT / "_build").mkdir(exist_ok=True)
        (ROOT / "_build" / "bench-tests.log").write_text(finished.stdout[-20000:] + finished.stderr[-5000:])
        if not tests_passed:
            print("make test failed during the benchmark; its output is in _build/bench-tests.log")
    run = sum(executed.values())
    result = {
        "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**machine(), "load_average": round(load, 1), "load_average_end": round(os.getloadavg()[0], 1)},
        "seconds": {"cold_build": round(cold, 1), "noop_rebuild": round(noop, 1), "one_csv_rebuild": round(one_csv, 1),
                    "title_rebuild": round(title, 1), "cold_build_cpu": round(cold_cpu, 1),
                    "empty_book": round(empty, 1), "executions": round(run, 1), "tests": None if tests is None else round(tests, 1),
                    "tests_cpu": None if tests_cpu is None else round(tests_cpu, 1),
                    "cold_executing": float(executing.group(1)) if executing else None,
                    "cold_pages": float(pages_phase.group(1)) if pages_phase else None},
        "tests_passed": tests_passed,
        "edited_csv": EDITED[0],
        "title_rebuild_executed": title_executed,
        "growth": growth_rows,
        "executions": {name: round(value, 2) for name, value in executed.items()},
        "ratios": {"cold_over_floor": round(cold / (empty + run), 2), "one_csv_over_cold": round(one_csv / cold, 2)},
        "pages": page_rows,
        "targets": TARGETS,
    }
    heaviest = max(page_rows, key=lambda r: r["bytes"])
    slowest = max(page_rows, key=lambda r: r["charts_drawn_after_load_seconds"])
    checks = [
        ("cold build / (floor + executions)", result["ratios"]["cold_over_floor"], TARGETS["cold_over_floor"]),
        ("no-op rebuild, s", noop, TARGETS["noop_seconds"]),
        ("one-CSV rebuild / cold", result["ratios"]["one_csv_over_cold"], TARGETS["one_csv_over_cold"]),
        ("chapters executed after a title change", title_executed, TARGETS["title_executions"]),
        ("make test, s", tests, TARGETS["tests_seconds"]),
        (f"heaviest page, MB sent gzipped ({heaviest['page']})", heaviest["bytes"] / 1e6, TARGETS["page_megabytes"]),
        (f"slowest charts after load, s ({slowest['page']})", slowest["charts_drawn_after_load_seconds"], TARGETS["charts_drawn_seconds"]),
    ]
    result["checks"] = [{"measure": m, "value": None if v is None else round(v, 3), "target": t,
                         "met": None if v is None else v <= t} for m, v, t in checks]
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    write_readme(result)
    print(f"{'measure':58} {'value':>9} {'target':>8}  met")
    for check in result["checks"]:
        value = "skipped" if check["value"] is None else f"{check['value']:.2f}"
        print(f"{check['measure']:58} {value:>9} {check['target']:>8}  {check['met']}")
    print(f"cold {cold:.1f} s = floor {empty:.1f} s + executions {run:.1f} s (x{result['ratios']['cold_over_floor']}); "
          f"no-op {noop:.1f} s; one CSV {one_csv:.1f} s")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
