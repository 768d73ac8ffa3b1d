"""Sphinx extension for readers who take figures away: numbered figures with permanent
links, each chart's data as a table, a citation and a last-updated date on every page.

* Figures. In each page, every chart (the placeholder written by tipline.presentation.charts) gets a number
  -- "Figure 3.2" in numbered chapters, "Figure A.1" in appendices (the letter of the page's
  "Appendix A: ..." title), "Figure 1" on other pages -- an anchor (id="figure-3-2") and a
  copy-link button. The number goes in front of the chapter's own caption, the paragraph that
  starts with an emphasised "Figure:" after the chart; a chart without one gets a caption made of
  its description. (Each chart's data table comes with the chart: tipline.presentation.tables.data_table.)
* The chart's caption and source line are written on its placeholder as data attributes, so
  the site script can put them into the PNG and SVG images that vega-embed's export exports
  (see _static/tipline-readers.js).
* Every page ends with "Cite this page" (generated from CITATION.cff) and "Last updated", the
  date of the last commit that touched the page's source file (`git log -1 --format=%cs`);
  without repository history (a copy of the sources) the file's modification date is shown
  and labelled as such.
"""
from __future__ import annotations

import datetime
import functools
import html
import json
import re
import subprocess
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from . import bundle
from .pdf import NAME as PDF_NAME

CHART = re.compile(r'<div class="tipline-chart" id="([^"]+)"')
SPEC = re.compile(r'<script type="application/json" class="tipline-spec" data-chart="[^"]+">(.*?)</script>', re.S)
TAG = re.compile(r"<[^>]+>")
APPENDIX = re.compile(r"Appendix ([A-Z])\b")


def _prefix(env, docname: str) -> str | None:
    """'3' for chapter 3, 'A' for appendix A, None for a page without a number."""
    number = env.toc_secnumbers.get(docname, {}).get("")
    if number:
        return ".".join(map(str, number))
    title = env.titles.get(docname)
    match = APPENDIX.match(title.astext()) if title is not None else None
    return match.group(1) if match else None


def _caption(paragraph: nodes.Node) -> bool:
    """A chapter's figure caption: a paragraph opening with an emphasised 'Figure:'."""
    return (isinstance(paragraph, nodes.paragraph) and len(paragraph) > 0
            and isinstance(paragraph[0], nodes.emphasis) and paragraph[0].astext().startswith("Figure:"))


def _button(anchor: str, label: str) -> nodes.raw:
    return nodes.raw("", f' <button type="button" class="tipline-copy-link" data-anchor="{anchor}" '
                         f'aria-label="Copy a link to {label}">Copy link</button>', format="html")


def _section_child(node: nodes.Node) -> nodes.Node:
    """The ancestor of `node` that sits directly in a section (where a paragraph can follow it)."""
    while node.parent is not None and not isinstance(node.parent, (nodes.section, nodes.document)):
        node = node.parent
    return node


