"""Load the evidence base in data/ and refuse anything that does not match its schema.

Data arrive by pull request, so every cell is untrusted input. The schema lives in one place,
data/datapackage.json (a Frictionless Data Package), and every CSV is checked against it here
before a chapter sees it. The first problem stops the load with ONE message naming the file,
the physical line (a quoted cell may span lines) and the column.

The rules, beyond the types and constraints the package states:

* text: UTF-8 without a byte-order mark; LF or CRLF line endings, normalised to LF on read (the
  files already mix both and git may convert them on checkout); a bare CR, a control character,
  a blank line (anywhere, the last one included) or a file that does not end in a line break
  (e.g. cut off inside its last quoted cell) is refused;
* no cell has leading or trailing spaces, whatever its type (so " 12" is refused alike in integer
  and number fields);
* integers and numbers are ASCII digits only ([0-9], never `\\d`), numbers finite (no nan, inf,
  or 1e999); every integer and number field must state a minimum and a maximum in the package,
  and a year is never later than the current year;
* every CSV in data/ is listed in the package, and every resource path is a plain file name;
* URLs (sources.csv) are http: or https: only; the text of a source has none of { } \\ ~,
  which references.bib would read as LaTeX syntax (tipline.site.bib escapes & % # _).

Why the hand-written checks and not frictionless (pinned, and used by a test as a second
opinion on the package itself), measured on this machine: `load_all` reads and checks all files
in 0.05 s, frictionless's `Package.validate()` in 0.4 s (plus 0.2 s to import it); frictionless
accepted an integer written in Arabic-Indic digits ("\u0661..." read as a number), reports
"row at position N" (records, not the physical line an editor shows), refuses "nan" only through
two generic constraint messages, cannot state "no later than this year", and knows none of the
domain rules below. So the loader keeps its own checks, one message per problem, each naming
file, line and column the same way.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
# TIPLINE_DATA lets a test run the chapters against an edited copy of data/.
DATA = Path(os.environ.get("TIPLINE_DATA", ROOT / "data")).resolve()

INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", re.ASCII)
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
# what a URL may contain: no spaces, quotes, angle brackets or backslashes, whatever its scheme
URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*)?", re.ASCII)
BIBTEX_SYNTAX = re.compile(r"[{}\\~]")  # characters references.bib would read as LaTeX syntax
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # a line break (\n) is allowed inside a quoted cell
RESOURCE_PATH = re.compile(r"[a-z0-9_]+\.csv", re.ASCII)
YEAR_FIELDS = ("year", "period_start", "period_end")
TYPES = ("string", "integer", "number", "boolean", "date")


class DataError(ValueError):
    """A value in data/ that breaks the Data Package schema or a domain rule."""

    def __init__(self, path: Path, line: int | None, column: str | None, message: str):
        where = _display(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.column = path, line, column


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def this_year() -> int:
    return date.today().year


def _text(path: Path) -> str:
    """The file as text, or a DataError naming the line of the first byte that is not UTF-8."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        offset = error.start - raw.rfind(b"\n", 0, error.start)
        raise DataError(path, line, None, f"byte 0x{raw[error.start]:02x} (byte {offset} of the line) is not UTF-8; "
                        "save the file as UTF-8") from None
    if text.startswith("\ufeff"):
        raise DataError(path, 1, None, "starts with a byte-order mark; save the file as UTF-8 without BOM")
    return text


def package(data_dir: Path = DATA) -> dict:
    """datapackage.json, checked enough that the loader can trust its shape."""
    path = data_dir / "datapackage.json"
    if not path.exists():
        raise DataError(path, None, None, "file is missing")
    try:
        pkg = json.loads(_text(path))
    except json.JSONDecodeError as error:
        raise DataError(path, error.lineno, None, f"not valid JSON at character {error.colno}: {error.msg}") from None
    for resource in pkg.get("resources", []):
        name = resource.get("name", "?")
        if not RESOURCE_PATH.fullmatch(str(resource.get("path", ""))):
            raise DataError(path, None, None, f"resource {name!r}: path {resource.get('path')!r} is not a plain "
                            "file name in data/ (lower-case letters, digits, _ and .csv)")
        for field in resource.get("schema", {}).get("fields", []):
            where = f"resource {name!r}, field {field.get('name')!r}"
            if field.get("type") not in TYPES:
                raise DataError(path, None, None, f"{where}: type {field.get('type')!r} is not one of {', '.join(TYPES)}")
            rules = field.get("constraints", {})
            if field["type"] in ("integer", "number") and not ("minimum" in rules and "maximum" in rules):
                raise DataError(path, None, None, f"{where}: a number field must state a minimum and a maximum")
    return pkg


