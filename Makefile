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

# jupyter-cache only hashes notebook code and Sphinx does not track data/, so a changed CSV
# would otherwise publish old numbers. tipline.cache validates every dataset first (a broken
# CSV stops the build), then re-executes the chapters that read a changed dataset, or every
# chapter when the package or the configuration changed (see tipline/cache.py).
book: $(BIN)/jupyter-book
	@mkdir -p _build
	@$(BIN)/python -m tipline.cache; status=$$?; \
	if [ $$status -ne 0 ] && [ $$status -ne 10 ]; then \
	  rm -rf _build/html; echo "BUILD FAILED: nothing was published" >&2; exit 1; \
	elif [ $$status -eq 0 ]; then \
	  TIPLINE_DEPS=$(CURDIR)/_build/.deps $(BIN)/jupyter-book build -n -W --keep-going . \
	    || { rm -rf _build/html; echo "BUILD FAILED: nothing was published" >&2; exit 1; }; \
	  $(BIN)/python -m tipline.cache --record; \
	fi
	@echo "The book is in _build/html/index.html. Serve it with: make serve (http://127.0.0.1:8000)"

# Re-execute every chapter in place (after editing one, before committing it for nbval).
notebooks: $(BIN)/jupyter-book
	@for chapter in chapters/*.ipynb; do \
	  echo "executing $$chapter"; \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace --log-level=ERROR "$$chapter" || exit 1; \
	done

# Timings of builds, tests and page loads on this machine; writes scripts/benchmark.json.
bench: $(BIN)/jupyter-book
	$(BIN)/python scripts/bench.py

serve:
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory _build/html 8000

test: $(BIN)/jupyter-book
	$(BIN)/python -m pytest

clean:
	rm -rf _build
