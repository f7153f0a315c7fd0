"""A Python API shaped like the Kubeflow training SDK's ``TrainingClient``, over any backend.

The same calls run a job on this machine or on a cluster; only the backend
changes::

    from kfkit.client import TrainingClient

    client = TrainingClient()          # local; TrainingClient(context="kind-kfkit"): a cluster
    client.create_job("manifests/examples/pytorchjob-allreduce.yaml")
    client.wait_for_job_conditions("allreduce-smoke", timeout=900)
    print(client.get_job_logs("allreduce-smoke")["allreduce-smoke-master-0"])
    client.delete_job("allreduce-smoke")

Differences from the SDK, on purpose: jobs are manifests (a path, a dict or
a :class:`~kfkit.jobs.model.Job`), validated and defaulted by :mod:`kfkit.jobs`
before anything is created; results are :class:`~kfkit.backends.base.JobRecord`
objects (manifest, operator-shaped status, replicas, events) on both backends;
errors are :class:`~kfkit.errors.KfkitError` with one-line messages, and a
failed job raises :class:`JobFailedError`, which carries the job's events.
``job_kind=None`` (the default) means "whichever kind has that name".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from kfkit.backends import Backend, JobRecord, get_backend
from kfkit.backends.base import (
    CREATED,
    FAILED,
    RESTARTING,
    RUNNING,
    SUCCEEDED,
    SUSPENDED,
)
from kfkit.errors import KfkitError, NotFoundError
from kfkit.jobs.load import load_jobs, load_manifest
from kfkit.jobs.model import Job

CONDITION_TYPES = (CREATED, RUNNING, RESTARTING, SUCCEEDED, FAILED, SUSPENDED)


class JobFailedError(KfkitError):
    """The job reached Failed while something else was expected; ``record`` is its state."""

    def __init__(self, record: JobRecord) -> None:
        condition = record.status.condition(FAILED) or {}
        reason = condition.get("reason") or "Failed"
        message = condition.get("message") or ""
        super().__init__(f"{record.job.describe()} failed: {reason}: {message}".rstrip(": "))
        self.record = record

    def lines(self) -> list[str]:
        """The one-line summary, then the job's warning events (why it failed)."""
        events = [e for e in self.record.events if e.get("type") == "Warning"]
        return [self.message] + [
            f"  {e.get('time', '')} {e.get('object', '')} {e.get('reason', '')}: "
            f"{e.get('message', '')}"
            for e in events
        ]


class _Reached(Exception):
    """Raised from a wait's update callback once an expected condition is true."""

    def __init__(self, record: JobRecord) -> None:
        super().__init__()
        self.record = record


def job_from_manifest(manifest: dict[str, Any], source: str = "<manifest>") -> Job:
    """Check, default and admit one manifest dict exactly as ``kfkit run`` does a file."""
    return load_manifest(manifest, source)


