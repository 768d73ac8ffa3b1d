"""Charts and tables of the answer, for the model chapter and the summary.

Every chart here is drawn for a 375 px phone first: width "container", short labels with the
full text in the tooltip and in the data table under the chart, legends below the plot in one
column. `interval_chart` is the one dot-and-interval chart (outcome shares, the two routes,
counts on a log axis); `condition_chart` draws the plane in which the most common outcome flips,
with the evidence on it; `sensitivity_table` and `scores_table` are the tables that go with them;
`ladder_table` lays out the rungs from receipt to conviction (`rung`: one task force's figure), and `route_rows` the two routes'
report-begun cases for `interval_chart`.
"""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..estimates import condition, funnels, outcomes
from ..evidence.data import sources
from .text import at_least, at_most, count, estimate, percent, rounded_up

FIT = alt.AutoSizeParams(type="fit-x", contains="padding")
LINE_COLOURS = ["#9ab8d8", "#4f81b8", "#1f5a96", "#0b2f57"]
PAIR_COLOURS = ["#1f5a96", "#4f9d69"]
GRADE_COLOURS = {"primary": "#2a6e3f", "transcription": "#8a6bb1", "secondary": "#c8553d"}
GRADE_WORDS = {"primary": "primary source", "transcription": "third-party transcription", "secondary": "secondary source"}
REGION_COLOURS = {"No case opened comes first": "#dfe7ef", "Case opened, no arrest comes first": "#f6e7bf",
                  "Impossible: more reports in cases than exist": "#eeeeee"}
SHARE_MIN, PER_CASE_MAX = 0.02, 10.0


def interval_chart(rows: pd.DataFrame, *, title: str, axis: str, description: str, series: str = "Series",
                   share: bool = True, log: bool = False, height: int | None = None) -> alt.LayerChart:
    """Dots (medians) and lines (intervals), one row per `What`, one colour per `series`.

    `rows` has columns What (a short label), `series`, Middle, Low end, High end and optionally
    Detail (the full text, shown in the tooltip and the data table). Shares get a 0-100% axis;
    counts a log axis when `log`."""
    rows = rows.assign(order=range(len(rows)))
    fmt = ".1%" if share else ",.0f"
    scale = alt.Scale(domain=[0, 1]) if share else alt.Scale(type="log") if log else alt.Scale(zero=False)
    axis_spec = alt.Axis(format="%" if share else "~s", tickCount=5, labelOverlap=True)
    series_count = rows[series].nunique()
    base = alt.Chart(rows).encode(
        y=alt.Y("What:N", sort=alt.SortField("order"), title=None, axis=alt.Axis(labelLimit=150)),
        yOffset=alt.YOffset(f"{series}:N", sort=list(dict.fromkeys(rows[series]))),
        color=alt.Color(f"{series}:N", title=None, sort=list(dict.fromkeys(rows[series])),
                        scale=alt.Scale(range=PAIR_COLOURS if series_count == 2 else LINE_COLOURS[-series_count:] if series_count <= 4 else None),
                        legend=alt.Legend(orient="bottom", columns=1, labelLimit=320)))
    tooltip = (["What:N"] + (["Detail:N"] if "Detail" in rows else []) + [f"{series}:N"]
               + [alt.Tooltip(f"{c}:Q", format=fmt) for c in ("Middle", "Low end", "High end")])
    return alt.layer(
        base.mark_rule(strokeWidth=3).encode(x=alt.X("Low end:Q", title=axis, scale=scale, axis=axis_spec), x2="High end:Q"),
        base.mark_point(filled=True, size=60, opacity=1).encode(x="Middle:Q", tooltip=tooltip),
    ).properties(autosize=FIT, width="container", height=height or max(120, 26 * len(rows)), title=title,
                 description=description)


def outcome_rows(entries: dict, series: str) -> pd.DataFrame:
    """Rows for `interval_chart` from {series value: {outcome: interval}} (answer.json's shape)."""
    return pd.DataFrame([{"What": outcomes.OUTCOME_LABELS[o], "Detail": outcomes.OUTCOME_COUNTS[o], series: name,
                          "Middle": values[o]["median"], "Low end": values[o]["low"], "High end": values[o]["high"]}
                         for o in outcomes.OUTCOMES for name, values in entries.items()])


