"""The TrainingClient-like API on the local backend, with real processes.

The same calls are exercised on the kubernetes backend in test_k8s_jobs.py;
here they run a real (tiny) job on this machine, so the parity is of behaviour,
not only of signatures.
"""

from __future__ import annotations

from typing import Any

import pytest

from kfkit.client import JobFailedError, TrainingClient
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


def test_the_client_runs_reads_and_deletes_a_local_job(kfkit_home: Any, free_port: Any) -> None:
    client = TrainingClient("local", namespace="team-a")
    created = client.create_job(script_job("hello", free_port(), PRINT_RANK))
    assert created.job.namespace == "team-a"  # the client's namespace fills the manifest's gap
    seen: list[str] = []
    record = client.wait_for_job_conditions(
        "hello", timeout=120, callback=lambda r: seen.append(r.status.phase)
    )
    assert record.status.succeeded and seen[-1] == "Succeeded"
    assert client.is_job_succeeded("hello") and not client.is_job_failed("hello")
    assert client.get_job_conditions("hello")[0]["type"] == "Created"
    assert [r.job.name for r in client.list_jobs()] == ["hello"]
    assert client.list_jobs(namespace="other") == []
    assert client.get_job_pod_names("hello") == ["hello-master-0", "hello-worker-0"]
    assert client.get_job_logs("hello") == {
        "hello-master-0": "rank 0\nworld 2\n",
        "hello-worker-0": "rank 1\nworld 2\n",
    }
    assert client.get_job_logs("hello", replica_type="Worker", replica_index=0) == {
        "hello-worker-0": "rank 1\nworld 2\n"
    }
    client.delete_job("hello")
    with pytest.raises(NotFoundError):
        client.get_job("hello")


def test_a_failing_local_job_raises_job_failed(kfkit_home: Any, free_port: Any) -> None:
    client = TrainingClient("local")
    client.create_job(script_job("fails", free_port(), "raise SystemExit(3)"))
    with pytest.raises(JobFailedError, match=r"^PyTorchJob default/fails failed: "):
        client.wait_for_job_conditions("fails", timeout=120)
    record = client.wait_for_job_conditions("fails", expected_conditions={"Failed"}, timeout=5)
    assert record.status.is_true("Failed")
    client.delete_job("fails")
