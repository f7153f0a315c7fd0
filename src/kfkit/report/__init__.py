"""Verification reports: cucumber JSON in; cucumber JSON, JUnit XML and HTML out.

``kfkit verify`` and the pipeline's report component both end in
:func:`write_reports`, so a local run and a pipeline run produce the same three
files from the same counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kfkit.report import evidence
from kfkit.report.cucumber import (
    METRICS_MIME,
    Feature,
    Summary,
    load,
    merge,
    metrics_embedding,
    normalize,
    summarize,
)
from kfkit.report.environment import collect_environment
from kfkit.report.html import render_html, write_html
from kfkit.report.junit import write_junit
from kfkit.report.results import results

CUCUMBER_JSON, JUNIT_XML, HTML_REPORT, SUMMARY_JSON, RESULTS_JSON = (
    "cucumber.json",
    "junit.xml",
    "report.html",
    "summary.json",
    "results.json",
)


@dataclass
class Reports:
    """Where the reports of one run were written, and what they say."""

    summary: Summary
    cucumber_json: Path
    junit_xml: Path
    html: Path
    summary_json: Path
    results_json: Path


def write_reports(
    features: list[Feature],
    report_dir: str | Path,
    environment: dict[str, str] | None = None,
) -> Reports:
    """Write cucumber.json, junit.xml, report.html, summary.json and results.json.

    ``results.json`` lists every measured value with its threshold (the HTML
    report's results table), for scripts that compare runs.
    """
    directory = Path(report_dir)
    directory.mkdir(parents=True, exist_ok=True)
    features = normalize(features)
    summary = summarize(features)
    cucumber_json = directory / CUCUMBER_JSON
    cucumber_json.write_text(json.dumps(features, indent=2, sort_keys=True), encoding="utf-8")
    summary_json = directory / SUMMARY_JSON
    summary_json.write_text(json.dumps(summary.as_dict(), indent=2), encoding="utf-8")
    results_json = directory / RESULTS_JSON
    rows = [row.as_dict() for row in results(features)]
    results_json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return Reports(
        summary=summary,
        cucumber_json=cucumber_json,
        junit_xml=write_junit(features, directory / JUNIT_XML),
        html=write_html(features, directory / HTML_REPORT, environment),
        summary_json=summary_json,
        results_json=results_json,
    )


__all__ = [
    "METRICS_MIME",
    "Feature",
    "Reports",
    "Summary",
    "collect_environment",
    "evidence",
    "load",
    "merge",
    "metrics_embedding",
    "normalize",
    "render_html",
    "summarize",
    "write_reports",
]
