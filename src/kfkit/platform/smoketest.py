"""``helm test`` of the chart: a 2-replica PyTorchJob that all-reduces over gloo.

The test pod runs ``python -m kfkit.platform.smoketest``: it submits a PyTorchJob (one
Master, one Worker) whose replicas run ``python -m kfkit.training.smoke
--expect-world-size 2``, waits until the operator marks it Succeeded or Failed (or the
timeout passes), deletes it, and exits 0 only on Succeeded. That proves the operator
reconciles jobs, gives the replicas a consistent rendezvous environment, and that the pods
reach each other.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "pytorchjobs"
SMOKE_LABEL = "kfkit.io/smoke-test"


def restricted_security_context() -> dict[str, Any]:
    """The container security context of the Pod Security Standards restricted profile."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def smoke_job(name: str, namespace: str, image: str, resources: dict[str, Any]) -> dict[str, Any]:
    """The PyTorchJob the test submits (valid against the upstream CRD, restricted pods)."""

    def replica(replicas: int) -> dict[str, Any]:
        return {
            "replicas": replicas,
            "restartPolicy": "Never",
            "template": {
                "metadata": {"labels": {SMOKE_LABEL: "true"}},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "pytorch",
                            "image": image,
                            "command": ["python", "-m", "kfkit.training.smoke"],
                            "args": ["--expect-world-size", "2", "--timeout", "120"],
                            "resources": resources,
                            "securityContext": restricted_security_context(),
                        }
                    ],
                },
            },
        }

    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": namespace, "labels": {SMOKE_LABEL: "true"}},
        "spec": {
            "runPolicy": {"backoffLimit": 0, "cleanPodPolicy": "All"},
            "pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(1)},
        },
    }


def final_state(job: dict[str, Any]) -> str | None:
    """Succeeded or Failed once the operator has decided, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Succeeded", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def run(api: Any, job: dict[str, Any], *, timeout: float, interval: float = 5.0) -> str:
    """Submit ``job``, wait for its final state (or "Timeout"), delete it; the state."""
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)
    print(f"submitted PyTorchJob {namespace}/{name}", flush=True)
    state = "Timeout"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            decided = final_state(current)
            if decided:
                state = decided
                break
            time.sleep(interval)
    finally:
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    print(f"PyTorchJob {namespace}/{name}: {state}", flush=True)
    return state


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--resources", default="{}", help="replica resources, as JSON")
    parser.add_argument("--kubeconfig", help="outside the cluster: the kubeconfig to use")
    args = parser.parse_args(argv)

    from kubernetes import client

    from kfkit.platform.check import cluster_client

    api_client = cluster_client(args.kubeconfig)
    job = smoke_job(args.name, args.namespace, args.image, json.loads(args.resources))
    state = run(client.CustomObjectsApi(api_client), job, timeout=args.timeout)
    return 0 if state == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
