"""Numbers and sentences for prose: formatted once here and glued into the narrative.

A sentence that states a comparison or a direction ("above", "at least", "in every year",
"rose", "the most common") is glued with `claim()`, which checks the condition it rests on
while the chapter executes: data that falsify it stop the build with a message quoting the
sentence. `pick()` chooses the words from the data instead, for sentences that must say
whichever way the data go.

Quotations come only from the quotation ledger, data/quotes.csv: `quote()` glues a row's exact
words between quotation marks with its citation (for `{glue:md}`name:myst`` in the prose), and
`quoted()` returns them for a sentence built here that names its source itself. No chapter types
a quotation. `breaks_note()` glues the disclosure of every series break (data/breaks.csv) that a
sentence's span of years crosses, and the source note under a chart
(tipline.presentation.notes) shows those its rows cross.
"""
from __future__ import annotations

import math
import re

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from ..evidence import ledger
from ..evidence.data import datasets_read, load

# myst-nb's glue(): a display_data output whose MIME types carry this prefix (so Jupyter shows
# nothing) and whose metadata names the key; {glue:text} and the site's figures.json read it back
GLUE_PREFIX = "application/papermill.record/"


class FalseSentence(AssertionError):
    """A sentence of the book that its data no longer support."""


def count(value: float) -> str:
    return f"{round(value):,}"


def share(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"


def rounded_up(value: float, digits: int) -> float:
    """`value` rounded up at `digits` decimals: what an upper bound prints as."""
    return math.ceil(round(float(value) * 10 ** digits, 6)) / 10 ** digits


def rounded_down(value: float, digits: int) -> float:
    """`value` rounded down at `digits` decimals: what a lower bound prints as."""
    return math.floor(round(float(value) * 10 ** digits, 6)) / 10 ** digits


def _share_digits(value: float) -> int:
    return 1 if value < 0.1 or value > 0.9 else 0  # percent()'s rule


def at_most(value: float, digits: int | None = None) -> str:
    """An upper bound as a share, rounded up so that "at most" stays true of the printed figure (a
    bound of 3.94% reads "4.0%", never "3.9%"); at percent()'s precision unless `digits` is given."""
    digits = _share_digits(value) if digits is None else digits
    return f"{rounded_up(100 * float(value), digits):.{digits}f}%"


def at_least(value: float, digits: int | None = None) -> str:
    """A lower bound as a share, rounded down so that "at least" stays true of the printed figure (a
    bound of 65.96% reads "65%", never "66%"); at percent()'s precision unless `digits` is given."""
    digits = _share_digits(value) if digits is None else digits
    return f"{rounded_down(100 * float(value), digits):.{digits}f}%"


def percent(value: float, like: float | None = None) -> str:
    """A share, by the book's one rule for percentages: a whole percent between 10% and 90%, one
    decimal below 10% or above 90%, and "under 0.1%" / "over 99.9%" where one decimal would round
    to 0% or 100% without being exactly that. The ends of an interval are printed at the precision
    of its middle (`like`), so an estimate reads "83% (69% to 94%)", never "83% (69% to 93.5%)"."""
    value = float(value)
    if not 0 <= value <= 1:
        raise ValueError(f"{value!r} is not a share")
    if value in (0.0, 1.0):
        return f"{100 * value:.0f}%"
    if value < 0.001:
        return "under 0.1%"
    if value > 0.999:
        return "over 99.9%"
    reference = value if like is None else float(like)
    return f"{100 * value:.{_share_digits(reference)}f}%"


def per_hundred(values: dict) -> str:
    """A rate (per tip, say) as a number per 100 with its interval: "0.9 (0.4 to 1.9)". For rates
    that are not shares of anything, where a percent sign would mislead."""
    return f"{100 * values['median']:.1f} ({100 * values['low']:.1f} to {100 * values['high']:.1f})"


def interval(values: dict) -> str:
    """The ends of an interval, at the precision of its middle: "69% to 94%"."""
    return f"{percent(values['low'], values['median'])} to {percent(values['high'], values['median'])}"


def estimate(values: dict) -> str:
    """A middle and its interval: "83% (69% to 94%)"."""
    return f"{percent(values['median'])} ({interval(values)})"


def millions(value: float, digits: int = 1) -> str:
    return f"{value / 1e6:.{digits}f} million"


def say(name: str, text: str) -> None:
    """Glue a formatted number under `name` for {glue:text} in the chapter's prose.

    The value is glued as a plain str: myst-nb reads its repr back with literal_eval, which
    removes the quotes and leaves "1,234" as written. As myst_nb.glue(name, text, display=False)
    does, with one addition to the output's metadata: the datasets the chapter had read when it
    computed the value, which the site's figures.json lists as the figure's sources.
    """
    display({GLUE_PREFIX + "text/plain": repr(str(text))}, raw=True,
            metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}, "tipline": {"datasets": datasets_read()}})


def claim(name: str, sentence: str, holds: bool) -> str:
    """Glue `sentence` under `name` only if `holds` is true; otherwise stop, quoting it.

    `holds` is the computed condition the sentence states, written in the direction the
    sentence claims (e.g. `claim("k", f"rose in every year", (series.diff().dropna() > 0).all())`).
    """
    if not isinstance(holds, bool):  # numpy.bool_, a one-element Series ... must be explicit
        try:
            holds = bool(holds.item() if hasattr(holds, "item") else holds)
        except (TypeError, ValueError):
            raise TypeError(f"the condition for {name!r} is not one true/false value: {holds!r}") from None
    if not holds:
        raise FalseSentence(f"the data no longer support the sentence {name!r}: \u201c{sentence}\u201d")
    say(name, sentence)
    return sentence


