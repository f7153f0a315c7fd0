"""JUnit XML, HTML and summary.json written from a real radish run's cucumber JSON."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from kfkit.report import collect_environment, load, write_reports


def test_write_reports_junit_counts_and_failure(demo_run, tmp_path):
    reports = write_reports(load(demo_run.cucumber_json), tmp_path)
    root = ET.parse(reports.junit_xml).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("4", "1", "0")
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases][:2] == ["A sum that holds", "A sum that does not hold"]
    (failure,) = root.findall("testsuite/testcase/failure")
    assert failure.get("message") == "expected 8, got 7"
    assert failure.get("type") == "AssertionError"
    assert "Then the result is 8 ... failed" in (failure.text or "")
    assert "Traceback (most recent call last):" in (failure.text or "")
    # Outline rows by their example values; every case has its step log and measured values.
    assert [c.get("name") for c in cases][2:] == [
        "Sums from a table (a=1, b=2, sum=3)",
        "Sums from a table (a=5, b=5, sum=10)",
    ]
    out = cases[1].find("system-out")
    assert out is not None and "Then the result is 8 ... failed\n    result 7, required == 8" in (
        out.text or ""
    )
    properties = [(p.get("name"), p.get("value")) for p in cases[0].iter("property")]
    assert properties == [("result", "7"), ("result threshold", "== 7")]


def test_summary_json_and_cucumber_json(demo_run, tmp_path):
    reports = write_reports(load(demo_run.cucumber_json), tmp_path)
    summary = json.loads(reports.summary_json.read_text())
    assert summary["scenarios"] == {"total": 4, "passed": 3, "failed": 1, "skipped": 0}
    assert summary["ok"] is False
    assert load(reports.cucumber_json) == json.loads(reports.cucumber_json.read_text())
    results = json.loads(reports.results_json.read_text())
    assert [(r["scenario"], r["value"], r["threshold"], r["passed"]) for r in results][:2] == [
        ("A sum that holds", 7, 7, True),
        ("A sum that does not hold", 7, 8, False),
    ]
    assert results[1]["text"] == "result 7, required == 8"


def test_html_is_self_contained_with_plots_and_environment(demo_run, tmp_path):
    environment = collect_environment(target="local")
    html = write_reports(load(demo_run.cucumber_json), tmp_path, environment).html.read_text()
    # Nothing is fetched: no external scripts, styles, images or fonts.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html
    assert not re.search(r"url\((?!#)", html)  # only the plots' own clip paths
    assert html.count("<svg") == 4  # one plot per job (one per scenario here)
    assert html.count('<details class="scenario') == 4
    assert "expected 8, got 7" in html
    assert "radish-bdd version" in html and "0.18.4" in html
