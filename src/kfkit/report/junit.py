"""JUnit XML from cucumber JSON: one testsuite per feature, one testcase per scenario.

radish can write JUnit itself, but only for the features one radish process
ran; writing it from the (merged) cucumber JSON gives the pipeline and
``kfkit verify`` one JUnit file with the same counts as the HTML report.

Each testcase carries what a CI page can show without the HTML report: the
measured values and their thresholds as ``properties`` (as pytest's
``record_property`` writes them: ``<job>: test accuracy`` = ``0.9872``,
``<job>: test accuracy threshold`` = ``>= 0.9662``), the step log with every
step's output in ``system-out``, and for a failure the exception type and
message, the traceback in its text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from kfkit.report.cucumber import (
    FAILED,
    PASSED,
    Feature,
    scenario_duration_ns,
    scenario_error,
    scenario_status,
)
from kfkit.report.evidence import format_value, step_failure, step_measurements, step_texts


def _seconds(nanoseconds: int) -> str:
    return f"{nanoseconds / 1e9:.3f}"


def _steps_text(scenario: dict[str, Any], with_output: bool = False) -> str:
    """One line per step (``Then the result is 8 ... failed``), its output indented below."""
    lines = []
    for step in scenario.get("steps") or []:
        result = step["result"]
        lines.append(f"{step['keyword']}{step['name']} ... {result['status']}")
        if with_output:
            lines += [f"    {line}" for text in step_texts(step) for line in text.splitlines()]
        elif result.get("error_message"):
            lines.append(f"    {result['error_message']}")
    return "\n".join(lines)


def _failure(case: ET.Element, scenario: dict[str, Any]) -> None:
    error = scenario_error(scenario) or "failed"
    failed = next((s for s in scenario.get("steps") or [] if s["result"]["status"] == FAILED), None)
    details = step_failure(failed) if failed else None
    failure = ET.SubElement(
        case,
        "failure",
        message=error.splitlines()[0][:500],
        type=(details or {}).get("type") or "AssertionError",
    )
    text = _steps_text(scenario)
    if details and details["traceback"]:
        text += f"\n\n{details['traceback']}"
    failure.text = text


def _properties(case: ET.Element, scenario: dict[str, Any]) -> None:
    measured = [m for step in scenario.get("steps") or [] for m in step_measurements(step)]
    if not measured:
        return
    properties = ET.SubElement(case, "properties")
    for m in measured:
        name = f"{m.job}: {m.metric}" if m.job else m.metric
        unit = f" {m.unit}" if m.unit else ""
        ET.SubElement(properties, "property", name=name, value=format_value(m.value, m.unit) + unit)
        threshold = f"{m.comparison} {format_value(m.threshold, m.unit)}{unit}"
        ET.SubElement(properties, "property", name=f"{name} threshold", value=threshold)


def junit_tree(features: list[Feature]) -> ET.ElementTree:
    root = ET.Element("testsuites", name="kfkit verify")
    totals = {"tests": 0, "failures": 0, "skipped": 0, "time": 0}
    for feature in features:
        suite = ET.SubElement(root, "testsuite", name=feature["name"])
        counts = {"tests": 0, "failures": 0, "skipped": 0, "time": 0}
        for scenario in feature.get("elements") or []:
            duration = scenario_duration_ns(scenario)
            case = ET.SubElement(
                suite,
                "testcase",
                classname=feature["name"],
                name=str(scenario.get("name") or ""),
                time=_seconds(duration),
            )
            status = scenario_status(scenario)
            _properties(case, scenario)
            if status == FAILED:
                _failure(case, scenario)
                counts["failures"] += 1
            elif status != PASSED:
                ET.SubElement(case, "skipped", message="not every step ran")
                counts["skipped"] += 1
            ET.SubElement(case, "system-out").text = _steps_text(scenario, with_output=True)
            counts["tests"] += 1
            counts["time"] += duration
        for key in ("tests", "failures", "skipped"):
            suite.set(key, str(counts[key]))
            totals[key] += counts[key]
        suite.set("errors", "0")
        suite.set("time", _seconds(counts["time"]))
        totals["time"] += counts["time"]
    for key in ("tests", "failures", "skipped"):
        root.set(key, str(totals[key]))
    root.set("errors", "0")
    root.set("time", _seconds(totals["time"]))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(features: list[Feature], path: str | Path) -> Path:
    path = Path(path)
    junit_tree(features).write(path, encoding="utf-8", xml_declaration=True)
    return path
