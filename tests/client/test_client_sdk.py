"""kfkit's TrainingClient against kubeflow-training 1.9.4 itself: signatures, jobs, exceptions.

The SDK is installed in the test virtualenv (requirements/runtime.txt), so each
check compares with the real thing rather than with a description of it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubeflow.training import TrainingClient as SdkClient
from kubeflow.training import models
from kubernetes import client as k8s

from kfkit.backends.base import JobRecord, JobStatus
from kfkit.client import TrainingClient, job_from_manifest
from kfkit.client.functions import job_from_function
from kfkit.client.models import to_dict
from kfkit.errors import KfkitError, NotFoundError
from kfkit.jobs.model import Job

# The only differences of signature, each on purpose (docs/kubernetes.md says why).
SIGNATURE_DIFFERENCES = {
    # The SDK computes this default when it is imported, from ~/.kube/config; kfkit
    # resolves None when the client is made, from the backend it uses.
    ("__init__", "namespace"),
    # kfkit's one addition to the constructor, keyword-only.
    ("__init__", "backend"),
}
KFKIT_ADDITIONS = {"create_jobs", "stream_job_logs"}


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") or name == "__init__"
    }


def test_every_sdk_method_is_there_and_no_other() -> None:
    ours, theirs = public_methods(TrainingClient), public_methods(SdkClient)
    assert set(theirs) <= set(ours)
    assert set(ours) - set(theirs) == KFKIT_ADDITIONS


@pytest.mark.parametrize("method", sorted(public_methods(SdkClient)))
def test_each_method_has_the_sdks_parameters_and_defaults(method: str) -> None:
    """Names, order, kinds and defaults of every parameter (annotations are not compared:
    the SDK's are typing objects, kfkit's are strings)."""
    ours = inspect.signature(getattr(TrainingClient, method)).parameters
    theirs = inspect.signature(getattr(SdkClient, method)).parameters

    def shape(parameters: Any) -> list[tuple[str, Any, Any]]:
        return [
            (name, p.kind, p.default)
            for name, p in parameters.items()
            if (method, name) not in SIGNATURE_DIFFERENCES
        ]

    assert shape(ours) == shape(theirs)


def test_the_signature_differences_are_the_documented_ones() -> None:
    init = inspect.signature(TrainingClient.__init__).parameters
    assert init["namespace"].default is None
    assert init["backend"].kind is inspect.Parameter.KEYWORD_ONLY
    doc = (Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md").read_text()
    assert "`backend=`" in doc and "imported" in doc


# --- the job a function makes ----------------------------------------------------------------


@pytest.fixture
def sdk_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SdkClient, list[Any]]]:
    """The SDK's client, with the bodies it would send to the API server kept, not sent.

    Only the transport is replaced; everything that builds the job is the SDK's.
    """
    sdk = SdkClient(client_configuration=k8s.Configuration(host="http://127.0.0.1:9"))
    sent: list[Any] = []

    def keep(group: str, version: str, namespace: str, plural: str, body: Any) -> None:
        sent.append((namespace, plural, body))

    monkeypatch.setattr(sdk.custom_api, "create_namespaced_custom_object", keep)
    yield sdk, sent


def hello(parameters):
    """Runs in the job from its source alone: no annotation may name this module's imports."""
    import os

    print("rank", os.environ.get("RANK"), "lr", parameters["lr"])


