"""The "What you can safely say" page: every statement is guarded, so data that falsify one stop
the chapter with a message quoting it (tests/test_prose.py executes it against such data)."""
from __future__ import annotations

from helpers import ROOT

CHAPTER = ROOT / "chapters" / "safe_to_say.ipynb"


def test_every_statement_is_glued_through_a_guard():
    import nbformat

    book = nbformat.read(CHAPTER, as_version=4)
    code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    # each statement of the table is produced by claim(), never by a bare say()
    assert code.count('claim("sts_s') >= 8, "fewer than eight guarded statements"
    assert 'say("sts_s' not in code
