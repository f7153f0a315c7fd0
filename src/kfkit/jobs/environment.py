"""The environment the training operator injects into every replica (v1.9 contract).

On a cluster each replica is a pod reachable at ``<job>-<type>-<index>``; on
this machine every replica is a process on 127.0.0.1 with a port of its own.
A :class:`Network` says where each replica listens, so one function builds the
variables for both, and tests can compare the cluster values with the
operator's exactly.
"""

from __future__ import annotations

import json
import re
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
    # The operator's CUSTOM_CLUSTER_DOMAIN (e.g. "cluster.local"), appended to service names.
    cluster_domain: str = ""

    def host(self, replica: Replica, fqdn: bool = False) -> str:
        if self.local:
            return "127.0.0.1"
        name = replica.pod_name(self.job.name)
        if not fqdn:
            return name
        service = f"{name}.{self.job.namespace}.svc"
        return f"{service}.{self.cluster_domain}" if self.cluster_domain else service

    def port(self, replica: Replica) -> int:
        if self.local and replica.key in self.ports:
            return self.ports[replica.key]
        return container_port(self.job, replica.type)


_GO_INT = re.compile(r"^[+-]?[0-9]+$")


def _nproc_per_node(job: Job) -> int:
    """``nprocPerNode`` as the operator counts it in WORLD_SIZE: a number, else 1."""
    value = job.spec.get("nprocPerNode")
    return int(value) if isinstance(value, str) and _GO_INT.match(value) else 1


def _elastic_env(job: Job, network: Network) -> list[tuple[str, str]]:
    """The rendezvous variables of an elastic job (``ElasticEnvVarGenerator``)."""
    policy: dict[str, Any] = job.spec.get("elasticPolicy") or {}
    worker0 = Replica("Worker", 0)
    host = policy.get("rdzvHost")
    port = policy.get("rdzvPort")
    if host is None:
        host = network.host(worker0)
        if network.local:  # worker-0's own port, here perhaps remapped
            port = None
    if port is None:
        port = network.port(worker0)
    backend = policy.get("rdzvBackend")
    env = [
        ("PET_RDZV_ENDPOINT", f"{host}:{port}"),
        ("PET_RDZV_BACKEND", "c10d" if backend is None else str(backend)),
        ("PET_NNODES", f"{policy['minReplicas']}:{policy['maxReplicas']}"),
    ]
    if policy.get("maxRestarts") is not None:
        env.append(("PET_MAX_RESTARTS", str(policy["maxRestarts"])))
    if policy.get("nProcPerNode") is not None:
        env.append(("PET_NPROC_PER_NODE", str(policy["nProcPerNode"])))
    if policy.get("rdzvId") is not None:
        env.append(("PET_RDZV_ID", str(policy["rdzvId"])))
    if policy.get("rdzvConf"):
        pairs = [f"{item.get('key', '')}={item.get('value', '')}" for item in policy["rdzvConf"]]
        conf = ",".join(pairs)
        env.append(("PET_RDZV_CONF", conf))
    if policy.get("standalone"):
        env.append(("PET_STANDALONE", ""))
    return env


def pytorch_env(job: Job, replica: Replica, network: Network) -> list[tuple[str, str]]:
    """What ``setPodEnv`` appends to every container, in the operator's order."""
    env = [("PYTHONUNBUFFERED", "1")]
    total = job.total_replicas
    if "Master" in job.replica_specs:
        master = Replica("Master", 0)
        address, port = network.host(master), str(network.port(master))
        rank = replica.index + 1 if replica.type == "Worker" else replica.index
        env += [
            ("MASTER_PORT", port),
            ("PET_MASTER_PORT", port),
            ("MASTER_ADDR", address),
            ("PET_MASTER_ADDR", address),
            ("WORLD_SIZE", str(total * _nproc_per_node(job))),
            ("RANK", str(rank)),
            ("PET_NODE_RANK", str(rank)),
        ]
    if job.spec.get("nprocPerNode") is not None:
        env.append(("PET_NPROC_PER_NODE", str(job.spec["nprocPerNode"])))
    if job.spec.get("elasticPolicy") is not None:
        env += _elastic_env(job, network)
    else:
        env.append(("PET_NNODES", str(total)))
    return env


# The replica types the operator counts when it decides whether a TFJob is distributed.
_TF_COUNTED_TYPES = ("Chief", "Evaluator", "Master", "PS", "Worker")


def tf_is_distributed(job: Job) -> bool:
    """``isDistributed``: anything but exactly one replica of the known types."""
    specs = job.replica_specs
    return sum(specs[t].replicas for t in _TF_COUNTED_TYPES if t in specs) != 1


def tf_cluster(job: Job, network: Network) -> dict[str, list[str]]:
    """``genClusterSpec``: every replica type, even one with no replicas (``[]``)."""
    cluster: dict[str, list[str]] = {}
    for replica_type, spec in job.replica_specs.items():
        members = [Replica(replica_type, index) for index in range(spec.replicas)]
        cluster[replica_type.lower()] = [
            f"{network.host(member, fqdn=True)}:{network.port(member)}" for member in members
        ]
    return cluster


def tf_config(job: Job, replica: Replica, network: Network) -> dict[str, Any]:
    """The TF_CONFIG object, its keys in the order Go marshals the operator's structs.

    With ``enableDynamicWorker`` it is the sparse form: a worker sees only
    itself (``{"<index>": address}``) and the parameter servers (``null`` when
    the job has none), a parameter server only itself, and there is no
    ``environment`` key.
    """
    cluster = tf_cluster(job, network)
    task_type = replica.type.lower()
    task = {"type": task_type, "index": replica.index}
    if not job.spec.get("enableDynamicWorker"):
        return {"cluster": dict(sorted(cluster.items())), "task": task, "environment": "cloud"}
    workers: dict[str, str] = {}
    ps: list[str] | None = []
    if task_type == "ps":
        ps = [cluster["ps"][replica.index]]
    elif task_type == "worker":
        ps = cluster.get("ps")
        workers[str(replica.index)] = cluster["worker"][replica.index]
    return {"cluster": {"worker": workers, "ps": ps}, "task": task}


def go_json(value: Any) -> str:
    """JSON as Go's ``encoding/json`` writes it: compact, and HTML-safe escapes."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for character, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(character, escape)
    return text


def tensorflow_env(job: Job, replica: Replica, network: Network) -> list[tuple[str, str]]:
    """TF_CONFIG, only for a distributed job, byte for byte as the operator writes it."""
    if not tf_is_distributed(job):
        return []
    return [("TF_CONFIG", go_json(tf_config(job, replica, network)))]


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
