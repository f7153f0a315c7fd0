"""Values as the webhook sees them: decoded into the Kubernetes API types, then compared.

The PodDefault webhook decides conflicts with Go's ``reflect.DeepEqual`` on the
decoded ``k8s.io/api/core/v1`` structs, not on the YAML someone wrote. So
``readOnly: false`` is the same mount as one without ``readOnly``, ``value: ""``
the same variable as one without a value, ``emptyDir: {}`` the same volume as
``emptyDir: {medium: ""}``, and a field the type does not have is dropped by the
decoder. ``decoded`` turns a manifest fragment into that comparable form, using
the field tables of the official ``kubernetes`` client's models (their
``openapi_types`` and ``attribute_map``), so two fragments compare equal exactly
when their decoded structs would.

Go keeps a few optional fields as pointers, where absent (nil) and the zero
value differ (``optional: false`` is not the same as no ``optional``); the
client's tables do not say which, so ``POINTER_FIELDS`` names them. Empty lists
and maps count as absent: the API server drops them when it encodes the pod it
sends to the webhook.
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes.client import models

# Optional scalars that k8s.io/api core/v1 declares as pointers (model, python attribute).
POINTER_FIELDS = frozenset(
    {
        ("V1VolumeMount", "mount_propagation"),
        ("V1VolumeMount", "recursive_read_only"),
        ("V1Toleration", "toleration_seconds"),
        ("V1ConfigMapKeySelector", "optional"),
        ("V1SecretKeySelector", "optional"),
        ("V1ConfigMapEnvSource", "optional"),
        ("V1SecretEnvSource", "optional"),
        ("V1ConfigMapVolumeSource", "optional"),
        ("V1ConfigMapVolumeSource", "default_mode"),
        ("V1SecretVolumeSource", "optional"),
        ("V1SecretVolumeSource", "default_mode"),
        ("V1ConfigMapProjection", "optional"),
        ("V1SecretProjection", "optional"),
        ("V1DownwardAPIVolumeSource", "default_mode"),
        ("V1ProjectedVolumeSource", "default_mode"),
        ("V1KeyToPath", "mode"),
        ("V1DownwardAPIVolumeFile", "mode"),
        ("V1HostPathVolumeSource", "type"),
        ("V1EmptyDirVolumeSource", "size_limit"),
        ("V1ServiceAccountTokenProjection", "expiration_seconds"),
        ("V1CSIVolumeSource", "read_only"),
        ("V1CSIVolumeSource", "fs_type"),
        ("V1Container", "restart_policy"),
        ("V1Probe", "termination_grace_period_seconds"),
        ("V1SeccompProfile", "localhost_profile"),
        ("V1AppArmorProfile", "localhost_profile"),
        ("V1SecurityContext", "allow_privilege_escalation"),
        ("V1SecurityContext", "privileged"),
        ("V1SecurityContext", "proc_mount"),
        ("V1SecurityContext", "read_only_root_filesystem"),
        ("V1SecurityContext", "run_as_group"),
        ("V1SecurityContext", "run_as_non_root"),
        ("V1SecurityContext", "run_as_user"),
    }
)

# Struct fields that Go holds by value, so an empty one is the same as none.
VALUE_STRUCT_FIELDS = frozenset({("V1Container", "resources")})

_ZERO: dict[str, Any] = {"str": "", "bool": False, "int": 0, "float": 0.0}
_LIST = re.compile(r"list\[(.*)\]")
_DICT = re.compile(r"dict\(([^,]*), (.*)\)")


def decoded(value: Any, type_name: str) -> Any:
    """``value`` (a manifest fragment) as the decoded API type ``type_name`` compares.

    ``type_name`` is a client model name (``V1EnvVar``) or one of its field
    types (``list[V1Volume]``, ``dict(str, str)``, ``str``).
    """
    if value is None:
        return None
    list_of = _LIST.fullmatch(type_name)
    if list_of:
        items = value if isinstance(value, list) else []
        return [decoded(item, list_of.group(1)) for item in items]
    dict_of = _DICT.fullmatch(type_name)
    if dict_of:
        entries = value if isinstance(value, dict) else {}
        return {str(k): decoded(v, dict_of.group(2)) for k, v in entries.items()}
    if type_name in _ZERO:
        return _primitive(value, type_name)
    if type_name == "object":  # int-or-string and free-form values: as written
        return value
    model = getattr(models, type_name, None)
    if model is None or not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for attribute, field_type in model.openapi_types.items():
        key = model.attribute_map[attribute]
        field = decoded(value.get(key), field_type)
        if _absent(field, field_type, (type_name, attribute)):
            continue
        result[key] = field
    return result


def _absent(field: Any, field_type: str, where: tuple[str, str]) -> bool:
    """Whether a decoded field is what Go would hold for a field that was not written."""
    if field is None:
        return True
    if isinstance(field, (list, dict)) and not field:
        return field_type.startswith(("list[", "dict(")) or where in VALUE_STRUCT_FIELDS
    if field_type in _ZERO and where not in POINTER_FIELDS:
        return bool(field == _ZERO[field_type])
    return False


def _primitive(value: Any, type_name: str) -> Any:
    if type_name == "bool":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if type_name == "str":
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    try:
        return int(value) if type_name == "int" else float(value)
    except (TypeError, ValueError):
        return value


def same(first: Any, second: Any, type_name: str) -> bool:
    """Whether two fragments decode to equal values of ``type_name`` (reflect.DeepEqual)."""
    return bool(decoded(first, type_name) == decoded(second, type_name))
