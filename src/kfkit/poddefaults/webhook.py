"""What Kubeflow's PodDefault webhook (v1.10) does to a pod, step by step.

The webhook, for each pod the API server is about to create:

1. leaves it alone when it is annotated ``poddefault.admission.kubeflow.org/exclude``
   with exactly ``"true"``, or is a mirror pod (``kubernetes.io/config.mirror``);
2. parses the selector of every PodDefault in the pod's namespace, and refuses
   the pod if any one is invalid;
3. picks those whose selector matches the pod's labels, in name order;
4. refuses the pod if they conflict with it or with each other: the same
   volume, toleration, imagePullSecret, init container, sidecar, env variable or
   volume mount (by name, and by mount path) with a different decoded value, or
   the same label or annotation key with a different value. The pod's own
   duplicates count by their last entry;
5. merges them: pod-level lists by key, every container gets env, volumeMounts
   and envFrom (all of them appended), command and args only where it has none
   (never ``istio-proxy``); serviceAccountName and automountServiceAccountToken
   from the last PodDefault that sets them; one annotation per PodDefault;
6. answers with a JSON patch from the pod it got to the merged one, which the
   API server applies (``kfkit.poddefaults.patch``).

``admit`` does the same on a pod dict and says what a cluster would create, or
raises KfkitError with the reason a cluster would refuse the pod.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kfkit.errors import ValidationError
from kfkit.poddefaults.decoding import decoded
from kfkit.poddefaults.loading import DEFAULT_NAMESPACE
from kfkit.poddefaults.patch import PatchFailed, apply_patch, patch_for
from kfkit.poddefaults.received import received
from kfkit.poddefaults.selectors import selector_mismatch, selector_problems

ANNOTATION_PREFIX = "poddefault.admission.kubeflow.org"
EXCLUDE_ANNOTATION = f"{ANNOTATION_PREFIX}/exclude"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
ISTIO_PROXY = "istio-proxy"

Object = dict[str, Any]


@dataclass
class Admission:
    """What the webhook made of a pod: the pod a cluster creates, and why it looks so."""

    pod: Object
    applied: list[str] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)


class Refused(ValidationError):
    """A cluster would refuse this pod; the lines say why, naming the upstream behaviour."""


def _metadata(pod: Object) -> Object:
    metadata = pod.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _name(poddefault: Object) -> str:
    return str(poddefault["metadata"]["name"])


def _owner(poddefault: Object) -> str:
    return f"PodDefault {_name(poddefault)!r}"


def _source(poddefault: Object) -> str:
    return str(getattr(poddefault, "source", f"PodDefault {_name(poddefault)}"))


def _labels(pod: Object) -> dict[str, str]:
    return {str(k): str(v) for k, v in (_metadata(pod).get("labels") or {}).items()}


def skip_reason(pod: Object) -> str | None:
    """Why the webhook leaves ``pod`` alone before looking at any PodDefault, or None."""
    annotations = _metadata(pod).get("annotations") or {}
    if annotations.get(EXCLUDE_ANNOTATION) == "true":
        return f'pod has {EXCLUDE_ANNOTATION}: "true"'
    if MIRROR_ANNOTATION in annotations:
        return f"pod is a mirror pod ({MIRROR_ANNOTATION})"
    return None


def namespace_mismatch(pod: Object, poddefault: Object) -> str | None:
    """The webhook lists only the PodDefaults of the pod's namespace.

    A pod template carries no namespace (its owner does): it is taken to be in
    the namespace the PodDefaults were loaded for.
    """
    pod_namespace = _metadata(pod).get("namespace")
    if pod_namespace is None:
        return None
    pd_namespace = poddefault["metadata"].get("namespace", DEFAULT_NAMESPACE)
    if pd_namespace != pod_namespace:
        return f"PodDefault is in namespace {pd_namespace!r}, the pod in {pod_namespace!r}"
    return None


def _listed(pod: Object, poddefaults: Iterable[Object]) -> list[Object]:
    """The PodDefaults the webhook lists for the pod: its namespace's, in name order."""
    return sorted((pd for pd in poddefaults if namespace_mismatch(pod, pd) is None), key=_name)


