"""Shared code for the book: loading and validating data/, charts, and glued text."""
from .data import DataError, load, load_all, sources  # noqa: F401


def chapter(name: str) -> None:
    """Start a chapter (call it in the first cell with the notebook's file name, no suffix):
    the house chart theme and offline renderer, tables that escape their text, and a record
    of the datasets it reads."""
    from . import charts, data, tables

    charts.setup()
    tables.escape_tables()
    data.track(name)
