"""Names and paths checked as the Kubernetes API server checks them.

The local backend turns names into paths: a job lives in
``$KFKIT_HOME/jobs/<namespace>/<name>``, a secret is read from
``<secrets>/<namespace>/<name>/<key>``, a claim is a directory named after it.
A cluster refuses every name that could step out of those directories (``..``,
``/``, an empty name), because its own rules only allow DNS-style names; so
checking names with those same rules, before anything touches the disk, is
both what a cluster does and what keeps local paths inside their roots.

The rules are those of ``k8s.io/apimachinery/pkg/util/validation`` (DNS-1123
label and subdomain, qualified names, label values, config-map keys, the
relaxed environment variable name of Kubernetes 1.32+) and of the pod
validation in ``k8s.io/kubernetes/pkg/apis/core/validation`` (unique volume and
container names, mounts of declared volumes, descending sub-paths). Types and
unknown fields are left to :mod:`kfkit.jobs.schema`. The few container values
the API server bounds and the local backend then uses (quantities not negative,
requests within limits, a known pull policy, a grace period not negative) are
checked in the same walk.
"""

from __future__ import annotations

import re
from typing import Any

from kfkit.jobs.quantity import parse_quantity

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_PORT_NAME = re.compile(r"^[-a-z0-9]+$")
LABEL_MAX = 63
SUBDOMAIN_MAX = 253
ANNOTATIONS_MAX_BYTES = 256 * 1024
HOST_PATH_TYPES = (
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
)
PROTOCOLS = ("TCP", "UDP", "SCTP")


# --- the apimachinery rules: each returns what is wrong, or None -----------------------


