"""The book's answer in machine-readable form: data/answer.json in the built site.

`compute()` gathers every headline figure of the model chapter: the outcome classes and what each
counts; for each modelled year and definition of a genuine U.S. report, each outcome's median and
interval from the top-down model; the condition under which "no case opened" comes first, per
year; the sensitivity of the answer to every prior set; the bottom-up fit to the task-force
funnels (its slope on volume, the rates at given volumes, the national share at the average
volume), scored by leaving one unit out against two baselines; the two routes compared like with
like and the evidence they share. Chapters read it through `load()`; a test checks that the
published file and the glued figures agree.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import condition, funnels, outcomes, reconcile
from .kept import READ, computing, kept_path, kept_text, store
from ..evidence import data

QUESTION = "Using best inference, what is the most common outcome of a genuine, U.S.-jurisdiction NCMEC CyberTipline report?"
VOLUMES = (500, 1_000, 5_000)  # the unit volumes of task_force_predictive, besides the headline year's average
CURVE = np.geomspace(100, 30_000, 21)  # volumes at which the fitted mean rate is drawn


def _round(values: dict) -> dict:
    return {key: (round(float(value), 6) if isinstance(value, (float, np.floating)) else value)
            for key, value in values.items()}


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


def _top_down_entry(year: int, definition: str, frame, given: outcomes.Inputs) -> dict:
    result = outcomes.summary(frame)
    entry = {
        "definition": outcomes.DEFINITIONS[definition],
        "reports": given.reports[definition],
        "acceptance_rate": round(outcomes.acceptance(frame), 6),
        "outcomes": {o: _round({"median": result.loc[o, "median"], "low": result.loc[o, "low"],
                                "high": result.loc[o, "high"], "level": outcomes.LEVEL}
                               | ({"most_common_in_share_of_draws": result.loc[o, "mode_share"]} if o in outcomes.OUTCOMES else {}))
                     for o in outcomes.OUTCOMES + ("conviction",)},
        "no_arrest": _round(outcomes.no_arrest(frame)),
        "condition": _round(outcomes.condition(frame)),
    }
    if definition == outcomes.FEDERAL:
        federal = given.federal
        entry["federal_outcomes"] = {
            "agency": "HSI", "investigations": federal.investigations, "arrests": federal.arrests,
            "grades": list(federal.grades),
            "missing_investigations_to_change_the_answer": _round(outcomes.missing_investigations(frame, year)),
        }
    return entry


def validation(result: funnels.Result) -> dict:
    """Leave-one-unit-out scores of the three bottom-up models, stage by stage."""
    scores = result.scores
    out = {"method": ("leave one task force out: fit on the others, score all of its figures by their log predictive "
                      "density (an exact count by its probability; a bound by the probability of lying on its side, "
                      "censored); inside = figures inside the central interval, or on the consistent side of it for a bound"),
           "level": funnels.LEVEL, "stages": {}}
    for stage, rows in scores.groupby("stage", sort=False):
        by_model = rows.pivot(index="unit", columns="model", values="log_score")
        stage_entry = {"units": int(len(by_model)), "figures": int(rows[rows["model"] == "size"]["figures"].sum()),
                       "exact": int(rows[rows["model"] == "size"]["exact"].sum()), "models": {}}
        for model in funnels.MODELS:
            mine = rows[rows["model"] == model]
            entry = {"label": funnels.MODEL_LABELS[model], "log_score": round(float(mine["log_score"].sum()), 4),
                     "inside": int(mine["inside"].sum())}
            if model != "size":
                difference = by_model["size"] - by_model[model]
                entry["size_model_better_by"] = round(float(difference.sum()), 4)
                entry["standard_error"] = round(float(np.sqrt(len(difference)) * difference.std(ddof=1)), 4)
            stage_entry["models"][model] = entry
        out["stages"][stage] = stage_entry
    return out


def _rates(fitted: funnels.Fit, volumes) -> list[dict]:
    return [{"tips": round(float(v), 1), **_round(fitted.predictive_at(v))} for v in volumes]


def compute() -> dict:
    draws = top_down()
    level = outcomes.LEVEL
    years = outcomes.years()
    latest = years[-1]
    given = {year: outcomes.inputs(year) for year in years}
    modelled, not_modelled = {}, {}
    for year in years:
        modelled[str(year)] = {d: _top_down_entry(year, d, draws[(year, d)], given[year]) for d in outcomes.definitions(year)}
        for definition in outcomes.DEFINITIONS:
            if definition not in modelled[str(year)]:
                not_modelled.setdefault(str(year), {})[definition] = "no federal outcome counts found for this fiscal year"
    result = bottom_up()
    volume = reconcile.average_volume(latest)
    sensitivity = condition.sensitivity(latest)
    identity = all(((f.loc[f["accepted"], "mode"] == "never_investigated")
                    == (f.loc[f["accepted"], "product"] < f.loc[f["accepted"], "flip_product"])).all() for f in draws.values())
    evidence = condition.evidence()
    national = reconcile.national(result, latest)
    main = modelled[str(latest)][outcomes.MAIN]
    return {
        "question": QUESTION,
        "main_definition": outcomes.MAIN,
        "level": level,
        "outcome_classes": {o: {"label": outcomes.OUTCOME_LABELS[o], "counts": outcomes.OUTCOME_COUNTS[o]} for o in outcomes.OUTCOMES},
        "top_down": modelled,
        "not_modelled": not_modelled,
        "condition": {str(y): modelled[str(y)][outcomes.MAIN]["condition"] for y in years}
                     | {"quantity": condition.QUANTITIES["product"], "identity_holds_in_every_draw": bool(identity)},
        "condition_evidence": [_round(row) for row in evidence.drop(columns=["attribution"]).to_dict("records")],
        "sensitivity": sensitivity,
        "task_force_predictive": {f"{stage}_per_tip_at": _rates(result.fits[(stage, "size")], VOLUMES + (volume,))
                                  for stage in ("arrests", "investigations")},
        "task_force_curve": {stage: [{"tips": round(float(v), 1), **_round(result.fits[(stage, "size")].mean_rate_at(v))} for v in CURVE]
                             for stage in ("arrests", "investigations")},
        "task_force_slope": {stage: _round(result.fits[(stage, "size")].slope()) for stage in ("arrests", "investigations")},
        "task_force_national": _round({k: v for k, v in national.items() if not isinstance(v, dict)})
                               | {k: (_round(v) if "median" in v else {o: _round(e) for o, e in v.items()})
                                  for k, v in national.items() if isinstance(v, dict)},
        "task_force_unit_mean": {f"{stage}_per_tip": _round(result.fits[(stage, "no_size")].mean_rate_at(funnels.REFERENCE_TIPS))
                                 | {"note": "mean of unit rates without the volume term (secondary: not a share of tips)"}
                                 for stage in ("arrests", "investigations")},
        "task_force_units": int(result.table.loc[result.table["usable"], "unit"].nunique()),
        "task_force_unit_periods": int(result.table.loc[result.table["usable"], ["unit", "period_start", "period_end"]]
                                       .drop_duplicates().shape[0]),
        "validation": validation(result),
        "reconciliation": {str(year): reconcile.like_with_like(result, draws, year) for year in years},
        "shared_evidence": reconcile.shared_evidence(result, evidence),
        "headline": {
            "year": latest,
            "no_arrest": main["no_arrest"],
            "no_arrest_over_prior_sets": {"lowest_low": min(e["no_arrest"]["low"] for e in sensitivity),
                                          "highest_high": max(e["no_arrest"]["high"] for e in sensitivity),
                                          "prior_sets": len(sensitivity), "level": level},
            "no_arrest_bottom_up": national["no_arrest"] | {"level": level},
            "most_common": max(outcomes.OUTCOMES, key=lambda o: main["outcomes"][o]["most_common_in_share_of_draws"]),
            "most_common_probability_over_prior_sets": {"lowest": min(e["no_case_opened_first"] for e in sensitivity),
                                                        "highest": max(e["no_case_opened_first"] for e in sensitivity)},
            "condition": main["condition"],
        },
    }


def _computed() -> tuple[str, set[str]]:
    """answer.json's text, computed afresh, and the datasets the computation read."""
    for cached in (_top_down, _bottom_up):  # so that every dataset it reads is loaded, and noted, again
        cached.cache_clear()
    with data.reading() as names:
        text = json.dumps(compute(), indent=1, sort_keys=True, default=str) + "\n"
    return text, names


