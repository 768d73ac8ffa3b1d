// The site's one script of its own (jupyter-book adds every _static/*.js file to every page):
// * draws every chart of the page from its spec blocks (tipline/presentation/charts.py), in the
//   layout made for the width the chart is given: a phone layout below data-narrow-below px;
// * serves the theme's two inline onclick handlers from a file, so that the pages'
//   Content-Security-Policy can refuse every inline handler (tipline/site/sphinx.py rewrites them
//   to data-tipline-action attributes);
// * small reading aids: data tables opened for print, wide tables reachable by keyboard, drawers
//   closed when a link in them is followed.
(function () {
  // ---------------------------------------------------------------- charts
  // vega-embed's export actions only: "view source" and "open in editor" lead to another host.
  // `ast: true` selects vega's expression interpreter, so the policy needs no 'unsafe-eval'.
  var ACTIONS = {export: true, source: false, compiled: false, editor: false};
  // what a printed page opens (tipline/site/pdf.py opens the same)
  var PRINTED_OPEN = "details.tipline-chart-data, .tipline-source details, details.tipline-changes";

  function specs(el) {
    var wide = JSON.parse(document.querySelector('script.tipline-spec[data-chart="' + el.id + '"]').textContent);
    var block = document.querySelector('script.tipline-spec-phone[data-chart="' + el.id + '"]');
    var phone = block ? JSON.parse(block.textContent) : wide;
    // the phone layout names the wide one's datasets rather than repeating them
    phone.datasets = Object.assign({}, wide.datasets || {}, phone.datasets || {});
    return {wide: wide, phone: phone};
  }

  function layoutFor(el) {
    var below = parseFloat(el.getAttribute("data-narrow-below") || "0");
    return el.clientWidth < below ? "phone" : "wide";
  }

  // The panels of a compound chart (facets, concatenations) cannot take the container's width in
  // Vega-Lite: their widths, listed in usermeta.tiplineFit, are set from the chart's width, and
  // corrected once by what the first drawing measured (axes and labels take what they need).
  function setWidths(spec, width) {
    ((spec.usermeta || {}).tiplineFit || []).forEach(function (path) {
      var node = spec;
      path.slice(0, -1).forEach(function (key) { node = node[key]; });
      node[path[path.length - 1]] = Math.max(80, Math.round(width));
    });
  }

  function embed(el, spec, name) {
    return vegaEmbed(el, spec, {actions: ACTIONS, renderer: "svg", ast: true, downloadFileName: name});
  }

  function available(el) {
    var style = getComputedStyle(el);
    return el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  }

  function draw(el) {
    var layout = layoutFor(el);
    var fail = function (error) {
      el.textContent = "This chart could not be drawn: " + error;
      console.error(error);
    };
    var spec;
    try { spec = specs(el)[layout]; } catch (error) { fail(error); return Promise.resolve(); }
    var name = el.getAttribute("data-figure") ||
      (typeof spec.title === "string" ? spec.title : el.id).replace(/[^A-Za-z0-9]+/g, "-").toLowerCase();
    var fits = ((spec.usermeta || {}).tiplineFit || []).length > 0;
    var panel = available(el) - 60;
    if (fits) { setWidths(spec, panel); }
    if (el.tiplineResult) { el.tiplineResult.finalize(); }
    el.removeAttribute("data-ready");
    el.setAttribute("data-layout", layout);
    el.tiplineWidth = el.clientWidth;
    return embed(el, spec, name).then(function (result) {
      if (!fits) { return result; }
      var svg = el.querySelector("svg");
      var over = svg ? svg.getBoundingClientRect().width - available(el) : 0;
      if (Math.abs(over) < 4) { return result; }
      result.finalize();
      setWidths(spec, panel - over);
      return embed(el, spec, name);
    }).then(function (result) {
      el.tiplineResult = result;
      // the menu's toggle is an icon only: give it a name screen readers can say
      var toggle = el.querySelector(".vega-actions-wrapper summary, details summary");
      if (toggle) { toggle.setAttribute("aria-label", "Save this chart as an image (SVG or PNG)"); }
      // the exported images carry the figure's caption and source line (_static/tipline-readers.js)
      el.tiplineView = result.view;
      el.tiplineSpec = spec;
      if (window.tiplineFrameExport) { window.tiplineFrameExport(el, spec, result.view); }
      el.setAttribute("data-ready", "");  // drawn in its final size (for the PDF printer and the tests)
      keepTarget();
    }).catch(fail);
  }

  // A chart drawn above the place a link led to (a section, "Cite this page") pushes that place
  // down the page: until the reader scrolls by themselves, it is brought back into view.
  var following = Boolean(location.hash);
  function keepTarget() {
    if (!following || !location.hash) { return; }
    var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target) { target.scrollIntoView(); }
  }
  window.addEventListener("hashchange", function () { following = true; });
  ["wheel", "touchstart", "keydown", "mousedown"].forEach(function (kind) {
    window.addEventListener(kind, function () { following = false; }, {passive: true});
  });

  function drawAll() {
    if (!window.vegaEmbed) { return; }
    document.querySelectorAll(".tipline-chart").forEach(function (el) {
      if (el.hasAttribute("data-drawn")) { return; }
      el.setAttribute("data-drawn", "");
      draw(el);
    });
  }

  // a phone turned sideways, or a window made narrower: a chart whose layout no longer suits its
  // width is drawn again (and a compound chart is fitted again)
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      document.querySelectorAll(".tipline-chart[data-drawn]").forEach(function (el) {
        var fits = el.tiplineSpec && ((el.tiplineSpec.usermeta || {}).tiplineFit || []).length > 0;
        if (layoutFor(el) !== el.getAttribute("data-layout") || (fits && Math.abs(el.clientWidth - el.tiplineWidth) > 8)) {
          draw(el);
        }
      });
    }, 150);
  });
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", drawAll); } else { drawAll(); }

  // ---------------------------------------------------------------- the theme's buttons, reading aids
  var actions = {
    print: function () { window.print(); },
    fullscreen: function () { if (window.toggleFullScreen) { window.toggleFullScreen(); } }
  };
  // a printed page shows each chart's data table and its list of sources, each table fitted to the
  // printed column
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll(PRINTED_OPEN).forEach(function (details) { details.open = true; });
    fitTables();
  });
  // A table wider than its box (a phone, a narrow window, the printed column) is laid out one row
  // at a time, each cell under its column's name (data-label, tipline/presentation/tables.py;
  // _static/tipline-readers.css), rather than scrolling sideways a reader would have to discover.
  var TABLES = "table.tipline-table, table.tipline-data-table";
  function fitTables() {
    document.querySelectorAll(TABLES).forEach(function (table) {
      var box = table.parentElement;
      table.classList.remove("tipline-stacked");
      if (!box || box.clientWidth === 0) { return; }  // hidden (a closed data table): fitted when opened
      if (table.getBoundingClientRect().width > box.clientWidth + 1) { table.classList.add("tipline-stacked"); }
    });
  }
  var fitting = null;
  window.addEventListener("resize", function () { clearTimeout(fitting); fitting = setTimeout(fitTables, 150); });
  document.addEventListener("toggle", function (event) {
    if (event.target.tagName === "DETAILS" && event.target.open) { fitTables(); }
  }, true);
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", fitTables); } else { fitTables(); }
  // a table still wider than its box scrolls; keyboard users need to reach the scroll region
  window.addEventListener("load", function () {
    fitTables();
    document.querySelectorAll("div.cell_output div.output.text_html").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1 && box.querySelector("table")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", "Table (scrolls sideways)");
      }
    });
  });
  // On narrow screens the theme shows the navigation and the page's contents in a <dialog>; a
  // link followed from it (a section of the same page, most often) closes it, as readers expect.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("dialog a[href]");
    var dialog = link && link.closest("dialog");
    if (dialog && dialog.open) { dialog.close(); }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-tipline-action]");
    if (button && actions[button.getAttribute("data-tipline-action")]) {
      actions[button.getAttribute("data-tipline-action")]();
    }
  });
})();
