"""Cucumber JSON from a real radish run: normalized shape, counts, merge, metrics."""

from __future__ import annotations

import base64
import copy
import json
import re

import pytest

from kfkit.report import evidence, load, merge, metrics_embedding, normalize, summarize
from kfkit.report.cucumber import scenario_error, scenario_status, step_metrics


def radish_counts(output: str) -> dict[str, tuple[int, int]]:
    """``{"scenarios": (total, passed), ...}`` from radish's closing lines."""
    counts = {}
    for kind in ("features", "scenarios", "steps"):
        match = re.search(rf"^(\d+) {kind} \((\d+) passed", output, re.MULTILINE)
        assert match, output
        counts[kind] = (int(match.group(1)), int(match.group(2)))
    return counts


def test_counts_match_what_radish_printed(demo_run):
    assert demo_run.exit_code == 1  # one scenario fails
    summary = summarize(load(demo_run.cucumber_json))
    printed = radish_counts(demo_run.output)
    assert (summary.features.total, summary.features.passed) == printed["features"]
    assert (summary.scenarios.total, summary.scenarios.passed) == printed["scenarios"]
    assert (summary.steps.total, summary.steps.passed) == printed["steps"]
    assert (summary.scenarios.passed, summary.scenarios.failed) == (3, 1)
    assert (summary.steps.passed, summary.steps.failed, summary.steps.skipped) == (11, 1, 1)
    assert not summary.ok


def test_steps_have_cucumber_keywords_and_names(demo_run):
    feature = load(demo_run.cucumber_json)[0]
    step = feature["elements"][0]["steps"][0]
    assert step["keyword"] == "Given "
    assert step["name"] == "the number 3"
    assert isinstance(step["result"]["duration"], int)
    raw = json.loads(demo_run.cucumber_json.read_text())
    assert raw[0]["elements"][0]["steps"][0]["name"] == "Given the number 3"


def test_duration_is_nanoseconds(demo_run):
    """Cucumber tools read nanoseconds; a step of this demo takes well under a second."""
    for feature in load(demo_run.cucumber_json):
        for scenario in feature["elements"]:
            for step in scenario["steps"]:
                if step["result"]["status"] == "passed":
                    assert 0 < step["result"]["duration"] < 1_000_000_000


def test_scenarios_inherit_feature_tags(demo_run):
    scenarios = load(demo_run.cucumber_json)[0]["elements"]
    assert [t["name"] for t in scenarios[0]["tags"]] == ["@demo"]
    assert [t["name"] for t in scenarios[1]["tags"]] == ["@demo", "@broken"]


def test_failed_scenario_carries_its_error(demo_run):
    broken = load(demo_run.cucumber_json)[0]["elements"][1]
    assert scenario_status(broken) == "failed"
    assert scenario_error(broken) == "expected 8, got 7"
    assert broken["steps"][-1]["result"]["status"] == "skipped"


def test_normalize_is_idempotent(demo_run):
    once = load(demo_run.cucumber_json)
    assert normalize(copy.deepcopy(once)) == once


def test_merge_joins_features_by_uri(demo_run):
    features = load(demo_run.cucumber_json)
    first, second = copy.deepcopy(features), copy.deepcopy(features)
    first[0]["elements"] = first[0]["elements"][:2]
    second[0]["elements"] = second[0]["elements"][2:]
    merged = merge([first, second])
    assert len(merged) == 1
    assert summarize(merged).as_dict() == summarize(features).as_dict()


def test_metrics_embeddings_round_trip(demo_run):
    step = load(demo_run.cucumber_json)[0]["elements"][0]["steps"][1]
    (attached,) = step_metrics(step)
    assert attached["job"] == "adder-4"
    assert attached["metrics"]["evals"][-1]["accuracy"] == pytest.approx(0.57)
    made = {"embeddings": [metrics_embedding("j", {"x": 1}), {"mime_type": "text/plain"}]}
    assert step_metrics(made) == [{"job": "j", "metrics": {"x": 1}}]


def test_outline_rows_are_named_by_their_example_values(demo_run):
    names = [s["name"] for s in load(demo_run.cucumber_json)[0]["elements"]]
    assert names[2:] == [
        "Sums from a table (a=1, b=2, sum=3)",
        "Sums from a table (a=5, b=5, sum=10)",
    ]


def test_assertion_steps_carry_their_measurement(demo_run):
    scenarios = load(demo_run.cucumber_json)[0]["elements"]
    (passed,) = evidence.step_measurements(scenarios[0]["steps"][2])
    assert (passed.metric, passed.value, passed.threshold, passed.passed) == ("result", 7, 7, True)
    (failed,) = evidence.step_measurements(scenarios[1]["steps"][2])
    assert (failed.value, failed.threshold, failed.passed) == (7, 8, False)
    # Cucumber tools show the text/plain embedding under the step.
    assert evidence.step_texts(scenarios[1]["steps"][2])[0] == "result 7, required == 8"


def test_failed_step_keeps_exception_type_and_traceback(demo_run):
    step = load(demo_run.cucumber_json)[0]["elements"][1]["steps"][2]
    failure = evidence.step_failure(step)
    assert failure is not None
    assert failure["type"] == "AssertionError"
    assert failure["message"] == "expected 8, got 7"
    assert failure["traceback"].startswith("Traceback (most recent call last):")
    assert "demo_steps.py" in failure["location"]
    assert evidence.step_failure(load(demo_run.cucumber_json)[0]["elements"][0]["steps"][2]) is None


@pytest.mark.parametrize(
    ("value", "comparison", "threshold", "text"),
    [
        (0.98721, ">=", 0.9662, "test accuracy 0.9872 >= 0.9662"),
        (0.8512, ">=", 0.9, "test accuracy 0.8512, required >= 0.9000"),
        (None, ">=", 0.9, "test accuracy none, required >= 0.9000"),
        (float("nan"), ">=", 0.9, "test accuracy none, required >= 0.9000"),
    ],
)
def test_measurement_text(value, comparison, threshold, text):
    measured = evidence.Measurement("test accuracy", value, comparison, threshold)
    assert measured.text() == text
    assert measured.passed == (text.find("required") < 0)
    assert measured.paper_value == 0.9662


def test_broken_embeddings_are_skipped():
    step = {
        "embeddings": [
            {"mime_type": evidence.MEASUREMENT_MIME, "data": "not base64!"},
            {"mime_type": evidence.MEASUREMENT_MIME, "data": base64.b64encode(b"[1]").decode()},
            {
                "mime_type": evidence.MEASUREMENT_MIME,
                "data": base64.b64encode(b'{"x": 1}').decode(),
            },
            {"mime_type": evidence.JOB_MIME, "data": base64.b64encode(b'{"logs": 3}').decode()},
        ]
    }
    assert evidence.step_measurements(step) == []
    assert evidence.step_jobs(step) == []
