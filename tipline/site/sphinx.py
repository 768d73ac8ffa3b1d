"""Sphinx extension: serve the chart bundle locally, publish the datasets, lock pages down.

* writes _static/tipline-charts.js (vega + vega-lite + vega-embed from the pinned
  vl-convert-python package, wrapped in a function so its top-level names cannot clash
  with Sphinx's) and adds it only to pages that contain a chart (_static/tipline-site.js draws
  the charts);
* (the datasets reach <site>/data/ through html_extra_path: _extra/data links to data/; the
  benchmark the reproducibility appendix charts is copied beside them here);
* gives every page a Content-Security-Policy (a meta tag) that runs scripts only from the
  site's own files plus, by hash, the theme's few known inline snippets; the theme's two
  inline onclick handlers become data attributes served by _static/tipline-site.js. A page
  with any other inline script or handler stops the build (see `_lock`).
"""
from __future__ import annotations

import base64
import hashlib
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

BUNDLE = "tipline-charts.js"
# The bundle only: _static/tipline-site.js (which jupyter-book adds to every page itself) draws
# the charts of a page, each in the layout made for the width it is given.


def _write_bundle(outdir: Path) -> None:
    from importlib.metadata import version

    import vl_convert

    target = outdir / "_static" / BUNDLE
    target.parent.mkdir(parents=True, exist_ok=True)
    # bundling takes over a second: keep the result beside the site, keyed by the package version
    cached = outdir.parent / f".vega-bundle-{version('vl-convert-python')}.js"
    if not cached.exists():
        cached.write_text(vl_convert.javascript_bundle())
    code = "(function(){\n" + cached.read_text() + "\n})();\n"
    if not target.exists() or target.read_text() != code:
        target.write_text(code)


def _page_context(app, pagename, templatename, context, doctree) -> None:
    # sphinx-thebe is pulled in by jupyter-book even with launch buttons off; its scripts
    # declare THEBE_JS_URL twice (a console error on every page) and are useless offline.
    scripts = context.get("script_files", [])
    scripts[:] = [s for s in scripts if "thebe" not in str(getattr(s, "filename", s) or "")
                  and "THEBE_JS_URL" not in str(getattr(s, "attributes", {}).get("body", ""))]
    if "tipline-chart" in context.get("body", ""):
        app.add_js_file(BUNDLE)


def _theme_mode(app, config) -> None:
    # jupyter-book leaves the theme mode empty, which the theme reports as a console error
    context = dict(config.html_context or {})
    context["default_mode"] = context.get("default_mode") or "auto"
    config.html_context = context


# The theme's inline scripts, allowed by hash. Anything else inline is refused at build time.
KNOWN_INLINE = [re.compile(pattern, re.S) for pattern in (
    r'\s*document\.documentElement\.dataset\.mode = localStorage\.getItem\("mode"\) \|\| "auto";'
    r'\s*document\.documentElement\.dataset\.theme = localStorage\.getItem\("theme"\) \|\| "auto";\s*',
    r"let toggleHintShow = 'Click to show';", r"let toggleHintHide = 'Click to hide';",
    r"let toggleOpenOnPrint = 'true';", r"var togglebuttonSelector = '\.toggle, \.admonition\.dropdown';",
    r"DOCUMENTATION_OPTIONS\.pagename = '[A-Za-z0-9_/.-]+';", r"DOCUMENTATION_OPTIONS\.search_as_you_type = (true|false);",
    r'\s*// Activate the search field on page load\s*let searchInput = document\.querySelector\("form\.bd-search input"\);'
    r'\s*if \(searchInput\) \{\s*searchInput\.focus\(\);\s*searchInput\.select\(\);'
    r'\s*console\.log\("\[PST\]: Set focus on search field\."\);\s*\}\s*',
)]
# the theme's inline handlers, replaced by data-tipline-action (see _static/tipline-site.js)
HANDLERS = {'onclick="window.print()"': 'data-tipline-action="print"',
            'onclick="toggleFullScreen()"': 'data-tipline-action="fullscreen"'}
INLINE_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
# sphinx-thebe's configuration and kernel name: useless on a static site
THEBE = re.compile(r'<script type="text/x-thebe-config">.*?</script>\s*|<script>kernelName = \'python3\'</script>\s*', re.S)