def keep() -> Path:
    """answer.json for the current inputs, computed and kept unless it is kept already: `make book`
    calls it once per build, before the chapters that read it, and publishes the file it returns."""
    if kept_text(kept_path()) is None:
        with computing():  # computed by one process at a time; the others then find it kept
            if kept_text(kept_path()) is None:
                return store(*_computed())
    return kept_path()


def load() -> dict:
    """The headline figures for the current inputs, as answer.json holds them (a fresh copy each
    call). Chapters read the answer through this instead of calling `compute()` themselves: under
    `make book` the build has kept it already, so this only reads the file. The datasets it was
    computed from count as read by the calling chapter, whose stamp then holds their content."""
    text, names = kept_text(kept_path()), None
    if text is None:
        with computing():  # computed by one process at a time; the others then find it kept
            text = kept_text(kept_path())
            if text is None:
                text, names = _computed()
                try:
                    store(text, names)
                except OSError:  # a read-only checkout: the figures are still right, only not kept
                    pass
    if names is None:  # read from the kept file
        names = set(READ.read_text().split()) if READ.is_file() else {r["name"] for r in data.package()["resources"]}
    for name in sorted(names):
        data.note_read(name)
    return json.loads(text)


def write(path: Path) -> Path:
    """answer.json for the current inputs, written to `path` (the kept copy, computed if need be)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(keep().read_bytes())
    return path


if __name__ == "__main__":
    import sys

    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "answer.json")))
