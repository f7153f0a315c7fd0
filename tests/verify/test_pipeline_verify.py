"""The verification pipeline: compiled YAML up to date, and local runs end to end with kfp.local.

The `container` tests run every component in the kit image with podman, as Kubeflow
Pipelines would: they build the image when its context changed (``make images``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from kfkit.cli import pipeline as pipeline_cli
from kfkit.containers import podman
from kfkit.containers.images import IMAGES
from kfkit.errors import KfkitError
from kfkit.verify.pipeline import (
    COMPILED_NAME,
    compile_pipeline,
    compiled_images,
    load_pipeline_module,
)
from kfkit.verify.pipeline_containers import RUN_LABEL, task_path

from .conftest import REPO

HELM = "features/helm_configuration.feature"
NOTEBOOK = "features/notebook_poddefault.feature"
BUILDER = "features/container_builder.feature"
PYTORCH = "features/pytorch_mnist.feature"
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
    assert {e["container"]["image"] for e in executors.values()} == {IMAGES["kit"].name}
    # No pip install at start: the image has kfp, and kfp.local's DockerRunner would run
    # components that pip-install one at a time instead of the groups in parallel.
    for executor in executors.values():
        assert "pip install" not in " ".join(executor["container"]["command"])
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


def test_compiled_images_are_the_kit_image():
    images = compiled_images(load_pipeline_module(REPO))
    assert set(images) == {"exec-run-feature-group", "exec-merge-reports", "exec-check-verdict"}
    assert set(images.values()) == {"kfkit/kit:0.1.0"}


def test_task_path_comes_from_the_executor_input(tmp_path):
    output = tmp_path / "kfkit-verify-2026" / "for-loop-1-iteration-0" / "run-feature-group"
    executor_input = {"outputs": {"outputFile": str(output / "executor_output.json")}}
    command = ["sh", "-c", "...", "--executor_input", json.dumps(executor_input)]
    assert task_path(command, tmp_path) == "for-loop-1-iteration-0/run-feature-group"
    assert task_path(["sh", "-c", "true"], tmp_path) == "unknown-task"


def test_unknown_runner_is_refused(capsys):
    with pytest.raises(SystemExit) as raised:
        cli("run", "--local", "--runner", "docker")
    assert raised.value.code == 2
    assert "invalid choice: 'docker'" in capsys.readouterr().err


# --- every component in its container -------------------------------------------------------


@pytest.fixture
def podman_api():
    """podman can run containers here; afterwards nothing of a run is left behind."""
    problem = podman.available()
    if problem:
        pytest.skip(problem)
    os.environ.pop("DOCKER_HOST", None)  # kfkit starts its own podman service
    yield
    assert _leftovers() == {"containers": [], "services": [], "sockets": []}


def _leftovers() -> dict[str, list[str]]:
    containers = podman.podman(
        ["ps", "-a", "--filter", f"label={RUN_LABEL}", "--format", "{{.Names}}"]
    ).stdout.split()
    services = [
        " ".join(p.info["cmdline"] or [])
        for p in psutil.process_iter(["cmdline"])
        if "kfkit-docker-api-" in " ".join(p.info["cmdline"] or [])
    ]
    sockets = [str(p) for p in Path("/tmp").glob("kfkit-docker-api-*")]
    return {"containers": containers, "services": services, "sockets": sockets}


def _volumes() -> set[str]:
    return set(podman.podman(["volume", "ls", "--format", "{{.Name}}"]).stdout.split())


@pytest.mark.container
def test_container_run_passes_with_fast_groups(tmp_path, kfkit_home, podman_api):
    """Two fast groups, each in the kit image as its non-root user, in parallel."""
    volumes = _volumes()
    report_dir = tmp_path / "reports"
    code = cli(
        "run", "--local", "--runner", "container", "--group", NOTEBOOK, "--group", BUILDER,
        "--report-dir", str(report_dir), "--pipeline-root", str(tmp_path / "root"),
    )  # fmt: skip
    assert code == 0
    features = json.loads((report_dir / "cucumber.json").read_text())
    assert sorted(f["name"] for f in features) == [
        "Container builder",
        "Notebooks get the team's PodDefaults",
    ]
    assert "| scenarios | 2 | 2 | 0 | 0 |" in (report_dir / "summary.md").read_text()
    records = json.loads((report_dir / "components.json").read_text())
    image_id = podman.podman(["image", "inspect", "--format", "{{.Id}}", "kfkit/kit:0.1.0"])
    assert sorted(r["task"].rsplit("/", 1)[-1] for r in records) == [
        "check-verdict",
        "merge-reports",
        "run-feature-group",
        "run-feature-group",
    ]
    for record in records:
        assert record["image"] == "kfkit/kit:0.1.0"
        assert record["image_id"].removeprefix("sha256:") == image_id.stdout.strip()
        assert record["user"] == "1000:1000"
        assert record["exit_code"] == 0
    groups = [r for r in records if r["feature"]]
    assert sorted(r["feature"] for r in groups) == sorted([NOTEBOOK, BUILDER])
    first, second = sorted(groups, key=lambda r: r["started"])
    assert second["started"] < first["ended"], "the feature groups did not run in parallel"
    html = (report_dir / "report.html").read_text()
    assert html.count("kfkit/kit:0.1.0 [sha256:") == 4  # each component's image, in the report
    assert _volumes() == volumes


@pytest.mark.container
def test_component_failing_in_its_container_fails_the_run_with_its_log(
    tmp_path, kfkit_home, podman_api
):
    """The image carries the suite's features/, not the tests' ones: that group fails in it."""
    report_dir = tmp_path / "reports"
    code = cli(
        "run", "--local", "--runner", "container", "--tags", "", "--group", NOTEBOOK,
        "--group", BROKEN, "--report-dir", str(report_dir),
        "--pipeline-root", str(tmp_path / "root"),
    )  # fmt: skip
    assert code == 1
    records = json.loads((report_dir / "components.json").read_text())
    (failed,) = [r for r in records if r["exit_code"] != 0]
    assert failed["feature"] == BROKEN
    assert failed["exit_code"] == 1
    assert any("broken.feature" in line for line in failed["tail"])
    assert not any(r["task"].endswith("check-verdict") for r in records)  # the run stopped
    features = json.loads((report_dir / "cucumber.json").read_text())
    (component,) = [f for f in features if f["name"] == "Pipeline components"]
    (scenario,) = component["elements"]
    error = scenario["steps"][0]["result"]["error_message"]
    assert "exited 1 in kfkit/kit:0.1.0" in error
    assert "\n".join(failed["tail"][-5:]) in error
    html = (report_dir / "report.html").read_text()
    assert "exited 1 in kfkit/kit:0.1.0" in html


@pytest.mark.container
def test_ctrl_c_leaves_no_container_and_no_service(tmp_path, kfkit_home, podman_api):
    """Ctrl-C in a terminal reaches the whole process group while a component runs."""
    command = [
        sys.executable, "-m", "kfkit.cli.main", "pipeline", "--suite-dir", str(REPO), "run",
        "--local", "--runner", "container", "--group", PYTORCH,
        "--report-dir", str(tmp_path / "reports"), "--pipeline-root", str(tmp_path / "root"),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 300
        while not _leftovers()["containers"]:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "no component container started"
            time.sleep(0.5)
        time.sleep(2)  # the component is running
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, output.decode()
    assert b"removing the run's containers" in output
