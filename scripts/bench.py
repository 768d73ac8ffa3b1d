"""Benchmark the book on this machine and write scripts/benchmark.json (`make bench`).

Measured in one run, in temporary copies of the book so the working tree is untouched (it reuses
the tests' helpers: tests/helpers.py copies and builds books and serves them as GitHub Pages does):

* a cold build: every chapter's stamp removed, so every chapter executes and Sphinx starts from
  nothing, with the processor time it used (this process's children: make, the driver, every
  kernel, Sphinx); on n cores it cannot take less than that time / n, the processor limit, and is
  reported as a ratio to it. Its two phases (chapters executing, then the pages) come from its
  own output;
* a build of a fresh clone (stamps as committed: nothing executes), a rebuild with nothing
  changed, after editing one CSV, and after changing only the book's title (which must execute no
  chapter);
* `make check` and `make test` in the working tree, each --repeat times (default 3; the median is
  reported), with the processor time the whole machine was busy meanwhile (skip with --no-tests);
* growth: synthetic books of 7, 14 and 28 chapter copies, each built cold with one worker and with
  the build's default, one more than there are cores (skip with --no-growth);
* per page in headless Chromium, served gzip-compressed: bytes transferred (and the uncompressed size
  of the same files), requests, and the time from the load event until every chart has drawn.

No chapter reads benchmark.json when it executes: the reproducibility appendix shows it through
tipline.site.benchmark when the pages are built, so a new benchmark re-executes nothing. The README's
timing sentence is rewritten from it too (`python scripts/bench.py --readme` rewrites only that).
Timings vary with the machine and its load (recorded at the start and the end), so they are
reported, not asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import helpers  # noqa: E402  (the tests' copies, builds, server and browser arguments)
from helpers import Compressing  # noqa: E402,F401  (tests/test_readers.py used to import it from here)

from tipline.site.build import worker_count  # noqa: E402  (the build's default number of workers)

OUT = ROOT / "scripts" / "benchmark.json"
README = ROOT / "README.md"
MARKERS = ("<!-- bench: written by scripts/bench.py from scripts/benchmark.json -->", "<!-- /bench -->")
EDITED = ("emerging_reports.csv", "2022,calendar_year,financial_sextortion,10731", "2022,calendar_year,financial_sextortion,10732")
TARGETS = {"cold_over_limit": 1.2, "noop_seconds": 2.0, "one_csv_over_cold": 0.35, "check_seconds": 45.0,
           "tests_seconds": 180.0, "page_megabytes": 1.2, "charts_drawn_seconds": 1.0, "title_executions": 0}
GROWTH = (7, 14, 28)
# chapters without links to other chapters, so any number of renamed copies builds under -n -W
LINK_FREE = ["01_referral", "02_reporters", "03_urgency", "04_jurisdiction", "05_platforms_policy", "appendix_claims",
             "appendix_data", "appendix_dive_arrests", "appendix_dive_encryption", "appendix_dive_triage",
             "appendix_reproducibility", "best_inference"]


def timed_build(book: Path, log: list | None = None, **settings: str) -> float:
    start = time.perf_counter()
    result = helpers.make_book(book, **settings)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"make book failed in {book}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    if log is not None:
        log.append(result.stdout)
    return elapsed


def unstamp(book: Path) -> None:
    """Remove every chapter's stamp, so that every chapter executes (a cold build)."""
    import nbformat

    for path in (book / "chapters").glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        notebook.metadata.pop("tipline", None)
        nbformat.write(notebook, path)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def synthetic(work: Path, chapters: int) -> Path:
    """A copy of the book whose chapters are `chapters` renamed copies of the link-free chapters."""
    import nbformat

    book = helpers.copy_repo(work / f"synthetic_{chapters}")
    source = book / "chapters"
    originals = {name: nbformat.read(source / f"{name}.ipynb", as_version=4) for name in LINK_FREE}
    for path in source.glob("*.ipynb"):
        path.unlink()
    names = []
    for number in range(chapters):
        original = LINK_FREE[number % len(LINK_FREE)]
        name = f"s{number:02d}_{original}"
        notebook = nbformat.from_dict(json.loads(json.dumps(originals[original])))
        notebook.metadata.pop("tipline", None)
        for cell in notebook.cells:  # links to chapters the synthetic book lacks become plain text
            if cell.cell_type == "markdown":
                cell.source = re.sub(r"\[([^\]]+)\]\((?:[^)]*\.(?:ipynb|md))?(?:#[^)]*)?\)", r"\1", cell.source)
                # copies of one chapter would declare the same targets: a duplicate label fails -W
                cell.source = re.sub(r"^\([A-Za-z0-9_-]+\)=[ \t]*\n?", "", cell.source, flags=re.M)
        notebook.cells[0].source = notebook.cells[0].source.replace(f'chapter("{original}")', f'chapter("{name}")')
        nbformat.write(notebook, source / f"{name}.ipynb")
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
        for mode, workers in (("serial", 1), ("parallel", worker_count())):
            shutil.rmtree(book / "_build", ignore_errors=True)
            unstamp(book)
            row[f"{mode}_seconds"] = round(timed_build(book, TIPLINE_WORKERS=str(workers)), 1)
        row["workers"] = worker_count()
        rows.append(row)
        shutil.rmtree(book, ignore_errors=True)
        print(f"growth: {row}", flush=True)
    return rows


