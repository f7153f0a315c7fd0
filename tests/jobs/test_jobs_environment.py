"""The operator's environment contract, for cluster addresses and for the local backend."""

from __future__ import annotations

import json

from kfkit.jobs.environment import Network, operator_env
from kfkit.jobs.load import load_jobs
from kfkit.jobs.model import Replica


def env_of(job, replica_type: str, index: int, container: str = "", local_ports=None) -> dict:
    network = Network(job, local=local_ports is not None, ports=local_ports or {})
    name = container or job.info.container_name
    return dict(operator_env(job, Replica(replica_type, index), network, name))


def test_pytorch_master_and_workers(build, write_manifest) -> None:
    job = load_jobs([write_manifest(build.pytorch_job("mnist", workers=2))])[0]
    master = env_of(job, "Master", 0)
    assert list(master.items()) == list(
        {
            "PYTHONUNBUFFERED": "1",
            "MASTER_PORT": "23456",
            "PET_MASTER_PORT": "23456",
            "MASTER_ADDR": "mnist-master-0",
            "PET_MASTER_ADDR": "mnist-master-0",
            "WORLD_SIZE": "3",
            "RANK": "0",
            "PET_NODE_RANK": "0",
            "PET_NPROC_PER_NODE": "auto",
            "PET_NNODES": "3",
        }.items()
    )
    worker1 = env_of(job, "Worker", 1)
    assert worker1["RANK"] == "2" and worker1["PET_NODE_RANK"] == "2"
    assert worker1["MASTER_ADDR"] == "mnist-master-0"
    # Every container of a PyTorch pod gets the variables, sidecars included.
    assert env_of(job, "Worker", 0, container="sidecar")["RANK"] == "1"


def test_world_size_counts_processes_per_node(build, write_manifest) -> None:
    job = load_jobs([write_manifest(build.pytorch_job(workers=1, nprocPerNode="4"))])[0]
    env = env_of(job, "Worker", 0)
    assert env["WORLD_SIZE"] == "8" and env["PET_NPROC_PER_NODE"] == "4"
    gpu = load_jobs([write_manifest(build.pytorch_job(workers=1, nprocPerNode="gpu"))])[0]
    assert env_of(gpu, "Master", 0)["WORLD_SIZE"] == "2"


def test_workers_only_job_has_no_master_variables(build, write_manifest) -> None:
    doc = build.pytorch_job(workers=2)
    del doc["spec"]["pytorchReplicaSpecs"]["Master"]
    job = load_jobs([write_manifest(doc)])[0]
    assert env_of(job, "Worker", 0) == {
        "PYTHONUNBUFFERED": "1",
        "PET_NPROC_PER_NODE": "auto",
        "PET_NNODES": "2",
    }


def test_elastic_variables(build, write_manifest) -> None:
    policy = {
        "minReplicas": 1,
        "maxReplicas": 3,
        "rdzvBackend": "c10d",
        "rdzvId": "run-1",
        "maxRestarts": 5,
        "rdzvConf": [{"key": "timeout", "value": "900"}, {"key": "a", "value": "b"}],
    }
    doc = build.pytorch_job(workers=2, elasticPolicy=policy)
    del doc["spec"]["pytorchReplicaSpecs"]["Master"]
    job = load_jobs([write_manifest(doc)])[0]
    env = env_of(job, "Worker", 1)
    assert env["PET_RDZV_ENDPOINT"] == "demo-worker-0:23456"
    assert env["PET_RDZV_BACKEND"] == "c10d"
    assert env["PET_NNODES"] == "1:3"
    assert env["PET_MAX_RESTARTS"] == "5"
    assert env["PET_RDZV_ID"] == "run-1"
    assert env["PET_RDZV_CONF"] == "timeout=900,a=b"
    assert "RANK" not in env and "PET_STANDALONE" not in env
    local = env_of(job, "Worker", 1, local_ports={"worker-0": 40001})
    assert local["PET_RDZV_ENDPOINT"] == "127.0.0.1:40001"


def test_tf_config(build, write_manifest) -> None:
    job = load_jobs([write_manifest(build.tf_job("dist", PS=1, Worker=2, Chief=1))])[0]
    config = json.loads(env_of(job, "Worker", 1)["TF_CONFIG"])
    assert config == {
        "cluster": {
            "ps": ["dist-ps-0.default.svc:2222"],
            "worker": ["dist-worker-0.default.svc:2222", "dist-worker-1.default.svc:2222"],
            "chief": ["dist-chief-0.default.svc:2222"],
        },
        "task": {"type": "worker", "index": 1},
        "environment": "cloud",
    }
    # Only the tensorflow container gets it.
    assert env_of(job, "Worker", 0, container="sidecar") == {}


def test_tf_config_local_ports_and_single_replica(build, write_manifest) -> None:
    job = load_jobs([write_manifest(build.tf_job("dist", Worker=2))])[0]
    ports = {"worker-0": 41000, "worker-1": 41001}
    config = json.loads(env_of(job, "Worker", 0, local_ports=ports)["TF_CONFIG"])
    assert config["cluster"] == {"worker": ["127.0.0.1:41000", "127.0.0.1:41001"]}
    single = load_jobs([write_manifest(build.tf_job("one", Worker=1))])[0]
    assert env_of(single, "Worker", 0) == {}
