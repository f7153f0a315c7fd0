"""The Kaniko build Job, and how to tell from its pod whether the image really was pushed.

Kaniko must run as root inside its container: it unpacks the base image over its
own root filesystem and runs the Dockerfile's RUN steps there. The Job keeps that
contained: its own service account without an API token, no privilege
escalation, every capability dropped except the few file-ownership ones RUN
steps such as ``useradd`` and ``chown`` need, the runtime's default seccomp
profile, the PVC mounted read-only, a deadline and a TTL.

A build counts as successful only when the executor container terminated with
exit code 0 *and* reported the pushed image's digest. Kaniko writes that digest
to ``--digest-file``; pointing it at the container's termination-message file
makes the digest part of the pod status itself, so no log scraping is needed
(the ``Pushed ...@sha256:`` log line is only a second witness).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kfkit.builder.context import KANIKO_WORKSPACE
from kfkit.builder.references import is_digest

KANIKO_REPOSITORY = "kaniko-project/executor"
KANIKO_VERSION = "v1.23.2"
DEFAULT_KANIKO_IMAGE = f"{KANIKO_REPOSITORY}:{KANIKO_VERSION}"
CONTAINER = "kaniko"
KANIKO_IMAGE_HINT = (
    "KFKIT_KANIKO_IMAGE (or --kaniko-image) to an executor image your cluster can pull"
)
TERMINATION_LOG = "/dev/termination-log"
DOCKER_CONFIG_DIR = "/kaniko/.docker"
DEFAULT_SERVICE_ACCOUNT = "containerbuilder"
# RUN steps of ordinary Dockerfiles (useradd, chown, pip) need these and no others.
KANIKO_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETGID", "SETUID"]
_PUSHED = re.compile(r"Pushed (\S+@sha256:[0-9a-f]{64})")
_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")
_CONFIG_FAILURES = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


@dataclass(frozen=True)
class JobRequest:
    """Everything the Job manifest is made of; checked before it is built."""

    name: str
    namespace: str
    context_dir: str  # the kanikotmp* directory's name on the PVC
    destination: str  # image:tag
    pvc_name: str
    kaniko_image: str = DEFAULT_KANIKO_IMAGE
    registry_secret: str | None = None
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    cache: bool = True
    cache_repo: str | None = None
    ttl_seconds: int = 3600
    deadline_seconds: int = 1800


def job_manifest(request: JobRequest) -> dict[str, Any]:
    """The batch/v1 Job that builds and pushes the image with Kaniko."""
    context = f"{KANIKO_WORKSPACE}/{request.context_dir}"
    args = [
        f"--context=dir://{context}",
        f"--dockerfile={context}/Dockerfile",
        f"--destination={request.destination}",
        f"--digest-file={TERMINATION_LOG}",
        f"--cache={'true' if request.cache else 'false'}",
        "--snapshot-mode=redo",
        "--verbosity=info",
    ]
    if request.cache and request.cache_repo:
        args.append(f"--cache-repo={request.cache_repo}")
    labels = {
        "app.kubernetes.io/name": "kaniko",
        "app.kubernetes.io/component": "container-builder",
        "app.kubernetes.io/managed-by": "kfkit",
    }
    mounts: list[dict[str, Any]] = [
        {"name": "build-context", "mountPath": KANIKO_WORKSPACE, "readOnly": True}
    ]
    volumes: list[dict[str, Any]] = [
        {
            "name": "build-context",
            "persistentVolumeClaim": {"claimName": request.pvc_name, "readOnly": True},
        }
    ]
    if request.registry_secret:
        mounts.append(
            {"name": "registry-credentials", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True}
        )
        volumes.append(
            {
                "name": "registry-credentials",
                "secret": {
                    "secretName": request.registry_secret,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        )
    container = {
        "name": CONTAINER,
        "image": request.kaniko_image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"memory": "4Gi"},
        },
        "securityContext": {
            # The documented exception: Kaniko builds the image's filesystem as root.
            "runAsUser": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"], "add": list(KANIKO_CAPABILITIES)},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": request.name, "namespace": request.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": request.deadline_seconds,
            "ttlSecondsAfterFinished": request.ttl_seconds,
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {"sidecar.istio.io/inject": "false"},
                },
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": request.service_account,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


@dataclass(frozen=True)
class BuildOutcome:
    """What the Kaniko pod's status says about the build."""

    finished: bool
    succeeded: bool
    reason: str
    digest: str | None = None


def _kaniko_status(pod: dict[str, Any]) -> dict[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            return dict(status)
    return None


def build_outcome(pod: dict[str, Any], logs: str = "") -> BuildOutcome:
    """Judge a build from its pod (as the API returns it, camelCase) and its logs.

    ``finished`` is False while the build may still succeed; a pod that cannot
    pull the executor or mount its volumes is finished (and failed) at once.
    """
    status = pod.get("status") or {}
    container = _kaniko_status(pod)
    state = (container or {}).get("state") or {}
    if "terminated" in state and state["terminated"] is not None:
        terminated = state["terminated"]
        code = terminated.get("exitCode")
        message = (terminated.get("message") or "").strip()
        if code != 0:
            reason = terminated.get("reason") or "Error"
            return BuildOutcome(True, False, f"Kaniko exited with code {code} ({reason})")
        pushed = _PUSHED.findall(logs)
        if is_digest(message):
            return BuildOutcome(True, True, "image pushed", message)
        if pushed:
            return BuildOutcome(True, True, "image pushed", pushed[-1].split("@", 1)[1])
        return BuildOutcome(
            True, False, "Kaniko exited 0 but reported no pushed digest; the image was not pushed"
        )
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason") or ""
    if reason in _PULL_FAILURES:
        return BuildOutcome(
            True,
            False,
            f"cannot pull the Kaniko executor image ({reason}); set {KANIKO_IMAGE_HINT}: "
            f"{waiting.get('message', '')}".strip(),
        )
    if reason in _CONFIG_FAILURES:
        return BuildOutcome(True, False, f"{reason}: {waiting.get('message', '')}".strip())
    if status.get("phase") == "Failed":
        return BuildOutcome(True, False, f"pod failed: {status.get('reason') or 'unknown reason'}")
    return BuildOutcome(False, False, f"pod {status.get('phase', 'Pending')}")
