"""The bibliography's labels in author-year form, matching the citations in the text.

The chapters cite author-year (`bibtex_reference_style: author_year`: "(Office of Juvenile
Justice and Delinquency Prevention, 2025)"), but pybtex's "plain" style labels the entries it
lists with "alpha" labels built from the author's initials ("[aesircybersecuritycomgarbledcoaOpaged.]").
This style keeps "plain" (its sorting by author, year and title, and its entries) and labels each
entry with the same author and year its citations print, so a reader can find a citation in the
list by its words. Registered as the pybtex style "tipline" by tipline.site.reader.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pybtex.plugin
from pybtex.backends.plaintext import Backend as PlainText
from pybtex.database import parse_file
from pybtex.richtext import Text
from pybtex.style import FormattedEntry
from pybtex.style.formatting.plain import Style as Plain
from pybtex.style.labels import BaseLabelStyle


# one backend for every label: render_as("text") looks the backend up among the installed packages'
# entry points on each call (about 15 ms, 150 times per build)
TEXT = PlainText()


def _name(person) -> str:
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render(TEXT)


def author_year(entry) -> str:
    """"Author, year" as sphinxcontrib-bibtex's author-year citations print it: last names, two
    joined by "and", three or more as the first "et al."; the year as the entry gives it."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_name(person) for person in people]
    if len(names) > 2:
        who = f"{names[0]} et al."
    else:
        who = " and ".join(names)
    return f"{who}, {entry.fields.get('year', 'n.d.')}" if who else entry.fields.get("year", "n.d.")


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield author_year(entry)


# Each entry's formatted text, by what the entry is made of. sphinxcontrib-bibtex formats every
# entry twice a build (for the list, then again for its citations' tooltips), and a build that
# executes chapters formats them all once more beforehand, on a worker, while the chapters run
# (`warm`, from tipline.site.build.prepare_pages): formatting 150 entries takes about 0.3 s (pybtex
# decodes every field as LaTeX), on the pages phase's single core.
FORMATTED: dict[tuple, Text] = {}


def _content(entry) -> tuple:
    return (entry.key, entry.type, tuple(entry.fields.items()),
            tuple((role, tuple(str(person) for person in people)) for role, people in entry.persons.items()))


class Style(Plain):
    default_label_style = "tipline_author_year"

    def format_entry(self, label, entry, bib_data=None):
        """pybtex's plain formatting, kept by content (FORMATTED): the text does not depend on the label."""
        if bib_data is not None:  # cross-referenced entries: as pybtex formats them
            return super().format_entry(label, entry, bib_data)
        key = _content(entry)
        if key not in FORMATTED:
            FORMATTED[key] = super().format_entry(label, entry).text
        return FormattedEntry(entry.key, FORMATTED[key], label)


def warm(bib: Path) -> None:
    """Format every entry of `bib` (references.bib) into FORMATTED, before Sphinx asks for them."""
    style = Style()
    for entry in parse_file(str(bib)).entries.values():
        style.format_entry("", entry)


# the plugins sphinxcontrib-bibtex asks pybtex for by name while it reads and writes the pages (the
# plain-text backend once per citation, 116 times a build); pybtex finds a name among every installed
# package's entry points (10-15 ms a look-up) unless it was registered at run time, which it checks first
LOOKED_UP = [("pybtex.backends", "plaintext"), ("pybtex.backends", "docutils"), ("pybtex.style.names", "plain"),
             ("pybtex.style.names", "last"), ("pybtex.style.sorting", "author_year_title")]


@functools.cache  # once a process (the build may do it before Sphinx asks)
def register() -> None:
    pybtex.plugin.register_plugin("pybtex.style.labels", "tipline_author_year", AuthorYearLabels, force=True)
    pybtex.plugin.register_plugin("pybtex.style.formatting", "tipline", Style, force=True)
    for group, name in LOOKED_UP:  # each found once among the entry points, as pybtex would find it
        pybtex.plugin.register_plugin(group, name, pybtex.plugin.find_plugin(group, name), force=True)