def _figures(app, doctree, docname) -> None:
    """Number the page's charts (and tables, `_tables`) once its doctree is resolved.

    This edits the HTML of raw nodes (the chart placeholders and tables the notebooks' outputs
    hold) because nothing else can: a figure's number depends on its place in the table of
    contents and on the page, known only here, after the notebook ran; the number, anchor and
    export attributes belong on the chart's own element; and no theme option or template
    reaches inside a notebook's output. It edits our own markup only (tipline.presentation),
    never the theme's, and no built page is rewritten after Sphinx writes it."""
    figures = []  # [chart raw node, source raw node or None, caption paragraph or None]
    for node in doctree.findall(lambda n: isinstance(n, (nodes.raw, nodes.paragraph))):
        text = node.astext() if isinstance(node, nodes.raw) else ""
        if CHART.search(text):
            figures.append([node, None, None])
        elif figures and 'class="tipline-source"' in text and figures[-1][1] is None:
            figures[-1][1] = node
        elif figures and _caption(node) and figures[-1][2] is None:
            figures[-1][2] = node
    prefix = _prefix(app.env, docname)
    for index, (chart, source, caption) in enumerate(figures, 1):
        label = f"Figure {prefix}.{index}" if prefix else f"Figure {index}"
        anchor = "figure-" + label.split(" ", 1)[1].replace(".", "-").lower()
        text = chart.astext()
        chart_id = CHART.search(text).group(1)
        spec = json.loads(SPEC.search(text).group(1))
        number = nodes.strong("", "", nodes.reference("", label, refuri=f"#{anchor}", classes=["tipline-figure-number"]))
        if caption is not None:
            emphasis = caption[0]
            first = next(emphasis.findall(nodes.Text))
            first.parent.replace(first, nodes.Text(first.astext().removeprefix("Figure:").lstrip()))
            caption.insert(0, number)
            caption.insert(1, nodes.Text(": "))
            caption.insert(3, _button(anchor, label))
            words = emphasis.astext()
        else:
            words = spec.get("description", "")
            words = "" if words in ("", "Chart") else words
            caption = nodes.paragraph("", "", number, nodes.Text(f": {words}" if words else ""), _button(anchor, label))
            holder = _section_child(source if source is not None else chart)
            holder.parent.insert(holder.parent.index(holder) + 1, caption)
        caption["classes"].append("tipline-figure-caption")
        attributes = (f'<div class="tipline-figure-anchor" id="{anchor}"></div>\n'
                      f'<div class="tipline-chart" id="{chart_id}" data-figure="{anchor}" '
                      f'data-caption="{html.escape(image_caption(label, words), quote=True)}" '
                      f'data-source="{html.escape(image_sources(source.astext()) if source is not None else "", quote=True)}"')
        chart.replace_self(nodes.raw("", CHART.sub(lambda _: attributes, text, count=1), format="html"))
    _tables(doctree, prefix)


# words in a caption that tell a reader of the page what to do with the chart, not what it shows
INSTRUCTION = re.compile(r"(?:[;,]\s*|\s*\()(?:hover|click|drag|move|use the|select)\b[^.;)]*\)?", re.I)


def image_caption(label: str, words: str) -> str:
    """The title of an exported image: the figure's number and caption, without instructions for
    the page ("hover for the kind of year"), which an image cannot follow."""
    words = INSTRUCTION.sub("", words).strip()
    return f"{label}: {words}" if words else label


def image_sources(note_html: str) -> str:
    """The source line of an exported image, from the page's source note: "Sources: A, title
    (date), locators [grade]; B, ..." (each source separated; the data links left out)."""
    text = html.unescape(TAG.sub("", note_html.replace("</li>", "; </li>")))
    text = re.sub(r"\s*Data:.*$", "", " ".join(text.split())).strip().rstrip(";")
    # the note reads "Sources (n) ..." on the page (a disclosure); an exported image says "Sources:"
    return re.sub(r"^Sources? \((\d+)\)\s*", lambda m: "Source: " if m.group(1) == "1" else "Sources: ", text)


TABLE = re.compile(r'<table class="tipline-table">(<caption>)Table: ')


def _tables(doctree, prefix: str | None) -> None:
    """Number every captioned table (tipline.presentation.tables.table) as figures are numbered:
    "Table 4.1", an anchor on the table, a link to it and a copy-link button in its caption."""
    index = 0
    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        if not TABLE.search(text):
            continue
        index += 1
        label = f"Table {prefix}.{index}" if prefix else f"Table {index}"
        anchor = "table-" + label.split(" ", 1)[1].replace(".", "-").lower()
        button = (f'<button type="button" class="tipline-copy-link" data-anchor="{anchor}" '
                  f'aria-label="Copy a link to {label}">Copy link</button>')
        numbered = TABLE.sub(lambda m: f'<table class="tipline-table" id="{anchor}"><caption>'
                             f'<a class="tipline-table-number" href="#{anchor}">{label}</a>: ', text, count=1)
        numbered = numbered.replace("</caption>", f" {button}</caption>", 1)
        node.replace_self(nodes.raw("", numbered, format="html"))


