"""Builders of small job manifests for the job-model tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml


def pod(container: str, command: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    spec = {"name": container, "image": "kfkit/test:1"}
    if command is not None:
        spec["command"] = command
    spec.update(extra)
    return {"spec": {"containers": [spec]}}


def pytorch_job(name: str = "demo", workers: int = 1, **spec: Any) -> dict[str, Any]:
    replica_specs: dict[str, Any] = {"Master": {"replicas": 1, "template": pod("pytorch")}}
    if workers:
        replica_specs["Worker"] = {"replicas": workers, "template": pod("pytorch")}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": replica_specs, **spec},
    }


def tf_job(name: str = "tfdemo", **types: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {
            "tfReplicaSpecs": {
                t: {"replicas": n, "template": pod("tensorflow")} for t, n in types.items()
            }
        },
    }


@pytest.fixture
def write_manifest(tmp_path: Path) -> Callable[..., Path]:
    """Write one or more documents to a YAML file and return its path."""

    def write(*documents: dict[str, Any], name: str = "job.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump_all([copy.deepcopy(d) for d in documents]))
        return path

    return write


@pytest.fixture
def build() -> Any:
    """``build.pytorch_job(...)``, ``build.tf_job(...)``, ``build.pod(...)``."""
    import types

    return types.SimpleNamespace(pytorch_job=pytorch_job, tf_job=tf_job, pod=pod)
