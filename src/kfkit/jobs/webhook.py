"""The training operator's validating webhook (training-operator v1.9.0), as submitted.

v1.9 registers only a *validating* webhook for PyTorchJob and TFJob; the
defaults are applied later, by the controller. So the webhook sees the
manifest exactly as the user wrote it: a Master without ``replicas`` is
refused (it is not yet defaulted to 1), and a lower-case ``master`` key is not
a PyTorch replica type (the controller would rename it, but only after
admission). :func:`validate` applies those rules to the submitted manifest and
returns errors and warnings the way the webhook does (field path, error type,
detail; warnings as plain strings that kubectl prints as ``Warning: ...``).

:func:`advisories` is kfkit's own: things neither the webhook nor the CRD
schema refuses, so a cluster admits them, but that will not do what the
author probably meant. They are reported as warnings, never as errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kfkit.jobs.model import (
    CLEAN_POD_POLICIES,
    KINDS,
    PYTORCH_JOB,
    RESTART_POLICIES,
    TF_JOB,
    JobKind,
)

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
    "with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', "
    " or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
# spec.runPolicy.managedBy: the only two controllers v1.9 accepts.
MANAGED_BY = ("kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue")
SUCCESS_POLICIES = ("", "AllWorkers")

# The Go field.ErrorType strings the API server prints before the detail.
REQUIRED = "Required value"
FORBIDDEN = "Forbidden"
INVALID = "Invalid value"
NOT_SUPPORTED = "Unsupported value"


def _go_quote(value: Any) -> str:
    """A value as Go's ``%q`` prints it in field errors (strings quoted, numbers bare)."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


@dataclass(frozen=True)
class FieldError:
    """One webhook error: the field, the kind of error, and why."""

    type: str
    path: str
    detail: str = ""
    bad_value: Any = None

    def __str__(self) -> str:
        """``path: Type: detail``, as the API server words an aggregated field error."""
        body = self.type
        if self.type in (INVALID, NOT_SUPPORTED):
            body += f": {_go_quote(self.bad_value)}"
        return f"{self.path}: {body}: {self.detail}" if self.detail else f"{self.path}: {body}"


@dataclass
class Admission:
    """What the webhook answers: errors (the job is refused) and warnings."""

    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.errors


def _validate_name(manifest: dict[str, Any]) -> list[FieldError]:
    name = (manifest.get("metadata") or {}).get("name") or ""
    reasons = []
    if len(name) > 63:
        reasons.append("must be no more than 63 characters")
    if not _DNS_1035.match(name):
        reasons.append(_DNS_1035_MESSAGE)
    if not reasons:
        return []
    return [FieldError(INVALID, "metadata.name", f"should match: {','.join(reasons)}", name)]