def invalid_selectors(pod: Object, poddefaults: Iterable[Object]) -> list[str]:
    """``FILE: field: what`` for each invalid selector that makes the webhook refuse ``pod``."""
    return [
        f"{_source(pd)}: {problem} (PodDefault {_name(pd)!r})"
        for pd in _listed(pod, poddefaults)
        for problem in selector_problems(pd["spec"].get("selector"))
    ]


def matching_poddefaults(pod: Object, poddefaults: Iterable[Object]) -> list[Object]:
    """The PodDefaults whose selector matches ``pod``, in name order (selectors assumed valid)."""
    if skip_reason(pod) is not None:
        return []
    labels = _labels(pod)
    return [
        pd
        for pd in _listed(pod, poddefaults)
        if selector_mismatch(pd["spec"].get("selector"), labels) is None
    ]


# --- admission -------------------------------------------------------------------------


def shape_problems(pod: Any) -> list[str]:
    """Where ``pod`` is not shaped like a Pod in what the webhook reads (no cluster takes it)."""
    if not isinstance(pod, dict):
        return ["must be a Pod or a pod template (an object)"]
    problems = []
    metadata, spec = pod.get("metadata"), pod.get("spec")
    if metadata is not None and not isinstance(metadata, dict):
        problems.append("metadata: must be an object")
    for key in ("labels", "annotations"):
        if isinstance(metadata, dict) and not isinstance(metadata.get(key) or {}, dict):
            problems.append(f"metadata.{key}: must be a map of strings")
    if spec is not None and not isinstance(spec, dict):
        return [*problems, "spec: must be an object"]
    spec = spec or {}
    for key in ("containers", "initContainers", "volumes", "tolerations", "imagePullSecrets"):
        problems += _list_of_objects(spec.get(key), f"spec.{key}")
    for index, container in enumerate(_items(spec, "containers")):
        if isinstance(container, dict):
            for key in ("env", "envFrom", "volumeMounts"):
                problems += _list_of_objects(container.get(key), f"spec.containers[{index}].{key}")
    return problems


