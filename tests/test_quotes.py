"""Every quotation on every page is a row of the quotation ledger, data/quotes.csv, word for word.

* Each row's text is part of the passage it was read in, and that passage still has the digest
  taken when it was read: editing a quotation, or its passage, without reading the source again
  fails here and stops the build (tipline.evidence.validate).
* Where NCMEC's PDF text is on this machine (../shared/sources/ncmec beside the repository, or the
  folder TIPLINE_NCMEC_TEXT names), each `pdf_text` row's passage is found on the page its locator
  cites. The CI machine has no such folder: there the digests stand in for the text, which is why
  a row's digest is taken from the passage as read and never recomputed by a tool.
* Every quotation a chapter asks for exists, and every row of the ledger is used.
* No chapter types a quotation: its prose, and the sentences its code glues, put quotation marks
  only around the book's own words (OWN_WORDS, each with the reason it is not a quotation).
* (full) In the built pages, every passage in quotation marks in the visible prose is a ledger
  row's text or one of the book's own words.
"""
from __future__ import annotations

import ast
import csv
import json
import os
import re
from pathlib import Path

import pytest

import tipline
from tipline.evidence import ledger
from tipline.evidence.data import DataError, load

ROOT = Path(tipline.evidence.data.ROOT)
CHAPTERS = ROOT / "chapters"
NCMEC_TEXT = Path(os.environ.get("TIPLINE_NCMEC_TEXT") or ROOT.parent / "shared" / "sources" / "ncmec")
NOT_PROSE = {"changes.md", "bibliography.md"}  # the changelog quotes the book's own former sentences as errata

# Words the book puts in quotation marks that are not a source's words: its own names for things,
# the misreadings it answers, and markers it defines. Each with the reason.
OWN_WORDS = {
    "feature": "the book's name for one reading of the figures (chapter 6)",
    "overload": "the book's name for the other reading (chapter 6)",
    "U.S. jurisdiction": "the book's own term for its denominator",
    "genuine": "the question's word, which the book reads as NCMEC's actionable label",
    "Model": "the name of a column of the claims ledger",
    "no arrest": "the outcome the book counts, named",
    "led to no arrest": "the outcome the book counts, named",
    "never investigated": "the book's name for an outcome of its model",
    "not opened": "the book's name for an outcome of the bottom-up fit",
    "investigated": "the book's name for an outcome of its model",
    "Investigated": "the book's name for an outcome of its model",
    "Never investigated": "the book's name for an outcome of its model",
    "investigated without arrest": "the book's name for an outcome of its model",
    "investigation": "a word whose meanings the model chapter compares",
    "most common": "the question's words",
    "most common outcome": "the question's words",
    "reports reviewed": "the name of a measure in downstream.csv",
    "about": "a marker the table caption defines",
    "more than": "a marker the table caption defines (and a qualifier of counts)",
    "More than": "the same marker at the start of a sentence",
    "Only about one tip in a hundred is investigated.": "a misreading the book answers",
    "Most tips are fake.": "a misreading the book answers",
    "Referral means investigation.": "a misreading the book answers",
    "No arrest means the system failed.": "a misreading the book answers",
    "Show code cell source": "the label of a button of the site",
    "no": "the answer a reader's setting takes (appendix B)",
}
MISREADING = re.compile(r"\{glue:text\}`sts_arrests_per_100` arrests per 100 actionable reports is the arrest rate\.")
QUOTED = re.compile(r"[\u201c\"]([^\u201c\u201d\"\n]+?)[\u201d\"]")
CURLY = re.compile(r"\u201c([^\u201c\u201d]+?)\u201d")
GLUING = {"say", "claim", "pick"}
ASKS = re.compile(r"""\b(?:quote|quoted)\(\s*(?:["'][a-z0-9_]+["'],\s*)?["']([a-z0-9_]+)["']\)|\bquote_all\(\s*["'][a-z0-9_]+["'],\s*\[([^\]]*)\]""")


# ---------------------------------------------------------------- the ledger against its sources

def _normalise(text: str) -> str:
    """PDF text as one line: a word broken at a hyphen across lines joined, every run of space one space."""
    return re.sub(r"\s+", " ", re.sub(r"-\s*\n\s*", "-", text)).strip()


def _ncmec_file(source_id: str) -> Path | None:
    match = re.fullmatch(r"ncmec_(ojjdp|country|esp)_([0-9]{4})", source_id)
    if not match:
        return None
    kind = {"ojjdp": "ojjdp", "country": "by-country", "esp": "by-esp"}[match.group(1)]
    return NCMEC_TEXT / f"ncmec-{kind}-{match.group(2)}.txt"


