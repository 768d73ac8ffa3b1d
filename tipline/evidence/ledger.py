"""The claims ledger: each claim of the source analysis with the evidence computed from data/.

A claim's evidence is declared in data/claims.csv, never as code. `numerator` (and, for a
share or ratio, `denominator`) holds a selection in a small declarative form:

    sum(reports) where year == 2023 and recipient != 'international'

an aggregation of one column (only `sum`) over the rows whose columns compare (==, !=, <, <=,
>, >=) with a literal: a whole number, a decimal, 'quoted text', true or false. `check()`
parses every selection when the data are validated (tipline.evidence.validate), so an unknown column,
operator or value stops the build naming claims.csv's line and column; `evidence()` then
computes the value with plain comparisons. Nothing from the data is passed to
DataFrame.query or eval. For dataset 'model' the numerator names an outcome of the model.

Two more ledgers follow the same rules. The quotation ledger (data/quotes.csv): every passage a
page quotes, in the source's exact words, with the passage it was read in and a digest of that
passage; `check_quotes()` refuses a quotation that is not part of its passage or a passage whose
digest no longer matches, so an edited quotation stops the build. The series breaks
(data/breaks.csv): the years in which what a dataset counts changed; a break's `series` names
its rows with the conditions of a selection (`provider == 'Facebook'`), and `breaks_within()` /
`breaks_in()` find the breaks a span of years or a chart's rows cross.
"""
from __future__ import annotations

import hashlib
import operator
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .data import DATA, DataError, load, package

VERDICTS = {"supported": "Supported", "partly_supported": "Partly supported",
            "not_supported": "Not supported", "not_checkable": "Not checkable with these data"}
COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
           "!=": operator.ne}
AGGREGATIONS = ("sum",)
SELECTION = re.compile(r"(?P<aggregation>[a-z]+)\((?P<column>[a-z_][a-z0-9_]*)\)(?: where (?P<conditions>.+))?", re.ASCII)
CONDITION = re.compile(r"(?P<column>[a-z_][a-z0-9_]*) (?P<op>\S+) (?P<value>.+)", re.ASCII)
OUTCOME = re.compile(r"[a-z_]+", re.ASCII)
HOLDS = re.compile(r"(<=|>=|==|<|>) (claimed|-?[0-9]+(?:\.[0-9]+)?)", re.ASCII)


@dataclass(frozen=True)
class Selection:
    dataset: str
    aggregation: str
    column: str
    conditions: tuple[tuple[str, str, object], ...]

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        mask = pd.Series(True, index=frame.index)
        for column, op, value in self.conditions:
            mask &= COMPARE[op](frame[column], value).fillna(False).astype(bool)
        return frame[mask]


def _literal(text: str, field: dict):
    """The value a condition compares with, in the type of the field it names."""
    kind = field["type"]
    if kind == "string":
        match = re.fullmatch(r"'([^']*)'", text)
        if not match:
            raise ValueError(f"{text} must be quoted text such as 'icac' for the text column {field['name']!r}")
        value = match.group(1)
        allowed = field.get("constraints", {}).get("enum")
        if allowed and value not in allowed:
            raise ValueError(f"{text} is not a value of {field['name']!r} (one of {', '.join(allowed)})")
        return value
    if kind == "boolean":
        if text not in ("true", "false"):
            raise ValueError(f"{text} must be true or false for {field['name']!r}")
        return text == "true"
    if kind == "integer" and re.fullmatch(r"-?[0-9]+", text, re.ASCII):
        return int(text)
    if kind == "number" and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text, re.ASCII):
        return float(text)
    raise ValueError(f"{text} is not a value for the {kind} column {field['name']!r}")


def parse(text: str, dataset: str, fields: dict[str, dict]) -> Selection:
    """A selection such as "sum(reports) where year == 2023"; ValueError says what is wrong."""
    match = SELECTION.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a selection of the form "
                         "\"sum(column) where column == value and ...\"")
    if match["aggregation"] not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {match['aggregation']!r} (use {', '.join(AGGREGATIONS)})")

    def field(name):
        if name not in fields:
            raise ValueError(f"unknown column {name!r} in dataset {dataset!r} (its columns: {', '.join(fields)})")
        return fields[name]

    if field(match["column"])["type"] not in ("integer", "number"):
        raise ValueError(f"column {match['column']!r} of {dataset!r} holds no numbers to sum")
    return Selection(dataset, match["aggregation"], match["column"], conditions(match["conditions"] or "", dataset, fields))


