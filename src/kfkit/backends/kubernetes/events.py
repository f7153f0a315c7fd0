"""The Events of a job and of its pods, in the shape ``JobRecord.events`` uses.

When a job fails on a cluster the reason is usually in an Event (image pull
errors, unschedulable pods, the operator's ``JobFailed`` / ``ExitedWithCode``)
rather than in the job's conditions, so describe and failed waits show them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubernetes import client

from kfkit.backends.kubernetes.connection import (
    REQUEST_TIMEOUT,
    Connection,
    ForbiddenError,
    api_errors,
    read_json,
)


def event_time(event: dict[str, Any]) -> str:
    """The most recent time an event was seen (events.k8s.io fields first)."""
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        if event.get(key):
            return str(event[key])
    return str(event.get("metadata", {}).get("creationTimestamp") or "")


def as_record_event(event: dict[str, Any]) -> dict[str, Any]:
    """An API Event as a ``JobRecord.events`` entry."""
    involved = event.get("involvedObject") or {}
    return {
        "time": event_time(event),
        "type": event.get("type") or "",
        "reason": event.get("reason") or "",
        "message": (event.get("message") or "").strip(),
        "object": f"{involved.get('kind', '')}/{involved.get('name', '')}",
        "count": int(event.get("count") or 1),
    }


def list_events(
    connection: Connection, namespace: str, objects: Iterable[tuple[str, str]]
) -> list[dict[str, Any]]:
    """The events of each ``(kind, name)`` object, oldest first.

    Events are context, not the answer: when the user may not list them
    (RBAC), the record simply has none rather than the command failing.
    """
    core = client.CoreV1Api(connection.api)
    events: list[dict[str, Any]] = []
    for kind, name in objects:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        try:
            with api_errors(connection, f"list events of {kind} {namespace}/{name}"):
                body = read_json(
                    core.list_namespaced_event(
                        namespace,
                        field_selector=selector,
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                )
        except ForbiddenError:
            return []
        events += [as_record_event(item) for item in body.get("items") or []]
    return sorted(events, key=lambda e: e["time"])