def _along(chart: alt.Chart, level: str = "datum.Value / datum.Share") -> alt.Chart:
    """Each row's curve drawn in the browser: 40 shares from SHARE_MIN to 1 (geometric steps), the
    reports per case `level` at each, kept inside the plot. The page's data table then lists one
    row per curve (its value and source), not the points."""
    steps = 39
    return chart.transform_calculate(step=f"sequence(0, {steps + 1})").transform_flatten(["step"]).transform_calculate(
        Share=f"{SHARE_MIN} * pow({1 / SHARE_MIN}, datum.step / {steps})").transform_calculate(
        **{"Reports per case": level}).transform_filter(
        f"datum['Reports per case'] >= 1 && datum['Reports per case'] <= {PER_CASE_MAX}")


def source_names(ids: str) -> str:
    """'wsj_wi_icac_2014; owh_ne_icac_2021' -> 'Wisconsin State Journal, 2014; Omaha World-Herald, 2021':
    the publisher and year of each source, as a reader would cite it (the full entry is in the source note)."""
    registry = sources()
    return "; ".join(f"{registry.loc[name, 'publisher']}, {str(registry.loc[name, 'published'])[:4]}"
                     for name in ids.split("; ") if name)


def _years(start, end) -> str:
    """A period by its years: "2019", or "2019–2021" for one that spans more than one."""
    first, last = str(start)[:4], str(end)[:4]
    return first if first == last else f"{first}–{last}"


def _upper(value: float) -> str:
    """A bound that is not a share (reports per case), printed rounded up as "at most" requires."""
    return f"{rounded_up(value, 2):.2f}"


