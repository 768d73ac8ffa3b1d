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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import betaln, expit, logsumexp
from scipy.stats import beta, betabinom

from ..evidence.data import load

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

# the grid: logit(mu) from about 0.1% to 98%; kappa from 1 (unit-periods barely alike) to 10,000 (all alike)
LOGIT_MU = np.linspace(-7.0, 4.0, 111)
LOG_KAPPA = np.linspace(0.0, np.log(10_000.0), 61)


def observations(funnels: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per unit-period and stage: tips received, the stage's count, and how it enters.

    `kind` is exact (tips that reached the stage), at_most (an upper bound: all of the unit's work,
    or attribution unknown) or at_least ("more than"). Conflicting sources: the best grade is used
    (primary, then transcription, then news), then a count attributed to tips, then an exact one.
    """
    funnels = load("task_force_funnels") if funnels is None else funnels
    funnels = funnels.assign(_grade=funnels["grade"].map(GRADE_ORDER),
                             _tips=(funnels["attribution"] != "from_tips").astype(int))
    funnels = funnels.assign(_exact=(funnels["qualifier"] != "exact").astype(int))
    funnels = funnels.sort_values(["_grade", "_tips", "_exact", "source_id"], kind="stable")
    best: dict[tuple, dict] = {}  # (unit, start, end) -> measure -> the preferred row
    for record in funnels.to_dict("records"):
        best.setdefault((record["unit"], record["period_start"], record["period_end"]), {}).setdefault(record["measure"], record)
    rows = []
    for (unit, start, end), measures_found in sorted(best.items(), key=lambda item: tuple(str(x) for x in item[0])):
        tip = measures_found.get("tips_received")
        if tip is None:
            continue
        for stage, measures in STAGES.items():
            row = next((measures_found[m] for m in measures if m in measures_found), None)
            if row is None:
                continue
            n, y = int(round(tip["value"])), int(round(row["value"]))
            lower = row["qualifier"] in ("more_than", "at_least")
            if row["attribution"] == "from_tips":
                kind = "at_least" if lower else "exact"
            else:
                kind = "at_most"
            usable, why = True, ""
            if kind == "at_most" and lower:
                usable, why = False, "\"more than\" a count of all work: no bound on the count from tips"
            elif n <= 0:
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
    """The rule, fixed before any fit. Set aside, for each stage:

    * the latest unit-period of every unit that published the stage for more than one period
      (does the model predict a unit's next year?), and
    * every unit-period ending in the most recent year the usable figures reach (does a model of
      earlier years predict the newest figures, the ones a reader would apply it to?).
    """
    usable = table["usable"]
    latest = table[usable].groupby(["stage", "unit"])["period_end"].transform("max")
    several = table[usable].groupby(["stage", "unit"])["period_end"].transform("count") > 1
    flag = pd.Series(False, index=table.index)
    flag.loc[latest.index] = (table.loc[latest.index, "period_end"] == latest) & several
    year = table["period_end"].astype(str).str[:4]
    newest = year[usable].max() if usable.any() else None
    return flag | (usable & (year == newest))


def log_cdf(count: int, tips: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log P(Y <= count) for Y ~ BetaBinomial(tips, a, b), elementwise over arrays a and b.

    Summed term by term with the ratio of successive probabilities, which is exact and, for the
    few hundred terms a count here needs, far faster than scipy's generic cdf over a large grid.
    """
    k = np.arange(count)
    # log pmf(0) = log B(a, tips + b) - log B(a, b); pmf(k + 1) / pmf(k) = (n - k)(k + a) / ((k + 1)(n - k - 1 + b))
    log_pmf = betaln(a, tips + b) - betaln(a, b)
    total = log_pmf.copy()
    for step in k:
        log_pmf = log_pmf + np.log((tips - step) * (step + a)) - np.log((step + 1) * (tips - step - 1 + b))
        total = np.logaddexp(total, log_pmf)
    return np.minimum(total, 0.0)


def _loglik(table: pd.DataFrame, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Log-likelihood of the unit-periods at every grid point."""
    total = np.zeros(np.broadcast(a, b).shape)
    for row in table.itertuples(index=False):
        if row.kind == "exact":
            total += betabinom.logpmf(row.count, row.tips, a, b)
        elif row.kind == "at_most":
            total += log_cdf(row.count, row.tips, a, b)
        else:  # at least `count`: 1 - P(Y <= count - 1)
            total += np.log1p(-np.exp(np.minimum(log_cdf(row.count - 1, row.tips, a, b), -1e-300))) if row.count > 0 else 0.0
    return total


def _grid():
    mu = expit(LOGIT_MU)[:, None]
    kappa = np.exp(LOG_KAPPA)[None, :]
    return mu * kappa, (1 - mu) * kappa


@dataclass(frozen=True)
class Fit:
    """The grid posterior for one stage."""
    stage: str
    data: pd.DataFrame
    weights: np.ndarray  # posterior probability of each grid point (mu x kappa)
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def _ab(self):
        a, b = _grid()
        keep = self.weights > self.weights.max() * 1e-9
        return a[keep], b[keep], self.weights[keep] / self.weights[keep].sum()

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
        if ("predictive", level) not in self._memo:
            a, b, w = self._ab

            def cdf(p):
                return float(np.dot(w, beta.cdf(p, a, b)))

            tail = (1 - level) / 2
            self._memo[("predictive", level)] = {"median": _solve(cdf, 0.5), "low": _solve(cdf, tail),
                                                 "high": _solve(cdf, 1 - tail), "level": level}
        return dict(self._memo[("predictive", level)])

    def predictive_cdf(self, count: int, tips: int) -> float:
        """P(a new unit-period with `tips` tips reports at most `count`), over the posterior."""
        if count < 0:
            return 0.0
        a, b, w = self._ab
        return float(np.dot(w, np.exp(log_cdf(count, tips, a, b))))


def _solve(cdf, q: float) -> float:
    """Bisection for the q-quantile of a distribution on [0, 1] (40 steps: far below print precision)."""
    low, high = 0.0, 1.0
    for _ in range(40):
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
    loglik = _loglik(data, *_grid())
    weights = np.exp(loglik - logsumexp(loglik))
    return Fit(stage, data.reset_index(drop=True), weights)


def validate(fitted: Fit | None, held: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Whether each held-out unit-period falls inside the fitted model's predictive interval.

    The interval is for the count a new unit-period with the same number of tips would report
    (between-unit spread and binomial chance both included). An exact count is covered if it lies
    inside the central `level` interval; an upper bound (at_most) is consistent unless it lies
    below the interval; a lower bound (at_least) unless it lies above it.
    """
    tail = (1 - level) / 2
    rate = fitted.predictive(level) if fitted is not None and len(held) else None
    rows = []
    for row in held.itertuples(index=False):
        below = fitted.predictive_cdf(row.count, row.tips)       # P(count <= observed)
        under = fitted.predictive_cdf(row.count - 1, row.tips)   # P(count < observed)
        if row.kind == "exact":
            covered = below >= tail and under <= 1 - tail
        elif row.kind == "at_most":
            covered = below >= tail
        else:
            covered = under <= 1 - tail
        rows.append({"unit": row.unit, "unit_name": row.unit_name, "period_start": row.period_start,
                     "period_end": row.period_end, "stage": row.stage, "tips": row.tips, "count": row.count,
                     "kind": row.kind, "rate": row.count / row.tips, "low": rate["low"], "median": rate["median"],
                     "high": rate["high"], "p_at_most": below, "covered": bool(covered)})
    return pd.DataFrame(rows, columns=["unit", "unit_name", "period_start", "period_end", "stage", "tips", "count",
                                       "kind", "rate", "low", "median", "high", "p_at_most", "covered"])


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
