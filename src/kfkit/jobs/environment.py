"""The environment the training operator injects into every replica (v1.9 contract).

On a cluster each replica is a pod reachable at ``<job>-<type>-<index>``; on
this machine every replica is a process on 127.0.0.1 with a port of its own.
A :class:`Network` says where each replica listens, so one function builds the
variables for both, and tests can compare the cluster values with the
operator's exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kfkit.jobs.model import PYTORCH_JOB, TF_JOB, Job, Replica


def container_port(job: Job, replica_type: str) -> int:
    """The port named ``pytorchjob-port``/``tfjob-port`` of the job's main container."""
    spec = job.replica_specs[replica_type]
    container = spec.container(job.info.container_name) or {}
    for port in container.get("ports") or []:
        if port.get("name") == job.info.port_name:
            return int(port["containerPort"])
    return job.info.default_port


@dataclass
class Network:
    """Where replicas listen: cluster DNS names, or loopback with chosen ports."""

    job: Job
    local: bool = False
    # Local only: the port each replica (by key, e.g. "worker-1") listens on.
    ports: dict[str, int] = field(default_factory=dict)

    def host(self, replica: Replica, fqdn: bool = False) -> str:
        if self.local:
            return "127.0.0.1"
        name = replica.pod_name(self.job.name)
        return f"{name}.{self.job.namespace}.svc" if fqdn else name

    def port(self, replica: Replica) -> int:
        if self.local and replica.key in self.ports:
            return self.ports[replica.key]
        return container_port(self.job, replica.type)


def _nproc_per_node(job: Job) -> int:
    """``nprocPerNode`` as a number; auto/cpu/gpu count as 1, as the operator does."""
    value = str(job.spec.get("nprocPerNode") or "")
    return int(value) if value.isdigit() else 1


def _elastic_env(job: Job, network: Network) -> list[tuple[str, str]]:
    policy: dict[str, Any] = job.spec.get("elasticPolicy") or {}
    worker0 = Replica("Worker", 0)
    host = policy.get("rdzvHost") or network.host(worker0)
    port = policy.get("rdzvPort") or network.port(worker0)
    env = [
        ("PET_RDZV_ENDPOINT", f"{host}:{port}"),
        ("PET_RDZV_BACKEND", str(policy.get("rdzvBackend") or "c10d")),
        ("PET_NNODES", f"{policy['minReplicas']}:{policy['maxReplicas']}"),
    ]
    if policy.get("maxRestarts") is not None:
        env.append(("PET_MAX_RESTARTS", str(policy["maxRestarts"])))
    if policy.get("nProcPerNode") is not None:
        env.append(("PET_NPROC_PER_NODE", str(policy["nProcPerNode"])))
    if policy.get("rdzvId") is not None:
        env.append(("PET_RDZV_ID", str(policy["rdzvId"])))
    if policy.get("rdzvConf"):
        conf = ",".join(f"{item['key']}={item['value']}" for item in policy["rdzvConf"])
        env.append(("PET_RDZV_CONF", conf))
    if policy.get("standalone"):
        env.append(("PET_STANDALONE", ""))
    return env


def pytorch_env(job: Job, replica: Replica, network: Network) -> list[tuple[str, str]]:
    """PYTHONUNBUFFERED, MASTER_*, WORLD_SIZE, RANK and the PET_* torchrun variables."""
    env = [("PYTHONUNBUFFERED", "1")]
    total = job.total_replicas
    if "Master" in job.replica_specs:
        master = Replica("Master", 0)
        address, port = network.host(master), str(network.port(master))
        rank = replica.index + 1 if replica.type == "Worker" else replica.index
        env += [
            ("MASTER_PORT", port),
            ("MASTER_ADDR", address),
            ("PET_MASTER_PORT", port),
            ("PET_MASTER_ADDR", address),
            ("WORLD_SIZE", str(total * _nproc_per_node(job))),
            ("RANK", str(rank)),
            ("PET_NPROC_PER_NODE", str(job.spec.get("nprocPerNode"))),
            ("PET_NODE_RANK", str(rank)),
        ]
    if job.spec.get("elasticPolicy") is not None:
        env += _elastic_env(job, network)
    else:
        env.append(("PET_NNODES", str(total)))
    return env


def tf_config(job: Job, replica: Replica, network: Network) -> dict[str, Any]:
    """The TF_CONFIG dict: every replica type's addresses, this replica's task."""
    cluster: dict[str, list[str]] = {}
    for member in job.replicas:
        address = f"{network.host(member, fqdn=True)}:{network.port(member)}"
        cluster.setdefault(member.type.lower(), []).append(address)
    return {
        "cluster": cluster,
        "task": {"type": replica.type.lower(), "index": replica.index},
        "environment": "cloud",
    }


def tensorflow_env(job: Job, replica: Replica, network: Network) -> list[tuple[str, str]]:
    """TF_CONFIG, only for a distributed job (more than one replica in all)."""
    if job.total_replicas <= 1:
        return []
    return [("TF_CONFIG", json.dumps(tf_config(job, replica, network)))]


def operator_env(
    job: Job, replica: Replica, network: Network, container_name: str
) -> list[tuple[str, str]]:
    """The variables the operator appends to one container of one replica.

    PyTorchJob sets them in every container of the pod; TFJob only in the
    ``tensorflow`` container.
    """
    if job.kind == PYTORCH_JOB:
        return pytorch_env(job, replica, network)
    if job.kind == TF_JOB and container_name == job.info.container_name:
        return tensorflow_env(job, replica, network)
    return []
