"""Every number the prose states, for readers who quote the book: `figures.json`, and what
changed between releases.

A chapter glues each number it states (`tipline.presentation.text.say`); the glued value is what
the page prints. This module reads those values back -- from a notebook's committed outputs, or
from the copy myst-nb writes while Sphinx reads the page -- with the sentence of the prose that
states each one, so a figure can be found by its words as well as by its key.

Releases. `releases/<version>.json` holds the figures of each published version, derived with
git from the notebooks committed at that version's commit:

    python -m tipline.site.figures release 0.2.1 c70b023

(the commit a version was published from is the last commit, on the date its CHANGELOG entry
gives, whose CITATION.cff carries that version; `python -m tipline.site.figures commit 0.2.1`
finds it). The changes page compares each release with the one before it, and the book as built
with the latest release (tipline.site.reader).
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RELEASES = ROOT / "releases"
GLUE_ROLE = re.compile(r"\{glue(?::text|:md|:any|:)?\}`([^`:]+)(?::[a-z]+)?`")  # `key` or `key:myst`
CITE_ROLE = re.compile(r"\s*\{cite(?::[a-z]+)?\}`[^`]*`")
ROLE = re.compile(r"\{[a-z:]+\}`([^`]*)`")
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
SENTENCE_END = re.compile(r"(?<=[.!?])[\u201d\"')]*\s+(?=[A-Z0-9\u201c\"(])")
MARK = "\x00"


def _text(value) -> str:
    """A glued value as the page prints it: myst-nb reads a text repr back with literal_eval."""
    if isinstance(value, list):
        value = "".join(value)
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    return parsed if isinstance(parsed, str) else value


def _value(data: dict, prefix: str = "") -> str:
    """What the page prints for a glued output: its Markdown (a quotation, without the citation
    role), else its text."""
    if prefix + "text/markdown" in data:
        markdown = data[prefix + "text/markdown"]
        return _plain("".join(markdown) if isinstance(markdown, list) else markdown)
    return _text(data.get(prefix + "text/plain", ""))


def glued(notebook: dict) -> dict[str, dict]:
    """Each key glued in a notebook's committed outputs: {"value": text, "datasets": [...]}."""
    found = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {})
            if "scrapbook" in meta:
                found[meta["scrapbook"]["name"]] = {"value": _value(output.get("data", {}), meta["scrapbook"].get("mime_prefix", "")),
                                                    "datasets": meta.get("tipline", {}).get("datasets", [])}
    return found


