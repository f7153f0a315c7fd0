"""Every manifest under manifests/ passes a real kube-apiserver 1.20 with the chart's CRDs.

The chart's CRDs are applied (the API server itself checks that they are structural),
then ``kubectl apply --dry-run=server`` must accept every file under manifests/, and must
refuse a set of broken ones with the API server's own message (``--validate=false`` for
those, so that the message comes from the server and not from kubectl's client-side check).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfkit.platform.apiserver import LocalApiServer, apiserver_missing_reason
from kfkit.platform.helm import render

from .conftest import MANIFESTS

pytestmark = pytest.mark.apiserver

MANIFEST_FILES = sorted(MANIFESTS.rglob("*.yaml"))


def kubectl(binary: Path, server: LocalApiServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), "--kubeconfig", str(server.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def server(
    helm_bin: Path, kubectl_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalApiServer]:
    reason = apiserver_missing_reason()
    if reason:
        pytest.skip(reason)
    with LocalApiServer() as started:
        crds = [obj for obj in render() if obj["kind"] == "CustomResourceDefinition"]
        crd_file = tmp_path_factory.mktemp("crds") / "crds.yaml"
        crd_file.write_text(yaml.safe_dump_all(crds))
        applied = kubectl(kubectl_bin, started, "apply", "-f", str(crd_file))
        assert applied.returncode == 0, applied.stderr
        established = kubectl(
            kubectl_bin,
            started,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        )
        assert established.returncode == 0, established.stderr
        for namespace in sorted(manifest_namespaces()):
            kubectl(kubectl_bin, started, "create", "namespace", namespace)
        yield started


def manifest_namespaces() -> set[str]:
    namespaces = set()
    for path in MANIFEST_FILES:
        for obj in yaml.safe_load_all(path.read_text()):
            if isinstance(obj, dict):
                namespaces.add((obj.get("metadata") or {}).get("namespace") or "default")
    return namespaces - {"default"}


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_the_server_accepts_every_manifest(
    server: LocalApiServer, kubectl_bin: Path, path: Path
) -> None:
    result = kubectl(kubectl_bin, server, "apply", "--dry-run=server", "-f", str(path))
    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout


def pytorchjob(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "broken"},
        "spec": spec,
    }


WORKER = {"replicas": 1, "template": {"spec": {"containers": [{"name": "pytorch", "image": "x"}]}}}
BROKEN: dict[str, tuple[dict[str, Any], str]] = {
    "pytorchjob-without-replica-specs": (
        pytorchjob({}),
        "spec.pytorchReplicaSpecs: Required value",
    ),
    "pytorchjob-replicas-as-text": (
        pytorchjob({"pytorchReplicaSpecs": {"Worker": {**WORKER, "replicas": "two"}}}),
        "spec.pytorchReplicaSpecs.Worker.replicas in body must be of type integer",
    ),
    "pytorchjob-suspend-as-text": (
        pytorchjob({"pytorchReplicaSpecs": {"Worker": WORKER}, "runPolicy": {"suspend": "no"}}),
        "spec.runPolicy.suspend in body must be of type boolean",
    ),
    "tfjob-backoff-limit-as-text": (
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "TFJob",
            "metadata": {"name": "broken"},
            "spec": {"tfReplicaSpecs": {"Worker": WORKER}, "runPolicy": {"backoffLimit": "3"}},
        },
        "spec.runPolicy.backoffLimit in body must be of type integer",
    ),
    "poddefault-without-selector": (
        {
            "apiVersion": "kubeflow.org/v1alpha1",
            "kind": "PodDefault",
            "metadata": {"name": "broken"},
            "spec": {},
        },
        "spec.selector: Required value",
    ),
    "notebook-template-as-text": (
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "Notebook",
            "metadata": {"name": "broken"},
            "spec": {"template": "x"},
        },
        "spec.template in body must be of type object",
    ),
    "pvc-size-in-gigabits": (
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "broken"},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gb"}},
            },
        },
        "quantities must match the regular expression",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_server_refuses_broken_manifests_with_its_message(
    server: LocalApiServer, kubectl_bin: Path, tmp_path: Path, case: str
) -> None:
    obj, message = BROKEN[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(yaml.safe_dump(obj))
    result = kubectl(
        kubectl_bin, server, "apply", "--dry-run=server", "--validate=false", "-f", str(path)
    )
    assert result.returncode != 0
    assert "Error from server" in result.stderr or "is invalid" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