def pages(site: Path) -> list[dict]:
    from playwright.sync_api import sync_playwright

    rows = []
    names = sorted(p.relative_to(site).as_posix() for p in site.glob("chapters/*.html"))
    with helpers.serving(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(helpers.CHROMIUM), args=helpers.BROWSER_ARGS)
        tab = helpers.Tab(browser, weigh=True)
        for name in names:
            row = helpers.page_weight(tab, f"{base}/{name}")
            files = {}
            for url in row.pop("resources"):
                local = site / url.split("?")[0].split("/", 3)[3]
                files[local] = local.stat().st_size if local.is_file() else 0
            rows.append({"page": name, **row, "uncompressed_bytes": int(sum(files.values()))})
        browser.close()
    return rows


def busy_seconds() -> float:
    """Processor time the whole machine has spent busy since boot (/proc/stat: every core, every
    process). The test suite runs some of its work in processes pytest does not wait for (its
    shared builds), which a child-rusage count would miss."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is already in user


def suite(target: str, repeat: int) -> tuple[list[float], bool, float]:
    """`make <target>` `repeat` times in the working tree: wall times, whether all passed, and the
    machine's busy processor time per run."""
    runs, passed, busy = [], True, 0.0
    for number in range(repeat):
        start, before = time.perf_counter(), busy_seconds()
        finished = subprocess.run(["make", target], cwd=ROOT, capture_output=True, text=True)
        runs.append(round(time.perf_counter() - start, 1))
        busy += busy_seconds() - before
        passed = passed and finished.returncode == 0
        (ROOT / "_build").mkdir(exist_ok=True)
        (ROOT / "_build" / f"bench-{target}-{number + 1}.log").write_text(finished.stdout[-20000:] + finished.stderr[-5000:])
        print(f"make {target} run {number + 1}: {runs[-1]:.0f} s, {'passed' if finished.returncode == 0 else 'FAILED'}", flush=True)
    return runs, passed, round(busy / max(repeat, 1), 1)


def machine() -> dict:
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    return {"cores": os.cpu_count(), "memory_gib": round(int(memory) / 2**20, 1), "cpu": cpu,
            "python": platform.python_version(), "system": f"{platform.system()} {platform.release()}"}


def readme_sentence(result: dict) -> str:
    """The README's statement of build and test times, from the benchmark's numbers."""
    s, m = result["seconds"], result["machine"]

    def runs(name: str, label: str) -> str:
        measured = s.get(f"{name}_runs") or []
        if not measured:
            return f"{label} was not timed in that run"
        return (f"{label} took {statistics.median(measured):.0f} s (median of {len(measured)})"
                + ("" if result.get(f"{name}_passed") else " and failed"))

    load = m.get("load_average")
    shared = "" if load is None else f"; the load average was {load:.1f} when the run began"
    return (f"Measured by `make bench` on {result['measured']} on {m['cores']} cores ({m['cpu']}{shared}): "
            f"a cold `make book` (every chapter executed) took {s['cold_build']:.0f} s, "
            f"{s['cold_build'] / (s['cold_build_cpu'] / m['cores']):.2f} times the least its processor time allows; "
            f"a build of a fresh clone {s['clone_build']:.0f} s, a rebuild after editing one CSV {s['one_csv_rebuild']:.0f} s, "
            f"a rebuild with nothing changed {s['noop_rebuild']:.1f} s; {runs('check', '`make check`')}, "
            f"{runs('tests', '`make test`')}.")