# --- citation and last-updated date ---------------------------------------------------------

CFF_SCHEMA = Path(__file__).parent / "schemas" / "citation-file-format-1.2.0.json"


class _CitationLoader(yaml.SafeLoader):
    """YAML read as the Citation File Format means it: an unquoted date stays the text the format
    describes (PyYAML would make it a date object), and anchors and aliases (which can repeat one
    part of a file exponentially often) are refused."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (&name, *name) are not used in "
                                              "CITATION.cff: write the value out", event.start_mark)
        return super().compose_node(parent, index)


_CitationLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _where(name: str, mark) -> str:
    return f"{name}, line {mark.line + 1}, column {mark.column + 1}"


def _marks(node, name: str, path: tuple = (), found: dict | None = None) -> dict:
    """Where each value of the document starts (by its path of keys and indexes); a duplicate or
    merge key is refused (YAML loaders keep the last of two equal keys)."""
    found = {} if found is None else found
    found.setdefault(path, node.start_mark)
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                raise ValueError(f"{_where(name, key.start_mark)}: a key must be plain text (no merge keys)")
            if key.value in seen:
                raise ValueError(f"{_where(name, key.start_mark)}: duplicate key {key.value!r} (first on line "
                                 f"{seen[key.value].line + 1}): a reader sees one value, the book would use the other")
            seen[key.value] = key.start_mark
            found[path + (key.value,)] = key.start_mark
            _marks(value, name, path + (key.value,), found)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _marks(item, name, path + (index,), found)
    return found


def author_name(author: dict) -> str:
    """An author as cited: an entity's name, or a person's names in reading order (any part may be
    missing in CFF: given names alone are valid), or the alias."""
    parts = [author.get(key) for key in ("given-names", "name-particle", "family-names", "name-suffix")]
    return str(author.get("name") or " ".join(str(part) for part in parts if part) or author.get("alias") or "")


def validate_citation(record: dict, marks: dict | None = None, name: str = "CITATION.cff") -> None:
    """Check a CITATION.cff record against the Citation File Format 1.2.0 schema (vendored:
    see tipline/site/schemas/README.md) and what the pages need of it; raise ValueError naming
    every problem, with its line and column when `marks` (from `read_citation`) are given."""
    import jsonschema

    from ..evidence.data import unsafe_character

    def at(path) -> str:
        path = tuple(path)
        while marks and path and path not in marks:
            path = path[:-1]
        return _where(name, marks[path]) if marks and path in marks else name

    if not isinstance(record, dict):
        raise ValueError(f"{name}: is not a mapping of keys to values")
    if record.get("cff-version") != "1.2.0":
        raise ValueError(f"{at(('cff-version',))}: cff-version {record.get('cff-version')!r}, but the schema here is for 1.2.0")
    # the schema (like the format) describes dates as ISO text: a date object from another loader becomes that text
    document = json.loads(json.dumps(record, default=str))
    validator = jsonschema.Draft7Validator(json.loads(CFF_SCHEMA.read_text(encoding="utf-8")),
                                           format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    problems = [f"{at(error.absolute_path)}: {'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
                for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]
    if problems:
        raise ValueError("CITATION.cff does not follow the Citation File Format 1.2.0:\n  " + "\n  ".join(problems))
    # what every page's citation prints
    if "version" not in record:
        raise ValueError(f"{at(())}: every page's citation names the book's version: add `version: \"x.y.z\"`")
    if not isinstance(record["version"], str):
        raise ValueError(f"{at(('version',))}: quote the version: unquoted, YAML reads it as the number "
                         f"{record['version']!r} (1.10 would become 1.1)")
    for index, author in enumerate(record["authors"]):
        if not author_name(author):
            raise ValueError(f"{at(('authors', index))}: an author needs a name, given or family names, or an alias")

    def text(value, path):  # the title, names and keywords are printed on pages
        if isinstance(value, (dict, list)):
            for key, item in (value.items() if isinstance(value, dict) else enumerate(value)):
                text(item, path + (key,))
        elif isinstance(value, str) and unsafe_character(value):
            raise ValueError(f"{at(path)}: {'/'.join(map(str, path))}: {value[:40]!r} {unsafe_character(value)}")
    text(document, ())


def read_citation(path: Path) -> dict:
    """CITATION.cff read strictly and validated; every refusal names the file, line and column."""
    loader = _CitationLoader(Path(path).read_text(encoding="utf-8"))
    try:
        node = loader.get_single_node()
        if node is None:
            raise ValueError(f"{Path(path).name}: is empty")
        marks = _marks(node, Path(path).name)
        record = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise ValueError(f"{_where(Path(path).name, mark)}: not valid YAML ({error.problem})") from None
    finally:
        loader.dispose()
    validate_citation(record, marks, Path(path).name)
    return record


@functools.lru_cache(maxsize=4)
def citation_record(srcdir: Path) -> dict:
    return read_citation(Path(srcdir) / "CITATION.cff")


def book_citation(record: dict) -> str:
    """How to cite the whole book, as plain text (Appendix B)."""
    year = str(record.get("date-released", ""))[:4] or "n.d."
    version = f" Version {record['version']}." if record.get("version") else ""
    return f"{_authors(record)} ({year}). {record['title']}.{version}"


def _authors(record: dict) -> str:
    names = [author_name(author) for author in record.get("authors", [])]
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]


def last_updated(path: Path) -> tuple[str, str]:
    """(ISO date, how it was found): the last commit touching `path`, else the file's date."""
    try:
        result = subprocess.run(["git", "log", "-1", "--format=%cs", "--", path.name], cwd=path.parent,
                                capture_output=True, text=True, timeout=30)
        date = result.stdout.strip()
        if result.returncode == 0 and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", date):
            return date, "git"
    except (OSError, subprocess.SubprocessError):
        pass
    return datetime.date.fromtimestamp(path.stat().st_mtime).isoformat(), "file"


