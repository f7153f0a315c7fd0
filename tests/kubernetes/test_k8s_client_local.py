"""The SDK-shaped TrainingClient on the local backend, with real processes.

The same calls run on the API-server tier in test_k8s_client_interop.py, next
to kubeflow-training's own client; here they run real (tiny) jobs on this
machine, so the parity is of behaviour, not only of signatures.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubeflow.training import TrainingClient as SdkClient
from kubeflow.training import models
from kubernetes import client as k8s

from kfkit.client import JobFailedError, TrainingClient, job_from_manifest
from kfkit.client.models import to_dict
from kfkit.errors import NotFoundError

pytestmark = pytest.mark.integration


def script_job(name: str, port: int, code: str) -> dict[str, Any]:
    def replica_spec() -> dict[str, Any]:
        container = {
            "name": "pytorch",
            "image": "kfkit/test:1",
            "command": ["python", "-c", code],
            "ports": [{"name": "pytorchjob-port", "containerPort": port}],
        }
        return {
            "replicas": 1,
            "restartPolicy": "Never",
            "template": {"spec": {"containers": [container]}},
        }

    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": {"Master": replica_spec(), "Worker": replica_spec()}},
    }


PRINT_RANK = (
    "import os; print('rank', os.environ['RANK']); print('world', os.environ['WORLD_SIZE'])"
)


def test_the_client_runs_reads_updates_and_deletes_a_local_job(
    kfkit_home: Any, free_port: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client = TrainingClient(namespace="team-a", backend="local")
    assert client.create_job(script_job("hello", free_port(), PRINT_RANK)) is None
    seen: list[Any] = []
    job = client.wait_for_job_conditions(
        "hello", wait_timeout=120, polling_interval=1, callback=seen.append
    )
    assert isinstance(job, models.KubeflowOrgV1PyTorchJob)
    assert job.metadata.namespace == "team-a"  # the client's namespace fills the manifest's gap
    assert client.is_job_succeeded(job=job) and seen[-1].status.conditions[-1].type == "Succeeded"
    assert client.is_job_succeeded("hello") and not client.is_job_failed("hello")
    conditions = client.get_job_conditions("hello")
    # The SDK annotates V1JobCondition; its deserializer makes KubeflowOrgV1JobCondition.
    assert isinstance(conditions[0], models.KubeflowOrgV1JobCondition)
    assert conditions[0].type == "Created"
    assert [j.metadata.name for j in client.list_jobs()] == ["hello"]
    assert client.list_jobs(job_kind="TFJob") == [] and client.list_jobs(namespace="other") == []

    pods = client.get_job_pods("hello")
    assert all(isinstance(p, models.V1Pod) for p in pods)
    # The job succeeds with its master; the worker may still be finishing.
    phases = {p.metadata.name: p.status.phase for p in pods}
    assert phases["hello-master-0"] == "Succeeded" and "hello-worker-0" in phases
    deadline = time.monotonic() + 60
    while (worker := client.get_job_pods("hello", replica_type="worker")[0]).status.phase != (
        "Succeeded"
    ):
        assert time.monotonic() < deadline, f"the worker is still {worker.status} after 60s"
        time.sleep(0.2)
    assert client.get_job_pod_names("hello") == ["hello-master-0", "hello-worker-0"]
    assert client.get_job_pod_names("hello", is_master=True) == ["hello-master-0"]
    assert client.get_job_pod_names("hello", replica_type="worker", replica_index=0) == [
        "hello-worker-0"
    ]
    logs, events = client.get_job_logs("hello")  # the master's, as the SDK's default
    assert logs == {"hello-master-0": "rank 0\nworld 2\n"} and events == {}
    logs, events = client.get_job_logs("hello", is_master=False, verbose=True)
    assert logs == {"hello-master-0": "rank 0\nworld 2\n", "hello-worker-0": "rank 1\nworld 2\n"}
    assert any("successfully completed" in line for line in events["pytorchjob/hello"])
    assert client.get_job_logs("hello", is_master=False, follow=True)[0] == logs
    printed = capsys.readouterr().out.splitlines()
    assert sorted(printed) == sorted(
        f"[Pod hello-{key}]: {line}"
        for key, rank in (("master-0", 0), ("worker-0", 1))
        for line in (f"rank {rank}", "world 2")
    )
    assert list(client.stream_job_logs("hello", replica_type="Worker")) == [
        ("hello-worker-0", "rank 1"),
        ("hello-worker-0", "world 2"),
    ]

    job.metadata.labels = {"team": "a"}
    client.update_job(job, "hello")
    assert client.get_job("hello").metadata.labels == {"team": "a"}
    job.spec.run_policy.backoff_limit = 7
    with pytest.raises(RuntimeError, match=r"spec: the local backend cannot change a submitted"):
        client.update_job(job, "hello")

    with pytest.raises(
        RuntimeError, match=r"^Failed to create PyTorchJob: team-a/hello\. .*exists"
    ):
        client.create_job(script_job("hello", free_port(), PRINT_RANK))
    client.delete_job("hello")
    with pytest.raises(NotFoundError):
        client.get_job("hello")


def test_a_failing_local_job_raises_job_failed(kfkit_home: Any, free_port: Any) -> None:
    client = TrainingClient(backend="local")
    client.create_job(script_job("fails", free_port(), "raise SystemExit(3)"))
    with pytest.raises(JobFailedError, match=r"^PyTorchJob default/fails failed: ") as error:
        client.wait_for_job_conditions("fails", wait_timeout=120, polling_interval=1)
    assert isinstance(error.value, RuntimeError)  # what the SDK raises
    job = client.wait_for_job_conditions("fails", expected_conditions={"Failed"}, wait_timeout=5)
    assert client.is_job_failed(job=job)
    client.delete_job("fails")


def hello(parameters):
    """Runs in the job from its source alone: no annotation may name this module's imports."""
    import os

    # One write per line: torchrun's processes share the log, and print() under
    # ``python -u`` writes each word by itself, so lines of two ranks could interleave.
    os.write(1, f"rank {os.environ.get('RANK')} lr {parameters['lr']}\n".encode())


@pytest.mark.parametrize("workers", [1, 2])
def test_a_function_job_is_the_sdks_job_and_runs_here(
    workers: int, kfkit_home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train_func`` locally: the SDK's PyTorchJob (``python -u`` for one worker, ``torchrun``
    for more), admitted and defaulted as any manifest, run with kfkit's interpreter."""
    sdk = SdkClient(client_configuration=k8s.Configuration(host="http://127.0.0.1:9"))
    sent: list[Any] = []
    monkeypatch.setattr(
        sdk.custom_api, "create_namespaced_custom_object", lambda *args: sent.append(args[-1])
    )
    call = {"train_func": hello, "parameters": {"lr": 0.5}, "num_workers": workers}
    sdk.create_job(name="fn", namespace="default", **call)

    client = TrainingClient(backend="local")
    client.create_job(name="fn", **call)
    stored = client.backend.get("fn", "default").job.manifest
    assert stored == job_from_manifest(to_dict(sent[0])).manifest

    client.wait_for_job_conditions("fn", wait_timeout=120, polling_interval=1)
    logs, _ = client.get_job_logs("fn", is_master=False)
    lines = [line for text in logs.values() for line in text.splitlines() if "lr" in line]
    # torchrun starts nprocPerNode ("auto": a process per CPU here) per replica.
    assert lines and all(line.endswith("lr 0.5") for line in lines)
    ranks = sorted(int(line.split()[1]) for line in lines)
    assert ranks == list(range(len(ranks))) and len(ranks) >= workers
    client.delete_job("fn")
