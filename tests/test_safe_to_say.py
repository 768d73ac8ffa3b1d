"""The "What you can safely say" page: every statement is guarded, so data that falsify one stop
the chapter with a message quoting it (executed directly, without a whole book build)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import ROOT, VENV

CHAPTER = ROOT / "chapters" / "safe_to_say.ipynb"


def _execute(data_dir, tmp_path) -> subprocess.CompletedProcess:
    copy = tmp_path / "chapters" / "safe_to_say.ipynb"
    copy.parent.mkdir(parents=True)
    shutil.copy2(CHAPTER, copy)
    env = dict(os.environ, TIPLINE_DATA=str(data_dir))
    return subprocess.run([str(VENV / "bin" / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                           "--output", str(tmp_path / "out.ipynb"), str(copy)],
                          cwd=copy.parent, env=env, capture_output=True, text=True, timeout=300)


def test_every_statement_is_glued_through_a_guard():
    import nbformat

    book = nbformat.read(CHAPTER, as_version=4)
    code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    # each statement of the table is produced by claim(), never by a bare say()
    assert code.count('claim("sts_s') >= 8, "fewer than eight guarded statements"
    assert 'say("sts_s' not in code


@pytest.mark.full
def test_a_statement_the_data_no_longer_support_stops_the_page(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    feedback = data / "feedback.csv"
    text = feedback.read_text()
    # 2023 ICAC feedback raised above 2020's rate: "feedback ... fell" becomes false
    assert "2023,icac,312343," in text
    feedback.write_text(text.replace("2023,icac,312343,", "2023,icac,912343,"))
    result = _execute(data, tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "FalseSentence" in output and "sts_s9" in output and "feedback instances per 100" in output
