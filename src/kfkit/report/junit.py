"""JUnit XML from cucumber JSON: one testsuite per feature, one testcase per scenario.

radish can write JUnit itself, but only for the features one radish process
ran; writing it from the (merged) cucumber JSON gives the pipeline and
``kfkit verify`` one JUnit file with the same counts as the HTML report.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from kfkit.report.cucumber import (
    FAILED,
    PASSED,
    Feature,
    scenario_duration_ns,
    scenario_error,
    scenario_status,
)


def _seconds(nanoseconds: int) -> str:
    return f"{nanoseconds / 1e9:.3f}"


def _steps_text(scenario: dict) -> str:
    lines = []
    for step in scenario.get("steps") or []:
        result = step["result"]
        lines.append(f"{step['keyword']}{step['name']} ... {result['status']}")
        if result.get("error_message"):
            lines.append(f"    {result['error_message']}")
    return "\n".join(lines)


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
            if status == FAILED:
                error = scenario_error(scenario) or "failed"
                failure = ET.SubElement(case, "failure", message=error.splitlines()[0][:500])
                failure.text = _steps_text(scenario)
                counts["failures"] += 1
            elif status != PASSED:
                ET.SubElement(case, "skipped", message="not every step ran")
                counts["skipped"] += 1
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
