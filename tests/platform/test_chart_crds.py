"""The chart's own CRDs accept every manifest the upstream CRDs accept.

The chart writes compact structural schemas instead of shipping upstream's generated ones.
This file checks, without a server, that every custom resource under manifests/ that the
upstream CRD (../shared/crds) accepts is accepted by the chart's CRD too, with the same
jsonschema reading of ``openAPIV3Schema`` (a field the schema does not declare counts as a
problem unless x-kubernetes-preserve-unknown-fields allows it, as strict kubectl would). The
real API server tier (test_platform_manifests_apiserver.py) repeats it with kube-apiserver.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfkit.platform.helm import render

from .conftest import MANIFESTS


def custom_resources() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            if isinstance(obj, dict) and str(obj.get("apiVersion", "")).startswith("kubeflow.org/"):
                found.append(
                    (f"{path.relative_to(MANIFESTS)}:{obj['kind']}/{obj['metadata']['name']}", obj)
                )
    return found


@pytest.fixture(scope="module")
def chart_schemas(helm_bin: Path, crd_schemas: Any) -> Any:
    crds = [obj for obj in render() if obj["kind"] == "CustomResourceDefinition"]
    return crd_schemas(crds, name="chart")


def chart_problems(schemas: Any, obj: dict[str, Any]) -> list[str]:
    return list(schemas.validate(obj))


def test_there_are_custom_resources_to_check() -> None:
    kinds = {obj["kind"] for _, obj in custom_resources()}
    assert {"PyTorchJob", "PodDefault", "Notebook"} <= kinds


def test_what_upstream_accepts_the_chart_accepts(
    chart_schemas: Any,
    upstream_crd_validator: Callable[[dict[str, Any]], list[str]],
) -> None:
    accepted_upstream = [(w, o) for w, o in custom_resources() if not upstream_crd_validator(o)]
    assert accepted_upstream, "no manifest under manifests/ passes the upstream CRDs"
    problems = [f"{w}: {p}" for w, o in accepted_upstream for p in chart_problems(chart_schemas, o)]
    assert problems == []


def test_the_chart_rejects_what_breaks_the_job_level_schema(
    chart_schemas: Any,
    upstream_crd_validator: Callable[[dict[str, Any]], list[str]],
) -> None:
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "broken"},
        "spec": {
            "pytorchReplicaSpecs": {"Worker": {"replicas": "two"}},
            "runPolicy": {"suspend": "no"},
        },
    }
    assert upstream_crd_validator(job)  # upstream refuses it ...
    problems = chart_problems(chart_schemas, job)  # ... and so does the chart
    assert any("'two' is not of type 'integer'" in p for p in problems)
    assert any("'no' is not of type 'boolean'" in p for p in problems)
    missing = {**job, "spec": {}}
    assert any(
        "'pytorchReplicaSpecs' is a required property" in p
        for p in chart_problems(chart_schemas, missing)
    )