def page_citation(record: dict, title: str, date: str, url: str) -> str:
    """The citation of one page as plain text (the HTML version escapes each part). The title
    closes with a full stop inside the quotation marks, unless it ends with its own mark ("?")."""
    stop = "" if title[-1:] in ".?!" else "."
    return (f"{_authors(record)} ({date}). \u201c{title}{stop}\u201d In {record['title']}, version {record['version']}. {url}")


def _page_meta(app, pagename, templatename, context, doctree) -> None:
    # the header's links (templates/tipline-reader-links.html): the PDF, and this page's citation
    context["tipline_pdf"] = app.config.tipline_pdf
    context["tipline_pdf_name"] = PDF_NAME
    if doctree is None or pagename not in app.env.all_docs:
        return
    context["tipline_cite"] = True
    record = app.tipline_citation  # read and validated once, when the build starts
    date, how = last_updated(Path(app.env.doc2path(pagename)))
    title = app.env.titles[pagename].astext()
    base = str(record.get("url", "")).rstrip("/")
    relative = f"{pagename}.html"
    url = f"{base}/{relative}" if base else relative
    note = ("the date of the last change to this page&#x27;s source in the repository" if how == "git" else
            "the date of this page&#x27;s source file: this copy was built without repository history")
    how_to_cite = context["pathto"]("chapters/appendix_reproducibility").rstrip("#") + "#how-to-cite"
    changes = context["pathto"]("chapters/changes") if "chapters/changes" in app.env.all_docs else ""
    cite = html.escape(page_citation(record, title, date, "\x00")).replace(
        "\x00", f'<span class="tipline-cite-url"{"" if base else " data-relative"}>{html.escape(url)}</span>')
    context["body"] += (
        '\n<section class="tipline-page-meta" aria-labelledby="cite-this-page">'
        f'<p class="tipline-updated">Last updated <time datetime="{date}" data-from="{how}">{date}</time> '
        f'<span class="tipline-quiet">({note})</span>'
        + (f' \u00b7 <a href="{changes}">What changed</a>' if changes else "")
        + (f' \u00b7 <a href="{context["pathto"](PDF_NAME, 1)}">The whole book as a PDF</a>' if app.config.tipline_pdf else "") + '</p>'
        '<h2 id="cite-this-page">Cite this page</h2>'
        f'<p class="tipline-citation">{cite}</p>'
        f'<p class="tipline-quiet">To cite the whole book, see <a href="{how_to_cite}">How to cite</a>; '
        'to reuse a figure, cite its original sources too (the source line under each figure).</p>'
        "</section>\n")


