"""The evidence base: schema, provenance, domain rules, and clear errors on bad input."""
from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
from frictionless import Package

import tipline
from tipline import bib
from tipline.data import DataError, load_all

DATA = Path(tipline.data.ROOT) / "data"


def test_package_validates_with_frictionless():
    report = Package(str(DATA / "datapackage.json")).validate()
    errors = [f"{task.name}: {error.message}" for task in report.tasks for error in task.errors]
    assert report.valid, errors[:10]


def test_every_csv_is_described_and_every_row_has_provenance():
    frames = load_all(DATA)
    described = {r["path"] for r in tipline.data.package()["resources"]}
    assert described == {p.name for p in DATA.glob("*.csv")}
    for name, frame in frames.items():
        if name == "sources":
            continue
        for column in ("source_id", "locator", "grade"):
            assert frame[column].astype(bool).all(), f"{name}: empty {column}"


def test_every_source_is_cited_and_graded():
    frames = load_all(DATA)
    cited = set().union(*(set(f["source_id"]) for n, f in frames.items() if n != "sources"))
    registry = set(frames["sources"]["source_id"])
    assert cited - registry == set()
    # a source that no data row cites must be cited from a chapter's prose instead
    prose = "\n".join(p.read_text() for p in (DATA.parent / "chapters").glob("*.ipynb"))
    in_prose = set(re.findall(r"\{cite:[a-z]+\}`([^`]+)`", prose.replace("\\n", " ")))
    in_prose = {key.strip() for keys in in_prose for key in keys.split(",")}
    assert registry - cited - in_prose == set(), "sources cited nowhere"
    assert in_prose <= registry, "chapters cite sources missing from sources.csv"


def test_references_bib_is_generated_from_the_registry():
    committed = (DATA.parent / "references.bib").read_text()
    assert committed == bib.render(), "references.bib is stale: run `python -m tipline.bib`"
    keys = set(re.findall(r"@misc\{([a-z0-9_]+),", committed))
    assert keys == set(load_all(DATA)["sources"]["source_id"])


def test_shares_are_fractions_and_totals_add_up():
    frames = load_all(DATA)
    estimates = frames["estimates"]
    assert ((estimates["low"] >= 0) & (estimates["high"] <= 1)).all()
    location = frames["user_location"].query("series == 'transparency_report'")
    annual = frames["reports_annual"].query("preferred and reporter == 'all'").set_index("year")["reports"]
    sums = location.groupby("year")["reports"].sum()
    assert (sums == annual.reindex(sums.index)).all()


def _edit(tmp_path: Path, name: str, change) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    path = copy / name
    rows = list(csv.reader(path.open(newline="")))
    change(rows)
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return copy


def _set(rows, line, column, value):
    rows[line - 1][rows[0].index(column)] = value


BAD_INPUTS = {
    "missing column": ("recipients.csv", lambda rows: [r.pop(3) for r in rows], 1, "reports"),
    "non-numeric value": ("recipients.csv", lambda rows: _set(rows, 5, "reports", "12a"), 5, "reports"),
    "unknown source id": ("feedback.csv", lambda rows: _set(rows, 3, "source_id", "nowhere_2020"), 3, "source_id"),
    "duplicate key": ("files.csv", lambda rows: rows.append(list(rows[1])), 17, "year"),
    "year out of range": ("incident_types.csv", lambda rows: _set(rows, 4, "year", "2031"), 4, "year"),
    "bad grade": ("downstream.csv", lambda rows: _set(rows, 2, "grade", "rumour"), 2, "grade"),
    "negative count": ("user_location.csv", lambda rows: _set(rows, 2, "reports", "-5"), 2, "reports"),
    "unknown verdict": ("claims.csv", lambda rows: _set(rows, 4, "verdict", "probably"), 4, "verdict"),
    "range upside down": ("assumptions.csv", lambda rows: _set(rows, 3, "low", "9"), 3, "low"),
    "unknown provider link": ("us_referrals.csv", lambda rows: _set(rows, 4, "esp_provider", "Myspace"), 4, "esp_provider"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_line_and_column(tmp_path, case):
    name, change, line, column = BAD_INPUTS[case]
    copy = _edit(tmp_path, name, change)
    with pytest.raises(DataError) as raised:
        load_all(copy)
    message = str(raised.value)
    assert name in message and f"line {line}" in message and f"column '{column}'" in message, message


def test_parts_that_do_not_add_up_are_refused(tmp_path):
    copy = _edit(tmp_path, "reports_annual.csv",
                 lambda rows: _set(rows, next(i for i, r in enumerate(rows, 1) if r[:2] == ["2022", "public"]), "reports", "256505"))
    with pytest.raises(DataError, match=r"reports_annual\.csv.*2022: ESP"):
        load_all(copy)
