"""The kubernetes backend: the same verbs as the local one, on a real cluster.

The training operator on the cluster runs the job; kfkit only talks to the API
server through the official client:

- ``submit``: preflight (CRD served, namespace exists, create and patch
  allowed), then a server-side apply of the validated, defaulted manifest;
- ``get`` / ``list``: the job objects, their replica pods (found by the
  operator's labels) and, for one job, its Events and its pods' Events;
- ``wait``: a watch on the job's ``.status`` (see :mod:`.watch`), never a
  polling loop, with a deadline, resumed after a dropped connection or 410 Gone;
- ``logs``: the main container's log of each replica pod, read or followed;
- ``delete``: the job, then its pods and services (the garbage collector would
  remove them too, but a user who ran ``delete`` expects them gone now).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from kfkit.backends.base import JobRecord, JobStatus
from kfkit.backends.kubernetes.connection import (
    REQUEST_TIMEOUT,
    Connection,
    ForbiddenError,
    api_errors,
    connect,
    discard,
    read_json,
    with_source,
)
from kfkit.backends.kubernetes.events import list_events
from kfkit.backends.kubernetes.notebooks import ClusterNotebooks
from kfkit.backends.kubernetes.objects import CustomObjects, crd_missing, without_managed_fields
from kfkit.backends.kubernetes.pods import (
    LogReader,
    belongs_to,
    list_job_pods,
    replica_states,
)
from kfkit.backends.kubernetes.preflight import Preflight
from kfkit.backends.kubernetes.resources import (
    JOB_NAME_LABEL,
    JOB_RESOURCES,
    PYTORCHJOBS,
    Resource,
    job_resource,
)
from kfkit.backends.kubernetes.watch import RETRY_DELAYS, WATCH_SECONDS, ListWatch, WaitTimeout
from kfkit.errors import AlreadyExistsError, KfkitError, NotFoundError
from kfkit.jobs.defaults import apply_defaults
from kfkit.jobs.model import Job


class KubernetesBackend:
    """Runs jobs through the training operator of the cluster a kubeconfig points at."""

    name = "kubernetes"

    # Tuning knobs, set on an instance when needed (tests shorten them).
    watch_seconds: int = WATCH_SECONDS
    log_start_timeout: float = 300.0
    delete_timeout: float = 60.0
    watch_retry_delays: tuple[float, ...] = RETRY_DELAYS

    def __init__(
        self,
        kubeconfig: object = None,
        context: object = None,
        namespace: object = None,
        client_configuration: client.Configuration | None = None,
    ) -> None:
        """Read the kubeconfig (or the pod's service account); no request is made yet.

        ``kubeconfig`` is a path, ``context`` a context name in it, and
        ``namespace`` the default for callers that pass none (the Python API):
        it falls back to the context's namespace, then ``default``.
        ``client_configuration`` (a ``kubernetes.client.Configuration``, as the
        training SDK takes) replaces the kubeconfig altogether. They are
        typed ``object`` because :func:`kfkit.backends.get_backend` passes its
        options through untyped; each is checked here.
        """
        self.connection: Connection = connect(
            _path_option(kubeconfig, "--kubeconfig"),
            _str_option(context, "--context"),
            client_configuration,
        )
        self.default_namespace = _str_option(namespace, "--namespace") or self.connection.namespace
        self.checks = Preflight(self.connection)
        self.last_watch: ListWatch[Any] | None = None

    @property
    def notebooks(self) -> ClusterNotebooks:
        """Notebooks and PodDefaults on the same cluster (same connection and preflight)."""
        return ClusterNotebooks(self.connection, self.checks, self.watch_seconds)

    # --- helpers ------------------------------------------------------------------------

    def _objects(self, resource: Resource) -> CustomObjects:
        return CustomObjects(self.connection, resource)

    def _job(self, obj: dict[str, Any]) -> Job:
        manifest = without_managed_fields(obj)
        manifest.pop("status", None)
        return Job(manifest=apply_defaults(manifest), source=self.connection.describe())

    def _record(
        self,
        obj: dict[str, Any],
        pods: builtins.list[dict[str, Any]] | None = None,
        with_events: bool = False,
    ) -> JobRecord:
        """A job object as a record: its replicas from its pods, and maybe its events."""
        job = self._job(obj)
        if pods is None:
            try:
                pods = list_job_pods(self.connection, job)
            except ForbiddenError:
                pods = []  # may read jobs but not pods: every replica shows "no pod"
        events: builtins.list[dict[str, Any]] = []
        if with_events:
            involved = [(job.kind, job.name)] + [("Pod", p["metadata"]["name"]) for p in pods]
            events = list_events(self.connection, job.namespace, involved)
        return JobRecord(
            job=job,
            status=JobStatus(dict(obj.get("status") or {})),
            replicas=replica_states(job, pods),
            events=events,
            stored=obj,
        )

    def _served_job_resources(self, kind: str | None) -> builtins.list[Resource]:
        if kind is not None:
            return [job_resource(kind)]
        served = [r for r in JOB_RESOURCES.values() if self.checks.served(r)]
        if not served:
            raise crd_missing(PYTORCHJOBS, self.connection)
        return served

    def _find(self, name: str, namespace: str, kind: str | None) -> dict[str, Any]:
        """The job object; with no kind, PyTorchJob is looked for before TFJob."""
        for resource in self._served_job_resources(kind):
            obj = self._objects(resource).get(name, namespace)
            if obj is not None:
                return obj
        what = kind or "job"
        raise NotFoundError(f"{what} {namespace}/{name} not found on {self.connection.describe()}")

    # --- preflight ----------------------------------------------------------------------

    def preflight(self, jobs: Iterable[Job]) -> None:
        """Check every job can be created, before any of them is: CRD, namespace, RBAC."""
        for job in jobs:
            try:
                self.checks.check(job_resource(job.kind), job.namespace)
            except KfkitError as error:
                raise with_source(error, job.source) from None

    # --- the Backend verbs ----------------------------------------------------------------

    def submit(self, job: Job, replace: bool = False) -> JobRecord:
        """Apply the job (server-side); a job of the same name is refused, unless
        ``replace`` is set and it has finished (it is then deleted first)."""
        self.preflight([job])
        objects = self._objects(job_resource(job.kind))
        existing = objects.get(job.name, job.namespace)
        if existing is not None:
            status = JobStatus(dict(existing.get("status") or {}))
            if not status.finished:
                raise KfkitError(
                    f"{job.source}: metadata.name: {job.describe()} already exists on "
                    f"{self.connection.describe()} and has not finished; "
                    f"`kfkit delete job {job.name} --backend kubernetes` first"
                )
            if not replace:
                raise AlreadyExistsError(
                    f"{job.source}: metadata.name: {job.describe()} already exists on "
                    f"{self.connection.describe()} ({status.phase}); "
                    f"`kfkit delete job {job.name} --backend kubernetes` first, "
                    "or run with --replace"
                )
            self._delete(objects, self._job(existing))
        try:
            obj = objects.apply(job.submitted or job.manifest, job.namespace)
        except KfkitError as error:
            raise with_source(error, job.source) from None
        return self._record(obj, pods=[])

    def get(self, name: str, namespace: str = "default", kind: str | None = None) -> JobRecord:
        return self._record(self._find(name, namespace, kind), with_events=True)

    def list(self, namespace: str | None = None) -> builtins.list[JobRecord]:
        objs = [
            o for r in self._served_job_resources(None) for o in self._objects(r).list(namespace)
        ]
        pods = self._all_job_pods(namespace) if objs else []
        records = []
        for obj in objs:
            metadata = obj["metadata"]
            mine = [
                p
                for p in pods
                if p["metadata"]["namespace"] == metadata["namespace"]
                and (p["metadata"].get("labels") or {}).get(JOB_NAME_LABEL) == metadata["name"]
                and belongs_to(p, obj["kind"])
            ]
            records.append(self._record(obj, pods=mine))
        return sorted(records, key=lambda r: (r.job.namespace, r.job.name, r.job.kind))

    def _all_job_pods(self, namespace: str | None) -> builtins.list[dict[str, Any]]:
        """Every pod carrying the operator's job-name label (one request for the list)."""
        core = client.CoreV1Api(self.connection.api)
        options: dict[str, Any] = {
            "label_selector": JOB_NAME_LABEL,
            "_preload_content": False,
            "_request_timeout": REQUEST_TIMEOUT,
        }
        try:
            with api_errors(self.connection, "list the jobs' pods"):
                if namespace is None:
                    body = read_json(core.list_pod_for_all_namespaces(**options))
                else:
                    body = read_json(core.list_namespaced_pod(namespace, **options))
        except ForbiddenError:
            return []  # may list jobs but not pods: replicas show as without a pod
        return builtins.list(body.get("items") or [])

    def wait(
        self,
        name: str,
        namespace: str = "default",
        timeout: float = 600.0,
        on_update: Callable[[JobRecord], None] | None = None,
        kind: str | None = None,
    ) -> JobRecord:
        """Watch the job until it is Succeeded or Failed; the record then has its events."""
        first = self._find(name, namespace, kind)
        job = self._job(first)
        return self.wait_for(
            job, lambda status: status.finished, timeout=timeout, on_update=on_update
        )

    def wait_for(
        self,
        job: Job,
        reached: Callable[[JobStatus], bool],
        timeout: float,
        on_update: Callable[[JobRecord], None] | None = None,
        resource_version: str | None = None,
    ) -> JobRecord:
        """Watch ``job`` until ``reached(status)``; any condition, not only the final ones.

        ``resource_version`` starts the watch there (see :meth:`ListWatch.until`).
        """
        watcher = self._objects(job_resource(job.kind)).watcher(
            job.name,
            job.namespace,
            what=f"waiting for {job.describe()}",
            watch_seconds=self.watch_seconds,
        )
        watcher.retry_delays = self.watch_retry_delays
        self.last_watch = watcher
        latest: dict[str, str] = {"phase": "Pending"}

        def done(objects: dict[str, dict[str, Any]]) -> JobRecord | None:
            obj = objects.get(job.name)
            if obj is None:
                raise NotFoundError(
                    f"{job.describe()} was deleted while waiting for it "
                    f"(on {self.connection.describe()})"
                )
            status = JobStatus(dict(obj.get("status") or {}))
            latest["phase"] = status.phase
            if reached(status):
                return self._record(obj, with_events=True)
            return None

        def changed(objects: dict[str, dict[str, Any]]) -> None:
            if on_update is not None and job.name in objects:
                on_update(self._record(objects[job.name]))

        try:
            return watcher.until(done, timeout, changed, resource_version=resource_version)
        except WaitTimeout:
            raise WaitTimeout(
                f"timed out after {timeout:.0f}s waiting for {job.describe()} "
                f"(now {latest['phase']}); `kfkit describe job {job.name} --backend kubernetes` "
                "shows its events"
            ) from None

    def logs(
        self,
        name: str,
        namespace: str = "default",
        replica: str | None = None,
        follow: bool = False,
        kind: str | None = None,
        *,
        tail: int | None = None,
        previous: bool = False,
        since: float | None = None,
        timestamps: bool = False,
    ) -> Iterator[tuple[str, str]]:
        options: dict[str, Any] = {"timestamps": timestamps, "previous": previous}
        if tail is not None:
            options["tail_lines"] = tail
        if since is not None:
            options["since_seconds"] = max(1, int(since))
        job = self._job(self._find(name, namespace, kind))
        replicas = job.replicas
        if replica is not None:
            replicas = [r for r in replicas if r.key == replica]
            if not replicas:
                keys = ", ".join(r.key for r in job.replicas)
                raise NotFoundError(f"replica {replica!r} not found in {job.describe()} ({keys})")
        reader = LogReader(self.connection, job, self.log_start_timeout, options)
        yield from reader.follow(replicas) if follow else reader.read(replicas)

    def delete(self, name: str, namespace: str = "default", kind: str | None = None) -> None:
        """Delete the job and its pods and services; return once the job is gone."""
        job = self._job(self._find(name, namespace, kind))
        self._delete(self._objects(job_resource(job.kind)), job)

    def update(self, name: str, namespace: str, kind: str, patch: dict[str, Any]) -> JobRecord:
        """A JSON merge patch of the job object (the API server and the operator take it)."""
        objects = self._objects(job_resource(kind))
        with api_errors(self.connection, f"update {kind} {namespace}/{name}"):
            response = objects.api.patch_namespaced_custom_object(
                *objects._args(namespace),
                name,
                patch,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
            return self._record(dict(read_json(response)), pods=[])

    def pods(self, namespace: str, labels: dict[str, str]) -> builtins.list[dict[str, Any]]:
        """The pods matching every label, by a label selector on the API server."""
        selector = ",".join(f"{key}={value}" for key, value in labels.items())
        with api_errors(self.connection, f"list pods in namespace {namespace}"):
            body = read_json(
                client.CoreV1Api(self.connection.api).list_namespaced_pod(
                    namespace,
                    label_selector=selector,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        return builtins.list(body.get("items") or [])

    def kill_replica(self, name: str, replica: str, namespace: str = "default") -> None:
        """Delete the replica's pod without a grace period; the operator recreates it."""
        job = self._job(self._find(name, namespace, None))
        pod = f"{job.name}-{replica}"
        with api_errors(self.connection, f"delete pod {job.namespace}/{pod}"):
            client.CoreV1Api(self.connection.api).delete_namespaced_pod(
                pod, job.namespace, grace_period_seconds=0, _request_timeout=REQUEST_TIMEOUT
            )

    def _delete(self, objects: CustomObjects, job: Job) -> None:
        objects.delete(job.name, job.namespace)
        self._delete_replica_objects(job)
        watcher = objects.watcher(
            job.name, job.namespace, what=f"deleting {job.describe()}", watch_seconds=10
        )
        try:
            watcher.until(lambda objs: True if job.name not in objs else None, self.delete_timeout)
        except WaitTimeout:
            raise KfkitError(
                f"{job.describe()} is still terminating after {self.delete_timeout:.0f}s "
                "(a finalizer holds it?)"
            ) from None

    def _delete_replica_objects(self, job: Job) -> None:
        """Delete the job's pods and services now rather than when the garbage collector runs."""
        core = client.CoreV1Api(self.connection.api)
        try:
            with api_errors(self.connection, f"delete the pods of {job.describe()}"):
                for pod in list_job_pods(self.connection, job):
                    _ignore_missing(
                        core.delete_namespaced_pod,
                        pod["metadata"]["name"],
                        job.namespace,
                    )
                body = read_json(
                    core.list_namespaced_service(
                        job.namespace,
                        label_selector=f"{JOB_NAME_LABEL}={job.name}",
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                )
                for service in body.get("items") or []:
                    if belongs_to(service, job.kind):
                        _ignore_missing(
                            core.delete_namespaced_service,
                            service["metadata"]["name"],
                            job.namespace,
                        )
        except ForbiddenError:
            pass  # the garbage collector removes them (they are owned by the job)


def _ignore_missing(delete: Callable[..., Any], name: str, namespace: str) -> None:
    try:
        discard(delete(name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))
    except ApiException as error:
        if error.status != 404:
            raise


def _str_option(value: object, flag: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise KfkitError(f"{flag}: expected a string, got {type(value).__name__}")


def _path_option(value: object, flag: str) -> str | None:
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    return _str_option(value, flag)