# --- data to take away: figures.json and one archive of every dataset ---------------------------

ARCHIVE = "datasets.zip"
FIGURES = "figures.json"


def _notebook_pages(app) -> list[str]:
    """The pages made from notebooks, in the order of the table of contents (_toc.yml)."""
    toc = yaml.safe_load((Path(app.srcdir) / "_toc.yml").read_text(encoding="utf-8"))
    order = [toc["root"]] + [chapter["file"] for part in toc.get("parts", []) for chapter in part.get("chapters", [])]
    pages = [name for name in app.env.found_docs if str(app.env.doc2path(name)).endswith(".ipynb")]
    return sorted(pages, key=lambda name: order.index(name) if name in order else len(order))


def current_figures(app) -> list[dict]:
    """Every figure the pages state, as built: glued values (myst-nb's <page>.glue.json) with the
    sentence of the page that states each (the notebook's prose)."""
    from . import figures

    folder = Path(app.env.mystnb_config.output_folder)
    found = []
    for page in _notebook_pages(app):
        glue_file = folder / f"{page}.glue.json"
        if not glue_file.exists():
            continue
        notebook = json.loads(Path(app.env.doc2path(page)).read_text(encoding="utf-8"))
        found += figures.page_figures(page, notebook, figures.glued_by_sphinx(glue_file), app.env.titles[page].astext())
    return found


def figures_document(app, found: list[dict]) -> dict:
    """figures.json: what each figure is, where it is stated, and what it rests on."""
    record = app.tipline_citation
    figures = [{"key": figure["key"], "value": figure["value"], "page": figure["page"], "title": figure["title"],
                "url": f"{figure['page']}.html", "sentence": figure["sentence"],
                "sources": [f"data/{name}.csv" for name in figure["datasets"]]} for figure in found]
    return {"title": record["title"], "version": str(record["version"]),
            "about": ("Every figure the book's prose states: its key (stable across versions unless the figure is "
                      "renamed), its value as printed, the page (title and address) and the sentence that state it "
                      "(empty if the page glues the value but no sentence uses it), and its sources: the datasets the "
                      "page had read when it computed the figure, whose rows carry the source, locator and grade of "
                      "each number (the figure rests on some of them)."),
            "figures": figures}