def _validate_run_policy(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> list[FieldError]:
    """``util.ValidateRunPolicy`` (and, on update, ``ValidateRunPolicyUpdate``)."""
    errors: list[FieldError] = []
    path = "spec.runPolicy.managedBy"
    managed_by = (spec.get("runPolicy") or {}).get("managedBy")
    if old_spec is not None:
        old_managed_by = (old_spec.get("runPolicy") or {}).get("managedBy")
        if managed_by != old_managed_by:
            errors.append(FieldError(INVALID, path, "field is immutable", managed_by))
    if managed_by is not None and managed_by not in MANAGED_BY:
        supported = ", ".join(_go_quote(value) for value in MANAGED_BY)
        errors.append(FieldError(NOT_SUPPORTED, path, f"supported values: {supported}", managed_by))
    return errors


def _validate_replica_specs(
    kind: JobKind, specs: Any, allowed_types: tuple[str, ...] | None
) -> list[FieldError]:
    """The checks both webhooks make on every replica spec (as submitted)."""
    base = f"spec.{kind.replica_specs_key}"
    if specs is None:
        return [FieldError(REQUIRED, base, "must be required")]
    errors: list[FieldError] = []
    for replica_type, spec in specs.items():
        role = f"{base}[{replica_type}]"
        containers_path = f"{role}.template.spec.containers"
        if allowed_types is not None and replica_type not in allowed_types:
            supported = ", ".join(_go_quote(t) for t in allowed_types)
            errors.append(
                FieldError(NOT_SUPPORTED, role, f"supported values: {supported}", replica_type)
            )
        containers = ((spec or {}).get("template") or {}).get("spec", {}) or {}
        containers = containers.get("containers") or []
        if not containers:
            errors.append(FieldError(REQUIRED, containers_path, "must be specified"))
        if spec is None:
            continue  # the Go webhook would dereference a nil spec here
        for index, container in enumerate(containers):
            if not container.get("image"):
                errors.append(
                    FieldError(REQUIRED, f"{containers_path}[{index}].image", "must be required")
                )
        if not any(container.get("name") == kind.container_name for container in containers):
            errors.append(
                FieldError(
                    REQUIRED,
                    containers_path,
                    f"must have at least one container with name {kind.container_name}",
                )
            )
        if kind.kind == PYTORCH_JOB:
            replicas = spec.get("replicas")
            if replica_type == "Master" and replicas != 1:
                errors.append(FieldError(FORBIDDEN, f"{role}.replicas", "must be 1"))
            elif replica_type != "Master" and replicas is not None and replicas < 1:
                errors.append(FieldError(FORBIDDEN, f"{role}.replicas", "must be at least 1"))
    return errors


def _validate_pytorch_spec(spec: dict[str, Any]) -> Admission:
    admission = Admission()
    specs = spec.get("pytorchReplicaSpecs")
    elastic = spec.get("elasticPolicy")
    if elastic is not None:
        if "Worker" not in (specs or {}):
            admission.errors.append(
                FieldError(
                    REQUIRED,
                    "spec.pytorchReplicaSpecs[Worker]",
                    "must be configured if elastic policy is used",
                )
            )
        if elastic.get("nProcPerNode") is not None:
            admission.warnings.append(
                "spec.elasticPolicy.nProcPerNode is deprecated, use spec.nprocPerNode instead"
            )
            if spec.get("nprocPerNode") is not None:
                admission.errors.append(
                    FieldError(
                        FORBIDDEN,
                        "spec.elasticPolicy.nProcPerNode",
                        "must not be used with spec.nprocPerNode",
                    )
                )
    admission.errors += _validate_replica_specs(KINDS[PYTORCH_JOB], specs, ("Master", "Worker"))
    return admission


def _validate_tf_spec(spec: dict[str, Any]) -> Admission:
    specs = spec.get("tfReplicaSpecs")
    errors = _validate_replica_specs(KINDS[TF_JOB], specs, None)
    # Only the exact keys count: a lower-case "chief" is renamed after admission.
    if sum(1 for replica_type in specs or {} if replica_type in ("Chief", "Master")) > 1:
        errors.append(
            FieldError(
                FORBIDDEN, "spec.tfReplicaSpecs", "must not have more than 1 Chief or Master role"
            )
        )
    return Admission(errors=errors)


def validate(manifest: dict[str, Any], old: dict[str, Any] | None = None) -> Admission:
    """The v1.9 webhook's answer for a submitted (not defaulted) job manifest.

    ``old`` is the stored job on an update (``managedBy`` is immutable); the
    manifest must already have passed the CRD schema check.
    """
    spec = manifest.get("spec") or {}
    old_spec = None if old is None else (old.get("spec") or {})
    errors = _validate_name(manifest) + _validate_run_policy(spec, old_spec)
    if manifest.get("kind") == PYTORCH_JOB:
        admission = _validate_pytorch_spec(spec)
    else:
        admission = _validate_tf_spec(spec)
    admission.errors = errors + admission.errors
    return admission


# --- kfkit's advisories: admitted by a cluster, probably not what was meant ------------


def _pytorch_advisories(spec: dict[str, Any]) -> list[str]:
    warnings: list[str] = []
    elastic = spec.get("elasticPolicy") or {}
    low, high = elastic.get("minReplicas"), elastic.get("maxReplicas")
    if low is not None and high is not None and low > high:
        warnings.append(
            f"spec.elasticPolicy.minReplicas: {low} is more than maxReplicas {high} "
            f"(torchrun refuses PET_NNODES={low}:{high})"
        )
    nproc = spec.get("nprocPerNode")
    if nproc is not None and nproc not in ("auto", "cpu", "gpu") and not re.match(r"^\d+$", nproc):
        warnings.append(
            f"spec.nprocPerNode: {nproc!r} is not auto, cpu, gpu or a number (torchrun reads "
            "it from PET_NPROC_PER_NODE; the operator counts it as 1 in WORLD_SIZE)"
        )
    if elastic.get("rdzvConf") == []:
        warnings.append(
            "spec.elasticPolicy.rdzvConf: an empty list stops the v1.9 operator from "
            "building the pods' environment (omit the field instead)"
        )
    return warnings


def _tf_advisories(spec: dict[str, Any], kind: JobKind) -> list[str]:
    warnings: list[str] = []
    specs = spec.get("tfReplicaSpecs") or {}
    if spec.get("successPolicy") not in (None, *SUCCESS_POLICIES):
        warnings.append(
            f'spec.successPolicy: {spec["successPolicy"]!r} is neither "" nor AllWorkers '
            "(the operator applies its default rules)"
        )
    canonical = {
        t: next((k for k in kind.replica_types if k.lower() == t.lower()), None) for t in specs
    }
    for replica_type, known in canonical.items():
        if known is None:
            warnings.append(
                f"spec.tfReplicaSpecs[{replica_type}]: not a TFJob replica type "
                f"({', '.join(kind.replica_types)}); the operator still runs its replicas and "
                f"lists them in TF_CONFIG as {replica_type.lower()!r}"
            )
    leaders = sorted(t for t, known in canonical.items() if known in ("Chief", "Master"))
    if len(leaders) > 1:
        warnings.append(
            f"spec.tfReplicaSpecs: {' and '.join(leaders)} are both set; the webhook counts only "
            "the exact keys Chief and Master, so the job runs with both a Chief and a Master"
        )
    for replica_type, replica_spec in specs.items():
        replicas = (replica_spec or {}).get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            warnings.append(
                f"spec.tfReplicaSpecs[{replica_type}].replicas: {replicas} is negative (the "
                "v1.9 operator fails while building TF_CONFIG)"
            )
    for replica_type in leaders:
        replicas = (specs[replica_type] or {}).get("replicas")
        if isinstance(replicas, int) and replicas > 1:
            warnings.append(
                f"spec.tfReplicaSpecs[{replica_type}].replicas: {replicas} (TensorFlow expects "
                "a single chief)"
            )
    return warnings


def advisories(manifest: dict[str, Any]) -> list[str]:
    """Warnings for rules neither the v1.9 webhook nor the CRD schema enforces."""
    kind = KINDS[manifest["kind"]]
    spec = manifest.get("spec") or {}
    warnings: list[str] = []
    replica_specs = spec.get(kind.replica_specs_key) or {}
    counts = [(s or {}).get("replicas") for s in replica_specs.values()]
    if sum(count for count in counts if isinstance(count, int) and count > 0) == 0:
        warnings.append(
            f"spec.{kind.replica_specs_key}: the job has no replicas (a cluster creates no pods)"
        )
    for replica_type, replica_spec in replica_specs.items():
        policy = (replica_spec or {}).get("restartPolicy")
        if policy and policy not in RESTART_POLICIES:
            warnings.append(
                f"spec.{kind.replica_specs_key}[{replica_type}].restartPolicy: {policy!r} is not "
                f"one of {', '.join(RESTART_POLICIES)} (a cluster's API server refuses its pods)"
            )
    policy = spec.get("runPolicy") or {}
    clean = policy.get("cleanPodPolicy")
    if clean is not None and clean not in CLEAN_POD_POLICIES:
        warnings.append(
            f"spec.runPolicy.cleanPodPolicy: {clean!r} is not one of "
            f"{', '.join(CLEAN_POD_POLICIES)} (the operator then deletes every pod, as for All)"
        )
    backoff = policy.get("backoffLimit")
    if isinstance(backoff, int) and backoff < 0:
        warnings.append(
            f"spec.runPolicy.backoffLimit: {backoff} is negative (the first restart fails the job)"
        )
    deadline = policy.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= 0:
        warnings.append(
            f"spec.runPolicy.activeDeadlineSeconds: {deadline} is not positive (the job is "
            "failed as soon as it starts)"
        )
    ttl = policy.get("ttlSecondsAfterFinished")
    if isinstance(ttl, int) and ttl < 0:
        warnings.append(f"spec.runPolicy.ttlSecondsAfterFinished: {ttl} is negative")
    if manifest["kind"] == PYTORCH_JOB:
        warnings += _pytorch_advisories(spec)
    else:
        warnings += _tf_advisories(spec, kind)
    return warnings
