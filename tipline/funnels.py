"""Bottom-up: what happens to a tip at the task forces that publish their funnels.

Some task forces publish, for a year or an operation, how many CyberTipline reports ("tips")
they received and how many investigations, search warrants, arrests and charges followed
(data/task_force_funnels.csv). For each stage this module estimates, for one tip made available
to a task force, the probability that it reaches that stage.

The model is a hierarchical beta-binomial. Unit-period j received n_j tips, of which y_j reached
the stage; its own rate p_j is drawn from Beta(mu * kappa, (1 - mu) * kappa), where mu is the
mean rate across unit-periods and kappa says how alike they are (large kappa: alike). The
posterior of (mu, kappa) is computed exactly on a grid, with a flat prior on logit(mu) and on
log(kappa) over the grid's range. No sampler: the result is the same, to the last digit, on
every machine, which nbval needs.

Counts that are not simply "tips that reached the stage" enter as bounds, never as if exact:

* all_work / unknown attribution: arrests (or investigations) from all of a unit's work,
  proactive cases included, are at least the arrests from tips, so y_j <= the count;
* "more than" / "at least": y_j >= the count;
* a count larger than the tips it would be divided by says nothing about a per-tip rate as a
  bound and is left out (the table of observations records why).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logsumexp
from scipy.stats import beta, betabinom

from .data import load

# the stages a tip can reach, each with the measures that count it (first one found is used)
STAGES = {
    "investigations": ("tips_investigated", "investigations_opened"),
    "warrants": ("search_warrants",),
    "arrests": ("arrests",),
    "charges": ("charged", "indicted"),
}
STAGE_LABELS = {"investigations": "Opened as an investigation", "warrants": "Search warrant",
                "arrests": "Arrest", "charges": "Charge or indictment"}
GRADE_ORDER = {"primary": 0, "transcription": 1, "secondary": 2}
LEVEL = 0.9
MIN_UNITS = 3  # a stage is fitted only with at least this many unit-periods carrying information

# the grid: logit(mu) from about 0.1% to 98%, kappa from 0.5 (units nothing alike) to 5,000 (alike)
LOGIT_MU = np.linspace(-7.0, 4.0, 221)
LOG_KAPPA = np.linspace(np.log(0.5), np.log(5000.0), 121)


def observations(funnels: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per unit-period and stage: tips received, the stage's count, and how it enters.

    `kind` is exact (tips that reached the stage), at_most (an upper bound: all of the unit's work,
    or attribution unknown) or at_least ("more than"). Conflicting sources: the best grade is used
    (primary, then transcription, then news), then a count attributed to tips.
    """
    funnels = load("task_force_funnels") if funnels is None else funnels
    funnels = funnels.assign(_grade=funnels["grade"].map(GRADE_ORDER),
                             _tips=(funnels["attribution"] != "from_tips").astype(int))
    funnels = funnels.sort_values(["_grade", "_tips", "source_id"], kind="stable")
    rows = []
    for (unit, start, end), group in funnels.groupby(["unit", "period_start", "period_end"], sort=True):
        tips = group[group["measure"] == "tips_received"]
        if tips.empty:
            continue
        tip = tips.iloc[0]
        for stage, measures in STAGES.items():
            found = group[group["measure"].isin(measures)]
            if found.empty:
                continue
            found = found.assign(_order=found["measure"].map(measures.index)).sort_values("_order", kind="stable")
            row = found.iloc[0]
            n, y = int(round(tip["value"])), int(round(row["value"]))
            if row["attribution"] == "from_tips" and row["qualifier"] in ("more_than", "at_least"):
                kind = "at_least"
            elif row["attribution"] == "from_tips":
                kind = "exact"
            else:
                kind = "at_most"
            usable, why = True, ""
            if n <= 0:
                usable, why = False, "no tips"
            elif y > n and kind == "at_most":
                usable, why = False, "count above the tips received: no bound on a per-tip rate"
            elif y > n:
                usable, why = False, "count attributed to tips exceeds the tips received"
            rows.append({"unit": unit, "unit_name": tip["unit_name"], "state": tip["state"], "scope": tip["scope"],
                         "period": tip["period"], "period_start": start, "period_end": end, "stage": stage,
                         "measure": row["measure"], "tips": n, "count": y, "kind": kind,
                         "attribution": row["attribution"], "usable": usable, "why_not": why,
                         "source_ids": "; ".join(dict.fromkeys([tip["source_id"], row["source_id"]])),
                         "grade": max([tip["grade"], row["grade"]], key=GRADE_ORDER.get)})
    columns = ["unit", "unit_name", "state", "scope", "period", "period_start", "period_end", "stage", "measure",
               "tips", "count", "kind", "attribution", "usable", "why_not", "source_ids", "grade"]
    return pd.DataFrame(rows, columns=columns)


def held_out(table: pd.DataFrame) -> pd.Series:
    """The rule, fixed before any fit: for each stage, the latest unit-period of every unit that
    published the stage for more than one period is set aside (the question a reader asks of a
    model fitted to past years: does it predict a unit's next year?)."""
    usable = table["usable"]
    latest = table[usable].groupby(["stage", "unit"])["period_end"].transform("max")
    several = table[usable].groupby(["stage", "unit"])["period_end"].transform("count") > 1
    flag = pd.Series(False, index=table.index)
    flag.loc[latest.index] = (table.loc[latest.index, "period_end"] == latest) & several
    return flag


