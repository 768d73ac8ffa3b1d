"""The README build command: a clean build passes -n -W, a broken chapter publishes nothing,
an edited CSV shows up in prose, tables and charts on the next build (and only the chapters that
read it execute), an interrupted build leaves the previous site byte for byte, a CSV reverted after
an interrupt is published everywhere, a title change executes nothing, and an edited sources.csv
reaches the bibliography page."""
from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest

import conftest
from conftest import ROOT, VENV, book_command, copy_built, make_book


def executed(output: str) -> set[str]:
    """The chapters a build executed, from its progress lines ("executing 3/14 02_reporters ... 1.8 s")."""
    return set(re.findall(r"^executing \d+/\d+ (\S+) \.\.\. ", output, re.M))


def test_clean_build_has_every_page_and_the_data(built_site):
    pages = {p.relative_to(built_site).as_posix() for p in built_site.rglob("*.html")}
    for name in ["summary", "01_referral", "02_reporters", "03_urgency", "04_jurisdiction",
                 "05_platforms_policy", "06_interpretations", "best_inference", "appendix_data", "appendix_reproducibility",
                 "appendix_claims", "appendix_dive_arrests", "appendix_dive_encryption", "appendix_dive_triage", "bibliography"]:
        assert f"chapters/{name}.html" in pages
    assert (built_site / "data" / "recipients.csv").exists()
    assert (built_site / "_static" / "tipline-charts.js").exists()
    assert not (built_site / "reports").exists() or not any((built_site / "reports").iterdir()), "execution tracebacks were published"


def _break_chapter(repo: Path) -> None:
    path = repo / "chapters" / "03_urgency.ipynb"
    book = nbformat.read(path, as_version=4)
    book.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('deliberately broken chapter')"))
    nbformat.write(book, path)


def _break_dataset(repo: Path) -> None:
    path = repo / "data" / "recipients.csv"
    path.write_text(path.read_text().replace("2023,icac,actionable,670491", "2023,icac,actionable,67O491"))


@pytest.mark.parametrize("breakage", [_break_chapter, _break_dataset], ids=["chapter", "dataset"])
def test_a_broken_chapter_or_dataset_fails_the_build_and_publishes_nothing(built_site, tmp_path, breakage):
    # start from a published book: a failed rebuild must take the old site down too
    repo = copy_built(built_site, tmp_path / "book")
    assert (repo / "_build" / "html" / "index.html").exists()
    breakage(repo)
    result = make_book(repo)
    assert result.returncode != 0
    assert "BUILD FAILED" in result.stderr
    assert not (repo / "_build" / "html").exists()
    if breakage is _break_dataset:
        assert "recipients.csv, line" in result.stdout + result.stderr
    else:  # the failing chapter is named, with its traceback
        assert "chapter 03_urgency failed" in result.stderr and "deliberately broken chapter" in result.stderr


def stale(output: str) -> dict[str, str]:
    """Why each stale chapter must execute, from the build's reason lines
    ("  data changed: recipients, sources: 01_referral, summary")."""
    reasons = {}
    for line in re.findall(r"^  (.+: .+)$", output.split("\nexecuting ")[0], re.M):
        why, names = line.rsplit(": ", 1)
        reasons.update(dict.fromkeys(names.split(", "), why))
    return reasons