def ledger_problems(quotes, registry, text_dir: Path | None) -> list[str]:
    """Every way a row of the quotation ledger fails to be its source's exact words."""
    problems = []
    for row in quotes.itertuples(index=False):
        if row.text not in row.context:
            problems.append(f"{row.quote_id}: the quotation is not word for word part of its passage")
        if ledger.digest(row.context) != row.digest:
            problems.append(f"{row.quote_id}: the passage no longer matches the digest taken when it was read")
        if registry.loc[row.source_id, "grade"] != row.grade:
            problems.append(f"{row.quote_id}: grade {row.grade!r}, but sources.csv grades {row.source_id} {registry.loc[row.source_id, 'grade']!r}")
        if row.verified == "pdf_text":
            path = _ncmec_file(row.source_id)
            page = re.match(r"p\. ([0-9]+)", row.locator)
            if path is None or page is None:
                problems.append(f"{row.quote_id}: marked pdf_text, but {row.source_id} / {row.locator!r} names no page of NCMEC's PDF text")
            elif text_dir is not None:
                pages = (text_dir / path.name).read_text().split("\f")
                if _normalise(row.context) not in _normalise(pages[int(page.group(1)) - 1]):
                    problems.append(f"{row.quote_id}: the passage is not on p. {page.group(1)} of {path.name}")
    return problems


def _text_dir():
    return NCMEC_TEXT if NCMEC_TEXT.exists() else None


def test_every_quotation_is_its_sources_words():
    quotes = load("quotes")
    assert len(quotes) > 20 and set(quotes["verified"]) <= {"pdf_text", "stored_page", "unverified"}
    assert ledger_problems(quotes, load("sources").set_index("source_id"), _text_dir()) == []


@pytest.mark.skipif(not NCMEC_TEXT.exists(), reason=f"NCMEC text extractions not found at {NCMEC_TEXT} (the digests check the passages instead)")
def test_the_pdf_passages_are_checked_against_the_text():
    quotes = load("quotes")
    assert (quotes["verified"] == "pdf_text").sum() >= 10


def _altered(quotes, quote_id, **changes):
    altered = quotes.copy()
    index = altered.index[altered["quote_id"] == quote_id][0]
    for column, value in changes.items():
        altered.loc[index, column] = value
    return altered


def test_an_altered_quotation_is_caught():
    quotes, registry = load("quotes"), load("sources").set_index("source_id")
    row = quotes.set_index("quote_id").loc["factually_bundling"]
    # the words the issue found put in this source's mouth
    invented = "NCMEC counts 20.5 million reports in 2024 that represent about 29.2 million incidents"
    found = ledger_problems(_altered(quotes, "factually_bundling", text=invented), registry, None)
    assert found == ["factually_bundling: the quotation is not word for word part of its passage"]
    # quotation and passage edited together, the digest left as it was
    context = row["context"].replace(row["text"], invented)
    found = ledger_problems(_altered(quotes, "factually_bundling", text=invented, context=context), registry, None)
    assert found == ["factually_bundling: the passage no longer matches the digest taken when it was read"]
    # one word changed in a quotation from NCMEC's report, passage and digest made to agree
    pdf = quotes.set_index("quote_id").loc["ncmec_esps_not_consistent"]
    text = pdf["text"].replace("many ESPs", "most ESPs")
    context = pdf["context"].replace(pdf["text"], text)
    altered = _altered(quotes, "ncmec_esps_not_consistent", text=text, context=context, digest=ledger.digest(context))
    assert ledger_problems(altered, registry, None) == []  # without the PDF text only the digest can speak
    if NCMEC_TEXT.exists():
        assert ledger_problems(altered, registry, NCMEC_TEXT) == [
            "ncmec_esps_not_consistent: the passage is not on p. 9 of ncmec-ojjdp-2023.txt"]


def test_the_build_refuses_an_altered_quotation(edited_data):
    copy = edited_data.path
    path = copy / "quotes.csv"
    rows = list(csv.reader(path.open(newline="", encoding="utf-8")))
    line = next(i for i, row in enumerate(rows) if row[0] == "wapo_five_to_eight")
    rows[line][2] = rows[line][2].replace("5 to 8 percent", "5 to 9 percent")
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    with pytest.raises(DataError, match=rf"quotes\.csv, line {line + 1}, column 'text': .*not word for word"):
        tipline.evidence.validate(copy)


# ---------------------------------------------------------------- the chapters take quotations only from the ledger

def _cells(path: Path):
    if path.suffix == ".md":
        yield "markdown", path.read_text(encoding="utf-8")
        return
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        yield cell["cell_type"], "".join(cell["source"])


