"""Sphinx extension: the benchmark's figures (scripts/benchmark.json, written by `make bench`) in the
reproducibility appendix, read when the pages are built, not when the chapter executes.

So a new benchmark changes no chapter's stamp and forces no re-execution or notebook commit: the
page is read again because it depends on the file (Sphinx notes the dependency), and `make book`
counts the file among the site's inputs. The appendix writes

* {bench}`cold` for a sentence or figure (`sentences()` holds every one, by name),
* a `bench-table` directive (`checks`, `growth`) for a table, and `bench-chart` for the page-weight
  chart with its data table and source line.

Sentences that state a comparison are computed from the figures and checked: one the figures do not
support stops the build, naming the file and the sentence (tipline.presentation.text.FalseSentence).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from docutils import nodes
from docutils.parsers.rst import Directive

from ..presentation.text import FalseSentence

FILE = "scripts/benchmark.json"


def _claim(name: str, sentence: str, holds: bool) -> str:
    if not holds:
        raise FalseSentence(f"{FILE}: the figures no longer support the sentence {name!r}: \u201c{sentence}\u201d")
    return sentence


def _pick(value: float, above: str, below: str, equal: str) -> str:
    return above if value > 0 else below if value < 0 else equal


def _median(runs: list | None) -> float | None:
    return float(np.median(runs)) if runs else None


def sentences(bench: dict) -> dict[str, str]:
    """Every sentence and figure the appendix shows, by the name its {bench} role uses."""
    machine, seconds, targets = bench["machine"], bench["seconds"], bench["targets"]
    cores = machine["cores"]
    said = {"when": bench["measured"],
            "machine": f"{cores} cores, {machine['memory_gib']:g} GiB, {machine['cpu']}, Python {machine['python']}, {machine['system']}"}
    start, end = machine.get("load_average"), machine.get("load_average_end")
    ending = "" if end is None else f" and {end:.1f} when it ended"
    said["load"] = ("The machine's load was not recorded in this run." if start is None else _pick(
        start - cores,
        above=f"The machine was shared while the benchmark ran: its load average was {start:.1f} when the run began{ending}, "
              f"on {cores} cores, so timings include waiting for other work.",
        below=f"Its load average was {start:.1f} when the run began{ending}, on {cores} cores.",
        equal=f"Its load average was {start:.1f} when the run began{ending}, on {cores} cores."))
    cold, cpu, ratio_target = seconds.get("cold_build"), seconds.get("cold_build_cpu"), targets.get("cold_over_limit")
    said["cold"] = "was not measured" if cold is None else f"took {cold:.1f} s"
    if cold is None or cpu is None or ratio_target is None:
        said["cold_cpu"] = "Its processor time was not compared with its time in this run."
    else:
        limit = cpu / cores
        ratio = cold / limit
        said["cold_cpu"] = _claim("cold_cpu", f"It used {cpu:.1f} s of processor time (the driver, every kernel and Sphinx together), "
                                  f"so on {cores} cores it could not take less than {limit:.1f} s; it took {ratio:.2f} times that, "
                                  + _pick(ratio_target - ratio, above="within", below="above", equal="exactly at")
                                  + f" the target of {ratio_target:g} times.", cold >= limit)
    executing, pages = seconds.get("cold_executing"), seconds.get("cold_pages")
    workers = seconds.get("cold_workers") or cores  # figures measured before it was recorded: one worker per core
    said["phases"] = "" if cold is None or executing is None or pages is None else _claim(
        "phases", f"The chapters took {executing:.1f} s executing on {workers} workers, and the pages {pages:.1f} s after them, "
        "in one Sphinx process.", executing + pages <= cold)

    def took(key: str) -> str:
        return "was not measured" if seconds.get(key) is None else f"took {seconds[key]:.1f} s"

    said["clone"], said["noop"], said["csv"] = took("clone_build"), took("noop_rebuild"), took("one_csv_rebuild")
    said["csv_name"] = bench.get("edited_csv", "one CSV")
    said["csv_ratio"] = ("" if cold is None or seconds.get("one_csv_rebuild") is None else
                         f" ({seconds['one_csv_rebuild'] / cold:.2f} of a cold build)")
    runs = bench.get("title_rebuild_executed")
    said["title"] = ("was not measured" if seconds.get("title_rebuild") is None else
                     f"took {seconds['title_rebuild']:.1f} s and executed " + ("no chapter" if runs == 0 else f"{runs} chapters"))
    for name, label in (("check", "make check"), ("tests", "make test")):
        measured = seconds.get(f"{name}_runs") or []
        passed = bench.get(f"{name}_passed")
        target = targets.get(f"{name}_seconds")
        said[name] = (f"{label} was not timed in this run." if not measured else
                      f"{label} took {_median(measured):.0f} s (the median of {len(measured)} "
                      f"{'run' if len(measured) == 1 else 'runs'}: {', '.join(f'{run:.0f}' for run in measured)} s), "
                      + ("every test passing" if passed else "and did not pass")
                      + ("." if target is None else f", against a target of {target:g} s."))
    tests_cpu = seconds.get("tests_cpu")
    said["tests_cpu"] = "" if tests_cpu is None or not seconds.get("tests_runs") else _claim(
        "tests_cpu", f"While it ran, the machine's processors were busy for {tests_cpu:.0f} s per run, so on {cores} cores "
        f"it could not take less than {tests_cpu / cores:.0f} s.", _median(seconds["tests_runs"]) >= tests_cpu / cores * 0.98)
    checks = pd.DataFrame(bench["checks"])
    missed = checks.loc[checks["met"].eq(False), "measure"].tolist()
    unmeasured = checks.loc[checks["met"].isna(), "measure"].tolist()
    said["missed"] = ("Every measured target was met." if not missed else
                      ("One target was" if len(missed) == 1 else f"{len(missed)} targets were") + " missed: " + "; ".join(missed) + ".")
    said["unmeasured"] = "" if not unmeasured else "Not measured in this run: " + "; ".join(unmeasured) + "."
    growth = pd.DataFrame(bench.get("growth") or [])
    if len(growth) > 1:
        serial = np.polyfit(growth["chapters"], growth["serial_seconds"], 1)[0]
        parallel = np.polyfit(growth["chapters"], growth["parallel_seconds"], 1)[0]
        said["sizes"] = ", ".join(str(n) for n in growth["chapters"][:-1]) + f" and {growth['chapters'].iloc[-1]}"
        said["growth"] = (f"Fitted by least squares, each added chapter cost {serial:.2f} s with one worker and {parallel:.2f} s "
                          f"with {int(growth['workers'].iloc[0])} workers, or {parallel / serial:.2f} of the serial cost per chapter. "
                          + _pick(serial - parallel, above="Executing in parallel made each chapter cheaper.",
                                  below="Executing in parallel made each chapter dearer on this machine.",
                                  equal="Executing in parallel did not change the cost of a chapter."))
    else:
        said["sizes"], said["growth"] = "several", "The synthetic books were not built in this run."
    pages = pd.DataFrame(bench["pages"])
    said["heaviest"] = f"{pages['bytes'].max() / 1e6:.2f} MB"
    said["heaviest_raw"] = f"{pages['uncompressed_bytes'].max() / 1e6:.2f} MB"
    said["slowest"] = f"{pages['charts_drawn_after_load_seconds'].max():.2f} s"
    goal = targets.get("page_megabytes", 1.2)
    over = pages.loc[pages["bytes"] / 1e6 > goal, "page"].str.removeprefix("chapters/").str.removesuffix(".html").tolist()
    said["over_goal"] = (f"Every page sends at most {goal:g} MB compressed." if not over else
                         ("One page sends" if len(over) == 1 else f"{len(over)} pages send") + f" more than {goal:g} MB compressed ("
                         + ", ".join(over) + "); the page-weight test (tests/test_readers.py) holds each page to its stated limit.")
    return said


def tables(bench: dict) -> dict[str, pd.DataFrame]:
    checks = pd.DataFrame(bench["checks"])
    checks = pd.DataFrame({"Measure": checks["measure"],
                           "Value": checks["value"].map(lambda v: "—" if v is None or v != v else f"{v:.2f}"),
                           "Target": checks["target"].map(lambda v: f"{v:g}"),
                           "Met": checks["met"].map({True: "yes", False: "no"}).fillna("not measured")})
    growth = pd.DataFrame(bench.get("growth") or [], columns=["chapters", "serial_seconds", "parallel_seconds", "workers"])
    growth = pd.DataFrame({"Chapters": growth["chapters"], "Serial build, s": growth["serial_seconds"].map("{:.1f}".format),
                           "Parallel build, s": growth["parallel_seconds"].map("{:.1f}".format), "Workers": growth["workers"],
                           "Parallel / serial": (growth["parallel_seconds"] / growth["serial_seconds"]).map("{:.2f}".format)})
    return {"checks": checks, "growth": growth}


def page_weight_chart(bench: dict, titles: dict[str, str]) -> str:
    """The page-weight chart as the book's renderer writes it (placeholder, spec, data table)."""
    import altair as alt

    from ..presentation import charts

    weights = pd.DataFrame(bench["pages"])
    weights["page_name"] = weights["page"].map(lambda page: titles.get(page.removeprefix("chapters/").removesuffix(".html"), page))
    weights["megabytes"] = (weights["bytes"] / 1e6).round(3)
    weights["uncompressed"] = (weights["uncompressed_bytes"] / 1e6).round(3)
    weights = weights[["page_name", "charts", "requests", "megabytes", "uncompressed", "charts_drawn_after_load_seconds"]]
    charts.setup()  # the book's theme and renderer
    chart = alt.Chart(weights, description="Bars: bytes downloaded by a first-time reader for each page, served compressed.").mark_bar().encode(
        y=alt.Y("page_name:N", sort="-x", title=None),
        x=alt.X("megabytes:Q", title="Megabytes downloaded (compressed)"),
        color=alt.condition("datum.charts > 0", alt.value("#1f5a96"), alt.value("#9ab8d8")),
        tooltip=[alt.Tooltip("page_name:N", title="Page"), alt.Tooltip("charts:Q", title="Charts"),
                 alt.Tooltip("requests:Q", title="Requests"),
                 alt.Tooltip("megabytes:Q", format=".2f", title="MB downloaded (compressed)"),
                 alt.Tooltip("uncompressed:Q", format=".2f", title="uncompressed MB"),
                 alt.Tooltip("charts_drawn_after_load_seconds:Q", format=".2f", title="charts drawn after load (s)")],
    ).properties(width="container", height=320, title="Page weight for a first-time reader")
    return alt.renderers.get()(chart.to_dict())["text/html"]


