"""Every figure transcribed from an NCMEC PDF can be found on the page its locator cites.

The PDFs and their pdftotext extractions live in ../shared/sources/ncmec/ (not committed).
CI runs with shared/ beside the clone; elsewhere the check is skipped with a reason.
TIPLINE_NCMEC_TEXT names that folder when it is elsewhere (e.g. for a git worktree).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import tipline
from tipline.evidence.data import load_all

SHARED = Path(os.environ.get("TIPLINE_NCMEC_TEXT") or Path(tipline.evidence.data.ROOT).parent / "shared" / "sources" / "ncmec")
FILES = {"ncmec_ojjdp_2022": "ncmec-ojjdp-2022.txt", "ncmec_ojjdp_2023": "ncmec-ojjdp-2023.txt",
         **{f"ncmec_country_{y}": f"ncmec-by-country-{y}.txt" for y in range(2019, 2024)},
         **{f"ncmec_esp_{y}": f"ncmec-by-esp-{y}.txt" for y in range(2019, 2024)}}
VALUE_COLUMNS = ("reports", "files", "feedback_instances")

pytestmark = pytest.mark.skipif(not SHARED.exists(), reason=f"NCMEC text extractions not found at {SHARED}")


def _pages(source_id: str) -> list[str]:
    return (SHARED / FILES[source_id]).read_text().split("\f")


def _rows():
    for name, frame in load_all().items():
        column = next((c for c in VALUE_COLUMNS if c in frame), None)
        if column is None:
            continue
        for index, row in frame[frame["source_id"].isin(FILES)].iterrows():
            yield name, index + 2, row["source_id"], row["locator"], int(row[column])


def test_there_are_transcriptions_to_check():
    assert sum(1 for _ in _rows()) > 1000


def test_each_value_is_on_its_cited_page():
    missing = []
    cache = {}
    for name, line, source_id, locator, value in _rows():
        page = int(re.match(r"p\. (\d+)", locator).group(1))
        pages = cache.setdefault(source_id, _pages(source_id))
        text = pages[page - 1]
        if not re.search(rf"(?<![\d,]){value:,}(?![\d,])", text):
            missing.append(f"{name}.csv line {line}: {value:,} not on p. {page} of {FILES[source_id]}")
    assert not missing, "\n".join(missing[:20])
