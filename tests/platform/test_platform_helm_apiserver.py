"""helm install, upgrade and rollback of the chart against a real kube-apiserver 1.20.

What this tier can show: the API server accepts every object of the release (schemas,
admission, RBAC objects, CRDs that 1.20 calls structural), helm records revisions, and an
upgrade really rewrites every component Deployment. What it cannot: pods never start here
(no kubelet, scheduler or controllers), so

- nothing uses ``--wait`` (helm would wait for Deployments that no controller rolls out);
- the post-install check Job is switched off (``platformCheck.enabled=false``): helm waits
  for hook Jobs to complete, and no Job controller runs; the check's own logic is tested
  below against the same server, where it rightly reports the Deployments unavailable;
- no webhook server runs, so the server refuses every PyTorchJob while the operator's
  webhook has failurePolicy Fail (shown below: that proves the webhook is wired to the
  operator's Service); the other tests install the webhooks with failurePolicy Ignore.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kfkit.platform import check, helm
from kfkit.platform.apiserver import LocalApiServer, apiserver_missing_reason

from .conftest import SITE_VALUES

pytestmark = pytest.mark.apiserver

NAMESPACE = "kubeflow"
RELEASE = "kubeflowinstaller"
# The tier's settings: no hook Job (see the module docstring).
TIER_SETS = [
    "platformCheck.enabled=false",
    "trainingOperator.webhook.failurePolicy=Ignore",
    "admissionWebhook.failurePolicy=Ignore",
]
COMPONENTS = ("training-operator", "admission-webhook", "notebook-controller")
UPGRADED = {
    "limits": {"cpu": "750m", "memory": "1536Mi"},
    "requests": {"cpu": "100m", "memory": "256Mi"},
}


@pytest.fixture(scope="module")
def server(helm_bin: Path) -> Iterator[LocalApiServer]:
    reason = apiserver_missing_reason()
    if reason:
        pytest.skip(reason)
    with LocalApiServer() as started:
        yield started


@pytest.fixture(scope="module")
def apis(server: LocalApiServer) -> dict[str, Any]:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(server.kubeconfig))
    return {
        "apps": client.AppsV1Api(api_client),
        "extensions": client.ApiextensionsV1Api(api_client),
        "custom": client.CustomObjectsApi(api_client),
        "core": client.CoreV1Api(api_client),
        "admission": client.AdmissionregistrationV1Api(api_client),
    }


def install(server: LocalApiServer, sets: list[str]) -> str:
    values = helm.Values(files=[SITE_VALUES], sets=[*TIER_SETS, *sets])
    return helm.upgrade(
        values,
        kubeconfig=server.kubeconfig,
        release=RELEASE,
        namespace=NAMESPACE,
        wait=False,
        timeout_s=120,
    )


def deployment_resources(apps: Any) -> dict[str, dict[str, Any]]:
    found = {}
    for component in COMPONENTS:
        name = f"{RELEASE}-kubeflow-platform-{component}"
        deployment = apps.read_namespaced_deployment(name, NAMESPACE)
        container = deployment.spec.template.spec.containers[0]
        found[component] = {
            "limits": dict(container.resources.limits or {}),
            "requests": dict(container.resources.requests or {}),
        }
    return found


def test_install_upgrade_rollback_changes_every_component_deployment(
    server: LocalApiServer, apis: dict[str, Any]
) -> None:
    install(server, [])
    site = deployment_resources(apis["apps"])
    assert site["admission-webhook"] == {
        "limits": {"cpu": "500m", "memory": "1Gi"},
        "requests": {"cpu": "50m", "memory": "128Mi"},
    }

    sets = [
        f"componentResources.{kind}.{name}={value}"
        for kind, q in UPGRADED.items()
        for name, value in q.items()
    ]
    install(server, sets)
    upgraded = deployment_resources(apis["apps"])
    for component in ("admission-webhook", "notebook-controller"):
        assert upgraded[component] == UPGRADED, component
    # The site file overrides the operator's memory limit; the rest comes from the upgrade.
    assert upgraded["training-operator"]["limits"]["cpu"] == "750m"
    assert upgraded["training-operator"]["requests"] == UPGRADED["requests"]

    revisions = helm.history(kubeconfig=server.kubeconfig, release=RELEASE, namespace=NAMESPACE)
    assert [r["revision"] for r in revisions] == [1, 2]
    helm.rollback(1, kubeconfig=server.kubeconfig, release=RELEASE, namespace=NAMESPACE)
    assert deployment_resources(apis["apps"]) == site


def test_an_upgrade_keeps_the_webhooks_certificate(
    server: LocalApiServer, apis: dict[str, Any]
) -> None:
    name = f"{RELEASE}-kubeflow-platform-admission-webhook"
    install(server, [])
    before = apis["core"].read_namespaced_secret(f"{name}-tls", NAMESPACE).data
    install(server, ["componentResources.limits.cpu=600m"])
    after = apis["core"].read_namespaced_secret(f"{name}-tls", NAMESPACE).data
    assert after == before
    webhook = apis["admission"].read_mutating_webhook_configuration(name)
    assert webhook.webhooks[0].client_config.ca_bundle == before["ca.crt"]


def test_bad_values_are_refused_before_anything_changes(
    server: LocalApiServer, apis: dict[str, Any]
) -> None:
    install(server, [])
    before = helm.history(kubeconfig=server.kubeconfig, release=RELEASE, namespace=NAMESPACE)
    with pytest.raises(helm.HelmError) as caught:
        install(server, ["componentResources.limits.memory=1Gb"])
    assert any(
        "componentResources.limits.memory: Does not match pattern" in line
        for line in caught.value.lines()
    )
    after = helm.history(kubeconfig=server.kubeconfig, release=RELEASE, namespace=NAMESPACE)
    assert after == before


def test_the_crds_are_established_and_the_profile_exists(
    server: LocalApiServer, apis: dict[str, Any]
) -> None:
    install(server, [])
    for crd in ("pytorchjobs", "tfjobs", "poddefaults", "notebooks"):
        assert check.crd_established(apis["extensions"], f"{crd}.kubeflow.org"), crd
    poddefault = apis["custom"].get_namespaced_custom_object(
        "kubeflow.org", "v1alpha1", "kubeflow-user-example-com", "poddefaults", "add-test-secret"
    )
    env = {e["name"]: e for e in poddefault["spec"]["env"]}
    assert env["POD_DEFAULT"]["value"] == "Testing is enabled"


def test_the_platform_check_reports_what_is_not_ready(
    server: LocalApiServer, apis: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    install(server, [])
    operator = f"{RELEASE}-kubeflow-platform-training-operator"
    status = check.main(
        [
            f"--kubeconfig={server.kubeconfig}",
            f"--namespace={NAMESPACE}",
            "--crd=pytorchjobs.kubeflow.org",
            f"--deployment={operator}",
            "--timeout=3",
        ]
    )
    out, err = capsys.readouterr()
    assert "ready: CRD pytorchjobs.kubeflow.org Established" in out
    # No controller-manager here: the Deployment exists but never becomes Available.
    assert f"not ready after 3s: Deployment {NAMESPACE}/{operator} Available" in err
    assert status == 1


def test_the_smoke_test_job_is_admitted_and_cleaned_up(
    server: LocalApiServer, apis: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from kubernetes.client.exceptions import ApiException

    from kfkit.platform import smoketest

    job = smoketest.smoke_job("smoke", NAMESPACE, "kfkit/pytorch-mnist:0.1.0", {})
    install(server, ["trainingOperator.webhook.failurePolicy=Fail"])
    with pytest.raises(ApiException) as refused:
        smoketest.run(apis["custom"], job, timeout=2, interval=0.5)
    message = json.loads(refused.value.body)["message"]
    assert 'failed calling webhook "validate.pytorchjob.kubeflow.org"' in message
    assert 'endpoints "kubeflowinstaller-kubeflow-platform-training-operator" not found' in message

    install(server, [])
    # Nothing reconciles it here, so it times out; on a cluster the operator decides.
    state = smoketest.run(apis["custom"], job, timeout=2, interval=0.5)
    assert state == "Timeout"
    remaining = apis["custom"].list_namespaced_custom_object(
        "kubeflow.org", "v1", NAMESPACE, "pytorchjobs"
    )
    assert remaining["items"] == []


def test_the_post_install_check_job_is_a_hook_helm_waits_for(
    server: LocalApiServer, apis: dict[str, Any]
) -> None:
    """With the check on, helm creates the hook Job and waits: here in vain (no Job controller)."""
    from kubernetes import client

    sets = [
        "trainingOperator.enabled=false",
        "admissionWebhook.enabled=false",
        "notebookController.enabled=false",
        "profile.enabled=false",
        "platformCheck.enabled=true",
    ]
    with pytest.raises(helm.HelmError) as caught:
        helm.upgrade(
            helm.Values(sets=sets),
            kubeconfig=server.kubeconfig,
            release="hookcheck",
            namespace="hookcheck",
            wait=False,
            timeout_s=5,
        )
    assert any("failed post-install" in line for line in caught.value.lines()), caught.value.lines()
    batch = client.BatchV1Api(apis["apps"].api_client)
    job = batch.read_namespaced_job("hookcheck-kubeflow-platform-platform-check", "hookcheck")
    assert job.spec.template.spec.containers[0].command == ["python", "-m", "kfkit.platform.check"]
    assert job.status.succeeded is None
