"""Load the evidence base in data/ and refuse anything that does not match its schema.

Data arrive by pull request, so every byte of data/ is untrusted input. The schema lives in one
place, data/datapackage.json (a Frictionless Data Package), and every CSV is checked against it
here before a chapter sees it. The first problem stops the load with ONE message naming the file,
the physical line (a quoted cell may span lines) and the column (a CSV column's name; in
datapackage.json, the character position).

What is published: data/ holds the package and the CSVs it lists, as plain files, and nothing
else. A file the package does not list (an .html, .svg, .js, anything), a symbolic link, a folder,
a FIFO or a device is refused by name without being read; a listed file is opened without
following links and without blocking, and refused if it is not a plain file or is over 10 MB.

datapackage.json is read strictly: duplicate keys, nesting deeper than 12 levels, a keyword the
loader neither enforces nor treats as description, a constraint that does not fit its field's type
(`"minimum": "0"`), duplicate resource or field names, a resource without `name`, `path` or
`schema` are refused at their line and column. Every constraint it states is enforced: required,
unique, enum, minimum, maximum, minLength, maxLength, pattern, primaryKey and foreignKeys (a
`primaryKey` or foreign-key `fields` written as one string, which Table Schema allows, is read as
a list of one). Patterns run on RE2 (google-re2), whose matching time grows linearly with the
text whatever the pattern, so a pattern such as `([a-z0-9_]+)+` cannot hang the load; a pattern
RE2 cannot run that way (back-references, look-arounds) is refused.

The rules, beyond the types and constraints the package states:

* text: UTF-8 without a byte-order mark; LF or CRLF line endings, normalised to LF on read (the
  files already mix both and git may convert them on checkout); a bare CR, a blank line (anywhere,
  the last one included) or a file that does not end in a line break (e.g. cut off inside its last
  quoted cell) is refused;
* no cell (and no text in datapackage.json) holds a character that is invisible or changes how
  text reads: controls (Unicode category Cc; a line break only inside a quoted cell), format
  characters (Cf: bidi overrides and isolates such as U+202E, zero-width spaces and joiners, the
  byte-order mark), private-use and unassigned code points, line and paragraph separators, or
  spaces other than U+0020; text is in Unicode normal form NFC, so two values that look the same
  are the same;
* a field that is part of a primary or foreign key is an identifier: the package gives it an
  `enum` or a `pattern` (or it refers to a field that has one), so a look-alike (Cyrillic "о" in
  "Google") cannot pass as a new key;
* no cell has leading or trailing spaces, whatever its type (so " 12" is refused alike in integer
  and number fields);
* spreadsheet formulas (OWASP "CSV Injection"): a text cell that starts with =, +, - or @ is
  refused (tab and CR are control characters, refused everywhere). Refused rather than neutralised
  with a leading apostrophe in the published copy, so the files readers download are byte for
  byte the files reviewed in the repository and read the same in every tool. A field whose values
  the package confines with a `pattern` is exempt (claims.holds_if reads "== claimed"), and every
  pattern is checked not to admit a formula that calls anything;
* integers and numbers are ASCII digits only ([0-9], never `\\d`), without leading zeros; a number
  has at most six decimals and no exponent, nan or inf: figures are written as their sources print
  them, so the smallest non-zero number is 0.000001 and dividing by one cannot overflow ("1e-320"
  as a divisor did); `-0` is refused (it printed as "-0%"); every integer and number field must
  state a minimum and a maximum in the package;
* dates are real calendar dates, in date fields and in text cells written as YYYY, YYYY-MM or
  YYYY-MM-DD alone (sources' `published`, waiting's `as_of`), and never in the future: everything
  here was published already; a year (integer fields year, period_start, period_end) is never later
  than the current year; in every resource with fields NAME_start and NAME_end, a row's start is
  not after its end;
* every resource path is a plain file name in data/;
* URLs (sources.csv) are http: or https: only; the text of a source has none of { } \\ ~,
  which references.bib would read as LaTeX syntax (tipline.site.bib escapes & % # _).

Why the hand-written checks and not frictionless (pinned, and used by a test as a second
opinion on the package itself), measured on this machine: `load_all` reads and checks all files
in about 0.15 s of processor time, frictionless's `Package.validate()` in 0.4 s (plus 0.2 s to import it); frictionless
accepted an integer written in Arabic-Indic digits ("\u0661..." read as a number), reports
"row at position N" (records, not the physical line an editor shows), refuses "nan" only through
two generic constraint messages, cannot state "no later than this year", and knows none of the
domain rules below. So the loader keeps its own checks, one message per problem, each naming
file, line and column the same way.
"""
from __future__ import annotations