SOURCE = ('<p class="tipline-source"><strong>Source:</strong> measured by <code>scripts/bench.py</code> (<code>make bench</code>) '
          'on the machine named above. <strong>Data:</strong> <a href="../data/benchmark.json" download>benchmark.json</a>.</p>')


def _bench(env) -> dict | None:
    path = Path(env.srcdir) / FILE
    env.note_dependency(str(path))  # the page is read again when a new benchmark is written
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _titles(env) -> dict[str, str]:
    """Each page's first heading, from its source (the chart shows titles, not file names)."""
    import nbformat

    titles = {"index": "Start page (redirect)"}
    for path in sorted((Path(env.srcdir) / "chapters").iterdir()):
        if path.suffix not in (".ipynb", ".md"):
            continue
        text = path.read_text(encoding="utf-8") if path.suffix == ".md" else "\n".join(
            cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown")
        titles[path.stem] = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), path.stem)
    return titles


def bench_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    bench = _bench(inliner.document.settings.env)
    if bench is None:
        return [nodes.Text("(not measured: there is no scripts/benchmark.json)")], []
    said = sentences(bench)
    if text not in said:
        message = inliner.reporter.error(f"{FILE}: no benchmark sentence {text!r}; known: {', '.join(sorted(said))}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    return [nodes.Text(said[text])], []


class BenchTable(Directive):
    required_arguments = 1
    CAPTIONS = {"checks": "the latest benchmark against its targets, measured {when} on {machine}.",
                "growth": "cold builds of synthetic books made of {sizes} renamed copies of the chapters, with one worker "
                          "and with the build's default of one more worker than there are cores, measured in the same run."}

    def run(self):
        from ..presentation.tables import table

        bench = _bench(self.state.document.settings.env)
        if bench is None:
            return []
        name = self.arguments[0]
        # the book's one table writer: every cell and the caption escaped, the caption inside the table
        written = table(tables(bench)[name], caption=self.CAPTIONS[name].format(**sentences(bench)))
        # scrolls sideways on a narrow screen, as the theme's own tables do
        return [nodes.raw("", '<div class="pst-scrollable-table-container">' + written.html + "</div>", format="html")]


class BenchChart(Directive):
    def run(self):
        env = self.state.document.settings.env
        bench = _bench(env)
        if bench is None:
            return []
        return [nodes.raw("", page_weight_chart(bench, _titles(env)), format="html"), nodes.raw("", SOURCE, format="html")]


def setup(app):
    app.add_role("bench", bench_role)
    app.add_directive("bench-table", BenchTable)
    app.add_directive("bench-chart", BenchChart)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
