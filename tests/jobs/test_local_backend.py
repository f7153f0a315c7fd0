"""The local backend with real processes: restart policies, limits, cleanup, the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from kfkit.backends.local import LocalBackend
from kfkit.jobs.load import load_jobs

pytestmark = pytest.mark.integration
KFKIT = [sys.executable, "-m", "kfkit.cli.main"]


def script_pod(container: str, code: str, **container_fields: Any) -> dict[str, Any]:
    pod_fields = container_fields.pop("pod", {})
    spec = {
        "name": container,
        "image": "kfkit/test:1",
        "command": ["python", "-c", textwrap.dedent(code)],
        **container_fields,
    }
    return {"spec": {"containers": [spec], **pod_fields}}


def replica(container: str, code: str, replicas: int = 1, policy: str = "Never", **fields: Any):
    return {
        "replicas": replicas,
        "restartPolicy": policy,
        "template": script_pod(container, code, **fields),
    }


def pytorch(name: str, port: int, master: dict, worker: dict | None = None, **spec: Any) -> dict:
    for replica_spec in (master, worker):
        if replica_spec:
            replica_spec["template"]["spec"]["containers"][0]["ports"] = [
                {"name": "pytorchjob-port", "containerPort": port}
            ]
    specs = {"Master": master} | ({"Worker": worker} if worker else {})
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": specs, **spec},
    }


def tfjob(name: str, specs: dict, **spec: Any) -> dict:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {"tfReplicaSpecs": specs, **spec},
    }


def run(write_manifest, doc: dict, timeout: float = 120) -> Any:
    backend = LocalBackend()
    job = load_jobs([write_manifest(doc)])[0]
    backend.submit(job)
    return backend.wait(job.name, job.namespace, timeout=timeout)


def settle(name: str, timeout: float = 60) -> Any:
    """The job once no replica is running any more (the job may finish before its workers)."""
    deadline = time.monotonic() + timeout
    while True:
        record = LocalBackend().get(name)
        if not replica_pids(record) or time.monotonic() > deadline:
            return record
        time.sleep(0.2)


def replica_pids(record) -> list[int]:
    return [s["pid"] for s in record.replicas.values() if s.get("pid")]


SMOKE = (
    "import sys; from kfkit.training.smoke import main; "
    "sys.exit(main(['--expect-world-size', '3']))"
)


def test_pytorch_master_and_two_workers_all_reduce(kfkit_home, write_manifest, free_port) -> None:
    doc = pytorch(
        "allreduce",
        free_port(),
        replica("pytorch", SMOKE),
        replica("pytorch", SMOKE, replicas=2),
    )
    record = run(write_manifest, doc)
    assert record.status.succeeded, record.status.raw
    record = settle("allreduce")
    assert record.status.replica_statuses == {
        "Master": {"active": 0, "succeeded": 1, "failed": 0},
        "Worker": {"active": 0, "succeeded": 2, "failed": 0},
    }
    logs = list(LocalBackend().logs("allreduce"))
    passed = {r for r, line in logs if line == "smoke test passed"}
    assert passed == {"master-0", "worker-0", "worker-1"}
    ranks = {line.split()[0] for r, line in logs if line.startswith("rank=")}
    assert ranks == {"rank=0", "rank=1", "rank=2"}
    assert [c["type"] for c in record.status.conditions] == ["Created", "Running", "Succeeded"]
    assert record.status.condition("Running")["status"] == "False"


TF_STEP = """
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    w = tf.Variable(1.0)
@tf.function
def step():
    def replica_step():
        with tf.GradientTape() as tape:
            loss = (w * 3.0 - 6.0) ** 2
        grad = tape.gradient(loss, w)
        return tf.distribute.get_replica_context().all_reduce("sum", grad)
    return strategy.run(replica_step)
total = step()
task = json.loads(os.environ["TF_CONFIG"])["task"]
workers = strategy.num_replicas_in_sync
print(f"task={task['type']}-{task['index']} workers={workers} grad={float(total)}")
"""


def test_tfjob_two_workers_take_a_real_step(kfkit_home, write_manifest) -> None:
    record = run(
        write_manifest, tfjob("tfstep", {"Worker": replica("tensorflow", TF_STEP, 2)}), 240
    )
    assert record.status.succeeded, list(LocalBackend().logs("tfstep"))
    lines = [line for _, line in LocalBackend().logs("tfstep") if line.startswith("task=")]
    # d/dw (3w - 6)^2 at w=1 is -18 on each worker; summed over 2 workers: -36.
    assert sorted(lines) == [
        "task=worker-0 workers=2 grad=-36.0",
        "task=worker-1 workers=2 grad=-36.0",
    ]


EXIT_ONCE = """
import os, pathlib, sys
marker = pathlib.Path(os.environ["MARKER"])
if not marker.exists():
    marker.write_text("first run")
    sys.exit({code})