def condition_chart(conditions: dict, evidence: pd.DataFrame, year: int) -> alt.LayerChart:
    """The plane of the two unknowns: share of ICAC investigations begun by a report (x) and
    reports per such investigation (y, log). "No case opened" comes first below each year's line
    (share x reports per case = the line's value); above the ceiling more reports would be in cases
    than exist. Every published bound at one task force is drawn: a level line for reports per case,
    a curve for the product (which also bounds the share where it reaches the bottom edge)."""
    headline = conditions[str(year)]
    x = alt.X("Share:Q", title="Share of investigations begun by a report", scale=alt.Scale(domain=[0, 1]),
              axis=alt.Axis(format="%", tickCount=5))
    y_scale = alt.Scale(type="log", domain=[1, PER_CASE_MAX])
    y = alt.Y("Reports per case:Q", title="Reports per such case (log)", scale=y_scale, axis=alt.Axis(values=[1, 2, 3, 5, 10]))
    regions = pd.DataFrame([{"Region": name, "Lower": low, "Upper": high} for name, low, high in zip(
        REGION_COLOURS, (0, headline["median"], headline["ceiling"]), (headline["median"], headline["ceiling"], 0))])
    area = _along(alt.Chart(regions), "1").transform_calculate(
        From=f"datum.Lower == 0 ? 1 : clamp(datum.Lower / datum.Share, 1, {PER_CASE_MAX})",
        To=f"datum.Upper == 0 ? {PER_CASE_MAX} : clamp(datum.Upper / datum.Share, 1, {PER_CASE_MAX})",
    ).mark_area(opacity=0.9).encode(
        x=x, y=alt.Y("From:Q", scale=y_scale, title="Reports per such case (log)"), y2="To:Q", detail="Region:N",
        color=alt.Color("Region:N", legend=None, scale=alt.Scale(domain=list(REGION_COLOURS), range=list(REGION_COLOURS.values()))),
        tooltip=["Region:N"])
    middle = float(headline["median"] ** 0.3 * headline["ceiling"] ** 0.7)  # between the line and the ceiling, at a share of 100%
    labels = pd.DataFrame([{"Share": 0.04, "Reports per case": 1.01, "Text": "No case opened comes first", "Align": "left"},
                           {"Share": 0.98, "Reports per case": middle, "Text": "Case opened, no arrest first", "Align": "right"},
                           {"Share": 0.98, "Reports per case": 8.5, "Text": "Impossible", "Align": "right"}])
    region_text = alt.layer(*[alt.Chart(labels[labels["Align"] == side]).mark_text(align=side, baseline="bottom", fontSize=11, color="#333333").encode(
        x=x, y=y, text="Text:N") for side in ("left", "right")])
    years = pd.DataFrame([{"Year": y_, "Value": c["median"]} for y_, c in conditions.items() if y_.isdigit()])
    year_lines = _along(alt.Chart(years)).mark_line(strokeWidth=2.5, color="#0b2f57").encode(
        x=x, y=y, detail="Year:N", tooltip=["Year:N", alt.Tooltip("Value:Q", format=".2f", title="Line: share x reports per case")])
    year_text = alt.Chart(years.assign(Share=1.0)).mark_text(align="right", dx=-3, dy=-6, fontSize=10, color="#0b2f57").encode(
        x=x, y=alt.Y("Value:Q", scale=y_scale), text="Year:N")
    bounds = evidence[evidence["quantity"].isin(["product", "per_case"])]
    bounds = pd.DataFrame({
        "Task force": [f"{name}, {_years(start, end)}" for name, start, end in zip(bounds["unit_name"], bounds["period_start"], bounds["period_end"])],
        "Bounds": bounds["quantity"].map(condition.QUANTITIES), "Value": bounds["high"].round(3),
        "At most": bounds["high"].map(_upper),
        "Level": (bounds["quantity"] == "per_case").astype(int),
        "Counts": [f"{t:,} tips, {c:,} {m.replace('_', ' ')}" for t, c, m in zip(bounds["tips"], bounds["cases"], bounds["measure"])],
        "Grade": bounds["grade"].map(GRADE_WORDS), "Sources": bounds["source_ids"].map(source_names)})
    evidence_lines = _along(alt.Chart(bounds), "datum.Level ? datum.Value : datum.Value / datum.Share").mark_line(
        strokeWidth=1.5, opacity=0.9).encode(
        x=x, y=y, detail="Task force:N",
        color=alt.Color("Grade:N", title="Bound at one task force",
                        scale=alt.Scale(domain=list(GRADE_WORDS.values()), range=list(GRADE_COLOURS.values())),
                        legend=alt.Legend(orient="bottom", columns=1, labelLimit=320, titleLimit=340)),
        tooltip=["Task force:N", "Bounds:N", "At most:N", "Counts:N", "Grade:N", "Sources:N"])
    # the reader's own setting, moved with two sliders: where it falls, and which outcome comes first there
    share = alt.param(name="share", value=0.5, bind=alt.binding_range(
        min=SHARE_MIN, max=1, step=0.01, name="Share of investigations begun by a report: "))
    per_case = alt.param(name="per_case", value=1.5, bind=alt.binding_range(
        min=1, max=PER_CASE_MAX, step=0.05, name="Reports per such case: "))
    setting = alt.Chart(pd.DataFrame({"Setting": ["Your setting"]})).transform_calculate(
        Share="share", **{"Reports per case": "per_case"}, Product="share * per_case").transform_calculate(
        Outcome=(f"datum.Product < {headline['median']:.4f} ? 'No case opened first' : "
                 f"datum.Product <= {headline['ceiling']:.4f} ? 'Case opened, no arrest first' : 'Impossible'"))
    tooltip = ["Setting:N", alt.Tooltip("Product:Q", format=".2f", title="Share x reports per case"), "Outcome:N"]
    marker = setting.mark_point(shape="diamond", size=150, filled=True, color="#111111", opacity=1).encode(x=x, y=y, tooltip=tooltip)
    marker_text = setting.mark_text(align=alt.expr("share > 0.55 ? 'right' : 'left'"), dx=alt.expr("share > 0.55 ? -9 : 9"),
                                    dy=-9, fontSize=11, fontWeight="bold", color="#111111").encode(x=x, y=y, text="Outcome:N")
    return alt.layer(area, evidence_lines, year_lines, year_text, region_text, marker, marker_text).add_params(
        share, per_case).resolve_scale(color="independent").properties(
        autosize=FIT, width="container", height=300,
        title=alt.Title("Where the most common outcome flips", subtitle=f"Shaded for {year}; a line for each year"),
        description=("Chart with the share of ICAC investigations begun by a report across and reports per such "
                     "investigation up (log scale): below each year's line no case opened is the most common outcome; above it a "
                     "case opened without arrest comes first; above the ceiling more reports would be in cases than exist. "
                     "Thin lines are upper bounds from single task forces, coloured by the grade of their source. Two "
                     "sliders move a diamond marking a setting of the two quantities and name the outcome that comes first there."))


