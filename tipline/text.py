"""Numbers for prose: formatted once here and glued into the narrative."""
from __future__ import annotations

from myst_nb import glue


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
