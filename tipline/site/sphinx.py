"""Sphinx extension: serve the chart bundle locally, publish the datasets, lock pages down.

* writes _static/tipline-charts.js (vega + vega-lite + vega-embed from the pinned
  vl-convert-python package, wrapped in a function so its top-level names cannot clash
  with Sphinx's) and adds it only to pages that contain a chart (_static/tipline-site.js draws
  the charts);
* (the datasets, answer.json and the benchmark reach <site>/data/ when `make book` publishes the
  site: tipline.site.build lists them);
* gives every page a Content-Security-Policy, unconditionally: a meta tag that Sphinx's page
  template writes among its first <meta> tags (the `metatags` of the page context), before
  anything that could load or run. It runs scripts only from the site's own files plus, by
  hash, the extensions' few known setting scripts (`KNOWN_INLINE`). The theme's inline code is
  gone at its source: _templates/layout.html and search.html drop the theme's two inline
  scripts (the colour mode comes from _static/tipline-mode.js), sphinx-thebe's configuration
  nodes are removed from each page's document, and the theme's two inline onclick handlers
  become data attributes served by _static/tipline-site.js (the one rewrite of written pages
  left: see `_check_pages`);
* checks every page once it is written (`check_page`, on the parsed HTML): the policy in <head>
  before anything but other <meta> tags, every script a local file or known setting, no event
  handler, no frame, object, <base> or other http-equiv, no javascript: address, and nothing
  loaded from or sent to another host (addresses, inline CSS); only links lead elsewhere. A
  page that breaks a rule stops the build, naming the page, the line and the reason: data
  escape what they put in a page, so what trips this is code or raw HTML in a chapter or in
  CHANGELOG.md.
"""
from __future__ import annotations

import base64
import hashlib
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

from docutils import nodes

from . import bundle

BUNDLE = "tipline-charts.js"
# The bundle only: _static/tipline-site.js (which jupyter-book adds to every page itself) draws
# the charts of a page, each in the layout made for the width it is given.


def _write_bundle(outdir: Path, keep: Path) -> None:
    target = outdir / "_static" / BUNDLE
    target.parent.mkdir(parents=True, exist_ok=True)
    code = "(function(){\n" + bundle.kept(keep).read_text() + "\n})();\n"
    if not target.exists() or target.read_text() != code:
        target.write_text(code)


# --- the policy ------------------------------------------------------------------------------

# The setting scripts extensions add to a page (Sphinx writes each body as it is, so its hash is
# known before the page is written): sphinx-togglebutton's four, pydata-sphinx-theme's page name,
# jupyter-book's search setting. Any other inline script is refused.
KNOWN_INLINE = [re.compile(pattern) for pattern in (
    r"let toggleHintShow = 'Click to show';", r"let toggleHintHide = 'Click to hide';",
    r"let toggleOpenOnPrint = 'true';", r"var togglebuttonSelector = '\.toggle, \.admonition\.dropdown';",
    r"DOCUMENTATION_OPTIONS\.pagename = '[A-Za-z0-9_/.-]+';", r"DOCUMENTATION_OPTIONS\.search_as_you_type = (true|false);",
)]
# the theme's inline handlers, replaced by data-tipline-action (see _static/tipline-site.js)
HANDLERS = {'onclick="window.print()"': 'data-tipline-action="print"',
            'onclick="toggleFullScreen()"': 'data-tipline-action="fullscreen"'}


