"""Shared code for the book: loading and validating data/, charts, and glued text."""
from .data import DataError, load, load_all, sources  # noqa: F401
