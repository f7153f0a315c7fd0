"""The training operator's validating webhook rules (training-operator v1.9).

The upstream CRD schemas accept jobs the operator then rejects at admission:
a Master with two replicas, a replica type the framework does not know, no
container named ``pytorch``/``tensorflow``. These are those rules, applied to a
defaulted job so the local backend refuses exactly what a cluster refuses.
"""

from __future__ import annotations

import re
from typing import Any

from kfkit.jobs.model import KINDS, PYTORCH_JOB, RESTART_POLICIES, TF_JOB

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_CLEAN_POD_POLICIES = ("All", "Running", "None")
_SUCCESS_POLICIES = ("", "AllWorkers")


def _check_name(manifest: dict[str, Any]) -> list[str]:
    name = manifest.get("metadata", {}).get("name")
    if not name:
        return ["metadata.name: required"]
    if len(name) > 63 or not _DNS_1035.match(name):
        return [
            f"metadata.name: {name!r} must be a DNS-1035 label (lowercase letters, digits "
            "and '-', starting with a letter, at most 63 characters)"
        ]
    return []


def _check_replica_specs(manifest: dict[str, Any]) -> list[str]:
    kind = KINDS[manifest["kind"]]
    key = kind.replica_specs_key
    specs = manifest["spec"].get(key) or {}
    if not specs:
        return [f"spec.{key}: at least one replica type is required"]
    problems: list[str] = []
    for replica_type, spec in specs.items():
        path = f"spec.{key}.{replica_type}"
        if replica_type not in kind.replica_types:
            allowed = ", ".join(kind.replica_types)
            problems.append(f"{path}: replica type {replica_type!r} is not supported ({allowed})")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{path}: must be an object")
            continue
        if spec["replicas"] < 0:
            problems.append(f"{path}.replicas: must not be negative, got {spec['replicas']}")
        if spec["restartPolicy"] not in RESTART_POLICIES:
            problems.append(
                f"{path}.restartPolicy: must be one of {', '.join(RESTART_POLICIES)}, "
                f"got {spec['restartPolicy']!r}"
            )
        containers = (spec.get("template") or {}).get("spec", {}).get("containers") or []
        if not containers:
            problems.append(f"{path}.template.spec.containers: at least one container is required")
            continue
        for index, container in enumerate(containers):
            if not container.get("image"):
                problems.append(f"{path}.template.spec.containers[{index}].image: required")
        if not any(c.get("name") == kind.container_name for c in containers):
            problems.append(
                f"{path}.template.spec.containers: one container must be named "
                f"{kind.container_name!r}"
            )
    return problems


def _check_pytorch(manifest: dict[str, Any]) -> list[str]:
    spec = manifest["spec"]
    problems: list[str] = []
    master = spec["pytorchReplicaSpecs"].get("Master")
    if isinstance(master, dict) and master.get("replicas") != 1:
        problems.append(
            f"spec.pytorchReplicaSpecs.Master.replicas: must be 1, got {master.get('replicas')}"
        )
    elastic = spec.get("elasticPolicy")
    if elastic is not None:
        if elastic.get("nProcPerNode") is not None and manifest["spec"].get("nprocPerNode"):
            problems.append(
                "spec.elasticPolicy.nProcPerNode: deprecated; set only spec.nprocPerNode"
            )
        low, high = elastic.get("minReplicas"), elastic.get("maxReplicas")
        if low is not None and high is not None and low > high:
            problems.append(
                f"spec.elasticPolicy.minReplicas: must not exceed maxReplicas ({low} > {high})"
            )
    nproc = spec.get("nprocPerNode")
    if nproc not in ("auto", "cpu", "gpu") and not str(nproc).isdigit():
        problems.append(f"spec.nprocPerNode: must be auto, cpu, gpu or an integer, got {nproc!r}")
    return problems


def _check_tensorflow(manifest: dict[str, Any]) -> list[str]:
    spec = manifest["spec"]
    problems: list[str] = []
    leaders = [t for t in ("Chief", "Master") if t in spec["tfReplicaSpecs"]]
    if len(leaders) > 1:
        problems.append("spec.tfReplicaSpecs: at most one of Chief and Master may be set")
    for leader in leaders:
        replicas = spec["tfReplicaSpecs"][leader].get("replicas")
        if isinstance(replicas, int) and replicas > 1:
            problems.append(
                f"spec.tfReplicaSpecs.{leader}.replicas: must be at most 1, got {replicas}"
            )
    if spec.get("successPolicy", "") not in _SUCCESS_POLICIES:
        problems.append(
            f"spec.successPolicy: must be empty or AllWorkers, got {spec['successPolicy']!r}"
        )
    return problems


def _check_run_policy(manifest: dict[str, Any]) -> list[str]:
    policy = manifest["spec"].get("runPolicy") or {}
    problems: list[str] = []
    if policy.get("cleanPodPolicy") not in _CLEAN_POD_POLICIES:
        problems.append(
            f"spec.runPolicy.cleanPodPolicy: must be one of {', '.join(_CLEAN_POD_POLICIES)}, "
            f"got {policy.get('cleanPodPolicy')!r}"
        )
    for field in ("backoffLimit", "ttlSecondsAfterFinished"):
        if isinstance(policy.get(field), int) and policy[field] < 0:
            problems.append(f"spec.runPolicy.{field}: must not be negative, got {policy[field]}")
    deadline = policy.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= 0:
        problems.append(f"spec.runPolicy.activeDeadlineSeconds: must be positive, got {deadline}")
    return problems


def admission_problems(manifest: dict[str, Any]) -> list[str]:
    """Every webhook rule the defaulted ``manifest`` breaks, one line each."""
    problems = _check_name(manifest) + _check_replica_specs(manifest) + _check_run_policy(manifest)
    if manifest["kind"] == PYTORCH_JOB:
        problems += _check_pytorch(manifest)
    elif manifest["kind"] == TF_JOB:
        problems += _check_tensorflow(manifest)
    return problems
