"""The webhook's answer is a JSON patch, and the API server applies it: so must we.

The PodDefault webhook does not return the pod it computed. It returns the
difference between the pod it received and that pod, as a JSON patch built by
the ``github.com/mattbaird/jsonpatch`` library, and the API server applies that
patch to the pod. The library compares two arrays of different lengths as sets:
it removes, at their old indexes, the elements the new array lacks, then adds,
at their new indexes, the elements the old one lacks. Applied in order, the
indexes can point past the end of the array, and then the API server refuses
the pod. It happens when two containers change and a sidecar is added (the
usual istio-proxy setup: every container gets the env), and when an ``envFrom``
entry the container already has is added again before a new one. Where an
element is skipped because an equal one exists, the patch applies but the pod
differs from the merge.

``patch_for`` builds the same operations (our code, from the library's
rules), and ``apply_patch`` applies them with the ``jsonpatch`` package, which
refuses out-of-range indexes as the API server does.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

Operation = dict[str, Any]


class PatchFailed(Exception):
    """The patch cannot be applied to the pod it was made for."""


def patch_for(before: dict[str, Any], after: dict[str, Any]) -> list[Operation]:
    """The operations the webhook's patch library creates to turn ``before`` into ``after``."""
    return _diff(before, after, "")


def apply_patch(document: dict[str, Any], operations: list[Operation]) -> dict[str, Any]:
    """``document`` with ``operations`` applied in order, as the API server applies them."""
    try:
        return dict(jsonpatch.apply_patch(copy.deepcopy(document), operations))
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
        raise PatchFailed(str(error)) from None


def _path(parent: str, part: object) -> str:
    return f"{parent}/" + str(part).replace("~", "~0").replace("/", "~1")


def _kind(value: Any) -> str:
    """The JSON type Go decodes a value to (numbers are all float64)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _equal(first: Any, second: Any) -> bool:
    """reflect.DeepEqual on decoded JSON: same types, same values, recursively."""
    if _kind(first) != _kind(second):
        return False
    if isinstance(first, dict):
        return first.keys() == second.keys() and all(_equal(first[k], second[k]) for k in first)
    if isinstance(first, list):
        return len(first) == len(second) and all(map(_equal, first, second))
    return bool(first == second)


def _diff(before: dict[str, Any], after: dict[str, Any], path: str) -> list[Operation]:
    operations: list[Operation] = []
    for key, new in after.items():
        where = _path(path, key)
        if key not in before:
            operations.append({"op": "add", "path": where, "value": new})
        elif _kind(before[key]) != _kind(new):
            operations.append({"op": "replace", "path": where, "value": new})
        else:
            operations += _values(before[key], new, where)
    operations += [{"op": "remove", "path": _path(path, k)} for k in before if k not in after]
    return operations


def _values(old: Any, new: Any, path: str) -> list[Operation]:
    if isinstance(old, dict):
        return _diff(old, new, path)
    if isinstance(old, list):
        if len(old) != len(new):
            return _compare_arrays(old, new, path)
        return [
            op
            for index in range(len(new))
            for op in _values(old[index], new[index], _path(path, index))
        ]
    return [] if _equal(old, new) else [{"op": "replace", "path": path, "value": new}]


def _compare_arrays(old: list[Any], new: list[Any], path: str) -> list[Operation]:
    """Arrays of different lengths, compared as the library does: as sets, by old/new index."""
    removed = [
        {"op": "remove", "path": _path(path, index)}
        for index, item in enumerate(old)
        if not any(_equal(item, other) for other in new)
    ]
    added = [
        {"op": "add", "path": _path(path, index), "value": item}
        for index, item in enumerate(new)
        if not any(_equal(item, other) for other in old)
    ]
    return removed + added
