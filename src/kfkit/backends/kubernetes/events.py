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

# Above this many objects, one namespace-wide list is cheaper than a request per object.
MAX_SELECTED_REQUESTS = 8


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
    wanted = list(objects)
    # One request per object, or for many objects one for the namespace, filtered here.
    selectors: list[str | None] = [
        f"involvedObject.kind={kind},involvedObject.name={name}" for kind, name in wanted
    ]
    if len(wanted) > MAX_SELECTED_REQUESTS:
        selectors = [None]
    items: list[dict[str, Any]] = []
    for selector in selectors:
        try:
            with api_errors(connection, f"list events in namespace {namespace}"):
                body = read_json(
                    core.list_namespaced_event(
                        namespace,
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                        **({"field_selector": selector} if selector else {}),
                    )
                )
        except ForbiddenError:
            return []
        items += body.get("items") or []
    keys = set(wanted)
    events = [
        as_record_event(item)
        for item in items
        if (
            (item.get("involvedObject") or {}).get("kind"),
            (item.get("involvedObject") or {}).get("name"),
        )
        in keys
    ]
    return sorted(events, key=lambda e: e["time"])