def sensitivity_table(entries: list[dict]) -> pd.DataFrame:
    """One row per prior set: what it changes, how often "no case opened" comes first, and the
    share without an arrest."""
    return pd.DataFrame([{"Priors": entry["description"],
                          "No case opened first": percent(entry["no_case_opened_first"]),
                          "No arrest": estimate(entry["no_arrest"])} for entry in entries])


SHORT_MODELS = {"size": "With the volume term (the model)", "no_size": "Without the volume term", "pooled": "One rate for all"}


def scores_table(validation: dict) -> pd.DataFrame:
    """The leave-one-unit-out scores: one row per stage and model (short columns, for phones)."""
    rows = []
    for stage, entry in validation["stages"].items():
        for model in funnels.MODELS:
            scores = entry["models"][model]
            rows.append({"Stage": funnels.STAGE_LABELS[stage], "Model": SHORT_MODELS[model],
                         "Log score": f"{scores['log_score']:.1f}",
                         "Model's lead (standard error)": ("" if model == "size" else
                                                           f"{scores['size_model_better_by']:.1f} ({scores['standard_error']:.1f})"),
                         "Inside": f"{scores['inside']} of {entry['figures']}"})
    return pd.DataFrame(rows)


def evidence_table(evidence: pd.DataFrame) -> pd.DataFrame:
    """The bounds of `condition.evidence()` for a reader: unit and period, what is bounded, the bound
    and the counts it comes from, grade."""
    return pd.DataFrame({
        "Task force, period": [f"{name}, {start} to {end}" for name, start, end in
                               zip(evidence["unit_name"], evidence["period_start"], evidence["period_end"])],
        "Bounds": evidence["quantity"].map(condition.QUANTITIES),
        "At most (from)": [f"{at_most(v) if q == 'share' else _upper(v)} ({t:,} tips, {c:,} {m.replace('_', ' ')})" for q, v, t, c, m in
                           zip(evidence["quantity"], evidence["high"], evidence["tips"], evidence["cases"], evidence["measure"])],
        "Grade": evidence["grade"].map(GRADE_WORDS)})


KIND_SHAPES = {"exact": "circle", "at_most": "triangle-down", "at_least": "triangle-up"}
KIND_LABELS = {"exact": "Count from tips", "at_most": "Upper bound (all work, or origin unknown)",
               "at_least": "Lower bound"}


