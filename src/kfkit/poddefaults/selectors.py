"""Label selectors of PodDefaults, parsed and matched as Kubernetes' API machinery does.

The webhook turns every PodDefault's ``spec.selector`` into a selector with
``metav1.LabelSelectorAsSelector`` before it looks at any label. That call
checks what the CRD schema does not: each key is a qualified name, each value a
valid label value, the operator one of the four, ``In``/``NotIn`` have values
and ``Exists``/``DoesNotExist`` have none. One selector that fails it makes the
webhook refuse every pod of its namespace, so ``selector_problems`` reports the
same failures, and ``selector_mismatch`` matches as the parsed selector does.
An empty selector matches every pod.
"""

from __future__ import annotations

import re
from typing import Any

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a qualified name (``[prefix/]name``), or None."""
    parts = key.split("/")
    if len(parts) > 2:
        return f"label key {key!r} must be a name with an optional DNS subdomain prefix and '/'"
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return f"label key {key!r}: prefix part must be non-empty"
        if len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix):
            return f"label key {key!r}: prefix part must be a lowercase DNS subdomain"
    else:
        name = parts[0]
    if not name:
        return f"label key {key!r}: name part must be non-empty"
    if len(name) > 63:
        return f"label key {key!r}: name part must be no more than 63 characters"
    if not _NAME.fullmatch(name):
        return (
            f"label key {key!r}: name part must consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return None


def value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None."""
    if len(value) > 63:
        return f"label value {value!r} must be no more than 63 characters"
    if not _LABEL_VALUE.fullmatch(value):
        return (
            f"label value {value!r} must be empty or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return None


def selector_problems(selector: Any, where: str = "spec.selector") -> list[str]:
    """Why ``LabelSelectorAsSelector`` would fail on ``selector``, as ``field: what`` lines."""
    if not isinstance(selector, dict):
        return []
    problems: list[str] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        path = f"{where}.matchLabels.{key}"
        problems += [
            f"{path}: {p}" for p in (key_problem(str(key)), value_problem(str(value))) if p
        ]
    for index, expression in enumerate(selector.get("matchExpressions") or []):
        path = f"{where}.matchExpressions[{index}]"
        key, operator = str(expression.get("key") or ""), expression.get("operator")
        values = [str(v) for v in expression.get("values") or []]
        if operator not in OPERATORS:
            problems.append(f"{path}.operator: {operator!r} is not a valid label selector operator")
            continue
        if (problem := key_problem(key)) is not None:
            problems.append(f"{path}.key: {problem}")
        if operator in ("In", "NotIn") and not values:
            problems.append(
                f"{path}.values: for 'in', 'notin' operators, values set can't be empty"
            )
        if operator in ("Exists", "DoesNotExist") and values:
            problems.append(
                f"{path}.values: values set must be empty for exists and does not exist"
            )
        for number, value in enumerate(values):
            if (problem := value_problem(value)) is not None:
                problems.append(f"{path}.values[{number}]: {problem}")
    return problems


def selector_mismatch(selector: Any, labels: dict[str, str]) -> str | None:
    """Why ``labels`` do not match ``selector`` (a valid one), or None when they do."""
    selector = selector if isinstance(selector, dict) else {}
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        if key not in labels:
            return f"pod has no label {key!r} (selector wants {key}={value})"
        if labels[key] != str(value):
            return f"label {key}={labels[key]} (selector wants {key}={value})"
    for expression in selector.get("matchExpressions") or []:
        key = str(expression.get("key"))
        operator = expression.get("operator")
        values = [str(v) for v in expression.get("values") or []]
        present = key in labels
        if operator == "In" and (not present or labels[key] not in values):
            shown = f"label {key}={labels[key]}" if present else f"pod has no label {key!r}"
            return f"{shown} (selector wants {key} in {values})"
        if operator == "NotIn" and present and labels[key] in values:
            return f"label {key}={labels[key]} (selector wants {key} not in {values})"
        if operator == "Exists" and not present:
            return f"pod has no label {key!r} (selector wants it to exist)"
        if operator == "DoesNotExist" and present:
            return f"pod has label {key!r} (selector wants it absent)"
    return None
