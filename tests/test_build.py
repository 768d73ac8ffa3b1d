"""The README build command: a clean build passes -n -W, a broken chapter publishes nothing,
and an edited CSV shows up in prose, tables and charts on the next build."""
from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest

from conftest import ROOT, VENV, copy_built, make_book


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


def test_an_edited_csv_changes_prose_tables_and_charts(built_site, tmp_path):
    repo = copy_built(built_site, tmp_path / "book")
    unchanged = make_book(repo)
    assert unchanged.returncode == 0 and "_build/html is up to date" in unchanged.stdout, unchanged.stdout[-2000:]
    page = repo / "_build" / "html" / "chapters" / "01_referral.html"
    assert "816,361" in page.read_text()
    csv = repo / "data" / "recipients.csv"
    csv.write_text(csv.read_text().replace("2024,icac,actionable,816361", "2024,icac,actionable,826361"))
    second = make_book(repo)
    assert second.returncode == 0, second.stdout[-2000:]
    # only the chapters that read recipients.csv were executed again
    first_line = next(line for line in second.stdout.splitlines() if line.startswith(("data ", "inputs ", "first build")))
    assert first_line.startswith("data changed: re-executing"), first_line
    assert "01_referral" in first_line and "summary" in first_line
    assert "02_reporters" not in first_line and "05_platforms_policy" not in first_line
    html = page.read_text()
    assert "826,361" in html and "816,361" not in html, "prose still shows the old value"
    specs = re.findall(r'tiplineEmbed\("[^"]+", (\{.*?\})\);</script>', html)
    values = [row.get("reports") for spec in specs for data in json.loads(spec.replace("<\\/", "</")).get("datasets", {}).values() for row in data]
    assert 826361 in values and 816361 not in values, "chart data still shows the old value"
    summary = (repo / "_build" / "html" / "chapters" / "summary.html").read_text()
    assert "826,361" in summary


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
            target = (page.parent / unquote(parts.path)).resolve()
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
