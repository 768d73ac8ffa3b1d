"""Numbers and sentences for prose: formatted once here and glued into the narrative.

A sentence that states a comparison or a direction ("above", "at least", "in every year",
"rose", "the most common") is glued with `claim()`, which checks the condition it rests on
while the chapter executes: data that falsify it stop the build with a message quoting the
sentence. `pick()` chooses the words from the data instead, for sentences that must say
whichever way the data go.
"""
from __future__ import annotations

from myst_nb import glue


class FalseSentence(AssertionError):
    """A sentence of the book that its data no longer support."""


def count(value: float) -> str:
    return f"{round(value):,}"


def share(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"


def millions(value: float, digits: int = 1) -> str:
    return f"{value / 1e6:.{digits}f} million"


def say(name: str, text: str) -> None:
    """Glue a formatted number under `name` for {glue:text} in the chapter's prose.

    The value is glued as a plain str: myst-nb reads its repr back with literal_eval, which
    removes the quotes and leaves "1,234" as written.
    """
    glue(name, str(text), display=False)


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
