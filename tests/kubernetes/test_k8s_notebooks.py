"""Notebooks and PodDefaults on a real kube-apiserver, with the repository's own manifests.

No notebook controller or admission webhook runs here: a test plays the
controller by patching the Notebook's ``.status`` through the status
subresource, as the controller does from its StatefulSet's pod. Whether the
webhook really injects the PodDefaults into the notebook's pod is not tested
here (``kfkit.poddefaults`` has the merge rules; ``make e2e-cluster`` the cluster).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfkit.backends.kubernetes.watch import WaitTimeout
from kfkit.errors import NotFoundError, ValidationError

from .conftest import now

pytestmark = pytest.mark.apiserver

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = yaml.safe_load((REPO / "manifests/notebook/notebook.yaml").read_text())
PODDEFAULTS = list(yaml.safe_load_all((REPO / "manifests/notebook/poddefaults.yaml").read_text()))


def controller_status(ready: int, **container_state: Any) -> dict[str, Any]:
    """The status the notebook controller copies from the notebook's pod."""
    return {
        "readyReplicas": ready,
        "containerState": container_state or {"running": {"startedAt": now()}},
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastProbeTime": now()}
        ],
    }


def test_poddefaults_are_applied_updated_and_deleted(cluster: Any, namespace: str) -> None:
    notebooks = cluster.backend().notebooks
    for poddefault in PODDEFAULTS:
        notebooks.apply_poddefault(poddefault, namespace, source="poddefaults.yaml")
    names = [p["metadata"]["name"] for p in notebooks.list_poddefaults(namespace)]
    assert names == ["add-test-secret", "mount-shared-workspace"]
    first_uid = notebooks.list_poddefaults(namespace)[0]["metadata"]["uid"]

    changed = copy.deepcopy(PODDEFAULTS[0])
    changed["spec"]["desc"] = "Expose the test secret (changed)"
    stored = notebooks.apply_poddefault(changed, namespace)
    assert stored["metadata"]["uid"] == first_uid  # an apply updates in place
    assert stored["spec"]["desc"] == "Expose the test secret (changed)"

    assert notebooks.delete_poddefault("add-test-secret", namespace)
    assert not notebooks.delete_poddefault("add-test-secret", namespace)
    assert [p["metadata"]["name"] for p in notebooks.list_poddefaults(namespace)] == [
        "mount-shared-workspace"
    ]


def test_an_invalid_poddefault_is_refused_before_sending(cluster: Any, namespace: str) -> None:
    notebooks = cluster.backend().notebooks
    broken = copy.deepcopy(PODDEFAULTS[0])
    del broken["spec"]["selector"]
    with pytest.raises(ValidationError, match=r"^pd.yaml: spec.selector: required$"):
        notebooks.apply_poddefault(broken, namespace, source="pd.yaml")
    assert notebooks.list_poddefaults(namespace) == []


def test_a_notebook_is_created_and_waited_for_until_ready(cluster: Any, namespace: str) -> None:
    notebooks = cluster.backend().notebooks
    stored = notebooks.create_notebook(NOTEBOOK, namespace, source="notebook.yaml")
    assert stored["metadata"]["namespace"] == namespace
    operator = cluster.operator
    creating = controller_status(0, waiting={"reason": "ContainerCreating"})
    operator.later(
        0.5,
        (operator.patch_status, "Notebook", namespace, "tf-notebook", creating),
        (operator.patch_status, "Notebook", namespace, "tf-notebook", controller_status(1)),
    )
    ready = notebooks.wait_notebook_ready("tf-notebook", namespace, timeout=30)
    assert ready["status"]["readyReplicas"] == 1
    assert notebooks.get_notebook("tf-notebook", namespace)["status"]["readyReplicas"] == 1


def test_a_notebook_that_never_gets_ready_says_why(cluster: Any, namespace: str) -> None:
    notebooks = cluster.backend().notebooks
    notebooks.create_notebook(NOTEBOOK, namespace)
    status = controller_status(0, waiting={"reason": "ImagePullBackOff"})
    cluster.operator.patch_status("Notebook", namespace, "tf-notebook", status)
    cluster.operator.event(
        namespace,
        "Pod",
        "tf-notebook-0",
        "Warning",
        "Failed",
        "Failed to pull image kfkit/notebook:0.1.0",
    )
    with pytest.raises(WaitTimeout) as error:
        notebooks.wait_notebook_ready("tf-notebook", namespace, timeout=1.5)
    assert str(error.value) == (
        f"Notebook {namespace}/tf-notebook not ready after 2s (ImagePullBackOff); "
        "last event: Failed: Failed to pull image kfkit/notebook:0.1.0"
    )


def test_a_notebook_deleted_while_waiting_ends_the_wait(cluster: Any, namespace: str) -> None:
    notebooks = cluster.backend().notebooks
    notebooks.create_notebook(NOTEBOOK, namespace)
    operator = cluster.operator
    operator.later(0.5, (notebooks.delete_notebook, "tf-notebook", namespace))
    with pytest.raises(NotFoundError, match=r"tf-notebook was deleted while waiting"):
        notebooks.wait_notebook_ready("tf-notebook", namespace, timeout=30)
    with pytest.raises(NotFoundError, match=r"tf-notebook not found"):
        notebooks.wait_notebook_ready("tf-notebook", namespace, timeout=30)
