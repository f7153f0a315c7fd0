"""The measured values of a run, one row each: the report's results table and ``results.json``.

Rows come from the measurement embeddings the assertion steps attached (see
:mod:`kfkit.report.evidence`), in scenario order, so the HTML table, the JUnit
properties and ``results.json`` list the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kfkit.report.cucumber import Feature, scenarios
from kfkit.report.evidence import Measurement, step_measurements


def scenario_anchor(feature: Feature, scenario: dict[str, Any]) -> str:
    """The HTML id of a scenario: unique within the report, stable between runs."""
    elements = feature.get("elements") or []
    index = next((i for i, element in enumerate(elements) if element is scenario), len(elements))
    return f"s-{feature['id']}-{index}"


@dataclass
class Result:
    feature: str
    scenario: str
    anchor: str
    step: str
    measurement: Measurement

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "scenario": self.scenario,
            "step": self.step,
            **self.measurement.as_dict(),
        }


def scenario_measurements(scenario: dict[str, Any]) -> list[Measurement]:
    return [m for step in scenario.get("steps") or [] for m in step_measurements(step)]


def results(features: list[Feature]) -> list[Result]:
    rows = []
    for feature, scenario in scenarios(features):
        for step in scenario.get("steps") or []:
            for measurement in step_measurements(step):
                rows.append(
                    Result(
                        feature=feature["name"],
                        scenario=str(scenario.get("name") or ""),
                        anchor=scenario_anchor(feature, scenario),
                        step=f"{step['keyword']}{step['name']}",
                        measurement=measurement,
                    )
                )
    return rows
