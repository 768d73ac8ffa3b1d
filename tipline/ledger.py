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


def _total(dataset: str, query: str, line: int) -> tuple[float, pd.DataFrame]:
    frame = load(dataset)
    try:
        rows = frame.query(query)
    except Exception as error:  # a malformed query is a data error in claims.csv
        raise DataError(DATA / "claims.csv", line, "numerator", f"query {query!r} fails: {error}") from None
    if rows.empty:
        raise DataError(DATA / "claims.csv", line, "numerator", f"query {query!r} matches no row of {dataset}")
    return float(rows[MEASURES.get(dataset, "reports")].sum()), rows


def evidence(claims: pd.DataFrame | None = None, model_value=None) -> pd.DataFrame:
    """claims.csv with an `evidence_value` (float) and `evidence_text` (formatted) per claim.

    `model_value(outcome)` supplies the model's median share for claims whose dataset is 'model'.
    Also returns, in `evidence_rows`, the data rows each value was computed from.
    """
    claims = load("claims") if claims is None else claims
    values, texts, rows_used = [], [], []
    for index, claim in claims.iterrows():
        line = index + 2
        if claim["evidence_format"] == "none":
            values.append(float("nan")); texts.append("(no public series)"); rows_used.append(None)
            continue
        if claim["dataset"] == "model":
            value = float(model_value(claim["numerator"]))
            rows_used.append(load("assumptions"))
        else:
            value, rows = _total(claim["dataset"], claim["numerator"], line)
            if claim["denominator_dataset"]:
                below, below_rows = _total(claim["denominator_dataset"], claim["denominator"], line)
                value = value / below
                rows = pd.concat([rows, below_rows])
            rows_used.append(rows)
        values.append(value)
        texts.append({"count": count, "share": lambda v: share(v), "ratio": lambda v: f"{v:.2f}"}[claim["evidence_format"]](value))
    result = claims.copy()
    for index, (claim, value) in enumerate(zip(claims.itertuples(index=False), values)):
        if claim.holds_if and not holds(claim.holds_if, value, claim.claimed_value):
            raise DataError(DATA / "claims.csv", index + 2, "holds_if",
                            f"the evidence for {claim.claim_id!r} is now {value:g}, which no longer meets "
                            f"'{claim.holds_if}': review the verdict {claim.verdict!r}")
    result["evidence_value"] = values
    result["evidence_text"] = texts
    result["evidence_rows"] = rows_used
    return result


COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


def holds(condition: str, value: float, claimed: float | None = None) -> bool:
    """Whether `value` meets a verdict's condition such as '> 0.5' or '== claimed'."""
    sign, target = re.fullmatch(r"(<=|>=|==|<|>) (claimed|-?[0-9.]+)", condition).groups()
    return COMPARE[sign](value, float(claimed) if target == "claimed" else float(target))
