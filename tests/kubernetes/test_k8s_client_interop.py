"""One script of SDK-style calls, run by kfkit's client and by kubeflow-training's own.

Both clients talk to the same real kube-apiserver (see conftest.py), each in a
namespace of its own, and the stand-in operator plays the same steps for each
job; every result of the script is then compared. No pod ever starts here, so
what is compared is create / get / list / update / delete, conditions, waits,
pod lookup by the operator's labels and log reads through the API server.

The one expected difference: kfkit admits and defaults a job before it creates
it (the operator's webhook does so on a cluster), so kfkit's stored spec is the
SDK's stored spec with the operator's defaults applied.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubeflow.training import TrainingClient as SdkClient
from kubernetes import client as k8s
from kubernetes import config

from kfkit.client import TrainingClient, job_from_manifest
from kfkit.client.models import to_dict

pytestmark = pytest.mark.apiserver

SERVER_METADATA = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")


def train(parameters):
    print("lr", parameters["lr"])


def outcome(call: Any) -> tuple[str, Any]:
    """What a call did: ``("ok", result)`` or ``("raised", the SDK-visible exception types)``."""
    try:
        return "ok", call()
    except Exception as error:
        kinds = [
            k.__name__ for k in (RuntimeError, TimeoutError, ValueError) if isinstance(error, k)
        ]
        return "raised", kinds


def comparable(model: Any) -> dict[str, Any]:
    """A job model as JSON without what the server stamps or the clock decides."""
    obj = to_dict(model)
    metadata = {k: v for k, v in obj["metadata"].items() if k not in SERVER_METADATA}
    metadata.pop("namespace")
    conditions = [
        {k: v for k, v in c.items() if not k.endswith("Time")}
        for c in (obj.get("status") or {}).get("conditions") or []
    ]
    return {"metadata": metadata, "spec": obj["spec"], "conditions": conditions}


def without_tcp(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` without ``protocol: TCP`` on ports: the API server's schema default, so a port
    kfkit's defaults add before creating comes back with it, one added after does not."""
    spec = copy.deepcopy(spec)
    for replica in spec["pytorchReplicaSpecs"].values():
        for container in replica["template"]["spec"]["containers"]:
            for port in container.get("ports") or []:
                if port.get("protocol") == "TCP":
                    del port["protocol"]
    return spec


def operator_steps(cluster: Any, namespace: str) -> None:
    """What the operator would do for the script's jobs; the same for both namespaces."""
    operator = cluster.operator
    operator.set_condition("PyTorchJob", namespace, "fn", "Created")
    operator.create_replicas("PyTorchJob", namespace, "fn", node="fake-node")
    operator.set_condition("PyTorchJob", namespace, "fn", "Running")
    for pod in ("fn-master-0", "fn-worker-0"):
        operator.set_pod_phase(namespace, pod, "Running", "pytorch")
        cluster.kubelet.logs[(namespace, pod)] = [f"{pod} step {i}" for i in range(3)]
    operator.set_condition("PyTorchJob", namespace, "boom", "Created")
    operator.set_condition("PyTorchJob", namespace, "boom", "Failed", "PyTorchJobFailed", "no")


