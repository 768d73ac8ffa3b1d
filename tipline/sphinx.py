"""Sphinx extension: serve the chart bundle locally and publish the datasets.

* writes _static/tipline-charts.js (vega + vega-lite + vega-embed from the pinned
  vl-convert-python package, wrapped in a function so its top-level names cannot clash
  with Sphinx's) and adds it only to pages that contain a chart;
* copies data/*.csv and datapackage.json to <site>/data/ so every chart's "Data" link
  and the datasets appendix resolve offline.
"""
from __future__ import annotations

import shutil
from pathlib import Path

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
    import vl_convert

    target = outdir / "_static" / BUNDLE
    target.parent.mkdir(parents=True, exist_ok=True)
    code = "(function(){\n" + vl_convert.javascript_bundle() + "\n})();\n" + HELPER
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


def _finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    _write_bundle(outdir)
    from .data import DATA as data

    target = outdir / "data"
    target.mkdir(exist_ok=True)
    for path in sorted(data.glob("*.csv")) + [data / "datapackage.json"]:
        shutil.copy2(path, target / path.name)


def setup(app):
    app.connect("config-inited", _theme_mode)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
