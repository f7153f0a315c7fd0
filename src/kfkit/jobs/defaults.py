"""The training operator's defaulting (training-operator v1.9), applied after admission.

v1.9 has no mutating webhook: the controller applies these defaults to the job
it reconciles, after the validating webhook admitted the manifest as written.
Applying the same ones here, in the same order, means the local backend runs
exactly the job a cluster would run, and ``kfkit validate`` reports on that job.
"""

from __future__ import annotations

import copy
from typing import Any

from kfkit.jobs.model import KINDS, PYTORCH_JOB, JobKind


def canonical_replica_type(kind: JobKind, replica_type: str) -> str:
    """``master`` -> ``Master``, ``ps`` -> ``PS``; unknown types are kept as they are."""
    for known in kind.replica_types:
        if known.lower() == replica_type.lower():
            return known
    return replica_type


def _default_port(container: dict[str, Any], kind: JobKind) -> None:
    ports = container.setdefault("ports", [])
    if not any(port.get("name") == kind.port_name for port in ports):
        ports.append({"name": kind.port_name, "containerPort": kind.default_port})


def _default_replica_spec(spec: dict[str, Any], kind: JobKind) -> None:
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = kind.default_restart_policy
    for container in spec.get("template", {}).get("spec", {}).get("containers") or []:
        if container.get("name") == kind.container_name:
            _default_port(container, kind)


def _default_elastic_policy(spec: dict[str, Any]) -> None:
    """minReplicas/maxReplicas default to each other, or to the worker count."""
    policy = spec.get("elasticPolicy")
    if policy is None:
        return
    low, high = policy.get("minReplicas"), policy.get("maxReplicas")
    if low is not None and high is not None:
        return
    if high is not None:
        policy["minReplicas"] = high
    elif low is not None:
        policy["maxReplicas"] = low
    else:
        workers = spec["pytorchReplicaSpecs"].get("Worker", {}).get("replicas", 1)
        policy["minReplicas"] = policy["maxReplicas"] = workers


def apply_defaults(manifest: dict[str, Any]) -> dict[str, Any]:
    """Return a defaulted deep copy of an admitted job manifest."""
    job = copy.deepcopy(manifest)
    kind = KINDS[job["kind"]]
    spec = job["spec"]
    if spec.get("runPolicy") is None:
        spec["runPolicy"] = {}
    if spec["runPolicy"].get("cleanPodPolicy") is None:
        spec["runPolicy"]["cleanPodPolicy"] = "None"
    replica_specs = spec.get(kind.replica_specs_key) or {}
    spec[kind.replica_specs_key] = {
        # YAML may give a key as a number; the API server only ever sees JSON strings.
        canonical_replica_type(kind, str(replica_type)): replica_spec
        for replica_type, replica_spec in replica_specs.items()
    }
    for replica_spec in spec[kind.replica_specs_key].values():
        if isinstance(replica_spec, dict):
            _default_replica_spec(replica_spec, kind)
    if kind.kind == PYTORCH_JOB:
        _default_elastic_policy(spec)
        # The deprecated elasticPolicy.nProcPerNode takes the place of the default.
        deprecated = (spec.get("elasticPolicy") or {}).get("nProcPerNode")
        if deprecated is None and spec.get("nprocPerNode") is None:
            spec["nprocPerNode"] = "auto"
    else:
        if spec.get("successPolicy") is None:
            spec["successPolicy"] = ""
    job.setdefault("metadata", {}).setdefault("namespace", "default")
    return job
