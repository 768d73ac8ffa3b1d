"""The claims ledger: each claim of the source analysis with the evidence computed from data/.

A claim's evidence is declared in data/claims.csv as a pandas query on a dataset (and, for a
share or ratio, a second query for the denominator), or as an outcome of the model. It is
recomputed on every build, so an edited CSV changes the ledger too.
"""
from __future__ import annotations

import operator
import re

import pandas as pd

from .data import DATA, DataError, load
from .text import count, share

VERDICTS = {"supported": "Supported", "partly_supported": "Partly supported",
            "not_supported": "Not supported", "not_checkable": "Not checkable"}
# the column holding the measured value in each dataset
MEASURES = {"downstream": "value", "feedback": "feedback_instances", "files": "files"}


def _total(dataset: str, query: str, line: int, column: str) -> tuple[float, pd.DataFrame]:
    """Sum of the measured value over the rows `query` selects; errors name claims.csv's `column`."""
    frame = load(dataset)
    try:
        rows = frame.query(query)
    except Exception as error:  # a malformed query is a data error in claims.csv
        raise DataError(DATA / "claims.csv", line, column, f"query {query!r} fails: {error}") from None
    if rows.empty:
        raise DataError(DATA / "claims.csv", line, column, f"query {query!r} matches no row of {dataset}")
    return float(rows[MEASURES.get(dataset, "reports")].sum()), rows


FORMATS = {"count": count, "share": share, "ratio": lambda value: f"{value:.2f}"}


def evidence(claims: pd.DataFrame | None = None, model_value=None) -> pd.DataFrame:
    """claims.csv with an `evidence_value` (float) and `evidence_text` (formatted) per claim.

    `model_value(outcome)` supplies the model's median share for claims whose dataset is 'model'.
    Also returns, in `evidence_rows`, the data rows each value was computed from. A verdict whose
    `holds_if` condition the evidence no longer meets stops with a DataError.
    """
    claims = load("claims") if claims is None else claims
    values, texts, rows_used = [], [], []
    for line, claim in enumerate(claims.itertuples(index=False), start=2):
        if claim.evidence_format == "none":
            values.append(float("nan")); texts.append("(no public series)"); rows_used.append(None)
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
        texts.append(FORMATS[claim.evidence_format](value))
        rows_used.append(rows)
    result = claims.copy()
    result["evidence_value"] = values
    result["evidence_text"] = texts
    result["evidence_rows"] = rows_used
    return result


COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


def holds(condition: str, value: float, claimed: float | None = None) -> bool:
    """Whether `value` meets a verdict's condition such as '> 0.5' or '== claimed'."""
    sign, target = re.fullmatch(r"(<=|>=|==|<|>) (claimed|-?[0-9.]+)", condition).groups()
    return COMPARE[sign](value, float(claimed) if target == "claimed" else float(target))
