"""Sphinx extension: serve the chart bundle locally and publish the datasets.

* writes _static/tipline-charts.js (vega + vega-lite + vega-embed from the pinned
  vl-convert-python package, wrapped in a function so its top-level names cannot clash
  with Sphinx's) and adds it only to pages that contain a chart;
* copies data/*.csv and datapackage.json to <site>/data/ so every chart's "Data" link
  and the datasets appendix resolve offline.
"""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from urllib.parse import quote

BUNDLE = "tipline-charts.js"
HELPER = """
window.tiplineEmbed = function (id, spec) {
  var el = document.getElementById(id);
  if (!el) { return; }
  vegaEmbed(el, spec, {actions: false, renderer: "svg"}).catch(function (error) {
    el.textContent = "This chart could not be drawn: " + error;
    console.error(error);
  });
};
"""


def _write_bundle(outdir: Path) -> None:
    from importlib.metadata import version

    import vl_convert

    target = outdir / "_static" / BUNDLE
    target.parent.mkdir(parents=True, exist_ok=True)
    # bundling takes over a second: keep the result beside the site, keyed by the package version
    cached = outdir.parent / f".vega-bundle-{version('vl-convert-python')}.js"
    if not cached.exists():
        cached.write_text(vl_convert.javascript_bundle())
    code = "(function(){\n" + cached.read_text() + "\n})();\n" + HELPER
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


NOT_FOUND = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Page not found: {title}</title>
<link rel="icon" href="data:image/svg+xml,{icon}">
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222;background:#fff}}
a{{color:#1f5a96}}@media (prefers-color-scheme: dark){{body{{color:#e6e6e6;background:#14181e}}a{{color:#9ab8d8}}}}</style>
</head><body><main>
<h1>Page not found</h1>
<p>There is no page at this address in <em>{title}</em>. Chapters may have been renamed since a link to
them was made.</p>
<p><a id="home" href="/">Go to the start of the book</a>.</p>
</main>
<script>
// On a GitHub project site the book lives under /<repository>/; elsewhere at the host's root.
(function () {{
  var parts = location.pathname.split("/").filter(Boolean);
  var root = /\.github\.io$/.test(location.hostname) && parts.length ? "/" + parts[0] + "/" : "/";
  document.getElementById("home").href = root + "index.html";
}})();
</script>
</body></html>
"""


ICON_SCRIPT = re.compile(r'<(?:script|link)[^>]*scripts/fontawesome\.js[^>]*>(?:</script>)?\s*')


def _rewrite_pages(outdir: Path) -> None:
    """One pass over the published pages for two fixes the theme does not offer:

    * docutils marks each bibliography entry role="doc-biblioentry" inside role="list": a
      deprecated role that leaves the list without list items (axe: aria-required-children);
    * the theme's Font Awesome script weighs 1.5 MB to draw a dozen icons; _static/tipline.css
      draws them from the theme's webfont instead, so neither the tags nor the file are published.
    """
    for page in outdir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = ICON_SCRIPT.sub("", text.replace('role="doc-biblioentry"', 'role="listitem"'))
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
    title = html.escape(app.config.html_title or app.config.project)
    # the 404 page is served at any address, so it cannot link the favicon by a relative path
    icon = quote((outdir / "_static" / "favicon.svg").read_text(encoding="utf-8").strip())
    (outdir / "404.html").write_text(NOT_FOUND.format(title=title, icon=icon), encoding="utf-8")
    shutil.copy2(outdir / "_static" / "favicon.svg", outdir / "favicon.svg")
    from .data import DATA as data

    target = outdir / "data"
    target.mkdir(exist_ok=True)
    for path in sorted(data.glob("*.csv")) + [data / "datapackage.json"]:
        shutil.copy2(path, target / path.name)
    from .answer import write as write_answer

    write_answer(target / "answer.json")  # the book's headline figures, machine-readable (tipline/answer.py)
    benchmark = Path(app.srcdir) / "scripts" / "benchmark.json"
    if benchmark.exists():  # the measurements behind the reproducibility appendix's chart
        shutil.copy2(benchmark, target / benchmark.name)


def setup(app):
    app.connect("config-inited", _theme_mode)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
