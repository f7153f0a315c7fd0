"""What every backend offers, and the job status both backends report.

The status is kept in the exact shape of the training operator's ``.status``
(conditions with type/status/reason/message and timestamps, replicaStatuses
with active/succeeded/failed counts), so the local backend's state files, the
cluster's objects and everything that reads them (CLI, BDD steps, pipeline)
share one vocabulary.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from kfkit.jobs.model import Job

# Condition types, in the order a healthy job passes through them.
CREATED, RUNNING, RESTARTING, SUCCEEDED, FAILED, SUSPENDED = (
    "Created",
    "Running",
    "Restarting",
    "Succeeded",
    "Failed",
    "Suspended",
)
FINISHED = (SUCCEEDED, FAILED)


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps (UTC, seconds, trailing Z)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class JobStatus:
    """A job's ``.status`` as the operator writes it; ``raw`` is that dict."""

    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def conditions(self) -> list[dict[str, Any]]:
        return list(self.raw.get("conditions") or [])

    @property
    def replica_statuses(self) -> dict[str, dict[str, int]]:
        return dict(self.raw.get("replicaStatuses") or {})

    def condition(self, condition_type: str) -> dict[str, Any] | None:
        for condition in self.conditions:
            if condition.get("type") == condition_type:
                return condition
        return None

    def is_true(self, condition_type: str) -> bool:
        condition = self.condition(condition_type)
        return condition is not None and condition.get("status") == "True"

    @property
    def phase(self) -> str:
        """The latest condition whose status is True (``Pending`` when none is)."""
        true_conditions = [c for c in self.conditions if c.get("status") == "True"]
        return str(true_conditions[-1]["type"]) if true_conditions else "Pending"

    @property
    def finished(self) -> bool:
        return any(self.is_true(kind) for kind in FINISHED)

    @property
    def succeeded(self) -> bool:
        return self.is_true(SUCCEEDED)


@dataclass
class JobRecord:
    """A submitted job: its defaulted manifest, its status, its replicas and events.

    ``replicas`` maps a replica's short name (``worker-1``) to what its pod or
    process is doing: ``type``, ``index``, ``phase`` (Pending, Running,
    Restarting, Succeeded, Failed), ``restarts``, ``exitCode``, ``reason``.
    ``events`` are Kubernetes-style events: ``time``, ``type``, ``reason``, ``message``.
    ``stored`` is the object exactly as the API server keeps it (server metadata,
    ``.status``, no client-side defaults) where a backend has one; the training
    SDK's models are built from it.
    """

    job: Job
    status: JobStatus
    replicas: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[str, Any] | None = None


class Backend(Protocol):
    """The verbs every backend implements (kubectl-like, TrainingClient-like)."""

    name: str

    def submit(self, job: Job, replace: bool = False) -> JobRecord:
        """Start the job; return at once (use :meth:`wait` to follow it).

        A job of the same name is refused (``AlreadyExistsError``), as the API server
        refuses a second create; ``replace`` first deletes it if it has finished.
        """
        ...

    def get(self, name: str, namespace: str = "default", kind: str | None = None) -> JobRecord:
        """The job's manifest and status; ``NotFoundError`` when it does not exist."""
        ...

    def list(self, namespace: str | None = None) -> list[JobRecord]:
        """Every job, in ``namespace`` or in all namespaces when it is None."""
        ...

    def wait(
        self,
        name: str,
        namespace: str = "default",
        timeout: float = 600.0,
        on_update: Callable[[JobRecord], None] | None = None,
        kind: str | None = None,
    ) -> JobRecord:
        """Block until the job is Succeeded or Failed (or ``timeout`` seconds pass)."""
        ...

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
        """Yield ``(replica, line)`` pairs; ``replica`` names like ``master-0``.

        ``tail`` (last lines per replica), ``previous`` (the run before a restart),
        ``since`` (seconds) and ``timestamps`` mean what they mean to ``kubectl logs``.
        """
        ...

    def delete(self, name: str, namespace: str = "default", kind: str | None = None) -> None:
        """Stop every replica and remove the job."""
        ...

    def update(self, name: str, namespace: str, kind: str, patch: dict[str, Any]) -> JobRecord:
        """Merge ``patch`` (RFC 7386) into the job, as the training SDK's ``update_job`` does."""
        ...

    def pods(self, namespace: str, labels: dict[str, str]) -> builtins.list[dict[str, Any]]:
        """The replica pods in ``namespace`` carrying every one of ``labels``, as API dicts."""
        ...

    def kill_replica(self, name: str, replica: str, namespace: str = "default") -> None:
        """Kill one replica at once (SIGKILL, or its pod deleted without grace): a fault
        to inject, after which the job's restartPolicy decides what happens."""
        ...
