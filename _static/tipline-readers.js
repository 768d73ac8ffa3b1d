// Readers' tools, served as a file so the pages' Content-Security-Policy can refuse inline code:
// copy-link buttons beside figure numbers, the page's address in "Cite this page", and the title
// and source line in every image exported with vega-embed's own "Save as SVG / PNG" actions.
(function () {
  function pageAddress() { return location.href.split("#")[0]; }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.tipline-copy-link");
    if (!button) { return; }
    var anchor = button.getAttribute("data-anchor");
    var link = pageAddress() + "#" + anchor;
    var said = function (words) {
      button.textContent = words;
      setTimeout(function () { button.textContent = "Copy link"; }, 2500);
    };
    history.replaceState(null, "", "#" + anchor);  // the address bar holds the link as well
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(link).then(function () { said("Link copied"); },
                                               function () { said("Link is in the address bar"); });
    } else {
      said("Link is in the address bar");
    }
  });

  function addresses() {
    if (!/^https?:$/.test(location.protocol)) { return; }
    document.querySelectorAll(".tipline-cite-url[data-relative]").forEach(function (el) {
      el.textContent = pageAddress();
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", addresses); } else { addresses(); }

  // Lines of at most `width` characters, broken between words.
  function wrap(text, width) {
    var lines = [], line = "";
    text.split(/\s+/).forEach(function (word) {
      if (line && (line + " " + word).length > width) { lines.push(line); line = word; } else { line = line ? line + " " + word : word; }
    });
    if (line) { lines.push(line); }
    return lines;
  }

  // A copy of the chart with its caption as title and its source line beneath, drawn off screen.
  function framed(el, spec) {
    var copy = JSON.parse(JSON.stringify(spec));
    var width = Math.max(360, el.getBoundingClientRect().width);
    var old = typeof spec.title === "string" ? spec.title : (spec.title && spec.title.text) || "";
    var notes = [].concat(old ? wrap([].concat(old).join(" "), width / 6.2) : [],
                          wrap(el.getAttribute("data-source") || "", width / 6.2),
                          wrap("From " + document.title + ", " + pageAddress() + "#" + el.getAttribute("data-figure"), width / 6.2));
    copy.title = {text: wrap(el.getAttribute("data-caption") || "", width / 7.8), subtitle: notes, anchor: "start",
                  fontSize: 14, subtitleFontSize: 11, subtitleColor: "#444444", subtitlePadding: 6, offset: 12};
    var holder = document.createElement("div");
    holder.className = "tipline-export";
    holder.setAttribute("aria-hidden", "true");
    holder.style.width = el.clientWidth + "px";
    document.body.appendChild(holder);
    return vegaEmbed(holder, copy, {actions: false, renderer: "svg", ast: true}).then(function (result) {
      return result.view;
    });
  }

  // Called by the chart script once vega-embed has drawn a chart: its export actions call
  // view.toImageURL, which now renders the framed copy (with the reader's slider settings).
  // vega-embed fills a link's address only after the button is pressed (asynchronously), so a quick
  // click could save the page instead of the image: each click waits for its own image.
  window.tiplineFrameExport = function (el, spec, view) {
    var copy = null;
    var prepare = function () { copy = copy || framed(el, spec); return copy; };
    view.toImageURL = function (type, scale) {
      return prepare().then(function (other) {
        (spec.params || []).forEach(function (param) {
          if (!param.select) { try { other.signal(param.name, view.signal(param.name)); } catch (e) { /* not a signal */ } }
        });
        return other.runAsync();
      }).then(function (other) { return other.toImageURL(type, scale); });
    };
    var menu = el.querySelector("details");
    if (menu) { menu.addEventListener("toggle", function () { if (menu.open) { prepare(); } }); }
    el.querySelectorAll(".vega-actions a[download]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        if (link.tiplineReady) { link.tiplineReady = false; return; }
        event.preventDefault();
        var type = /\.png$/.test(link.download) ? "png" : "svg";
        view.toImageURL(type, type === "png" ? 2 : 1).then(function (url) {
          link.href = url;
          link.tiplineReady = true;
          link.click();
        });
      });
    });
  };
})();
