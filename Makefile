# The commands the README documents: `make book`, `make check` (the author's fast loop) and `make test` (everything, CI).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: book check test clean serve notebooks bench

# Python keeps compiled modules (and pytest its rewritten test modules and plugins) in __pycache__:
# a shell that turns this off (PYTHONDONTWRITEBYTECODE) would make every test process compile them
# again, about 6 s each. (The build turns it off for the chapters' kernels itself.)
unexport PYTHONDONTWRITEBYTECODE

$(BIN)/jupyter-book: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# tipline.site.build does the whole build: validates every dataset (a broken CSV stops it), regenerates
# references.bib, executes in place only the chapters whose code, data, modules or settings changed (on
# every core, one progress line each, each stamped with what it read), builds the pages with Sphinx
# (-n -W, execution off) and only then replaces _build/html. A failure or an interrupt leaves it as it was.
book: $(BIN)/jupyter-book
	@$(BIN)/python -m tipline.site.build
	@echo "The book is in _build/html/index.html. Serve it with: make serve (http://127.0.0.1:8000)"

# `make book` executes the chapters in place: this old name does the same.
notebooks: book

# Timings of builds, tests and page loads on this machine; writes scripts/benchmark.json.
bench: $(BIN)/jupyter-book
	$(BIN)/python scripts/bench.py

serve:
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory _build/html 8000

# Data, model, prose guards, stamps and layers: no book build, no notebook execution, no browser.
check: $(BIN)/jupyter-book
	$(BIN)/python -m pytest -n auto -m "not full" tests

# Everything, as CI runs it: the book built once per variant, nbval on every chapter, the browser checks.
# One test process more than there are cores: with one per core the processors stood idle 6-8% of a
# run while tests waited on a browser, a build or a kernel; with one more, 2-3% (a run about 3% shorter).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: $(BIN)/jupyter-book
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

clean:
	rm -rf _build
