"""Mount paths are rewritten only in the user's strings, never in kfkit's own interpreter
or environment: a checkout (and its venv) under a mounted directory still runs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from kfkit.backends.local import LocalBackend
from kfkit.backends.local.config import load_config
from kfkit.backends.local.launch import plan_job
from kfkit.backends.local.state import JobDir
from kfkit.jobs.load import load_jobs

# The directory holding the interpreter's venv (for /tmp/clone/.venv/bin/python: /tmp/clone),
# and the one above it: an emptyDir mounted at either used to swallow the interpreter.
VENV_HOME = Path(sys.executable).parent.parent.parent
SHOW = (
    "import json, os, sys; "
    "print(json.dumps({'python': sys.executable, 'argv': sys.argv[1:], "
    "'env': os.environ['USER_PATH'], 'inherited': os.environ.get('PATH', '')}))"
)


def mounted_at(mount_path: str, name: str = "shadow") -> dict[str, Any]:
    container = {
        "name": "pytorch",
        "image": "kfkit/test:1",
        "command": ["python", "-c", SHOW],
        "args": [f"{mount_path}/out", f"--dir={mount_path}"],
        "env": [{"name": "USER_PATH", "value": f"{mount_path}/data"}],
        "volumeMounts": [{"name": "shadow", "mountPath": mount_path}],
    }
    pod = {"containers": [container], "volumes": [{"name": "shadow", "emptyDir": {}}]}
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


@pytest.mark.parametrize("mount_path", [str(VENV_HOME), str(VENV_HOME.parent)])
def test_the_interpreter_under_a_mount_path_is_never_rewritten(
    kfkit_home, write_manifest, monkeypatch, mount_path
) -> None:
    # The user's shell environment also points under the mount (PATH holds the venv).
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    job = load_jobs([write_manifest(mounted_at(mount_path))])[0]
    launches, _ = plan_job(job, load_config(), JobDir(job.namespace, job.name), os.getcwd())
    launch = launches["master-0"]
    local = str(JobDir("default", "shadow").volume_dir("master-0", "shadow"))
    assert launch.argv[0] == sys.executable
    assert launch.argv[3:] == [f"{local}/out", f"--dir={local}"]
    assert launch.env["USER_PATH"] == f"{local}/data"
    assert launch.env["PATH"] == os.environ["PATH"]  # kfkit's environment, not the user's strings
    assert launch.cwd == os.getcwd()


@pytest.mark.integration
def test_a_job_runs_from_a_checkout_under_its_own_mount(kfkit_home, write_manifest) -> None:
    # As a clone under /tmp running manifests that mount an emptyDir at /tmp.
    backend = LocalBackend()
    backend.submit(load_jobs([write_manifest(mounted_at(str(VENV_HOME)))])[0])
    record = backend.wait("shadow", timeout=120)
    lines = [line for _, line in backend.logs("shadow")]
    assert record.status.succeeded, (record.status.conditions, lines)
    seen = json.loads(lines[-1])
    local = str(backend._dir("shadow", "default").volume_dir("master-0", "shadow"))
    assert seen["python"] == sys.executable
    assert seen["argv"] == [f"{local}/out", f"--dir={local}"]
    assert seen["env"] == f"{local}/data"
