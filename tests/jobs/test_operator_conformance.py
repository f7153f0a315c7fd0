"""Conformance with training-operator v1.9.0: upstream's own test cases, as manifests.

The cases live in ``tests/jobs/conformance/operator/*.yaml``; each names the
upstream test it mirrors (``upstream:``), or ``null`` for a code path upstream
does not test. The webhook cases call :func:`kfkit.jobs.webhook.validate`
directly, as the Go tests call ``validatePyTorchJob``/``validateTFJob``, and
then load the same manifest through :func:`kfkit.jobs.load.load_manifest`, so
what kfkit admits is exactly what the webhook admits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kfkit.errors import ValidationError
from kfkit.jobs.defaults import apply_defaults
from kfkit.jobs.environment import Network, operator_env
from kfkit.jobs.load import load_manifest
from kfkit.jobs.model import Job, Replica
from kfkit.jobs.schema import check_job
from kfkit.jobs.webhook import validate

CASES = Path(__file__).parent / "conformance" / "operator"


def cases(file: str) -> list[Any]:
    loaded = yaml.safe_load((CASES / file).read_text())["cases"]
    return [pytest.param(case, id=case["name"]) for case in loaded]


def manifest(kind: str, spec: dict[str, Any], metadata: dict[str, Any] | None = None) -> Any:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": kind,
        "metadata": metadata or {"name": "test"},
        "spec": spec,
    }


def check_webhook_case(kind: str, case: dict[str, Any]) -> None:
    submitted = manifest(kind, case["spec"], case.get("metadata"))
    old = manifest(kind, case["old_spec"]) if "old_spec" in case else None
    admission = validate(submitted, old)
    got = sorted([error.type, error.path] for error in admission.errors)
    assert got == sorted(case["errors"]), case["upstream"]
    assert admission.warnings == case.get("warnings", []), case["upstream"]
    if old is not None:
        return  # an update: kfkit never updates a job in place
    if case["errors"]:
        with pytest.raises(ValidationError) as raised:
            load_manifest(submitted, "job.yaml")
        # kfkit's schema check is the pod's validation too (a container needs a name),
        # so it may refuse before the webhook is asked; otherwise the webhook's lines.
        schema = check_job(submitted, f"{kind}Spec")
        expected = schema or [str(error) for error in admission.errors]
        assert raised.value.lines() == [f"job.yaml: {line}" for line in expected]
    else:
        job = load_manifest(submitted, "job.yaml")
        assert job.warnings == case.get("warnings", []) + case.get("advisories", [])


@pytest.mark.parametrize("case", cases("webhook-pytorch.yaml"))
def test_pytorch_webhook(case: dict[str, Any]) -> None:
    check_webhook_case("PyTorchJob", case)


@pytest.mark.parametrize("case", cases("webhook-tensorflow.yaml"))
def test_tensorflow_webhook(case: dict[str, Any]) -> None:
    check_webhook_case("TFJob", case)


@pytest.mark.parametrize("case", cases("defaults.yaml"))
def test_defaults(case: dict[str, Any]) -> None:
    defaulted = apply_defaults(manifest(case["kind"], case["spec"]))["spec"]
    for key, expected in case["expect"].items():
        assert defaulted.get(key) == expected, (case["upstream"], key)
    for key in case.get("absent", []):
        assert key not in defaulted, (case["upstream"], key)


@pytest.mark.parametrize("case", cases("environment.yaml"))
def test_environment(case: dict[str, Any]) -> None:
    spec = case["job"]
    metadata = {"name": spec["name"], "namespace": spec.get("namespace", "default")}
    job: Job = load_manifest(manifest(spec["kind"], spec["spec"], metadata), "job.yaml")
    network = Network(job, cluster_domain=case.get("cluster_domain", ""))
    replica = Replica(*case["replica"])
    env = [list(item) for item in operator_env(job, replica, network, job.info.container_name)]
    if "env" in case:
        assert env == case["env"], case["upstream"]
    for item in case.get("contains", []):
        assert item in env, (case["upstream"], item)
    names = {name for name, _ in env}
    for name in case.get("absent", []):
        assert name not in names, (case["upstream"], name)


def test_admitted_cases_are_admitted_by_the_upstream_crd_schema(upstream_crd_validator) -> None:
    """What kfkit admits (with at most warnings) the CRD schema admits too."""
    for file, kind in (
        ("webhook-pytorch.yaml", "PyTorchJob"),
        ("webhook-tensorflow.yaml", "TFJob"),
    ):
        for param in cases(file):
            case = param.values[0]
            submitted = manifest(kind, case["spec"], case.get("metadata"))
            problems = upstream_crd_validator(submitted)
            if not case["errors"]:
                assert problems == [], (file, case["name"])
            elif case.get("crd_refuses"):
                assert problems, (file, case["name"])


def test_every_case_names_its_upstream_test() -> None:
    """Mirrored cases name a test in the v1.9.0 tree; the others say null."""
    for file in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(file.read_text())["cases"]:
            assert "upstream" in case, (file.name, case["name"])
            upstream = case["upstream"]
            assert upstream is None or upstream.split()[0].endswith("_test.go"), case["name"]