def test_an_edited_csv_changes_prose_tables_and_charts(built_site, edited_book):
    # the session's edited copy (conftest.edit_copy): recipients.csv's 2024 ICAC value, plus
    # independent edits of sources.csv, assumptions.csv and policy_events.csv checked elsewhere
    assert "_build/html is up to date" in edited_book.unchanged, edited_book.unchanged[-2000:]
    assert "816,361" in (built_site / "chapters" / "01_referral.html").read_text()
    second = edited_book.stdout
    # every chapter executed for exactly the edited datasets it read (its record lists what it
    # read), and only the stale chapters executed
    ran, reasons = executed(second), stale(second)
    assert ran == set(reasons), (ran, reasons)
    records = edited_book.repo / "_build" / ".records"
    for chapter in sorted(records.glob("*.json")):
        read = set(json.loads(chapter.read_text())["datasets"])
        why = reasons.get(chapter.stem)
        expected = sorted(read & conftest.EDITED_DATASETS)
        assert why == ("data changed: " + ", ".join(expected) if expected else None), (chapter.stem, why, expected)
    recipients = {name for name, why in reasons.items() if "recipients" in why.split(": ", 1)[1].split(", ")}
    # so the chapters that read recipients.csv executed because of it, the others did not
    assert "01_referral" in recipients and "summary" in recipients, second[-2000:]
    assert "02_reporters" not in recipients and "05_platforms_policy" not in recipients, reasons
    # a chapter that read none of the edited datasets did not execute
    assert "appendix_reproducibility" not in ran, ran
    html = edited_book.page("01_referral")
    assert "826,361" in html and "816,361" not in html, "prose still shows the old value"
    from tipline.presentation.charts import specs as chart_specs

    values = [row.get("reports") for spec in chart_specs(html).values() for data in spec.get("datasets", {}).values() for row in data]
    assert 826361 in values and 816361 not in values, "chart data still shows the old value"
    assert "826,361" in edited_book.page("summary")


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append(attrs[key])


def test_no_broken_internal_links(built_site):
    broken = []
    for page in built_site.rglob("*.html"):
        if "_static" in page.relative_to(built_site).parts:  # theme templates, not pages
            continue
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            parts = urlparse(link)
            if parts.scheme or link.startswith(("#", "mailto:", "//")) or not parts.path:
                continue
            # the 404 page is served at any address, so its links are absolute from the site's root
            target = ((built_site if parts.path.startswith("/") else page.parent) / unquote(parts.path).lstrip("/")).resolve()
            if not target.exists():
                broken.append(f"{page.relative_to(built_site)} -> {link}")
    assert not broken, "\n".join(broken[:20])