def conditions(text: str, dataset: str, fields: dict[str, dict]) -> tuple[tuple[str, str, object], ...]:
    """The conditions "column == value and ..." of a selection (empty text: none); ValueError says what is wrong."""
    found = []
    for part in (text.split(" and ") if text else []):
        condition = CONDITION.fullmatch(part)
        if not condition:
            raise ValueError(f"{part!r} is not a condition of the form \"column == value\"")
        if condition["op"] not in COMPARE:
            raise ValueError(f"unknown operator {condition['op']!r} in {part!r} (use {', '.join(COMPARE)})")
        if condition["column"] not in fields:
            raise ValueError(f"unknown column {condition['column']!r} in dataset {dataset!r} (its columns: {', '.join(fields)})")
        found.append((condition["column"], condition["op"], _literal(condition["value"], fields[condition["column"]])))
    return tuple(found)


def _schemas(pkg: dict) -> dict[str, dict[str, dict]]:
    return {r["name"]: {f["name"]: f for f in r["schema"]["fields"]} for r in pkg["resources"]}


def check(claims: pd.DataFrame, lines: list[int], pkg: dict, path: Path) -> None:
    """Refuse a claim whose evidence is not a valid declarative selection (called by load_all)."""
    schemas = _schemas(pkg)
    for line, claim in zip(lines, claims.itertuples(index=False)):
        if claim.holds_if and not HOLDS.fullmatch(claim.holds_if):
            raise DataError(path, line, "holds_if", f"{claim.holds_if!r} is not a condition such as '> 0.5' or '== claimed'")
        if claim.holds_if and "claimed" in claim.holds_if and pd.isna(claim.claimed_value):
            raise DataError(path, line, "holds_if", "compares with the claimed value, but claimed_value is empty")
        if claim.evidence_format == "none":
            for column in ("dataset", "numerator", "denominator_dataset", "denominator", "holds_if"):
                if getattr(claim, column):
                    raise DataError(path, line, column, "must be empty when evidence_format is none")
            continue
        if not claim.dataset or not claim.numerator:
            raise DataError(path, line, "dataset" if not claim.dataset else "numerator",
                            "is required unless evidence_format is none")
        if bool(claim.denominator_dataset) != bool(claim.denominator):
            raise DataError(path, line, "denominator", "denominator and denominator_dataset go together")
        parts = [("numerator", claim.dataset, claim.numerator)]
        if claim.denominator:
            parts.append(("denominator", claim.denominator_dataset, claim.denominator))
        for column, dataset, text in parts:
            if dataset == "model":
                if column == "denominator" or not OUTCOME.fullmatch(text):
                    raise DataError(path, line, column, f"{text!r}: the model's evidence is one outcome name, with no denominator")
                continue
            if dataset not in schemas:
                raise DataError(path, line, column, f"unknown dataset {dataset!r}")
            try:
                parse(text, dataset, schemas[dataset])
            except ValueError as error:
                raise DataError(path, line, column, str(error)) from None


def _total(dataset: str, text: str, line: int, column: str) -> tuple[float, pd.DataFrame]:
    """The aggregated value over the rows `text` selects; errors name claims.csv's `column`."""
    try:
        selection = parse(text, dataset, _schemas(package())[dataset])
    except (KeyError, ValueError) as error:
        raise DataError(DATA / "claims.csv", line, column, str(error)) from None
    rows = selection.rows(load(dataset))
    if rows.empty:
        raise DataError(DATA / "claims.csv", line, column, f"{text!r} matches no row of {dataset}")
    return float(rows[selection.column].sum()), rows


def evidence(claims: pd.DataFrame | None = None, model_value=None) -> pd.DataFrame:
    """claims.csv with an `evidence_value` (float) per claim, to be written in words in the claim's
    `evidence_format` (tipline.presentation.text.evidence_words).

    `model_value(outcome)` supplies the model's median share for claims whose dataset is 'model'.
    Also returns, in `evidence_rows`, the data rows each value was computed from. A verdict whose
    `holds_if` condition the evidence no longer meets stops with a DataError.
    """
    claims = load("claims") if claims is None else claims
    values, rows_used = [], []
    lines = claims.attrs.get("lines") or range(2, len(claims) + 2)
    for line, claim in zip(lines, claims.itertuples(index=False)):
        if claim.evidence_format == "none":
            values.append(float("nan")); rows_used.append(None)
            continue
        if claim.dataset == "model":
            value, rows = float(model_value(claim.numerator)), load("assumptions")
        else:
            value, rows = _total(claim.dataset, claim.numerator, line, "numerator")
            if claim.denominator_dataset:
                below, below_rows = _total(claim.denominator_dataset, claim.denominator, line, "denominator")
                value, rows = value / below, pd.concat([rows, below_rows])
        if claim.holds_if and not holds(claim.holds_if, value, claim.claimed_value):
            raise DataError(DATA / "claims.csv", line, "holds_if",
                            f"the evidence for {claim.claim_id!r} is now {value:g}, which no longer meets "
                            f"'{claim.holds_if}': review the verdict {claim.verdict!r}")
        values.append(value)
        rows_used.append(rows)
    result = claims.copy()
    result["evidence_value"] = values
    result["evidence_rows"] = rows_used
    return result


