"""The container runtime's pod semantics, on the base image (seconds per test).

Each job runs through `kfkit run --runtime container` (or KFKIT_RUNTIME), and every test
checks that no pod, container or network of the job is left in podman afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import kfkit, leftovers, wait_for_no_leftovers, write_job

pytestmark = pytest.mark.container


def pytorchjob(
    name: str, master: dict[str, Any], worker: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    replicas: dict[str, Any] = {
        "Master": {"replicas": 1, "restartPolicy": "Never", "template": {"spec": master}}
    }
    if worker is not None:
        replicas["Worker"] = {"replicas": 1, "restartPolicy": "Never", "template": {"spec": worker}}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"runPolicy": {"backoffLimit": 0, **spec}, "pytorchReplicaSpecs": replicas},
    }


def python(code: str, image: str, **container: Any) -> dict[str, Any]:
    return {"name": "pytorch", "image": image, "command": ["python", "-c", code], **container}


def replicas(home: Path, name: str) -> dict[str, Any]:
    return json.loads((home / "jobs" / "default" / name / "replicas.json").read_text())


def logs(name: str) -> str:
    return kfkit("logs", name).stdout


MASTER = """
import os, socket
print("MASTER_ADDR=" + os.environ["MASTER_ADDR"], "MASTER_PORT=" + os.environ["MASTER_PORT"])
print("init says", open("/work/init.txt").read().strip())
server = socket.create_server(("0.0.0.0", int(os.environ["MASTER_PORT"])))
peer, _ = server.accept()
print("master got", peer.recv(64).decode(), flush=True)
print("sidecar wrote", open("/work/sidecar.txt").read().strip(), flush=True)
"""
WORKER = """
import os, socket, time
for _ in range(300):
    try:
        conn = socket.create_connection((os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])))
        break
    except OSError:
        time.sleep(0.1)
conn.sendall(("rank " + os.environ["RANK"] + " from " + socket.gethostname()).encode())
"""


def test_init_container_sidecar_and_cluster_dns(
    base_image: str, container_home: Path, tmp_path: Path, cleanup_label: list[str]
) -> None:
    cleanup_label.append("default/pods")
    work = {"name": "work", "mountPath": "/work"}
    master = {
        "initContainers": [
            {
                "name": "init",
                "image": base_image,
                "volumeMounts": [work],
                "command": ["sh", "-c", "echo from-init > /work/init.txt"],
            }
        ],
        "containers": [
            python(MASTER, base_image, volumeMounts=[work]),
            {
                "name": "sidecar",
                "image": base_image,
                "volumeMounts": [work],
                "command": ["sh", "-c", "echo from-sidecar > /work/sidecar.txt; sleep 600"],
            },
        ],
        "volumes": [{"name": "work", "emptyDir": {}}],
    }
    worker = {"containers": [python(WORKER, base_image)]}
    result = kfkit(
        "run",
        "-f",
        str(write_job(tmp_path, pytorchjob("pods", master, worker))),
        "--runtime",
        "container",
        "--timeout",
        "300",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = logs("pods")
    # Exactly what the operator writes on a cluster: the master's pod name and port.
    assert "MASTER_ADDR=pods-master-0 MASTER_PORT=23456" in text
    assert "init says from-init" in text
    assert "master got rank 1 from pods-worker-0" in text
    assert "sidecar wrote from-sidecar" in text
    assert wait_for_no_leftovers("default/pods") == {}


def test_read_only_root_and_run_as_user(
    base_image: str, container_home: Path, tmp_path: Path, cleanup_label: list[str]
) -> None:
    cleanup_label.append("default/secure")
    code = """
import os
print("uid", os.getuid(), "gid", os.getgid(), "groups", sorted(os.getgroups()))
open("/data/ok.txt", "w").write("ok")
try:
    open("/rootfs.txt", "w")
    print("root filesystem writable")
except OSError as error:
    print("root filesystem refused:", error.strerror)