def glued_by_sphinx(path: Path) -> dict[str, dict]:
    """The same, from the `<page>.glue.json` myst-nb writes while it reads a page."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {key: {"value": _value(output.get("data", {})),
                  "datasets": output.get("metadata", {}).get("tipline", {}).get("datasets", [])}
            for key, output in data.items()}


def _plain(markdown: str) -> str:
    """Prose without MyST markup: roles and links as their text, no emphasis or heading marks."""
    text = CITE_ROLE.sub("", markdown)
    text = LINK.sub(r"\1", text)
    text = ROLE.sub(r"\1", text)
    text = re.sub(r"^\s*(?:#+|[-*]|[0-9]+\.)\s+", "", text, flags=re.M)
    text = re.sub(r"(\*\*|\*|`)", "", text)
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)  # Markdown's escaped punctuation, as printed
    return " ".join(text.split())


def sentences(notebook: dict, values: dict[str, str]) -> dict[str, str]:
    """For each glued key the prose uses, the first sentence that states it (values filled in)."""
    found: dict[str, str] = {}
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = "".join(cell.get("source", []))
        for key in dict.fromkeys(GLUE_ROLE.findall(source)):
            if key in found:
                continue
            marked = GLUE_ROLE.sub(lambda m: MARK if m.group(1) == key else values.get(m.group(1), ""), source, count=0)
            for paragraph in re.split(r"\n\s*\n", marked):
                if MARK in paragraph:
                    sentence = next(s for s in SENTENCE_END.split(_plain(paragraph)) if MARK in s)
                    found[key] = sentence.replace(MARK, values.get(key, "")).strip()
                    break
    return found


def page_title(notebook: dict) -> str:
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            match = re.search(r"^#\s+(.+)$", "".join(cell.get("source", [])), re.M)
            if match:
                return _plain(match.group(1))
    return ""


def page_figures(page: str, notebook: dict, glue: dict[str, dict], title: str | None = None) -> list[dict]:
    """The figures of one page, in the order the chapter glued them."""
    values = {key: entry["value"] for key, entry in glue.items()}
    said = sentences(notebook, values)
    title = title or page_title(notebook)
    return [{"key": key, "value": entry["value"], "page": page, "title": title, "sentence": said.get(key, ""),
             "datasets": entry["datasets"]} for key, entry in glue.items()]


# --- releases -------------------------------------------------------------------------------------

def _git(*args: str, repo: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def _toc_pages(toc: dict) -> list[str]:
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part.get("chapters", [])]
    return pages


def release_commit(version: str, repo: Path = ROOT) -> str:
    """The commit `version` was published from: the last commit on the main line (first parents),
    on or before the date the CHANGELOG gives the version, whose CITATION.cff carries it."""
    changelog = (repo / "CHANGELOG.md").read_text(encoding="utf-8")
    date = re.search(rf"^## {re.escape(version)} \(([0-9-]+)\)", changelog, re.M).group(1)
    line = [entry.split() for entry in _git("log", "--first-parent", "--format=%H %cs", "HEAD", repo=repo).splitlines()]
    touching = set(_git("log", "--first-parent", "--format=%H", "HEAD", "--", "CITATION.cff", repo=repo).split())
    found, current = None, None
    for commit, day in reversed(line):  # oldest first: the version in force at each commit
        if commit in touching:
            match = re.search(r'^version:\s*"?([^"\s]+)"?\s*$', _git("show", f"{commit}:CITATION.cff", repo=repo), re.M)
            current = match.group(1) if match else None
        if day <= date and current == version:
            found = commit
    if found is None:
        raise LookupError(f"no commit on or before {date} carries version {version} in CITATION.cff")
    return found


def release(version: str, commit: str, repo: Path = ROOT) -> dict:
    """The figures of a release, from the notebooks committed at `commit`."""
    commit = _git("rev-parse", commit, repo=repo).strip()
    date = _git("show", "-s", "--format=%cs", commit, repo=repo).strip()
    figures = []
    for page in _toc_pages(yaml.safe_load(_git("show", f"{commit}:_toc.yml", repo=repo))):
        try:
            notebook = json.loads(_git("show", f"{commit}:{page}.ipynb", repo=repo))
        except subprocess.CalledProcessError:
            continue  # a Markdown page: no glued figures
        figures += [{key: value for key, value in figure.items() if key != "datasets"}
                    for figure in page_figures(page, notebook, glued(notebook))]
    return {"version": version, "commit": commit, "date": date,
            "how": "the values glued in the notebooks committed at this commit (tipline.site.figures)",
            "figures": figures}


def releases(folder: Path = RELEASES) -> list[dict]:
    """Every stored release, oldest first."""
    def order(record):
        return tuple(int(part) for part in record["version"].split("."))
    return sorted((json.loads(path.read_text(encoding="utf-8")) for path in folder.glob("*.json")), key=order)


def changed(before: list[dict], after: list[dict]) -> list[dict]:
    """The figures of `before` whose value differs in `after` (in the order of `after`), then those
    `after` no longer publishes: [{"key", "page", "title", "sentence", "was", "now"}], `now` None
    for a figure no longer published. Only figures a page states count (a value glued but used in
    no sentence was never published)."""
    old = {figure["key"]: figure for figure in before if figure["sentence"]}
    new = {figure["key"]: figure for figure in after if figure["sentence"] or figure["key"] in old}
    rows = [{"key": key, "page": figure["page"], "title": figure["title"], "sentence": figure["sentence"] or old[key]["sentence"],
             "was": old[key]["value"], "now": figure["value"]}
            for key, figure in new.items() if key in old and old[key]["value"] != figure["value"]]
    rows += [{"key": key, "page": figure["page"], "title": figure["title"], "sentence": figure["sentence"],
              "was": figure["value"], "now": None} for key, figure in old.items() if key not in new]
    return rows


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "commit":
        print(release_commit(argv[1]))
        return 0
    if len(argv) in (2, 3) and argv[0] == "release":
        version = argv[1]
        commit = argv[2] if len(argv) == 3 else release_commit(version)
        record = release(version, commit)
        RELEASES.mkdir(exist_ok=True)
        path = RELEASES / f"{version}.json"
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}: {len(record['figures'])} figures from {record['commit'][:10]} ({record['date']})")
        return 0
    print("usage: python -m tipline.site.figures release VERSION [COMMIT] | commit VERSION", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
