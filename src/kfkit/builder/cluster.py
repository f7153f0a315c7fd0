"""Running the Kaniko Job on a cluster with the official Kubernetes client.

The client is configured in-cluster (a notebook pod) or from a kubeconfig; when
neither exists, :func:`connect` returns None and the builder works without a
cluster. Every wait has a deadline; a build that runs past it is deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from kfkit.builder.kaniko import CONTAINER, BuildOutcome, build_outcome
from kfkit.errors import KfkitError

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
POLL_SECONDS = 2.0


def connect(kubeconfig: str | None = None, context: str | None = None) -> Any | None:
    """An ApiClient for the cluster this process can reach, or None when there is none.

    An explicitly named kubeconfig that cannot be loaded is an error, not "no cluster".
    """
    from kubernetes import client, config

    if kubeconfig is None and context is None:
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            pass
    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except (config.ConfigException, FileNotFoundError, OSError) as error:
        if kubeconfig is not None or context is not None:
            raise KfkitError(f"kubeconfig: cannot load {kubeconfig or context}: {error}") from None
        return None
    return client.ApiClient(configuration)


def default_namespace(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The namespace a notebook pod runs in, else the kubeconfig context's, else default."""
    if IN_CLUSTER_NAMESPACE.is_file():
        return IN_CLUSTER_NAMESPACE.read_text(encoding="utf-8").strip()
    try:
        from kubernetes import config

        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = (
            next((c for c in contexts if c["name"] == context), current) if context else current
        )
        return str((chosen or {}).get("context", {}).get("namespace") or "default")
    except Exception:  # no kubeconfig at all: the cluster's default namespace
        return "default"


def check_secret(api: Any, namespace: str, name: str, console: Console) -> None:
    """Fail before anything is created when the registry secret does not exist."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    except ApiException as error:
        if error.status == 404:
            raise KfkitError(
                f"registry_secret: secret {name!r} not found in namespace {namespace!r}"
            ) from None
        if error.status == 403:
            console.print(f"[yellow]Cannot check secret {name!r} (forbidden); going on.[/]")
            return
        raise


def _pod_dict(api: Any, pod: Any) -> dict[str, Any]:
    return dict(api.sanitize_for_serialization(pod))


def run_job(
    api: Any,
    manifest: dict[str, Any],
    timeout: float,
    console: Console,
    clock: Callable[[], float] = time.monotonic,
) -> BuildOutcome:
    """Create the Job, wait for its pod, stream the Kaniko log and judge the result."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    namespace = manifest["metadata"]["namespace"]
    name = manifest["metadata"]["name"]
    deadline = clock() + timeout
    try:
        batch.create_namespaced_job(namespace, manifest)
    except ApiException as error:
        raise KfkitError(f"job {namespace}/{name}: cannot create: {error.reason}") from None
    console.print(f"Created Kaniko job {namespace}/{name}")
    try:
        pod_name = _wait_for_pod(core, namespace, name, deadline, clock)
        console.print(f"Waiting for {pod_name} to start...")
        outcome = _wait_until_started(api, core, namespace, pod_name, deadline, clock)
        if outcome is not None:
            return outcome
        console.print("Pod started running")
        logs = _stream_logs(core, namespace, pod_name, deadline, clock, console)
        while True:
            pod = _pod_dict(api, core.read_namespaced_pod(pod_name, namespace))
            outcome = build_outcome(pod, logs)
            if outcome.finished:
                return outcome
            if clock() > deadline:
                raise TimeoutError
            time.sleep(POLL_SECONDS)
    except TimeoutError:
        try:
            batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        except ApiException as error:
            return BuildOutcome(
                True,
                False,
                f"build did not finish within {timeout:.0f}s, and deleting job "
                f"{namespace}/{name} failed ({error.reason}); delete it yourself",
            )
        return BuildOutcome(True, False, f"build did not finish within {timeout:.0f}s; job deleted")


def _wait_for_pod(core: Any, namespace: str, job: str, deadline: float, clock: Any) -> str:
    while True:
        pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
        if pods:
            return str(pods[0].metadata.name)
        if clock() > deadline:
            raise TimeoutError
        time.sleep(POLL_SECONDS)


def _wait_until_started(
    api: Any, core: Any, namespace: str, pod_name: str, deadline: float, clock: Any
) -> BuildOutcome | None:
    """None once the pod runs (or ran); an outcome when it failed before starting."""
    while True:
        pod = _pod_dict(api, core.read_namespaced_pod(pod_name, namespace))
        outcome = build_outcome(pod)
        if outcome.finished and not outcome.succeeded and _never_started(pod):
            return outcome
        if (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed"):
            return None
        if clock() > deadline:
            raise TimeoutError
        time.sleep(POLL_SECONDS)


def _never_started(pod: dict[str, Any]) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return all("waiting" in (s.get("state") or {}) for s in statuses if s.get("name") == CONTAINER)


def _stream_logs(
    core: Any, namespace: str, pod_name: str, deadline: float, clock: Any, console: Console
) -> str:
    """Print the executor's log as it comes; the result never depends on it.

    The pod status carries the verdict (exit code and digest), so a log that
    cannot be read (the node went away, the kubelet is unreachable) is reported
    and the build is still judged.
    """
    from kubernetes.client.rest import ApiException

    try:
        response = core.read_namespaced_pod_log(
            pod_name,
            namespace,
            container=CONTAINER,
            follow=True,
            _preload_content=False,
            _request_timeout=max(1.0, deadline - clock()),
        )
    except ApiException as error:
        console.print(f"[yellow]Cannot read the log of {pod_name}: {error.reason}[/]")
        return ""
    seen: list[str] = []
    try:
        for chunk in response.stream(4096):
            text = chunk.decode("utf-8", errors="replace")
            seen.append(text)
            console.out(text, end="", highlight=False)
    finally:
        response.release_conn()
    return "".join(seen)
