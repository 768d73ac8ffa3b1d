// The theme's two inline onclick handlers, served from a file so that the pages'
// Content-Security-Policy can refuse every inline handler (tipline/sphinx.py rewrites them
// to data-tipline-action attributes).
(function () {
  var actions = {
    print: function () { window.print(); },
    fullscreen: function () { if (window.toggleFullScreen) { window.toggleFullScreen(); } }
  };
  // a printed page shows each chart's data table
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details.tipline-chart-data").forEach(function (details) { details.open = true; });
  });
  // a table wider than its box scrolls; keyboard users need to reach the scroll region
  window.addEventListener("load", function () {
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
