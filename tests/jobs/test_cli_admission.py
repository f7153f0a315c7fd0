"""Admission warnings on the command line, and what is admitted but cannot run locally."""

from __future__ import annotations

import subprocess
import sys

KFKIT = [sys.executable, "-m", "kfkit.cli.main"]


def _job(build, **spec):
    doc = build.pytorch_job("warned", workers=1, **spec)
    for replica in doc["spec"]["pytorchReplicaSpecs"].values():
        replica["template"]["spec"]["containers"][0]["command"] = ["python", "-c", "pass"]
    return doc


def test_validate_prints_webhook_warnings_and_exits_0(kfkit_home, build, write_manifest) -> None:
    doc = _job(build, elasticPolicy={"nProcPerNode": 2})
    path = write_manifest(doc)
    result = subprocess.run([*KFKIT, "validate", "-f", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"Warning: {path}: spec.elasticPolicy.nProcPerNode is deprecated, use "
        "spec.nprocPerNode instead"
    ]
    assert "is valid" in result.stdout


def test_run_refuses_what_cannot_run_locally_and_says_why(
    kfkit_home, build, write_manifest
) -> None:
    doc = _job(build)
    doc["spec"]["pytorchReplicaSpecs"]["Worker"]["restartPolicy"] = "Sometimes"
    path = write_manifest(doc)
    on_cluster = [*KFKIT, "validate", "--backend", "kubernetes", "-f", str(path)]
    validate = subprocess.run(on_cluster, capture_output=True, text=True)
    assert validate.returncode == 0  # a cluster admits the job ...
    assert "Warning:" in validate.stderr and "restartPolicy: 'Sometimes'" in validate.stderr
    run = subprocess.run([*KFKIT, "run", "-f", str(path)], capture_output=True, text=True)
    assert run.returncode == 2  # ... but its pods cannot run
    local = subprocess.run([*KFKIT, "validate", "-f", str(path)], capture_output=True, text=True)
    assert (local.returncode, local.stderr) == (2, run.stderr)  # and validate says so too
    lines = run.stderr.splitlines()
    assert lines[0].startswith(f"Warning: {path}: spec.pytorchReplicaSpecs[Worker].restartPolicy")
    assert lines[-1] == (
        f"{path}: spec.pytorchReplicaSpecs[Worker].restartPolicy: 'Sometimes' cannot run: a "
        "cluster's API server refuses pods with it (the operator knows Always, OnFailure, "
        "Never, ExitCode)"
    )
    assert "Traceback" not in run.stderr
    assert not (kfkit_home / "jobs").exists()


def test_a_job_without_replicas_is_admitted_but_not_run(kfkit_home, build, write_manifest) -> None:
    doc = build.tf_job("empty", Worker=0)
    doc["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"] = [
        "python"
    ]
    path = write_manifest(doc)
    on_cluster = [*KFKIT, "validate", "--backend", "kubernetes", "-f", str(path)]
    assert subprocess.run(on_cluster, capture_output=True).returncode == 0
    for verb in ("run", "validate"):  # the local backend's validate makes run's checks
        result = subprocess.run([*KFKIT, verb, "-f", str(path)], capture_output=True, text=True)
        assert result.returncode == 2
        assert "the job has no replicas, so there is nothing to run" in result.stderr