FUNCTION_CALLS: dict[str, dict[str, Any]] = {
    "one-worker": {"train_func": hello, "parameters": {"lr": 0.1}, "num_workers": 1},
    "three-workers-torchrun": {"train_func": hello, "parameters": {"lr": 1}, "num_workers": 3},
    "procs-per-worker": {
        "train_func": hello,
        "parameters": {"lr": 1},
        "num_workers": 1,
        "num_procs_per_worker": "auto",
    },
    "image-only": {"base_image": "kfkit/test:1", "num_workers": 2},
    "resources-env-labels": {
        "train_func": hello,
        "parameters": {"lr": 2},
        "num_workers": 2,
        "resources_per_worker": {"CPU": "1", "memory": "1Gi", "gpu": "1"},
        "env_vars": {"A": "1"},
        "labels": {"team": "a"},
        "annotations": {"note": "x"},
    },
    "packages": {
        "train_func": hello,
        "parameters": {"lr": 1},
        "num_workers": 1,
        "packages_to_install": ["numpy==2.4.6"],
        "pip_index_url": "https://example.org/simple",
    },
    "tfjob-chief-ps": {
        "train_func": hello,
        "parameters": {"lr": 1},
        "job_kind": "TFJob",
        "num_workers": 2,
        "num_chief_replicas": 1,
        "num_ps_replicas": 1,
    },
}


@pytest.mark.parametrize("case", sorted(FUNCTION_CALLS))
def test_a_function_makes_the_sdks_job(
    case: str, sdk_requests: tuple[SdkClient, list[Any]]
) -> None:
    sdk, sent = sdk_requests
    call = dict(FUNCTION_CALLS[case])
    sdk.create_job(name="fn", namespace="team-a", **call)
    [(namespace, plural, body)] = sent
    kind = call.pop("job_kind", "PyTorchJob")
    ours = job_from_function(
        name="fn",
        namespace="team-a",
        job_kind=kind,
        **{
            "labels": None,
            "annotations": None,
            "base_image": None,
            "train_func": None,
            "parameters": None,
            "num_procs_per_worker": None,
            "resources_per_worker": None,
            "num_chief_replicas": None,
            "num_ps_replicas": None,
            "packages_to_install": None,
            "pip_index_url": "https://pypi.org/simple",
            "env_vars": None,
            "volumes": None,
            "volume_mounts": None,
            **call,
        },
    )
    assert namespace == "team-a" and plural == f"{kind.lower()}s"
    assert to_dict(ours) == to_dict(body)
    if "train_func" in call:  # the function's source is in the container's command
        container = to_dict(body)["spec"][f"{'tf' if kind == 'TFJob' else 'pytorch'}ReplicaSpecs"]
        args = next(iter(container.values()))["template"]["spec"]["containers"][0]["args"]
        assert "def hello(parameters" in args[0] and "hello({'lr'" in args[0]
    # kfkit admits it (the operator's webhook rules) and only adds the operator's defaults.
    admitted = job_from_manifest(to_dict(body))
    assert admitted.name == "fn" and admitted.kind == kind


# --- the same arguments, the same exception types ---------------------------------------------


BAD_CREATE_CALLS: dict[str, dict[str, Any]] = {
    "job-and-function": {"job": "MODEL", "train_func": hello},
    "no-name": {"train_func": hello},
    "no-workers": {"name": "x", "train_func": hello, "num_workers": 0},
    "unknown-kind": {"name": "x", "train_func": hello, "job_kind": "SlurmJob"},
    "volumes-without-mounts": {"name": "x", "base_image": "i", "volumes": [{"name": "v"}]},
    "tf-procs": {"name": "x", "train_func": hello, "job_kind": "TFJob", "num_procs_per_worker": 2},
    "pytorch-ps": {"name": "x", "train_func": hello, "num_ps_replicas": 1},
    "not-callable": {"name": "x", "train_func": "hello"},
    "nothing": {},
}


def sdk_model() -> Any:
    return models.KubeflowOrgV1PyTorchJob(
        api_version="kubeflow.org/v1",
        kind="PyTorchJob",
        metadata=models.V1ObjectMeta(name="m"),
        spec=models.KubeflowOrgV1PyTorchJobSpec(
            pytorch_replica_specs={}, run_policy=models.KubeflowOrgV1RunPolicy()
        ),
    )