def write_archive(data_dir: Path, target: Path) -> list[str]:
    """One zip of every dataset with its datapackage.json, byte-identical for identical data (fixed
    dates, fixed order). Only files the package names, inside the data folder and not links."""
    import zipfile

    package = json.loads((data_dir / "datapackage.json").read_text(encoding="utf-8"))
    names = ["datapackage.json"] + sorted(resource["path"] for resource in package["resources"])
    root = data_dir.resolve()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            path = data_dir / name
            if path.is_symlink() or not path.is_file() or root not in path.resolve().parents:
                raise ValueError(f"{path}: not a plain file inside {data_dir}; the data archive takes only those")
            info = zipfile.ZipInfo(f"data/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return names


def _take_away(app, exception) -> None:
    """<site>/data/figures.json and <site>/data/datasets.zip, listed in the build's output."""
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    from ..evidence.data import DATA

    log = logging.getLogger(__name__)
    target = Path(app.outdir) / "data"
    target.mkdir(exist_ok=True)
    found = current_figures(app)
    (target / FIGURES).write_text(json.dumps(figures_document(app, found), indent=1, ensure_ascii=False) + "\n",
                                  encoding="utf-8")
    names = write_archive(Path(DATA), target / ARCHIVE)
    log.info("wrote data/%s (%d figures) and data/%s (%d files, %.0f kB)", FIGURES, len(found), ARCHIVE, len(names),
             (target / ARCHIVE).stat().st_size / 1024)


# --- the changes page: figures that changed between releases ------------------------------------

class changed_figures(nodes.General, nodes.Element):
    """Where the changes page lists changed figures; filled once every page has been read."""


def _skip(self, node):
    raise nodes.SkipNode


class ChangedFigures(SphinxDirective):
    """```{changed-figures}``` on the changes page: for each release, the figures whose value
    changed since the release before it, and for the book as built, since the latest release."""

    def run(self):
        from . import figures

        for path in sorted(figures.RELEASES.glob("*.json")):
            self.env.note_dependency(str(path))
        return [changed_figures()]


CHANGES_PAGE = "chapters/changes"  # the page with the changed-figures directive


def _changes_outdated(app, env, added, changed, removed):
    # the changes page compares every page's figures with the releases': rebuild it with any page
    return [CHANGES_PAGE] if CHANGES_PAGE in env.found_docs and (added or changed or removed) else []


def _figure_rows(rows: list[dict], pathto) -> str:
    body = []
    for row in rows:
        now = ('<span class="tipline-quiet">no longer published</span>' if row["now"] is None
               else html.escape(row["now"]))
        where = f'<a href="{html.escape(pathto(row["page"]), quote=True)}">{html.escape(row["title"])}</a>'
        body.append(f"<tr><td>{where}</td><td>{html.escape(row['sentence'] or row['key'])}</td>"
                    f"<td>{html.escape(row['was'])}</td><td>{now}</td></tr>")
    return ('<table class="tipline-table tipline-changed-figures"><thead><tr><th scope="col">Page</th>'
            '<th scope="col">Where the figure is stated</th><th scope="col">Was</th><th scope="col">Now</th></tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _fill_changes(app, doctree, docname) -> None:
    from . import figures

    placeholders = list(doctree.findall(changed_figures))
    if not placeholders:
        return
    releases = figures.releases()
    pairs = [(before["version"], after["version"], figures.changed(before["figures"], after["figures"]))
             for before, after in zip(releases, releases[1:])]
    version = str(app.tipline_citation["version"])
    if releases:
        current = current_figures(app)
        label = (f"this build of {version}" if version == releases[-1]["version"] else f"{version} (this build)")
        pairs.append((releases[-1]["version"], label, figures.changed(releases[-1]["figures"], current)))

    def pathto(page):
        return app.builder.get_relative_uri(docname, page)

    out = []
    for before, after, rows in reversed(pairs):
        changed = sum(row["now"] is not None for row in rows)
        gone = len(rows) - changed
        words = (f"{changed} figure{'s' if changed != 1 else ''} changed value"
                 + (f", {gone} no longer published" if gone else "") if rows else "no figure changed value")
        out.append(nodes.rubric("", f"From {before} to {after}"))
        out.append(nodes.paragraph("", f"{words[0].upper()}{words[1:]}."))
        if rows:
            out.append(nodes.raw("", f'<details class="tipline-changes"><summary>The {len(rows)} figures</summary>'
                                     f'{_figure_rows(rows, pathto)}</details>', format="html"))
    for placeholder in placeholders:
        placeholder.replace_self(out or [nodes.paragraph("", "No release has been recorded yet.")])


# --- the 404 page (sphinx-notfound-page) -------------------------------------------------------

def url_prefix(environ=None) -> str:
    """Where the site lives on its host: "/" unless TIPLINE_URL_PREFIX says otherwise. A GitHub
    project site lives under /<repository>/, so the Pages workflow's build step sets
    TIPLINE_URL_PREFIX=/<repository>/ (a test build, served from its root, does not)."""
    import os

    environ = os.environ if environ is None else environ
    parts = [part for part in environ.get("TIPLINE_URL_PREFIX", "").split("/") if part]
    if not all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for part in parts):
        raise ValueError(f"TIPLINE_URL_PREFIX is not a plain path: {environ['TIPLINE_URL_PREFIX']!r}")
    return "/" + "".join(part + "/" for part in parts)


def _not_found(app, config) -> None:
    # the 404 page is served at any address: its links and assets need absolute addresses
    prefix = url_prefix()
    config.notfound_urls_prefix = prefix
    title = html.escape(config.html_title or config.project)
    config.notfound_context = {
        "title": "Page not found",
        "body": (f"<h1>Page not found</h1><p>There is no page at this address in <em>{title}</em>. Chapters may "
                 "have been renamed since a link to them was made.</p>"
                 f'<p><a id="home" href="{prefix}index.html">Go to the start of the book</a>.</p>')}


# --- lighter pages --------------------------------------------------------------------------------
# A first-time reader downloaded about 0.28 MB of Font Awesome webfonts (for some fifteen icons),
# the stylesheet rules of all 1,800 Font Awesome icons, and on every page the search tools for a
# search-as-you-type box this site does not enable (search.html loads its own). The search scripts
# are left out by a template (templates/layout.html overrides the theme's `extrahead` block): no
# page is rewritten. The icons are the one rewrite left, after the build: the theme has no option
# to ship fewer icons, and which ones the pages use is known only once every page is written.

FA_RULE = re.compile(r'((?:\.fa-[a-z0-9-]+:before,?)+)\{content:"\\([0-9a-f]{4})"\}')


def _icons_used(outdir: Path) -> set[str]:
    """Every fa-* class the pages and the theme's scripts name."""
    used = set()
    for path in list(outdir.rglob("*.html")) + list((outdir / "_static").rglob("*.js")):
        used |= set(re.findall(r"\bfa-[a-z0-9-]+", path.read_text(encoding="utf-8", errors="replace")))
    return used


def prune_icon_rules(css: str, used: set[str]) -> str:
    """The theme stylesheet without the rules of Font Awesome icons no page uses."""
    return FA_RULE.sub(lambda m: m.group(0) if used & set(re.findall(r"fa-[a-z0-9-]+", m.group(1))) else "", css)


def icon_codepoints(static: Path) -> set[int]:
    """The icon code points the site's stylesheets can draw (after pruning)."""
    codes = set()
    for css in static.rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        codes |= {int(code, 16) for code in re.findall(r"\\([0-9a-f]{4})(?![0-9a-f])", text) if 0xE000 <= int(code, 16) <= 0xF8FF}
        codes |= {ord(char) for char in re.findall(r"[\ue000-\uf8ff]", text)}
    return codes


def _subset_fonts(static: Path, codes: set[int], kept: Path) -> None:
    """Cut each icon font down to `codes`. Cutting takes about 0.7 s per build (fontTools' subsetter
    alone takes 0.2 s to import), so the result is kept in `kept` (the book's _build), named by the
    hash of the font and of the codes, with its own hash beside it: a damaged copy is cut again,
    never published."""
    import hashlib
    import io

    for path in sorted(static.glob("vendor/fontawesome/webfonts/*.woff2")):
        original = path.read_bytes()
        key = hashlib.sha256(original + repr(sorted(codes)).encode()).hexdigest()[:20]
        cached = kept / f".font-{path.stem}-{key}.woff2"
        cut = bundle.whole(cached)
        if cut is None:
            from fontTools import subset
            from fontTools.ttLib import TTFont

            font = TTFont(io.BytesIO(original), recalcTimestamp=False)  # the same bytes from every build
            options = subset.Options()
            options.flavor = "woff2"
            options.layout_features = ["*"]
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=[code for code in sorted(codes) if code in font.getBestCmap()])
            subsetter.subset(font)
            out = io.BytesIO()
            font.save(out)
            cut = out.getvalue()
            bundle.keep(cached, cut)
        path.write_bytes(cut)


