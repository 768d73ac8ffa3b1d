# The two commands the README documents: `make book` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := _build/.inputs-hash

.PHONY: book test clean serve

$(BIN)/jupyter-book: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# jupyter-cache only hashes notebook code and Sphinx does not track data/, so a changed CSV
# or package would otherwise publish old numbers: when their hash changes, drop the cache
# and rebuild every page.
book: $(BIN)/jupyter-book
	@mkdir -p _build
	@new=$$(cat data/* tipline/*.py _config.yml | sha256sum | cut -d' ' -f1); \
	old=$$(cat $(STAMP) 2>/dev/null); \
	if [ "$$new" != "$$old" ]; then \
	  echo "data/ or tipline/ changed: re-executing every chapter"; \
	  rm -rf _build/.jupyter_cache _build/html _build/jupyter_execute _build/.doctrees; \
	fi; \
	$(BIN)/jupyter-book build -n -W --keep-going . || { rm -rf _build/html; echo "BUILD FAILED: nothing was published" >&2; exit 1; }; \
	echo "$$new" > $(STAMP)
	@echo "The book is in _build/html/index.html. Serve it with: make serve (http://127.0.0.1:8000)"

serve:
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory _build/html 8000

test: $(BIN)/jupyter-book
	$(BIN)/python -m pytest

clean:
	rm -rf _build
