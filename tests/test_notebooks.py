"""Notebook hygiene, glued prose, and proof that nbval notices a changed CSV."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
# a number in prose may be a year, a single digit or a rate base ("per 100"); anything else is glued
TYPED_NUMBER = re.compile(r"(?<![\w`/.,-])(?!(?:19|20)\d\d(?!\d|,\d|\.\d))(?!(?:100|1,000|10,000)(?!\.\d|[\d,%]| ?percent))\d[\d,]*(?:\.\d+)?(?:\s*(?:%|percent|per cent|million|billion)|\d)")


def _markdown(book):
    return "\n".join(c.source for c in book.cells if c.cell_type == "markdown")


def test_every_toc_chapter_is_a_notebook_or_page():
    toc = (ROOT / "_toc.yml").read_text()
    for name in re.findall(r"file: (chapters/\S+)", toc) + [re.search(r"root: (\S+)", toc).group(1)]:
        assert (ROOT / f"{name}.ipynb").exists() or (ROOT / f"{name}.md").exists(), name
    assert len(NOTEBOOKS) >= 9


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_executed_in_order_with_outputs(path):
    book = nbformat.read(path, as_version=4)
    counts = [c.execution_count for c in book.cells if c.cell_type == "code"]
    assert counts and None not in counts, "a code cell was never executed (nbval would skip it)"
    assert counts == list(range(1, len(counts) + 1)), f"cells not executed in order: {counts}"
    for cell in book.cells:
        if cell.cell_type == "code" and "chapter(" not in cell.source:
            assert cell.outputs, f"code cell without output: {cell.source[:60]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_chapter_names_itself_so_its_data_is_tracked(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert f'chapter("{path.stem}")' in first.source, "the first cell must call chapter() with the file name"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_numbers_are_glued(path):
    book = nbformat.read(path, as_version=4)
    prose = _markdown(book)
    glued = set(re.findall(r"\{glue:text\}`([^`]+)`", prose))
    # say() glues a value; claim() and pick() glue sentences and words (tipline.presentation.text)
    defined = set(re.findall(r"(?:say|claim|pick)\(\s*f?[\"']([^\"'{]+)", "\n".join(c.source for c in book.cells if c.cell_type == "code")))
    templated = re.findall(r"(?:say|claim|pick)\(\s*f[\"']([^\"']*)\{", "\n".join(c.source for c in book.cells if c.cell_type == "code"))
    for name in glued:
        assert name in defined or any(name.startswith(t) for t in templated), f"{name} is never glued"
    stripped = re.sub(r"\{[a-z:]+\}`[^`]*`|`[^`]*`|\(\.\./[^)]*\)|\[[^\]]*\]\([^)]*\)", "", prose)
    typed = TYPED_NUMBER.findall(stripped)
    assert not typed, f"numbers typed into prose instead of glued: {typed}"


@pytest.mark.full
def test_nbval_fails_when_a_csv_value_changes(tmp_path, edited_data):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    shutil.copy(ROOT / "chapters" / "01_referral.ipynb", chapters)
    data = edited_data.path
    edited_data.replace("recipients.csv", "2024,icac,actionable,816361", "2024,icac,actionable,816362")
    report = tmp_path / "report.xml"
    command = [sys.executable, "-m", "pytest", "--nbval", "-p", "no:cacheprovider", "-o", "addopts=", "-q", f"--junitxml={report}", str(chapters)]
    env = dict(os.environ, TIPLINE_DATA=str(data))
    changed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert changed.returncode == 1, changed.stdout[-2000:]
    assert "816,362" in changed.stdout or "816362" in changed.stdout
    # every cell that fails does so because its outputs differ, not because it raised: read from
    # pytest's own report, not from its console (whose summary lines repeat a message or not by width)
    cells = ElementTree.parse(report).getroot().iter("testcase")
    outcomes = [[child for child in cell if child.tag in ("failure", "error", "skipped")] for cell in cells]
    failed = [outcome[0] for outcome in outcomes if outcome]
    assert failed, changed.stdout[-2000:]
    assert all(f.tag == "failure" and "Cell outputs differ" in (f.text or "") + f.get("message", "") for f in failed), changed.stdout[-3000:]
    # the control: the same copy, with the value back, passes (nbval has no sanitizing rules: every
    # output of every chapter must come out the same on every run)
    edited_data.replace("recipients.csv", "2024,icac,actionable,816362", "2024,icac,actionable,816361")
    unchanged = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert unchanged.returncode == 0, unchanged.stdout[-2000:]


def test_every_code_cell_is_hidden_or_removed():
    """Readers see a chapter's code only on request ("Show code cell source"), as in every chapter."""
    import glob

    import nbformat

    shown = [f"{Path(path).name}, cell {index}"
             for path in sorted(glob.glob(str(ROOT / "chapters" / "*.ipynb")))
             for index, cell in enumerate(nbformat.read(path, as_version=4).cells)
             if cell.cell_type == "code" and not {"remove-cell", "hide-input", "remove-input"} & set(cell.metadata.get("tags", []))]
    assert not shown, "code shown to readers without a tag: " + "; ".join(shown)


# a chapter tells the story and calls the package: its analysis and chart code live in tipline/
MAX_CODE_LINES = 150


def chapter_problems(book) -> list[str]:
    """More than MAX_CODE_LINES non-blank lines of code (comments count), or a table shown through
    pandas' Styler instead of tipline.presentation.tables (the Styler leaves cell text unescaped
    unless each call asks otherwise)."""
    code = [cell.source for cell in book.cells if cell.cell_type == "code"]
    lines = sum(1 for source in code for line in source.splitlines() if line.strip())
    problems = [f"{lines} lines of code: move analysis or charts into tipline/"] if lines > MAX_CODE_LINES else []
    return problems + [f"a table through pandas' Styler: {source[:80]!r}" for source in code if re.search(r"\.style\b", source)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_chapter_holds_prose_and_calls_not_the_analysis(path):
    assert not chapter_problems(nbformat.read(path, as_version=4))


def test_the_chapter_check_sees_long_code_and_a_styler():
    code = nbformat.v4.new_code_cell
    assert not chapter_problems(nbformat.v4.new_notebook(cells=[code("x = 1\n\n" * (MAX_CODE_LINES - 1) + "# styles.stylesheet")]))
    long = nbformat.v4.new_notebook(cells=[code("x = 1\n" * (MAX_CODE_LINES + 1))])
    assert chapter_problems(long) == [f"{MAX_CODE_LINES + 1} lines of code: move analysis or charts into tipline/"]
    styled = nbformat.v4.new_notebook(cells=[code('versions.style.hide(axis="index")')])
    assert len(chapter_problems(styled)) == 1 and "Styler" in chapter_problems(styled)[0]
