"""``kfkit verify`` end to end on the smoke feature: a real job passes, a missing manifest fails."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET

import pytest

from kfkit.cli import verify as verify_cli
from kfkit.errors import KfkitError
from kfkit.report import evidence, load
from kfkit.verify import Settings, tag_expression, verify

from .conftest import HERE, REPO

FEATURES = HERE / "features"  # smoke.feature passes, broken.feature fails
SMOKE = FEATURES / "smoke.feature"


def test_tag_expression_leaves_cluster_scenarios_out_locally():
    assert tag_expression("fast", "local") == "(fast) and not cluster"
    assert tag_expression(None, "local") == "not cluster"
    assert tag_expression("fast", "kubernetes") == "(fast)"
    assert tag_expression(None, "kubernetes") is None


def test_unknown_target_is_a_user_error(tmp_path):
    with pytest.raises(KfkitError, match="--target: unknown target 'moon'"):
        verify(target="moon", report_dir=tmp_path, suite_dir=REPO)
    with pytest.raises(KfkitError, match="target=moon"):
        Settings.from_user_data({"target": "moon"})


def test_tags_that_match_nothing_are_a_user_error(tmp_path, kfkit_home):
    with pytest.raises(KfkitError, match=r"smoke\.feature: no scenario matches tags"):
        verify([SMOKE], tags="nothing-has-this-tag", report_dir=tmp_path, suite_dir=REPO)


@pytest.mark.integration
def test_cli_runs_the_features_and_fails_on_the_broken_scenario(tmp_path, kfkit_home):
    parser = argparse.ArgumentParser()
    verify_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        ["verify", str(FEATURES), "--report-dir", str(tmp_path), "--suite-dir", str(REPO)]
    )
    assert args.func(args) == 1  # one scenario fails

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["features"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0}
    assert summary["scenarios"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0}
    assert summary["steps"] == {"total": 7, "passed": 4, "failed": 1, "skipped": 2}

    features = {f["name"]: f for f in load(tmp_path / "cucumber.json")}
    (passed,) = features["Suite smoke test"]["elements"]
    (broken,) = features["A scenario that must fail"]["elements"]
    assert [s["result"]["status"] for s in passed["steps"]] == ["passed"] * 4
    error = broken["steps"][0]["result"]["error_message"]
    assert error.endswith("manifests/examples/no-such-job.yaml: no such file or directory")

    # The suite's hook kept the exception's type and traceback; the steps kept what they saw.
    details = evidence.step_failure(broken["steps"][0])
    assert details is not None and details["type"] == "ValidationError"
    assert "in plan_job" in details["traceback"]
    measured = [m for s in passed["steps"] for m in evidence.step_measurements(s)]
    assert [m.metric for m in measured] == ["replicas ended after", "failed replicas"]
    assert (measured[1].value, measured[1].comparison, measured[1].threshold) == (0, "<=", 0)
    assert measured[0].value is not None and measured[0].value <= 60 and measured[0].unit == "s"

    junit = ET.parse(tmp_path / "junit.xml").getroot()
    (failure,) = junit.findall("testsuite/testcase/failure")
    assert "no-such-job.yaml: no such file or directory" in failure.get("message", "")
    assert failure.get("type") == "ValidationError"
    html = (tmp_path / "report.html").read_text()
    assert "no-such-job.yaml: no such file or directory" in html

    # The job that ran kept its manifest and logs next to the report, and was deleted after.
    (job_dir,) = (tmp_path / "work" / "jobs").iterdir()
    assert (job_dir / "job.yaml").is_file()
    assert sorted(p.name for p in (job_dir / "logs").iterdir()) == [
        "master-0.log",
        "worker-0.log",
        "worker-1.log",
    ]
    namespace_dir = tmp_path / "work" / "kfkit-home" / "jobs" / "default"
    assert not namespace_dir.exists() or not list(namespace_dir.iterdir())


def test_user_data_must_be_key_value():
    assert verify_cli.parse_user_data(["kubeconfig=/k", "build_image=a/b:c=d"]) == {
        "kubeconfig": "/k",
        "build_image": "a/b:c=d",
    }
    with pytest.raises(KfkitError, match="--user-data: 'oops': expected KEY=VALUE"):
        verify_cli.parse_user_data(["oops"])