def _lighter(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    static = outdir / "_static"
    theme = static / "styles" / "pydata-sphinx-theme.css"
    if theme.exists():
        theme.write_text(prune_icon_rules(theme.read_text(encoding="utf-8"), _icons_used(outdir)), encoding="utf-8")
    _subset_fonts(static, icon_codepoints(static), Path(app.srcdir) / "_build")


def _pdf_wanted(app, config) -> None:
    """Whether this build prints the book (TIPLINE_PDF=1 and a browser), as a setting of the
    build: every page links the PDF from its header and footer only when it is made, and a change
    of the setting rewrites every page (a config value that rebuilds html)."""
    from . import pdf

    config.tipline_pdf = bool(pdf.wanted())


def _pdf(app, exception) -> None:
    """The whole book as book.pdf (tipline.site.pdf), when this build makes it; a failure to print
    fails the build, so no page links a PDF that is not there."""
    if exception is not None or app.builder.name != "html":
        return
    from sphinx.util import logging

    from . import pdf

    outdir = Path(app.outdir)
    layout = outdir.parent / pdf.LAYOUT
    layout.unlink(missing_ok=True)
    if app.config.tipline_pdf:
        pdf.make(outdir, pdf.pages_in_order(Path(app.srcdir)), layout)
    else:
        (outdir / pdf.NAME).unlink(missing_ok=True)
        logging.getLogger(__name__).info("no PDF of the book: TIPLINE_PDF is not 1, or no browser at %s", pdf.CHROMIUM)


def _header_links(app, config) -> None:
    """The page header shows the PDF and "Cite this page" beside the theme's own buttons: a theme
    option (article_header_end) naming a template of ours, so no page is rewritten. (The page layout
    itself, without inline code or the search tools on every page, is _templates/layout.html.)"""
    config.templates_path = [*config.templates_path, str(Path(__file__).parent / "templates")]
    options = dict(config.html_theme_options or {})
    options["article_header_end"] = ["tipline-reader-links.html", "article-header-buttons.html"]
    config.html_theme_options = options


def _unused_assets(app, pagename, templatename, context, doctree) -> None:
    # sphinx-design's stylesheet and tab script, on pages without a sphinx-design element
    if 'class="sd-' in context.get("body", "") or ' sd-' in context.get("body", ""):
        return
    for key in ("css_files", "script_files"):
        files = context.get(key, [])
        files[:] = [f for f in files if not re.search(r"sphinx-design|design-tabs", str(getattr(f, "filename", f) or ""))]


def _check_citation(app, config) -> None:
    # an invalid CITATION.cff stops the build before anything runs; every page's citation uses this record
    app.tipline_citation = citation_record(Path(app.srcdir))


def setup(app):
    from . import bibstyle

    bibstyle.register()  # the bibliography's author-year labels (bibtex_default_style: tipline)
    app.add_config_value("tipline_pdf", False, "html")
    app.connect("config-inited", _pdf_wanted)
    app.connect("config-inited", _header_links)
    app.connect("config-inited", _check_citation)
    app.connect("config-inited", _not_found)
    app.connect("doctree-resolved", _figures)
    app.connect("doctree-resolved", _fill_changes)
    app.connect("env-get-outdated", _changes_outdated)
    app.connect("build-finished", _take_away)
    app.add_node(changed_figures, html=(_skip, None), latex=(_skip, None), text=(_skip, None))
    app.add_directive("changed-figures", ChangedFigures)
    app.connect("html-page-context", _page_meta)
    app.connect("html-page-context", _unused_assets)
    app.connect("build-finished", _lighter)
    app.connect("build-finished", _pdf)
    app.add_css_file("tipline-readers.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