def volume_chart(curves: dict, table: pd.DataFrame, average: float) -> alt.VConcatChart:
    """Rate per tip against tips handled, both on log axes, one panel per stage: each task force's
    figure (its shape says whether it is a count from tips or a bound), and the fitted mean rate
    with its interval. A rule marks the average volume per task force in the headline year."""
    panels = []
    for stage in [s for s in funnels.STAGES if s in curves]:
        points = curves[stage]
        curve = pd.DataFrame(points).rename(columns={"tips": "Tips", "median": "Middle", "low": "Low end", "high": "High end"})
        seen = table[(table["stage"] == stage) & table["usable"]]
        seen = pd.DataFrame({"Task force": seen["unit_name"], "Period": [_years(a, b) for a, b in zip(seen["period_start"], seen["period_end"])],
                             "Tips": seen["tips"], "Count": seen["count"], "Rate": seen["count"] / seen["tips"],
                             "Figure": seen["kind"].map(KIND_LABELS), "Grade": seen["grade"].map(GRADE_WORDS)})
        x = alt.X("Tips:Q", scale=alt.Scale(type="log", domain=[100, 30_000]), title="Tips handled (log)",
                  axis=alt.Axis(values=[100, 1000, 10_000], format="~s"))
        y = alt.Y("Rate:Q", scale=alt.Scale(type="log", domain=[0.0005, 1]), title="Per tip (log)",
                  axis=alt.Axis(format="~%", values=[0.001, 0.01, 0.1, 1]))
        band = alt.Chart(curve).mark_area(opacity=0.25, color="#1f5a96").encode(
            x=x, y=alt.Y("Low end:Q", scale=alt.Scale(type="log", domain=[0.0005, 1])), y2="High end:Q")
        line = alt.Chart(curve).mark_line(color="#1f5a96").encode(
            x=x, y=alt.Y("Middle:Q", scale=alt.Scale(type="log", domain=[0.0005, 1])),
            tooltip=[alt.Tooltip("Tips:Q", format=",.0f"), alt.Tooltip("Middle:Q", format=".2%", title="Fitted mean rate"),
                     alt.Tooltip("Low end:Q", format=".2%"), alt.Tooltip("High end:Q", format=".2%")])
        dots = alt.Chart(seen).mark_point(filled=True, size=70, opacity=0.9, color="#c8553d").encode(
            x=x, y=y, shape=alt.Shape("Figure:N", title=None, scale=alt.Scale(domain=list(KIND_LABELS.values()), range=list(KIND_SHAPES.values())),
                                      legend=alt.Legend(orient="bottom", columns=1, labelLimit=320)),
            tooltip=["Task force:N", "Period:N", alt.Tooltip("Tips:Q", format=","), alt.Tooltip("Count:Q", format=","),
                     alt.Tooltip("Rate:Q", format=".2%"), "Figure:N", "Grade:N"])
        rule = alt.Chart(pd.DataFrame({"Tips": [average]})).mark_rule(strokeDash=[4, 3], color="#333333").encode(
            x=x, tooltip=[alt.Tooltip("Tips:Q", format=",.0f", title="Average tips per task force, headline year")])
        panels.append(alt.layer(band, line, dots, rule).properties(width="container", height=200,
                                                                   title=funnels.STAGE_LABELS[stage]))
    return alt.vconcat(*panels).properties(
        autosize=FIT, title="Rate per tip against tips handled",
        description=("Two panels, log scales: for each task-force figure, the share of its tips opened as a case "
                     "(and ending in an arrest) against the tips it handled, with the fitted mean rate and its interval; "
                     "a dashed rule marks the average tips per task force in the headline year."))


def headline_table(figures: dict) -> pd.DataFrame:
    """The answer at a glance, from answer.json, in plain words: the settled share, then the condition."""
    head = figures["headline"]
    year, sets = head["year"], figures["sensitivity"]
    first = [e["no_case_opened_first"] for e in sets]
    return pd.DataFrame([
        {"What": f"Genuine U.S. reports of {year} that did not end in an arrest", "Estimate": estimate(head["no_arrest"])},
        {"What": f"The low end of that interval, lowest under any of the {len(sets)} sets of assumptions tried",
         "Estimate": at_least(head['no_arrest_over_prior_sets']['lowest_low'])},
        {"What": "Tips that did not end in an arrest at a task force of average size, from task forces' own figures "
                 "(all tips, informational ones included)",
         "Estimate": estimate(head["no_arrest_bottom_up"])},
        {"What": "Most common outcome", "Estimate": f"{outcomes.OUTCOME_LABELS[head['most_common']]}, unless investigations "
                                                    f"take in more than about {head['condition']['median']:.1f} reports each"},
        {"What": f"Chance of that, over the {len(sets)} sets of assumptions", "Estimate": f"{percent(min(first))} to {percent(max(first))}"},
    ])


