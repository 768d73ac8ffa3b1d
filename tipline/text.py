"""Numbers for prose: formatted once here and glued into the narrative."""
from __future__ import annotations

from myst_nb import glue


def count(value: float) -> str:
    return f"{round(value):,}"


def share(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"


def millions(value: float, digits: int = 1) -> str:
    return f"{value / 1e6:.{digits}f} million"


class Plain(str):
    """A string that displays without quotes, so {glue:text} shows it as written."""

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))


def say(name: str, text: str) -> None:
    """Glue a formatted number under `name` for {glue:text} in the chapter's prose."""
    glue(name, Plain(text), display=False)