import bisect
import csv
import json
import math
import os
import re
import stat
import unicodedata
from datetime import date
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import re2

ROOT = Path(__file__).resolve().parents[2]
# TIPLINE_DATA lets a test run the chapters against an edited copy of data/.
DATA = Path(os.environ.get("TIPLINE_DATA", ROOT / "data")).resolve()

PACKAGE = "datapackage.json"
MAX_BYTES = 10_000_000  # the largest file today is under 0.1 MB
INTEGER = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)
NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]{1,6})?", re.ASCII)
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
DATE_TEXT = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?", re.ASCII)  # a text cell that is a date
# what a URL may contain: no spaces, quotes, angle brackets or backslashes, whatever its scheme
URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*)?", re.ASCII)
BIBTEX_SYNTAX = re.compile(r"[{}\\~]")  # characters references.bib would read as LaTeX syntax
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # a line break (\n) is allowed inside a quoted cell
FORMULA_START = ("=", "+", "-", "@")  # tab and CR, the other two, are control characters
# formulas a pattern must not admit (OWASP's examples: a link, DDE command execution)
FORMULAS = ('=HYPERLINK("http://example.org","x")', "=cmd|' /C calc'!A0", "+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0")
NAME = re.compile(r"[a-z][a-z0-9_]*", re.ASCII)  # resource and field names
RESOURCE_PATH = re.compile(r"[a-z0-9_]+\.csv", re.ASCII)
YEAR_FIELDS = ("year", "period_start", "period_end")
TYPES = ("string", "integer", "number", "boolean", "date")


class DataError(ValueError):
    """A value in data/ that breaks the Data Package schema or a domain rule."""

    def __init__(self, path: Path, line: int | None, column: str | int | None, message: str):
        where = _display(path)
        if line is not None:
            where += f", line {line}"
        if isinstance(column, int):  # a character position (datapackage.json)
            where += f", column {column}"
        elif column is not None:  # a CSV column's name
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


# ---------------------------------------------------------------- files

def _kind(mode: int) -> str:
    for test, words in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return words
    return "not a plain file"


