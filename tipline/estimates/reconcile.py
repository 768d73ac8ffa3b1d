"""The bottom-up route as a national estimate, and the two routes set side by side like with like.

The bottom-up fit (funnels) gives, for a task force of a given volume, the expected share of its
tips that are opened as a case, and that end in an arrest. Two steps turn that into the book's
question, the share of reports in each outcome nationally:

* the volume: in the headline year NCMEC made R reports available to the 61 ICAC task forces,
  R / 61 each on average. How the volume is spread between task forces is not published; because
  the fitted arrest curve is concave in volume when its slope lies between -1 and 0, the share at
  the average volume is then an upper bound on the volume-weighted share over any spread of volumes
  with that average (`concave_probability` says how much of the posterior satisfies that);
* reports per case, treated as in the top-down route: an arrest (or case) counted once takes in
  `reports_per_arrest` (`reports_per_investigation`) reports, drawn from the same priors.

The reconciliation compares report-begun cases with report-begun cases: ICAC's published counts
times the drawn share begun by a report (and moved to the calendar year), against the cases the
funnels' rates predict from the reports made available to ICAC task forces.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import funnels, outcomes
from ..evidence.data import load

SEED = 20240502
DRAWS = 20_000


def task_forces() -> int:
    """The number of ICAC task forces (the most recent published count)."""
    rows = load("downstream")
    rows = rows[(rows["agency"] == "icac") & (rows["measure"] == "task_forces")]
    return int(rows.sort_values("period_end")["value"].iloc[-1])


def task_force_reports(year: int) -> int:
    """All reports (actionable and informational) NCMEC made available to ICAC task forces in `year`:
    what a task force counts as tips received."""
    recipients = load("recipients")
    rows = recipients[(recipients["year"] == year) & (recipients["recipient"] == "icac")]
    return int(rows["reports"].sum())


def average_volume(year: int) -> float:
    return task_force_reports(year) / task_forces()


def _interval(values, level: float = outcomes.LEVEL) -> dict:
    values = np.asarray(values, dtype=float)
    tail = (1 - level) / 2
    return {"median": float(np.median(values)), "low": float(np.quantile(values, tail)),
            "high": float(np.quantile(values, 1 - tail)), "level": level}


def concave_probability(fitted: funnels.Fit) -> float:
    """Posterior probability that the slope lies in [-1, 0], where a unit's arrests grow no faster
    than its tips and the average-volume share bounds the volume-weighted one from above."""
    alpha, slope, kappa, w = fitted._points()
    return float(w[(slope >= -1) & (slope <= 0)].sum())


def national(result: funnels.Result, year: int, priors: pd.DataFrame | None = None,
             draws: int = DRAWS, seed: int = SEED) -> dict:
    """The bottom-up route at the average task-force volume of `year`: draws of the rates (from the
    size model) times reports per case (from the top-down priors). Impossible draws (more reports
    in cases than exist, or arrests on reports never in a case) are rejected, as top-down."""
    priors = outcomes.assumptions() if priors is None else priors
    rng = np.random.default_rng(seed)
    volume = average_volume(year)
    opened = result.fits[("investigations", "size")].draws(draws, rng, volume)
    arrested = result.fits[("arrests", "size")].draws(draws, rng, volume)
    per_case = outcomes.prior(priors.loc["reports_per_investigation"], rng, draws)
    per_arrest = outcomes.prior(priors.loc["reports_per_arrest"], rng, draws)
    in_case, in_arrest = opened * per_case, arrested * per_arrest
    ok = (in_case <= 1) & (in_arrest <= in_case)
    shares = {"never_investigated": 1 - in_case[ok], "investigated_no_arrest": in_case[ok] - in_arrest[ok],
              "arrest": in_arrest[ok]}
    stacked = np.stack([shares[o] for o in outcomes.OUTCOMES])
    first = np.array(outcomes.OUTCOMES)[stacked.argmax(axis=0)]
    return {"year": year, "average_volume": round(volume, 1), "task_forces": task_forces(),
            "acceptance_rate": float(ok.mean()),
            "outcomes": {o: _interval(shares[o]) | {"first_in_share": float((first == o).mean())} for o in outcomes.OUTCOMES},
            "no_arrest": _interval(1 - in_arrest[ok]),
            "arrests_per_tip": result.fits[("arrests", "size")].average_of_units(volume, task_forces()),
            "investigations_per_tip": result.fits[("investigations", "size")].average_of_units(volume, task_forces()),
            "concave_probability": concave_probability(result.fits[("arrests", "size")])}


def like_with_like(result: funnels.Result, draws: dict, year: int, seed: int = SEED) -> dict:
    """Report-begun investigations and arrests for `year`: top-down (ICAC's counts times the drawn
    share begun by a report, moved to the calendar year) against bottom-up (the funnels' rates at
    the average volume times the reports made available to ICAC task forces)."""
    frame = outcomes.accepted_draws(draws[(year, outcomes.MAIN)])
    given = outcomes.inputs(year)
    reports = task_force_reports(year)
    rng = np.random.default_rng(seed)
    values = {"reports_made_available_to_icac": reports, "average_volume": round(average_volume(year), 1)}
    tops = {"investigations": outcomes.reach(frame["investigations"], frame["share_investigations"], 1, given.growth,
                                             frame["lag_investigations"]),
            "arrests": outcomes.reach(frame["arrests"], frame["share_arrests"], 1, given.arrest_growth,
                                      frame["lag_arrests"])}
    for stage, published in (("investigations", given.investigations), ("arrests", given.arrests)):
        top = np.asarray(tops[stage], dtype=float)
        bottom = result.fits[(stage, "size")].draws(len(top), rng, average_volume(year)) * reports
        values[stage] = {"published_all_origins": published,
                         "report_begun_top_down": {k: (round(v) if k != "level" else v) for k, v in _interval(top).items()},
                         "predicted_from_tips_bottom_up": {k: (round(v) if k != "level" else v) for k, v in _interval(bottom).items()},
                         "ratio_bottom_up_to_top_down": {k: (round(v, 4) if k != "level" else v)
                                                         for k, v in _interval(bottom / top).items()}}
    return values


def shared_evidence(result: funnels.Result, evidence: pd.DataFrame) -> list[dict]:
    """The task forces whose figures feed both routes: bounds behind the top-down priors (share
    begun by a report; reports per case) and observations in the bottom-up fit."""
    fitted = {}
    for (stage, model), fit in result.fits.items():
        if model == "size" and fit is not None:
            for unit in fit.data["unit"]:
                fitted.setdefault(unit, set()).add(stage)
    priors = evidence[evidence["quantity"].isin(["share", "per_case"])]
    shared = []
    for unit, rows in priors.groupby("unit", sort=True):
        if unit in fitted:
            shared.append({"unit": unit, "unit_name": rows["unit_name"].iloc[0],
                           "top_down": sorted(set(rows["quantity"])), "bottom_up": sorted(fitted[unit])})
    return shared
