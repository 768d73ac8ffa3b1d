"""Bottom-up: what happens to a tip at the task forces that publish their funnels.

Some task forces publish, for a year or an operation, how many CyberTipline reports ("tips")
they received and how many investigations, search warrants, arrests and charges followed
(data/task_force_funnels.csv). For each stage this module estimates the probability that one
tip made available to a task force reaches that stage, and how that probability depends on
how many tips the unit handles.

The model is a beta-binomial regression. Unit-period j handled n_j tips, of which y_j reached
the stage; its own rate p_j is drawn from Beta(mu_j kappa, (1 - mu_j) kappa), with

    logit(mu_j) = alpha + beta * log(n_j / 1,000)

alpha is the log-odds of the mean rate at a unit of 1,000 tips, beta how the rate changes with
volume and kappa how alike units of the same volume are. Why this form: a unit's investigators
are a fixed capacity over a year, so if its caseload did not grow with its tips, its arrests
would stay flat and the rate would fall as 1 / tips (beta = -1 for small rates, where the
log-odds are the log); if capacity grew in proportion, the rate would stay the same (beta = 0).
The slope's prior is flat on [-1.5, 0.5] (data/assumptions.csv, `funnel_slope`), wider than
both. The posterior of (alpha, beta, kappa) is computed exactly on a grid, with flat priors on
alpha, beta and log(kappa) over the grid's range: no sampler, so the digits are the same on
every machine. Two simpler models are fitted on the same grid as baselines: the same model
with beta = 0 (no size effect) and one rate shared by every unit (`pooled`).

Counts that are not simply "tips that reached the stage" enter as bounds, never as if exact:

* from all of a unit's work, or attribution unknown: at least the count from tips, so
  y_j <= the count (scored as P(Y <= count));
* a lower bound ("more than", or an undercount): y_j >= the count;
* tips given as "more than n": the likelihood is averaged over n, n + u / 2 and n + u, with u
  the unit of the rounding (the same rule as the top-down route's "more than" counts).

Every row of the funnel data either enters an observation or is listed by `left_out()` with
the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.optimize.elementwise import find_root
from scipy.special import betainc, betaln, expit, logsumexp
from scipy.stats import betabinom, binom, norm

from ..evidence.data import load

# the stages a tip can reach, each with the measures that count it (first one found is used)
STAGES = {
    "investigations": ("investigations_opened", "cases_opened", "investigations_conducted"),
    "warrants": ("search_warrants",),
    "arrests": ("arrests",),
    "charges": ("charged", "indicted"),
}
# investigations "conducted" or "worked on" in a period include cases opened before it: at most the
# cases opened in it, so they enter as upper bounds whatever their origin
UPPER_MEASURES = {"investigations_conducted"}
# counts that are not CyberTipline reports, so never the tips of a unit
NOT_TIPS = {"cybercrime_tips_received": "tips about every kind of cybercrime, not CyberTipline reports alone",
            "complaints_received": "complaints of unstated origin, not CyberTipline reports"}
STAGE_LABELS = {"investigations": "Opened as a case", "warrants": "Search warrant",
                "arrests": "Arrest", "charges": "Charge or indictment"}
# what a unit counts its tips by: received, or, where it gives no such count, the tips it says it
# "investigated" (task forces review every tip, so that is the tips it handled, at most those received)
DENOMINATORS = ("tips_received", "tips_investigated")
GRADE_ORDER = {"primary": 0, "transcription": 1, "secondary": 2}
LEVEL = 0.9
MIN_UNITS = 3  # a stage is fitted only with at least this many unit-periods carrying information
REFERENCE_TIPS = 1_000  # alpha is the log-odds of the mean rate at a unit of this many tips
MODELS = ("size", "no_size", "pooled")
MODEL_LABELS = {"size": "Rate depends on volume (the model)", "no_size": "Same model without the volume term",
                "pooled": "One rate for every unit"}

# qualifiers: which side of the published number the true one lies on
LOWER = {"more_than", "at_least"}       # the true count is at least the number
UPPER = {"at_most", "less_than"}        # the true count is at most the number

# the grid: alpha (log-odds at 1,000 tips) from about 0.03% to 98%; beta on its prior's range (`slopes`);
# kappa from 1 (units barely alike) to 10,000 (all alike); likelihoods are computed on a fine
# table of log-odds and read off it by linear interpolation
ALPHA = np.round(np.linspace(-8.0, 4.0, 121), 10)
SLOPE_POINTS = 41
LOG_KAPPA = np.linspace(0.0, np.log(10_000.0), 31)
FINE = np.linspace(-12.0, 6.0, 901)


def slopes() -> np.ndarray:
    """The grid of slopes: the flat prior of `funnel_slope` in data/assumptions.csv, in 41 steps."""
    rows = load("assumptions")
    row = rows[(rows["parameter"] == "funnel_slope") & (rows["prior_set"] == "baseline")].iloc[0]
    if row["distribution"] != "uniform":
        raise ValueError("assumptions.csv: the funnel slope's prior must be flat over its range (it is a grid)")
    return np.linspace(float(row["low"]), float(row["high"]), SLOPE_POINTS)


def rounding_unit(value: float) -> int:
    """'More than 12,600' is a number rounded down to its last non-zero digit: unit 100."""
    value, unit = int(value), 1
    while value and value % (unit * 10) == 0:
        unit *= 10
    return unit


def _side(qualifier: str) -> int:
    return 1 if qualifier in LOWER else -1 if qualifier in UPPER else 0


def _best_rows(funnels: pd.DataFrame) -> tuple[dict, list]:
    """(unit, start, end) -> measure -> the preferred row; and the rows another source beat.
    Conflicting sources: the best grade is used (primary, then transcription, then news), then a
    count attributed to tips, then a point figure, then the source id (for a stable order)."""
    order = funnels.assign(_grade=funnels["grade"].map(GRADE_ORDER),
                           _tips=(funnels["attribution"] != "from_tips").astype(int),
                           _point=funnels["qualifier"].map(_side).ne(0).astype(int))
    order = order.sort_values(["_grade", "_tips", "_point", "source_id"], kind="stable")
    best: dict[tuple, dict] = {}
    beaten = []
    for index, record in zip(order.index, order.to_dict("records")):
        key = (record["unit"], record["period_start"], record["period_end"])
        kept = best.setdefault(key, {}).setdefault(record["measure"], dict(record, _index=index))
        if kept["_index"] != index:
            beaten.append((index, f"another source for the same figure is preferred ({kept['source_id']}, {kept['grade']})"))
    return best, beaten


def fullest_ladder() -> tuple[str, str, pd.DataFrame]:
    """The unit-period whose usable exact counts reach the most stages (the first such, in the order
    of `observations`): its unit's name, its first year, and its rows indexed by stage (tips, count)."""
    exact = observations()
    exact = exact[exact["usable"] & (exact["kind"] == "exact")]
    name, start = exact.groupby(["unit_name", "period_start"])["stage"].nunique().idxmax()
    rows = exact[(exact["unit_name"] == name) & (exact["period_start"] == start)].set_index("stage")
    return name, str(start)[:4], rows


