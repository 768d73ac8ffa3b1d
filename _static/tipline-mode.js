// The reader's light or dark choice, applied before the page is drawn (the theme's inline
// script, served from a file so that pages run no inline code: tipline/site/sphinx.py).
document.documentElement.dataset.mode = localStorage.getItem("mode") || "auto";
document.documentElement.dataset.theme = localStorage.getItem("theme") || "auto";