def _chapters():
    return [p for p in sorted(CHAPTERS.glob("*.ipynb")) + sorted(CHAPTERS.glob("*.md")) if p.name not in NOT_PROSE]


def _strings(code: str):
    """(string, glued) for every string literal in `code`; glued when it is an argument of say/claim/pick."""
    tree = ast.parse(code)
    glued = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in GLUING:
            for argument in node.args[1:] + [k.value for k in node.keywords]:
                glued |= {id(n) for n in ast.walk(argument)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value, id(node) in glued


def hand_typed(kind: str, source: str) -> list[str]:
    """The passages a cell puts in quotation marks that are neither from the ledger nor the book's own words."""
    found = []
    if kind == "markdown":
        spans = QUOTED.findall(MISREADING.sub("", source))
    elif kind == "code":
        spans = []
        for text, glued in _strings(source):
            spans += (QUOTED if glued else CURLY).findall(text)
    else:
        spans = []
    return [span for span in spans if span not in OWN_WORDS]


def test_the_detector_finds_a_typed_quotation():
    assert hand_typed("markdown", 'Secondary sources say: "NCMEC counts 20.5 million reports" {cite:p}`x`.') == [
        "NCMEC counts 20.5 million reports"]
    assert hand_typed("markdown", "The \u201cfeature\u201d reading; {glue:md}`ch5_bundling:myst`.") == []
    assert hand_typed("code", 'say("k", f"a news report, which says \\u201caround\\u201d")') == ["around"]
    assert hand_typed("code", "claim(\"k\", 'the source says \"just 5 to 8 percent\"', True)") == ["just 5 to 8 percent"]
    assert hand_typed("code", "html = '<div class=\"tipline-claim\">'") == []  # markup, not a sentence


def test_no_chapter_types_a_quotation():
    typed = [f"{path.name} cell {number}: \u201c{span}\u201d" for path in _chapters()
             for number, (kind, source) in enumerate(_cells(path)) for span in hand_typed(kind, source)]
    assert not typed, ("quotations typed by hand: put the source's exact words in data/quotes.csv and glue them "
                       "with tipline.presentation.text.quote()\n" + "\n".join(typed))


def test_every_quotation_asked_for_exists_and_every_row_is_used():
    asked = set()
    for path in _chapters():
        for kind, source in _cells(path):
            if kind == "code":
                for single, listed in ASKS.findall(source):
                    asked |= {single} if single else set(re.findall(r"[\"']([a-z0-9_]+)[\"']", listed))
    ids = set(load("quotes")["quote_id"])
    assert asked - ids == set(), "chapters ask for quotations missing from data/quotes.csv"
    assert ids - asked == set(), "rows of data/quotes.csv no page uses"


def test_quote_markdown_is_literal():
    from markdown_it import MarkdownIt

    from tipline.presentation.text import markdown_literal

    hostile = 'a *b* [c](javascript:x) <script>x</script> {cite:p}`x` $x$ & \\ `code` <!-- --> \u201cq\u201d'
    rendered = MarkdownIt("commonmark").renderInline(markdown_literal(hostile))
    import html

    assert html.unescape(rendered) == hostile and "<script>" not in rendered
    with pytest.raises(ValueError):
        markdown_literal("two\nlines")


# ---------------------------------------------------------------- the built pages

@pytest.mark.full
def test_every_quotation_on_every_page_is_from_the_ledger(built_site):
    from helpers import visible_text

    # a quotation within a quotation is shown with single marks (tipline.presentation.text.quote)
    allowed = {text.replace("\u201c", "\u2018").replace("\u201d", "\u2019") for text in load("quotes")["text"]} | set(OWN_WORDS)
    strays = []
    for page in sorted((built_site / "chapters").glob("*.html")):
        if page.stem in {"changes", "bibliography"}:
            continue
        html = page.read_text(encoding="utf-8")
        # source notes, chart data tables and the claims cards' evidence lines quote locators, not sources
        # the page's citation quotes its own title
        html = re.sub(r'<div class="tipline-source">.*?</div>|<details class="tipline-chart-data">.*?</details>'
                      r'|<p class="tipline-evidence">.*?</p>|<p class="tipline-citation">.*?</p>', "", html, flags=re.S)
        text = visible_text(html)
        for span in QUOTED.findall(text):
            if span.strip() not in allowed and not re.fullmatch(r"\s*[0-9.,]+\s+arrests per 100 actionable reports is the arrest rate\.", span):
                strays.append(f"{page.name}: \u201c{span}\u201d")
    assert not strays, "quotation marks around words that are not in data/quotes.csv:\n" + "\n".join(strays[:30])
