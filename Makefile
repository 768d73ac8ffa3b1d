# The two commands the README documents: `make book` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: book test clean serve notebooks bench

$(BIN)/jupyter-book: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# tipline.site.build does the whole build: validates every dataset (a broken CSV stops it), regenerates
# references.bib, executes only the chapters whose code, data, modules or settings changed (on every
# core, one progress line each), builds the pages with Sphinx (-n -W) from the cache, and only then
# replaces _build/html. A failure removes _build/html; an interrupt leaves it as it was.
book: $(BIN)/jupyter-book
	@$(BIN)/python -m tipline.site.build
	@echo "The book is in _build/html/index.html. Serve it with: make serve (http://127.0.0.1:8000)"

# Re-execute every chapter in place on every core (after editing one, before committing it for nbval).
notebooks: $(BIN)/jupyter-book
	@$(BIN)/python -m tipline.site.build --notebooks

# Timings of builds, tests and page loads on this machine; writes scripts/benchmark.json.
bench: $(BIN)/jupyter-book
	$(BIN)/python scripts/bench.py

serve:
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory _build/html 8000

test: $(BIN)/jupyter-book
	$(BIN)/python -m pytest -n auto

clean:
	rm -rf _build