def _hash(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode() + "'"


def policy(hashes: list[str]) -> str:
    """The Content-Security-Policy of a page whose allowed inline scripts have these hashes."""
    scripts = " ".join(["'self'"] + sorted(set(hashes)))
    return ("default-src 'self'; script-src " + scripts + "; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
            "frame-src 'none'; base-uri 'self'; form-action 'self'")


def csp_meta(hashes: list[str]) -> str:
    return f'<meta http-equiv="Content-Security-Policy" content="{policy(hashes)}">'


class PageRefused(RuntimeError):
    """A built page that breaks the pages' security rules (the message names the page)."""


def _page_context(app, pagename, templatename, context, doctree) -> None:
    """Runs after the theme's and extensions' own page-context handlers (priority 900)."""
    # sphinx-thebe is pulled in by jupyter-book even with launch buttons off; its scripts
    # declare THEBE_JS_URL twice (a console error on every page) and are useless offline.
    scripts = context.get("script_files", [])
    scripts[:] = [s for s in scripts if "thebe" not in str(getattr(s, "filename", s) or "")
                  and "THEBE_JS_URL" not in str(getattr(s, "attributes", {}).get("body", ""))]
    if "tipline-chart" in context.get("body", ""):
        app.add_js_file(BUNDLE)
    hashes = []
    for script in scripts:
        body = getattr(script, "attributes", {}).get("body") if not getattr(script, "filename", None) else None
        if body is None:
            continue
        if not any(known.fullmatch(body) for known in KNOWN_INLINE):
            raise PageRefused(f"{pagename}.html: an extension adds an inline script the build does not know: {body[:80]!r}")
        hashes.append(_hash(body))
    # written by the theme's template right after <meta charset>, whatever the page holds
    context["metatags"] = csp_meta(hashes) + "\n" + context.get("metatags", "")


def _no_thebe_nodes(app, doctree, docname) -> None:
    # sphinx-thebe appends its configuration (a non-JavaScript <script> block and an inline
    # `kernelName = ...` script) to every document: useless on a static site, and inline code
    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        config = text.strip().startswith('<script type="text/x-thebe-config">')
        if config or re.fullmatch(r"<script>kernelName = '[\w-]+'</script>", text):
            node.parent.remove(node)


def _visit_citation(self, node) -> None:
    # docutils marks each bibliography entry role="doc-biblioentry" inside role="list": a
    # deprecated role that leaves the list without list items (axe: aria-required-children)
    if not isinstance(node.previous_sibling(), type(node)):
        self.body.append('<div role="list" class="citation-list">\n')
    self.body.append(self.starttag(node, "div", classes=[node.tagname], role="listitem"))


def _depart_citation(self, node) -> None:
    self.body.append("</div>\n")
    if not isinstance(node.next_node(descend=False, siblings=True), type(node)):
        self.body.append("</div>\n")


def _theme_mode(app, config) -> None:
    # jupyter-book leaves the theme mode empty, which the theme reports as a console error
    context = dict(config.html_context or {})
    context["default_mode"] = context.get("default_mode") or "auto"
    config.html_context = context
    # the templates that keep the theme's inline code out of every page (see the docstring)
    templates = Path(app.srcdir) / "_templates"
    if templates.is_dir() and "_templates" not in config.templates_path:
        config.templates_path = ["_templates", *config.templates_path]


# --- the check of every written page ---------------------------------------------------------------

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background", "ping", "manifest"}
REFUSED_ELEMENTS = {"iframe", "frame", "frameset", "object", "embed", "applet", "base", "portal", "fencedframe"}
SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):")
CSS_LOAD = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)|@import|image-set\(|\\", re.I | re.S)


def _address(value: str) -> str:
    """An address as a browser reads it: tabs and line breaks inside removed, spaces and controls
    around stripped, backslashes as slashes, scheme in lower case."""
    value = re.sub(r"[\t\n\r]", "", value).strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f"
                                                   "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
    return value.replace("\\", "/").lower()


def _local(address: str) -> bool:
    """An address inside the site: no scheme, no host (//...)."""
    return not SCHEME.match(address) and not address.startswith("//")


class _PageCheck(HTMLParser):
    """One page's security rules, checked on the parsed page (see `check_page`).

    Where Python's parser and a browser's could read the same text differently, the text is
    refused instead of guessed at: a <script> or <style> whose text holds "<" (a browser ends
    "</script x>" where Python does not; the book's own scripts and styles never hold "<"),
    comments a browser closes early ("<!-->", "--!>") and <![CDATA[ sections. An attribute
    written twice counts with its first value, as in a browser."""

    def __init__(self, name: str):
        super().__init__(convert_charrefs=True)
        self.name, self.hashes, self.redirect, self.problem = name, None, None, None
        self.in_head, self.head_elements, self.raw, self.scripts = False, [], None, 0

    def refuse(self, message: str) -> None:
        if self.problem is None:
            self.problem = f"{self.name}, line {self.getpos()[0]}: {message}"

    def handle_starttag(self, tag, attrs):
        self._element(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._element(tag, attrs)
        if tag in ("script", "style"):
            self.handle_endtag(tag)

    def handle_comment(self, data):
        if data.startswith((">", "->")) or "--!>" in data:
            self.refuse("a comment that browsers end earlier than this check does (<!-->, <!--->, --!>)")

    def unknown_decl(self, data):
        self.refuse(f"a <![{data[:20]}...]]> section, which browsers read as a comment ending at the first '>'")

    def _element(self, tag, attrs):
        values = {}
        for name, value in attrs:
            values.setdefault(name, value or "")
        if tag == "head":
            self.in_head = True
        elif tag == "body":
            self.in_head = False
        elif self.in_head:
            self.head_elements.append((tag, values))
        if tag in REFUSED_ELEMENTS:
            self.refuse(f"a <{tag}> element: pages embed no frames, objects or base addresses")
        for name, value in values.items():
            if name.startswith("on"):
                self.refuse(f"<{tag}> has an inline event handler {name}=: pages run no inline code")
            if name == "srcdoc":
                self.refuse(f"<{tag}> has a srcdoc document")
            if name in URL_ATTRIBUTES or (tag in ("animate", "set") and name in ("to", "from", "values", "by")):
                self._address(tag, name, value)
            if name == "style":
                self._css(tag, value)
            if name == "srcset":
                for candidate in value.split(","):
                    self._address(tag, name, candidate.strip().split(" ")[0])
        if tag == "meta" and "http-equiv" in values:
            self._meta(values)
        if tag in ("script", "style"):
            self.raw = (tag, values, [], self.getpos()[0])
            self.scripts += tag == "script"

    def _address(self, tag, name, value):
        address = _address(value)
        scheme = SCHEME.match(address).group(1) if SCHEME.match(address) else None
        link = tag in ("a", "area") and name in ("href", "xlink:href")  # followed only when a reader clicks it
        if scheme not in (None, "http", "https", "mailto", "data"):
            self.refuse(f"<{tag} {name}={value[:60]!r}>: a {scheme}: address")
        elif scheme == "data" and not (tag in ("img", "source") and name in ("src", "srcset")):
            self.refuse(f"<{tag} {name}={value[:40]!r}...>: a data: address outside an image")
        elif scheme != "data" and not link and not _local(address):
            self.refuse(f"<{tag} {name}={value[:60]!r}>: reaches another host; a page loads from and sends to "
                        "the site only (a link a reader clicks may lead elsewhere)")

    def _css(self, where: str, css: str) -> None:
        """Inline CSS loads nothing from another host (the policy blocks it too): url() within the
        site only; no @import, image-set() or backslash escapes (which could spell url( otherwise)."""
        for found in CSS_LOAD.finditer(css):
            if not found.group(0).lower().startswith("url(") or not _local(_address(found.group(2))):
                self.refuse(f"inline CSS in <{where}> with {found.group(0)[:60]!r}: styles load only the site's own files")

    def _meta(self, values):
        kind = values["http-equiv"].strip().lower()
        if kind == "content-security-policy":
            if not self.in_head:
                self.refuse("a Content-Security-Policy outside <head>")
            elif self.hashes is not None:
                self.refuse("a second Content-Security-Policy")
            elif [tag for tag, v in self.head_elements[:-1] if tag != "meta" or "http-equiv" in v]:
                self.refuse("the Content-Security-Policy comes after an element that can load or run something")
            else:
                found = re.search(r"script-src ([^;]*)", values.get("content", ""))
                self.hashes = set(found.group(1).split()) if found else set()
                if not found or {h for h in self.hashes if h != "'self'" and not h.startswith("'sha256-")}:
                    self.refuse(f"a Content-Security-Policy this build did not write: {values.get('content')!r}")
        elif kind == "refresh":  # index.html, written by jupyter-book: a redirect to the first chapter
            url = re.split(r"url\s*=", values.get("content", ""), maxsplit=1, flags=re.I)[-1].strip(" '\"")
            if self.hashes is not None or not _local(_address(url)):
                self.refuse(f"<meta http-equiv='refresh' content={values.get('content')!r}>: only a bare page redirects")
            self.redirect = url
        else:
            self.refuse(f"<meta http-equiv={values['http-equiv']!r}>: the only http-equiv a page has is its policy")

    def handle_data(self, data):
        if self.raw is not None:
            self.raw[2].append(data)

    def handle_endtag(self, tag):
        if tag == "head":
            self.in_head = False
        if self.raw is None or tag != self.raw[0]:
            return
        tag, values, parts, line = self.raw
        self.raw = None
        code, kind = "".join(parts), values.get("type", "").strip().lower()
        if "<" in code:
            self.refuse(f"a <{tag}> (line {line}) whose text holds '<', which browsers and this check can "
                        "read differently (the book's own scripts and styles never hold one)")
        if tag == "style":
            self._css("style", code)
            return
        if "src" in values:
            return  # its address was checked with the other addresses
        if kind == "application/json":
            return  # data (chart specs): never executed
        if kind not in ("", "text/javascript", "module", "application/javascript"):
            self.refuse(f"a <script type={values.get('type')!r}> (line {line}) the build does not know")
        elif self.hashes is None or _hash(code) not in self.hashes:
            self.refuse(f"an inline script the build does not know (line {line}): {code.strip()[:80]!r}")


def check_page(name: str, text: str) -> None:
    """Raise PageRefused, naming the page, the line and the reason, unless the page has the
    policy in <head> before anything but <meta> tags and holds nothing that runs code or loads
    from another host but what the policy allows. A page without the policy must be a bare
    redirect within the site."""
    check = _PageCheck(name)
    check.feed(text)
    check.close()
    if check.raw is not None:
        check.refuse(f"a <{check.raw[0]}> (line {check.raw[3]}) that is never closed")
    if check.problem is None and check.hashes is None and (check.redirect is None or check.scripts):
        check.problem = f"{name}: has no Content-Security-Policy"
    if check.problem:
        raise PageRefused(check.problem)


def _check_pages(outdir: Path) -> None:
    """The theme's two inline handlers become data attributes, then every page is checked.

    The swap is the one rewrite of the written pages left: the book theme's button macro writes
    `onclick`, and neither a theme option nor the project's templates can change it (the theme
    imports the macro by a path relative to its own folder)."""
    for page in sorted(outdir.rglob("*.html")):
        if "_static" in page.relative_to(outdir).parts:
            continue  # the theme's template fragments (webpack-macros.html), not pages
        text = page.read_text(encoding="utf-8")
        fixed = text
        for handler, replacement in HANDLERS.items():
            fixed = fixed.replace(handler, replacement)
        check_page(str(page.relative_to(outdir)), fixed)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")
    (outdir / "_static" / "scripts" / "fontawesome.js").unlink(missing_ok=True)  # no page loads it


def _finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    _write_bundle(outdir, Path(app.srcdir) / "_build")
    # source maps are for theme developers; readers never request them
    for source_map in (outdir / "_static").rglob("*.map"):
        source_map.unlink()
        asset = source_map.with_suffix("")  # theme.js.map -> theme.js
        if asset.exists():
            text = asset.read_text(encoding="utf-8")
            asset.write_text(re.sub(r"\n?/[/*]# sourceMappingURL=\S+?(?: \*/)?\s*$", "\n", text), encoding="utf-8")
    _check_pages(outdir)
    shutil.copy2(outdir / "_static" / "favicon.svg", outdir / "favicon.svg")


def setup(app):
    app.connect("config-inited", _theme_mode)
    app.connect("doctree-resolved", _no_thebe_nodes, priority=900)  # after sphinx-thebe adds them
    app.connect("html-page-context", _page_context, priority=900)  # after the theme adds its scripts
    # before the PDF is printed from the pages (tipline.site.reader), so a refused page is never loaded
    app.connect("build-finished", _finished, priority=100)
    app.add_node(nodes.citation, override=True, html=(_visit_citation, _depart_citation))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
