"""Reading PodDefaults from files, checked as the API server checks them on creation.

The API server validates a PodDefault against its CRD's schema: a name, a
``spec`` with a ``selector``, lists where lists belong, matchExpressions with a
``key`` and an ``operator``. Those problems stop ``load_poddefaults`` (every one
reported as ``FILE: field.path: what``). What the schema lets through, such as
an unknown selector operator, is the webhook's business: see
``kfkit.poddefaults.webhook``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kfkit.errors import KfkitError, NotFoundError, ValidationError

API_VERSION = "kubeflow.org/v1alpha1"
KIND = "PodDefault"
DEFAULT_NAMESPACE = "default"

LIST_FIELDS = (
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
MAP_FIELDS = ("annotations", "labels")
NAMED_FIELDS = ("env", "volumes", "volumeMounts", "imagePullSecrets", "initContainers", "sidecars")


class PodDefault(dict[str, Any]):
    """A PodDefault document that remembers the file it was read from, for error lines."""

    source: str = "<poddefault>"


def load_poddefaults(directory: str | Path, namespace: str | None = None) -> list[PodDefault]:
    """Read the PodDefaults in ``directory`` (``*.yaml``/``*.yml``) that live in ``namespace``.

    A PodDefault without ``metadata.namespace`` is in ``default``, as ``kubectl
    apply`` would put it; ``namespace=None`` also means ``default``. Other kinds
    in the files are ignored, so a directory of mixed manifests works. The
    result is sorted by name, the order in which the API server lists them.
    """
    root = Path(directory)
    if not root.is_dir():
        raise NotFoundError(f"{root}: no such directory of PodDefaults")
    wanted = namespace or DEFAULT_NAMESPACE
    problems: list[str] = []
    found: dict[str, PodDefault] = {}
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
                    f"{found[name].source}"
                )
                continue
            found[name] = PodDefault(document)
            found[name].source = str(path)
    if problems:
        raise ValidationError(problems)
    return [found[name] for name in sorted(found)]


def _read_documents(path: Path) -> list[Any]:
    try:
        return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise KfkitError(f"{path}: {where}not valid YAML") from error


def validate_poddefault(document: dict[str, Any]) -> list[str]:
    """Problems the API server finds in one PodDefault, as ``field.path: what is wrong`` lines."""
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
        problems.extend(_selector_shape(spec["selector"], "spec.selector"))
    for key in LIST_FIELDS:
        items = spec.get(key)
        if key in spec and not isinstance(items, list):
            problems.append(f"spec.{key}: must be a list")
            continue
        strings = key in ("command", "args")
        for index, item in enumerate(items or []):
            if strings or not isinstance(item, dict):
                if not isinstance(item, str if strings else dict):
                    what = "a string" if strings else "an object"
                    problems.append(f"spec.{key}[{index}]: must be {what}")
            elif key in NAMED_FIELDS and not item.get("name"):
                problems.append(f"spec.{key}[{index}].name: required")
            elif key == "volumeMounts" and not item.get("mountPath"):
                problems.append(f"spec.{key}[{index}].mountPath: required")
    for key in MAP_FIELDS:
        value = spec.get(key)
        if key in spec and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            problems.append(f"spec.{key}: must be a map of strings")
    return problems


def _selector_shape(selector: Any, where: str) -> list[str]:
    """What the CRD schema requires of a selector; its syntax is checked by the webhook."""
    if not isinstance(selector, dict):
        return [f"{where}: must be a label selector (matchLabels/matchExpressions)"]
    problems: list[str] = []
    match_labels = selector.get("matchLabels")
    if match_labels is not None and not (
        isinstance(match_labels, dict) and all(isinstance(v, str) for v in match_labels.values())
    ):
        problems.append(f"{where}.matchLabels: must be a map of strings")
    expressions = selector.get("matchExpressions")
    if expressions is None:
        return problems
    if not isinstance(expressions, list):
        return [*problems, f"{where}.matchExpressions: must be a list"]
    for index, expression in enumerate(expressions):
        path = f"{where}.matchExpressions[{index}]"
        if not isinstance(expression, dict):
            problems.append(f"{path}: must be an object with key and operator")
            continue
        for required in ("key", "operator"):
            if not isinstance(expression.get(required), str):
                problems.append(f"{path}.{required}: required")
        values = expression.get("values")
        if values is not None and not (
            isinstance(values, list) and all(isinstance(v, str) for v in values)
        ):
            problems.append(f"{path}.values: must be a list of strings")
    return problems
