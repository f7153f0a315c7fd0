"""The Kaniko Job manifest, checked against the Kubernetes schema, and success detection.

Success is judged from pod status dicts shaped as the API server returns them;
no build is pretended to have run.
"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from kfkit.builder.build import job_name
from kfkit.builder.kaniko import (
    KANIKO_CAPABILITIES,
    JobRequest,
    build_outcome,
    job_manifest,
)

DIGEST = "sha256:" + "ab" * 32
K8S_VERSION = "1.30.0"  # the API the kubernetes 30 client speaks


def request(**overrides: object) -> JobRequest:
    values: dict[str, object] = {
        "name": job_name("registry.example.org/team/mnist", "0a1b2c3d"),
        "namespace": "team",
        "context_dir": "kanikotmp-0a1b2c3d",
        "destination": "registry.example.org/team/mnist:v1",
        "pvc_name": "shared-workspace",
        "registry_secret": "regcred",
        "cache_repo": "registry.example.org/team/mnist/cache",
    }
    values.update(overrides)
    return JobRequest(**values)  # type: ignore[arg-type]


def test_job_is_valid_kubernetes_and_has_the_paper_s_settings() -> None:
    job = job_manifest(request())
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    assert job["metadata"]["name"] == "kaniko-mnist-0a1b2c3d"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] > 0
    template = spec["template"]
    assert template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    pod = template["spec"]
    assert pod["serviceAccountName"] == "containerbuilder"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"].endswith("kaniko-project/executor:v1.23.2")
    assert container["args"][:4] == [
        "--context=dir:///workspace/kanikotmp-0a1b2c3d",
        "--dockerfile=/workspace/kanikotmp-0a1b2c3d/Dockerfile",
        "--destination=registry.example.org/team/mnist:v1",
        "--digest-file=/dev/termination-log",
    ]
    assert "--cache=true" in container["args"]
    assert "--cache-repo=registry.example.org/team/mnist/cache" in container["args"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/kaniko/.docker"]["readOnly"] and mounts["/workspace"]["readOnly"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["registry-credentials"]["secret"]["secretName"] == "regcred"
    assert volumes["build-context"]["persistentVolumeClaim"]["claimName"] == "shared-workspace"


def test_kaniko_runs_as_root_but_confined() -> None:
    security = job_manifest(request())["spec"]["template"]["spec"]["containers"][0][
        "securityContext"
    ]
    assert security["runAsUser"] == 0
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert set(security["capabilities"]["add"]) == set(KANIKO_CAPABILITIES)
    assert not {"SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_PTRACE"} & set(KANIKO_CAPABILITIES)
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_without_secret_or_cache_nothing_is_mounted_or_cached() -> None:
    job = job_manifest(request(registry_secret=None, cache=False, cache_repo=None))
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/workspace"]
    assert "--cache=false" in container["args"]
    assert not any(a.startswith("--cache-repo") for a in container["args"])


def test_job_name_is_a_valid_dns_label_for_long_names() -> None:
    name = job_name("registry.example.org/team/" + "very-long-image-name-" * 5, "0a1b2c3d")
    assert len(name) <= 63 and name.endswith("-0a1b2c3d") and name.startswith("kaniko-")


def pod(state: dict, phase: str = "Running") -> dict:
    return {
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "kaniko", "state": state}],
        }
    }


@pytest.mark.parametrize(
    ("status", "logs", "succeeded", "reason"),
    [
        (pod({"terminated": {"exitCode": 0, "message": DIGEST}}, "Succeeded"), "", True, "pushed"),
        (
            pod({"terminated": {"exitCode": 0, "message": ""}}, "Succeeded"),
            f"INFO Pushed registry.example.org/team/mnist@{DIGEST}\n",
            True,
            "pushed",
        ),
        (
            pod({"terminated": {"exitCode": 0, "message": ""}}, "Succeeded"),
            "INFO Skipping push to container registry due to --no-push flag\n",
            False,
            "no pushed digest",
        ),
        (
            pod({"terminated": {"exitCode": 1, "reason": "Error"}}, "Failed"),
            "error building image: UNAUTHORIZED",
            False,
            "exited with code 1",
        ),
        (
            pod({"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}, "Pending"),
            "",
            False,
            "cannot pull the Kaniko executor image",
        ),
        (
            pod({"waiting": {"reason": "CreateContainerConfigError"}}, "Pending"),
            "",
            False,
            "CreateContainerConfigError",
        ),
    ],
)
def test_outcome_is_success_only_with_exit_zero_and_a_pushed_digest(
    status: dict, logs: str, succeeded: bool, reason: str
) -> None:
    outcome = build_outcome(status, logs)
    assert outcome.finished
    assert outcome.succeeded is succeeded
    assert reason in outcome.reason
    if succeeded:
        assert outcome.digest == DIGEST


def test_running_or_pending_pod_is_not_finished() -> None:
    assert not build_outcome(pod({"running": {}})).finished
    assert not build_outcome(pod({"waiting": {"reason": "ContainerCreating"}}, "Pending")).finished
    assert not build_outcome({"status": {"phase": "Pending"}}).finished


def test_shipped_rbac_grants_what_the_builder_calls_and_nothing_cluster_wide() -> None:
    import yaml

    path = Path(__file__).resolve().parents[2] / "manifests/notebook/containerbuilder-rbac.yaml"
    docs = {d["kind"]: d for d in yaml.safe_load_all(path.read_text())}
    assert docs["ServiceAccount"]["automountServiceAccountToken"] is False
    granted = {
        (rule_group, resource, verb)
        for rule in docs["Role"]["rules"]
        for rule_group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # kfkit.builder.cluster creates/reads/deletes jobs, reads pods and their logs, reads the secret.
    needed = {
        ("batch", "jobs", "create"),
        ("batch", "jobs", "delete"),
        ("", "pods", "list"),
        ("", "pods", "get"),
        ("", "pods/log", "get"),
        ("", "secrets", "get"),
    }
    assert needed <= granted
    assert not any(verb == "*" or resource == "*" for _, resource, verb in granted)
    secret_rule = next(r for r in docs["Role"]["rules"] if "secrets" in r["resources"])
    assert secret_rule["resourceNames"] == ["regcred"]