@pytest.mark.parametrize("case", sorted(BAD_CREATE_CALLS))
def test_bad_create_calls_raise_what_the_sdk_raises(
    case: str, sdk_requests: tuple[SdkClient, list[Any]], kfkit_home: Path
) -> None:
    sdk, sent = sdk_requests
    call = {k: sdk_model() if v == "MODEL" else v for k, v in BAD_CREATE_CALLS[case].items()}
    with pytest.raises(Exception) as theirs:
        sdk.create_job(**call)
    with pytest.raises(Exception) as ours:
        TrainingClient(backend="local").create_job(**call)
    assert isinstance(ours.value, type(theirs.value)), (theirs.value, ours.value)
    assert isinstance(ours.value, KfkitError)
    assert "\n" not in str(ours.value)
    assert sent == []


def test_unsupported_kinds_and_train_are_refused_with_one_line(kfkit_home: Path) -> None:
    with pytest.raises(ValueError, match=r"^job_kind: MPIJob: kfkit runs PyTorchJob and TFJob"):
        TrainingClient(job_kind="MPIJob", backend="local")
    with pytest.raises(ValueError, match=r"^job_kind: Job kind must be one of these"):
        TrainingClient(job_kind="Nope", backend="local")
    with pytest.raises(NotImplementedError, match=r"^train: LLM fine-tuning .* not part of kfkit"):
        TrainingClient(backend="local").train(name="llm")
    with pytest.raises(ValueError, match=r"^packages_to_install: the local backend .*installs"):
        TrainingClient(backend="local").create_job(
            name="p", train_func=hello, packages_to_install=["numpy"]
        )
    with pytest.raises(ValueError, match=r"^delete_options: not supported"):
        TrainingClient(backend="local").delete_job("x", delete_options=models.V1DeleteOptions())


def test_reading_a_missing_job_is_the_sdks_runtime_error(kfkit_home: Path) -> None:
    client = TrainingClient(backend="local")
    for call in (
        lambda: client.get_job("missing"),
        lambda: client.get_job_conditions("missing"),
        lambda: client.wait_for_job_conditions("missing", polling_interval=1),
        lambda: client.delete_job("missing"),
        lambda: client.update_job(sdk_model(), "missing"),
    ):
        with pytest.raises(RuntimeError) as error:
            call()
        assert isinstance(error.value, NotFoundError)
        assert str(error.value).startswith("Failed to ") and "default/missing" in str(error.value)
    assert client.list_jobs() == []
    assert client.get_job_pods("missing") == []
    assert client.get_job_logs("missing") == ({}, {})
    with pytest.raises(ValueError, match=r"^replica_type: 'Worker'"):
        client.get_job_pods("missing", replica_type="Worker")  # the SDK wants lowercase


# --- waiting, against a backend whose job moves on at each poll ------------------------------


class ScriptedBackend:
    """A backend whose one job shows the next status of ``statuses`` at each ``get``."""

    name = "scripted"
    default_namespace = "default"

    def __init__(self, statuses: list[list[tuple[str, str]]]) -> None:
        self.statuses = statuses
        self.gets = 0
        manifest = {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {"name": "j", "namespace": "default"},
            "spec": {"pytorchReplicaSpecs": {}, "runPolicy": {}},
        }
        self.job = Job(manifest=manifest, source="<scripted>")

    def get(self, name: str, namespace: str = "default", kind: str | None = None) -> JobRecord:
        conditions = self.statuses[min(self.gets, len(self.statuses) - 1)]
        self.gets += 1
        status = JobStatus({"conditions": [{"type": t, "status": s} for t, s in conditions]})
        return JobRecord(self.job, status)


CREATED = [("Created", "True")]
RUNNING = [("Created", "True"), ("Running", "True")]
SUCCEEDED = [("Created", "True"), ("Running", "False"), ("Succeeded", "True")]
FAILED = [("Created", "True"), ("Running", "False"), ("Failed", "True")]