print("second run")
"""


def test_exit_code_policy_restarts_retryable_exit(
    kfkit_home, write_manifest, free_port, tmp_path
) -> None:
    env = [{"name": "MARKER", "value": str(tmp_path / "marker")}]
    master = replica("pytorch", EXIT_ONCE.format(code=137), policy="ExitCode", env=env)
    record = run(write_manifest, pytorch("retry", free_port(), master))
    assert record.status.succeeded
    assert record.replicas["master-0"]["restarts"] == 1
    assert record.status.condition("Restarting") is not None
    assert "exited with code 137" in record.status.condition("Restarting")["message"]


def test_exit_code_policy_fails_on_permanent_exit(
    kfkit_home, write_manifest, free_port, tmp_path
) -> None:
    env = [{"name": "MARKER", "value": str(tmp_path / "marker")}]
    master = replica("pytorch", EXIT_ONCE.format(code=1), policy="ExitCode", env=env)
    record = run(write_manifest, pytorch("permanent", free_port(), master))
    assert record.status.is_true("Failed")
    assert record.replicas["master-0"]["restarts"] == 0
    assert record.replicas["master-0"]["exitCode"] == 1


def test_backoff_limit_exhausted(kfkit_home, write_manifest, free_port) -> None:
    master = replica("pytorch", "import sys; sys.exit(3)", policy="OnFailure")
    doc = pytorch("backoff", free_port(), master, runPolicy={"backoffLimit": 1})
    record = run(write_manifest, doc)
    assert record.status.is_true("Failed")
    assert "backoff limit (1)" in record.status.condition("Failed")["message"]
    assert record.replicas["master-0"]["restarts"] == 2


def test_active_deadline_stops_the_job(kfkit_home, write_manifest, free_port) -> None:
    master = replica("pytorch", "import time; time.sleep(300)")
    doc = pytorch("deadline", free_port(), master, runPolicy={"activeDeadlineSeconds": 2})
    started = time.monotonic()
    record = run(write_manifest, doc)
    assert time.monotonic() - started < 30
    assert record.status.is_true("Failed")
    assert "deadline (2s)" in record.status.condition("Failed")["message"]
    assert not replica_pids(record)


STUBBORN_PS = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)   # like a parameter server blocked in join()
print("serving", flush=True)
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize("policy", ["Running", "None"])
def test_clean_pod_policy_and_sigkill_escalation(kfkit_home, write_manifest, policy) -> None:
    specs = {
        "PS": replica("tensorflow", STUBBORN_PS, pod={"terminationGracePeriodSeconds": 1}),
        "Worker": replica("tensorflow", "import time; time.sleep(2); print('done')"),
    }
    doc = tfjob(f"ps-{policy.lower()}", specs, runPolicy={"cleanPodPolicy": policy})
    record = run(write_manifest, doc)
    assert record.status.succeeded  # worker-0 succeeded: the TFJob succeeds without a chief
    time.sleep(1.5)
    record = LocalBackend().get(doc["metadata"]["name"])
    ps = record.replicas["ps-0"]
    if policy == "Running":
        assert ps["phase"] == "Failed" and ps["reason"] == "Stopped" and ps["pid"] is None
        assert ps["exitCode"] == 128 + signal.SIGKILL  # it ignored SIGTERM
    else:
        assert ps["phase"] == "Running" and psutil.pid_exists(ps["pid"])
        LocalBackend().delete(doc["metadata"]["name"])
        time.sleep(0.2)
        assert not psutil.pid_exists(ps["pid"]) or psutil.Process(ps["pid"]).status() == "zombie"


def test_master_failing_at_once_fails_the_job_instead_of_hanging(
    kfkit_home, write_manifest, free_port
) -> None:
    doc = pytorch(
        "fast-fail",
        free_port(),
        replica("pytorch", "import sys; print('cannot bind'); sys.exit(1)"),
        replica("pytorch", "import time; time.sleep(600)"),
        runPolicy={"cleanPodPolicy": "Running"},
    )
    started = time.monotonic()
    record = run(write_manifest, doc, timeout=60)
    assert time.monotonic() - started < 30
    assert record.status.is_true("Failed")
    time.sleep(0.5)
    assert LocalBackend().get("fast-fail").replicas["worker-0"]["pid"] is None


def test_busy_master_port_is_remapped_locally(kfkit_home, write_manifest, free_port) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        doc = pytorch(
            "busy-port",
            port,
            replica("pytorch", SMOKE.replace("'3'", "'2'")),
            replica("pytorch", SMOKE.replace("'3'", "'2'")),
        )
        record = run(write_manifest, doc)
    assert record.status.succeeded
    assert any(f"port {port} is in use" in e["message"] for e in record.events)


ENV_DUMP = "import json, os, sys; print(json.dumps({**os.environ, 'ARGV1': sys.argv[1]}))"


def test_replica_environment_limits_secrets_and_volumes(
    kfkit_home, write_manifest, free_port, tmp_path
) -> None:
    secret = kfkit_home / "secrets" / "default" / "test-secret" / "secret_key"
    secret.parent.mkdir(parents=True)
    secret.write_text("s3cr3t")
    fields = {
        "env": [
            {
                "name": "FROM_SECRET",
                "valueFrom": {"secretKeyRef": {"name": "test-secret", "key": "secret_key"}},
            },
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "DATA", "value": "/trainData/mnist"},
            {"name": "EARLIER", "value": "/trainData"},
            {"name": "EXPANDED", "value": "$(EARLIER)/x and rank-$(RANK)"},
        ],
        "args": ["rank-$(RANK)"],
        "resources": {"limits": {"cpu": "1500m", "memory": "2Gi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/trainData"}],
        "pod": {
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "mnist-data"}}]
        },
    }
    doc = pytorch("envdump", free_port(), replica("pytorch", ENV_DUMP, **fields))
    record = run(write_manifest, doc)
    assert record.status.succeeded
    env = json.loads(next(line for _, line in LocalBackend().logs("envdump")))
    assert env["FROM_SECRET"] == "s3cr3t"
    assert env["POD"] == "envdump-master-0"
    assert env["OMP_NUM_THREADS"] == "2" and env["TF_NUM_INTRAOP_THREADS"] == "2"
    # As on a cluster: env values see only earlier entries; command and args see everything.
    assert env["ARGV1"] == "rank-0"
    volume = kfkit_home / "volumes" / "default" / "mnist-data"
    assert env["DATA"] == f"{volume}/mnist" and volume.is_dir()
    assert env["EXPANDED"] == f"{volume}/x and rank-$(RANK)"
    assert env["MASTER_ADDR"] == "127.0.0.1" and env["WORLD_SIZE"] == "1"


def test_memory_limit_kills_like_the_oom_killer(kfkit_home, write_manifest, free_port) -> None:
    hog = "import time; blocks = [bytearray(64 << 20) for _ in range(8)]; time.sleep(30)"
    master = replica("pytorch", hog, resources={"limits": {"memory": "128Mi"}})
    record = run(write_manifest, pytorch("hog", free_port(), master))
    assert record.status.is_true("Failed")
    assert record.replicas["master-0"]["reason"] == "OOMKilled"
    assert record.replicas["master-0"]["exitCode"] == 137


def test_cli_rejects_bad_manifests_before_starting_anything(
    kfkit_home, write_manifest, free_port
) -> None:
    good = pytorch("good", free_port(), replica("pytorch", "print(1)"))
    bad = pytorch("bad", free_port(), replica("pytorch", "print(1)", replicas=2))
    path = write_manifest(good, bad)
    result = subprocess.run([*KFKIT, "run", "-f", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{path}[1]: spec.pytorchReplicaSpecs[Master].replicas: Forbidden: must be 1"
    )
    assert "Traceback" not in result.stderr
    assert not (kfkit_home / "jobs").exists()


def test_cli_missing_secret_is_a_user_error(kfkit_home, write_manifest, free_port) -> None:
    env = [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    path = write_manifest(pytorch("nosecret", free_port(), replica("pytorch", "print(1)", env=env)))
    result = subprocess.run([*KFKIT, "run", "-f", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "secret 'absent' key 'k' not found" in result.stderr
    assert not (kfkit_home / "jobs").exists()


def test_cli_run_exit_codes_and_verbs(kfkit_home, write_manifest, free_port) -> None:
    ok = write_manifest(
        pytorch("ok", free_port(), replica("pytorch", "print('hello')")), name="ok.yaml"
    )
    assert subprocess.run([*KFKIT, "run", "-f", str(ok)], capture_output=True).returncode == 0
    failing = pytorch("bad-exit", free_port(), replica("pytorch", "import sys; sys.exit(4)"))
    path = write_manifest(failing, name="fail.yaml")
    assert subprocess.run([*KFKIT, "run", "-f", str(path)], capture_output=True).returncode == 1
    listing = subprocess.run([*KFKIT, "get", "jobs"], capture_output=True, text=True).stdout
    assert "ok" in listing and "Succeeded" in listing and "Failed" in listing
    logs = subprocess.run([*KFKIT, "logs", "ok"], capture_output=True, text=True)
    assert logs.stdout == "hello\n"
    described = subprocess.run(
        [*KFKIT, "describe", "job", "bad-exit"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert "exited with code 4" in described.stdout
    missing = subprocess.run([*KFKIT, "logs", "nope"], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.strip() == "job default/nope not found"
    assert subprocess.run([*KFKIT, "delete", "job", "ok"], capture_output=True).returncode == 0
    assert not (kfkit_home / "jobs" / "default" / "ok").exists()


def test_ctrl_c_leaves_no_process_behind(kfkit_home, write_manifest, free_port) -> None:
    sleeper = "import time; print('up', flush=True); time.sleep(600)"
    doc = pytorch(
        "sleepy", free_port(), replica("pytorch", sleeper), replica("pytorch", sleeper, 2)
    )
    path = write_manifest(doc)
    cli = subprocess.Popen(
        [*KFKIT, "run", "-f", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    backend = LocalBackend()
    deadline = time.monotonic() + 60
    pids: list[int] = []
    while time.monotonic() < deadline and len(pids) < 3:
        time.sleep(0.2)
        try:
            pids = replica_pids(backend.get("sleepy"))
        except Exception:
            pids = []
    assert len(pids) == 3
    supervisor_file = backend._dir("sleepy", "default").supervisor_file
    supervisor = json.loads(supervisor_file.read_text())["supervisor"]["pid"]
    cli.send_signal(signal.SIGINT)
    assert cli.wait(timeout=60) == 130
    time.sleep(0.3)
    for pid in [*pids, supervisor]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    record = backend.get("sleepy")
    assert record.status.is_true("Failed")
    assert "stopped by the user" in record.status.condition("Failed")["message"]


def test_pod_defaults_hook_is_optional(kfkit_home) -> None:
    # Without a poddefaults directory configured, nothing is imported or applied.
    assert LocalBackend().config.poddefaults is None
    assert os.environ.get("KFKIT_HOME") == str(kfkit_home)
    assert Path(kfkit_home).name == "kfkit-home"


def test_pod_defaults_of_the_namespace_reach_the_replicas(
    kfkit_home, write_manifest, free_port, tmp_path
) -> None:
    poddefaults = tmp_path / "poddefaults"
    poddefaults.mkdir()
    (poddefaults / "team.yaml").write_text(
        """
