"""The @fast suite, as CI and `make demo` run it: every scenario passes, the reports agree."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from kfkit.report import load
from kfkit.report.cucumber import scenario_error, scenarios
from kfkit.verify import verify

from .conftest import REPO


def fast_scenarios() -> int:
    """How many scenarios (outline rows included) carry @fast and not @cluster, parsed anew."""
    from radish.core import Core
    from tagexpressions import parse

    core = Core()
    files = [str(p) for p in sorted((REPO / "features").glob("*.feature"))]
    core.parse_features(files, parse("fast and not cluster"))
    return sum(
        len(s.scenarios) if hasattr(s, "scenarios") else 1
        for f in core.features
        for s in f.scenarios
    )


@pytest.mark.integration
def test_fast_suite_passes_and_reports_agree(tmp_path, kfkit_home, capfd):
    result = verify(tags="fast", target="local", report_dir=tmp_path, suite_dir=REPO, timeout=900)
    printed = capfd.readouterr().out
    summary = result.reports.summary
    failures = [
        f"{scenario['name']}: {scenario_error(scenario)}"
        for _, scenario in scenarios(load(result.reports.cucumber_json))
        if scenario_error(scenario)
    ]
    assert result.ok, "\n".join([*summary.lines(), *failures, printed[-2000:]])

    # What radish printed, what the reports say, and what the feature files hold agree.
    match = re.search(r"^(\d+) scenarios \((\d+) passed\)", printed, re.MULTILINE)
    assert match, printed[-2000:]
    assert (summary.scenarios.total, summary.scenarios.passed) == tuple(map(int, match.groups()))
    assert summary.scenarios.total == fast_scenarios()
    junit = ET.parse(result.reports.junit_xml).getroot()
    assert int(junit.get("tests", -1)) == summary.scenarios.total
    assert json.loads(result.reports.summary_json.read_text())["ok"] is True
    tags = {
        t["name"]
        for f in load(result.reports.cucumber_json)
        for s in f["elements"]
        for t in s["tags"]
    }
    assert "@fast" in tags and "@cluster" not in tags
