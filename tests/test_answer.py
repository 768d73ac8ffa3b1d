"""answer.json: the book's headline figures, machine-readable, and the same as the chapters print."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from tipline.estimates import answer, outcomes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figures() -> dict:
    return answer.compute()


def _glued(chapter: str) -> dict[str, str]:
    """The values a chapter glued for its prose, as committed (nbval keeps them current)."""
    book = nbformat.read(ROOT / "chapters" / f"{chapter}.ipynb", as_version=4)
    values = {}
    for cell in book.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                values[name] = ast.literal_eval(output["data"]["application/papermill.record/text/plain"])
    return values


def _ordered(interval: dict) -> bool:
    return interval["low"] <= interval["median"] <= interval["high"] and 0 < interval["level"] < 1


def test_answer_has_every_part_the_readme_promises(figures):
    for key in ("top_down", "threshold", "reconciliation", "validation", "task_force_predictive", "headline"):
        assert key in figures, key
    for stage in ("arrests_per_tip", "investigations_per_tip"):
        assert set(figures["task_force_predictive"][stage]) == {"median", "low", "high", "level"}
        assert _ordered(figures["task_force_predictive"][stage])
    for year in outcomes.years():
        by_definition = figures["top_down"][str(year)]
        # every definition is either modelled or said not to be, with the reason
        assert set(by_definition) | set(figures["not_modelled"].get(str(year), {})) == set(outcomes.DEFINITIONS)
        assert outcomes.MAIN in by_definition
        assert (outcomes.FEDERAL in by_definition) == (outcomes.inputs(year).federal is not None)
        if outcomes.FEDERAL in by_definition:
            federal = by_definition[outcomes.FEDERAL]["federal_outcomes"]
            assert federal["investigations"] > 0 and federal["arrests"] > 0
            assert _ordered(federal["missing_investigations_to_change_the_answer"])
        for entry in by_definition.values():
            for outcome in outcomes.OUTCOMES:
                assert _ordered(entry["outcomes"][outcome])
            assert 0 < entry["acceptance_rate"] <= 1
            modes = sum(entry["outcomes"][o]["most_common_in_share_of_draws"] for o in outcomes.OUTCOMES)
            assert modes == pytest.approx(1, abs=1e-5)
        assert _ordered(figures["threshold"][str(year)])
    assert figures["validation"]["covered"] <= figures["validation"]["total"] == len(figures["validation"]["held_out"])


def test_answer_json_is_what_the_model_chapter_printed(figures):
    glued = _glued("best_inference")
    head = figures["headline"]
    assert glued["mdl_latest"] == str(head["year"])
    assert glued["mdl_no_arrest"] == answer.percent(head["no_arrest"]["median"])
    assert glued["mdl_no_arrest_interval"] == f"{answer.percent(head['no_arrest']['low'])} to {answer.percent(head['no_arrest']['high'])}"
    assert glued["mdl_mode_probability"] == answer.percent(head["most_common_probability"])
    assert glued["mdl_threshold"] == f"{head['threshold']['median']:.1f}"
    predictive = figures["task_force_predictive"]
    assert glued["mdl_tf_new_arrests"] == answer.percent(predictive["arrests_per_tip"]["median"])
    assert glued["mdl_tf_new_investigations"] == answer.percent(predictive["investigations_per_tip"]["median"])
    assert glued["mdl_held_covered"] == f"{figures['validation']['covered']:,}"
    assert glued["mdl_held_total"] == f"{figures['validation']['total']:,}"
    latest = str(head["year"])
    ratio = figures["reconciliation"][latest]["arrests"]["ratio_predicted_to_published"]
    assert glued["mdl_recon_arr_ratio_latest"] == f"{ratio:.1f}"


def test_answer_json_is_what_the_summary_printed(figures):
    glued = _glued("summary")
    head = figures["headline"]
    assert glued["sum_no_arrest"] == answer.percent(head["no_arrest"]["median"])
    assert glued["sum_mode_probability"] == answer.percent(head["most_common_probability"])
    assert glued["sum_threshold"] == f"{head['threshold']['median']:.1f}"
    main = figures["top_down"][str(head["year"])][outcomes.MAIN]
    assert glued["sum_denominator"] == f"{main['reports']:,}"


def test_written_file_round_trips(tmp_path, figures):
    path = answer.write(tmp_path / "data" / "answer.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(figures, sort_keys=True, default=str))


def test_answer_json_is_published_with_the_site(built_site, figures):
    published = json.loads((built_site / "data" / "answer.json").read_text())
    assert published["headline"] == json.loads(json.dumps(figures["headline"]))
    assert published["task_force_predictive"] == figures["task_force_predictive"]
