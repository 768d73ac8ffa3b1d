"""The one headless Chromium the book uses: `pdf` prints book.pdf with it, and the tests and the
benchmark (tests/helpers.py, scripts/bench.py) open pages with the same arguments."""
from __future__ import annotations

import os
from pathlib import Path

# Debian's Chromium (what .ci/run installs); TIPLINE_CHROMIUM points elsewhere, e.g. to the
# Google Chrome that GitHub's Ubuntu runners ship
CHROMIUM = Path(os.environ.get("TIPLINE_CHROMIUM", "/usr/bin/chromium"))
# headless, without Chromium's own sandbox (CI runs as root), nothing fetched in the background, and
# no host name but 127.0.0.1 resolves: nothing a page asks of another host leaves the machine
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
