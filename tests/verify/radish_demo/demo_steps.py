"""Arithmetic steps for the report tests: radish runs them for real, no jobs involved.

The hooks are the suite's own (``stepfile.py`` registers the same two), so the
demo's cucumber JSON names outline rows and keeps failures as the suite's does.
"""

import json

from radish import after, before, given, then, when

from kfkit.report import METRICS_MIME, evidence


@given("the number {number:d}")
def given_number(step, number):
    step.context.value = number


@when("I add {number:d}")
def when_add(step, number):
    step.context.value += number
    curve = [{"step": i, "samples": 64 * i, "loss": 1.0 / (i + 1)} for i in range(1, 6)]
    evals = [
        {"step": i, "samples": 64 * i, "accuracy": 0.5 + 0.01 * step.context.value * i / 5}
        for i in (1, 3, 5)
    ]
    payload = {"job": f"adder-{number}", "metrics": {"steps": curve, "evals": evals}}
    step.embed(json.dumps(payload), mime_type=METRICS_MIME)


@then("the result is {number:d}")
def then_result(step, number):
    measured = evidence.Measurement("result", step.context.value, "==", number)
    evidence.attach_measurement(step, measured)
    assert measured.passed, f"expected {number}, got {step.context.value}"


@before.each_scenario
def name_outline_rows(scenario):
    evidence.name_example_row(scenario)


@after.each_step
def keep_failure_details(step):
    evidence.attach_failure(step)