def test_workflow_passes_actionlint():
    result = subprocess.run([str(VENV / "bin" / "actionlint"), "-no-color"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list((ROOT / ".github" / "workflows").glob("*.yml"))


def test_citation_file_describes_the_book():
    import yaml

    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors", "version", "date-released"):
        assert citation.get(key), f"CITATION.cff lacks {key}"
    assert citation["cff-version"] == "1.2.0"
    assert all(a.get("name") or a.get("family-names") for a in citation["authors"])
    project = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{citation["version"]}"' in project, "CITATION.cff and pyproject.toml disagree on the version"
    title = re.search(r'^title: "([^"]+)"', (ROOT / "_config.yml").read_text(), re.M).group(1)
    assert citation["title"].startswith(title)


def test_every_chart_has_a_source_line_and_a_data_link(built_site):
    for page in sorted((built_site / "chapters").glob("*.html")):
        html = page.read_text()
        charts_ = html.count('class="tipline-chart"')
        notes = re.findall(r'<(?:p|div) class="tipline-source">.*?</p>', html, re.S)
        assert len(notes) >= charts_, f"{page.name}: {charts_} charts but {len(notes)} source lines"
        for note in notes:
            link = re.search(r'href="\.\./data/([^"]+)" download', note)
            assert link and (built_site / "data" / link.group(1)).exists(), f"{page.name}: source line without a data link"


def _snapshot(site: Path) -> dict[str, str]:
    import hashlib

    return {p.relative_to(site).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(site.rglob("*")) if p.is_file()}


def _interrupt(repo: Path, when: str, signum: int, sphinx_log: str | None = None) -> tuple[int, str]:
    """Run `make book` as a terminal would (its own process group) and send `signum` to the
    whole group as soon as a line of its output starts with `when` (and, if given, Sphinx's log
    in _build/sphinx.log contains `sphinx_log`)."""
    import os
    import time

    command, env = book_command(repo)
    process = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(when):
            log = repo / "_build" / "sphinx.log"
            deadline = time.time() + 120
            while sphinx_log and time.time() < deadline and not (log.exists() and sphinx_log in log.read_text()):
                time.sleep(0.02)
            os.killpg(process.pid, signum)
            break
    rest, _ = process.communicate(timeout=120)
    return process.returncode, "".join(lines) + rest


def test_an_interrupt_keeps_the_old_site_and_a_reverted_csv_is_published_everywhere(built_site, tmp_path):
    """The issue's scenario: edit a CSV, interrupt the build after some chapters executed with the
    new value, revert the CSV, make an unrelated edit, build: every page shows the current value."""
    import signal

    repo = copy_built(built_site, tmp_path / "book")
    site = repo / "_build" / "html"
    before = _snapshot(site)
    csv = repo / "data" / "recipients.csv"
    original = csv.read_text()
    csv.write_text(original.replace("2024,icac,actionable,816361", "2024,icac,actionable,826361"))
    status, output = _interrupt(repo, "executing 2/", signal.SIGTERM)
    assert status != 0 and "interrupted (SIGTERM)" in output, output[-3000:]
    assert _snapshot(site) == before, "the interrupted build changed the published site"
    with_new_value = executed(output)
    assert len(with_new_value) >= 2, output[-3000:]

    csv.write_text(original)  # the revert
    chapter = repo / "chapters" / "03_urgency.ipynb"  # the unrelated edit: prose only
    book = nbformat.read(chapter, as_version=4)
    book.cells.append(nbformat.v4.new_markdown_cell("A sentence added after the interrupted build."))
    nbformat.write(book, chapter)
    final = make_book(repo)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    again = executed(final.stdout)
    # the chapters cached with the reverted value ran again; the others came from the cache
    assert with_new_value <= again, (with_new_value, again)
    assert "02_reporters" not in again and "03_urgency" not in again, again
    pages = {p.name: p.read_text() for p in (site / "chapters").glob("*.html")}
    assert not [name for name, html in pages.items() if "826,361" in html or "826361" in html]
    assert "816,361" in pages["01_referral.html"] and "816,361" in pages["summary.html"]
    assert "A sentence added after the interrupted build." in pages["03_urgency.html"]


def test_a_title_change_rebuilds_pages_without_executing_and_an_interrupted_sphinx_keeps_the_site(built_site, tmp_path):
    import signal

    repo = copy_built(built_site, tmp_path / "book")
    site = repo / "_build" / "html"
    before = _snapshot(site)
    config = repo / "_config.yml"
    config.write_text(re.sub(r'^title: .*$', 'title: "A retitled book"', config.read_text(), flags=re.M))
    # no chapter executes, so the signal arrives while Sphinx reads and writes the pages
    chapters = len(list((repo / "chapters").glob("*.ipynb")))
    status, output = _interrupt(repo, f"{chapters} chapters: 0 to execute", signal.SIGINT, sphinx_log="reading sources")
    assert status != 0 and "interrupted (SIGINT)" in output, output[-3000:]
    assert _snapshot(site) == before, "the interrupted build changed the published site"
    result = make_book(repo)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "0 to execute" in result.stdout and not executed(result.stdout), result.stdout[-2000:]
    for page in (site / "chapters").glob("*.html"):
        assert "A retitled book" in page.read_text(), page.name


def test_editing_sources_csv_updates_the_bibliography_page(edited_book):
    # the session's edited copy retitled one entry of data/sources.csv (conftest.SOURCE_TITLE)
    old, new = conftest.SOURCE_TITLE
    assert (ROOT / "data" / "sources.csv").read_text().count(old) == 1
    assert old in (ROOT / "references.bib").read_text()
    assert "CY 2023 Retitled Report" in (edited_book.repo / "references.bib").read_text()
    assert "CY 2023 Retitled Report" in edited_book.page("bibliography")


def test_readme_states_the_measured_times():
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import bench

    result = json.loads((ROOT / "scripts" / "benchmark.json").read_text())
    assert bench.readme_sentence(result) in (ROOT / "README.md").read_text(), "run: python scripts/bench.py --readme"