def script(client: Any, cluster: Any, namespace: str) -> dict[str, Any]:
    """The calls, in order; each result kept under a name."""
    results: dict[str, Any] = {}
    results["create fn"] = outcome(
        lambda: client.create_job(
            name="fn", train_func=train, parameters={"lr": 0.1}, num_workers=2, labels={"a": "b"}
        )
    )
    results["create boom"] = outcome(
        lambda: client.create_job(name="boom", base_image="kfkit/test:1", num_workers=1)
    )
    results["create fn again"] = outcome(
        lambda: client.create_job(name="fn", base_image="kfkit/test:1")
    )
    results["pods before the operator"] = client.get_job_pod_names("fn")
    results["created before the operator"] = client.is_job_created("fn")
    operator_steps(cluster, namespace)

    job = client.get_job("fn")
    results["get fn"] = comparable(job)
    results["model type"] = type(job).__name__
    results["list"] = sorted(j.metadata.name for j in client.list_jobs())
    results["list TFJob"] = client.list_jobs(job_kind="TFJob")
    results["conditions"] = [(c.type, c.status) for c in client.get_job_conditions("fn")]
    results["is"] = [
        check("fn")
        for check in (
            client.is_job_created,
            client.is_job_running,
            client.is_job_restarting,
            client.is_job_succeeded,
            client.is_job_failed,
        )
    ]
    running = client.wait_for_job_conditions(
        "fn", expected_conditions={"Running"}, polling_interval=1
    )
    results["wait Running"] = comparable(running)["conditions"]
    results["wait fails"] = outcome(
        lambda: client.wait_for_job_conditions("boom", polling_interval=1)
    )
    results["wait Failed"] = outcome(
        lambda: (
            client.wait_for_job_conditions(
                "boom", expected_conditions={"Failed"}, polling_interval=1
            ).metadata.name
        )
    )
    results["wait times out"] = outcome(
        lambda: client.wait_for_job_conditions("fn", wait_timeout=2, polling_interval=1)
    )
    results["wait bad condition"] = outcome(
        lambda: client.wait_for_job_conditions("fn", expected_conditions={"Done"})
    )
    results["pod names"] = {
        "default": client.get_job_pod_names("fn"),
        "is_master": client.get_job_pod_names("fn", is_master=True),
        "worker 0": client.get_job_pod_names("fn", replica_type="worker", replica_index=0),
    }
    results["pod types"] = sorted({type(p).__name__ for p in client.get_job_pods("fn")})
    results["logs master"] = client.get_job_logs("fn")
    results["logs all"] = client.get_job_logs("fn", is_master=False)
    results["bad replica type"] = outcome(lambda: client.get_job_pods("fn", replica_type="Boss"))

    job.metadata.labels = {"a": "c", "updated": "yes"}
    results["update"] = outcome(lambda: client.update_job(job, "fn"))
    results["labels after update"] = client.get_job("fn").metadata.labels
    results["get missing"] = outcome(lambda: client.get_job("missing"))
    results["delete missing"] = outcome(lambda: client.delete_job("missing"))
    results["delete"] = outcome(lambda: client.delete_job("boom"))
    results["get deleted"] = outcome(lambda: client.get_job("boom"))
    results["bad kind"] = outcome(lambda: client.get_job("fn", job_kind="Nope"))
    return results


def test_the_same_calls_give_the_same_results(cluster: Any) -> None:
    cluster.fake_kubelet()
    kfkit_namespace, sdk_namespace = cluster.namespace("kfkit"), cluster.namespace("sdk")
    kubeconfig = str(cluster.server.kubeconfig)
    ours = script(
        TrainingClient(config_file=kubeconfig, namespace=kfkit_namespace), cluster, kfkit_namespace
    )
    # The SDK's config_file= would load the kubeconfig into the process-wide default
    # configuration; a configuration object of its own keeps other tests unaffected.
    configuration = k8s.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    sdk = SdkClient(client_configuration=configuration, namespace=sdk_namespace)
    theirs = script(sdk, cluster, sdk_namespace)

    # kfkit created the SDK's job plus the operator's defaults; everything else is equal.
    sdk_spec = job_from_manifest(
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {"name": "fn", "namespace": sdk_namespace},
            "spec": theirs["get fn"]["spec"],
        }
    ).manifest["spec"]
    assert without_tcp(ours["get fn"]["spec"]) == without_tcp(sdk_spec)
    ours["get fn"]["spec"] = theirs["get fn"]["spec"]
    assert {k: v for k, v in ours.items() if k != "get fn"} == {
        k: v for k, v in theirs.items() if k != "get fn"
    }
    assert ours["get fn"] == theirs["get fn"]
    # And the results are the ones a user expects, not merely equal.
    assert theirs["create fn again"] == ("raised", ["RuntimeError"])
    assert (
        theirs["pods before the operator"] == [] and theirs["created before the operator"] is False
    )
    assert theirs["is"] == [True, True, False, False, False]
    assert theirs["wait fails"] == ("raised", ["RuntimeError"])
    assert theirs["wait times out"] == ("raised", ["TimeoutError"])
    assert theirs["wait bad condition"] == ("raised", ["ValueError"])
    assert theirs["pod names"]["is_master"] == ["fn-master-0"]
    assert theirs["logs master"] == (
        {"fn-master-0": "fn-master-0 step 0\nfn-master-0 step 1\nfn-master-0 step 2\n"},
        {},
    )
    assert theirs["labels after update"] == {"a": "c", "updated": "yes"}
    assert theirs["get deleted"] == ("raised", ["RuntimeError"])
