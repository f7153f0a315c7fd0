"""Is the platform up? The chart's post-install/post-upgrade Job runs this.

``python -m kfkit.platform.check --namespace kubeflow --crd pytorchjobs.kubeflow.org
--deployment kubeflow-platform-training-operator`` waits (up to ``--timeout`` seconds)
until every named CRD is Established and every named Deployment is Available, printing one
line per thing as it becomes ready, and exits 1 naming what never did. Inside the cluster it
uses the pod's ServiceAccount; elsewhere ``--kubeconfig``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any


def _condition(obj: Any, kind: str) -> bool:
    for condition in getattr(obj.status, "conditions", None) or []:
        if condition.type == kind:
            return bool(condition.status == "True")
    return False


def crd_established(api: Any, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        return _condition(api.read_custom_resource_definition(name), "Established")
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def deployment_available(api: Any, namespace: str, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        return _condition(api.read_namespaced_deployment(name, namespace), "Available")
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def wait_until_ready(
    checks: dict[str, Callable[[], bool]],
    *,
    timeout: float,
    interval: float = 2.0,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Poll every check until all pass or ``timeout`` runs out; the names still failing."""
    pending = dict(checks)
    deadline = time.monotonic() + timeout
    while True:
        for name, check in list(pending.items()):
            if check():
                say(f"ready: {name}")
                del pending[name]
        if not pending or time.monotonic() >= deadline:
            return sorted(pending)
        time.sleep(interval)


def cluster_client(kubeconfig: str | None) -> Any:
    """An API client from ``kubeconfig``, or from the pod's service account when None."""
    from kubernetes import client, config

    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    config.load_incluster_config()
    return client.ApiClient()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True, help="namespace of the Deployments")
    parser.add_argument("--crd", action="append", default=[], help="CRD that must be Established")
    parser.add_argument(
        "--deployment", action="append", default=[], help="Deployment that must be Available"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait in all")
    parser.add_argument("--kubeconfig", help="outside the cluster: the kubeconfig to use")
    args = parser.parse_args(argv)

    from kubernetes import client

    api_client = cluster_client(args.kubeconfig)
    extensions = client.ApiextensionsV1Api(api_client)
    apps = client.AppsV1Api(api_client)

    checks: dict[str, Callable[[], bool]] = {}
    for crd in args.crd:
        checks[f"CRD {crd} Established"] = partial(crd_established, extensions, crd)
    for name in args.deployment:
        checks[f"Deployment {args.namespace}/{name} Available"] = partial(
            deployment_available, apps, args.namespace, name
        )
    failing = wait_until_ready(checks, timeout=args.timeout)
    for name in failing:
        print(f"not ready after {args.timeout:.0f}s: {name}", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
