"""The restricted-profile check: its rules, the Kaniko exception, and every pod we ship."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfkit.platform import podsecurity
from kfkit.platform.helm import Values, render

from .conftest import MANIFESTS

RESTRICTED_CONTAINER = {
    "name": "pytorch",
    "image": "kfkit/pytorch-mnist:0.1.0",
    "securityContext": {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def pytorchjob(
    container: dict[str, Any], pod_security: dict[str, Any] | None = None
) -> dict[str, Any]:
    template = {
        "spec": {
            "containers": [container],
            **({"securityContext": pod_security} if pod_security else {}),
        }
    }
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "mnist", "namespace": "team"},
        "spec": {"pytorchReplicaSpecs": {"Worker": {"replicas": 2, "template": template}}},
    }


def with_security(**changes: Any) -> dict[str, Any]:
    container = copy.deepcopy(RESTRICTED_CONTAINER)
    for key, value in changes.items():
        if value is None:
            container["securityContext"].pop(key)
        else:
            container["securityContext"][key] = value
    return container


def test_a_restricted_pytorchjob_passes() -> None:
    assert podsecurity.check_object(pytorchjob(RESTRICTED_CONTAINER)) == []


@pytest.mark.parametrize(
    ("container", "problem"),
    [
        (with_security(runAsNonRoot=None), "runAsNonRoot: must be true"),
        (with_security(allowPrivilegeEscalation=None), "allowPrivilegeEscalation: must be false"),
        (with_security(capabilities={"drop": ["NET_RAW"]}), "capabilities.drop: must include ALL"),
        (
            with_security(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
            "capabilities.add: SYS_ADMIN not allowed",
        ),
        (
            with_security(seccompProfile=None),
            "seccompProfile.type: must be RuntimeDefault or Localhost (got nothing)",
        ),
        (with_security(seccompProfile={"type": "Unconfined"}), "(got Unconfined)"),
        (with_security(privileged=True), "privileged: must not be true"),
        (with_security(runAsUser=0), "runAsUser: must not be 0 (root)"),
    ],
)
def test_each_rule_is_enforced_in_a_jobs_replica_template(
    container: dict[str, Any], problem: str
) -> None:
    problems = podsecurity.check_object(pytorchjob(container), source="job.yaml")
    assert len(problems) == 1, problems
    where = "spec.pytorchReplicaSpecs.Worker.template.spec.containers[pytorch]"
    assert problems[0].startswith(f"job.yaml: PyTorchJob/mnist: {where}")
    assert problems[0].endswith(problem)


def test_pod_level_settings_count_for_every_container() -> None:
    container = with_security(runAsNonRoot=None, seccompProfile=None)
    pod_security = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert podsecurity.check_object(pytorchjob(container, pod_security)) == []


def test_templates_are_found_in_every_kind_that_has_pods() -> None:
    spec = {"containers": [RESTRICTED_CONTAINER]}
    objects = {
        "Pod": {"kind": "Pod", "spec": spec},
        "Deployment": {"kind": "Deployment", "spec": {"template": {"spec": spec}}},
        "Notebook": {"kind": "Notebook", "spec": {"template": {"spec": spec}}},
        "TFJob": {
            "kind": "TFJob",
            "spec": {"tfReplicaSpecs": {"Chief": {"template": {"spec": spec}}}},
        },
        "CronJob": {
            "kind": "CronJob",
            "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}},
        },
    }
    for kind, obj in objects.items():
        assert [t.spec for t in podsecurity.pod_templates(obj)] == [spec], kind
    assert list(podsecurity.pod_templates({"kind": "ConfigMap", "data": {}})) == []


def kaniko_job(
    namespace: str, labels: dict[str, str] | None = None, add: list[str] | None = None
) -> dict[str, Any]:
    container = {
        "name": "kaniko",
        "image": "kaniko-executor:v1.23.2",
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {
                "drop": ["ALL"],
                "add": add or ["CHOWN", "SETUID", "SETGID", "FOWNER", "DAC_OVERRIDE"],
            },
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {
        "kind": "Job",
        "metadata": {
            "name": "build",
            "namespace": namespace,
            "labels": podsecurity.KANIKO_LABELS if labels is None else labels,
        },
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def test_a_labelled_kaniko_job_in_the_builder_namespace_may_run_as_root() -> None:
    assert podsecurity.check_object(kaniko_job("kubeflow-user-example-com")) == []


def test_the_kaniko_exception_is_confined_to_builder_namespaces_and_labels() -> None:
    elsewhere = podsecurity.check_object(kaniko_job("kubeflow"), source="build.yaml")
    assert elsewhere[0] == (
        "build.yaml: Job/build: metadata.namespace: a Kaniko build runs as root and is allowed "
        "only in a builder namespace (kubeflow-user-example-com), not in kubeflow"
    )
    assert any(p.endswith("runAsNonRoot: must be true") for p in elsewhere)

    unlabelled = podsecurity.check_object(kaniko_job("kubeflow-user-example-com", labels={}))
    assert any(p.endswith("runAsNonRoot: must be true") for p in unlabelled)

    too_strong = podsecurity.check_object(
        kaniko_job("kubeflow-user-example-com", add=["SYS_ADMIN"])
    )
    assert [p.split(": ")[-1] for p in too_strong] == ["SYS_ADMIN not allowed"]

    custom = podsecurity.check_object(kaniko_job("builds"), builder_namespaces=["builds"])
    assert custom == []


def test_the_builders_kaniko_jobs_fit_the_exception() -> None:
    from kfkit.builder.kaniko import JobRequest, job_manifest

    request = JobRequest(
        name="build-mnist",
        namespace="kubeflow-user-example-com",
        context_dir="kanikotmp-1",
        destination="team/mnist:1",
        pvc_name="shared-workspace",
        registry_secret="regcred",
    )
    job = job_manifest(request)
    assert podsecurity.check_object(job) == []
    job["metadata"]["namespace"] = "kubeflow"
    assert podsecurity.check_object(job), "outside a builder namespace the exception does not apply"


def manifest_files() -> list[Path]:
    return sorted(MANIFESTS.rglob("*.yaml"))


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_every_manifest_meets_the_restricted_profile(path: Path) -> None:
    objects = list(yaml.safe_load_all(path.read_text()))
    assert podsecurity.check_objects(objects, source=str(path.relative_to(MANIFESTS))) == []


def test_every_chart_pod_meets_the_restricted_profile(helm_bin: Path) -> None:
    objects = render(Values())
    assert sum(1 for obj in objects for _ in podsecurity.pod_templates(obj)) >= 5
    assert podsecurity.check_objects(objects, source="chart") == []