class TrainingClient:
    """create / get / list / wait / logs / delete training jobs on one backend."""

    def __init__(
        self,
        backend: str | Backend | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        **options: object,
    ) -> None:
        """``backend`` is ``"local"``, ``"kubernetes"`` or a backend object.

        Without one, ``$KFKIT_BACKEND`` decides, else a ``kubeconfig=`` or
        ``context=`` option means the cluster, else the local backend.
        ``options`` go to the backend (``kubeconfig=``, ``context=`` for
        kubernetes; ``home=`` for local). ``namespace`` is the default of every
        call; on a cluster it falls back to the kubeconfig context's namespace.
        """
        if backend is None:
            on_cluster = "kubeconfig" in options or "context" in options
            backend = os.environ.get("KFKIT_BACKEND") or ("kubernetes" if on_cluster else "local")
        self.backend: Backend = (
            get_backend(backend, **options) if isinstance(backend, str) else backend
        )
        self.namespace = namespace or str(getattr(self.backend, "default_namespace", "default"))
        self.job_kind = job_kind

    # --- create ---------------------------------------------------------------------------

    def _jobs(self, job: Job | dict[str, Any] | str | Path, namespace: str | None) -> list[Job]:
        if isinstance(job, Job):
            jobs = [job]
        elif isinstance(job, dict):
            manifest = dict(job)
            metadata = dict(manifest.get("metadata") or {})
            metadata.setdefault("namespace", namespace or self.namespace)
            manifest["metadata"] = metadata
            jobs = [job_from_manifest(manifest)]
        else:
            jobs = load_jobs([job])
        if namespace is not None:
            for one in jobs:
                one.manifest["metadata"]["namespace"] = namespace
        return jobs

    def create_jobs(
        self, jobs: Job | dict[str, Any] | str | Path, namespace: str | None = None
    ) -> list[JobRecord]:
        """Create every job of a file or directory; all are checked before any is created."""
        loaded = self._jobs(jobs, namespace)
        preflight = getattr(self.backend, "preflight", None)
        if preflight is not None:
            preflight(loaded)
        return [self.backend.submit(job) for job in loaded]

    def create_job(
        self, job: Job | dict[str, Any] | str | Path, namespace: str | None = None
    ) -> JobRecord:
        """Create one job from a manifest path, a manifest dict or a ``Job``."""
        loaded = self._jobs(job, namespace)
        if len(loaded) != 1:
            raise KfkitError(
                f"{job}: holds {len(loaded)} jobs; create_job takes one (use create_jobs)"
            )
        return self.create_jobs(loaded[0])[0]

    # --- read -----------------------------------------------------------------------------

    def get_job(
        self, name: str, namespace: str | None = None, job_kind: str | None = None
    ) -> JobRecord:
        return self.backend.get(name, namespace or self.namespace, job_kind or self.job_kind)

    def list_jobs(
        self,
        namespace: str | None = None,
        job_kind: str | None = None,
        all_namespaces: bool = False,
    ) -> list[JobRecord]:
        records = self.backend.list(None if all_namespaces else namespace or self.namespace)
        kind = job_kind or self.job_kind
        return [r for r in records if kind is None or r.job.kind == kind]

    def get_job_conditions(
        self, name: str, namespace: str | None = None, job_kind: str | None = None
    ) -> list[dict[str, Any]]:
        return self.get_job(name, namespace, job_kind).status.conditions

    def _is(self, condition: str, name: str, namespace: str | None, job_kind: str | None) -> bool:
        return self.get_job(name, namespace, job_kind).status.is_true(condition)

    def is_job_created(
        self, name: str, namespace: str | None = None, job_kind: str | None = None
    ) -> bool:
        return self._is(CREATED, name, namespace, job_kind)

    def is_job_running(
        self, name: str, namespace: str | None = None, job_kind: str | None = None
    ) -> bool:
        return self._is(RUNNING, name, namespace, job_kind)

    def is_job_restarting(
        self, name: str, namespace: str | None = None, job_kind: str | None = None
    ) -> bool:
        return self._is(RESTARTING, name, namespace, job_kind)

    def is_job_succeeded(
        self, name: str, namespace: str | None = None, job_kind: str | None = None
    ) -> bool:
        return self._is(SUCCEEDED, name, namespace, job_kind)

    def is_job_failed(
        self, name: str, namespace: str | None = None, job_kind: str | None = None
    ) -> bool:
        return self._is(FAILED, name, namespace, job_kind)

    def get_job_pod_names(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        replica_type: str | None = None,
        replica_index: int | None = None,
    ) -> list[str]:
        """The replica pod names (``<job>-<type>-<index>``), the same on both backends."""
        job = self.get_job(name, namespace, job_kind).job
        return [
            replica.pod_name(job.name)
            for replica in job.replicas
            if (replica_type is None or replica.type.lower() == replica_type.lower())
            and (replica_index is None or replica.index == replica_index)
        ]

    # --- wait -----------------------------------------------------------------------------

    def wait_for_job_conditions(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        expected_conditions: Collection[str] = frozenset({SUCCEEDED}),
        timeout: float = 600.0,
        callback: Callable[[JobRecord], None] | None = None,
    ) -> JobRecord:
        """Wait until one of ``expected_conditions`` is True; return the job's record.

        A job that fails first raises :class:`JobFailedError` (unless Failed is
        expected); the deadline raises ``KfkitError``. The kubernetes backend
        watches the job, the local one reads its state files.
        """
        unknown = sorted(set(expected_conditions) - set(CONDITION_TYPES))
        if unknown or not expected_conditions:
            raise KfkitError(
                f"expected_conditions: {', '.join(unknown) or 'empty'}: choose among "
                f"{', '.join(CONDITION_TYPES)}"
            )

        def update(record: JobRecord) -> None:
            if callback is not None:
                callback(record)
            if any(record.status.is_true(c) for c in expected_conditions):
                raise _Reached(record)

        try:
            record = self.backend.wait(
                name, namespace or self.namespace, timeout, update, job_kind or self.job_kind
            )
        except _Reached as reached:
            return reached.record
        if any(record.status.is_true(c) for c in expected_conditions):
            return record
        if record.status.is_true(FAILED):
            raise JobFailedError(record)
        return record

    # --- logs -----------------------------------------------------------------------------

    def stream_job_logs(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        replica_type: str | None = None,
        replica_index: int | None = None,
        follow: bool = False,
    ) -> Iterator[tuple[str, str]]:
        """Yield ``(pod name, line)`` pairs, following the logs as they grow with ``follow``."""
        namespace = namespace or self.namespace
        job = self.get_job(name, namespace, job_kind).job
        pods = set(self.get_job_pod_names(name, namespace, job.kind, replica_type, replica_index))
        if not pods:
            raise NotFoundError(
                f"{job.describe()}: no replica matches type={replica_type} index={replica_index}"
            )
        wanted = [r for r in job.replicas if r.pod_name(job.name) in pods]
        if len(wanted) == 1:
            lines = self.backend.logs(name, namespace, wanted[0].key, follow, job.kind)
        else:
            lines = self.backend.logs(name, namespace, None, follow, job.kind)
        for key, line in lines:
            pod = f"{job.name}-{key}"
            if pod in pods:
                yield pod, line

    def get_job_logs(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        replica_type: str | None = None,
        replica_index: int | None = None,
        follow: bool = False,
        on_line: Callable[[str, str], None] | None = None,
    ) -> dict[str, str]:
        """Each replica pod's log as one string, keyed by pod name.

        With ``follow`` the call returns when every container has ended;
        ``on_line(pod, line)`` sees each line as it arrives.
        """
        logs: dict[str, list[str]] = {}
        for pod, line in self.stream_job_logs(
            name, namespace, job_kind, replica_type, replica_index, follow
        ):
            logs.setdefault(pod, []).append(line)
            if on_line is not None:
                on_line(pod, line)
        return {pod: "\n".join(lines) + "\n" for pod, lines in logs.items()}

    # --- delete ---------------------------------------------------------------------------

    def delete_job(
        self, name: str, namespace: str | None = None, job_kind: str | None = None
    ) -> None:
        self.backend.delete(name, namespace or self.namespace, job_kind or self.job_kind)