def _bytes(path: Path) -> bytes:
    """A plain file's bytes. Opened without following a symbolic link and without waiting on a
    FIFO; anything but a plain file of at most MAX_BYTES is refused before a byte is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DataError(path, None, None, "file is missing") from None
    except OSError as error:
        try:
            what = _kind(os.lstat(path).st_mode)
        except OSError:
            what = f"unreadable ({error.strerror})"
        raise DataError(path, None, None, f"is {what}: data/ holds plain files only") from None
    with os.fdopen(fd, "rb") as handle:
        mode, size = os.fstat(fd).st_mode, os.fstat(fd).st_size
        if not stat.S_ISREG(mode):
            raise DataError(path, None, None, f"is {_kind(mode)}: data/ holds plain files only")
        raw = handle.read(MAX_BYTES + 1) if size <= MAX_BYTES else b""
    if size > MAX_BYTES or len(raw) > MAX_BYTES:
        raise DataError(path, None, None, f"is larger than {MAX_BYTES:,} bytes: split it or ask why it grew")
    return raw


def _text(path: Path) -> str:
    """The file as text, or a DataError naming the line of the first byte that is not UTF-8."""
    raw = _bytes(path)
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


def _check_folder(pkg: dict, data_dir: Path) -> None:
    """data/ holds the package and the files it lists, as plain files; nothing is read to decide."""
    listed = {resource["path"] for resource in pkg["resources"]} | {PACKAGE}
    for entry in sorted(os.scandir(data_dir), key=lambda entry: entry.name):
        path = Path(entry.path)
        if entry.is_symlink():
            raise DataError(path, None, None, f"is a symbolic link (to {os.readlink(path)!r}): data/ holds plain files "
                            "only, and a link would publish whatever it points to; copy the file in, or remove the link")
        mode = entry.stat(follow_symlinks=False).st_mode
        if not stat.S_ISREG(mode):
            raise DataError(path, None, None, f"is {_kind(mode)}: data/ holds plain files only")
        if entry.name not in listed:
            raise DataError(path, None, None, "is not listed in datapackage.json, and everything in data/ is published: "
                            "add a resource with its schema, or remove the file")


# ---------------------------------------------------------------- text

def unsafe_character(text: str) -> str | None:
    """Why `text` cannot be published as it is (None if it can): a control character (but a line
    break), a format character (bidi controls, zero-width characters), a private-use, unassigned,
    line- or paragraph-separator code point, a space other than U+0020, or not NFC."""
    if text.isascii():
        found = CONTROL.search(text)
        if found:
            return f"contains the control character U+{ord(found.group(0)):04X} (character {found.start() + 1})"
        return None
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if char != "\n" and (category[0] == "C" or category in ("Zl", "Zp") or (category == "Zs" and char != " ")):
            name = unicodedata.name(char, "")
            return (f"contains U+{ord(char):04X}{' ' + name if name else ''} (character {index + 1}), an invisible "
                    "or control character that can reorder or hide text or make two values look alike: remove it")
    if not unicodedata.is_normalized("NFC", text):
        return "is not in Unicode normal form NFC (a letter and a separate combining mark): save it as NFC"
    return None


def _date_problem(year: int, month: int | None = None, day: int | None = None) -> str | None:
    """Why a date written as YYYY, YYYY-MM or YYYY-MM-DD is not a real one in the past (None if it is)."""
    try:
        date(year, month or 1, day or 1)
    except ValueError:
        return "is not a real calendar date"
    today = date.today()
    if (year, month or 0, day or 0) > (today.year, today.month if month else 0, today.day if day else 0):
        return f"is in the future (today is {today.isoformat()})"
    return None


# ---------------------------------------------------------------- datapackage.json

MAX_DEPTH = 12  # the package nests 8 levels (package > resources > resource > schema > fields > field > constraints > enum)
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_TOKEN = re.compile(r'[ \t\n\r]*(?:([{}\[\]:,])|("(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")'
                         r'|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)|(true|false|null))')


class _Json:
    """A strict JSON reader that knows where each value is: duplicate keys, nesting deeper than
    MAX_DEPTH and non-finite numbers are refused at their line and column (the json module keeps
    the last of two equal keys and gives no positions)."""

    def __init__(self, path: Path, text: str):
        self.path, self.text, self.offset = path, text, 0
        self.breaks = [match.start() for match in re.finditer("\n", text)]
        self.at: dict[tuple, int] = {}  # a member's key, or an item, -> its offset in the text

    def fail(self, offset: int, message: str):
        line = bisect.bisect_left(self.breaks, offset)
        column = offset - (self.breaks[line - 1] if line else -1)
        raise DataError(self.path, line + 1, column, message)

    def where(self, path: tuple) -> int:
        while path and path not in self.at:
            path = path[:-1]
        return self.at.get(path, 0)

    def refuse(self, path: tuple, message: str):
        self.fail(self.where(path), f"{'/'.join(map(str, path)) or '(top)'}: {message}")

    def _token(self, expected: str):
        match = _JSON_TOKEN.match(self.text, self.offset)
        if not match:
            self.fail(self._next(), f"not valid JSON here (expected {expected})")
        self.offset = match.end()
        return match, match.start(match.lastindex)

    def _next(self) -> int:
        """The offset of the next character that is not white space."""
        return _JSON_SPACE.match(self.text, self.offset).end()

    def _peek(self) -> str:
        return self.text[self._next():self._next() + 1]

    def document(self):
        value = self.value((), 1)
        if self._next() < len(self.text):
            self.fail(self._next(), "not valid JSON here (text after the end of the document)")
        return value

    def value(self, path: tuple, depth: int):
        match, start = self._token("a value")
        punct, string, number, literal = match.groups()
        if depth > MAX_DEPTH and punct in ("{", "["):
            self.fail(start, f"nested more than {MAX_DEPTH} levels deep; the package needs 8")
        if string is not None:
            return json.loads(string)
        if number is not None:
            value = json.loads(number)
            if not math.isfinite(value):
                self.fail(start, f"{number} is not a finite number")
            return value
        if literal is not None:
            return {"true": True, "false": False, "null": None}[literal]
        if punct == "{":
            members, first = {}, {}
            if self._peek() == "}":
                self._token("}")
                return members
            while True:
                key_match, key_start = self._token("a quoted key")
                if key_match.group(2) is None:
                    self.fail(key_start, "not valid JSON here (expected a quoted key)")
                key = json.loads(key_match.group(2))
                if key in members:
                    line = bisect.bisect_left(self.breaks, first[key]) + 1
                    self.fail(key_start, f"duplicate key {key!r} (first on line {line}): a reader sees one value, "
                              "the loader would keep the other")
                first[key] = key_start
                self.at[path + (key,)] = key_start
                colon, colon_start = self._token("':'")
                if colon.group(1) != ":":
                    self.fail(colon_start, "not valid JSON here (expected ':')")
                members[key] = self.value(path + (key,), depth + 1)
                after, after_start = self._token("',' or '}'")
                if after.group(1) == "}":
                    return members
                if after.group(1) != ",":
                    self.fail(after_start, "not valid JSON here (expected ',' or '}')")
        if punct == "[":
            items = []
            if self._peek() == "]":
                self._token("]")
                return items
            while True:
                self.at[path + (len(items),)] = self._next()
                items.append(self.value(path + (len(items),), depth + 1))
                after, after_start = self._token("',' or ']'")
                if after.group(1) == "]":
                    return items
                if after.group(1) != ",":
                    self.fail(after_start, "not valid JSON here (expected ',' or ']')")
        self.fail(start, f"not valid JSON here ({punct!r} where a value should be)")


# keywords the loader enforces or reads as description, by level; anything else is refused
PACKAGE_KEYS = {"profile", "name", "title", "description", "licenses", "resources"}
LICENSE_KEYS = {"name", "title", "path"}
RESOURCE_KEYS = {"name", "path", "profile", "title", "description", "format", "mediatype", "encoding", "schema"}
RESOURCE_FIXED = {"profile": "tabular-data-resource", "format": "csv", "mediatype": "text/csv", "encoding": "utf-8"}
SCHEMA_KEYS = {"fields", "primaryKey", "foreignKeys"}
FIELD_KEYS = {"name", "type", "title", "description", "format", "constraints"}
CONSTRAINTS = {  # the constraints each type can take
    "string": {"required", "unique", "enum", "minLength", "maxLength", "pattern"},
    "integer": {"required", "unique", "enum", "minimum", "maximum"},
    "number": {"required", "unique", "enum", "minimum", "maximum"},
    "date": {"required", "unique", "minimum", "maximum"},
    "boolean": {"required"},
}
PATTERN_OPTIONS = re2.Options()
PATTERN_OPTIONS.log_errors = False  # the error is raised as a DataError instead of printed


@lru_cache(maxsize=256)
def _pattern(text: str):
    """A compiled RE2 pattern (linear-time matching whatever the pattern; raises re2.error)."""
    return re2.compile(text, PATTERN_OPTIONS)


def _is(value, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "boolean": bool, "list": list, "object": dict}[kind])


def _names(value) -> list:
    """primaryKey and foreign-key `fields`: a list, or one name as a string (Table Schema allows both)."""
    return [value] if isinstance(value, str) else value


class _PackageCheck:
    """The package's structure, keyword by keyword; each refusal at the line and column of the
    keyword or value (positions from `_Json`)."""

    def __init__(self, reader: _Json):
        self.refuse = reader.refuse

    def shape(self, value, path, kind):
        if not _is(value, kind):
            article = "an" if kind in ("integer", "object") else "a"
            self.refuse(path, f"must be {article} {kind}, not {json.dumps(value)[:40]}")

    def keywords(self, obj, path, allowed, required=()):
        self.shape(obj, path, "object")
        for key in obj:
            if key not in allowed:
                self.refuse(path + (key,), f"{key!r} is not a keyword this loader enforces or reads as description "
                            f"({', '.join(sorted(allowed))}): remove it, or make tipline/evidence/data.py enforce it")
        for key in required:
            if key not in obj:
                self.refuse(path, f"lacks {key!r}")

    def text(self, value, path=()):
        """No invisible or control character anywhere in the package (names, titles, patterns)."""
        if isinstance(value, str):
            problem = unsafe_character(value)
            if problem:
                self.refuse(path, f"{value[:40]!r} {problem}")
        elif isinstance(value, dict):
            for key, item in value.items():
                self.text(key, path + (key,))
                self.text(item, path + (key,))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.text(item, path + (index,))

    def package(self, pkg) -> dict:
        self.text(pkg)
        self.keywords(pkg, (), PACKAGE_KEYS, ("resources",))
        for key in ("profile", "name", "title", "description"):
            if key in pkg:
                self.shape(pkg[key], (key,), "string")
        if pkg.get("profile", "tabular-data-package") != "tabular-data-package":
            self.refuse(("profile",), "must be 'tabular-data-package'")
        self.shape(pkg.get("licenses", []), ("licenses",), "list")
        for index, licence in enumerate(pkg.get("licenses", [])):
            self.keywords(licence, ("licenses", index), LICENSE_KEYS, ("name",))
            for key, value in licence.items():
                self.shape(value, ("licenses", index, key), "string")
        self.shape(pkg["resources"], ("resources",), "list")
        names, paths, fields_of = {}, {}, {}
        for index, resource in enumerate(pkg["resources"]):
            where = ("resources", index)
            self.keywords(resource, where, RESOURCE_KEYS, ("name", "path", "schema"))
            for key in RESOURCE_KEYS - {"schema"}:
                if key in resource:
                    self.shape(resource[key], where + (key,), "string")
            for key, fixed in RESOURCE_FIXED.items():
                if resource.get(key, fixed) != fixed:
                    self.refuse(where + (key,), f"must be {fixed!r}: the loader reads {RESOURCE_FIXED['encoding']} CSV only")
            name, path = resource["name"], resource["path"]
            if not NAME.fullmatch(name):
                self.refuse(where + ("name",), f"{name!r} is not a name (a lower-case letter, then letters, digits and _)")
            if name in names:
                self.refuse(where + ("name",), f"a second resource named {name!r} (the first is resources/{names[name]})")
            if not RESOURCE_PATH.fullmatch(path):
                self.refuse(where + ("path",), f"resource {name!r}: path {path!r} is not a plain file name in data/ "
                       "(lower-case letters, digits, _ and .csv)")
            if path in paths:
                self.refuse(where + ("path",), f"a second resource for {path!r} (the first is resources/{paths[path]})")
            names[name], paths[path] = index, index
            schema = resource["schema"]
            self.keywords(schema, where + ("schema",), SCHEMA_KEYS, ("fields",))
            self.shape(schema["fields"], where + ("schema", "fields"), "list")
            if not schema["fields"]:
                self.refuse(where + ("schema", "fields"), "a resource needs at least one field")
            fields = {}
            for number, field in enumerate(schema["fields"]):
                fields[self.field(field, where + ("schema", "fields", number), fields)] = field
            fields_of[name] = fields
            key = schema.get("primaryKey", [])
            if "primaryKey" in schema and not (isinstance(key, str) or (isinstance(key, list) and key
                                                                         and all(isinstance(k, str) for k in key))):
                self.refuse(where + ("schema", "primaryKey"), "must be a field name or a list of field names")
            schema["primaryKey"] = _names(key)
            for item in schema["primaryKey"]:
                if item not in fields:
                    self.refuse(where + ("schema", "primaryKey"), f"{item!r} is not a field of {name!r}")
            if len(set(schema["primaryKey"])) != len(schema["primaryKey"]):
                self.refuse(where + ("schema", "primaryKey"), "names a field twice")
        for index, resource in enumerate(pkg["resources"]):
            self.foreign_keys(resource, ("resources", index, "schema"), fields_of)
        for index, resource in enumerate(pkg["resources"]):
            self.identifiers(resource, ("resources", index, "schema"), fields_of)
        return pkg

    def field(self, field, where, fields) -> str:
        self.keywords(field, where, FIELD_KEYS, ("name", "type"))
        for key in FIELD_KEYS - {"constraints"}:
            if key in field:
                self.shape(field[key], where + (key,), "string")
        name, kind = field["name"], field["type"]
        if not NAME.fullmatch(name):
            self.refuse(where + ("name",), f"{name!r} is not a name (a lower-case letter, then letters, digits and _)")
        if name in fields:
            self.refuse(where + ("name",), f"a second field named {name!r}")
        if kind not in TYPES:
            self.refuse(where + ("type",), f"type {kind!r} is not one of {', '.join(TYPES)}")
        if field.get("format", "default") not in ("default", "uri" if kind == "string" else "default"):
            self.refuse(where + ("format",), f"format {field['format']!r}: only 'uri' (on a string field) is enforced here")
        rules = field.setdefault("constraints", {})
        self.keywords(rules, where + ("constraints",), CONSTRAINTS[kind])
        at = where + ("constraints",)
        for key in ("required", "unique"):
            if key in rules:
                self.shape(rules[key], at + (key,), "boolean")
        for key in ("minLength", "maxLength"):
            if key in rules:
                self.shape(rules[key], at + (key,), "integer")
                if rules[key] < 0:
                    self.refuse(at + (key,), "must not be negative")
        bound = "string" if kind == "date" else kind
        for key in ("minimum", "maximum"):
            if key in rules:
                self.shape(rules[key], at + (key,), bound)
                if kind == "date":
                    try:
                        rules[key] = date.fromisoformat(rules[key]) if DATE.fullmatch(rules[key]) else None
                    except ValueError:
                        rules[key] = None
                    if rules[key] is None:
                        self.refuse(at + (key,), "a date bound is written YYYY-MM-DD")
                elif not math.isfinite(rules[key]):
                    self.refuse(at + (key,), "must be finite")
        if kind in ("integer", "number") and not ("minimum" in rules and "maximum" in rules):
            self.refuse(at, f"field {name!r}: a number field must state a minimum and a maximum")
        for low, high in (("minimum", "maximum"), ("minLength", "maxLength")):
            if low in rules and high in rules and rules[low] > rules[high]:
                self.refuse(at + (low,), f"{low} is above {high}")
        if "pattern" in rules:
            self.shape(rules["pattern"], at + ("pattern",), "string")
            try:
                compiled = _pattern(rules["pattern"])
            except re2.error as error:
                message = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
                self.refuse(at + ("pattern",), f"{rules['pattern']!r} is not a pattern RE2 can run in linear time "
                            f"({message})")
            for formula in FORMULAS:
                if compiled.fullmatch(formula):
                    self.refuse(at + ("pattern",), f"{rules['pattern']!r} admits the spreadsheet formula {formula!r}")
        if "enum" in rules:
            self.shape(rules["enum"], at + ("enum",), "list")
            if not rules["enum"]:
                self.refuse(at + ("enum",), "an enum lists at least one value")
            for index, value in enumerate(rules["enum"]):
                self.shape(value, at + ("enum", index), "string" if kind == "date" else kind)
                if kind == "string" and (not value or value[0] in FORMULA_START or value != value.strip()):
                    self.refuse(at + ("enum", index), f"{value!r} is empty, has spaces around it or starts like a formula")
            if len(set(map(json.dumps, rules["enum"]))) != len(rules["enum"]):
                self.refuse(at + ("enum",), "lists a value twice")
        return name

    def foreign_keys(self, resource, where, fields_of) -> None:
        schema = resource["schema"]
        if not isinstance(schema.get("foreignKeys", []), list):
            self.refuse(where + ("foreignKeys",), "must be a list")
        for index, key in enumerate(schema.get("foreignKeys", [])):
            at = where + ("foreignKeys", index)
            self.keywords(key, at, {"fields", "reference"}, ("fields", "reference"))
            self.keywords(key["reference"], at + ("reference",), {"resource", "fields"}, ("resource", "fields"))
            target = key["reference"]["resource"]
            self.shape(target, at + ("reference", "resource"), "string")
            if target not in fields_of:
                self.refuse(at + ("reference", "resource"), f"{target!r} is not a resource of the package "
                       "(a reference to the resource itself is not supported)")
            for side, known, words in ((key, fields_of[resource["name"]], resource["name"]),
                                       (key["reference"], fields_of[target], target)):
                names = side["fields"]
                if not (isinstance(names, str)
                        or (isinstance(names, list) and names and all(isinstance(n, str) for n in names))):
                    self.refuse(at + ("fields",), "must be a field name or a list of field names")
                side["fields"] = _names(names)
                for name in side["fields"]:
                    if name not in known:
                        self.refuse(at + ("fields",), f"{name!r} is not a field of {words!r}")
            if len(key["fields"]) != len(key["reference"]["fields"]):
                self.refuse(at + ("fields",), "names as many fields as the reference")

    def identifiers(self, resource, where, fields_of) -> None:
        """Key fields hold identifiers from a declared character set (an enum or a pattern), so a
        look-alike key cannot exist; a foreign key may rely on the set of the field it refers to."""
        schema, fields = resource["schema"], fields_of[resource["name"]]
        declared = lambda field: "enum" in field["constraints"] or "pattern" in field["constraints"]  # noqa: E731
        inherited = set()
        for key in schema.get("foreignKeys", []):
            target = fields_of[key["reference"]["resource"]]
            inherited |= {name for name, other in zip(key["fields"], key["reference"]["fields"]) if declared(target[other])}
        keys = schema["primaryKey"] + [name for key in schema.get("foreignKeys", []) for name in key["fields"]]
        for name in dict.fromkeys(keys):
            field = fields[name]
            if field["type"] == "string" and not declared(field) and name not in inherited:
                number = schema["fields"].index(field)
                self.refuse(where + ("fields", number, "name"),
                            f"{resource['name']}.{name} is part of a key, so it is an identifier: give it an enum or a "
                            "pattern (e.g. \"[a-z0-9_]+\") so that look-alike values cannot pass as new keys")


@lru_cache(maxsize=8)
def _package_of(path: Path, text: str) -> dict:
    reader = _Json(path, text)
    return _PackageCheck(reader).package(reader.document())


def package(data_dir: Path = DATA) -> dict:
    """datapackage.json, read strictly and checked (see the module's docstring). The same dict
    is returned while the file is unchanged: treat it as read-only."""
    path = Path(data_dir) / PACKAGE
    return _package_of(path, _text(path))


# ---------------------------------------------------------------- the CSV files

def _parse(value: str, field: dict):
    kind = field["type"]
    if kind == "integer":
        if not INTEGER.fullmatch(value):
            raise ValueError(f"{value!r} is not a whole number (digits 0-9 only, no leading zeros)")
        if value.startswith("-") and int(value) == 0:
            raise ValueError(f"{value!r} is a negative zero: write 0")
        return int(value)
    if kind == "number":
        if not NUMBER.fullmatch(value):
            raise ValueError(f"{value!r} is not a number as figures are written here (digits 0-9, no leading zeros, "
                             "at most six decimals; no exponent, nan or inf)")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        if value.startswith("-") and number == 0:
            raise ValueError(f"{value!r} is a negative zero: write 0")
        return number
    if kind == "boolean":
        if value not in ("true", "True", "TRUE", "false", "False", "FALSE"):  # frictionless's default spellings
            raise ValueError(f"{value!r} is not true or false")
        return value.lower() == "true"
    if kind == "date":
        try:
            if not DATE.fullmatch(value):
                raise ValueError
            parsed = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD, a real calendar date)") from None
        return parsed
    return value


def _check(value, field: dict) -> None:
    rules = field["constraints"]
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
    if field["type"] != "string":
        return
    if "minLength" in rules and len(value) < rules["minLength"]:
        raise ValueError(f"{value!r} is shorter than {rules['minLength']} characters")
    if "maxLength" in rules and len(value) > rules["maxLength"]:
        raise ValueError(f"{value[:40]!r}... is longer than {rules['maxLength']} characters")
    if "pattern" in rules:
        if not _pattern(rules["pattern"]).fullmatch(value):
            raise ValueError(f"{value!r} does not match the pattern {rules['pattern']}")
    elif value[0] in FORMULA_START:
        raise ValueError(f"{value[:40]!r} starts with {value[0]!r}, which a spreadsheet reads as a formula "
                         "(CSV injection): rephrase so that the text starts otherwise")
    written = DATE_TEXT.fullmatch(value)
    if written:
        problem = _date_problem(*(int(part) if part else None for part in written.groups()))
        if problem:
            raise ValueError(f"{value!r} {problem}")
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


def _ranges(fields: list[dict]) -> list[tuple[str, str]]:
    """(NAME_start, NAME_end) field pairs of one type: every row's start must not be after its end."""
    kinds = {field["name"]: field["type"] for field in fields}
    return [(name, name[:-len("_start")] + "_end") for name in kinds
            if name.endswith("_start") and kinds.get(name[:-len("_start")] + "_end") == kinds[name]]


class _Lines(tuple):
    """Line numbers kept in a frame's attrs: pandas deep-copies attrs into every frame derived
    from it (each column, each row of iterrows), which cost most of the load's time for a list."""

    def __deepcopy__(self, memo):
        return self


def _read(resource: dict, data_dir: Path) -> tuple[pd.DataFrame, list[int]]:
    path = data_dir / resource["path"]
    fields = resource["schema"]["fields"]
    names = [f["name"] for f in fields]
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
    key = resource["schema"]["primaryKey"]
    unique = {f["name"]: {} for f in fields if f["constraints"].get("unique")}
    ranges = _ranges(fields)
    for start, raw, cell_lines in records:
        if len(raw) != len(names):
            raise DataError(path, start, None, f"has {len(raw)} cells, the schema has {len(names)} columns")
        row, where = {}, dict(zip(names, cell_lines))
        for field, cell, line in zip(fields, raw, cell_lines):
            try:
                problem = unsafe_character(cell)
                if problem:
                    raise ValueError(f"{cell[:60]!r} {problem}")
                if cell != cell.strip():
                    raise ValueError(f"{cell!r} has spaces around it")
                if cell == "":
                    if field["constraints"].get("required"):
                        raise ValueError("value is required but empty")
                    row[field["name"]] = "" if field["type"] == "string" else None
                    continue
                value = _parse(cell, field)
                _check(value, field)
            except ValueError as error:
                raise DataError(path, line, field["name"], str(error)) from None
            row[field["name"]] = value
            if field["name"] in unique:
                if value in unique[field["name"]]:
                    first = unique[field["name"]][value]
                    raise DataError(path, line, field["name"], f"{cell!r} is already on line {first}, and the field is unique")
                unique[field["name"]][value] = line
        for low, high in ranges:
            if row[low] is not None and row[high] is not None and row[low] > row[high]:
                raise DataError(path, where[low], low, f"{row[low]} is after {high} {row[high]}")
        ident = tuple(row[k] for k in key)
        if key and ident in seen:
            raise DataError(path, start, key[0], f"duplicate key {dict(zip(key, ident))} (first on line {seen[ident]})")
        seen[ident] = start
        rows.append(row)
        lines.append(start)
    frame = pd.DataFrame(rows, columns=names)
    frame.attrs["lines"] = _Lines(lines)  # the physical line each row starts on, for later messages
    return frame, lines


def read_resource(resource: dict, data_dir: Path = DATA) -> pd.DataFrame:
    """Read one CSV of the package, checking text, header, types, constraints and primary key."""
    return _read(resource, data_dir)[0]


def _check_foreign_keys(frames: dict[str, pd.DataFrame], lines: dict[str, list[int]], pkg: dict, data_dir: Path) -> None:
    """Every foreign key the package declares: each row's values occur together in the resource it refers to."""
    paths = {resource["name"]: resource["path"] for resource in pkg["resources"]}
    for resource in pkg["resources"]:
        frame = frames[resource["name"]]
        for key in resource["schema"].get("foreignKeys", []):
            target, their = key["reference"]["resource"], key["reference"]["fields"]
            known = set(zip(*(frames[target][name].tolist() for name in their)))
            each = [set(frames[target][name].tolist()) for name in their]
            for line, values in zip(lines[resource["name"]], zip(*(frame[name].tolist() for name in key["fields"]))):
                if any(value in (None, "") for value in values) or values in known:
                    continue  # an empty foreign key refers to nothing
                column = next((name for name, value, values_there in zip(key["fields"], values, each)
                               if value not in values_there), key["fields"][-1])
                shown = values[0] if len(values) == 1 else values
                raise DataError(data_dir / resource["path"], line, column,
                                f"{shown!r} is not a {' and '.join(their)} of {paths[target]}")


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
    downstream = frames["downstream"]
    for index, row in downstream.iterrows():
        if row["measure"].startswith("share_") and row["value"] > 1:
            raise DataError(data_dir / "downstream.csv", at("downstream", index), "value",
                            f"{row['value']:g} is a share ({row['measure']}) and must be between 0 and 1")
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
    _check_folder(pkg, data_dir)
    frames, lines = {}, {}
    for resource in pkg["resources"]:
        frames[resource["name"]], lines[resource["name"]] = _read(resource, data_dir)
    _check_foreign_keys(frames, lines, pkg, data_dir)
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