def _parse(value: str, field: dict):
    kind = field["type"]
    if kind == "integer":
        if not INTEGER.fullmatch(value):
            raise ValueError(f"{value!r} is not a whole number (digits 0-9 only)")
        return int(value)
    if kind == "number":
        if not NUMBER.fullmatch(value):
            raise ValueError(f"{value!r} is not a number (digits 0-9, a point, an exponent; no nan or inf)")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        return number
    if kind == "boolean":
        if value not in ("true", "True", "TRUE", "false", "False", "FALSE"):  # frictionless's default spellings
            raise ValueError(f"{value!r} is not true or false")
        return value.lower() == "true"
    if kind == "date":
        try:
            if not DATE.fullmatch(value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return value


def _check(value, field: dict) -> None:
    rules = field.get("constraints", {})
    if "enum" in rules and value not in rules["enum"]:
        raise ValueError(f"{value!r} is not one of {', '.join(map(str, rules['enum']))}")
    if "minimum" in rules and value < rules["minimum"]:
        raise ValueError(f"{value!r} is below the minimum {rules['minimum']}")
    if "maximum" in rules and value > rules["maximum"]:
        raise ValueError(f"{value!r} is above the maximum {rules['maximum']:,}")
    if field["type"] == "integer" and field["name"] in YEAR_FIELDS and value > this_year():
        raise ValueError(f"{value!r} is later than the current year {this_year()}")
    if field["type"] == "date" and value > date.today():
        raise ValueError(f"{value.isoformat()} is in the future")
    if "minLength" in rules and len(value) < rules["minLength"]:
        raise ValueError(f"{value!r} is shorter than {rules['minLength']} characters")
    if "pattern" in rules and not re.fullmatch(rules["pattern"], value, re.ASCII):
        raise ValueError(f"{value!r} does not match the pattern {rules['pattern']}")
    if field.get("format") == "uri":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or not URL.fullmatch(value):
            raise ValueError(f"{value!r} is not an http: or https: address")


def _records(path: Path):
    """(physical line of the record's first cell, cells, physical line of each cell) per record."""
    text = _text(path).replace("\r\n", "\n")
    if "\r" in text:
        line = text[:text.index("\r")].count("\n") + 1
        raise DataError(path, line, None, "contains a carriage return that does not end a line; "
                        "use LF (or CRLF) line endings only")
    if text and not text.endswith("\n"):
        raise DataError(path, text.count("\n") + 1, None,
                        "the file does not end with a line break: it may have been cut off (an unclosed quote?)")
    # split on LF only: str.splitlines would also break at U+2028, form feeds and the like
    reader = csv.reader((line + "\n" for line in text.split("\n")[:-1]), strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DataError(path, start, None, f"is not valid CSV ({error}); an unclosed quote?") from None
        if not cells:
            raise DataError(path, start, None, "is blank: remove blank lines (the last line of the file included)")
        lines, line = [], start
        for cell in cells:
            lines.append(line)
            line += cell.count("\n")
        yield start, cells, lines
        start = reader.line_num + 1


def _read(resource: dict, data_dir: Path) -> tuple[pd.DataFrame, list[int]]:
    path = data_dir / resource["path"]
    fields = resource["schema"]["fields"]
    names = [f["name"] for f in fields]
    if not path.exists():
        raise DataError(path, None, None, "file is missing")
    records = _records(path)
    first = next(records, None)
    header = first[1] if first else None
    if header != names:
        missing = [n for n in names if n not in (header or [])]
        extra = [n for n in (header or []) if n not in names]
        detail = (f"missing {missing}" if missing else "") + (f" unexpected {extra}" if extra else "")
        raise DataError(path, 1, (missing or extra or [None])[0],
                        f"header does not match the schema ({detail.strip() or 'order differs'})")
    rows, lines, seen = [], [], {}
    key = resource["schema"].get("primaryKey", [])
    for start, raw, cell_lines in records:
        if len(raw) != len(names):
            raise DataError(path, start, None, f"has {len(raw)} cells, the schema has {len(names)} columns")
        row = {}
        for field, cell, line in zip(fields, raw, cell_lines):
            try:
                if CONTROL.search(cell):
                    raise ValueError(f"{cell!r} contains a control character")
                if cell != cell.strip():
                    raise ValueError(f"{cell!r} has spaces around it")
                if cell == "":
                    if field.get("constraints", {}).get("required"):
                        raise ValueError("value is required but empty")
                    row[field["name"]] = "" if field["type"] == "string" else None
                    continue
                value = _parse(cell, field)
                _check(value, field)
            except ValueError as error:
                raise DataError(path, line, field["name"], str(error)) from None
            row[field["name"]] = value
        ident = tuple(row[k] for k in key)
        if key and ident in seen:
            raise DataError(path, start, key[0], f"duplicate key {dict(zip(key, ident))} (first on line {seen[ident]})")
        seen[ident] = start
        rows.append(row)
        lines.append(start)
    frame = pd.DataFrame(rows, columns=names)
    frame.attrs["lines"] = lines  # the physical line each row starts on, for later messages
    return frame, lines


def read_resource(resource: dict, data_dir: Path = DATA) -> pd.DataFrame:
    """Read one CSV of the package, checking text, header, types, constraints and primary key."""
    return _read(resource, data_dir)[0]


def _check_listed(pkg: dict, data_dir: Path) -> None:
    listed = {r["path"] for r in pkg["resources"]}
    for path in sorted(data_dir.glob("*.csv")):
        if path.name not in listed:
            raise DataError(path, None, None, "is not listed in datapackage.json: add a resource with its schema, or remove the file")


def _check_sources(frames: dict[str, pd.DataFrame], lines: dict[str, list[int]], pkg: dict, data_dir: Path) -> None:
    known = set(frames["sources"]["source_id"])
    for resource in pkg["resources"]:
        frame = frames[resource["name"]]
        if resource["name"] == "sources" or "source_id" not in frame:
            continue
        for line, source_id in zip(lines[resource["name"]], frame["source_id"]):
            if source_id not in known:
                raise DataError(data_dir / resource["path"], line, "source_id",
                                f"unknown source id {source_id!r} (not in sources.csv)")


def _check_domain(frames: dict[str, pd.DataFrame], lines: dict[str, list[int]], data_dir: Path) -> None:
    """Rules the sources themselves state: parts add up to their totals; shares are fractions."""
    def at(name, index):
        """The physical line on which row `index` of `name` starts (frames have a RangeIndex)."""
        return lines[name][index]

    annual = frames["reports_annual"]
    preferred = annual[annual["preferred"]]
    counts = preferred.groupby(["year", "reporter"]).size()
    if (counts > 1).any():
        (year, reporter) = counts[counts > 1].index[0]
        duplicate = preferred[(preferred["year"] == year) & (preferred["reporter"] == reporter)].index[1]
        raise DataError(data_dir / "reports_annual.csv", at("reports_annual", duplicate), "preferred",
                        f"more than one preferred row for {year}, {reporter}")
    totals = {(row.year, row.reporter): (int(row.reports), index) for index, row in preferred.iterrows()}
    years = sorted({year for year, _ in totals})
    for year in years:
        parts = [totals.get((year, reporter)) for reporter in ("esp", "public", "all")]
        if None in parts:
            continue
        (esp, _), (public, _), (total, index) = parts
        if esp + public != total:
            raise DataError(data_dir / "reports_annual.csv", at("reports_annual", index), "reports",
                            f"{year}: ESP ({esp:,}) + public ({public:,}) != total ({total:,})")
    location = frames["user_location"]
    report = location[location["series"] == "transparency_report"]
    for year, group in report.groupby("year"):
        if (year, "all") in totals and int(group["reports"].sum()) != totals[(year, "all")][0]:
            raise DataError(data_dir / "user_location.csv", at("user_location", group.index[0]), "reports",
                            f"{year}: U.S. + international + unknown ({int(group['reports'].sum()):,}) "
                            f"!= total reports ({totals[(year, 'all')][0]:,})")
    esp = frames["esp_reports"]
    complete = esp[esp["source_id"].str.startswith("ncmec_esp_")]
    for year, group in complete.groupby("year"):
        if (year, "esp") in totals and int(group["reports"].sum()) != totals[(year, "esp")][0]:
            raise DataError(data_dir / "esp_reports.csv", at("esp_reports", group.index[0]), "reports",
                            f"{year}: providers sum to {int(group['reports'].sum()):,}, "
                            f"the ESP total is {totals[(year, 'esp')][0]:,}")
    for index, row in frames["sources"].iterrows():
        for column in ("publisher", "title", "note"):
            found = BIBTEX_SYNTAX.search(row[column])
            if found:
                raise DataError(data_dir / "sources.csv", at("sources", index), column,
                                f"{found.group(0)!r} cannot be carried into references.bib (one of {{ }} \\ ~): "
                                "rephrase without it")
    listed = set(zip(esp["year"], esp["provider"]))
    for index, row in frames["us_referrals"].iterrows():
        if (row["year"], row["esp_provider"]) not in listed:
            raise DataError(data_dir / "us_referrals.csv", at("us_referrals", index), "esp_provider",
                            f"{row['esp_provider']!r} is not a provider of esp_reports.csv in {row['year']}")
    downstream = frames["downstream"]
    for index, row in downstream.iterrows():
        if row["measure"].startswith("share_") and row["value"] > 1:
            raise DataError(data_dir / "downstream.csv", at("downstream", index), "value",
                            f"{row['value']:g} is a share ({row['measure']}) and must be between 0 and 1")
        if row["period_start"] > row["period_end"]:
            raise DataError(data_dir / "downstream.csv", at("downstream", index), "period_start",
                            f"{row['period_start']} is after period_end {row['period_end']}")
    for name in ("estimates", "assumptions"):
        frame = frames[name]
        for index, row in frame.iterrows():
            if row["low"] > row["high"]:
                raise DataError(data_dir / f"{name}.csv", at(name, index), "low",
                                f"low ({row['low']:g}) is above high ({row['high']:g})")
            # a share is a fraction whatever range the field allows for other units
            if "unit" in frame and str(row["unit"]).startswith("share"):
                for column in ("low", "high"):
                    if not 0 <= row[column] <= 1:
                        raise DataError(data_dir / f"{name}.csv", at(name, index), column,
                                        f"{row[column]:g} is a share ({row['unit']}) and must be between 0 and 1")


def load_all(data_dir: Path = DATA) -> dict[str, pd.DataFrame]:
    """Every resource of the package, validated; raises DataError on the first problem.

    The claims ledger's selections are checked on top of this by `tipline.evidence.validate`,
    which the build calls first, so a refused file stops `make book` before any chapter executes.
    """
    data_dir = Path(data_dir)
    pkg = package(data_dir)
    _check_listed(pkg, data_dir)
    frames, lines = {}, {}
    for resource in pkg["resources"]:
        frames[resource["name"]], lines[resource["name"]] = _read(resource, data_dir)
    _check_sources(frames, lines, pkg, data_dir)
    _check_domain(frames, lines, data_dir)
    return frames


@lru_cache(maxsize=1)
def _cached() -> dict[str, pd.DataFrame]:
    return load_all(DATA)


_chapter: str | None = None
_recorded: set[str] = set()


def track(chapter: str) -> None:
    """Record, during `make book`, which datasets `chapter` reads (see tipline.site.build).

    The Makefile sets TIPLINE_DEPS to a folder; each chapter's list starts empty when the
    chapter executes, so a chapter whose data did not change can keep its cached outputs.
    """
    global _chapter
    _chapter = chapter
    _recorded.clear()
    folder = os.environ.get("TIPLINE_DEPS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{chapter}.txt").write_text("")


def _record(name: str) -> None:
    folder = os.environ.get("TIPLINE_DEPS")
    if folder and _chapter and name not in _recorded:
        _recorded.add(name)
        with (Path(folder) / f"{_chapter}.txt").open("a") as handle:
            handle.write(name + "\n")


def load(name: str) -> pd.DataFrame:
    """One validated dataset by its resource name (e.g. 'recipients')."""
    _record(name)
    frames = _cached()
    if name not in frames:
        raise KeyError(f"no dataset {name!r}; known: {', '.join(sorted(frames))}")
    return frames[name].copy()


def sources() -> pd.DataFrame:
    return load("sources").set_index("source_id")
