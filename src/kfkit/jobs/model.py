"""The job model: a defaulted, validated PyTorchJob or TFJob manifest.

A :class:`Job` wraps the manifest dict itself (not a copy of its fields), so
what the backends run and what ``kubectl apply`` would send are one and the
same object. :class:`JobKind` holds what differs between the two kinds: the
key of the replica specs, the container the operator configures, its port
and default restart policy, and the replica types the webhook allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

API_VERSION = "kubeflow.org/v1"
PYTORCH_JOB = "PyTorchJob"
TF_JOB = "TFJob"


@dataclass(frozen=True)
class JobKind:
    """What the training operator does differently for each job kind."""

    kind: str
    replica_specs_key: str
    container_name: str
    port_name: str
    default_port: int
    default_restart_policy: str
    replica_types: tuple[str, ...]


KINDS: dict[str, JobKind] = {
    PYTORCH_JOB: JobKind(
        kind=PYTORCH_JOB,
        replica_specs_key="pytorchReplicaSpecs",
        container_name="pytorch",
        port_name="pytorchjob-port",
        default_port=23456,
        default_restart_policy="OnFailure",
        replica_types=("Master", "Worker"),
    ),
    TF_JOB: JobKind(
        kind=TF_JOB,
        replica_specs_key="tfReplicaSpecs",
        container_name="tensorflow",
        port_name="tfjob-port",
        default_port=2222,
        default_restart_policy="Never",
        replica_types=("PS", "Worker", "Chief", "Master", "Evaluator"),
    ),
}

RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
CLEAN_POD_POLICIES = ("All", "Running", "None")


@dataclass(frozen=True)
class Replica:
    """One replica of a job: what the operator would run as one pod."""

    type: str  # canonical replica type, e.g. "Worker"
    index: int

    @property
    def key(self) -> str:
        """The replica's short name, e.g. ``worker-1``."""
        return f"{self.type.lower()}-{self.index}"

    def pod_name(self, job_name: str) -> str:
        """The pod name the operator gives it: ``<job>-<type>-<index>``."""
        return f"{job_name}-{self.key}"


@dataclass
class ReplicaSpec:
    """One entry of ``spec.<kind>ReplicaSpecs`` after defaulting."""

    type: str
    raw: dict[str, Any]

    @property
    def replicas(self) -> int:
        return int(self.raw["replicas"])

    @property
    def restart_policy(self) -> str:
        return str(self.raw["restartPolicy"])

    @property
    def template(self) -> dict[str, Any]:
        return dict(self.raw["template"])

    @property
    def containers(self) -> list[dict[str, Any]]:
        return list(self.raw["template"]["spec"]["containers"])

    def container(self, name: str) -> dict[str, Any] | None:
        for container in self.containers:
            if container.get("name") == name:
                return container
        return None


@dataclass
class Job:
    """A defaulted and validated training job, and the file it came from.

    ``warnings`` are what admission said without refusing the job: the
    webhook's own warnings and kfkit's advisories. The CLI prints them as
    kubectl prints API warnings (``Warning: ...``); the client and the BDD
    steps read the same list.

    ``submitted`` is the manifest as the user wrote it: what a cluster is
    sent, since there the operator's controller applies the defaults, not
    admission. Empty for jobs built in code, which then send ``manifest``.
    """

    manifest: dict[str, Any]
    source: str
    warnings: list[str] = field(default_factory=list)
    submitted: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def info(self) -> JobKind:
        return KINDS[self.kind]

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.manifest["metadata"].get("namespace") or "default")

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.manifest["spec"])

    @property
    def run_policy(self) -> dict[str, Any]:
        return dict(self.manifest["spec"].get("runPolicy") or {})

    @property
    def replica_specs(self) -> dict[str, ReplicaSpec]:
        specs = self.manifest["spec"][self.info.replica_specs_key]
        # The operator's own order: for PyTorch the master first; for TF ps before workers.
        order = {replica_type: i for i, replica_type in enumerate(self.info.replica_types)}
        return {
            replica_type: ReplicaSpec(replica_type, specs[replica_type])
            for replica_type in sorted(specs, key=lambda t: order.get(t, len(order)))
        }

    @property
    def replicas(self) -> list[Replica]:
        """Every replica of the job, in start order."""
        return [
            Replica(replica_type, index)
            for replica_type, spec in self.replica_specs.items()
            for index in range(spec.replicas)
        ]

    @property
    def total_replicas(self) -> int:
        return sum(spec.replicas for spec in self.replica_specs.values())

    def describe(self) -> str:
        """``PyTorchJob default/mnist`` — how messages name the job."""
        return f"{self.kind} {self.namespace}/{self.name}"
