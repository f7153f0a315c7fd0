"""runAsUser/runAsGroup/runAsNonRoot/fsGroup in the process runtime, as the kubelet applies them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kfkit.backends.local import LocalBackend, security
from kfkit.backends.local.config import load_config
from kfkit.backends.local.launch import plan_job
from kfkit.backends.local.state import JobDir
from kfkit.errors import ValidationError
from kfkit.jobs.load import load_jobs

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")

REPORT = """
    import json, os
    for variable in ("SCRATCH", "DATA"):
        with open(os.path.join(os.environ[variable], "made"), "w") as out:
            out.write("x")
    print(json.dumps({
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": sorted(os.getgroups()),
        "scratch": os.stat(os.path.join(os.environ["SCRATCH"], "made")).st_gid,
        "data": os.stat(os.path.join(os.environ["DATA"], "made")).st_gid,
    }))
    """


def secure_job(
    name: str, pod_context: dict[str, Any], container_context: dict[str, Any] | None = None
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "pytorch",
        "image": "kfkit/test:1",
        "command": ["python", "-c", textwrap.dedent(REPORT)],
        "env": [{"name": "SCRATCH", "value": "/scratch"}, {"name": "DATA", "value": "/data"}],
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "data", "mountPath": "/data"},
        ],
    }
    if container_context is not None:
        container["securityContext"] = container_context
    pod = {
        "securityContext": pod_context,
        "containers": [container],
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
        ],
    }
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "restartPolicy": "Never", "template": {"spec": pod}}
            }
        },
    }


def plan(write_manifest, doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    job = load_jobs([write_manifest(doc)])[0]
    return plan_job(job, load_config(), JobDir(job.namespace, job.name), os.getcwd())


@pytest.fixture
def reachable_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A $KFKIT_HOME another user can reach (pytest's own temporary directories are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="kfkit-runas-"))
    base.chmod(0o755)
    # Replicas start in the current directory: one the pod's user can enter too,
    # wherever the checkout lies (a clone under `mktemp -d` is 0700).
    monkeypatch.chdir(base)
    monkeypatch.setenv("KFKIT_HOME", str(base / "home"))
    monkeypatch.delenv("KFKIT_CONFIG", raising=False)
    monkeypatch.delenv("KFKIT_PODDEFAULTS", raising=False)
    yield base / "home"
    shutil.rmtree(base, ignore_errors=True)


def interpreter_for_anyone() -> str:
    """A Python any user can run (kfkit's own may live under a private home)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", sys.executable):
        target = Path(os.path.realpath(candidate))
        if target.exists() and security.can_reach(target, security.RunAs(user=1000)) is None:
            return candidate
    pytest.skip("no Python interpreter on this machine that uid 1000 can run")


@as_root
@pytest.mark.integration
def test_replicas_run_as_the_pods_user_groups_and_fs_group(reachable_home, write_manifest):
    reachable_home.mkdir()
    (reachable_home / "config.yaml").write_text(
        f'images:\n  "kfkit/test:*": {{python: {interpreter_for_anyone()}}}\n'
    )
    pod_context = {
        "runAsUser": 1000,
        "runAsGroup": 3000,
        "fsGroup": 2000,
        "supplementalGroups": [4000],
        "runAsNonRoot": True,
    }
    doc = secure_job("asuser", pod_context, {"runAsUser": 1001})  # the container's wins
    backend = LocalBackend()
    backend.submit(load_jobs([write_manifest(doc)])[0])
    record = backend.wait("asuser", timeout=120)
    lines = [line for _, line in backend.logs("asuser")]
    assert record.status.succeeded, (record.status.conditions, lines)
    seen = json.loads(lines[-1])
    assert record.replicas["master-0"]["reason"] == "Completed"
    assert seen == {"uid": 1001, "gid": 3000, "groups": [2000, 4000], "scratch": 2000, "data": 2000}
    scratch = backend._dir("asuser", "default").volume_dir("master-0", "scratch")
    assert scratch.stat().st_mode & 0o7777 == 0o2777  # emptyDir 0777, setgid for the fsGroup
    log = backend._dir("asuser", "default").log_file("master-0")
    assert log.stat().st_mode & 0o777 == 0o600  # a log may hold secrets: owner-only


@as_root
def test_run_as_non_root_is_refused_as_the_kubelet_does(kfkit_home, write_manifest) -> None:
    with pytest.raises(ValidationError) as explicit:
        plan(write_manifest, secure_job("root", {"runAsNonRoot": True, "runAsUser": 0}))
    assert "container's runAsUser breaks non-root policy" in str(explicit.value)
    with pytest.raises(ValidationError) as implicit:
        plan(write_manifest, secure_job("image", {}, {"runAsNonRoot": True}))
    assert "container has runAsNonRoot and image will run as root" in str(implicit.value)
    assert 'pod: "default/image-master-0", container: pytorch' in str(implicit.value)
    template = secure_job("fine", {"runAsNonRoot": True, "runAsUser": 54321})["spec"][
        "pytorchReplicaSpecs"
    ]["Master"]["template"]
    template["metadata"] = {"name": "fine-master-0", "namespace": "default"}
    run_as, problems, _ = security.resolve_run_as(template, template["spec"]["containers"][0], "c")
    assert problems == [] and run_as.user == 54321 and run_as.group == 0


@as_root
def test_run_as_non_root_through_the_cli_is_one_line_and_starts_nothing(
    kfkit_home, write_manifest
) -> None:
    path = write_manifest(secure_job("cli-root", {"runAsNonRoot": True}))
    result = subprocess.run(
        [sys.executable, "-m", "kfkit.cli.main", "run", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "runAsNonRoot: container has runAsNonRoot and image will run as root" in result.stderr
    assert not (kfkit_home / "jobs").exists()


@as_root
def test_directories_the_user_cannot_reach(kfkit_home, write_manifest) -> None:
    # pytest's temporary directories are 0700: uid 1000 cannot reach a $KFKIT_HOME there.
    launches, notes = plan(write_manifest, secure_job("far", {"runAsUser": 1000}))
    assert launches["master-0"].user is None  # it runs as kfkit's user, and that is said
    assert any(n.startswith("runAsUser 1000 is not enforced locally: ") for n in notes), notes
    kfkit_home.mkdir(parents=True, exist_ok=True)
    (kfkit_home / "config.yaml").write_text("enforceRunAs: true\n")
    with pytest.raises(ValidationError) as raised:
        plan(write_manifest, secure_job("far", {"runAsUser": 1000}))
    problems = raised.value.lines()
    assert any(".volumeMounts[/scratch]: runAsUser 1000 cannot reach" in p for p in problems)


def test_without_root_the_settings_are_noted_not_enforced(
    kfkit_home, write_manifest, monkeypatch
) -> None:
    monkeypatch.setattr(security.os, "geteuid", lambda: 1234)
    launches, notes = plan(write_manifest, secure_job("noroot", {"runAsUser": 1000}))
    assert launches["master-0"].user is None
    assert (
        "runAsUser/runAsGroup/fsGroup are not enforced locally: kfkit is not running as root, "
        "so replicas run as uid 1234"
    ) in notes
    # runAsNonRoot holds without root too: the replica runs as uid 1234.
    plan(write_manifest, secure_job("nonroot", {"runAsNonRoot": True}))
