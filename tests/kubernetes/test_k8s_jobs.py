"""PyTorchJob/TFJob on a real kube-apiserver: apply, get, list, watch, events, logs, delete.

The API server, etcd, the upstream CRDs, RBAC and watches are real; the
training operator is :class:`FakeOperator` (conftest), which writes the status
and pods the operator would write. Never run here against a real operator:
whether it sets these conditions for a real job, and the pods actually
running. ``make e2e-cluster`` covers that on a cluster.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from kfkit.backends.kubernetes.connection import ConflictError
from kfkit.backends.kubernetes.watch import WaitTimeout
from kfkit.client import JobFailedError, TrainingClient, job_from_manifest
from kfkit.errors import AlreadyExistsError, KfkitError, NotFoundError
from kfkit.jobs.model import Job

pytestmark = pytest.mark.apiserver

HARDENED_CONTAINER = {
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    },
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
}


def job_manifest(
    name: str, namespace: str, kind: str = "PyTorchJob", workers: int = 1
) -> dict[str, Any]:
    container_name = "pytorch" if kind == "PyTorchJob" else "tensorflow"
    template = {
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": container_name,
                    "image": "kfkit/pytorch-mnist:0.1.0",
                    "command": ["python", "-m", "kfkit.training.smoke"],
                    **HARDENED_CONTAINER,
                }
            ],
        }
    }
    if kind == "PyTorchJob":
        specs = {
            "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": template},
            "Worker": {"replicas": workers, "restartPolicy": "OnFailure", "template": template},
        }
        key = "pytorchReplicaSpecs"
    else:
        specs = {"Worker": {"replicas": workers, "restartPolicy": "Never", "template": template}}
        key = "tfReplicaSpecs"
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {key: specs},
    }


def make_job(name: str, namespace: str, kind: str = "PyTorchJob", workers: int = 1) -> Job:
    return job_from_manifest(job_manifest(name, namespace, kind, workers), source=f"{name}.yaml")


def test_submit_is_a_server_side_apply_owned_by_kfkit(cluster: Any, namespace: str) -> None:
    backend = cluster.backend()
    record = backend.submit(make_job("mnist", namespace))
    assert record.job.name == "mnist" and record.status.phase == "Pending"
    stored = cluster.operator.job("PyTorchJob", namespace, "mnist")
    managers = {(f["manager"], f["operation"]) for f in stored["metadata"]["managedFields"]}
    assert ("kfkit", "Apply") in managers
    # The cluster gets the manifest as written, as `kubectl apply` sends it: the
    # operator's controller applies the defaults there (v1.9 has no mutating webhook).
    worker = stored["spec"]["pytorchReplicaSpecs"]["Worker"]
    assert "ports" not in worker["template"]["spec"]["containers"][0]
    assert "runPolicy" not in stored["spec"]
    with pytest.raises(
        KfkitError, match=r"^mnist.yaml: metadata.name: PyTorchJob .* has not finished"
    ):
        backend.submit(make_job("mnist", namespace))


def test_get_list_and_describe_show_replicas_and_events(
    cluster: Any, namespace: str, capsys: Any
) -> None:
    backend = cluster.backend()
    backend.submit(make_job("mnist", namespace, workers=2))
    backend.submit(make_job("mnist-tf", namespace, kind="TFJob"))
    operator = cluster.operator
    operator.set_condition("PyTorchJob", namespace, "mnist", "Created")
    operator.create_replicas("PyTorchJob", namespace, "mnist")
    operator.create_replicas("TFJob", namespace, "mnist-tf")
    operator.event(
        namespace,
        "PyTorchJob",
        "mnist",
        "Normal",
        "SuccessfulCreatePod",
        "Created pod: mnist-master-0",
    )
    operator.event(
        namespace, "Pod", "mnist-worker-1", "Warning", "FailedScheduling", "0/0 nodes are available"
    )

    record = backend.get("mnist", namespace)
    assert record.job.kind == "PyTorchJob"  # PyTorchJob first when no kind is given
    assert record.status.phase == "Created"
    assert list(record.replicas) == ["master-0", "worker-0", "worker-1"]
    assert {s["phase"] for s in record.replicas.values()} == {"Pending"}
    assert record.replicas["worker-1"]["reason"] == "not scheduled"
    assert [(e["object"], e["reason"]) for e in record.events] == [
        ("PyTorchJob/mnist", "SuccessfulCreatePod"),
        ("Pod/mnist-worker-1", "FailedScheduling"),
    ]
    tf_record = backend.get("mnist-tf", namespace)
    assert tf_record.job.kind == "TFJob" and list(tf_record.replicas) == ["worker-0"]
    assert tf_record.replicas["worker-0"]["pod"] == "mnist-tf-worker-0"
    with pytest.raises(NotFoundError, match=r"TFJob .*/mnist not found"):
        backend.get("mnist", namespace, kind="TFJob")

    listed = backend.list(namespace)
    assert [(r.job.kind, r.job.name) for r in listed] == [
        ("PyTorchJob", "mnist"),
        ("TFJob", "mnist-tf"),
    ]
    assert listed[0].replicas["worker-0"]["pod"] == "mnist-worker-0"
    everywhere = {(r.job.namespace, r.job.kind) for r in backend.list(None)}
    assert (namespace, "TFJob") in everywhere

    from kfkit.cli.main import main

    kubeconfig = str(cluster.server.kubeconfig)
    flags = ["--backend", "kubernetes", "--kubeconfig", kubeconfig, "-n", namespace]
    assert main(["get", "jobs", *flags]) == 0
    out = capsys.readouterr().out
    assert "mnist" in out and "PyTorchJob" in out and "TFJob" in out and "Created" in out
    assert main(["describe", "job", "mnist", *flags]) == 0
    out = capsys.readouterr().out
    assert "FailedScheduling" in out and "worker-1" in out and "not scheduled" in out


def test_wait_watches_the_status_until_the_job_succeeds(cluster: Any, namespace: str) -> None:
    # Watches end every second here, so the wait also resumes from its last resourceVersion.
    backend = cluster.backend(watch_seconds=1)
    backend.submit(make_job("ok", namespace))
    operator = cluster.operator
    operator.later(
        1.5,
        (operator.set_condition, "PyTorchJob", namespace, "ok", "Created"),
        (operator.set_condition, "PyTorchJob", namespace, "ok", "Running"),
    )
    operator.later(
        3.0,
        (operator.set_condition, "PyTorchJob", namespace, "ok", "Restarting"),
        (operator.set_condition, "PyTorchJob", namespace, "ok", "Running"),
        (operator.set_condition, "PyTorchJob", namespace, "ok", "Succeeded"),
    )
    phases: list[str] = []
    started = time.monotonic()
    record = backend.wait(
        "ok", namespace, timeout=30, on_update=lambda r: phases.append(r.status.phase)
    )
    assert record.status.succeeded and time.monotonic() - started < 20
    assert phases[0] == "Pending" and phases[-1] == "Succeeded"
    assert "Running" in phases and "Restarting" in phases
    assert [c["type"] for c in record.status.conditions] == [
        "Created",
        "Restarting",
        "Running",
        "Succeeded",
    ]
    assert not record.status.is_true("Running")  # the operator turns Running off at the end
    assert backend.last_watch is not None and backend.last_watch.reconnects >= 1


def test_a_failed_job_comes_back_with_its_events(cluster: Any, namespace: str) -> None:
    client = TrainingClient(namespace=namespace, backend=cluster.backend())
    client.create_job(job_manifest("boom", namespace))
    operator = cluster.operator
    operator.set_condition("PyTorchJob", namespace, "boom", "Created")
    operator.event(
        namespace, "PyTorchJob", "boom", "Warning", "ExitedWithCode", "master-0 exited with code 1"
    )
    operator.later(
        0.5,
        (
            operator.set_condition,
            "PyTorchJob",
            namespace,
            "boom",
            "Failed",
            "PyTorchJobFailed",
            "master-0 failed",
        ),
    )
    with pytest.raises(JobFailedError) as error:
        client.wait_for_job_conditions("boom", wait_timeout=30, polling_interval=0.2)
    assert (
        str(error.value) == f"PyTorchJob {namespace}/boom failed: PyTorchJobFailed: master-0 failed"
    )
    assert any(
        "ExitedWithCode: master-0 exited with code 1" in line for line in error.value.lines()
    )
    assert client.is_job_failed("boom")
    # Waiting for Failed itself is not an error.
    failed = client.wait_for_job_conditions("boom", expected_conditions={"Failed"})
    assert client.is_job_failed(job=failed)


def test_waiting_for_running_returns_before_the_end(cluster: Any, namespace: str) -> None:
    client = TrainingClient(namespace=namespace, backend=cluster.backend())
    client.create_job(job_manifest("runner", namespace))
    operator = cluster.operator
    operator.later(0.5, (operator.set_condition, "PyTorchJob", namespace, "runner", "Running"))
    seen: list[Any] = []
    job = client.wait_for_job_conditions(
        "runner",
        expected_conditions={"Running"},
        wait_timeout=30,
        polling_interval=0.2,
        callback=seen.append,
    )
    assert client.is_job_running(job=job) and not client.is_job_succeeded(job=job)
    assert seen and seen[-1].metadata.name == "runner"
    assert client.get_job_pod_names("runner") == []  # no pods until the operator makes them
    operator.create_replicas("PyTorchJob", namespace, "runner")
    assert client.get_job_pod_names("runner") == ["runner-master-0", "runner-worker-0"]
    assert client.get_job_pod_names("runner", is_master=True) == ["runner-master-0"]


def test_wait_times_out_with_the_phase_it_saw(cluster: Any, namespace: str) -> None:
    backend = cluster.backend()
    backend.submit(make_job("slow", namespace))
    cluster.operator.set_condition("PyTorchJob", namespace, "slow", "Running")
    started = time.monotonic()
    with pytest.raises(
        WaitTimeout, match=r"timed out after 2s waiting for PyTorchJob .*/slow \(now Running\)"
    ):
        backend.wait("slow", namespace, timeout=2)
    assert time.monotonic() - started < 15


def test_a_job_deleted_while_waiting_ends_the_wait(cluster: Any, namespace: str) -> None:
    backend = cluster.backend()
    backend.submit(make_job("doomed", namespace))
    other = cluster.backend()
    threading.Timer(0.7, other.delete, args=("doomed", namespace)).start()
    with pytest.raises(NotFoundError, match=r"PyTorchJob .*/doomed was deleted while waiting"):
        backend.wait("doomed", namespace, timeout=30)


def test_a_watch_from_an_expired_resource_version_relists(cluster: Any, namespace: str) -> None:
    backend = cluster.backend()
    job = make_job("old", namespace)
    backend.submit(job)
    cluster.operator.set_condition("PyTorchJob", namespace, "old", "Succeeded")
    # resourceVersion 1 is older than anything the server keeps for this resource: 410 Gone.
    record = backend.wait_for(job, lambda status: status.finished, timeout=30, resource_version="1")
    assert record.status.succeeded
    assert backend.last_watch is not None and backend.last_watch.relists == 1


def test_delete_removes_the_job_its_pods_and_services(cluster: Any, namespace: str) -> None:
    backend = cluster.backend()
    backend.submit(make_job("gone", namespace, workers=2))
    backend.submit(make_job("kept", namespace))
    pods = cluster.operator.create_replicas("PyTorchJob", namespace, "gone")
    cluster.operator.create_replicas("PyTorchJob", namespace, "kept")
    assert len(pods) == 3
    backend.delete("gone", namespace)
    core = cluster.core
    left = {
        p.metadata.name
        for p in core.list_namespaced_pod(namespace).items
        if p.metadata.deletion_timestamp is None
    }
    services = {s.metadata.name for s in core.list_namespaced_service(namespace).items}
    assert left == {"kept-master-0", "kept-worker-0"}
    assert services == {"kept-master-0", "kept-worker-0"}
    with pytest.raises(NotFoundError, match=r"job .*/gone not found"):
        backend.get("gone", namespace)
    with pytest.raises(NotFoundError):
        backend.delete("gone", namespace)


def test_a_finished_job_is_refused_then_replaced_only_when_asked(
    cluster: Any, namespace: str
) -> None:
    backend = cluster.backend()
    backend.submit(make_job("again", namespace))
    first_uid = cluster.operator.job("PyTorchJob", namespace, "again")["metadata"]["uid"]
    cluster.operator.set_condition("PyTorchJob", namespace, "again", "Succeeded")
    with pytest.raises(AlreadyExistsError, match=r"already exists .*\(Succeeded\).*--replace"):
        backend.submit(make_job("again", namespace))
    assert cluster.operator.job("PyTorchJob", namespace, "again")["metadata"]["uid"] == first_uid
    record = backend.submit(make_job("again", namespace), replace=True)
    stored = cluster.operator.job("PyTorchJob", namespace, "again")
    assert stored["metadata"]["uid"] != first_uid and not stored.get("status")
    assert record.status.phase == "Pending"


def test_apply_conflicts_are_taken_over_by_kfkit(cluster: Any, namespace: str) -> None:
    backend = cluster.backend()
    backend.submit(make_job("owned", namespace))
    custom = cluster.operator.custom
    # Someone else changes a field kfkit set (kubectl edit): a plain update, not an apply.
    custom.patch_namespaced_custom_object(
        "kubeflow.org", "v1", namespace, "pytorchjobs", "owned",
        {"spec": {"pytorchReplicaSpecs": {"Worker": {"replicas": 3}}}},
    )  # fmt: skip
    from kfkit.backends.kubernetes.objects import CustomObjects
    from kfkit.backends.kubernetes.resources import PYTORCHJOBS

    objects = CustomObjects(backend.connection, PYTORCHJOBS)
    manifest = make_job("owned", namespace).manifest
    with pytest.raises(ConflictError, match=r"conflict: Apply failed with 1 conflict"):
        objects.apply(manifest, namespace, force=False)
    objects.apply(manifest, namespace)  # force: kfkit's manifest is the source of truth
    stored = cluster.operator.job("PyTorchJob", namespace, "owned")
    assert stored["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 1


def test_logs_stream_through_the_api_server(cluster: Any, namespace: str) -> None:
    kubelet = cluster.fake_kubelet()
    backend = cluster.backend(log_start_timeout=10)
    backend.submit(make_job("talk", namespace))
    operator = cluster.operator
    operator.create_replicas("PyTorchJob", namespace, "talk", node="fake-node")
    kubelet.logs[(namespace, "talk-master-0")] = [f"master step {i}" for i in range(5)]
    kubelet.logs[(namespace, "talk-worker-0")] = [f"worker step {i}" for i in range(5)]

    # Nothing has started: a clear error rather than an empty output.
    with pytest.raises(
        KfkitError,
        match=r"no logs yet: no replica has started: master-0 \(Pending\), worker-0 \(Pending\)$",
    ):
        list(backend.logs("talk", namespace))

    operator.set_pod_phase(namespace, "talk-master-0", "Running", "pytorch")
    lines = list(backend.logs("talk", namespace))
    assert lines == [("master-0", f"master step {i}") for i in range(5)]

    # Following both: the worker starts later, its lines arrive once it has.
    operator.later(1.0, (operator.set_pod_phase, namespace, "talk-worker-0", "Running", "pytorch"))
    followed = list(backend.logs("talk", namespace, follow=True))
    assert sorted(followed) == sorted(
        [("master-0", f"master step {i}") for i in range(5)]
        + [("worker-0", f"worker step {i}") for i in range(5)]
    )
    assert any("follow=true" in request for request in kubelet.requests)

    # The SDK-shaped client follows the pods that have started when it is called.
    client = TrainingClient(namespace=namespace, backend=backend)
    logs, events = client.get_job_logs("talk", is_master=False, follow=True)
    assert events == {}
    assert logs == {
        "talk-master-0": "".join(f"master step {i}\n" for i in range(5)),
        "talk-worker-0": "".join(f"worker step {i}\n" for i in range(5)),
    }
    assert client.get_job_logs("talk", is_master=False, replica_type="worker")[0] == {
        "talk-worker-0": logs["talk-worker-0"]
    }
    assert client.get_job_logs("talk")[0] == {"talk-master-0": logs["talk-master-0"]}


def test_following_a_replica_that_never_starts_times_out(cluster: Any, namespace: str) -> None:
    backend = cluster.backend(log_start_timeout=1.5)
    backend.submit(make_job("stuck", namespace))
    cluster.operator.create_replicas("PyTorchJob", namespace, "stuck")
    with pytest.raises(
        KfkitError, match=r"replica master-0 did not start within 2s \(not scheduled\)"
    ):
        list(backend.logs("stuck", namespace, replica="master-0", follow=True))
    with pytest.raises(
        NotFoundError, match=r"replica 'chief-0' not found .*\(master-0, worker-0\)"
    ):
        list(backend.logs("stuck", namespace, replica="chief-0"))


def test_the_cli_verbs_run_against_the_cluster(
    cluster: Any, namespace: str, tmp_path: Path, capsys: Any
) -> None:
    from kfkit.cli.main import main

    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(job_manifest("cli", "ignored")))
    flags = ["--backend", "kubernetes", "--kubeconfig", str(cluster.server.kubeconfig)]
    flags += ["-n", namespace]
    operator = cluster.operator

    def created() -> None:
        """The operator acts once the CLI has created the job (however slow it starts)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                operator.job("PyTorchJob", namespace, "cli")
                return
            except ApiException:
                time.sleep(0.1)

    operator.later(
        0.0,
        (created,),
        (operator.set_condition, "PyTorchJob", namespace, "cli", "Running"),
        (operator.set_condition, "PyTorchJob", namespace, "cli", "Succeeded"),
    )
    assert main(["run", "-f", str(manifest), *flags, "--timeout", "30"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("pytorchjob.kubeflow.org/cli created\n")
    assert "pytorchjob.kubeflow.org/cli Succeeded" in captured.out
    assert f"PyTorchJob {namespace}/cli runs on the kubernetes backend" in captured.err
    assert main(["delete", "job", "cli", *flags]) == 0
    assert main(["describe", "job", "cli", *flags]) == 2
    assert f"job {namespace}/cli not found" in capsys.readouterr().err


def test_events_of_a_large_job_come_from_one_namespace_list(cluster: Any, namespace: str) -> None:
    backend = cluster.backend()
    backend.submit(make_job("wide", namespace, workers=8))  # 9 pods + the job: above the cut-off
    backend.submit(make_job("other", namespace))
    operator = cluster.operator
    operator.create_replicas("PyTorchJob", namespace, "wide")
    operator.event(namespace, "Pod", "wide-worker-7", "Warning", "FailedScheduling", "no nodes")
    operator.event(namespace, "PyTorchJob", "other", "Normal", "Unrelated", "not this job")
    operator.event(namespace, "PyTorchJob", "wide", "Normal", "SuccessfulCreatePod", "created")
    record = backend.get("wide", namespace)
    assert len(record.replicas) == 9
    assert [(e["object"], e["reason"]) for e in record.events] == [
        ("Pod/wide-worker-7", "FailedScheduling"),
        ("PyTorchJob/wide", "SuccessfulCreatePod"),
    ]


def test_a_wait_survives_its_connection_being_cut(
    cluster: Any, namespace: str, tmp_path: Path
) -> None:
    from .conftest import CuttableProxy

    proxy = CuttableProxy(cluster.server.port)
    try:
        kubeconfig = proxy.kubeconfig(Path(cluster.server.kubeconfig), tmp_path)
        backend = cluster.backend(kubeconfig=kubeconfig, watch_retry_delays=(0.2, 0.2, 0.2))
        backend.submit(make_job("cut", namespace))
        operator = cluster.operator
        threading.Timer(1.0, proxy.cut).start()
        operator.later(2.0, (operator.set_condition, "PyTorchJob", namespace, "cut", "Succeeded"))
        record = backend.wait("cut", namespace, timeout=30)
        assert record.status.succeeded
        assert proxy.cuts >= 1
        # The cut watch ended in an error (retried after a pause) or as if closed (resumed).
        watcher = backend.last_watch
        assert watcher is not None and watcher.dropped + watcher.reconnects >= 1
    finally:
        proxy.close()


def test_a_wait_reports_a_server_that_went_away(
    cluster: Any, namespace: str, tmp_path: Path
) -> None:
    from kfkit.backends.kubernetes.connection import ServerUnreachableError

    from .conftest import CuttableProxy

    proxy = CuttableProxy(cluster.server.port)
    kubeconfig = proxy.kubeconfig(Path(cluster.server.kubeconfig), tmp_path)
    backend = cluster.backend(kubeconfig=kubeconfig, watch_retry_delays=(0.2, 0.2))
    backend.submit(make_job("away", namespace))
    threading.Timer(1.0, proxy.close).start()
    with pytest.raises(
        ServerUnreachableError, match=r"waiting for PyTorchJob .*/away: cannot reach"
    ):
        backend.wait("away", namespace, timeout=30)
    # Two failed attempts were retried after a pause; the third is reported.
    assert backend.last_watch is not None and backend.last_watch.dropped == 2


def test_kill_replica_deletes_only_that_pod(cluster: Any, namespace: str) -> None:
    # Recreating the pod is the operator's work, which does not run here: this checks
    # only that kfkit removes the one pod, at once, through the real API.
    backend = cluster.backend()
    backend.submit(make_job("faulty", namespace, workers=2))
    cluster.operator.create_replicas("PyTorchJob", namespace, "faulty")
    backend.kill_replica("faulty", "worker-1", namespace)
    left = {
        p.metadata.name
        for p in cluster.core.list_namespaced_pod(namespace).items
        if p.metadata.deletion_timestamp is None
    }
    assert left == {"faulty-master-0", "faulty-worker-0"}
    with pytest.raises(KfkitError, match="faulty-worker-7"):
        backend.kill_replica("faulty", "worker-7", namespace)