"""
    master = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 2000,
        },
        "containers": [
            python(
                code,
                base_image,
                securityContext={
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                volumeMounts=[{"name": "data", "mountPath": "/data"}],
            )
        ],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "secure-data"}}],
    }
    result = kfkit(
        "run", "-f", str(write_job(tmp_path, pytorchjob("secure", master))), "--timeout", "300"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = logs("secure")
    assert "uid 1000 gid 1000 groups [1000, 2000]" in text
    assert "root filesystem refused: Read-only file system" in text
    assert (container_home / "volumes/default/secure-data/ok.txt").read_text() == "ok"
    assert wait_for_no_leftovers("default/secure") == {}


def test_run_as_non_root_is_refused_for_a_root_image(
    base_image: str, container_home: Path, tmp_path: Path
) -> None:
    master = {
        "securityContext": {"runAsNonRoot": True},
        "containers": [python("print('ran')", base_image)],
    }
    result = kfkit("run", "-f", str(write_job(tmp_path, pytorchjob("rootimage", master))))
    assert result.returncode == 2
    assert "runAsNonRoot and image will run as root" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (container_home / "jobs" / "default" / "rootimage").exists()
    assert leftovers("default/rootimage") == {}


def test_memory_limit_kills_with_137_oomkilled(
    base_image: str, container_home: Path, tmp_path: Path, cleanup_label: list[str]
) -> None:
    cleanup_label.append("default/oom")
    hog = "blocks = [bytearray(16 << 20) for _ in range(64)]\nprint('survived')"
    master = {
        "containers": [
            python(hog, base_image, resources={"limits": {"memory": "64Mi", "cpu": "1"}})
        ]
    }
    result = kfkit(
        "run", "-f", str(write_job(tmp_path, pytorchjob("oom", master))), "--timeout", "300"
    )
    assert result.returncode != 0
    master_status = replicas(container_home, "oom")["master-0"]
    assert (master_status["exitCode"], master_status["reason"]) == (137, "OOMKilled")
    assert "survived" not in logs("oom")
    assert wait_for_no_leftovers("default/oom") == {}


def test_image_entrypoint_runs_when_the_container_sets_only_args(
    base_image: str, container_home: Path, tmp_path: Path, cleanup_label: list[str]
) -> None:
    cleanup_label.append("default/entry")
    # The base's CMD is python3; args replace it, and $(VAR) expands from the container env.
    master = {
        "containers": [
            {
                "name": "pytorch",
                "image": base_image,
                "env": [{"name": "GREETING", "value": "hello"}],
                "args": ["python3", "-c", "print('$(GREETING) from args')"],
            }
        ]
    }
    result = kfkit(
        "run", "-f", str(write_job(tmp_path, pytorchjob("entry", master))), "--timeout", "300"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello from args" in logs("entry")


@pytest.mark.parametrize("how", ["delete", "kill-supervisor"])
def test_nothing_is_left_after_delete_or_a_killed_supervisor(
    how: str, base_image: str, container_home: Path, tmp_path: Path, cleanup_label: list[str]
) -> None:
    name = f"left-{how}"
    cleanup_label.append(f"default/{name}")
    sleeper = {
        "containers": [python("import time; print('up', flush=True); time.sleep(600)", base_image)]
    }
    manifest = pytorchjob(name, sleeper, sleeper)
    result = kfkit("run", "-f", str(write_job(tmp_path, manifest)), "--detach")
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 120
    while logs(name).count("up") < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(leftovers(f"default/{name}").get("pod", [])) == 2
    if how == "delete":
        assert kfkit("delete", "job", name).returncode == 0
    else:
        pid = int((container_home / "jobs" / "default" / name / "supervisor.pid").read_text())
        os.kill(pid, signal.SIGKILL)
    assert wait_for_no_leftovers(f"default/{name}", timeout=90) == {}


def test_a_job_of_the_same_name_in_another_namespace_is_refused_while_it_runs(
    base_image: str, container_home: Path, tmp_path: Path, cleanup_label: list[str]
) -> None:
    cleanup_label.append("default/twin")
    sleeper = {"containers": [python("import time; time.sleep(600)", base_image)]}
    first = pytorchjob("twin", sleeper)
    assert kfkit("run", "-f", str(write_job(tmp_path, first)), "--detach").returncode == 0
    deadline = time.monotonic() + 120
    while not leftovers("default/twin").get("pod") and time.monotonic() < deadline:
        time.sleep(0.5)
    second = pytorchjob("twin", sleeper)
    second["metadata"]["namespace"] = "team"
    result = kfkit("run", "-f", str(write_job(tmp_path, second, "second.yaml")), "--detach")
    assert result.returncode == 2
    assert "pod twin-master-0 already runs for job default/twin" in result.stderr
    assert leftovers("team/twin") == {}
    assert kfkit("delete", "job", "twin").returncode == 0
    assert wait_for_no_leftovers("default/twin") == {}
