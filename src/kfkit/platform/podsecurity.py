"""Does every pod template meet the Pod Security Standards "restricted" profile?

The scanners (checkov, trivy) check Deployments, Jobs and Pods, but not the pod templates
inside custom resources: a PyTorchJob's ``pytorchReplicaSpecs.*.template``, a TFJob's
``tfReplicaSpecs.*.template``, a Notebook's ``spec.template``. This module finds every pod
spec in any object, wherever the kind keeps it, and checks the restricted profile's rules:

- ``runAsNonRoot: true`` (pod or container level) and no ``runAsUser: 0``;
- ``allowPrivilegeEscalation: false`` and ``capabilities.drop: [ALL]`` on every container;
  ``capabilities.add`` at most ``NET_BIND_SERVICE``;
- ``seccompProfile.type`` RuntimeDefault or Localhost (pod or container level);
- no privileged containers, no host namespaces, no hostPath volumes, no host ports.

The one exception is a Kaniko build: Kaniko must run as root to unpack base images and
build the image's filesystem. A Job or Pod may run as root only when it is labelled as a
Kaniko build (``app.kubernetes.io/name: kaniko`` and ``app.kubernetes.io/component:
container-builder``, the labels kfkit.builder puts on its Jobs) and lives in a builder
namespace (``builder_namespaces``, whose Pod Security level is "baseline"). Even then it
must not escalate privileges or be privileged, must keep the RuntimeDefault seccomp profile,
and may add back only capabilities the "baseline" profile allows.

Usage::

    from kfkit.platform.podsecurity import check_object, check_objects
    problems = check_objects(yaml.safe_load_all(text), source="manifests/job.yaml")
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

KANIKO_LABELS = {
    "app.kubernetes.io/name": "kaniko",
    "app.kubernetes.io/component": "container-builder",
}
DEFAULT_BUILDER_NAMESPACES = frozenset({"kubeflow-user-example-com"})
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
# What the "baseline" profile lets a container add back (the Kaniko exception's ceiling).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


@dataclass(frozen=True)
class PodTemplate:
    """One pod spec found in an object, and where."""

    path: str  # e.g. "spec.pytorchReplicaSpecs.Worker.template.spec"
    spec: dict[str, Any]
    labels: dict[str, str]


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def pod_templates(obj: dict[str, Any]) -> Iterator[PodTemplate]:
    """Every pod spec in ``obj``: Pods, workload templates, and Kubeflow job/notebook templates."""
    kind = obj.get("kind", "")
    metadata_labels = _dig(obj, "metadata", "labels") or {}
    if kind == "Pod":
        yield PodTemplate("spec", obj.get("spec") or {}, metadata_labels)
        return
    if kind == "CronJob":
        template = _dig(obj, "spec", "jobTemplate", "spec", "template")
        if isinstance(template, dict):
            yield _template("spec.jobTemplate.spec.template", template, metadata_labels)
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if isinstance(spec.get("template"), dict):
        yield _template("spec.template", spec["template"], metadata_labels)
    for key, replica_specs in spec.items():
        if key.endswith("ReplicaSpecs") and isinstance(replica_specs, dict):
            for replica_type, replica in replica_specs.items():
                template = _dig(replica, "template")
                if isinstance(template, dict):
                    yield _template(
                        f"spec.{key}.{replica_type}.template", template, metadata_labels
                    )


def _template(path: str, template: dict[str, Any], owner_labels: dict[str, str]) -> PodTemplate:
    labels = {**owner_labels, **(_dig(template, "metadata", "labels") or {})}
    return PodTemplate(f"{path}.spec", template.get("spec") or {}, labels)


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for index, container in enumerate(spec.get(field) or []):
            if isinstance(container, dict):
                name = container.get("name", index)
                yield f"{field}[{name}]", container


def check_pod_spec(spec: dict[str, Any], *, root_allowed: bool = False) -> list[str]:
    """Problems of one pod spec, as ``field.path: what is wrong`` (relative to the spec)."""
    problems: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            problems.append(f"{host}: must not be true")
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict) and "hostPath" in volume:
            problems.append(f"volumes[{volume.get('name')}].hostPath: host paths are not allowed")
    if not root_allowed and pod_sc.get("runAsUser") == 0:
        problems.append("securityContext.runAsUser: must not be 0 (root)")

    for where, container in _containers(spec):
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"{where}.securityContext.privileged: must not be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}.securityContext.allowPrivilegeEscalation: must be false")
        caps = sc.get("capabilities") or {}
        drop = [str(c).upper() for c in caps.get("drop") or []]
        if "ALL" not in drop:
            problems.append(f"{where}.securityContext.capabilities.drop: must include ALL")
        allowed = BASELINE_CAPABILITIES if root_allowed else ALLOWED_ADDED_CAPABILITIES
        added = {str(c).upper() for c in caps.get("add") or []} - allowed
        if added:
            problems.append(
                f"{where}.securityContext.capabilities.add: {', '.join(sorted(added))} not allowed"
            )
        if not root_allowed:
            non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            if non_root is not True:
                problems.append(f"{where}.securityContext.runAsNonRoot: must be true")
            if sc.get("runAsUser") == 0:
                problems.append(f"{where}.securityContext.runAsUser: must not be 0 (root)")
        seccomp = _dig(sc, "seccompProfile", "type") or _dig(pod_sc, "seccompProfile", "type")
        if seccomp not in ALLOWED_SECCOMP:
            problems.append(
                f"{where}.securityContext.seccompProfile.type: must be RuntimeDefault "
                f"or Localhost (got {seccomp or 'nothing'})"
            )
        for port in container.get("ports") or []:
            if isinstance(port, dict) and port.get("hostPort"):
                problems.append(f"{where}.ports.hostPort: host ports are not allowed")
    return problems


def is_kaniko_build(obj: dict[str, Any], template: PodTemplate) -> bool:
    """Labelled as a Kaniko build (on the object or its pod template)."""
    labels = {**(_dig(obj, "metadata", "labels") or {}), **template.labels}
    return all(labels.get(key) == value for key, value in KANIKO_LABELS.items())


def check_object(
    obj: dict[str, Any],
    *,
    source: str = "<object>",
    builder_namespaces: Iterable[str] = DEFAULT_BUILDER_NAMESPACES,
) -> list[str]:
    """Problems of every pod template in ``obj``, as ``SOURCE: Kind/name: path: problem``."""
    if not isinstance(obj, dict):
        return []
    name = f"{obj.get('kind', '?')}/{_dig(obj, 'metadata', 'name') or '?'}"
    namespace = _dig(obj, "metadata", "namespace")
    builders = frozenset(builder_namespaces)
    allowed = ", ".join(sorted(builders))
    problems: list[str] = []
    for template in pod_templates(obj):
        root_allowed = False
        if is_kaniko_build(obj, template):
            if obj.get("kind") not in ("Job", "Pod"):
                problems.append(
                    f"{source}: {name}: metadata.labels: only a Job or Pod may be a Kaniko build"
                )
            elif namespace not in builders:
                problems.append(
                    f"{source}: {name}: metadata.namespace: a Kaniko build runs as root and is "
                    f"allowed only in a builder namespace ({allowed}), "
                    f"not in {namespace or 'an unspecified namespace'}"
                )
            else:
                root_allowed = True
        for problem in check_pod_spec(template.spec, root_allowed=root_allowed):
            problems.append(f"{source}: {name}: {template.path}.{problem}")
    return problems


def check_objects(
    objects: Iterable[Any],
    *,
    source: str = "<objects>",
    builder_namespaces: Iterable[str] = DEFAULT_BUILDER_NAMESPACES,
) -> list[str]:
    """Problems of every pod template in every object (Lists are looked into)."""
    problems: list[str] = []
    namespaces = list(builder_namespaces)
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        if obj.get("kind", "").endswith("List") and isinstance(obj.get("items"), list):
            problems += check_objects(obj["items"], source=source, builder_namespaces=namespaces)
            continue
        problems += check_object(obj, source=source, builder_namespaces=namespaces)
    return problems