def write_readme(result: dict) -> None:
    text = README.read_text()
    start, end = text.index(MARKERS[0]) + len(MARKERS[0]), text.index(MARKERS[1])
    README.write_text(text[:start] + "\n" + readme_sentence(result) + "\n" + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-tests", action="store_true", help="skip timing `make check` and `make test`")
    parser.add_argument("--repeat", type=int, default=3, help="runs of `make check` and `make test` (the median is reported)")
    parser.add_argument("--no-growth", action="store_true", help="skip the synthetic books of 7, 14 and 28 chapters")
    parser.add_argument("--readme", action="store_true", help="only rewrite the README's timing sentence from benchmark.json")
    options = parser.parse_args()
    if options.readme:
        write_readme(json.loads(OUT.read_text()))
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tipline-bench-") as folder:
        work = Path(folder)
        book = helpers.copy_repo(work / "book")
        unstamp(book)
        cold_log = []
        before = children_cpu()
        cold = timed_build(book, cold_log)
        cold_cpu = children_cpu() - before
        # the driver's own phase lines: chapters executing on every core, then Sphinx's pages
        executing = re.search(r"^executed \d+ chapters in ([0-9.]+) s on (\d+) workers", cold_log[0], re.M)
        pages_phase = re.search(r"^built the pages in ([0-9.]+) s", cold_log[0], re.M)
        executions = {name: float(seconds) for name, seconds in re.findall(r"^executing \d+/\d+ (\S+) \.\.\. ([0-9.]+) s", cold_log[0], re.M)}
        print(f"cold: {cold:.1f} s, {cold_cpu:.1f} s of processor time", flush=True)
        clone = timed_build(helpers.copy_repo(work / "clone"))
        noop = timed_build(book)
        csv = book / "data" / EDITED[0]
        helpers.replace_once(csv, EDITED[1], EDITED[2])
        one_csv = timed_build(book)
        config = book / "_config.yml"
        config.write_text(re.sub(r'^title: "', 'title: "Retitled: ', config.read_text(), count=1, flags=re.M))
        title_log = []
        title = timed_build(book, title_log)
        title_executed = len(re.findall(r"^executing \d+/", title_log[0], re.M))
        page_rows = pages(book / "_build" / "html")
        growth_rows = [] if options.no_growth else growth(work)
    check_runs = tests_runs = []
    check_passed = tests_passed = tests_cpu = None
    if not options.no_tests:
        check_runs, check_passed, _ = suite("check", options.repeat)
        tests_runs, tests_passed, tests_cpu = suite("test", options.repeat)
    limit = cold_cpu / (os.cpu_count() or 1)
    result = {
        "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**machine(), "load_average": round(load, 1), "load_average_end": round(os.getloadavg()[0], 1)},
        "seconds": {"cold_build": round(cold, 1), "cold_build_cpu": round(cold_cpu, 1), "processor_limit": round(limit, 1),
                    "cold_executing": float(executing.group(1)) if executing else None,
                    "cold_workers": int(executing.group(2)) if executing else None,
                    "cold_pages": float(pages_phase.group(1)) if pages_phase else None,
                    "clone_build": round(clone, 1), "noop_rebuild": round(noop, 1), "one_csv_rebuild": round(one_csv, 1),
                    "title_rebuild": round(title, 1), "check_runs": check_runs, "tests_runs": tests_runs, "tests_cpu": tests_cpu},
        "check_passed": check_passed,
        "tests_passed": tests_passed,
        "edited_csv": EDITED[0],
        "title_rebuild_executed": title_executed,
        "executions": executions,
        "growth": growth_rows,
        "ratios": {"cold_over_limit": round(cold / limit, 2), "one_csv_over_cold": round(one_csv / cold, 2)},
        "pages": page_rows,
        "targets": TARGETS,
    }
    heaviest = max(page_rows, key=lambda r: r["bytes"])
    slowest = max(page_rows, key=lambda r: r["charts_drawn_after_load_seconds"])
    median = statistics.median
    checks = [
        ("cold build / processor limit", result["ratios"]["cold_over_limit"], TARGETS["cold_over_limit"]),
        ("no-op rebuild, s", noop, TARGETS["noop_seconds"]),
        ("one-CSV rebuild / cold", result["ratios"]["one_csv_over_cold"], TARGETS["one_csv_over_cold"]),
        ("chapters executed after a title change", title_executed, TARGETS["title_executions"]),
        ("make check, s (median)", median(check_runs) if check_runs else None, TARGETS["check_seconds"]),
        ("make test, s (median)", median(tests_runs) if tests_runs else None, TARGETS["tests_seconds"]),
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
    print(f"cold {cold:.1f} s against a processor limit of {limit:.1f} s (x{result['ratios']['cold_over_limit']}); "
          f"clone {clone:.1f} s; no-op {noop:.1f} s; one CSV {one_csv:.1f} s")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
