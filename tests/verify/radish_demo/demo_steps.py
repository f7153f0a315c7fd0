"""Arithmetic steps for the report tests: radish runs them for real, no jobs involved."""

import json

from radish import given, then, when

from kfkit.report import METRICS_MIME


@given("the number {number:d}")
def given_number(step, number):
    step.context.value = number


@when("I add {number:d}")
def when_add(step, number):
    step.context.value += number
    curve = [{"step": i, "loss": 1.0 / (i + 1)} for i in range(1, 6)]
    evals = [{"step": 5, "accuracy": 0.5 + 0.01 * step.context.value, "loss": 0.4}]
    payload = {"job": f"adder-{number}", "metrics": {"steps": curve, "evals": evals}}
    step.embed(json.dumps(payload), mime_type=METRICS_MIME)


@then("the result is {number:d}")
def then_result(step, number):
    assert step.context.value == number, f"expected {number}, got {step.context.value}"
