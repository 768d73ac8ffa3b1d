"""Shared code for the book, in four layers; each imports only the layers above it in this list:

* `tipline.evidence`: data/ loaded and validated (`data`), the claims ledger (`ledger`);
* `tipline.estimates`: the funnel arithmetic (`model`), the top-down outcome model (`outcomes`),
  the bottom-up task-force fit (`funnels`), the headline figures (`answer`);
* `tipline.presentation`: charts, glued prose (`text`), tables;
* `tipline.site`: the build (`build`), the Sphinx extensions (`sphinx`, `reader`), `pdf`, `bib`.

A chapter starts with `chapter("NAME")`.
"""
from .evidence.data import DataError, load, load_all, sources  # noqa: F401


def chapter(name: str) -> None:
    """Start a chapter (call it in the first cell with the notebook's file name, no suffix):
    the house chart theme and offline renderer, tables that escape their text, and a record
    of the datasets it reads."""
    from .evidence import data
    from .presentation import charts, tables

    charts.setup()
    tables.escape_tables()
    data.track(name)
