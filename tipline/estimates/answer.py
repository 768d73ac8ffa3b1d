"""The book's answer in machine-readable form: data/answer.json in the built site.

One function, `compute()`, gathers every headline figure of the model chapter: for each
modelled year and definition of a genuine U.S. report, each outcome's median and interval from
the top-down model; the threshold; the bottom-up fit to the task-force funnels and its
predictive intervals for a new unit-period; the reconciliation of the two; the held-out
validation. The chapter glues its prose from the same dictionary, and a test checks that the
published file and the glued figures agree.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from . import funnels, outcomes
from ..evidence import data

QUESTION = "Using best inference, what is the most common outcome of a genuine, U.S.-jurisdiction NCMEC CyberTipline report?"


def percent(value: float) -> str:
    """A share as the chapters print it: one decimal near 0 or 1, none in between; a share that
    would round to 0% or 100% without being exactly that is said as under 0.1% / over 99.9%."""
    if value < 0.001:
        return "under 0.1%"
    if 0.999 < value < 1:
        return "over 99.9%"
    return f"{100 * value:.{1 if value < 0.1 or value > 0.9 else 0}f}%"


def _interval(values: dict) -> dict:
    return {key: (round(float(values[key]), 6) if isinstance(values[key], float) else values[key])
            for key in ("median", "low", "high", "level")}


def task_force_reports(year: int) -> int:
    """All reports (actionable and informational) NCMEC made available to ICAC task forces in `year`:
    what a task force counts as tips received."""
    recipients = data.load("recipients")
    rows = recipients[(recipients["year"] == year) & (recipients["recipient"] == "icac")]
    return int(rows["reports"].sum())


@lru_cache(maxsize=1)
def _bottom_up() -> funnels.Result:
    return funnels.run()


@lru_cache(maxsize=1)
def _top_down() -> dict:
    return {(year, definition): outcomes.draw(year, definition)
            for year in outcomes.years() for definition in outcomes.definitions(year)}


def top_down() -> dict:
    """The accepted-and-rejected draws for every modelled year and definition (cached)."""
    return _top_down()


def bottom_up() -> funnels.Result:
    return _bottom_up()


def bottom_up_mode_probability(result: funnels.Result) -> float:
    """Posterior probability, for the mean task force, that a tip never opened as an investigation
    is more common than one opened without an arrest: P(mu_inv < (1 + mu_arrest) / 2), with
    mu_arrest at its posterior median (it is small, so its uncertainty barely moves the line)."""
    from scipy.special import expit

    investigations, arrests = result.fits["investigations"], result.fits["arrests"]
    line = (1 + arrests.mean_rate()["median"]) / 2
    marginal = investigations.weights.sum(axis=1)
    return float(marginal[expit(funnels.LOGIT_MU) < line].sum())


def compute() -> dict:
    draws = top_down()
    level = outcomes.LEVEL
    years = outcomes.years()
    modelled, not_modelled = {}, {}
    given = {year: outcomes.inputs(year) for year in years}
    for year in years:
        modelled[str(year)] = {}
        for definition in outcomes.definitions(year):
            label, frame = outcomes.DEFINITIONS[definition], draws[(year, definition)]
            result = outcomes.summary(frame)
            threshold = outcomes.threshold_summary(frame)
            modelled[str(year)][definition] = {
                "definition": label,
                "reports": given[year].reports[definition],
                "acceptance_rate": round(outcomes.acceptance(frame), 6),
                "outcomes": {o: {"median": round(float(result.loc[o, "median"]), 6),
                                 "low": round(float(result.loc[o, "low"]), 6),
                                 "high": round(float(result.loc[o, "high"]), 6), "level": level,
                                 **({"most_common_in_share_of_draws": round(float(result.loc[o, "mode_share"]), 6)}
                                    if o in outcomes.OUTCOMES else {})}
                             for o in outcomes.OUTCOMES + ("conviction",)},
                "no_arrest": _interval(outcomes.no_arrest(frame)),
                "threshold_reports_per_investigation": {**_interval(threshold),
                                                        "probability_below": round(threshold["probability_below"], 6)},
            }
            if definition == outcomes.FEDERAL:
                federal = given[year].federal
                modelled[str(year)][definition]["federal_outcomes"] = {
                    "agency": "HSI", "investigations": federal.investigations, "arrests": federal.arrests,
                    "grades": list(federal.grades),
                    "missing_investigations_to_change_the_answer": _interval(outcomes.missing_investigations(frame, year)),
                }
        for definition in outcomes.DEFINITIONS:
            if definition not in modelled[str(year)]:
                not_modelled.setdefault(str(year), {})[definition] = "no federal outcome counts found for this fiscal year"
    result = bottom_up()
    fits = result.fits
    predictive = {f"{stage}_per_tip": _interval(fits[stage].predictive(level))
                  for stage in ("arrests", "investigations") if fits[stage] is not None}
    mean = {f"{stage}_per_tip": _interval(fits[stage].mean_rate(level))
            for stage in ("arrests", "investigations") if fits[stage] is not None}
    reconciliation = {}
    for year in years:
        offered = task_force_reports(year)
        entry = {"reports_made_available_to_icac": offered}
        for stage, published, more_than in (("investigations", given[year].investigations, given[year].investigations_more_than),
                                             ("arrests", given[year].arrests, given[year].arrests_more_than)):
            if fits[stage] is None:
                continue
            rate = fits[stage].mean_rate(level)
            entry[stage] = {"predicted_from_tips": {k: round(rate[k] * offered) for k in ("median", "low", "high")} | {"level": level},
                            "published_all_origins": published,
                            "published_qualifier": "more_than" if more_than else "about",
                            "ratio_predicted_to_published": round(rate["median"] * offered / published, 4)}
        reconciliation[str(year)] = entry
    validation = result.validation
    main_latest = modelled[str(years[-1])][outcomes.MAIN]
    return {
        "question": QUESTION,
        "main_definition": outcomes.MAIN,
        "level": level,
        "top_down": modelled,
        "not_modelled": not_modelled,
        "threshold": {year: modelled[year][outcomes.MAIN]["threshold_reports_per_investigation"] for year in modelled},
        "task_force_predictive": predictive,
        "task_force_mean": mean,
        "task_force_units": int(result.table.loc[result.table["usable"], "unit"].nunique()),
        "task_force_unit_periods": int(result.table.loc[result.table["usable"], ["unit", "period_start", "period_end"]].drop_duplicates().shape[0]),
        "bottom_up_never_opened_most_common_probability": round(bottom_up_mode_probability(result), 6),
        "reconciliation": reconciliation,
        "validation": {
            "rule": "set aside before fitting, for each stage: the latest unit-period of every unit that published that stage for more than one period, and every unit-period ending in the most recent year the usable figures reach",
            "held_out": [{"unit": r.unit, "period_start": str(r.period_start), "period_end": str(r.period_end), "stage": r.stage,
                          "tips": int(r.tips), "count": int(r.count), "kind": r.kind, "covered": bool(r.covered)}
                         for r in validation.itertuples(index=False)],
            "covered": int(validation["covered"].sum()),
            "total": int(len(validation)),
        },
        "headline": {
            "year": years[-1],
            "no_arrest": main_latest["no_arrest"],
            "most_common": max(outcomes.OUTCOMES, key=lambda o: main_latest["outcomes"][o]["most_common_in_share_of_draws"]),
            "most_common_probability": max(main_latest["outcomes"][o]["most_common_in_share_of_draws"] for o in outcomes.OUTCOMES),
            "threshold": main_latest["threshold_reports_per_investigation"],
        },
    }


@lru_cache(maxsize=1)
def _loaded() -> str:
    return json.dumps(compute(), sort_keys=True, default=str)


def load() -> dict:
    """The headline figures for the current inputs, as answer.json holds them (a fresh copy each
    call). Chapters read the answer through this instead of calling `compute()` themselves; the
    build decides where it is computed and kept (computed once per process here)."""
    return json.loads(_loaded())


def write(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(compute(), indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    import sys

    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "answer.json")))