def pick(name: str, value: float, above: str, below: str, equal: str | None = None, than: float = 0.0) -> str:
    """Glue the words that match how `value` compares with `than` (e.g. "rose" / "fell")."""
    if value != value:  # NaN compares false both ways: refuse it rather than pick a side
        raise FalseSentence(f"no words for {name!r}: the value is not a number")
    if value > than:
        words = above
    elif value < than:
        words = below
    elif equal is not None:
        words = equal
    else:
        raise FalseSentence(f"no words for {name!r}: the value equals {than} and no wording was given for that")
    say(name, words)
    return words


def evidence_words(value: float, kind: str) -> str:
    """A claim's evidence value in the words its `evidence_format` asks for (claims.csv)."""
    if kind == "none":
        return "(no public series)"
    return {"count": count, "share": share, "ratio": lambda number: f"{number:.2f}"}[kind](value)


QUALIFIERS = {"exact": "", "approximately": "approximately ", "about": "about ", "rounded": "about ",
              "more_than": "more than ", "at_least": "at least "}


def qualified(value: float, qualifier: str) -> str:
    """A count with the word its source puts before it: 'more than 12,600', 'approximately 203,467'."""
    return QUALIFIERS[qualifier] + count(value)


# ---------------------------------------------------------------- quotations, from data/quotes.csv

SOURCE_ID = re.compile(r"[a-z0-9_]+", re.ASCII)
OPEN, CLOSE = "\u201c", "\u201d"


def markdown_literal(text: str) -> str:
    """`text` as MyST Markdown that renders as exactly that text: every ASCII punctuation mark is
    backslash-escaped (CommonMark), so no cell of data/ can open a role, a link or HTML."""
    if "\n" in text or "\r" in text:
        raise ValueError(f"{text!r} contains a line break: it cannot be pasted inline")
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def _inner(text: str) -> str:
    """A quotation within the quotation takes single marks: the source's words, punctuated as quoted."""
    return text.replace(OPEN, "\u2018").replace(CLOSE, "\u2019")


def _quotation(quote_id: str):
    ledger_rows = load("quotes").set_index("quote_id")
    if quote_id not in ledger_rows.index:
        raise KeyError(f"no quotation {quote_id!r} in data/quotes.csv: add the source's exact words there first")
    row = ledger_rows.loc[quote_id]
    if not SOURCE_ID.fullmatch(row["source_id"]):
        raise ValueError(f"quotation {quote_id!r}: {row['source_id']!r} is not a source id")
    if row["text"] not in row["context"] or ledger.digest(row["context"]) != row["digest"]:
        raise ValueError(f"quotation {quote_id!r} is not part of the passage it was read in, or that passage "
                         "changed after it was read (data/quotes.csv)")
    return row


def quoted(quote_id: str) -> str:
    """The exact words of quotation `quote_id` between quotation marks, for a sentence that gives
    its source in its own words or in the source note beside it."""
    return OPEN + _inner(_quotation(quote_id)["text"]) + CLOSE


def quote_all(name: str, quote_ids: list[str], conjunction: str = "and") -> str:
    """Glue several short quotations from one source as a list (“a”, “b” and “c”) with one citation,
    for {glue:md}`name:myst`; returns the list in plain text."""
    rows = [_quotation(quote_id) for quote_id in quote_ids]
    cited = {row["source_id"] for row in rows}
    if len(cited) != 1:
        raise ValueError(f"quote_all() takes quotations from one source; {quote_ids} come from {sorted(cited)}")

    def listed(words):
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" {conjunction} " + words[-1]

    markdown = listed([OPEN + markdown_literal(_inner(row["text"])) + CLOSE for row in rows]) + f" {{cite:p}}`{cited.pop()}`"
    glue(name, Markdown(markdown), display=False)
    return listed([OPEN + _inner(row["text"]) + CLOSE for row in rows])


def quote(name: str, quote_id: str) -> str:
    """Glue quotation `quote_id` with its citation under `name`, for {glue:md}`name:myst` in the
    prose; returns the words with their quotation marks."""
    row = _quotation(quote_id)
    glue(name, Markdown(f"{OPEN}{markdown_literal(_inner(row['text']))}{CLOSE} {{cite:p}}`{row['source_id']}`"), display=False)
    return OPEN + _inner(row["text"]) + CLOSE


# ---------------------------------------------------------------- series breaks, from data/breaks.csv

GRADE_WORDS = {"primary": "", "transcription": " (a third-party transcription)", "secondary": " (a secondary source)"}


def _break_words(row) -> str:
    return f"Series break in {row.year}{GRADE_WORDS[row.grade]}. {row.what_changed}"


def break_words(dataset: str, first: int, last: int, rows: pd.DataFrame | None = None) -> str:
    """The disclosure, in plain sentences, of every break of `dataset` that a span from year `first`
    to year `last` crosses (tipline.evidence.ledger.breaks_within); empty when it crosses none."""
    return " ".join(_break_words(row) for row in ledger.breaks_within(dataset, first, last, rows).itertuples(index=False))


def breaks_note(name: str, dataset: str, first: int, last: int, rows: pd.DataFrame | None = None) -> str:
    """Glue under `name`, for {glue:md}`name:myst`, the disclosure of every break of `dataset` between
    years `first` and `last`, each with its citation; an empty note when the span crosses none.
    Returns the plain sentences."""
    found = ledger.breaks_within(dataset, first, last, rows)
    words = " ".join(_break_words(row) for row in found.itertuples(index=False))
    markdown = " ".join(f"{markdown_literal(_break_words(row).rstrip('.'))} {{cite:p}}`{row.source_id}`."
                        for row in found.itertuples(index=False) if SOURCE_ID.fullmatch(row.source_id))
    glue(name, Markdown(markdown), display=False)
    return words

