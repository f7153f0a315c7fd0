"""The chart, rendered by the pinned helm: lint, schema, every object valid, resources, security.

Each scenario renders the chart once (``helm template``, hooks and tests included) and every
object is validated: built-in kinds with kubernetes-validate (strict: unknown fields fail)
at the oldest and newest Kubernetes versions it knows, PodDefaults with the upstream
PodDefault CRD, cert-manager objects for the fields the chart relies on.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kfkit.platform import podsecurity
from kfkit.platform.helm import PAPER_SET, HelmError, Values, lint, render

from .conftest import CHART, SITE_VALUES

K8S_VERSIONS = ("1.25.0", kubernetes_validate.utils.latest_version())
COMPONENT_DEPLOYMENTS = {
    "training-operator": "trainingOperator",
    "admission-webhook": "admissionWebhook",
    "notebook-controller": "notebookController",
}
CHART_DEFAULTS: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())

EDGE_SETS = [
    "fullnameOverride=a-forty-character-long-name-for-the-site",
    "admissionWebhook.certManager.enabled=true",
    "admissionWebhook.failurePolicy=Ignore",
    "trainingOperator.tfjob.enabled=false",
    "notebookController.useIstio=true",
    "notebookController.culling.enabled=true",
    "profile.createNamespace=false",
    "profile.sharedVolume.storageClassName=nfs-client",
    "profile.networkPolicy.enabled=false",
    "componentResources.limits.cpu=2",
    "notebookController.resources.requests.memory=256Mi",
    "trainingOperator.replicas=0",
    "imagePullSecrets[0].name=registry-credentials",
]

SCENARIOS: dict[str, Values] = {
    "defaults": Values(),
    "site": Values(files=[SITE_VALUES]),
    "paper": Values(files=[SITE_VALUES], sets=list(PAPER_SET)),
    "edge": Values(sets=EDGE_SETS),
    "operator-only": Values(
        sets=[
            "admissionWebhook.enabled=false",
            "notebookController.enabled=false",
            "profile.enabled=false",
            "platformCheck.enabled=false",
        ]
    ),
}


@pytest.fixture(scope="module")
def rendered(helm_bin: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: render(values) for name, values in SCENARIOS.items()}


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    matches = [o for o in by_kind(objects, kind) if o["metadata"]["name"].endswith(suffix)]
    assert len(matches) == 1, f"{kind} *{suffix}: {len(matches)} found"
    return matches[0]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_helm_lint_strict_passes(helm_bin: Path, scenario: str) -> None:
    report = lint(SCENARIOS[scenario])
    assert "0 chart(s) failed" in report


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_rendered_object_is_valid(
    rendered: dict[str, list[dict[str, Any]]],
    scenario: str,
    upstream_crd_validator: Callable[[dict[str, Any]], list[str]],
) -> None:
    problems: list[str] = []
    for obj in rendered[scenario]:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        group = obj["apiVersion"].split("/")[0]
        if group == "kubeflow.org":
            problems += [f"{where}: {p}" for p in upstream_crd_validator(obj)]
        elif group == "cert-manager.io":
            problems += [f"{where}: {p}" for p in cert_manager_problems(obj)]
        else:
            for version in K8S_VERSIONS:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as error:
                    problems.append(f"{where} @{version}: {error.message}")
    assert problems == []


def cert_manager_problems(obj: dict[str, Any]) -> list[str]:
    """cert-manager's CRDs are not installed here: check the fields the chart relies on."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "Issuer":
        return [] if spec == {"selfSigned": {}} else ["spec: expected a selfSigned issuer"]
    required = ("secretName", "dnsNames", "issuerRef")
    return [f"spec.{key}: missing" for key in required if key not in spec]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_pod_meets_the_restricted_profile(
    rendered: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    objects = rendered[scenario]
    assert podsecurity.check_objects(objects, source=f"chart[{scenario}]") == []
    pods = [t for obj in objects for t in podsecurity.pod_templates(obj)]
    assert pods, "the chart renders pods"
    # The helm-test PyTorchJob is built by the test pod; check it as well.
    from kfkit.platform.smoketest import smoke_job

    job = smoke_job("smoke", "kubeflow", "kfkit/pytorch-mnist:0.1.0", {})
    assert podsecurity.check_object(job) == []


def expected_resources(values: dict[str, Any], component_key: str) -> dict[str, Any]:
    """What the chart promises: shared or own defaults, then the component's override."""
    component = values[component_key]
    if values["componentsResourceConfiguration"]["enabled"]:
        base = values["componentResources"]
    else:
        base = component["defaultResources"]
    merged = {kind: dict(base.get(kind, {})) for kind in ("limits", "requests")}
    for kind, quantities in (component.get("resources") or {}).items():
        merged[kind].update(quantities)
    return merged


def merged_values(*files: Path, sets: dict[str, Any] | None = None) -> dict[str, Any]:
    values = yaml.safe_load(yaml.safe_dump(CHART_DEFAULTS))
    for path in files:
        deep_merge(values, yaml.safe_load(path.read_text()) or {})
    deep_merge(values, sets or {})
    return values


def deep_merge(into: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = value


def test_the_papers_resources_are_the_defaults_on_every_component(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    paper = {
        "limits": {"cpu": "500m", "memory": "1Gi"},
        "requests": {"cpu": "50m", "memory": "128Mi"},
    }
    assert CHART_DEFAULTS["componentResources"] == paper
    containers = component_containers(rendered["defaults"])
    assert len(containers) == 5  # three Deployments, the check Job, the helm test pod
    for where, container in containers.items():
        assert container["resources"] == paper, where


def component_containers(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    containers = {}
    for obj in objects:
        for template in podsecurity.pod_templates(obj):
            for container in template.spec.get("containers", []):
                containers[f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"] = (
                    container
                )
    return containers


@pytest.mark.parametrize(
    ("scenario", "values"),
    [
        ("site", lambda: merged_values(SITE_VALUES)),
        (
            "paper",
            lambda: merged_values(
                SITE_VALUES, sets={"componentsResourceConfiguration": {"enabled": False}}
            ),
        ),
    ],
)
def test_site_and_paper_resources_reach_every_component_deployment(
    rendered: dict[str, list[dict[str, Any]]],
    scenario: str,
    values: Callable[[], dict[str, Any]],
) -> None:
    merged = values()
    for component, key in COMPONENT_DEPLOYMENTS.items():
        deployment = named(rendered[scenario], "Deployment", component)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"] == expected_resources(merged, key), component
    if scenario == "paper":
        operator = named(rendered[scenario], "Deployment", "training-operator")
        resources = operator["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert (
            resources["limits"]["cpu"]
            == CHART_DEFAULTS["trainingOperator"]["defaultResources"]["limits"]["cpu"]
        )


def test_the_operator_is_the_upstream_v1_9_0_image_with_only_the_enabled_schemes(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    operator = named(rendered["defaults"], "Deployment", "training-operator")
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "kubeflow/training-operator:v1-5170a36"
    assert "--enable-scheme=pytorchjob" in container["args"]
    assert "--enable-scheme=tfjob" in container["args"]
    edge = named(rendered["edge"], "Deployment", "training-operator")
    assert "--enable-scheme=tfjob" not in edge["spec"]["template"]["spec"]["containers"][0]["args"]
    crds = {o["metadata"]["name"] for o in by_kind(rendered["edge"], "CustomResourceDefinition")}
    assert "tfjobs.kubeflow.org" not in crds and "pytorchjobs.kubeflow.org" in crds


def test_each_component_has_its_own_toggle(rendered: dict[str, list[dict[str, Any]]]) -> None:
    only = rendered["operator-only"]
    kinds = {(o["kind"], o["metadata"]["name"]) for o in only}
    assert {n for k, n in kinds if k == "CustomResourceDefinition"} == {
        "pytorchjobs.kubeflow.org",
        "tfjobs.kubeflow.org",
    }
    assert [n for k, n in kinds if k == "Deployment"] == [
        "kubeflowinstaller-kubeflow-platform-training-operator"
    ]
    assert not by_kind(only, "MutatingWebhookConfiguration")
    assert not by_kind(only, "Namespace") and not by_kind(only, "PodDefault")
    assert not by_kind(only, "Job")


def test_the_profile_has_the_papers_poddefault_and_a_kaniko_only_builder_role(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = rendered["site"]
    poddefault = named(objects, "PodDefault", "add-test-secret")
    assert poddefault["metadata"]["namespace"] == "kubeflow-user-example-com"
    env = {e["name"]: e for e in poddefault["spec"]["env"]}
    assert env["POD_DEFAULT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "test-secret",
        "key": "secret_key",
    }
    assert env["POD_DEFAULT"]["value"] == "Testing is enabled"

    role = named(objects, "Role", "containerbuilder")
    rules = {(r["apiGroups"][0], r["resources"][0]): sorted(r["verbs"]) for r in role["rules"]}
    assert rules == {
        ("batch", "jobs"): ["create", "delete", "get", "watch"],
        ("", "pods"): ["get", "list", "watch"],
        ("", "pods/log"): ["get"],
    }
    account = named(objects, "ServiceAccount", "containerbuilder")
    assert account["automountServiceAccountToken"] is False
    pvc = named(objects, "PersistentVolumeClaim", "shared-workspace")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    for kind in ("ResourceQuota", "LimitRange", "NetworkPolicy", "Namespace"):
        assert by_kind(objects, kind), kind


def test_the_webhook_trusts_the_ca_that_signed_its_certificate(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    objects = rendered["defaults"]
    secret = named(objects, "Secret", "admission-webhook-tls")
    webhook = by_kind(objects, "MutatingWebhookConfiguration")[0]["webhooks"][0]
    assert webhook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    ca, cert = tmp_path / "ca.pem", tmp_path / "cert.pem"
    ca.write_bytes(base64.b64decode(secret["data"]["ca.crt"]))
    cert.write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
    service = webhook["clientConfig"]["service"]
    host = f"{service['name']}.{service['namespace']}.svc"
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca), "-verify_hostname", host, str(cert)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    deployment = named(objects, "Deployment", "admission-webhook")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/tls" in annotations


def test_cert_manager_replaces_the_generated_certificate(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = rendered["edge"]
    webhook = by_kind(objects, "MutatingWebhookConfiguration")[0]
    assert "cert-manager.io/inject-ca-from" in webhook["metadata"]["annotations"]
    assert "caBundle" not in webhook["webhooks"][0]["clientConfig"]
    assert by_kind(objects, "Certificate") and by_kind(objects, "Issuer")
    assert not [s for s in by_kind(objects, "Secret") if s["type"] == "kubernetes.io/tls"]


def test_hooks_check_the_platform_and_helm_test_runs_the_smoke_job(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = rendered["defaults"]
    job = named(objects, "Job", "platform-check")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--crd=pytorchjobs.kubeflow.org" in args
    assert "--deployment=kubeflowinstaller-kubeflow-platform-training-operator" in args
    test_pod = named(objects, "Pod", "smoke-test")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test_pod["spec"]["containers"][0]["command"][-1] == "kfkit.platform.smoketest"


def test_every_object_carries_the_standard_labels(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for obj in rendered["site"]:
        labels = obj["metadata"].get("labels", {})
        for key in ("name", "instance", "component", "managed-by", "version"):
            assert f"app.kubernetes.io/{key}" in labels, f"{obj['kind']}/{obj['metadata']['name']}"


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        (
            "componentResources.limits.memory=1Gb",
            "componentResources.limits.memory: Does not match pattern",
        ),
        (
            "trainingOperator.replicas=-1",
            "trainingOperator.replicas: Must be greater than or equal to 0",
        ),
        ("bogus=1", "(root): Additional property bogus is not allowed"),
        (
            "trainingOperator.image.tag=latest",
            "trainingOperator.image.tag: Must not validate the schema",
        ),
        (
            "admissionWebhook.failurePolicy=Sometimes",
            "admissionWebhook.failurePolicy: admissionWebhook.failurePolicy must be one of",
        ),
        ("profile.namespace=Team_A", "profile.namespace: Does not match pattern"),
    ],
)
def test_bad_values_fail_with_the_schemas_message(
    helm_bin: Path, assignment: str, message: str
) -> None:
    with pytest.raises(HelmError) as caught:
        render(Values(sets=[assignment]))
    lines = caught.value.lines()
    assert any(message in line for line in lines), lines
    assert all(line.startswith(f"--set {assignment}: ") for line in lines), lines


def test_image_pull_secrets_reach_every_component_pod(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    templates = [t for obj in rendered["edge"] for t in podsecurity.pod_templates(obj)]
    assert len(templates) == 5
    for template in templates:
        assert template.spec["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert all(
        "imagePullSecrets" not in t.spec
        for o in rendered["defaults"]
        for t in podsecurity.pod_templates(o)
    )