def test_waiting_returns_the_model_once_a_condition_holds() -> None:
    backend = ScriptedBackend([CREATED, RUNNING, SUCCEEDED])
    seen: list[Any] = []
    client = TrainingClient(backend=backend)  # type: ignore[arg-type]
    job = client.wait_for_job_conditions("j", polling_interval=0.01, callback=seen.append)
    assert isinstance(job, models.KubeflowOrgV1PyTorchJob)
    assert [c.type for c in job.status.conditions] == ["Created", "Running", "Succeeded"]
    assert len(seen) == 3 and all(isinstance(j, models.KubeflowOrgV1PyTorchJob) for j in seen)
    running = TrainingClient(backend=ScriptedBackend([CREATED, RUNNING]))  # type: ignore[arg-type]
    job = running.wait_for_job_conditions(
        "j", expected_conditions={"Running"}, polling_interval=0.01
    )
    assert running.is_job_running(job=job) and not running.is_job_succeeded(job=job)


def test_a_failed_job_is_a_runtime_error_unless_failed_is_awaited() -> None:
    client = TrainingClient(backend=ScriptedBackend([RUNNING, FAILED]))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=r"^PyTorchJob default/j failed"):
        client.wait_for_job_conditions("j", polling_interval=0.01)
    job = client.wait_for_job_conditions("j", expected_conditions={"Failed"}, polling_interval=1)
    assert client.is_job_failed(job=job)


def test_the_deadline_and_a_job_finished_otherwise_are_timeout_errors() -> None:
    client = TrainingClient(backend=ScriptedBackend([RUNNING]))  # type: ignore[arg-type]
    with pytest.raises(TimeoutError, match=r"expected conditions: Succeeded \(now Running"):
        client.wait_for_job_conditions("j", wait_timeout=1, polling_interval=0.2)
    done = TrainingClient(backend=ScriptedBackend([SUCCEEDED]))  # type: ignore[arg-type]
    with pytest.raises(TimeoutError, match=r"\(it finished as Succeeded\)$") as error:
        done.wait_for_job_conditions("j", expected_conditions={"Restarting"}, wait_timeout=600)
    assert isinstance(error.value, KfkitError)
    with pytest.raises(ValueError, match="expected_conditions: Suspended: must be a subset"):
        done.wait_for_job_conditions("j", expected_conditions={"Suspended"})


def test_a_request_past_its_timeout_is_a_timeout_error() -> None:
    class Slow(ScriptedBackend):
        def get(self, name: str, namespace: str = "default", kind: str | None = None) -> Any:
            import time

            time.sleep(3)
            return super().get(name, namespace, kind)

    client = TrainingClient(backend=Slow([RUNNING]))  # type: ignore[arg-type]
    with pytest.raises(TimeoutError, match=r"^Timeout to get PyTorchJob: default/j$"):
        client.get_job("j", timeout=1)


def test_a_client_configuration_means_that_cluster(free_port: Any) -> None:
    configuration = k8s.Configuration(host=f"https://127.0.0.1:{free_port()}")
    client = TrainingClient(client_configuration=configuration)
    assert client.backend.name == "kubernetes" and client.namespace == "default"
    with pytest.raises(RuntimeError) as error:
        client.get_job("x")
    message = str(error.value)
    assert message.startswith("Failed to get PyTorchJob: default/x. Error: ")
    assert "cannot reach the Kubernetes API server" in message and "\n" not in message


def test_a_local_update_is_a_merge_patch() -> None:
    from kfkit.backends.local import merge_patch

    target = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}}
    patch = {"metadata": {"labels": {"a": "3", "b": None}}}
    assert merge_patch(target, patch) == {"metadata": {"labels": {"a": "3"}}, "spec": {"x": 1}}
    assert target["metadata"]["labels"] == {"a": "1", "b": "2"}  # not changed in place


def test_a_queue_name_is_the_kueue_label(kfkit_home: Path) -> None:
    client = TrainingClient(backend="local")
    client.create_job(name="q", train_func=hello, parameters={"lr": 1}, queue_name="team-queue")
    try:
        assert client.get_job("q").metadata.labels == {"kueue.x-k8s.io/queue-name": "team-queue"}
    finally:
        client.delete_job("q")
