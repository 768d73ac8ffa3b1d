"""Evidence: the datasets of data/ loaded and validated (`data`), and the claims ledger (`ledger`)."""
from __future__ import annotations

from pathlib import Path

from . import data, ledger


def validate(data_dir: Path | None = None) -> dict:
    """Every dataset validated against the package, then every claim's declarative selection
    checked against the datasets it names, every quotation against the passage it was read in and its
    digest, and every series break's rows; raises DataError on the first problem."""
    data_dir = Path(data_dir or data.DATA)
    frames = data.load_all(data_dir)
    claims = frames["claims"]
    ledger.check(claims, claims.attrs["lines"], data.package(data_dir), data_dir / "claims.csv")
    ledger.check_quotes(frames["quotes"], frames["quotes"].attrs["lines"], data_dir / "quotes.csv")
    ledger.check_breaks(frames["breaks"], frames["breaks"].attrs["lines"], data.package(data_dir), data_dir / "breaks.csv")
    return frames