def prior_table(priors: pd.DataFrame) -> pd.DataFrame:
    """The baseline priors for a reader: what each is, its shape, its middle 90% and its evidence."""
    rows = []
    for name, row in priors.iterrows():
        low, middle, high = outcomes.prior_quantiles(row)
        shape = (f"flat from {row['low']:g} to {row['high']:g}" if row["distribution"] == "uniform"
                 else f"beta({row['a']:g}, {row['b']:g}) over {row['low']:g} to {row['high']:g}")
        rows.append({"Parameter": outcomes.PARAMETER_LABELS.get(name, row["meaning"]), "Prior": shape,
                     "Middle 90%": f"{low:.2f} to {high:.2f}", "Evidence": row["justification"]})
    return pd.DataFrame(rows)


def rung(rows: pd.DataFrame, stage: str) -> str:
    """One stage of a task force's ladder (funnels.fullest_ladder's rows) as "85 for 663 tips"."""
    return f"{rows.loc[stage, 'count']:,} for {rows.loc[stage, 'tips']:,} tips"


def ladder_table(main: dict, year: int, ladder: tuple[str, str, pd.DataFrame], backlog: pd.Series, lag: float) -> pd.DataFrame:
    """The ladder from receipt to conviction: each rung, what it counts, the figure for the headline
    `year` (`main`: answer.json's top-down entry for it; the model's classes as medians and intervals; the
    rungs it does not model from the task force of `ladder`, funnels.fullest_ladder, or from the
    backlog row of task_force_funnels.csv) and whether it is measured. `lag`: the longest lag the
    model allows between a report and its investigation, in years."""
    name, start, rows = ladder
    outcome = main["outcomes"]

    def at_unit(stage: str) -> str:
        return f"{rung(rows, stage)} at {name}, {start}"

    waiting = (f"{backlog['unit_name']} said in {str(backlog['period_start'])[:4]} that clearing its backlog would take "
               f"about {backlog['value']:g} years")
    return pd.DataFrame([
        ("Received", "actionable reports NCMEC made available to ICAC task forces and local agencies", f"{count(main['reports'])} reports", "yes, by NCMEC"),
        ("Reviewed (triage)", "a task force reads the report and decides what to do", "nearly all, by the task forces' own accounts", "not counted nationally"),
        ("No case opened (a class of the model)", f"not taken into any investigation in ICAC's count, the count taken up to {lag:g} of a year after the report",
         estimate(outcome["never_investigated"]), "no: inferred"),
        ("… of which still waiting", "reviewed, still queued when the count is taken", waiting, "one unit"),
        ("… handed outside ICAC", "passed to an agency that is not an ICAC affiliate", "reported in words, never counted", "no"),
        ("… folded into another case", "about a suspect already under investigation begun otherwise", "never counted", "no"),
        ("Case opened, no arrest (a class of the model)", "taken into an investigation in ICAC's count, with no arrest",
         estimate(outcome["investigated_no_arrest"]), "no: inferred"),
        ("Legal process", "a search warrant or subpoena", at_unit("warrants"), "one unit"),
        ("Arrest (a class of the model)", "an arrest in the case that took the report in", estimate(outcome["arrest"]), "ICAC counts arrests, not by origin"),
        ("Charge", "an indictment or charge", at_unit("charges"), "one unit"),
        ("Conviction", "a conviction after the arrest", f"{estimate(outcome['conviction'])} (federal ratios)", "no: federal ratios from another decade"),
    ], columns=["Rung", "What is counted", f"{year}, genuine U.S. reports", "Measured?"])


ROUTES = (("Top-down (ICAC's counts)", "report_begun_top_down"), ("Bottom-up (task forces' rates)", "predicted_from_tips_bottom_up"))


def route_rows(reconciliation: dict) -> pd.DataFrame:
    """interval_chart's rows for the two routes' report-begun investigations and arrests, per year
    (answer.json's `reconciliation`)."""
    return pd.DataFrame([{"What": f"{stage.capitalize()}, {year}", "Series": series, "Middle": entry[stage][key]["median"],
                          "Low end": entry[stage][key]["low"], "High end": entry[stage][key]["high"]}
                         for year, entry in reconciliation.items() for stage in ("investigations", "arrests")
                         for series, key in ROUTES])
