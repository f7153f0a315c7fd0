"""The pod as the API server hands it to the webhook: with the API's defaults set.

Mutating webhooks run after the API server has decoded the pod and set its
defaults, so the webhook compares a PodDefault's entries (which nobody
defaults) with the pod's defaulted ones. A secret volume written without
``defaultMode`` has ``defaultMode: 420`` by then: a PodDefault that repeats it
with ``defaultMode: 420`` merges with it, one that repeats it as written
conflicts. A sidecar never equals a pod container it repeats unless it spells
out the container defaults (``terminationMessagePath`` ...). ``received`` sets
the defaults of k8s.io/api core/v1 (``SetDefaults_*``) on the parts of a pod
the webhook compares: volumes, containers and init containers (their env,
ports and resources), and adds what the admission plugins that run before
mutating webhooks add by default: the ServiceAccount plugin's token volume and
mounts, the DefaultTolerationSeconds plugin's tolerations. The rest of the pod
is left as written; it takes no part in the comparisons.
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_MODE = 0o644  # 420, as kubectl shows it
TOKEN_VOLUME = "kube-api-access-xxxxx"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_VOLUME_SOURCES_WITH_MODE = ("secret", "configMap", "downwardAPI", "projected")
_VOLUME_SOURCES = (
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
)


def received(pod: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``pod`` with the API server's defaults on what the webhook compares."""
    result = copy.deepcopy(pod)
    spec = result.get("spec")
    if not isinstance(spec, dict):
        return result
    for volume in _dicts(spec.get("volumes")):
        _default_volume(volume)
    for key in ("containers", "initContainers"):
        for container in _dicts(spec.get(key)):
            _default_container(container)
    _add_token_volume(spec)
    _add_default_tolerations(spec)
    return result


def _add_token_volume(spec: dict[str, Any]) -> None:
    """The ServiceAccount admission plugin: the API token volume, mounted in every container.

    Its real name ends in five random characters; only its mount path can
    collide with a PodDefault's. Skipped when the pod turns automounting off
    (a service account that does so is not known here).
    """
    if spec.get("automountServiceAccountToken") is False:
        return
    containers = [
        container
        for key in ("initContainers", "containers")
        for container in _dicts(spec.get(key))
        if not any(m.get("mountPath") == TOKEN_PATH for m in _dicts(container.get("volumeMounts")))
    ]
    if not containers:
        return
    spec["volumes"] = [*_dicts(spec.get("volumes")), {"name": TOKEN_VOLUME, "projected": {}}]
    for container in containers:
        mount = {"name": TOKEN_VOLUME, "mountPath": TOKEN_PATH, "readOnly": True}
        container["volumeMounts"] = [*_dicts(container.get("volumeMounts")), mount]


def _add_default_tolerations(spec: dict[str, Any]) -> None:
    """The DefaultTolerationSeconds admission plugin: 300 s on not-ready and unreachable nodes."""
    tolerations = _dicts(spec.get("tolerations"))
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(
            t.get("key") in (key, None, "") and t.get("effect") in ("NoExecute", None, "")
            for t in tolerations
        ):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    if tolerations:
        spec["tolerations"] = tolerations


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _default_volume(volume: dict[str, Any]) -> None:
    if not any(volume.get(source) is not None for source in _VOLUME_SOURCES):
        volume["emptyDir"] = {}  # SetDefaults_Volume
    for source in _VOLUME_SOURCES_WITH_MODE:
        if isinstance(volume.get(source), dict) and volume[source].get("defaultMode") is None:
            volume[source]["defaultMode"] = DEFAULT_MODE
    if isinstance(volume.get("hostPath"), dict) and volume["hostPath"].get("type") is None:
        volume["hostPath"]["type"] = ""  # SetDefaults_HostPathVolumeSource


def _default_container(container: dict[str, Any]) -> None:
    container["terminationMessagePath"] = (
        container.get("terminationMessagePath") or "/dev/termination-log"
    )
    container["terminationMessagePolicy"] = container.get("terminationMessagePolicy") or "File"
    if not container.get("imagePullPolicy"):
        image = str(container.get("image") or "")
        tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
        container["imagePullPolicy"] = "IfNotPresent" if tagged or "@" in image else "Always"
    for port in _dicts(container.get("ports")):
        port["protocol"] = port.get("protocol") or "TCP"
    for variable in _dicts(container.get("env")):
        field_ref = (variable.get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict) and not field_ref.get("apiVersion"):
            field_ref["apiVersion"] = "v1"
    resources = container.get("resources")
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
        requests = resources["requests"] = dict(resources.get("requests") or {})
        for name, quantity in resources["limits"].items():
            requests.setdefault(name, quantity)