def _hash(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode() + "'"


def policy(hashes: list[str]) -> str:
    """The Content-Security-Policy of a page whose allowed inline scripts have these hashes."""
    scripts = " ".join(["'self'"] + sorted(set(hashes)))
    return ("default-src 'self'; script-src " + scripts + "; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; form-action 'self'")


def csp_meta(hashes: list[str]) -> str:
    return f'<meta http-equiv="Content-Security-Policy" content="{policy(hashes)}">'


class _Handlers(HTMLParser):
    """Every inline event-handler attribute (onclick=...) of a page, as tag and attribute."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found += [f"<{tag} {name}=...>" for name, _ in attrs if name.startswith("on")]


def _lock(page: Path, text: str) -> str:
    """`text` with the theme's inline handlers replaced and a CSP meta tag allowing only the
    known inline scripts; an unknown inline script or handler is a build error naming the page."""
    text = THEBE.sub("", text)
    for handler, replacement in HANDLERS.items():
        text = text.replace(handler, replacement)
    hashes = []
    for match in INLINE_SCRIPT.finditer(text):
        attributes, code = match.groups()
        if re.search(r"\bsrc=", attributes):
            continue
        if 'type="application/json"' in attributes:  # chart specs: data, never executed
            continue
        if not any(known.fullmatch(code) for known in KNOWN_INLINE):
            raise RuntimeError(f"{page}: an inline script the build does not know: {code[:80]!r}")
        hashes.append(_hash(code))
    parser = _Handlers()
    parser.feed(text)
    if parser.found:
        raise RuntimeError(f"{page}: inline event handlers {parser.found[:3]}")
    if 'http-equiv="Content-Security-Policy"' not in text:  # not the words in a page's prose
        if '<meta charset="utf-8" />' in text:
            text = text.replace('<meta charset="utf-8" />', '<meta charset="utf-8" />\n' + csp_meta(hashes), 1)
        elif "<script" in text.lower():  # a page without scripts (index.html, a redirect) needs no policy
            raise RuntimeError(f"{page}: no <meta charset> to put the Content-Security-Policy after")
    return text


ICON_SCRIPT = re.compile(r'<(?:script|link)[^>]*scripts/fontawesome\.js[^>]*>(?:</script>)?\s*')


def _rewrite_pages(outdir: Path) -> None:
    """One pass over the published pages for fixes the theme does not offer:

    * docutils marks each bibliography entry role="doc-biblioentry" inside role="list": a
      deprecated role that leaves the list without list items (axe: aria-required-children);
    * the theme's Font Awesome script weighs 1.5 MB to draw a dozen icons; _static/tipline.css
      draws them from the theme's webfont instead, so neither the tags nor the file are published;
    * a Content-Security-Policy on every page (`_lock`).
    """
    for page in outdir.rglob("*.html"):
        if "_static" in page.relative_to(outdir).parts:
            continue  # the theme's template fragments (webpack-macros.html), not pages
        text = page.read_text(encoding="utf-8")
        fixed = _lock(page, ICON_SCRIPT.sub("", text.replace('role="doc-biblioentry"', 'role="listitem"')))
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")
    (outdir / "_static" / "scripts" / "fontawesome.js").unlink(missing_ok=True)


def _finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    _write_bundle(outdir)
    # source maps are for theme developers; readers never request them
    for source_map in (outdir / "_static").rglob("*.map"):
        source_map.unlink()
        asset = source_map.with_suffix("")  # theme.js.map -> theme.js
        if asset.exists():
            text = asset.read_text(encoding="utf-8")
            asset.write_text(re.sub(r"\n?/[/*]# sourceMappingURL=\S+?(?: \*/)?\s*$", "\n", text), encoding="utf-8")
    _rewrite_pages(outdir)
    shutil.copy2(outdir / "_static" / "favicon.svg", outdir / "favicon.svg")
    target = outdir / "data"  # filled from data/ by html_extra_path (_extra/data is a link to it)
    from .build import answer_ready

    target.mkdir(exist_ok=True)
    # the book's headline figures, machine-readable (tipline/estimates/answer.py): `make book` computes them
    # while the chapters execute and Sphinx works; a plain `jupyter-book build` computes them here
    kept = answer_ready()
    shutil.copy2(kept, target / "answer.json")
    benchmark = Path(app.srcdir) / "scripts" / "benchmark.json"
    if benchmark.exists():  # the measurements behind the reproducibility appendix's chart
        shutil.copy2(benchmark, target / benchmark.name)


def setup(app):
    app.connect("config-inited", _theme_mode)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