def _loglik(table: pd.DataFrame) -> np.ndarray:
    """Log-likelihood of the unit-periods at every grid point (shape: mu x kappa)."""
    mu = expit(LOGIT_MU)[:, None]
    kappa = np.exp(LOG_KAPPA)[None, :]
    a, b = mu * kappa, (1 - mu) * kappa
    total = np.zeros((len(LOGIT_MU), len(LOG_KAPPA)))
    for row in table.itertuples(index=False):
        if row.kind == "exact":
            total += betabinom.logpmf(row.count, row.tips, a, b)
        elif row.kind == "at_most":
            total += betabinom.logcdf(row.count, row.tips, a, b)
        else:
            total += betabinom.logsf(row.count - 1, row.tips, a, b)
    return total


@dataclass(frozen=True)
class Fit:
    """The grid posterior for one stage."""
    stage: str
    data: pd.DataFrame
    weights: np.ndarray  # posterior probability of each grid point (mu x kappa)

    @property
    def _ab(self):
        mu = expit(LOGIT_MU)[:, None]
        kappa = np.exp(LOG_KAPPA)[None, :]
        keep = self.weights > self.weights.max() * 1e-9
        return (mu * kappa)[keep], ((1 - mu) * kappa)[keep], self.weights[keep] / self.weights[keep].sum()

    def mean_rate(self, level: float = LEVEL) -> dict:
        """Posterior of mu, the mean rate across unit-periods: median and central interval."""
        marginal = self.weights.sum(axis=1)
        cumulative = np.cumsum(marginal)
        mu = expit(LOGIT_MU)
        tail = (1 - level) / 2
        pick = lambda q: float(np.interp(q, cumulative, mu))  # noqa: E731
        return {"median": pick(0.5), "low": pick(tail), "high": pick(1 - tail), "level": level}

    def predictive(self, level: float = LEVEL) -> dict:
        """The rate of a new unit-period (mixture of betas over the posterior): median, interval."""
        a, b, w = self._ab

        def cdf(p):
            return float(np.dot(w, beta.cdf(p, a, b)))

        tail = (1 - level) / 2
        return {"median": _solve(cdf, 0.5), "low": _solve(cdf, tail), "high": _solve(cdf, 1 - tail), "level": level}

    def predictive_count(self, tips: int, level: float = LEVEL) -> dict:
        """The count a new unit-period with `tips` tips would report: median and central interval."""
        a, b, w = self._ab
        tail = (1 - level) / 2

        def quantile(q):
            low, high = 0, tips
            while low < high:  # smallest k with P(count <= k) >= q
                middle = (low + high) // 2
                if np.dot(w, betabinom.cdf(middle, tips, a, b)) >= q:
                    high = middle
                else:
                    low = middle + 1
            return low
        return {"median": quantile(0.5), "low": quantile(tail), "high": quantile(1 - tail), "level": level}


def _solve(cdf, q: float) -> float:
    """Bisection for the q-quantile of a distribution on [0, 1] (60 steps: far below print precision)."""
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if cdf(middle) < q:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def fit(table: pd.DataFrame, stage: str) -> Fit | None:
    """Fit one stage to the usable unit-periods of `table`; None if fewer than MIN_UNITS."""
    data = table[(table["stage"] == stage) & table["usable"]]
    if len(data) < MIN_UNITS:
        return None
    loglik = _loglik(data)
    weights = np.exp(loglik - logsumexp(loglik))
    return Fit(stage, data.reset_index(drop=True), weights)


def validate(fitted: Fit, held: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Whether each held-out unit-period falls inside the fitted model's predictive interval.

    An exact count is covered if it lies in the interval; an upper bound (at_most) is consistent
    if it is not below the interval's low end; a lower bound (at_least) if not above its high end.
    """
    rows = []
    for row in held.itertuples(index=False):
        interval = fitted.predictive_count(row.tips, level)
        if row.kind == "exact":
            covered = interval["low"] <= row.count <= interval["high"]
        elif row.kind == "at_most":
            covered = row.count >= interval["low"]
        else:
            covered = row.count <= interval["high"]
        rows.append({"unit": row.unit, "unit_name": row.unit_name, "period_start": row.period_start,
                     "period_end": row.period_end, "stage": row.stage, "tips": row.tips, "count": row.count,
                     "kind": row.kind, "low": interval["low"], "median": interval["median"],
                     "high": interval["high"], "covered": bool(covered)})
    return pd.DataFrame(rows, columns=["unit", "unit_name", "period_start", "period_end", "stage", "tips", "count",
                                       "kind", "low", "median", "high", "covered"])


@dataclass(frozen=True)
class Result:
    table: pd.DataFrame           # every observation, with a held_out flag
    fits: dict                    # stage -> Fit on the unit-periods not held out (None if too few)
    validation: pd.DataFrame      # held-out unit-periods against the predictive intervals


def run(funnels: pd.DataFrame | None = None, level: float = LEVEL) -> Result:
    """Set the held-out unit-periods aside, fit every stage on the rest, check the held-out ones."""
    table = observations(funnels)
    table["held_out"] = held_out(table)
    training = table[~table["held_out"]]
    fits = {stage: fit(training, stage) for stage in STAGES}
    checks = [validate(fits[stage], table[table["held_out"] & table["usable"] & (table["stage"] == stage)], level)
              for stage in STAGES if fits[stage] is not None]
    checks = [c for c in checks if not c.empty]
    validation = pd.concat(checks, ignore_index=True) if checks else validate(None, table.iloc[:0], level)
    return Result(table, fits, validation)
