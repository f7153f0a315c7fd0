"""PodDefaults: the settings a team agreed on, added to a pod when it is created.

On a cluster, Kubeflow's admission webhook applies every PodDefault of the pod's
namespace whose label selector matches the pod's labels. This module does the
same on a pod dict (a Pod, or the pod template of a Notebook or a job replica),
so the local backend, ``kfkit poddefaults apply`` and the tests all see what the
cluster would create. The rules follow the webhook's:

- PodDefaults are taken in name order (the order the API server lists them).
- A pod annotated ``poddefault.admission.kubeflow.org/exclude: "true"`` is left alone.
- Pod-level lists merge by key: volumes and imagePullSecrets by name, tolerations
  by key. Every app container (``spec.containers``) gets the env (by name),
  volumeMounts (by name and by mount path) and envFrom (appended); command and
  args are set only where the container has none, and never on ``istio-proxy``.
- Labels and annotations merge by key; serviceAccountName and
  automountServiceAccountToken are set by each PodDefault that has them, the
  last one in name order winning, as on the cluster.
- initContainers and sidecars are added as written, by name; injected sidecars
  do not get the env and mounts meant for the user's containers.
- The same key with a different value, between the pod and a PodDefault or
  between two PodDefaults, is a conflict: the pod is rejected and nothing is
  applied. The error names both sides; values are never printed, since env
  values may be secret.
- Each applied PodDefault is recorded as the annotation
  ``poddefault.admission.kubeflow.org/poddefault-<name>: <resourceVersion>``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kfkit.errors import KfkitError, NotFoundError, ValidationError

API_VERSION = "kubeflow.org/v1alpha1"
KIND = "PodDefault"
DEFAULT_NAMESPACE = "default"
ANNOTATION_PREFIX = "poddefault.admission.kubeflow.org"
EXCLUDE_ANNOTATION = f"{ANNOTATION_PREFIX}/exclude"
ISTIO_PROXY = "istio-proxy"

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_LIST_FIELDS = (
    "env",
    "envFrom",
    "volumes",
    "volumeMounts",
    "tolerations",
    "imagePullSecrets",
    "initContainers",
    "sidecars",
    "command",
    "args",
)
_MAP_FIELDS = ("annotations", "labels")

Object = dict[str, Any]


# --- loading ---------------------------------------------------------------------------


def load_poddefaults(directory: str | Path, namespace: str | None = None) -> list[Object]:
    """Read the PodDefaults in ``directory`` (``*.yaml``/``*.yml``) that live in ``namespace``.

    A PodDefault without ``metadata.namespace`` is in ``default``, as ``kubectl
    apply`` would put it; ``namespace=None`` also means ``default``. Other kinds
    in the files are ignored, so a directory of mixed manifests works. The
    result is sorted by name, the order in which the webhook applies them.
    """
    root = Path(directory)
    if not root.is_dir():
        raise NotFoundError(f"{root}: no such directory of PodDefaults")
    wanted = namespace or DEFAULT_NAMESPACE
    problems: list[str] = []
    found: dict[str, tuple[Path, Object]] = {}
    files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in files:
        for document in _read_documents(path):
            if not isinstance(document, dict) or document.get("kind") != KIND:
                continue
            errors = validate_poddefault(document)
            if errors:
                problems.extend(f"{path}: {line}" for line in errors)
                continue
            metadata = document["metadata"]
            if metadata.get("namespace", DEFAULT_NAMESPACE) != wanted:
                continue
            name = metadata["name"]
            if name in found:
                problems.append(
                    f"{path}: metadata.name: PodDefault {name!r} is also defined in "
                    f"{found[name][0]}"
                )
                continue
            found[name] = (path, document)
    if problems:
        raise ValidationError(problems)
    return [found[name][1] for name in sorted(found)]


def _read_documents(path: Path) -> list[Any]:
    try:
        return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise KfkitError(f"{path}: {where}not valid YAML") from error


def validate_poddefault(document: Object) -> list[str]:
    """Problems with one PodDefault, as ``field.path: what is wrong`` lines."""
    problems: list[str] = []
    if document.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: must be {API_VERSION}, got {document.get('apiVersion')!r}")
    metadata = document.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        problems.append("metadata.name: required")
    spec = document.get("spec")
    if not isinstance(spec, dict):
        return [*problems, "spec: required"]
    if "selector" not in spec:
        problems.append("spec.selector: required")
    else:
        problems.extend(validate_selector(spec["selector"], "spec.selector"))
    for key in _LIST_FIELDS:
        if key in spec and not isinstance(spec[key], list):
            problems.append(f"spec.{key}: must be a list")
    for key in _MAP_FIELDS:
        if key in spec and not isinstance(spec[key], dict):
            problems.append(f"spec.{key}: must be a map of strings")
    for key in ("env", "volumes", "volumeMounts", "imagePullSecrets", "initContainers", "sidecars"):
        for index, item in enumerate(spec.get(key) or []):
            if not isinstance(item, dict) or not item.get("name"):
                problems.append(f"spec.{key}[{index}].name: required")
    for index, item in enumerate(spec.get("volumeMounts") or []):
        if isinstance(item, dict) and not item.get("mountPath"):
            problems.append(f"spec.volumeMounts[{index}].mountPath: required")
    return problems


def validate_selector(selector: Any, where: str) -> list[str]:
    """Problems with a metav1.LabelSelector, checked as the API machinery checks it."""
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [f"{where}: must be a label selector (matchLabels/matchExpressions)"]
    problems: list[str] = []
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, dict):
        problems.append(f"{where}.matchLabels: must be a map of strings")
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        return [*problems, f"{where}.matchExpressions: must be a list"]
    for index, expression in enumerate(expressions):
        path = f"{where}.matchExpressions[{index}]"
        if not isinstance(expression, dict) or not expression.get("key"):
            problems.append(f"{path}.key: required")
            continue
        operator = expression.get("operator")
        values = expression.get("values") or []
        if operator not in SELECTOR_OPERATORS:
            problems.append(f"{path}.operator: must be one of {', '.join(SELECTOR_OPERATORS)}")
        elif operator in ("In", "NotIn") and not values:
            problems.append(f"{path}.values: required for operator {operator}")
        elif operator in ("Exists", "DoesNotExist") and values:
            problems.append(f"{path}.values: must be empty for operator {operator}")
    return problems


# --- matching --------------------------------------------------------------------------


def selector_mismatch(selector: Object | None, labels: dict[str, str]) -> str | None:
    """Why ``labels`` do not match ``selector``, or None when they do.

    An empty selector matches every pod, as metav1.LabelSelectorAsSelector makes it.
    """
    selector = selector or {}
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        if key not in labels:
            return f"pod has no label {key!r} (selector wants {key}={value})"
        if labels[key] != str(value):
            return f"label {key}={labels[key]} (selector wants {key}={value})"
    for expression in selector.get("matchExpressions") or []:
        key = expression["key"]
        operator = expression["operator"]
        values = [str(v) for v in expression.get("values") or []]
        present = key in labels
        if operator == "In" and (not present or labels[key] not in values):
            shown = f"{key}={labels[key]}" if present else f"no label {key!r}"
            return f"{shown} (selector wants {key} in {values})"
        if operator == "NotIn" and present and labels[key] in values:
            return f"label {key}={labels[key]} (selector wants {key} not in {values})"
        if operator == "Exists" and not present:
            return f"pod has no label {key!r} (selector wants it to exist)"
        if operator == "DoesNotExist" and present:
            return f"pod has label {key!r} (selector wants it absent)"
    return None


def _namespace_mismatch(pod: Object, poddefault: Object) -> str | None:
    """The webhook only applies a namespace's PodDefaults to that namespace's pods.

    A pod template carries no namespace (its owner does), so it is not checked.
    """
    pod_namespace = (pod.get("metadata") or {}).get("namespace")
    if pod_namespace is None:
        return None
    pd_namespace = poddefault["metadata"].get("namespace", DEFAULT_NAMESPACE)
    if pd_namespace != pod_namespace:
        return f"PodDefault is in namespace {pd_namespace!r}, the pod in {pod_namespace!r}"
    return None


def _excluded(pod: Object) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(EXCLUDE_ANNOTATION, "")).lower() == "true"


def matching_poddefaults(pod: Object, poddefaults: Iterable[Object]) -> list[Object]:
    """The PodDefaults the webhook would apply to ``pod``, in name order."""
    if _excluded(pod):
        return []
    labels = _string_map((pod.get("metadata") or {}).get("labels"))
    chosen = [
        pd
        for pd in poddefaults
        if _namespace_mismatch(pod, pd) is None
        and selector_mismatch(pd["spec"].get("selector"), labels) is None
    ]
    return sorted(chosen, key=_name)


def explain(pod: Object, poddefaults: Iterable[Object]) -> list[str]:
    """One line per PodDefault: whether it applies to ``pod``, and if not, why not."""
    poddefaults = sorted(poddefaults, key=_name)
    if not poddefaults:
        return ["no PodDefaults to apply"]
    if _excluded(pod):
        return [f"{_name(pd)}: skipped: pod has {EXCLUDE_ANNOTATION}=true" for pd in poddefaults]
    labels = _string_map((pod.get("metadata") or {}).get("labels"))
    lines = []
    for pd in poddefaults:
        reason = _namespace_mismatch(pod, pd) or selector_mismatch(
            pd["spec"].get("selector"), labels
        )
        if reason is None:
            desc = pd["spec"].get("desc")
            lines.append(f"{_name(pd)}: matched" + (f" ({desc})" if desc else ""))
        else:
            lines.append(f"{_name(pd)}: not matched: {reason}")
    try:
        apply_poddefaults(pod, poddefaults)
    except KfkitError as error:
        lines.extend(error.lines())
    return lines


# --- merging ---------------------------------------------------------------------------


@dataclass
class _Merge:
    """A keyed list being merged, remembering who put each key there."""

    what: str
    items: list[Object]
    key: Callable[[Object], Any]
    owners: dict[Any, tuple[Object, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for item in self.items:
            self.owners.setdefault(self.key(item), (item, "the pod"))

    def add(self, item: Object, owner: str, conflicts: list[str]) -> None:
        key = self.key(item)
        if key not in self.owners:
            self.owners[key] = (item, owner)
            self.items.append(copy.deepcopy(item))
        elif self.owners[key][0] != item:
            conflicts.append(
                f"{self.what} {key!r}: {owner} and {self.owners[key][1]} set different values"
            )


def apply_poddefaults(pod: Object, poddefaults: list[Object]) -> Object:
    """A copy of ``pod`` (a Pod or a pod template) with the matching PodDefaults applied.

    Raises KfkitError naming both sides of every conflict; then nothing is
    applied. ``pod`` itself is never changed.
    """
    result = copy.deepcopy(pod)
    chosen = matching_poddefaults(result, poddefaults)
    if not chosen:
        return result
    metadata = result.setdefault("metadata", {})
    spec = result.setdefault("spec", {})
    conflicts: list[str] = []

    for list_name, key_name in (
        ("volumes", "name"),
        ("imagePullSecrets", "name"),
        ("tolerations", "key"),
        ("initContainers", "name"),
    ):
        _merge_pod_list(spec, list_name, key_name, chosen, conflicts)

    for map_name in _MAP_FIELDS:
        merged = dict(_string_map(metadata.get(map_name)))
        owners = dict.fromkeys(merged, "the pod")
        for pd in chosen:
            for key, value in _string_map(pd["spec"].get(map_name)).items():
                if key not in merged:
                    merged[key], owners[key] = value, _owner(pd)
                elif merged[key] != value:
                    conflicts.append(
                        f"{map_name[:-1]} {key!r}: {_owner(pd)} and {owners[key]} "
                        "set different values"
                    )
        if merged:
            metadata[map_name] = merged

    for pd in chosen:
        if pd["spec"].get("serviceAccountName"):
            spec["serviceAccountName"] = pd["spec"]["serviceAccountName"]
        if pd["spec"].get("automountServiceAccountToken") is not None:
            spec["automountServiceAccountToken"] = pd["spec"]["automountServiceAccountToken"]

    for container in spec.get("containers") or []:
        _apply_on_container(container, chosen, conflicts)

    if any(pd["spec"].get("sidecars") for pd in chosen):
        sidecars = _Merge("sidecar container", spec.setdefault("containers", []), _by("name"))
        for pd in chosen:
            for sidecar in pd["spec"].get("sidecars") or []:
                sidecars.add(sidecar, _owner(pd), conflicts)

    if conflicts:
        names = ", ".join(_name(pd) for pd in chosen)
        raise ValidationError(
            [f"conflict applying PodDefaults {names}; nothing was applied:"]
            + [f"  {line}" for line in conflicts]
        )

    annotations = metadata.setdefault("annotations", {})
    for pd in chosen:
        annotations[f"{ANNOTATION_PREFIX}/poddefault-{_name(pd)}"] = str(
            pd["metadata"].get("resourceVersion", "")
        )
    return result


def _merge_pod_list(
    spec: Object, list_name: str, key_name: str, chosen: list[Object], conflicts: list[str]
) -> None:
    merge = _Merge(list_name[:-1], list(spec.get(list_name) or []), _by(key_name))
    for pd in chosen:
        for item in pd["spec"].get(list_name) or []:
            merge.add(item, _owner(pd), conflicts)
    if merge.items:
        spec[list_name] = merge.items


def _apply_on_container(container: Object, chosen: list[Object], conflicts: list[str]) -> None:
    where = f"in container {container.get('name')!r}"
    env = _Merge(f"env {where}:", list(container.get("env") or []), _by("name"))
    mounts = _Merge(f"volumeMount {where}:", list(container.get("volumeMounts") or []), _by("name"))
    paths = _Merge(f"mount path {where}:", [], _by("mountPath"))
    for mount in mounts.items:
        paths.owners.setdefault(mount.get("mountPath"), (mount, "the pod"))
    env_from = list(container.get("envFrom") or [])
    for pd in chosen:
        owner = _owner(pd)
        for variable in pd["spec"].get("env") or []:
            env.add(variable, owner, conflicts)
        for mount in pd["spec"].get("volumeMounts") or []:
            mounts.add(mount, owner, conflicts)
            paths.add(mount, owner, conflicts)
        env_from.extend(copy.deepcopy(pd["spec"].get("envFrom") or []))
        if container.get("name") != ISTIO_PROXY:
            for key in ("command", "args"):
                if container.get(key) is None and pd["spec"].get(key) is not None:
                    container[key] = list(pd["spec"][key])
    for key, items in (("env", env.items), ("volumeMounts", mounts.items), ("envFrom", env_from)):
        if items:
            container[key] = items


def _by(key: str) -> Callable[[Object], Any]:
    return lambda item: item.get(key)


def _name(poddefault: Object) -> str:
    return str(poddefault["metadata"]["name"])


def _owner(poddefault: Object) -> str:
    return f"PodDefault {_name(poddefault)!r}"


def _string_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


# --- pods inside other objects ---------------------------------------------------------


def pod_of(document: Object, source: str = "<input>") -> tuple[Object, str | None]:
    """The pod (or pod template) inside a manifest, and the namespace it would run in.

    A Pod is itself. A Notebook runs the pod of its template, and the notebook
    controller gives that pod the Notebook's labels plus ``statefulset`` and
    ``notebook-name`` (the CRD keeps no template metadata), so PodDefaults select
    on those. Any other workload with ``spec.template`` runs its template's pod.
    """
    if not isinstance(document, dict):
        raise KfkitError(f"{source}: not a Kubernetes object")
    kind = document.get("kind")
    metadata = document.get("metadata") or {}
    namespace = metadata.get("namespace")
    if kind == "Pod":
        return document, namespace
    template = (document.get("spec") or {}).get("template")
    if isinstance(template, dict):
        template = copy.deepcopy(template)
        if kind == "Notebook":
            name = str(metadata.get("name", ""))
            labels = template.setdefault("metadata", {}).setdefault("labels", {})
            labels.update(_string_map(metadata.get("labels")))
            labels.update({"statefulset": name, "notebook-name": name})
        return template, namespace
    if kind is None and "spec" in document and "containers" in document["spec"]:
        return document, namespace
    raise KfkitError(f"{source}: kind {kind!r}: expected a Pod or an object with spec.template")
