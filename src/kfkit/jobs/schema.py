"""Structural checks of job manifests: types, unknown fields, quantities.

The Kubernetes part of a manifest (object metadata, pod templates) is checked
against the field tables of the official ``kubernetes`` client's models, which
list every field of every core type with its type; the Kubeflow part (replica
specs, run policy, elastic policy) is described in this module in the same
notation. One walker checks both, so an unknown field or a wrong type anywhere
is reported with its full path, e.g.
``spec.pytorchReplicaSpecs.Master.template.spec.containers[0].resource: unknown field``.
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes.client import models as k8s_models

# Kubernetes resource quantities: a signed decimal number with an optional
# binary (Ki..Ei), decimal (n..E) or exponent suffix, e.g. 500m, 1Gi, 1e3.
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?\d+))?$")
# Fields whose values are quantities; the client types them as plain strings.
_QUANTITY_MAPS = {"limits", "requests", "overhead", "hard", "min_resources"}
_QUANTITY_FIELDS = {"size_limit"}

# The Kubeflow types, in the client's notation: attribute -> (json name, type).
_KUBEFLOW_TYPES: dict[str, dict[str, tuple[str, str]]] = {
    "ReplicaSpec": {
        "replicas": ("replicas", "int"),
        "template": ("template", "V1PodTemplateSpec"),
        "restart_policy": ("restartPolicy", "str"),
    },
    "RunPolicy": {
        "clean_pod_policy": ("cleanPodPolicy", "str"),
        "ttl_seconds_after_finished": ("ttlSecondsAfterFinished", "int"),
        "active_deadline_seconds": ("activeDeadlineSeconds", "int"),
        "backoff_limit": ("backoffLimit", "int"),
        "scheduling_policy": ("schedulingPolicy", "SchedulingPolicy"),
        "suspend": ("suspend", "bool"),
        "managed_by": ("managedBy", "str"),
    },
    "SchedulingPolicy": {
        "min_available": ("minAvailable", "int"),
        "queue": ("queue", "str"),
        "min_resources": ("minResources", "dict(str, str)"),
        "priority_class": ("priorityClass", "str"),
        "schedule_timeout_seconds": ("scheduleTimeoutSeconds", "int"),
    },
    "ElasticPolicy": {
        "min_replicas": ("minReplicas", "int"),
        "max_replicas": ("maxReplicas", "int"),
        "rdzv_backend": ("rdzvBackend", "str"),
        "rdzv_port": ("rdzvPort", "int"),
        "rdzv_host": ("rdzvHost", "str"),
        "rdzv_id": ("rdzvId", "str"),
        "rdzv_conf": ("rdzvConf", "list[RDZVConf]"),
        "standalone": ("standalone", "bool"),
        "n_proc_per_node": ("nProcPerNode", "int"),
        "max_restarts": ("maxRestarts", "int"),
        "metrics": ("metrics", "list[object]"),
    },
    "RDZVConf": {"key": ("key", "str"), "value": ("value", "str")},
    "PyTorchJobSpec": {
        "pytorch_replica_specs": ("pytorchReplicaSpecs", "dict(str, ReplicaSpec)"),
        "run_policy": ("runPolicy", "RunPolicy"),
        "elastic_policy": ("elasticPolicy", "ElasticPolicy"),
        "nproc_per_node": ("nprocPerNode", "str"),
    },
    "TFJobSpec": {
        "tf_replica_specs": ("tfReplicaSpecs", "dict(str, ReplicaSpec)"),
        "run_policy": ("runPolicy", "RunPolicy"),
        "success_policy": ("successPolicy", "str"),
        "enable_dynamic_worker": ("enableDynamicWorker", "bool"),
    },
}
# Kubeflow integer fields declared int32 in the upstream CRDs (the rest are int64 or
# the client's own int32 fields, which the API server also bounds).
_INT32_FIELDS = {
    "replicas",
    "backoff_limit",
    "min_available",
    "schedule_timeout_seconds",
    "min_replicas",
    "max_replicas",
    "rdzv_port",
    "n_proc_per_node",
    "max_restarts",
    "container_port",
    "host_port",
}
# Values that are objects of their own but must carry these fields.
_REQUIRED = {"V1Container": ("name",), "V1EnvVar": ("name",), "V1Volume": ("name",)}


def _fields(type_name: str) -> dict[str, tuple[str, str]] | None:
    """Map json field name -> (attribute, type) for a model, or None if unknown."""
    if type_name in _KUBEFLOW_TYPES:
        return {json: (attr, kind) for attr, (json, kind) in _KUBEFLOW_TYPES[type_name].items()}
    model = getattr(k8s_models, type_name, None)
    if model is None:
        return None
    return {model.attribute_map[attr]: (attr, kind) for attr, kind in model.openapi_types.items()}


def _type_label(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__


def is_quantity(value: Any) -> bool:
    """True for a valid Kubernetes quantity (numbers count: YAML ``cpu: 1`` is fine)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and bool(_QUANTITY.match(value))