def dns1123_label(value: str) -> str | None:
    if len(value) > LABEL_MAX:
        return f"must be a DNS-1123 label of at most {LABEL_MAX} characters"
    if not _DNS1123_LABEL.match(value):
        return (
            "must be a DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return None


def dns1123_subdomain(value: str) -> str | None:
    if len(value) > SUBDOMAIN_MAX:
        return f"must be a DNS-1123 subdomain of at most {SUBDOMAIN_MAX} characters"
    if not _DNS1123_SUBDOMAIN.match(value):
        return (
            "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit)"
        )
    return None


def qualified_name(value: str) -> str | None:
    """A label or annotation key: ``[prefix/]name``, the prefix a DNS-1123 subdomain."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or dns1123_subdomain(prefix)):
        return "the prefix before '/' must be a DNS-1123 subdomain"
    if not name or len(name) > LABEL_MAX or not _QUALIFIED_NAME.match(name):
        return (
            f"must be at most {LABEL_MAX} letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit, with an optional DNS prefix and '/'"
        )
    return None


def label_value(value: str) -> str | None:
    if value and (len(value) > LABEL_MAX or not _QUALIFIED_NAME.match(value)):
        return (
            f"must be empty or at most {LABEL_MAX} letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def config_map_key(value: str) -> str | None:
    """A key of a secret or config map: it becomes a file name."""
    if len(value) > SUBDOMAIN_MAX:
        return f"must be no more than {SUBDOMAIN_MAX} characters"
    if not _CONFIG_MAP_KEY.match(value):
        return "must consist of letters, digits, '-', '_' or '.'"
    if value in (".", "..") or value.startswith(".."):
        return "must not be '.' or '..' or start with '..'"
    return None


def env_var_name(value: str) -> str | None:
    """Kubernetes 1.32+ (RelaxedEnvironmentVariableValidation): printable ASCII but '='."""
    if not value:
        return "must not be empty"
    if "=" in value:
        return "must not contain '='"
    if any(not 32 <= ord(character) <= 126 for character in value):
        return "must consist of printable ASCII characters"
    return None


def descending_path(value: str) -> str | None:
    """A path that must stay below its volume (``subPath``, ``items[].path``)."""
    if value.startswith("/"):
        return "must be a relative path"
    if ".." in value.split("/"):
        return "must not contain '..'"
    return None


def port_name(value: str) -> str | None:
    """An IANA service name, as containerPort names must be."""
    if len(value) > 15:
        return "must be no more than 15 characters"
    if not _PORT_NAME.match(value) or not re.search(r"[a-z]", value):
        return "must contain only lowercase letters, digits and '-', and at least one letter"
    if value.startswith("-") or value.endswith("-") or "--" in value:
        return "must not begin or end with '-' or contain '--'"
    return None


# --- walking a job ------------------------------------------------------------------------


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _check(problems: list[str], path: str, value: Any, rule: Any, what: str = "") -> None:
    if not isinstance(value, str):
        return  # types are kfkit.jobs.schema's business
    message = rule(value)
    if message is not None:
        problems.append(f"{path}: {value!r} {what}{message}")


def _required(problems: list[str], path: str, value: Any) -> bool:
    if value is None or value == "":
        problems.append(f"{path}: required")
        return False
    return True


def metadata_problems(metadata: Any, path: str = "metadata") -> list[str]:
    """Namespace, labels and annotations of an object (its name is checked by its kind)."""
    if not isinstance(metadata, dict):
        return []
    problems: list[str] = []
    if metadata.get("namespace") not in (None, ""):
        _check(problems, f"{path}.namespace", metadata["namespace"], dns1123_label)
    if metadata.get("generateName"):
        problems.append(f"{path}.generateName: not supported; set metadata.name")
    for key, value in (metadata.get("labels") or {}).items():
        _check(problems, f"{path}.labels", key, qualified_name, "(key) ")
        _check(problems, f"{path}.labels.{key}", value, label_value)
    annotations = metadata.get("annotations") or {}
    for key in annotations:
        _check(problems, f"{path}.annotations", key, qualified_name, "(key) ")
    size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        problems.append(f"{path}.annotations: too long, must be at most {ANNOTATIONS_MAX_BYTES}")
    return problems


def _key_selector(problems: list[str], path: str, ref: Any) -> None:
    if not isinstance(ref, dict):
        return
    if _required(problems, f"{path}.name", ref.get("name")):
        _check(problems, f"{path}.name", ref["name"], dns1123_subdomain)
    if _required(problems, f"{path}.key", ref.get("key")):
        _check(problems, f"{path}.key", ref["key"], config_map_key)


# What a resourceFieldRef may name, and the divisors the API server allows for each.
_MEMORY_SUFFIXES = ("", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_MEMORY_DIVISORS = tuple(f"1{suffix}" for suffix in _MEMORY_SUFFIXES)
RESOURCE_DIVISORS = {
    "cpu": ("1m", "1"),
    "memory": _MEMORY_DIVISORS,
    "ephemeral-storage": _MEMORY_DIVISORS,
}


def _resource_ref_problems(ref: dict[str, Any], path: str) -> list[str]:
    resource = ref.get("resource")
    section, _, name = str(resource).partition(".")
    if section not in ("limits", "requests") or name not in RESOURCE_DIVISORS:
        allowed = ", ".join(f"{s}.{n}" for s in ("limits", "requests") for n in RESOURCE_DIVISORS)
        return [f"{path}.resource: {resource!r} must be one of {allowed}"]
    divisor = ref.get("divisor")
    if divisor is not None and str(divisor) not in RESOURCE_DIVISORS[name]:
        return [
            f"{path}.divisor: {divisor!r} must be one of {', '.join(RESOURCE_DIVISORS[name])} "
            f"for {name}"
        ]
    return []


def _env_problems(container: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    for index, item in enumerate(container.get("env") or []):
        where = f"{path}.env[{index}]"
        if not isinstance(item, dict):
            continue
        if _required(problems, f"{where}.name", item.get("name")):
            _check(problems, f"{where}.name", item["name"], env_var_name)
        value_from = item.get("valueFrom") or {}
        sources = [key for key in value_from if value_from.get(key) is not None]
        if len(sources) > 1:
            problems.append(f"{where}.valueFrom: may not have more than one field specified")
        if sources and item.get("value"):
            problems.append(f"{where}.valueFrom: may not be specified when `value` is not empty")
        for kind in ("secretKeyRef", "configMapKeyRef"):
            _key_selector(problems, f"{where}.valueFrom.{kind}", value_from.get(kind))
        field_ref = value_from.get("fieldRef")
        if isinstance(field_ref, dict):
            _required(problems, f"{where}.valueFrom.fieldRef.fieldPath", field_ref.get("fieldPath"))
        resource_ref = value_from.get("resourceFieldRef")
        if isinstance(resource_ref, dict):
            problems += _resource_ref_problems(resource_ref, f"{where}.valueFrom.resourceFieldRef")
    for index, source in enumerate(container.get("envFrom") or []):
        where = f"{path}.envFrom[{index}]"
        if not isinstance(source, dict):
            continue
        if source.get("prefix"):
            _check(problems, f"{where}.prefix", source["prefix"], env_var_name)
        refs = [kind for kind in ("configMapRef", "secretRef") if source.get(kind) is not None]
        if len(refs) != 1:
            problems.append(f"{where}: exactly one of configMapRef and secretRef is required")
        for kind in refs:
            ref = source[kind]
            if isinstance(ref, dict) and _required(
                problems, f"{where}.{kind}.name", ref.get("name")
            ):
                _check(problems, f"{where}.{kind}.name", ref["name"], dns1123_subdomain)
    return problems


def _mount_problems(container: dict[str, Any], path: str, volumes: set[str]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for index, mount in enumerate(container.get("volumeMounts") or []):
        where = f"{path}.volumeMounts[{index}]"
        if not isinstance(mount, dict):
            continue
        name = mount.get("name")
        if _required(problems, f"{where}.name", name) and name not in volumes:
            problems.append(f"{where}.name: {name!r} is not a volume of the pod")
        mount_path = _string(mount.get("mountPath"))
        if _required(problems, f"{where}.mountPath", mount.get("mountPath")):
            if mount_path in seen:
                problems.append(f"{where}.mountPath: {mount_path!r} must be unique")
            seen.add(mount_path)
            if not mount_path.startswith("/"):
                problems.append(f"{where}.mountPath: {mount_path!r} must be an absolute path")
        if mount.get("subPath"):
            _check(problems, f"{where}.subPath", mount["subPath"], descending_path)
        if mount.get("subPathExpr"):
            problems.append(f"{where}.subPathExpr: not supported by the local backend")
    return problems


def _port_problems(container: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    for index, port in enumerate(container.get("ports") or []):
        where = f"{path}.ports[{index}]"
        if not isinstance(port, dict):
            continue
        number = port.get("containerPort")
        if isinstance(number, int) and not 1 <= number <= 65535:
            problems.append(f"{where}.containerPort: must be between 1 and 65535, got {number}")
        elif number is None:
            problems.append(f"{where}.containerPort: required")
        if port.get("name"):
            _check(problems, f"{where}.name", port["name"], port_name)
        protocol = port.get("protocol")
        if protocol is not None and protocol not in PROTOCOLS:
            problems.append(f"{where}.protocol: must be one of {', '.join(PROTOCOLS)}")
    return problems


PULL_POLICIES = ("Always", "IfNotPresent", "Never")


def _value_problems(container: dict[str, Any], path: str) -> list[str]:
    """The few container values the API server bounds that the local backend uses."""
    problems: list[str] = []
    policy = container.get("imagePullPolicy")
    if policy is not None and policy not in PULL_POLICIES:
        problems.append(f"{path}.imagePullPolicy: must be one of {', '.join(PULL_POLICIES)}")
    resources = container.get("resources")
    if not isinstance(resources, dict):
        return problems
    amounts: dict[str, dict[str, float]] = {}
    for section in ("limits", "requests"):
        for name, value in (resources.get(section) or {}).items():
            amount = parse_quantity(value)  # kfkit.jobs.schema has checked the syntax
            if amount < 0:
                problems.append(f"{path}.resources.{section}.{name}: must not be negative")
            amounts.setdefault(section, {})[name] = amount
    for name, request in amounts.get("requests", {}).items():
        limit = amounts.get("limits", {}).get(name)
        if limit is not None and request > limit:
            problems.append(
                f"{path}.resources.requests.{name}: must be less than or equal to the {name} limit"
            )
    return problems


def _items_problems(problems: list[str], path: str, items: Any) -> None:
    for index, item in enumerate(items or []):
        if not isinstance(item, dict):
            continue
        where = f"{path}.items[{index}]"
        if _required(problems, f"{where}.key", item.get("key")):
            _check(problems, f"{where}.key", item["key"], config_map_key)
        if _required(problems, f"{where}.path", item.get("path")):
            _check(problems, f"{where}.path", item["path"], descending_path)
            if _string(item["path"]).startswith(".."):
                problems.append(f"{where}.path: must not start with '..'")


def _volume_problems(volume: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    sources = {"persistentVolumeClaim": "claimName", "secret": "secretName", "configMap": "name"}
    for kind, field in sources.items():
        source = volume.get(kind)
        if not isinstance(source, dict):
            continue
        if _required(problems, f"{where}.{kind}.{field}", source.get(field)):
            _check(problems, f"{where}.{kind}.{field}", source[field], dns1123_subdomain)
        _items_problems(problems, f"{where}.{kind}", source.get("items"))
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict):
        _required(problems, f"{where}.hostPath.path", host_path.get("path"))
        host_type = host_path.get("type")
        if host_type is not None and host_type not in HOST_PATH_TYPES:
            allowed = ", ".join(t for t in HOST_PATH_TYPES if t)
            problems.append(f"{where}.hostPath.type: {host_type!r} must be one of {allowed}")
    return problems


def pod_problems(template: Any, path: str) -> list[str]:
    """Every name and path of a pod template the API server would refuse."""
    if not isinstance(template, dict):
        return []
    problems = metadata_problems(template.get("metadata"), f"{path}.metadata")
    spec = template.get("spec")
    if not isinstance(spec, dict):
        return problems
    volumes: set[str] = set()
    for index, volume in enumerate(spec.get("volumes") or []):
        where = f"{path}.spec.volumes[{index}]"
        if not isinstance(volume, dict) or not isinstance(volume.get("name"), str):
            continue
        _check(problems, f"{where}.name", volume["name"], dns1123_label)
        if volume["name"] in volumes:
            problems.append(f"{where}.name: {volume['name']!r} is declared twice")
        volumes.add(volume["name"])
        problems += _volume_problems(volume, where)
    names: set[str] = set()
    for group in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(group) or []):
            where = f"{path}.spec.{group}[{index}]"
            if not isinstance(container, dict):
                continue
            name = container.get("name")
            _check(problems, f"{where}.name", name, dns1123_label)
            if isinstance(name, str) and name in names:
                problems.append(f"{where}.name: {name!r} is used by two containers")
            names.add(_string(name))
            problems += _env_problems(container, where)
            problems += _mount_problems(container, where, volumes)
            problems += _port_problems(container, where)
            problems += _value_problems(container, where)
    for field in ("serviceAccountName", "priorityClassName", "schedulerName"):
        if spec.get(field):
            _check(problems, f"{path}.spec.{field}", spec[field], dns1123_subdomain)
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace < 0:
        problems.append(f"{path}.spec.terminationGracePeriodSeconds: must not be negative")
    return problems


def job_problems(manifest: dict[str, Any], replica_specs_key: str) -> list[str]:
    """Every name and path in a job manifest the API server would refuse."""
    problems = metadata_problems(manifest.get("metadata"))
    specs = (manifest.get("spec") or {}).get(replica_specs_key) or {}
    if isinstance(specs, dict):
        for replica_type, replica_spec in specs.items():
            if isinstance(replica_spec, dict):
                path = f"spec.{replica_specs_key}.{replica_type}.template"
                problems += pod_problems(replica_spec.get("template"), path)
    return problems


# YAML aliases can make a small file stand for a huge (or endless) document.
MAX_NODES = 100_000


class _TooLarge(Exception):
    pass


def _without_nulls(value: Any, path: str, problems: list[str], budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge
    if isinstance(value, dict):
        return {
            key: _without_nulls(item, f"{path}.{key}" if path else str(key), problems, budget)
            for key, item in value.items()
            if item is not None
        }
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            if item is None:
                problems.append(f"{path}[{index}]: must not be null")
                continue
            items.append(_without_nulls(item, f"{path}[{index}]", problems, budget))
        return items
    return value


def drop_nulls(document: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """A copy of ``document`` without null map entries; null list items are problems.

    The API server prunes a ``null`` given for a field that is not nullable, so
    ``runPolicy: null`` means "not set". A null where a list expects an object
    (``containers: [null]``) is an error there too. The copy is also where a
    document too big to be a manifest (YAML aliases expanding into millions of
    nodes, or referring to themselves) is refused.
    """
    try:
        return dict(_without_nulls(document, "", problems, [MAX_NODES]))
    except (_TooLarge, RecursionError):
        problems.append(
            f"document: larger than {MAX_NODES} values once YAML aliases are expanded, "
            "or an alias refers to itself"
        )
        return {}


__all__ = [
    "config_map_key",
    "descending_path",
    "dns1123_label",
    "dns1123_subdomain",
    "drop_nulls",
    "env_var_name",
    "job_problems",
    "label_value",
    "metadata_problems",
    "pod_problems",
    "qualified_name",
]
