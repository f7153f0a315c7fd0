"""A job's replica pods: finding them by the operator's labels, their state, their logs.

The operator names each pod ``<job>-<type>-<index>`` and labels it with the
job name, the lower-case replica type and the index; kfkit finds pods by those
labels (never by name), so a pod the operator re-created after a failure is
found as well.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import urllib3
from kubernetes import client

from kfkit.backends.kubernetes.connection import (
    REQUEST_TIMEOUT,
    Connection,
    api_errors,
    read_json,
)
from kfkit.backends.kubernetes.resources import (
    OPERATOR_NAME_LABEL,
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
    job_selector,
    replica_selector,
)
from kfkit.backends.kubernetes.watch import ListWatch, WaitTimeout
from kfkit.errors import KfkitError
from kfkit.jobs.model import Job, Replica

# A follow stream that stays silent this long is re-opened (the pod may have gone).
FOLLOW_IDLE_SECONDS = 600


def list_job_pods(connection: Connection, job: Job) -> list[dict[str, Any]]:
    """Every pod of ``job`` (by the operator's labels), as API dicts."""
    core = client.CoreV1Api(connection.api)
    with api_errors(connection, f"list pods of {job.describe()}"):
        body = read_json(
            core.list_namespaced_pod(
                job.namespace,
                label_selector=job_selector(job.name),
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )
    return [pod for pod in body.get("items") or [] if belongs_to(pod, job.kind)]


def belongs_to(pod: dict[str, Any], kind: str) -> bool:
    """False for pods of a same-named job of the other kind (told apart by operator name)."""
    operator = (pod["metadata"].get("labels") or {}).get(OPERATOR_NAME_LABEL)
    return operator is None or operator == f"{kind.lower()}-controller"


def replica_key(pod: dict[str, Any]) -> str | None:
    """``worker-1`` from the pod's labels; None for a pod without them."""
    labels = pod["metadata"].get("labels") or {}
    replica_type, index = labels.get(REPLICA_TYPE_LABEL), labels.get(REPLICA_INDEX_LABEL)
    if replica_type is None or index is None:
        return None
    return f"{replica_type.lower()}-{index}"


def pods_by_replica(pods: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One pod per replica: the newest that is not being deleted, else the newest."""
    chosen: dict[str, dict[str, Any]] = {}

    def rank(pod: dict[str, Any]) -> tuple[bool, str]:
        metadata = pod["metadata"]
        return ("deletionTimestamp" not in metadata, metadata.get("creationTimestamp") or "")

    for pod in pods:
        key = replica_key(pod)
        if key is not None and (key not in chosen or rank(pod) > rank(chosen[key])):
            chosen[key] = pod
    return chosen


def main_container_status(pod: dict[str, Any], container: str) -> dict[str, Any]:
    """The status of the operator-configured container (or of the first one)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") == container:
            return dict(status)
    return dict(statuses[0]) if statuses else {}


def pod_started(pod: dict[str, Any]) -> bool:
    """Whether any container has run, i.e. whether the pod has logs to read."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Running", "Succeeded", "Failed"):
        return True
    return any(
        "running" in (s.get("state") or {}) or "terminated" in (s.get("state") or {})
        for s in status.get("containerStatuses") or []
    )


def pending_reason(pod: dict[str, Any]) -> str:
    """Why a pod is not running yet, in the words kubectl shows."""
    status = pod.get("status") or {}
    for container_status in status.get("containerStatuses") or []:
        waiting = (container_status.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("reason") or "Unschedulable")
    if not (pod.get("spec") or {}).get("nodeName"):
        return "not scheduled"
    return str(status.get("reason") or "")


def replica_state(replica: Replica, pod: dict[str, Any] | None, container: str) -> dict[str, Any]:
    """A replica's entry of ``JobRecord.replicas``, from its pod (None: no pod now)."""
    state: dict[str, Any] = {"type": replica.type, "index": replica.index}
    if pod is None:
        state.update(phase="Pending", restarts=0, exitCode=None, reason="no pod")
        return state
    status = pod.get("status") or {}
    container_status = main_container_status(pod, container)
    terminated = (container_status.get("state") or {}).get("terminated") or {}
    phase = str(status.get("phase") or "Pending")
    reason = terminated.get("reason") or status.get("reason") or ""
    if phase == "Pending":
        reason = pending_reason(pod)
    elif (container_status.get("state") or {}).get("waiting"):
        reason = container_status["state"]["waiting"].get("reason") or reason  # CrashLoopBackOff
    state.update(
        phase=phase,
        restarts=int(container_status.get("restartCount") or 0),
        exitCode=terminated.get("exitCode"),
        reason=str(reason),
        pod=pod["metadata"]["name"],
        node=(pod.get("spec") or {}).get("nodeName"),
    )
    return state


def replica_states(job: Job, pods: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every replica of ``job`` (in start order) with what its pod is doing."""
    chosen = pods_by_replica(pods)
    container = job.info.container_name
    return {r.key: replica_state(r, chosen.get(r.key), container) for r in job.replicas}


# --- logs ----------------------------------------------------------------------------------


def _split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Whole lines from a byte stream (the last one even without a newline)."""
    partial = b""
    for chunk in chunks:
        partial += chunk
        *lines, partial = partial.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", errors="replace")
    if partial:
        yield partial.decode("utf-8", errors="replace")


class LogReader:
    """Reads (or follows) the main container's log of a job's replica pods."""

    def __init__(
        self,
        connection: Connection,
        job: Job,
        start_timeout: float,
        options: dict[str, Any] | None = None,
    ) -> None:
        """``options`` are the API's log options (``tail_lines``, ``previous``,
        ``since_seconds``, ``timestamps``), passed on as ``kubectl logs`` does."""
        self.connection = connection
        self.job = job
        self.start_timeout = start_timeout
        self.options = dict(options or {})
        self.core = client.CoreV1Api(connection.api)

    def _read_log(self, pod: str, **options: Any) -> Any:
        return self.core.read_namespaced_pod_log(
            pod,
            self.job.namespace,
            container=self.job.info.container_name,
            _preload_content=False,
            **{**self.options, **options},
        )

    def read(self, replicas: list[Replica]) -> Iterator[tuple[str, str]]:
        """The logs so far, replica after replica; an error if no replica has started."""
        chosen = pods_by_replica(list_job_pods(self.connection, self.job))
        not_started: list[str] = []
        for replica in replicas:
            pod = chosen.get(replica.key)
            if pod is None or not pod_started(pod):
                why = "no pod" if pod is None else pending_reason(pod) or "Pending"
                not_started.append(f"{replica.key} ({why})")
                continue
            name = pod["metadata"]["name"]
            with api_errors(self.connection, f"logs of pod {self.job.namespace}/{name}"):
                response = self._read_log(name, _request_timeout=REQUEST_TIMEOUT)
                try:
                    data = response.data
                finally:
                    response.release_conn()
            for line in _split_lines(iter([data])):
                yield replica.key, line
        if len(not_started) == len(replicas):
            raise KfkitError(
                f"{self.job.describe()}: no logs yet: no replica has started: "
                + ", ".join(not_started)
            )

    def follow(self, replicas: list[Replica]) -> Iterator[tuple[str, str]]:
        """Every replica's log as it is written, until every container has ended."""
        lines: queue.Queue[tuple[str, str] | BaseException | None] = queue.Queue(maxsize=1000)
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=self._follow_one,
                args=(replica, lines, stop),
                name=f"kfkit-logs-{replica.key}",
                daemon=True,
            )
            for replica in replicas
        ]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                item = lines.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)

    def _wait_started(self, replica: Replica) -> str:
        """The name of the replica's pod once it has started (watching, not polling)."""

        def started(objects: dict[str, dict[str, Any]]) -> str | None:
            pods = pods_by_replica([p for p in objects.values() if belongs_to(p, self.job.kind)])
            pod = pods.get(replica.key)
            return pod["metadata"]["name"] if pod is not None and pod_started(pod) else None

        watcher: ListWatch[str] = ListWatch(
            self.connection,
            self.core.list_namespaced_pod,
            self.job.namespace,
            what=f"waiting for replica {replica.key} of {self.job.describe()} to start",
            label_selector=replica_selector(self.job.name, replica.type, replica.index),
        )
        try:
            return watcher.until(started, self.start_timeout)
        except WaitTimeout:
            pod = pods_by_replica(list(watcher.objects.values())).get(replica.key)
            why = "no pod" if pod is None else pending_reason(pod) or "Pending"
            raise KfkitError(
                f"{self.job.describe()}: replica {replica.key} did not start within "
                f"{self.start_timeout:.0f}s ({why}); `kfkit describe job {self.job.name} "
                "--backend kubernetes` shows its events"
            ) from None

    def _follow_one(
        self,
        replica: Replica,
        lines: queue.Queue[tuple[str, str] | BaseException | None],
        stop: threading.Event,
    ) -> None:
        def put(item: tuple[str, str] | BaseException | None) -> bool:
            """Hand one item to the reader; False once the reader has gone away."""
            while not stop.is_set():
                try:
                    lines.put(item, timeout=0.5)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            pod = self._wait_started(replica)
            since: int | None = None
            while not stop.is_set():
                options: dict[str, Any] = {"follow": True}
                if since is not None:
                    options["since_seconds"] = since
                try:
                    with api_errors(self.connection, f"logs of pod {self.job.namespace}/{pod}"):
                        response = self._read_log(
                            pod, _request_timeout=(10.0, FOLLOW_IDLE_SECONDS), **options
                        )
                        try:
                            for line in _split_lines(response.stream(64 * 1024)):
                                if not put((replica.key, line)):
                                    return
                        finally:
                            response.close()
                            response.release_conn()
                    return  # the container ended, so did its log
                except urllib3.exceptions.ReadTimeoutError:
                    since = FOLLOW_IDLE_SECONDS  # silent for that long: re-open from then
        except BaseException as error:
            put(error)
        finally:
            put(None)
