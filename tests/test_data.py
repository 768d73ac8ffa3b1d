"""The evidence base: schema, provenance, domain rules, and clear errors on bad input."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from frictionless import Package

import tipline
from helpers import EditedData
from tipline.site import bib
from tipline.evidence.data import DataError, load_all

DATA = Path(tipline.evidence.data.ROOT) / "data"


def test_package_validates_with_frictionless():
    report = Package(str(DATA / "datapackage.json")).validate()
    errors = [f"{task.name}: {error.message}" for task in report.tasks for error in task.errors]
    assert report.valid, errors[:10]


def test_every_csv_is_described_and_every_row_has_provenance():
    frames = load_all(DATA)
    described = {r["path"] for r in tipline.evidence.data.package()["resources"]}
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
    assert committed == bib.render(), "references.bib is stale: run `python -m tipline.site.bib`"
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


QUALIFIERS = ["exact", "about", "more_than", "at_least"]


def test_one_qualifier_vocabulary_in_every_file():
    """Every qualifier field in the package allows the same words, and the data use no others."""
    fields = {resource["name"]: field for resource in tipline.evidence.data.package()["resources"]
              for field in resource["schema"]["fields"] if field["name"] == "qualifier"}
    frames = load_all(DATA)
    assert set(fields) == {name for name, frame in frames.items() if "qualifier" in frame}
    for name, field in fields.items():
        assert field["constraints"]["enum"] == QUALIFIERS, name
        assert set(frames[name]["qualifier"]) <= set(QUALIFIERS), name


def _edit(tmp_path: Path, name: str, change) -> Path:
    copy = EditedData(tmp_path / "data").path
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
    "qualifier outside the vocabulary": ("waiting.csv", lambda rows: _set(rows, 7, "qualifier", "approximately"), 7, "qualifier"),
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


TIP_MEASURES = {"tips_received", "cybercrime_tips_received", "complaints_received", "tips_investigated", "tips_referred_out", "backlog_years"}


def _funnel_problems(funnels) -> list[str]:
    """Rules every task-force unit-period must satisfy; returns what breaks them."""
    problems = []
    for row in funnels.itertuples(index=False):
        where = f"{row.unit} {row.period_start}..{row.period_end} {row.measure} ({row.source_id})"
        if row.period_end < row.period_start:
            problems.append(f"{where}: period ends before it starts")
        if row.period == "calendar_year" and (row.period_start.timetuple()[1:3], row.period_end.timetuple()[1:3],
                                              row.period_start.year) != ((1, 1), (12, 31), row.period_end.year):
            problems.append(f"{where}: a calendar year must run 1 January to 31 December of one year")
        if row.measure != "backlog_years" and row.value != int(row.value):
            problems.append(f"{where}: a count must be a whole number")
        if row.measure == "tips_received" and row.attribution != "not_applicable":
            problems.append(f"{where}: tips received are not attributed to anything")
        if row.attribution == "not_applicable" and row.measure not in TIP_MEASURES:
            problems.append(f"{where}: an outcome must say whether it comes from tips or from all work")
    for key, group in funnels.groupby(["unit", "period_start", "period_end"]):
        tips = group.loc[group["measure"] == "tips_received", "value"]
        if tips.empty:
            continue
        from_tips = group[(group["attribution"] == "from_tips") & (group["measure"] != "backlog_years")]
        for row in from_tips.itertuples(index=False):
            if row.value > tips.min():
                problems.append(f"{key}: {row.measure} from tips ({row.value:g}) exceeds tips received ({tips.min():g})")
    for unit, group in funnels.groupby("unit"):
        if len(group[["unit_name", "state", "scope"]].drop_duplicates()) != 1:
            problems.append(f"{unit}: name, state or scope differs between rows")
    return problems


def test_task_force_funnels_hold_together():
    funnels = load_all(DATA)["task_force_funnels"]
    assert _funnel_problems(funnels) == []
    unit_periods = funnels[["unit", "period_start", "period_end"]].drop_duplicates()
    assert len(unit_periods) >= 25 and funnels["state"].nunique() >= 10
    arrests_from_tips = funnels[(funnels["measure"] == "arrests") & (funnels["attribution"] == "from_tips")]
    assert not arrests_from_tips.empty


def test_task_force_funnel_rules_catch_bad_rows():
    funnels = load_all(DATA)["task_force_funnels"].copy()
    arrest = funnels.index[(funnels["measure"] == "arrests") & (funnels["attribution"] == "from_tips")][0]
    funnels.loc[arrest, "value"] = 10**7
    funnels.loc[funnels.index[0], "period_end"] = funnels.loc[funnels.index[0], "period_start"].replace(year=1990)
    problems = _funnel_problems(funnels)
    assert any("exceeds tips received" in p for p in problems), problems
    assert any("ends before it starts" in p for p in problems), problems


def test_icac_feedback_per_100_reports_is_computed_from_the_two_files(monkeypatch):
    """model.icac_feedback, which four chapters quote, against the rows of feedback.csv and
    recipients.csv read by the csv module; a feedback year without ICAC deliveries is refused."""
    import csv

    from tipline.estimates import model

    table = model.icac_feedback()
    with (DATA / "feedback.csv").open(newline="", encoding="utf-8") as handle:
        given = {int(r["year"]): int(r["feedback_instances"]) for r in csv.DictReader(handle) if r["recipient"] == "icac"}
    made = {}
    with (DATA / "recipients.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["recipient"] == "icac":
                made.setdefault(int(row["year"]), {})[row["label"]] = int(row["reports"])
    assert list(table.index) == sorted(given) and len(given) >= 3
    for year, feedback in given.items():
        assert table.loc[year, "feedback"] == feedback
        assert table.loc[year, "per_100_actionable"] == pytest.approx(100 * feedback / made[year]["actionable"], rel=1e-12)
        assert table.loc[year, "per_100"] == pytest.approx(100 * feedback / sum(made[year].values()), rel=1e-12)
    frames = {name: load_all(DATA)[name] for name in ("feedback", "recipients")}
    frames["recipients"] = frames["recipients"][frames["recipients"]["year"] != min(given)]
    monkeypatch.setattr(model, "load", lambda name: frames[name].copy())
    with pytest.raises(ValueError, match=rf"no ICAC actionable and informational counts for the feedback years \[{min(given)}\]"):
        model.icac_feedback()
