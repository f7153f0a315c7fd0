"""What ``kfkit verify`` prints into a log, and how steps edit a plan's manifest."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from kfkit.verify.jobs import JobPlan, unshared
from kfkit.verify.suite import radish_command

from .conftest import DEMO, REPO


def test_each_step_is_printed_once_into_a_log(tmp_path: Path) -> None:
    command = radish_command([DEMO / "demo.feature"], DEMO, tmp_path / "c.json", None, {})
    # stdout is a pipe here, as in CI: radish cannot overwrite a line, so must write it once.
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.stdout.count("Then the result is 8") == 1, done.stdout
    assert done.stdout.count("features (") == 1


def test_trainer_arguments_are_added_once_per_replica_with_shared_templates(
    tmp_path: Path,
) -> None:
    manifest = yaml.safe_load(
        """
kind: TFJob
metadata: {name: anchored}
spec:
  tfReplicaSpecs:
    PS: {replicas: 1, template: &pod {spec: {containers: [{name: tensorflow, args: [--a]}]}}}
    Worker: {replicas: 2, template: *pod}
    Chief: {replicas: 1, template: *pod}
"""
    )
    plan = JobPlan(unshared(manifest), "anchored.yaml")
    plan.add_args("--epochs 1")
    for spec in manifest["spec"]["tfReplicaSpecs"].values():
        assert spec["template"]["spec"]["containers"][0]["args"] == ["--a"]  # not touched
    for spec in plan.replica_specs().values():
        assert spec["template"]["spec"]["containers"][0]["args"] == ["--a", "--epochs", "1"]


def test_verify_on_kubernetes_without_a_cluster_is_one_preflight_error(
    tmp_path: Path, free_port, capsys
) -> None:
    from kfkit.cli.main import main

    kubeconfig = tmp_path / "kubeconfig"
    cluster = {"server": f"https://127.0.0.1:{free_port()}"}
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "gone", "cluster": cluster}],
                "users": [{"name": "me", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "me"}}],
                "current-context": "gone",
            }
        )
    )
    reports = tmp_path / "reports"
    code = main(
        ["verify", "--target", "kubernetes", "--suite-dir", str(REPO), "--report-dir",
         str(reports), "-u", f"kubeconfig={kubeconfig}"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("--target kubernetes: ")
    assert "cannot reach the Kubernetes API server" in err[0]
    assert not reports.exists()  # no scenario ran, nothing was written


@pytest.mark.integration
def test_ctrl_c_stops_the_running_job_and_still_writes_the_report(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    feature = REPO / "tests" / "verify" / "interrupt" / "interrupted.feature"
    command = [sys.executable, "-m", "kfkit.cli.main", "verify", str(feature)]
    command += ["--suite-dir", str(REPO), "--report-dir", str(reports)]
    cli = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jobs = reports / "work" / "kfkit-home" / "jobs" / "default"
    deadline = time.monotonic() + 120
    log = None
    while time.monotonic() < deadline and log is None:
        time.sleep(0.2)
        log = next(jobs.glob("sleeper-*/logs/master-0.log"), None) if jobs.is_dir() else None
        if log is not None and "sleeping" not in log.read_text():
            log = None
    assert log is not None, "the job never started"
    job_dir = log.parent.parent
    # The guardian records itself and the supervisor (each pid with its start time).
    recorded = job_dir / "supervisor.json"
    while time.monotonic() < deadline and not recorded.is_file():
        time.sleep(0.2)
    supervisor = int(json.loads(recorded.read_text())["supervisor"]["pid"])
    cli.send_signal(signal.SIGINT)
    _out, err = cli.communicate(timeout=180)
    assert cli.returncode == 130, err
    assert "verification interrupted" in err and "Traceback" not in err
    assert not psutil.pid_exists(supervisor) or (
        psutil.Process(supervisor).status() == psutil.STATUS_ZOMBIE
    )
    features = json.loads((reports / "cucumber.json").read_text())
    first, second = features[0]["elements"]
    statuses = [step["result"]["status"] for step in first["steps"]]
    assert statuses == ["passed", "failed", "skipped"]
    assert "interrupted by the user" in first["steps"][1]["result"]["error_message"]
    assert {step["result"]["status"] for step in second["steps"]} == {"skipped"}
    assert (reports / "report.html").is_file()
