"""Load the evidence base in data/ and refuse anything that does not match its schema.

The schema lives in one place, data/datapackage.json (a Frictionless Data Package). Every
CSV is checked field by field against it here, so a chapter never sees a malformed value:
the first problem stops the load with the file, the line and the column named.
"""
from __future__ import annotations

import csv
import json
import os
import re
from datetime import date
from functools import lru_cache
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# TIPLINE_DATA lets a test run the chapters against an edited copy of data/.
DATA = Path(os.environ.get("TIPLINE_DATA", ROOT / "data")).resolve()


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


def package(data_dir: Path = DATA) -> dict:
    return json.loads((data_dir / "datapackage.json").read_text())


def _parse(value: str, field: dict):
    kind = field["type"]
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise ValueError(f"{value!r} is not true or false")
        return value.lower() == "true"
    if kind == "date":
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return value


def _check(value, field: dict) -> None:
    rules = field.get("constraints", {})
    if "enum" in rules and value not in rules["enum"]:
        raise ValueError(f"{value!r} is not one of {', '.join(rules['enum'])}")
    if "minimum" in rules and value < rules["minimum"]:
        raise ValueError(f"{value!r} is below the minimum {rules['minimum']}")
    if "maximum" in rules and value > rules["maximum"]:
        raise ValueError(f"{value!r} is above the maximum {rules['maximum']}")
    if "minLength" in rules and len(value) < rules["minLength"]:
        raise ValueError(f"{value!r} is shorter than {rules['minLength']} characters")
    if "pattern" in rules and not re.fullmatch(rules["pattern"], value):
        raise ValueError(f"{value!r} does not match the pattern {rules['pattern']}")


def read_resource(resource: dict, data_dir: Path = DATA) -> pd.DataFrame:
    """Read one CSV of the package, checking header, types, constraints and primary key."""
    path = data_dir / resource["path"]
    fields = resource["schema"]["fields"]
    names = [f["name"] for f in fields]
    if not path.exists():
        raise DataError(path, None, None, "file is missing")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != names:
            missing = [n for n in names if n not in (header or [])]
            extra = [n for n in (header or []) if n not in names]
            detail = (f"missing {missing}" if missing else "") + (f" unexpected {extra}" if extra else "")
            raise DataError(path, 1, (missing or extra or [None])[0],
                            f"header does not match the schema ({detail.strip() or 'order differs'})")
        rows, seen = [], {}
        key = resource["schema"].get("primaryKey", [])
        for line, raw in enumerate(reader, start=2):
            if len(raw) != len(names):
                raise DataError(path, line, None, f"has {len(raw)} cells, the schema has {len(names)} columns")
            row = {}
            for field, cell in zip(fields, raw):
                if cell == "":
                    if field.get("constraints", {}).get("required"):
                        raise DataError(path, line, field["name"], "value is required but empty")
                    row[field["name"]] = "" if field["type"] == "string" else None
                    continue
                try:
                    value = _parse(cell, field)
                    _check(value, field)
                except ValueError as error:
                    raise DataError(path, line, field["name"], str(error)) from None
                row[field["name"]] = value
            ident = tuple(row[k] for k in key)
            if key and ident in seen:
                raise DataError(path, line, key[0],
                                f"duplicate key {dict(zip(key, ident))} (first on line {seen[ident]})")
            seen[ident] = line
            rows.append(row)
    return pd.DataFrame(rows, columns=names)


def _check_sources(frames: dict[str, pd.DataFrame], pkg: dict, data_dir: Path) -> None:
    known = set(frames["sources"]["source_id"])
    for resource in pkg["resources"]:
        frame = frames[resource["name"]]
        if resource["name"] == "sources" or "source_id" not in frame:
            continue
        for index, source_id in enumerate(frame["source_id"]):
            if source_id not in known:
                raise DataError(data_dir / resource["path"], index + 2, "source_id",
                                f"unknown source id {source_id!r} (not in sources.csv)")


def _check_domain(frames: dict[str, pd.DataFrame], data_dir: Path) -> None:
    """Rules the sources themselves state: parts add up to their totals."""
    annual = frames["reports_annual"]
    preferred = annual[annual["preferred"]]
    counts = preferred.groupby(["year", "reporter"]).size()
    if (counts > 1).any():
        (year, reporter) = counts[counts > 1].index[0]
        raise DataError(data_dir / "reports_annual.csv", None, "preferred",
                        f"more than one preferred row for {year}, {reporter}")
    totals = preferred.pivot(index="year", columns="reporter", values="reports")
    both = totals.dropna(subset=["esp", "public", "all"])
    for year, row in both.iterrows():
        if row["esp"] + row["public"] != row["all"]:
            raise DataError(data_dir / "reports_annual.csv", None, "reports",
                            f"{year}: ESP ({row['esp']:,}) + public ({row['public']:,}) != total ({row['all']:,})")
    location = frames["user_location"]
    report = location[location["series"] == "transparency_report"]
    for year, group in report.groupby("year"):
        if year in totals.index and group["reports"].sum() != totals.loc[year, "all"]:
            raise DataError(data_dir / "user_location.csv", None, "reports",
                            f"{year}: U.S. + international + unknown ({group['reports'].sum():,}) "
                            f"!= total reports ({totals.loc[year, 'all']:,})")
    esp = frames["esp_reports"]
    complete = esp[esp["source_id"].str.startswith("ncmec_esp_")]
    for year, group in complete.groupby("year"):
        if group["reports"].sum() != totals.loc[year, "esp"]:
            raise DataError(data_dir / "esp_reports.csv", None, "reports",
                            f"{year}: providers sum to {group['reports'].sum():,}, "
                            f"the ESP total is {totals.loc[year, 'esp']:,}")
    listed = set(zip(esp["year"], esp["provider"]))
    for index, row in frames["us_referrals"].iterrows():
        if (row["year"], row["esp_provider"]) not in listed:
            raise DataError(data_dir / "us_referrals.csv", index + 2, "esp_provider",
                            f"{row['esp_provider']!r} is not a provider of esp_reports.csv in {row['year']}")
    for name in ("estimates", "assumptions"):
        for index, row in frames[name].iterrows():
            if row["low"] > row["high"]:
                raise DataError(data_dir / f"{name}.csv", index + 2, "low", "low is above high")


def load_all(data_dir: Path = DATA) -> dict[str, pd.DataFrame]:
    """Every resource of the package, validated; raises DataError on the first problem."""
    pkg = package(data_dir)
    frames = {r["name"]: read_resource(r, data_dir) for r in pkg["resources"]}
    _check_sources(frames, pkg, data_dir)
    _check_domain(frames, data_dir)
    return frames


@lru_cache(maxsize=1)
def _cached() -> dict[str, pd.DataFrame]:
    return load_all(DATA)


_chapter: str | None = None
_recorded: set[str] = set()


def track(chapter: str) -> None:
    """Record, during `make book`, which datasets `chapter` reads (see tipline.cache).

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