def holds(condition: str, value: float, claimed: float | None = None) -> bool:
    """Whether `value` meets a verdict's condition such as '> 0.5' or '== claimed'."""
    match = HOLDS.fullmatch(condition)
    if not match:
        raise ValueError(f"{condition!r} is not a condition such as '> 0.5' or '== claimed'")
    sign, target = match.groups()
    return COMPARE[sign](value, float(claimed) if target == "claimed" else float(target))


# ---------------------------------------------------------------- the quotation ledger

def digest(context: str) -> str:
    """The digest quotes.csv records for the passage a quotation was read in."""
    return hashlib.sha256(context.encode("utf-8")).hexdigest()[:16]


def check_quotes(quotes: pd.DataFrame, lines: list[int], path: Path) -> None:
    """Refuse a quotation that is not word for word part of the passage it was read in, a passage
    edited since it was read (its digest no longer matches), or text that cannot be one inline
    quotation (a line break)."""
    for line, row in zip(lines, quotes.itertuples(index=False)):
        for column in ("text", "context"):
            if "\n" in getattr(row, column):
                raise DataError(path, line, column, "contains a line break: a quotation is one run of text")
        if row.text not in row.context:
            raise DataError(path, line, "text", f"{row.text!r} is not word for word part of its context: "
                            "a quotation must be the source's exact words (read the source again and copy them)")
        if digest(row.context) != row.digest:
            raise DataError(path, line, "context", f"does not match its digest {row.digest}: the passage was "
                            "edited after it was read; read the source again and record the passage and its digest")


# ---------------------------------------------------------------- series breaks

def check_breaks(breaks: pd.DataFrame, lines: list[int], pkg: dict, path: Path) -> None:
    """Refuse a break whose `series` is not a list of conditions on its dataset's columns."""
    schemas = _schemas(pkg)
    for line, row in zip(lines, breaks.itertuples(index=False)):
        try:
            conditions(row.series, row.dataset, schemas[row.dataset])
        except ValueError as error:
            raise DataError(path, line, "series", str(error)) from None


def _in_series(frame: pd.DataFrame, row) -> pd.DataFrame:
    wanted = conditions(row.series, row.dataset, _schemas(package())[row.dataset])
    return Selection(row.dataset, "sum", "", wanted).rows(frame) if wanted else frame


def breaks_within(dataset: str, first: int, last: int, rows: pd.DataFrame | None = None,
                  table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of breaks.csv for `dataset` that a span from year `first` to year `last` crosses:
    first < break year <= last. With `rows` (rows of the dataset), a break of one series counts
    only if some of those rows belong to it."""
    table = load("breaks") if table is None else table
    found = table[(table["dataset"] == dataset) & (table["year"] > first) & (table["year"] <= last)]
    if rows is not None:
        found = found[[not _in_series(rows, row).empty for row in found.itertuples(index=False)]]
    return found


def _key(values) -> tuple:
    """Cells compared as text, so 2021 read back as 2021.0 after a concat still matches."""
    return tuple(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values)


def breaks_in(frame: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The breaks the rows of a chart or table cross, whatever datasets they were drawn from.

    A row belongs to a dataset when it has all the dataset's columns with the values of one of its
    rows; for each dataset with breaks, the years of its rows in `frame` (of the break's series)
    are compared with each break's year.
    """
    table = load("breaks") if table is None else table
    crossed = []
    for dataset, breaks in table.groupby("dataset", sort=False):
        columns = list(_schemas(package())[dataset])
        if not set(columns) <= set(frame.columns):
            continue
        known = {_key(values) for values in load(dataset)[columns].itertuples(index=False)}
        mine = frame[[_key(values) in known for values in frame[columns].itertuples(index=False)]]
        for row in breaks.itertuples(index=False):
            years = _in_series(mine, row)["year"]
            if len(years) and years.min() < row.year <= years.max():
                crossed.append(row)
    return pd.DataFrame(crossed, columns=table.columns).drop_duplicates(["year", "what_changed", "source_id"])
