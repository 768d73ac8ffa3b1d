"""answer.json: the book's headline figures, machine-readable, and the same as the chapters print."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from tipline.estimates import answer, funnels, outcomes, reconcile
from tipline.presentation import text

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figures() -> dict:
    return answer.load()  # as kept for the current inputs (computed once, then read)


def _glued(chapter: str) -> dict[str, str]:
    """The values a chapter glued for its prose, as committed (nbval keeps them current)."""
    book = nbformat.read(ROOT / "chapters" / f"{chapter}.ipynb", as_version=4)
    values = {}
    for cell in book.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name and not any(key.endswith("text/markdown") for key in output["data"]):  # Markdown glue is not a string
                values[name] = ast.literal_eval(output["data"]["application/papermill.record/text/plain"])
    return values


def _ordered(interval: dict) -> bool:
    return interval["low"] <= interval["median"] <= interval["high"] and 0 < interval["level"] < 1


def test_answer_has_every_part_the_readme_promises(figures):
    for key in ("top_down", "condition", "sensitivity", "reconciliation", "validation", "task_force_predictive",
                "task_force_national", "shared_evidence", "outcome_classes", "headline"):
        assert key in figures, key
    for year in outcomes.years():
        by_definition = figures["top_down"][str(year)]
        # every definition is either modelled or said not to be, with the reason
        assert set(by_definition) | set(figures["not_modelled"].get(str(year), {})) == set(outcomes.DEFINITIONS)
        assert (outcomes.FEDERAL in by_definition) == (outcomes.inputs(year).federal is not None)
        for entry in by_definition.values():
            for outcome in outcomes.OUTCOMES:
                assert _ordered(entry["outcomes"][outcome])
            assert 0 < entry["acceptance_rate"] <= 1
            modes = sum(entry["outcomes"][o]["most_common_in_share_of_draws"] for o in outcomes.OUTCOMES)
            assert modes == pytest.approx(1, abs=1e-5)
        line = figures["condition"][str(year)]
        assert _ordered(line) and line["high"] < line["ceiling"]
        assert line == by_definition[outcomes.MAIN]["condition"]


def test_the_sensitivity_set_has_every_prior_set_with_its_mode_and_no_arrest_interval(figures):
    entries = figures["sensitivity"]
    assert len(entries) >= 6 and [e["prior_set"] for e in entries] == outcomes.prior_sets()
    for entry in entries:
        assert 0 <= entry["no_case_opened_first"] <= 1 and _ordered(entry["no_arrest"])
        assert entry["description"] and (entry["changes"] or entry["prior_set"] == outcomes.BASELINE)
    baseline = entries[0]
    main = figures["top_down"][str(figures["headline"]["year"])][outcomes.MAIN]
    assert baseline["no_arrest"] == main["no_arrest"]
    assert baseline["no_case_opened_first"] == main["outcomes"]["never_investigated"]["most_common_in_share_of_draws"]
    spread = figures["headline"]["no_arrest_over_prior_sets"]
    assert spread["lowest_low"] == min(e["no_arrest"]["low"] for e in entries)
    assert spread["highest_high"] == max(e["no_arrest"]["high"] for e in entries)
    modes = figures["headline"]["most_common_probability_over_prior_sets"]
    assert modes["lowest"] == min(e["no_case_opened_first"] for e in entries)


def test_arrests_per_tip_at_the_promised_volumes(figures):
    year = figures["headline"]["year"]
    for stage in ("arrests_per_tip_at", "investigations_per_tip_at"):
        rows = figures["task_force_predictive"][stage]
        assert [r["tips"] for r in rows] == [*answer.VOLUMES, round(reconcile.average_volume(year), 1)]
        for row in rows:
            assert set(row) == {"tips", "median", "low", "high", "level"} and _ordered(row)
    national = figures["task_force_national"]
    assert national["average_volume"] == figures["task_force_predictive"]["arrests_per_tip_at"][-1]["tips"]
    assert _ordered(national["no_arrest"]) and _ordered(national["arrests_per_tip"])


def test_validation_scores_every_model_and_stage(figures):
    for stage, entry in figures["validation"]["stages"].items():
        assert set(entry["models"]) == set(funnels.MODELS)
        assert entry["units"] > 2 and entry["figures"] >= entry["units"] and entry["exact"] <= entry["figures"]
        for model, scores in entry["models"].items():
            assert scores["log_score"] < 0 and 0 <= scores["inside"] <= entry["figures"]
            if model != "size":
                gap = entry["models"]["size"]["log_score"] - scores["log_score"]
                assert scores["size_model_better_by"] == pytest.approx(gap, abs=1e-3)


def test_the_reconciliation_sets_report_begun_cases_against_report_begun_cases(figures):
    for year, entry in figures["reconciliation"].items():
        for stage in ("investigations", "arrests"):
            top = entry[stage]["report_begun_top_down"]
            # the report-begun share of ICAC's cases cannot exceed all of them (moved by at most a year and a quarter's growth)
            assert top["high"] <= entry[stage]["published_all_origins"] * 1.5
            assert _ordered(top) and _ordered(entry[stage]["predicted_from_tips_bottom_up"])


def test_answer_json_is_what_the_model_chapter_printed(figures):
    glued = _glued("best_inference")
    head = figures["headline"]
    sets = figures["sensitivity"]
    assert glued["mdl_year"] == str(head["year"])
    assert glued["mdl_no_arrest"] == text.estimate(head["no_arrest"])
    assert glued["mdl_bottom_no_arrest"] == text.estimate(head["no_arrest_bottom_up"])
    assert f"at least {text.percent(head['no_arrest_over_prior_sets']['lowest_low'])}" in glued["mdl_settled"]
    assert f"more than about {head['condition']['median']:.1f} reports" in glued["mdl_mode_sentence"]
    first = [e["no_case_opened_first"] for e in sets]
    assert glued["mdl_mode_range"] == f"from {text.percent(min(first))} to {text.percent(max(first))}"
    national = figures["task_force_national"]
    assert glued["mdl_national_arrests"] == text.per_hundred(national["arrests_per_tip"])
    ratio = figures["reconciliation"][str(head["year"])]["arrests"]["ratio_bottom_up_to_top_down"]
    assert glued["mdl_recon_ratio"].startswith(f"{ratio['median']:.2f} ")


def test_answer_json_is_what_the_summary_and_safe_to_say_printed(figures):
    head = figures["headline"]
    summary, safe = _glued("summary"), _glued("safe_to_say")
    assert summary["sum_no_arrest"] == text.estimate(head["no_arrest"])
    assert summary["sum_floor"] == text.percent(head["no_arrest_over_prior_sets"]["lowest_low"])
    assert f"more than about {head['condition']['median']:.1f} reports" in summary["sum_mode_sentence"]
    assert summary["sum_denominator"] == f"{figures['top_down'][str(head['year'])][outcomes.MAIN]['reports']:,}"
    assert text.estimate(head["no_arrest"]) in safe["sts_s1"]
    assert f"more than about {head['condition']['median']:.1f} reports" in safe["sts_s3"]
    # the same figure in the same words on every page: one precision rule
    for page in (summary, safe, _glued("best_inference")):
        for value in page.values():
            assert "first in over" not in value and "of the draws" not in value and "accepted draws" not in value


def test_the_percent_rule_prints_an_estimate_at_one_precision():
    assert text.estimate({"median": 0.83, "low": 0.69, "high": 0.935}) == "83% (69% to 94%)"
    assert text.estimate({"median": 0.9853, "low": 0.9695, "high": 0.9944}) == "98.5% (97.0% to 99.4%)"
    assert text.percent(0.0004) == "under 0.1%" and text.percent(0.99996) == "over 99.9%" and text.percent(1) == "100%"
    with pytest.raises(ValueError):
        text.percent(1.2)


def test_written_file_round_trips(tmp_path, figures):
    path = answer.write(tmp_path / "data" / "answer.json")
    assert json.loads(path.read_text()) == figures


def test_answer_json_is_published_with_the_site(built_site, figures):
    published = json.loads((built_site / "data" / "answer.json").read_text())
    assert published["headline"] == figures["headline"]
    assert published["task_force_predictive"] == figures["task_force_predictive"]


def test_answer_json_is_computed_by_one_process_while_the_others_wait(tmp_path):
    """Two processes that need answer.json at once (nbval's kernels, a test, `make book`): one
    computes it, the other waits until it is kept and reads it (each computation takes about 10 s)."""
    import os
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "data", tmp_path / "data")
    script = ("import time\nfrom tipline.estimates import answer\n"
              "def computed():\n    print('computing', flush=True)\n    time.sleep(3)\n"
              "    return '{\"headline\": 1}\\n', {'recipients'}\n"
              "answer._computed = computed\nprint(answer.load())\n")
    env = dict(os.environ, TIPLINE_DATA=str(tmp_path / "data"), PYTHONPATH=str(root))
    processes = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert sum(output.count("computing") for output in outputs) == 1, outputs
    assert all("{'headline': 1}" in output for output in outputs), outputs


def test_the_kept_answer_is_named_by_the_datasets_it_read(edited_data, monkeypatch, tmp_path):
    """answer.json is kept under a name made from the content of the datasets it read (listed beside
    it, datasets.txt): an edit of one of them, even of a text it shows nowhere (a justification in
    assumptions.csv), names another file, so the next build computes it again; an edit of a dataset
    it never read (feedback.csv) finds the same file."""
    from tipline.estimates import kept
    from tipline.evidence import data

    monkeypatch.setattr(data, "DATA", edited_data.path)
    monkeypatch.setattr(kept, "KEPT", tmp_path / "answer")
    monkeypatch.setattr(kept, "READ", tmp_path / "answer" / "datasets.txt")
    (tmp_path / "answer").mkdir()
    (tmp_path / "answer" / "datasets.txt").write_text("assumptions\nrecipients\n")
    first = kept.kept_path()
    edited_data.replace("feedback.csv", "2020,icac,186528,", "2020,icac,186529,")
    assert kept.kept_path() == first, "an edit of a dataset answer.json never read named another file"
    edited_data.set_cell("assumptions.csv", "conviction_share", "justification", "Another justification, written for this test.")
    assert kept.kept_path() != first, "an edit of a dataset answer.json read kept the old file's name"