def observations(funnels: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per unit-period and stage: tips, the stage's count, and how it enters.

    `kind` is exact (tips that reached the stage), at_most (an upper bound: all of the unit's
    work, or attribution unknown, or a count said to be at most) or at_least (a lower bound).
    `tips_side` says whether the tips are a point (0) or a lower bound (1).
    """
    funnels = load("task_force_funnels") if funnels is None else funnels
    best, _ = _best_rows(funnels)
    rows = []
    for (unit, start, end), found in sorted(best.items(), key=lambda item: tuple(str(x) for x in item[0])):
        tip = next((found[m] for m in DENOMINATORS if m in found), None)
        if tip is None:
            continue
        for stage, measures in STAGES.items():
            row = next((found[m] for m in measures if m in found), None)
            if row is None:
                continue
            n, y, side = int(round(tip["value"])), int(round(row["value"])), _side(row["qualifier"])
            tips_side = _side(tip["qualifier"]) if tip["measure"] == "tips_received" else 1
            upper = row["attribution"] != "from_tips" or row["measure"] in UPPER_MEASURES
            kind = "at_most" if upper else {0: "exact", 1: "at_least", -1: "at_most"}[side]
            usable, why = True, ""
            if upper and side == 1:
                usable, why = False, "a lower bound on a count of all the unit's work: no bound on the count from tips"
            elif n <= 0:
                usable, why = False, "no tips"
            elif y > n and kind == "at_most":
                usable, why = False, "count above the tips handled: no bound on a per-tip rate"
            elif y > n:
                usable, why = False, "count attributed to tips exceeds the tips handled"
            rows.append({"unit": unit, "unit_name": tip["unit_name"], "state": tip["state"], "scope": tip["scope"],
                         "period": tip["period"], "period_start": start, "period_end": end, "stage": stage,
                         "measure": row["measure"], "tips_measure": tip["measure"], "tips": n,
                         "tips_side": tips_side if tip["measure"] == "tips_received" else 0,
                         "count": y, "kind": kind, "attribution": row["attribution"], "usable": usable, "why_not": why,
                         "source_ids": "; ".join(dict.fromkeys([tip["source_id"], row["source_id"]])),
                         "grade": max([tip["grade"], row["grade"]], key=GRADE_ORDER.get),
                         "rows": (tip["_index"], row["_index"])})
    columns = ["unit", "unit_name", "state", "scope", "period", "period_start", "period_end", "stage", "measure",
               "tips_measure", "tips", "tips_side", "count", "kind", "attribution", "usable", "why_not", "source_ids",
               "grade", "rows"]
    return pd.DataFrame(rows, columns=columns)


def sides_of_half(stage: str = "investigations") -> dict[str, int]:
    """How many usable figures of a stage show fewer than half of their tips reaching it, how many
    show more than half, and how many say neither. An exact count can show either; an upper bound
    only fewer (when it is below half), a lower bound only more (when it is above half)."""
    rows = observations().query("stage == @stage and usable")
    rate = rows["count"] / rows["tips"]
    fewer = int(((rate < 0.5) & rows["kind"].isin(["exact", "at_most"])).sum())
    more = int(((rate > 0.5) & rows["kind"].isin(["exact", "at_least"])).sum())
    return {"figures": len(rows), "fewer": fewer, "more": more, "neither": len(rows) - fewer - more,
            "largest_tips": int(rows["tips"].max())}


def left_out(funnels: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every row of the funnel data that no usable observation rests on, with the reason."""
    funnels = load("task_force_funnels") if funnels is None else funnels
    best, beaten = _best_rows(funnels)
    table = observations(funnels)
    reasons = dict(beaten)
    used = {index for row in table[table["usable"]].itertuples(index=False) for index in row.rows}
    for row in table[~table["usable"]].itertuples(index=False):
        tips, stage = row.rows
        reasons.setdefault(stage, row.why_not)
        if tips not in used:
            reasons.setdefault(tips, f"its later stage is left out ({row.why_not})")
    staged = {m for measures in STAGES.values() for m in measures}
    for key, found in best.items():
        has_tips = any(m in found for m in DENOMINATORS)
        has_stage = any(m in found for m in staged)
        for measure, record in found.items():
            index = record["_index"]
            if index in used or index in reasons:
                continue
            if measure in DENOMINATORS:
                reasons[index] = ("tips with no later stage published for the same period" if not has_stage
                                  else "another count of tips for the same period is used")
            elif measure in staged:
                reasons[index] = ("no count of tips for the same unit and period" if not has_tips
                                  else "another measure of the same stage is used")
            elif measure in NOT_TIPS:
                reasons[index] = NOT_TIPS[measure]
            else:
                reasons[index] = f"not a stage the fit models ({measure.replace('_', ' ')})"
    out = funnels.loc[sorted(reasons)].copy()
    out["why_not"] = [reasons[i] for i in out.index]
    return out[["unit", "unit_name", "period_start", "period_end", "measure", "value", "qualifier", "attribution",
                "source_id", "grade", "why_not"]]


def log_cdf(count: int, tips: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log P(Y <= count) for Y ~ BetaBinomial(tips, a, b), elementwise over arrays a and b.

    Summed term by term from P(Y = 0) with the ratio of successive probabilities,
    (n - k)(k + a) / ((k + 1)(n - k - 1 + b)), in plain arithmetic, rescaled every 16 terms so that
    nothing overflows: exact, and for the few hundred terms a count here needs far faster than
    scipy's generic cdf over a large grid.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    log_first = betaln(a, tips + b) - betaln(a, b)
    term, total, offset = np.ones(np.broadcast(a, b).shape), np.ones(np.broadcast(a, b).shape), np.zeros(np.broadcast(a, b).shape)
    for step in range(count):
        term = term * ((tips - step) * (step + a)) / ((step + 1) * (tips - step - 1 + b))
        total = total + term
        if step % 16 == 15:
            offset += np.log(total)
            term, total = term / total, np.ones(total.shape)
    return np.minimum(log_first + offset + np.log(total), 0.0)


def _tips_values(tips: int, tips_side: int) -> list[int]:
    """The tips a unit may have had: the figure, or, for "more than n", n, n + u/2 and n + u."""
    if tips_side == 1:
        unit = rounding_unit(tips)
        return [tips, tips + unit // 2, tips + unit]
    return [tips]


@lru_cache(maxsize=512)
def _fine_table(tips: int, count: int, kind: str, tips_side: int, pooled: bool) -> np.ndarray:
    """Log-likelihood of one observation on the fine table: log-odds of the mean x kappa
    (pooled: log-odds of the one rate)."""
    values = []
    for n in _tips_values(tips, tips_side):
        if pooled:
            p = expit(FINE)
            values.append(binom.logpmf(count, n, p) if kind == "exact" else binom.logcdf(count, n, p) if kind == "at_most"
                          else binom.logsf(count - 1, n, p))
            continue
        mu, kappa = expit(FINE)[:, None], np.exp(LOG_KAPPA)[None, :]
        a, b = mu * kappa, (1 - mu) * kappa
        if kind == "exact":
            values.append(betabinom.logpmf(count, n, a, b))
        elif kind == "at_most":
            values.append(log_cdf(count, n, a, b))
        else:
            below = log_cdf(count - 1, n, a, b) if count > 0 else np.full(a.shape, -np.inf)
            with np.errstate(divide="ignore"):  # log(0) where the count is impossible: -inf, as it should be
                values.append(np.log1p(-np.exp(np.minimum(below, -1e-300))))
    return logsumexp(np.stack(values), axis=0) - np.log(len(values))


def loglik(tips: int, count: int, kind: str, model: str = "size", tips_side: int = 0) -> np.ndarray:
    """Log-likelihood of one figure at every point of a model's grid: (alpha, beta, kappa) for
    the size model; beta fixed at 0 without it; one rate expit(alpha) when pooled. Computed on
    the fine table of log-odds and read off it by linear interpolation."""
    pooled = model == "pooled"
    table = _fine_table(tips, count, kind, tips_side, pooled)
    grid = slopes() if model == "size" else np.zeros(1)
    logit = ALPHA[:, None] + grid[None, :] * np.log(tips / REFERENCE_TIPS)
    if pooled:
        return np.interp(logit, FINE, table)
    return np.stack([np.interp(logit, FINE, table[:, k]) for k in range(len(LOG_KAPPA))], axis=-1)


@dataclass(frozen=True)
class Fit:
    """The grid posterior for one stage and one model."""
    stage: str
    model: str
    data: pd.DataFrame
    loglik: np.ndarray   # figure x grid: log-likelihood of each figure
    at_most: np.ndarray  # figure x grid: log P(Y <= count) (for exact figures; NaN for bounds)
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def weights(self) -> np.ndarray:
        if "weights" not in self._memo:
            total = self.loglik.sum(axis=0)
            self._memo["weights"] = np.exp(total - logsumexp(total))
        return self._memo["weights"]

    def _points(self):
        """(alpha, beta, kappa, weight) of the grid points that carry weight (kappa inf: pooled)."""
        if "points" not in self._memo:
            w = self.weights
            keep = w > w.max() * 1e-7
            grids = np.meshgrid(ALPHA, slopes() if self.model == "size" else [0.0],
                                *([np.exp(LOG_KAPPA)] if self.model != "pooled" else []), indexing="ij")
            alpha, slope = grids[0][keep], grids[1][keep]
            kappa = grids[2][keep] if self.model != "pooled" else np.full(alpha.shape, np.inf)
            self._memo["points"] = (alpha, slope, kappa, w[keep] / w[keep].sum())
        return self._memo["points"]

    def slope(self, level: float = LEVEL) -> dict:
        alpha, slope, kappa, w = self._points()
        return _quantiles(slope, w, level)

    def mean_rate_at(self, tips: float, level: float = LEVEL) -> dict:
        """Posterior of mu at a unit of `tips` tips: the expected share of its tips reaching the stage."""
        alpha, slope, kappa, w = self._points()
        return _quantiles(expit(alpha + slope * np.log(tips / REFERENCE_TIPS)), w, level)

    def predictive_at(self, tips: float, level: float = LEVEL) -> dict:
        """The rate of a new unit-period with `tips` tips (its own rate drawn around mu): median, interval."""
        alpha, slope, kappa, w = self._points()
        mu = expit(alpha + slope * np.log(tips / REFERENCE_TIPS))
        if self.model == "pooled":
            return _quantiles(mu, w, level)
        a, b = mu * kappa, (1 - mu) * kappa
        return _mixture_quantiles(lambda p: w @ betainc(a[:, None], b[:, None], p[None, :]), level)

    def average_of_units(self, tips: float, units: int, level: float = LEVEL) -> dict:
        """The share of all tips reaching the stage if `units` units each had `tips` tips: each
        unit's rate is drawn around mu, and their average has variance mu(1 - mu) / ((kappa + 1) units)."""
        alpha, slope, kappa, w = self._points()
        mu = expit(alpha + slope * np.log(tips / REFERENCE_TIPS))
        sd = np.sqrt(mu * (1 - mu) / ((kappa + 1) * units))
        sd = np.maximum(sd, 1e-12)[:, None]
        return _mixture_quantiles(lambda p: w @ norm.cdf((p[None, :] - mu[:, None]) / sd), level)

    def draws(self, size: int, rng: np.random.Generator, tips: float) -> np.ndarray:
        """Draws of mu at `tips` tips from the grid posterior (for combining with other terms)."""
        alpha, slope, kappa, w = self._points()
        pick = rng.choice(len(w), size=size, p=w)
        return expit(alpha[pick] + slope[pick] * np.log(tips / REFERENCE_TIPS))

    def tail_probabilities(self, i: int, weights: np.ndarray) -> tuple[float, float]:
        """P(Y <= count) and P(Y < count) for figure i of the data, under `weights` on the grid."""
        kind = self.data.loc[i, "kind"]
        if kind == "exact":
            below = float(np.sum(weights * np.exp(self.at_most[i])))
            return below, below - float(np.sum(weights * np.exp(self.loglik[i])))
        own = float(np.sum(weights * np.exp(self.loglik[i])))
        return (own, np.nan) if kind == "at_most" else (np.nan, 1 - own)


def _quantiles(values: np.ndarray, weights: np.ndarray, level: float) -> dict:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    tail = (1 - level) / 2
    pick = lambda q: float(values[order][min(np.searchsorted(cumulative, q), len(values) - 1)])  # noqa: E731
    return {"median": pick(0.5), "low": pick(tail), "high": pick(1 - tail), "level": level}


def _mixture_quantiles(cdf, level: float) -> dict:
    """Median and central interval, within [0, 1], of a distribution given its cdf, which takes an
    array of points: the three quantiles found at once by Chandrupatla's bracketing method
    (scipy.optimize.elementwise.find_root) to within 1e-11, about half the evaluations of the cdf
    that bisection to 1e-9 took (an evaluation at 20,000 grid points is what costs). A quantile the
    cdf already passes at 0 is 0, one it has not reached at 1 is 1 (a normal approximation, as in
    `average_of_units`, can put a little mass outside [0, 1])."""
    tail = (1 - level) / 2
    targets = np.array([0.5, tail, 1 - tail])
    at_zero, at_one = cdf(np.array([0.0, 1.0]))
    found = np.where(targets <= at_zero, 0.0, 1.0)
    inside = (targets > at_zero) & (targets < at_one)
    if inside.any():
        root = find_root(lambda p, target: cdf(p) - target, (np.zeros(inside.sum()), np.ones(inside.sum())),
                         args=(targets[inside],), tolerances={"xatol": 1e-11, "xrtol": 0.0, "fatol": 0.0, "frtol": 0.0})
        if not root.success.all():
            raise ArithmeticError(f"the quantiles {targets[inside]} of a mixture were not found (status {root.status})")
        found[inside] = root.x
    median, lower, upper = found
    return {"median": float(median), "low": float(lower), "high": float(upper), "level": level}


def fit(table: pd.DataFrame, stage: str, model: str = "size") -> Fit | None:
    """Fit one stage to the usable unit-periods of `table`; None if fewer than MIN_UNITS."""
    data = table[(table["stage"] == stage) & table["usable"]].reset_index(drop=True)
    if len(data) < MIN_UNITS:
        return None
    rows = list(data.itertuples(index=False))
    grid = np.stack([loglik(r.tips, r.count, r.kind, model, r.tips_side) for r in rows])
    at_most = np.stack([loglik(r.tips, r.count, "at_most", model, r.tips_side) if r.kind == "exact"
                        else np.full(grid.shape[1:], np.nan) for r in rows])
    return Fit(stage, model, data, grid, at_most)


def cross_validate(fitted: Fit, level: float = LEVEL) -> pd.DataFrame:
    """Leave one unit out: fit on the other units, score the unit's figures.

    One row per left-out unit: the log predictive density of all its figures together
    (an exact count scored by its probability, a bound by the probability of lying on its side:
    censored), and whether each figure lies inside the central `level` predictive interval (an
    exact count) or on the consistent side of it (a bound).
    """
    tail = (1 - level) / 2
    data, ll = fitted.data, fitted.loglik
    rows = []
    for unit, index in data.groupby("unit", sort=True).groups.items():
        index = list(index)
        rest = np.delete(ll, index, axis=0).sum(axis=0)
        log_w = rest - logsumexp(rest)
        lpd = float(logsumexp(log_w + ll[index].sum(axis=0)))
        w = np.exp(log_w)
        inside = []
        for i in index:
            row = data.iloc[i]
            below, under = fitted.tail_probabilities(i, w)   # P(Y <= observed), P(Y < observed)
            if row["kind"] == "exact":
                inside.append(below >= tail and under <= 1 - tail)
            elif row["kind"] == "at_most":
                inside.append(below >= tail)
            else:
                inside.append(under <= 1 - tail)
        rows.append({"unit": unit, "unit_name": data.iloc[index[0]]["unit_name"], "figures": len(index),
                     "exact": int((data.iloc[index]["kind"] == "exact").sum()), "log_score": lpd,
                     "inside": int(sum(inside))})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Result:
    table: pd.DataFrame     # every observation
    fits: dict              # (stage, model) -> Fit on every usable observation (None if too few)
    scores: pd.DataFrame    # leave-one-unit-out scores: stage, model, unit, figures, exact, log_score, inside


def run(funnels: pd.DataFrame | None = None, level: float = LEVEL,
        stages: tuple[str, ...] = ("investigations", "arrests")) -> Result:
    table = observations(funnels)
    fits, scores = {}, []
    for stage in STAGES:
        for model in MODELS:
            fitted = fit(table, stage, model) if stage in stages or model == "size" else None
            fits[(stage, model)] = fitted
            if fitted is not None and stage in stages:
                scores.append(cross_validate(fitted, level).assign(stage=stage, model=model))
    return Result(table, fits, pd.concat(scores, ignore_index=True) if scores else pd.DataFrame())
