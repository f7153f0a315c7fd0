"""Every custom resource we ship under manifests/ is accepted by the upstream Kubeflow CRDs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kfkit.jobs.load import load_jobs

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = sorted((REPO / "manifests").rglob("*.yaml"))


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(REPO)))
def test_custom_resources_validate_against_upstream_crds(path: Path, upstream_crds) -> None:
    for doc in _documents(path):
        if doc.get("apiVersion", "").startswith("kubeflow.org/"):
            assert upstream_crds.validate(doc) == [], f"{path}: {doc['kind']}"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(REPO)))
def test_training_jobs_pass_kfkit_validation(path: Path) -> None:
    if any(doc.get("kind") in ("PyTorchJob", "TFJob") for doc in _documents(path)):
        assert load_jobs([path], skip_other_kinds=True)


def test_the_oracle_rejects_a_broken_job(upstream_crds) -> None:
    broken = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "x"},
        "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": "one", "templat": {}}}},
    }
    problems = upstream_crds.validate(broken)
    assert any("replicas" in p for p in problems)
    assert any("templat: unknown field" in p for p in problems)