def check(value: Any, type_name: str, path: str, attribute: str = "") -> list[str]:
    """Return one ``path: problem`` line per structural problem in ``value``."""
    if value is None:
        return []  # Kubernetes treats an explicit null as "not set".
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return [f"{path}: must be a list, got {_type_label(value)}"]
        item_type = type_name[5:-1]
        problems: list[str] = []
        for index, item in enumerate(value):
            problems += check(item, item_type, f"{path}[{index}]", attribute)
        return problems
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            return [f"{path}: must be a map, got {_type_label(value)}"]
        value_type = type_name[5:-1].split(",", 1)[1].strip()
        problems = []
        for key, item in value.items():
            if attribute in _QUANTITY_MAPS:
                if not is_quantity(item):
                    problems.append(
                        f"{path}.{key}: {item!r} is not a valid quantity (e.g. 500m, 1Gi)"
                    )
                continue
            problems += check(item, value_type, f"{path}.{key}")
        return problems
    if type_name == "str":
        if attribute in _QUANTITY_FIELDS:
            return [] if is_quantity(value) else [f"{path}: {value!r} is not a valid quantity"]
        if not isinstance(value, str):
            return [f"{path}: must be a string, got {_type_label(value)}"]
        return []
    if type_name == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: must be an integer, got {_type_label(value)}"]
        # The API server's integers are int32 or int64: nothing larger is stored.
        limit = 2**31 if attribute in _INT32_FIELDS else 2**63
        if not -limit <= value < limit:
            return [f"{path}: {value} is out of range (at most {limit - 1})"]
        return []
    if type_name == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{path}: must be a number, got {_type_label(value)}"]
        return []
    if type_name == "bool":
        return [] if isinstance(value, bool) else [f"{path}: must be true or false"]
    if type_name in ("object", "datetime"):
        return []
    fields = _fields(type_name)
    if fields is None:
        return []
    if not isinstance(value, dict):
        return [f"{path}: must be an object, got {_type_label(value)}"]
    problems = []
    for key, item in value.items():
        if key not in fields:
            problems.append(f"{path}.{key}: unknown field")
            continue
        field_attribute, field_type = fields[key]
        problems += check(item, field_type, f"{path}.{key}", field_attribute)
    for required in _REQUIRED.get(type_name, ()):
        if not value.get(required):
            problems.append(f"{path}.{required}: required")
    return problems


def check_job(manifest: dict[str, Any], spec_type: str) -> list[str]:
    """Check a whole job manifest (apiVersion/kind/metadata/spec/status)."""
    problems: list[str] = []
    allowed = {"apiVersion", "kind", "metadata", "spec", "status"}
    for key in manifest:
        if key not in allowed:
            problems.append(f"{key}: unknown field")
    problems += check(manifest.get("metadata"), "V1ObjectMeta", "metadata")
    spec = manifest.get("spec")
    if spec is None:
        problems.append("spec: required")
    else:
        problems += check(spec, spec_type, "spec")
    return problems
