"""The claims ledger: evidence recomputed from data/, and verdicts guarded by their conditions."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

import tipline
from helpers import EditedData
from tipline.evidence import ledger
from tipline.evidence.data import DataError, load
from tipline.presentation.text import evidence_words

DATA = Path(tipline.evidence.data.ROOT) / "data"


def _model(outcome):
    return {"arrest": 0.03, "never_investigated": 0.5, "investigated_no_arrest": 0.47}[outcome]


def test_evidence_is_computed_from_the_named_rows():
    result = ledger.evidence(model_value=_model).set_index("claim_id")
    annual = load("reports_annual").query("preferred and year == 2023").set_index("reporter")["reports"]
    assert result.loc["esp_majority", "evidence_value"] == pytest.approx(annual["esp"] / annual["all"])
    urgent = load("escalations").query("year == 2023 and measure == 'urgent_imminent_danger'")["reports"].sum()
    assert result.loc["urgent_2023", "evidence_value"] == urgent
    assert result.loc["summary_referral_outcome", "evidence_value"] == 0.03
    assert evidence_words(result.loc["summary_referral_outcome", "evidence_value"], "share") == "3.0%"


def test_every_claim_has_a_verdict_reason_and_provenance():
    claims = load("claims")
    assert set(claims["verdict"]) <= set(ledger.VERDICTS)
    assert claims["reason"].str.len().min() > 10
    assert set(claims["source_id"]) == {"factually_source_analysis"}
    assert {"Executive summary", "1", "2", "3", "4", "5", "6"} <= set(claims["section"])


@pytest.mark.parametrize("condition, value, claimed, expected", [
    ("> 0.5", 0.6, None, True), ("> 0.5", 0.5, None, False), ("<= 1", 1.0, None, True),
    ("== claimed", 63892, 63892, True), ("== claimed", 63891, 63892, False), ("< 1", float("nan"), None, False)])
def test_conditions(condition, value, claimed, expected):
    assert ledger.holds(condition, value, claimed) is expected


def _claims_with(tmp_path, claim_id, column, value):
    copy = EditedData(tmp_path / "data").path
    path = copy / "claims.csv"
    rows = list(csv.reader(path.open(newline="")))
    line = next(i for i, row in enumerate(rows) if row[0] == claim_id)
    rows[line][rows[0].index(column)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return tipline.evidence.data.load_all(copy)["claims"], line + 1


def test_a_verdict_the_data_no_longer_support_stops_the_build(tmp_path):
    claims, line = _claims_with(tmp_path, "esp_majority", "holds_if", "< 0.5")
    with pytest.raises(DataError) as raised:
        ledger.evidence(claims, model_value=_model)
    message = str(raised.value)
    assert "claims.csv" in message and f"line {line}" in message and "column 'holds_if'" in message
    assert "esp_majority" in message


def test_a_selection_that_matches_nothing_is_refused(tmp_path):
    claims, line = _claims_with(tmp_path, "tens_of_millions", "numerator", "sum(reports) where year == 1998 and reporter == 'public'")
    with pytest.raises(DataError, match=rf"line {line}.*matches no row"):
        ledger.evidence(claims, model_value=_model)


def test_a_failing_denominator_selection_names_the_denominator_column(tmp_path):
    claims, line = _claims_with(tmp_path, "esp_majority", "denominator", "sum(reports) where year == 1998 and reporter == 'public'")
    with pytest.raises(DataError, match=rf"line {line}, column 'denominator'.*matches no row"):
        ledger.evidence(claims, model_value=_model)


def test_selections_are_parsed_not_evaluated():
    fields = {f["name"]: f for r in tipline.evidence.data.package()["resources"] if r["name"] == "recipients"
              for f in r["schema"]["fields"]}
    selection = ledger.parse("sum(reports) where year >= 2023 and recipient != 'international' and label == 'actionable'",
                             "recipients", fields)
    assert selection.conditions == (("year", ">=", 2023), ("recipient", "!=", "international"), ("label", "==", "actionable"))
    frame = load("recipients")
    expected = frame[(frame["year"] >= 2023) & (frame["recipient"] != "international") & (frame["label"] == "actionable")]
    assert selection.rows(frame).equals(expected) and len(expected) > 0
    for bad, words in [("year == 2023", "not a selection"), ("sum(reports) where years == 2023", "unknown column 'years'"),
                       ("sum(reports) where year =~ 2023", "unknown operator '=~'"),
                       ("sum(reports) where recipient == 'icca'", "not a value of 'recipient'"),
                       ("sum(label) where year == 2023", "no numbers to sum"),
                       ("sum(reports) where year == '2023'", "not a value for the integer column"),
                       ("mean(reports) where year == 2023", "unknown aggregation")]:
        with pytest.raises(ValueError, match=re.escape(words)):
            ledger.parse(bad, "recipients", fields)


def test_the_encryption_warning_is_not_checkable_and_still_guarded():
    claims = load("claims").set_index("claim_id")
    assert claims.loc["fewer_actionable", "verdict"] == "not_checkable"
    assert ledger.VERDICTS["not_checkable"] == "Not checkable with these data"
    assert "no published count" in claims.loc["fewer_actionable", "reason"]
    # the reason says actionable reports to ICAC rose: its guard still holds and would still fire
    assert claims.loc["fewer_actionable", "holds_if"] == "> 1"
    value = ledger.evidence(model_value=_model).set_index("claim_id").loc["fewer_actionable", "evidence_value"]
    assert value > 1 and not ledger.holds("> 1", 0.99)


# ---------------------------------------------------------------- issue 22: claims that tested the wrong thing

def test_bundling_is_tested_on_incidents_per_report_not_on_the_fall():
    claims = load("claims").set_index("claim_id")
    bundling = claims.loc["bundling_volume"]
    assert bundling["dataset"] == "incidents" and bundling["holds_if"] == "> 1"
    value = ledger.evidence(model_value=_model).set_index("claim_id").loc["bundling_volume", "evidence_value"]
    incidents = load("incidents").query("year == 2024 and source_id == 'factually_bundling_2024'")["incidents"].iloc[0]
    reports = load("reports_annual").query("preferred and year == 2024 and reporter == 'all'")["reports"].iloc[0]
    assert value == pytest.approx(incidents / reports) and value > 1
    assert "secondary" in bundling["reason"]


def test_the_seeds_typically_an_icac_task_force_is_tested(tmp_path):
    claims = load("claims").set_index("claim_id")
    assert "typically to an ICAC task force" in claims.loc["referral_typically_icac", "claim"]
    value = ledger.evidence(model_value=_model).set_index("claim_id").loc["referral_typically_icac", "evidence_value"]
    to_us = load("recipients").query("year == 2024 and recipient != 'international' and label == 'actionable'")
    assert value == pytest.approx(to_us.query("recipient == 'icac'")["reports"].sum() / to_us["reports"].sum())
    assert value < 0.5  # federal agencies receive most of the actionable U.S. deliveries: the verdict says so
    # the verdict stands only while that holds: the opposite condition stops the build
    flipped, line = _claims_with(tmp_path, "referral_typically_icac", "holds_if", "> 0.5")
    with pytest.raises(DataError, match=rf"line {line}, column 'holds_if'.*referral_typically_icac"):
        ledger.evidence(flipped, model_value=_model)


def test_claims_keep_their_attribution_and_name_what_a_bill_is():
    claims = load("claims").set_index("claim_id")
    assert claims.loc["fewer_actionable", "claim"].startswith("NCMEC and watchdogs warn")
    assert claims.loc["capacity_overload", "claim"].startswith("Critics say")
    assert "Congress has asked" not in claims.loc["no_outcome_statistics", "reason"]
    assert "bill" in claims.loc["no_outcome_statistics", "reason"]
    assert claims.loc["insufficient_detail", "verdict"] == "not_checkable"
    assert "not a referral" in claims.loc["insufficient_detail", "reason"]
    assert "second half" in claims.loc["automated_detection", "reason"]  # metadata-rich referrals assessed


def test_no_claim_text_holds_a_quotation():
    """Quotations come from data/quotes.csv; the ledger's own columns paraphrase."""
    claims = load("claims")
    for column in ("claim", "reason", "evidence"):
        assert not claims[column].str.contains("[\u201c\u201d\"]", regex=True).any(), column