apiVersion: kubeflow.org/v1alpha1
kind: PodDefault
metadata: {name: testing, namespace: default}
spec:
  desc: Testing settings
  selector:
    matchLabels: {training.kubeflow.org/replica-type: master}
  env:
    - {name: POD_DEFAULT, value: Testing is enabled}
---
apiVersion: kubeflow.org/v1alpha1
kind: PodDefault
metadata: {name: other-team, namespace: elsewhere}
spec:
  desc: Not ours
  selector: {matchLabels: {training.kubeflow.org/replica-type: master}}
  env: [{name: OTHER, value: "1"}]
"""
    )
    doc = pytorch("withdefaults", free_port(), replica("pytorch", ENV_DUMP, args=["x"]))
    backend = LocalBackend(poddefaults=poddefaults)
    job = load_jobs([write_manifest(doc)])[0]
    backend.submit(job)
    assert backend.wait(job.name, timeout=60).status.succeeded
    env = json.loads(next(line for _, line in backend.logs("withdefaults")))
    assert env["POD_DEFAULT"] == "Testing is enabled"
    assert "OTHER" not in env


def test_kill_replica_is_restarted_by_its_policy(kfkit_home, write_manifest, free_port) -> None:
    sleeper = "import time; print('up', flush=True); time.sleep(3)"
    master = replica("pytorch", sleeper, policy="OnFailure")
    backend = LocalBackend()
    job = load_jobs([write_manifest(pytorch("killed", free_port(), master))])[0]
    backend.submit(job)
    deadline = time.monotonic() + 30
    while not replica_pids(backend.get("killed")) and time.monotonic() < deadline:
        time.sleep(0.1)
    backend.kill_replica("killed", "master-0")
    record = backend.wait("killed", timeout=60)
    assert record.status.succeeded
    assert record.replicas["master-0"]["restarts"] == 1
    assert "exited with code 137" in record.status.condition("Restarting")["message"]
    with pytest.raises(Exception, match="not running"):
        backend.kill_replica("killed", "master-0")
