"""The kubernetes backend's pure parts, and what it does when no API server answers.

Nothing here needs a cluster: pod and event dicts are in the exact shape the
API returns (camelCase JSON), and the unreachable-server tests point a real
client at a loopback port nothing listens on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.rest import ApiException

from kfkit.backends import get_backend
from kfkit.backends.base import JobRecord, JobStatus
from kfkit.backends.kubernetes import KubernetesBackend
from kfkit.backends.kubernetes.connection import (
    ServerUnreachableError,
    connect,
    status_message,
    translate,
)
from kfkit.backends.kubernetes.events import as_record_event
from kfkit.backends.kubernetes.notebooks import (
    _check_manifest,
    notebook_ready,
    notebook_waiting_reason,
)
from kfkit.backends.kubernetes.objects import apply_body
from kfkit.backends.kubernetes.pods import (
    _split_lines,
    pod_started,
    pods_by_replica,
    replica_selector,
    replica_states,
)
from kfkit.backends.kubernetes.resources import NOTEBOOKS, PODDEFAULTS, job_resource
from kfkit.client import JobFailedError, TrainingClient, job_from_manifest
from kfkit.errors import KfkitError, ValidationError

REPO = Path(__file__).resolve().parents[2]


def manifest(name: str = "mnist", workers: int = 2) -> dict[str, Any]:
    container = {"name": "pytorch", "image": "kfkit/pytorch-mnist:0.1.0"}
    template = {"spec": {"containers": [container]}}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "template": template},
                "Worker": {"replicas": workers, "template": template},
            }
        },
    }


def pod(
    replica_type: str,
    index: int,
    phase: str = "Pending",
    container_state: dict[str, Any] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    **metadata: Any,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if container_state is not None:
        status["containerStatuses"] = [
            {"name": "pytorch", "restartCount": 2, "state": container_state}
        ]
    return {
        "metadata": {
            "name": f"mnist-{replica_type}-{index}",
            "namespace": "team-a",
            "creationTimestamp": created,
            "labels": {
                "training.kubeflow.org/job-name": "mnist",
                "training.kubeflow.org/replica-type": replica_type,
                "training.kubeflow.org/replica-index": str(index),
            },
            **metadata,
        },
        "spec": {"containers": [{"name": "pytorch", "image": "x"}]},
        "status": status,
    }


# --- replica state from pods -----------------------------------------------------------------


def test_replica_states_follow_pods_and_name_missing_ones() -> None:
    job = job_from_manifest(manifest())
    pods = [
        pod("master", 0, "Running", {"running": {"startedAt": "2026-01-01T00:00:05Z"}}),
        pod("worker", 0, "Failed", {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
    ]
    states = replica_states(job, pods)
    assert list(states) == ["master-0", "worker-0", "worker-1"]
    assert states["master-0"]["phase"] == "Running"
    assert states["master-0"]["restarts"] == 2
    assert states["master-0"]["pod"] == "mnist-master-0"
    assert (
        states["worker-0"] | {"exitCode": 137, "reason": "OOMKilled", "phase": "Failed"}
        == (states["worker-0"])
    )
    assert states["worker-1"]["phase"] == "Pending"
    assert states["worker-1"]["reason"] == "no pod"


def test_pending_reason_is_what_kubectl_shows() -> None:
    job = job_from_manifest(manifest(workers=1))
    unscheduled = pod("master", 0)
    pulling = pod("worker", 0, container_state={"waiting": {"reason": "ImagePullBackOff"}})
    pulling["spec"]["nodeName"] = "node-1"
    states = replica_states(job, [unscheduled, pulling])
    assert states["master-0"]["reason"] == "not scheduled"
    assert states["worker-0"]["reason"] == "ImagePullBackOff"
    assert not pod_started(unscheduled)
    assert pod_started(pod("master", 0, "Succeeded"))
    assert pod_started(pod("master", 0, container_state={"terminated": {"exitCode": 1}}))


def test_a_recreated_pod_wins_over_the_one_being_deleted() -> None:
    old = pod("worker", 0, created="2026-01-01T00:00:09Z", deletionTimestamp="2026-01-01T00:01Z")
    new = pod("worker", 0, created="2026-01-01T00:00:01Z")
    new["metadata"]["name"] = "mnist-worker-0-new"
    assert pods_by_replica([old, new])["worker-0"]["metadata"]["name"] == "mnist-worker-0-new"
    newer = pod("worker", 0, created="2026-01-01T00:00:05Z")
    newer["metadata"]["name"] = "newer"
    assert pods_by_replica([new, newer])["worker-0"]["metadata"]["name"] == "newer"
    unlabeled = pod("worker", 1)
    del unlabeled["metadata"]["labels"]["training.kubeflow.org/replica-index"]
    assert "worker-1" not in pods_by_replica([unlabeled])


def test_selectors_use_the_operator_labels_in_lower_case() -> None:
    assert replica_selector("mnist", "Worker", 1) == (
        "training.kubeflow.org/job-name=mnist,training.kubeflow.org/replica-type=worker,"
        "training.kubeflow.org/replica-index=1"
    )
    assert job_resource("TFJob").plural == "tfjobs"
    with pytest.raises(KfkitError, match="MPIJob"):
        job_resource("MPIJob")


def test_log_lines_are_split_across_chunks() -> None:
    chunks = iter([b"step 1 lo", b"ss 0.5\nstep 2", b" loss 0.4\n", b"last without newline"])
    assert list(_split_lines(chunks)) == [
        "step 1 loss 0.5",
        "step 2 loss 0.4",
        "last without newline",
    ]


# --- apply bodies, errors, events ------------------------------------------------------------


def test_apply_body_drops_status_and_server_metadata() -> None:
    obj = manifest()
    obj["status"] = {"conditions": []}
    obj["metadata"] |= {"resourceVersion": "12", "uid": "u", "managedFields": [{}], "labels": {}}
    body = apply_body(obj, "team-b")
    assert "status" not in body
    assert body["metadata"] == {"name": "mnist", "namespace": "team-b", "labels": {}}
    assert obj["metadata"]["resourceVersion"] == "12"  # the caller's manifest is untouched


def api_exception(status: int, message: str, **details: Any) -> ApiException:
    error = ApiException(status=status, reason="Reason")
    error.body = json.dumps({"kind": "Status", "message": message, "details": details})
    return error


def test_api_errors_become_one_line_kfkit_errors(tmp_path: Path) -> None:
    connection = connect(kubeconfig=write_kubeconfig_for(tmp_path, 1))
    forbidden = translate(
        api_exception(403, 'pytorchjobs is forbidden:\nUser "x"'), "apply", connection
    )
    assert str(forbidden) == 'apply: forbidden: pytorchjobs is forbidden: User "x"'
    invalid = translate(
        api_exception(422, "spec.x: Invalid value"), "apply PyTorchJob a/b", connection
    )
    assert "rejected by the API server: spec.x: Invalid value" in str(invalid)
    unauthorized = translate(api_exception(401, "Unauthorized"), "get", connection)
    assert "credentials in your kubeconfig were rejected" in str(unauthorized)
    plain = ApiException(status=500, reason="Internal Server Error")
    assert status_message(plain) == "500 Internal Server Error"


def test_events_are_shown_with_their_latest_time() -> None:
    event = {
        "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
        "involvedObject": {"kind": "Pod", "name": "mnist-master-0"},
        "type": "Warning",
        "reason": "BackOff",
        "message": "Back-off restarting failed container\n",
        "firstTimestamp": "2026-01-01T00:00:01Z",
        "lastTimestamp": "2026-01-01T00:00:09Z",
        "count": 4,
    }
    assert as_record_event(event) == {
        "time": "2026-01-01T00:00:09Z",
        "type": "Warning",
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "object": "Pod/mnist-master-0",
        "count": 4,
    }
    del event["lastTimestamp"], event["firstTimestamp"]
    assert as_record_event(event)["time"] == "2026-01-01T00:00:00Z"


# --- notebooks and PodDefaults ------------------------------------------------------------------


def test_notebook_and_poddefault_manifests_are_checked_before_sending() -> None:
    notebook = yaml.safe_load((REPO / "manifests/notebook/notebook.yaml").read_text())
    _check_manifest(notebook, NOTEBOOKS, "notebook.yaml")
    for poddefault in yaml.safe_load_all(
        (REPO / "manifests/notebook/poddefaults.yaml").read_text()
    ):
        _check_manifest(poddefault, PODDEFAULTS, "poddefaults.yaml")
    broken = {"apiVersion": "kubeflow.org/v1", "kind": "Notebook", "metadata": {}, "spec": {}}
    with pytest.raises(ValidationError) as error:
        _check_manifest(broken, NOTEBOOKS, "nb.yaml")
    assert error.value.lines() == [
        "nb.yaml: metadata.name: required",
        "nb.yaml: spec.template.spec.containers: at least one is required",
    ]
    with pytest.raises(ValidationError, match=r"pd.yaml: spec.selector: required"):
        _check_manifest(
            {
                "apiVersion": "kubeflow.org/v1alpha1",
                "kind": "PodDefault",
                "metadata": {"name": "p"},
                "spec": {},
            },
            PODDEFAULTS,
            "pd.yaml",
        )


def test_notebook_readiness_and_waiting_reason() -> None:
    assert not notebook_ready({})
    assert notebook_ready({"status": {"readyReplicas": 1}})
    waiting = {"status": {"containerState": {"waiting": {"reason": "ContainerCreating"}}}}
    assert notebook_waiting_reason(waiting) == "ContainerCreating"
    assert notebook_waiting_reason({}) == "no ready replica"


# --- the client's failure report ----------------------------------------------------------------


def test_job_failed_error_names_the_reason_and_lists_warnings() -> None:
    job = job_from_manifest(manifest())
    status = JobStatus(
        {
            "conditions": [
                {"type": "Created", "status": "True"},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "PyTorchJobFailed",
                    "message": "master-0 exited 1",
                },
            ]
        }
    )
    events = [
        {
            "time": "t1",
            "type": "Normal",
            "reason": "SuccessfulCreatePod",
            "message": "ok",
            "object": "PyTorchJob/mnist",
        },
        {
            "time": "t2",
            "type": "Warning",
            "reason": "ExitedWithCode",
            "message": "exit 1",
            "object": "PyTorchJob/mnist",
        },
    ]
    error = JobFailedError(JobRecord(job, status, events=events))
    assert str(error) == "PyTorchJob team-a/mnist failed: PyTorchJobFailed: master-0 exited 1"
    assert error.lines()[1:] == ["  t2 PyTorchJob/mnist ExitedWithCode: exit 1"]


def test_client_rejects_an_invalid_dict_before_anything_starts(kfkit_home: Path) -> None:
    client = TrainingClient(namespace="team-a", backend="local")
    bad = manifest()
    bad["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = 2
    with pytest.raises(ValidationError) as error:
        client.create_job(bad)
    assert isinstance(error.value, RuntimeError)  # what the SDK raises for a refused job
    assert all(line.startswith("<manifest>: ") for line in error.value.lines())
    assert client.backend.list(None) == []
    with pytest.raises(ValueError, match="expected_conditions: Finished"):
        client.wait_for_job_conditions("mnist", expected_conditions={"Finished"})


# --- configuration and unreachable servers -----------------------------------------------------


def write_kubeconfig_for(directory: Path, port: int, namespace: str | None = None) -> Path:
    context: dict[str, Any] = {"cluster": "nowhere", "user": "someone"}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "nowhere", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "someone", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "nowhere", "context": context}],
        "current-context": "nowhere",
    }
    path = directory / f"kubeconfig-{port}"
    path.write_text(yaml.safe_dump(config))
    return path


def test_unreachable_api_server_is_a_clear_error(tmp_path: Path, free_port: Any) -> None:
    port = free_port()
    kubeconfig = write_kubeconfig_for(tmp_path, port, namespace="team-a")
    backend = get_backend("kubernetes", kubeconfig=str(kubeconfig))
    assert isinstance(backend, KubernetesBackend)
    assert backend.default_namespace == "team-a"  # the context's namespace
    with pytest.raises(ServerUnreachableError) as error:
        backend.list()
    message = str(error.value)
    assert "\n" not in message
    assert (
        f"cannot reach the Kubernetes API server https://127.0.0.1:{port} (context nowhere)"
        in message
    )
    assert "connection refused" in message
    job = job_from_manifest(manifest())
    with pytest.raises(ServerUnreachableError, match="connection refused"):
        backend.submit(job)


def test_unreachable_api_server_through_the_cli(
    tmp_path: Path, free_port: Any, capsys: Any
) -> None:
    from kfkit.cli.main import main

    kubeconfig = write_kubeconfig_for(tmp_path, free_port())
    code = main(["get", "jobs", "--backend", "kubernetes", "--kubeconfig", str(kubeconfig)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Kubernetes API server" in err[0]


def test_bad_kubeconfig_and_context_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(KfkitError, match=r"--kubeconfig .*missing: no such file$"):
        KubernetesBackend(kubeconfig=str(tmp_path / "missing"))
    kubeconfig = write_kubeconfig_for(tmp_path, 1)
    with pytest.raises(KfkitError) as error:
        KubernetesBackend(kubeconfig=str(kubeconfig), context="no-such-context")
    assert "no-such-context" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(KfkitError, match="--context: expected a string"):
        KubernetesBackend(kubeconfig=str(kubeconfig), context=3)


def test_e2e_cluster_check_fails_fast_without_a_cluster(tmp_path: Path, free_port: Any) -> None:
    import os
    import subprocess
    import sys
    import time

    kubeconfig = write_kubeconfig_for(tmp_path, free_port())
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(REPO / "tests/kubernetes/e2e_cluster.py"), "--check"],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and time.monotonic() - started < 30
    first = result.stderr.splitlines()[0]
    assert first.startswith("e2e-cluster: version: cannot reach the Kubernetes API server")
    assert "connection refused" in first


def test_errors_get_the_file_they_are_about() -> None:
    from kfkit.backends.kubernetes.connection import ForbiddenError, with_source

    forbidden = with_source(ForbiddenError("forbidden: no"), "job.yaml")
    assert type(forbidden) is ForbiddenError and str(forbidden) == "job.yaml: forbidden: no"
    many = with_source(ValidationError(["a: bad", "b: worse"]), "nb.yaml")
    assert isinstance(many, ValidationError)
    assert many.lines() == ["nb.yaml: a: bad", "nb.yaml: b: worse"]


def test_the_client_picks_its_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KFKIT_BACKEND", raising=False)
    monkeypatch.setenv("KFKIT_HOME", str(tmp_path / "home"))
    assert TrainingClient().backend.name == "local"
    assert TrainingClient().namespace == "default"
    kubeconfig = write_kubeconfig_for(tmp_path, 1, namespace="team-b")
    on_cluster = TrainingClient(config_file=str(kubeconfig))  # the SDK's argument means a cluster
    assert on_cluster.backend.name == "kubernetes" and on_cluster.namespace == "team-b"
    assert on_cluster.custom_api is not None and on_cluster.core_api is not None
    with pytest.raises(ValueError, match=r"^config_file: only the kubernetes backend takes them$"):
        TrainingClient(config_file=str(kubeconfig), backend="local")
    monkeypatch.setenv("KFKIT_BACKEND", "kubernetes")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert TrainingClient(namespace="x").backend.name == "kubernetes"
    monkeypatch.setenv("KFKIT_BACKEND", "slurm")
    with pytest.raises(KfkitError, match="unknown backend 'slurm'"):
        TrainingClient()
