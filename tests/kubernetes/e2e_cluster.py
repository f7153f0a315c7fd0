"""End-to-end run on a real cluster with the training operator: ``make e2e-cluster``.

Not part of ``make test`` (its name does not match ``test_*.py``): it needs a
cluster (kind, minikube, or any other) where ``kfkit platform upgrade`` has
installed the chart, and the training image loaded (``kind load docker-image
kfkit/pytorch-mnist:0.1.0``). Settings, from the environment:

- ``KUBECONFIG`` / ``KFKIT_E2E_CONTEXT``: which cluster (default: the current context);
- ``KFKIT_E2E_NAMESPACE``: where the jobs run (default ``kfkit-e2e``, created if missing);
- ``KFKIT_E2E_IMAGE``: the training image (default ``kfkit/pytorch-mnist:0.1.0``);
- ``KFKIT_E2E_TIMEOUT``: seconds each job may take (default 900).

``python tests/kubernetes/e2e_cluster.py --check`` is the fail-fast step the
make target runs first: it exits 2 with one line when no cluster answers or
the operator's CRDs are not installed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kfkit.backends.kubernetes import KubernetesBackend
from kfkit.backends.kubernetes.connection import api_errors
from kfkit.backends.kubernetes.resources import PYTORCHJOBS, TFJOBS
from kfkit.client import JobFailedError, TrainingClient
from kfkit.errors import KfkitError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "manifests/examples/pytorchjob-allreduce.yaml"
NAMESPACE = os.environ.get("KFKIT_E2E_NAMESPACE", "kfkit-e2e")
IMAGE = os.environ.get("KFKIT_E2E_IMAGE", "kfkit/pytorch-mnist:0.1.0")
TIMEOUT = float(os.environ.get("KFKIT_E2E_TIMEOUT", "900"))


def cluster_backend() -> KubernetesBackend:
    return KubernetesBackend(context=os.environ.get("KFKIT_E2E_CONTEXT") or None)


def check() -> int:
    """Exit status 0 when a cluster answers and serves the training CRDs; else 2, one line."""
    try:
        backend = cluster_backend()
        version = client.VersionApi(backend.connection.api)
        with api_errors(backend.connection, "version"):
            info = version.get_code(_request_timeout=(5.0, 10.0))
        for resource in (PYTORCHJOBS, TFJOBS):
            backend.checks.require_served(resource)
    except KfkitError as error:
        print(f"e2e-cluster: {error.message}", file=sys.stderr)
        print(
            "e2e-cluster: needs a cluster (e.g. `kind create cluster`) with the platform "
            "installed (`kfkit platform upgrade`); see docs/kubernetes.md",
            file=sys.stderr,
        )
        return 2
    print(f"e2e-cluster: {backend.connection.describe()} answers (Kubernetes {info.git_version})")
    return 0


# --- the end-to-end tests ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def training() -> Iterator[TrainingClient]:
    backend = cluster_backend()
    core = client.CoreV1Api(backend.connection.api)
    with api_errors(backend.connection, f"namespace {NAMESPACE}"):
        existing = {ns.metadata.name for ns in core.list_namespace().items}
        if NAMESPACE not in existing:
            core.create_namespace({"metadata": {"name": NAMESPACE}})
    yield TrainingClient(namespace=NAMESPACE, backend=backend)


def example_job(name: str, command: list[str] | None = None) -> dict[str, Any]:
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"] = {"name": name, "namespace": NAMESPACE}
    for spec in manifest["spec"]["pytorchReplicaSpecs"].values():
        container = spec["template"]["spec"]["containers"][0]
        container["image"] = IMAGE
        if command is not None:
            container["command"] = command
            spec["restartPolicy"] = "Never"
    return manifest


def test_allreduce_job_succeeds_on_the_operator(training: TrainingClient) -> None:
    training.create_job(example_job("e2e-allreduce"))
    job = training.wait_for_job_conditions(
        "e2e-allreduce", wait_timeout=TIMEOUT, polling_interval=5
    )
    assert training.is_job_succeeded(job=job)
    logs, _ = training.get_job_logs("e2e-allreduce", is_master=False)
    assert set(logs) == {
        "e2e-allreduce-master-0",
        "e2e-allreduce-worker-0",
        "e2e-allreduce-worker-1",
    }
    assert all("smoke test passed" in text for text in logs.values()), logs
    training.delete_job("e2e-allreduce")


def test_a_failing_job_reports_failed_with_events(training: TrainingClient) -> None:
    training.create_job(example_job("e2e-fails", ["python", "-c", "raise SystemExit(3)"]))
    with pytest.raises(JobFailedError) as error:
        training.wait_for_job_conditions("e2e-fails", wait_timeout=TIMEOUT, polling_interval=5)
    assert error.value.record.status.is_true("Failed")
    training.delete_job("e2e-fails")


def test_delete_removes_the_operators_pods(training: TrainingClient) -> None:
    training.create_job(example_job("e2e-delete", ["python", "-c", "import time; time.sleep(600)"]))
    training.wait_for_job_conditions(
        "e2e-delete", expected_conditions={"Running"}, wait_timeout=TIMEOUT, polling_interval=5
    )
    training.delete_job("e2e-delete")
    backend = training.backend
    assert isinstance(backend, KubernetesBackend)
    core = client.CoreV1Api(backend.connection.api)
    deadline = time.monotonic() + 120
    selector = "training.kubeflow.org/job-name=e2e-delete"
    while core.list_namespaced_pod(NAMESPACE, label_selector=selector).items:
        assert time.monotonic() < deadline, "the job's pods were not removed within 120s"
        time.sleep(2)


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(check())
    sys.exit(pytest.main([__file__, "-v", "-p", "no:cacheprovider", *sys.argv[1:]]))
