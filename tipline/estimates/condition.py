"""What the most common outcome depends on: the flip condition, the evidence on it, the priors.

In the top-down route "no case opened" comes first exactly while the product

    share of ICAC investigations begun by a report  x  reports taken in by each such investigation

(the reports taken into cases per ICAC investigation of any origin) stays below a line that the
national counts fix for each year (`outcomes.condition`). No national figure measures either
factor. This module gathers what does bound them, one task force at a time, from the funnel data:

* a count of a unit's investigations of every origin (or of unknown origin) bounds the product at
  that unit from above: the reports taken into cases are at most the tips it received;
* where that count exceeds the tips, the share begun by a report is at most tips / cases;
* a count of investigations the unit ties to tips bounds reports per case from above: tips / cases.

Every bound is local and one-sided; none bounds either quantity from below. `sensitivity()` runs
the top-down model under every prior set of data/assumptions.csv.
"""
from __future__ import annotations

import pandas as pd

from . import funnels, outcomes

QUANTITIES = {"product": "Reports in cases per investigation (share x reports per case)",
              "share": "Share of investigations begun by a report",
              "per_case": "Reports per investigation begun by a report"}


def evidence(rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per published figure that bounds a quantity of the condition at one unit: the
    quantity, the bound (an upper bound, `high`), the counts it comes from, grade and sources.

    Only units that count the tips they received enter: a count of tips "investigated" need not
    be all the tips a unit received. Tips given as "more than n" enter at the top of their rounding
    unit (n + u), the loosest value they allow.
    """
    table = funnels.observations(rows)
    # a count of investigations "conducted" may include cases opened earlier: it bounds nothing from above here
    table = table[(table["stage"] == "investigations") & (table["tips_measure"] == "tips_received")
                  & ~table["measure"].isin(funnels.UPPER_MEASURES)]
    found = []
    for row in table.itertuples(index=False):
        tips = row.tips + (funnels.rounding_unit(row.tips) if row.tips_side == 1 else 0)
        base = {"unit": row.unit, "unit_name": row.unit_name, "period_start": row.period_start,
                "period_end": row.period_end, "tips": row.tips, "cases": row.count, "measure": row.measure,
                "attribution": row.attribution, "grade": row.grade, "source_ids": row.source_ids}
        ratio = tips / row.count if row.count else float("inf")
        if row.attribution == "from_tips":
            found.append(dict(base, quantity="per_case", low=1.0, high=ratio))
        else:
            found.append(dict(base, quantity="product", low=0.0, high=ratio))
            if ratio < 1:
                found.append(dict(base, quantity="share", low=0.0, high=ratio))
    columns = ["quantity", "low", "high", "unit", "unit_name", "period_start", "period_end", "tips", "cases", "measure",
               "attribution", "grade", "source_ids"]
    return pd.DataFrame(found, columns=columns).sort_values(["quantity", "high"], kind="stable").reset_index(drop=True)


def describe(prior_set: str) -> str:
    """A prior set in words: each parameter it changes and the prior it puts there."""
    if prior_set == outcomes.BASELINE:
        return "The book's priors (data/assumptions.csv)"
    priors = outcomes.assumptions(prior_set)
    parts = []
    for name in outcomes.changed(prior_set):
        row = priors.loc[name]
        shape = (f"flat from {row['low']:g} to {row['high']:g}" if row["distribution"] == "uniform"
                 else f"beta({row['a']:g}, {row['b']:g}) over {row['low']:g} to {row['high']:g}")
        label = outcomes.PARAMETER_LABELS[name]
        parts.append(f"{label[0].lower() + label[1:]} {shape}")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]


def sensitivity(year: int, level: float = outcomes.LEVEL) -> list[dict]:
    """The top-down model for `year` (main definition) under every prior set: how often "no case
    opened" comes first, and the share of reports without an arrest (median and interval)."""
    entries = []
    for prior_set in outcomes.prior_sets():
        frame = outcomes.draw(year, priors=outcomes.assumptions(prior_set))
        mode = outcomes.summary(frame, level)["mode_share"]
        entries.append({"prior_set": prior_set, "description": describe(prior_set),
                        "changes": outcomes.changed(prior_set),
                        "acceptance_rate": round(outcomes.acceptance(frame), 6),
                        "no_case_opened_first": round(float(mode["never_investigated"]), 6),
                        "no_arrest": {k: round(v, 6) if isinstance(v, float) else v
                                      for k, v in outcomes.no_arrest(frame, level).items()},
                        "condition": {k: round(v, 6) for k, v in outcomes.condition(frame, level).items()}})
    return entries
