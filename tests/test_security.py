"""Hostile input, as a contributor's pull request could bring it (issue 11).

Each case edits a copy of data/ and asserts the ONE message the load gives: the file, the
physical line and the column. The last tests go end to end through `make book`: a refused
file publishes nothing and runs nothing; an accepted hostile text is escaped on every page
and no script from it runs in Chromium (tests/test_browser.py drives the browser).
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import tipline
from tipline.evidence import ledger
from tipline.presentation import charts, tables
from tipline.site import bib
from tipline.evidence import validate
from tipline.evidence.data import DataError, load_all

DATA = Path(tipline.evidence.data.ROOT) / "data"


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    return copy


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
    "overflowing exponent": ("downstream.csv", "icac,2024,2024,fiscal_year,arrests", "value", "1e999", "not a finite number"),
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
    assert "datapackage.json" in message and re.search(r"line 1[01]\b", message) and "character" in message, message


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
            "encoding": {"x": {"field": "year", "title": "Year"}, "y": {"field": "reports", "title": "Reports"}}}
    output = charts._embed(spec)["text/html"]
    table = output[output.index("<details"):]
    assert "(2 rows)" in table and "<script>" not in table and "&lt;script&gt;" in table
    assert re.findall(r"<th>(.*?)</th>", table) == ["Year", "Recipient name", "Reports"]
    cells = re.findall(r"<td>(.*?)</td>", table, re.S)
    assert cells[0::3] == ["2023", "2024"] and cells[2::3] == ["5", "7"], cells


def test_tables_escape_cells_and_headers_whatever_the_format_call():
    tables.escape_tables()
    frame = pd.DataFrame({"<b>col</b>": [HOSTILE], "n": [1.5]}, index=["<i>row</i>"])
    for styler in (frame.style, frame.style.format({"n": "{:.1f}"}), frame.style.format("{}"),
                   frame.style.format(lambda value: str(value)).hide(axis="index"), frame.style.format_index(str.upper, axis=1)):
        html = styler.to_html()
        assert "<script>" not in html and "<b>" not in html.replace("<B>", "") and "<i>row" not in html, html
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
    from conftest import copy_built, make_book

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


def test_every_chart_is_followed_by_a_table_of_exactly_its_rows(built_site):
    total = 0
    for page in sorted((built_site / "chapters").glob("*.html")):
        text = page.read_text(encoding="utf-8")
        for chart_id, spec in charts.specs(text).items():
            after = text[text.index(f'data-chart="{chart_id}"'):]
            details = after[after.index("<details"):after.index("</details>")]
            rows = sum(len(values) for values in spec.get("datasets", {}).values())
            assert details.count("<tr>") == rows, (page.name, chart_id)  # header rows carry a style attribute
            total += 1
    assert total >= 14


def test_the_build_refuses_pages_with_unknown_inline_code():
    from tipline.site import sphinx

    head = '<html><head><meta charset="utf-8" /></head><body>'
    locked = sphinx._lock(Path("page.html"), head + "<script>DOCUMENTATION_OPTIONS.pagename = 'chapters/x';</script>"
                          '<button onclick="window.print()">Print</button></body></html>')
    assert 'data-tipline-action="print"' in locked and "onclick" not in locked
    assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]+';", locked)
    for body in ("<script>alert(1)</script>", "<script>DOCUMENTATION_OPTIONS.pagename = 'x'; alert(1);</script>",
                 '<img src="x" onerror="alert(1)">', "<svg onload=alert(1)></svg>"):
        with pytest.raises(RuntimeError, match="page.html"):
            sphinx._lock(Path("page.html"), head + body + "</body></html>")
