"""The verification pipeline: compiled YAML up to date, and local runs end to end with kfp.local."""

from __future__ import annotations

import argparse
import json

import pytest
import yaml

from kfkit.cli import pipeline as pipeline_cli
from kfkit.errors import KfkitError
from kfkit.verify.pipeline import COMPILED_NAME, compile_pipeline, load_pipeline_module

from .conftest import REPO

HELM = "features/helm_configuration.feature"
NOTEBOOK = "features/notebook_poddefault.feature"
BROKEN = "tests/verify/features/broken.feature"


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    pipeline_cli.register(parser.add_subparsers())
    args = parser.parse_args(["pipeline", "--suite-dir", str(REPO), *argv])
    return int(args.func(args))


def test_compiled_pipeline_is_up_to_date(tmp_path):
    fresh = compile_pipeline(REPO, tmp_path / "verify_pipeline.yaml")
    committed = REPO / COMPILED_NAME
    assert fresh.read_text() == committed.read_text(), (
        "pipelines/verify_pipeline.yaml is stale: run `kfkit pipeline compile`"
    )


def test_compiled_pipeline_shape():
    spec = yaml.safe_load((REPO / COMPILED_NAME).read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"for-loop-1", "merge-reports", "check-verdict"}
    assert "parameterIterator" in tasks["for-loop-1"]
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {"kfkit/kit:0.1.0"}
    outputs = spec["components"]["comp-merge-reports"]["outputDefinitions"]["artifacts"]
    assert outputs["html_report"]["artifactType"]["schemaTitle"] == "system.HTML"
    assert outputs["summary"]["artifactType"]["schemaTitle"] == "system.Markdown"
    assert outputs["results_json"]["artifactType"]["schemaTitle"] == "system.Artifact"
    groups = spec["root"]["inputDefinitions"]["parameters"]["groups"]["defaultValue"]
    module = load_pipeline_module(REPO)
    assert groups == module.FEATURE_GROUPS


def test_unknown_group_is_a_user_error():
    with pytest.raises(KfkitError, match=r"--group: features/nope\.feature: no such feature file"):
        cli("run", "--local", "--group", "features/nope.feature")


@pytest.mark.integration
def test_local_run_passes_with_fast_groups(tmp_path, kfkit_home, capfd):
    """Two of the suite's own feature groups, in parallel, with the @fast tag."""
    report_dir = tmp_path / "reports"
    code = cli(
        "run", "--local", "--tags", "fast", "--group", HELM, "--group", NOTEBOOK,
        "--report-dir", str(report_dir), "--pipeline-root", str(tmp_path / "root"),
    )  # fmt: skip
    assert code == 0
    # Into a pipe: kfp.local's INFO lines and colours go to a log file, progress to stderr.
    printed = capfd.readouterr()
    assert "\x1b[" not in printed.out + printed.err
    assert " - INFO - " not in printed.out + printed.err
    assert "Task 'merge-reports' finished with status SUCCESS" in printed.err
    log = (report_dir / "kfp-local.log").read_text()
    assert " - INFO - Executing task 'merge-reports'" in log and "\x1b[" not in log
    features = json.loads((report_dir / "cucumber.json").read_text())
    assert sorted(f["name"] for f in features) == [
        "Helm configuration of the platform",
        "Notebooks get the team's PodDefaults",
    ]
    assert "| scenarios | 2 | 2 | 0 | 0 |" in (report_dir / "summary.md").read_text()
    # The merged measurements travel too (the helm and notebook steps measure no numbers).
    assert json.loads((report_dir / "results.json").read_text()) == []


@pytest.mark.integration
def test_local_run_merges_groups_and_fails_on_a_failed_scenario(tmp_path, kfkit_home):
    report_dir = tmp_path / "reports"
    code = cli(
        "run", "--local", "--tags", "", "--group", NOTEBOOK, "--group", BROKEN,
        "--report-dir", str(report_dir), "--pipeline-root", str(tmp_path / "root"),
    )  # fmt: skip
    assert code == 1
    (run_dir,) = (tmp_path / "root").iterdir()
    # Both groups ran (in the ParallelFor), the merge wrote the reports, the verdict failed.
    assert len(list(run_dir.glob("for-loop-1-iteration-*/run-feature-group/cucumber_json"))) == 2
    assert "| scenarios | 2 | 1 | 1 | 0 |" in (report_dir / "summary.md").read_text()
    html = (report_dir / "report.html").read_text()
    assert "no-such-job.yaml: no such file or directory" in html
    assert "Kubeflow Pipelines" in html  # the environment says where it ran
    assert not (run_dir / "check-verdict" / "executor_output.json").exists()


def test_submit_to_an_unreachable_host_is_one_line(free_port):
    port = free_port()  # nothing listens there
    with pytest.raises(KfkitError) as raised:
        cli("submit", "--host", f"http://127.0.0.1:{port}", "--experiment", "checks")
    (line,) = raised.value.lines()
    assert line.startswith(f"--host http://127.0.0.1:{port}: cannot submit the pipeline: ")