def _list_of_objects(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [f"{where}: must be a list"]
    return [
        f"{where}[{i}]: must be an object" for i, v in enumerate(value) if not isinstance(v, dict)
    ]


def admit(pod: Object, poddefaults: Iterable[Object], source: str = "<pod>") -> Admission:
    """What a cluster makes of ``pod``: the pod it creates, or Refused with the reasons.

    ``pod`` itself is never changed.
    """
    problems = shape_problems(pod)
    if problems:
        raise ValidationError(f"{source}: {problem}" for problem in problems)
    result = copy.deepcopy(pod)
    skipped = skip_reason(pod)
    if skipped is not None:
        return Admission(result, skipped=skipped)
    poddefaults = list(poddefaults)
    if not _listed(pod, poddefaults):
        return Admission(result)
    invalid = invalid_selectors(pod, poddefaults)
    if invalid:
        namespace = _metadata(pod).get("namespace") or _listed(pod, poddefaults)[0]["metadata"].get(
            "namespace", DEFAULT_NAMESPACE
        )
        raise Refused(
            [
                f"{source}: refused: the PodDefault webhook cannot parse a selector in namespace "
                f"{namespace!r} (label selector conversion failed), so it refuses every pod "
                "there that is not excluded:"
            ]
            + [f"  {line}" for line in invalid]
        )
    chosen = matching_poddefaults(pod, poddefaults)
    if not chosen:
        return Admission(result)
    names = ", ".join(_name(pd) for pd in chosen)
    arrived = received(pod)
    conflicts = _conflicts(arrived, chosen)
    if conflicts:
        raise Refused(
            [
                f"{source}: refused: the PodDefault webhook finds a conflict applying "
                f"PodDefaults {names}; nothing was applied:"
            ]
            + [f"  {line}" for line in conflicts]
        )
    merged_arrived, wiped = _merge(copy.deepcopy(arrived), chosen)
    if wiped:
        raise Refused(
            [
                f"{source}: refused: sidecar {name!r} of {owner} has the name of one of the "
                "pod's containers; the PodDefault webhook compares it with that container "
                "after adding its own env and volumeMounts, they differ, and upstream then "
                "drops every container from the pod (spec.containers: Required value)"
                for name, owner in wiped
            ]
        )
    merged, _ = _merge(result, chosen)
    return _patched(pod, arrived, merged_arrived, merged, chosen, source)


def _patched(
    pod: Object,
    arrived: Object,
    merged_arrived: Object,
    merged: Object,
    chosen: list[Object],
    source: str,
) -> Admission:
    """The pod as the API server leaves it after applying the webhook's JSON patch.

    The patch is made from the pod as the webhook received it (``arrived``, with
    the API's defaults) to its merge; where it applies and gives that merge, the
    result is ``merged``, the pod as written with the PodDefaults applied.
    """
    before, after = decoded(arrived, "V1Pod"), decoded(merged_arrived, "V1Pod")
    operations = patch_for(before, after)
    applied = [_name(pd) for pd in chosen]
    try:
        outcome = apply_patch(before, operations)
    except PatchFailed as error:
        raise Refused(
            [
                f"{source}: refused: the API server cannot apply the PodDefault webhook's JSON "
                f"patch ({error}): the webhook's patch library (mattbaird/jsonpatch) compares "
                "arrays of different lengths as sets and its indexes run past the end of "
                f"{_changed_arrays(operations)}; this happens when two or more containers "
                "change and a sidecar is added (e.g. containers with istio-proxy), or when an "
                "envFrom entry the container already has is added again before a new one"
            ]
        ) from None
    if outcome == after:
        return Admission(merged, applied=applied)
    try:  # the same operations on the pod as written keep its spelling
        cluster = apply_patch(pod, operations)
    except PatchFailed:
        cluster = outcome
    note = (
        "the PodDefault webhook's JSON patch skips array entries equal to ones already "
        f"there, so {_changed_arrays(operations)} on the cluster differ from the merge "
        "(e.g. a repeated envFrom entry is not added again)"
    )
    return Admission(cluster, applied=applied, notes=[note])


def _changed_arrays(operations: list[Any]) -> str:
    """The arrays the patch changes element by element (where indexes can go wrong)."""
    parents = {
        op["path"].rsplit("/", 1)[0] for op in operations if op["path"].rsplit("/", 1)[1].isdigit()
    }
    return ", ".join(sorted(parents)) or "the pod"


# --- conflicts -------------------------------------------------------------------------


@dataclass
class _Keyed:
    """A list merged by key: the decoded entry and who set it, the last entry per key."""

    what: str
    key: Callable[[Object], str]
    type_name: str
    seen: dict[str, tuple[Any, str]] = field(default_factory=dict)

    def start(self, items: Iterable[Any], owner: str = "the pod") -> _Keyed:
        for item in items:
            if isinstance(item, dict):
                self.seen[self.key(item)] = (decoded(item, self.type_name), owner)
        return self

    def add(self, item: Any, owner: str, conflicts: list[str] | None) -> bool:
        """True when ``item`` is new; a different entry under its key is a conflict."""
        if not isinstance(item, dict):
            return False
        key, value = self.key(item), decoded(item, self.type_name)
        if key not in self.seen:
            self.seen[key] = (value, owner)
            return True
        if self.seen[key][0] != value and conflicts is not None:
            conflicts.append(
                f"{self.what} {key!r}: {owner} and {self.seen[key][1]} set different values"
            )
        return False


def _by(name: str) -> Callable[[Object], str]:
    return lambda item: str(item.get(name) or "")


_POD_LISTS = (
    ("volumes", "volume", "name", "V1Volume"),
    ("tolerations", "toleration", "key", "V1Toleration"),
    ("imagePullSecrets", "imagePullSecret", "name", "V1LocalObjectReference"),
    ("initContainers", "init container", "name", "V1Container"),
)


def _items(owner: Object, key: str) -> list[Any]:
    value = owner.get(key)
    return value if isinstance(value, list) else []


def _conflicts(pod: Object, chosen: list[Object]) -> list[str]:
    """safeToApplyPodDefaultsOnPod: every conflict, on the pod as it arrived."""
    spec = pod.get("spec") or {}
    conflicts: list[str] = []
    for list_name, what, key, type_name in _POD_LISTS:
        merge = _Keyed(what, _by(key), type_name).start(_items(spec, list_name))
        for pd in chosen:
            for item in _items(pd["spec"], list_name):
                merge.add(item, _owner(pd), conflicts)
    for container in _items(spec, "containers"):
        where = f"in container {container.get('name')!r}:"
        env = _Keyed(f"env {where}", _by("name"), "V1EnvVar").start(_items(container, "env"))
        mounts = _Keyed(f"volumeMount {where}", _by("name"), "V1VolumeMount")
        paths = _Keyed(f"mount path {where}", _by("mountPath"), "V1VolumeMount")
        mounts.start(_items(container, "volumeMounts"))
        paths.start(_items(container, "volumeMounts"))
        for pd in chosen:
            for variable in _items(pd["spec"], "env"):
                env.add(variable, _owner(pd), conflicts)
            for mount in _items(pd["spec"], "volumeMounts"):
                mounts.add(mount, _owner(pd), conflicts)
                paths.add(mount, _owner(pd), conflicts)
    for map_name in ("annotations", "labels"):
        seen = {k: (str(v), "the pod") for k, v in (_metadata(pod).get(map_name) or {}).items()}
        for pd in chosen:
            for key, value in (pd["spec"].get(map_name) or {}).items():
                if key not in seen:
                    seen[key] = (str(value), _owner(pd))
                elif seen[key][0] != str(value):
                    conflicts.append(
                        f"{map_name[:-1]} {key!r}: {_owner(pd)} and {seen[key][1]} "
                        "set different values"
                    )
    sidecars = _Keyed("sidecar container", _by("name"), "V1Container")
    sidecars.start(_items(spec, "containers"))
    for pd in chosen:
        for sidecar in _items(pd["spec"], "sidecars"):
            sidecars.add(sidecar, _owner(pd), conflicts)
    return conflicts


# --- merging ---------------------------------------------------------------------------


def _merge(pod: Object, chosen: list[Object]) -> tuple[Object, list[tuple[str, str]]]:
    """applyPodDefaultsOnPod on ``pod`` (changed in place, returned), conflicts already ruled out.

    Also returns the sidecars that make upstream drop every container.
    """
    metadata = pod["metadata"] = pod.get("metadata") or {}
    spec = pod["spec"] = pod.get("spec") or {}
    for list_name, what, key, type_name in _POD_LISTS:
        merge = _Keyed(what, _by(key), type_name).start(_items(spec, list_name))
        merged = list(_items(spec, list_name))
        for pd in chosen:
            merged += [
                copy.deepcopy(item)
                for item in _items(pd["spec"], list_name)
                if merge.add(item, _owner(pd), None)
            ]
        if merged:
            spec[list_name] = merged
    for pd in chosen:
        if pd["spec"].get("automountServiceAccountToken") is not None:
            spec["automountServiceAccountToken"] = pd["spec"]["automountServiceAccountToken"]
        if pd["spec"].get("serviceAccountName"):
            spec["serviceAccountName"] = pd["spec"]["serviceAccountName"]
    for map_name in ("annotations", "labels"):
        values = dict(metadata.get(map_name) or {})
        for pd in chosen:
            for key, value in (pd["spec"].get(map_name) or {}).items():
                values.setdefault(key, value)
        if values:
            metadata[map_name] = values
    for container in _items(spec, "containers"):
        _merge_container(container, chosen)
    wiped: list[tuple[str, str]] = []
    containers = _Keyed("sidecar container", _by("name"), "V1Container")
    containers.start(_items(spec, "containers"))
    for pd in chosen:
        for sidecar in _items(pd["spec"], "sidecars"):
            if containers.add(sidecar, _owner(pd), None):
                spec["containers"] = [*_items(spec, "containers"), copy.deepcopy(sidecar)]
            elif not _equals_changed_container(sidecar, containers):
                wiped.append((str(sidecar.get("name")), _owner(pd)))
    annotations = metadata["annotations"] = dict(metadata.get("annotations") or {})
    for pd in chosen:
        annotations[f"{ANNOTATION_PREFIX}/poddefault-{_name(pd)}"] = str(
            pd["metadata"].get("resourceVersion", "")
        )
    return pod, wiped


def _equals_changed_container(sidecar: Object, containers: _Keyed) -> bool:
    """Whether upstream's DeepEqual holds between a sidecar and the container it names.

    After the merge the container's env and volumeMounts are empty lists, not
    nil, so a sidecar that leaves them out never equals it.
    """
    value, owner = containers.seen[containers.key(sidecar)]
    if owner != "the pod":  # an identical sidecar of an earlier PodDefault
        return bool(value == decoded(sidecar, "V1Container"))
    return (
        sidecar.get("env") is not None
        and sidecar.get("volumeMounts") is not None
        and value == decoded(sidecar, "V1Container")
    )


def _merge_container(container: Object, chosen: list[Object]) -> None:
    """applyPodDefaultsOnContainer: env and volumeMounts by key, envFrom appended, command/args."""
    env = _Keyed("env", _by("name"), "V1EnvVar").start(_items(container, "env"))
    mounts = _Keyed("volumeMount", _by("name"), "V1VolumeMount")
    mounts.start(_items(container, "volumeMounts"))
    merged_env, merged_mounts = (
        list(_items(container, "env")),
        list(_items(container, "volumeMounts")),
    )
    env_from = list(_items(container, "envFrom"))
    for pd in chosen:
        merged_env += [copy.deepcopy(v) for v in _items(pd["spec"], "env") if env.add(v, "", None)]
        merged_mounts += [
            copy.deepcopy(m) for m in _items(pd["spec"], "volumeMounts") if mounts.add(m, "", None)
        ]
        env_from += copy.deepcopy(_items(pd["spec"], "envFrom"))
    for key, items in (("env", merged_env), ("volumeMounts", merged_mounts), ("envFrom", env_from)):
        if items:
            container[key] = items
    if container.get("name") == ISTIO_PROXY:
        return
    for pd in chosen:
        for key in ("command", "args"):
            if not container.get(key) and pd["spec"].get(key) is not None:
                container[key] = list(pd["spec"][key])


# --- explaining ------------------------------------------------------------------------


def explain(pod: Object, poddefaults: Iterable[Object], source: str = "<pod>") -> list[str]:
    """One line per PodDefault: whether it applies to ``pod`` and if not why; then the outcome."""
    poddefaults = sorted(poddefaults, key=_name)
    if not poddefaults:
        return ["no PodDefaults to apply"]
    problems = shape_problems(pod)
    if problems:
        return [f"{source}: {problem}" for problem in problems]
    skipped = skip_reason(pod)
    if skipped is not None:
        return [f"{_name(pd)}: skipped: {skipped}" for pd in poddefaults]
    labels = _labels(pod)
    lines = []
    for pd in poddefaults:
        problems = selector_problems(pd["spec"].get("selector"))
        reason = namespace_mismatch(pod, pd)
        if reason is None and problems:
            lines.append(f"{_name(pd)}: invalid selector: {problems[0]}")
            continue
        reason = reason or selector_mismatch(pd["spec"].get("selector"), labels)
        if reason is None:
            desc = pd["spec"].get("desc")
            lines.append(f"{_name(pd)}: matched" + (f" ({desc})" if desc else ""))
        else:
            lines.append(f"{_name(pd)}: not matched: {reason}")
    try:
        admission = admit(pod, poddefaults, source)
    except Refused as error:
        lines.extend(error.lines())
    else:
        lines.extend(f"note: {note}" for note in admission.notes)
    return lines


def apply_poddefaults(pod: Object, poddefaults: Iterable[Object], source: str = "<pod>") -> Object:
    """A copy of ``pod`` as a cluster creates it with these PodDefaults; Refused if it would not."""
    return admit(pod, poddefaults, source).pod
