"""PodDefault webhook and notebook controller (kubeflow v1.10.0) conformance, case by case.

Each case in ``conformance/poddefaults/*.yaml`` is a pod (or a Notebook), the
PodDefaults of its namespace and what a cluster does: the pod it creates, or
why it refuses it. ``mirrors`` names the upstream test a case is written from,
``covers`` the upstream code path a case checks where upstream has no test.
Every case goes the way a user's files go: the PodDefaults are written to a
directory and read back with ``load_poddefaults``, a Notebook becomes its pod
with ``pod_of``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfkit.poddefaults import Refused, apply_poddefaults, explain, load_poddefaults, pod_of

CASES_DIR = Path(__file__).parent / "conformance" / "poddefaults"
NAMESPACE = "team"
# The subtests of the upstream files the cases mirror, counted by reading them.
UPSTREAM_SUBTESTS = {"main_test.go": 10, "notebook_controller_bdd_test.go": 1}


def _cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            cases.append({**case, "file": path.name})
    return cases


CASES = _cases()


def _poddefault(entry: dict[str, Any]) -> dict[str, Any]:
    metadata = {"name": entry["name"], "namespace": entry.get("namespace", NAMESPACE)}
    if "resourceVersion" in entry:
        metadata["resourceVersion"] = entry["resourceVersion"]
    return {
        "apiVersion": "kubeflow.org/v1alpha1",
        "kind": "PodDefault",
        "metadata": metadata,
        "spec": {"selector": {}, **entry.get("spec", {})},
    }


def _admitted_input(case: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if "notebook" in case:
        notebook = copy.deepcopy(case["notebook"])
        notebook.setdefault("apiVersion", "kubeflow.org/v1")
        notebook["kind"] = "Notebook"
        notebook["metadata"].setdefault("namespace", NAMESPACE)
        pod, namespace = pod_of(notebook, "notebook.yaml")
        return pod, namespace or NAMESPACE
    pod = copy.deepcopy(case["pod"])
    return pod, (pod.get("metadata") or {}).get("namespace") or NAMESPACE


def _at(document: Any, path: list[Any]) -> Any:
    for part in path:
        document = document[part]
    return document


@pytest.mark.parametrize("case", CASES, ids=[f"{c['file']}:{c['name']}" for c in CASES])
def test_case(case: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "poddefaults.yaml").write_text(
        yaml.safe_dump_all([_poddefault(pd) for pd in case["poddefaults"]])
    )
    pod, namespace = _admitted_input(case)
    before = copy.deepcopy(pod)
    poddefaults = load_poddefaults(tmp_path, case.get("load_namespace", namespace))
    expect = case["expect"]
    lines = explain(pod, poddefaults, "pod.yaml")
    for wanted in expect.get("explain", []):
        assert any(wanted in line for line in lines), f"{wanted!r} not in {lines}"
    if "refused" in expect:
        with pytest.raises(Refused) as raised:
            apply_poddefaults(pod, poddefaults, "pod.yaml")
        message = str(raised.value)
        assert message.startswith("pod.yaml: refused: ")
        for wanted in expect["refused"]:
            assert wanted in message
        for secret in expect.get("not_in_error", []):
            assert secret not in message
        assert pod == before
        return
    result = apply_poddefaults(pod, poddefaults, "pod.yaml")
    assert pod == before, "the input pod must not change"
    if expect.get("unchanged"):
        assert result == before
    if "pod" in expect:
        assert result == expect["pod"]
    for check in expect.get("check", []):
        assert _at(result, check["path"]) == check["equals"], check["path"]


def test_every_case_names_what_upstream_it_follows() -> None:
    for case in CASES:
        assert bool(case.get("mirrors")) != bool(case.get("covers")), case["name"]
        assert {"refused", "pod", "check", "unchanged"} & set(case["expect"]), case["name"]


def test_every_upstream_subtest_is_mirrored() -> None:
    mirrored: dict[str, set[str]] = {}
    for case in CASES:
        if case.get("mirrors"):
            test_file, subtest = case["mirrors"].split(" ", 1)
            mirrored.setdefault(test_file, set()).add(subtest)
    assert {name: len(subtests) for name, subtests in mirrored.items()} == UPSTREAM_SUBTESTS


def test_the_conformance_doc_counts_the_cases() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "conformance.md").read_text(encoding="utf-8")
    for path in sorted(CASES_DIR.glob("*.yaml")):
        count = sum(1 for case in CASES if case["file"] == path.name)
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{path.name}` |"))
        assert row.endswith(f"| {count} of {count} pass |"), row
