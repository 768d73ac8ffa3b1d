"""Transcribe NCMEC's "CyberTipline Reports by Electronic Service Providers" tables.

Reads the pdftotext -layout extractions kept in ../shared/sources/ncmec/ (not part of this
repository) and writes data/esp_reports.csv with one row per provider, year and page. The
row sum of each year is checked against the total printed in the PDF; the script refuses
to write anything if they differ.

Run from the repository root:  python scripts/transcribe_ncmec_esp.py
"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT.parent / "shared" / "sources" / "ncmec"
ROW = re.compile(r"^\s*(?P<name>\S.*?\S)\s{2,}(?P<value>\d{1,3}(?:,\d{3})*)\s*$")
NUMBER_ONLY = re.compile(r"^\s+(?P<value>\d{1,3}(?:,\d{3})*)\s*$")
TOTAL = re.compile(r"^\s*Totals?:?\s+(?P<value>\d{1,3}(?:,\d{3})+)\s*$")
SKIP = re.compile(r"Copyright|Reports by ESP|^\s*ESP\s+(Number of )?Reports")
SOURCE_ID = {year: f"ncmec_esp_{year}" for year in range(2019, 2024)}


def parse(year: int) -> tuple[list[dict], int]:
    text = (SOURCES / f"ncmec-by-esp-{year}.txt").read_text()
    rows: list[dict] = []
    total = None
    started = False
    pending = ""
    for page_number, page in enumerate(text.split("\f"), start=1):
        for line in page.splitlines():
            if "breakdown of reports by electronic service providers" in line:
                started = True
                continue
            if not started or not line.strip() or SKIP.search(line) or "combined" in line:
                continue
            if m := TOTAL.match(line):
                total = int(m["value"].replace(",", ""))
                continue
            if m := ROW.match(line):
                rows.append({"name": m["name"], "reports": int(m["value"].replace(",", "")),
                             "page": page_number})
            elif m := NUMBER_ONLY.match(line):  # the number of a name printed on the line above
                rows.append({"name": pending, "reports": int(m["value"].replace(",", "")),
                             "page": page_number})
                pending = ""
            elif rows and rows[-1]["name"].endswith("/"):
                rows[-1]["name"] += " " + line.strip()  # a name wrapped onto the next line
            else:
                pending = (pending + " " + line.strip()).strip()
    if total is None:
        sys.exit(f"{year}: no total found")
    return rows, total


def main() -> None:
    out = []
    for year in range(2019, 2024):
        rows, total = parse(year)
        found = sum(r["reports"] for r in rows)
        if found != total:
            sys.exit(f"{year}: rows sum to {found:,}, the PDF prints {total:,}")
        for r in rows:
            out.append({"year": year, "provider": r["name"].rstrip("*").strip(),
                        "combined_related_companies": r["name"].endswith("*"),
                        "reports": r["reports"], "source_id": SOURCE_ID[year],
                        "locator": f"p. {r['page']}, table of reports by ESP",
                        "grade": "primary", "period": "calendar_year"})
        print(f"{year}: {len(rows)} providers, {total:,} reports (sum checked)")
    with open(ROOT / "data" / "esp_reports.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)


if __name__ == "__main__":
    main()
