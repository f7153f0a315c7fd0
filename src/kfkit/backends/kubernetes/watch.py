"""Waiting on the API server: list once, then watch from that resourceVersion.

:class:`ListWatch` keeps a local copy of the objects a list call selects (one
job by ``metadata.name``, one replica's pods by label) and hands it to a
predicate after the first list and after every change, until the predicate
returns a result or the deadline passes. It never polls:

- each watch request asks the server to end it after ``watch_seconds``
  (``timeout_seconds``), and the client stops reading a silent connection a
  little later, so a dead connection cannot hang a wait;
- when a watch ends, or its connection drops, the next one resumes from the
  last resourceVersion seen (bookmarks included), so no change is missed and
  none is replayed; a server that stays unreachable through several retries
  is reported as such;
- when the server answers 410 Gone (the resourceVersion is older than what it
  keeps, e.g. after etcd was compacted), the copy is rebuilt from a fresh list
  and watching goes on from that list's resourceVersion.

``reconnects`` counts watch requests that ended and were resumed, ``dropped``
those whose connection broke or could not be made (retried after a pause),
``relists`` the recoveries from 410 Gone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import urllib3
from kubernetes import watch
from kubernetes.client.rest import ApiException

from kfkit.backends.kubernetes.connection import Connection, api_errors
from kfkit.errors import WaitTimeoutError

T = TypeVar("T")
HTTP_GONE = 410
WATCH_SECONDS = 60
# How long after the server's own watch timeout the client stops waiting for bytes.
READ_GRACE_SECONDS = 15

# Pauses before retrying a watch whose connection dropped or failed, consecutive failures.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)

Objects = dict[str, dict[str, Any]]


class WaitTimeout(WaitTimeoutError):
    """The condition was not reached before the deadline."""


class ListWatch(Generic[T]):
    """Follow the objects that ``list_fn(*args, <selectors>)`` selects."""

    def __init__(
        self,
        connection: Connection,
        list_fn: Callable[..., Any],
        *args: Any,
        what: str,
        field_selector: str | None = None,
        label_selector: str | None = None,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self.connection = connection
        self.list_fn = list_fn
        self.args = args
        self.what = what
        self.selectors: dict[str, str] = {}
        if field_selector:
            self.selectors["field_selector"] = field_selector
        if label_selector:
            self.selectors["label_selector"] = label_selector
        self.watch_seconds = watch_seconds
        self.retry_delays: tuple[float, ...] = RETRY_DELAYS
        self.objects: Objects = {}
        self.resource_version: str | None = None
        self.relists = 0
        self.reconnects = 0
        self.dropped = 0
        self.failures = 0

    def list(self) -> Objects:
        """Replace the local copy with a fresh list and remember its resourceVersion."""
        with api_errors(self.connection, self.what):
            response = self.list_fn(*self.args, **self.selectors, _preload_content=False)
            try:
                body = json.loads(response.data)
            finally:
                response.release_conn()
        self.objects = {item["metadata"]["name"]: item for item in body.get("items") or []}
        self.resource_version = str(body["metadata"]["resourceVersion"])
        return self.objects

    def until(
        self,
        done: Callable[[Objects], T | None],
        timeout: float,
        on_change: Callable[[Objects], None] | None = None,
        resource_version: str | None = None,
    ) -> T:
        """Return ``done(objects)`` once it is not None; ``WaitTimeout`` after ``timeout`` s.

        Without ``resource_version`` the objects are listed first and ``done``
        sees them at once. With it, the first watch starts there, as a caller
        holding an older copy would do; a version the server no longer keeps is
        recovered from like any other 410 Gone.
        """
        deadline = time.monotonic() + timeout
        if resource_version is None:
            self.list()
            result = self._check(done, on_change)
            if result is not None:
                return result
        else:
            self.resource_version = resource_version
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"{self.what}: timed out after {timeout:.0f}s")
            seconds = max(1, int(min(self.watch_seconds, remaining)))
            for _ in self._changes(seconds, deadline):
                result = self._check(done, on_change)
                if result is not None:
                    return result

    def _check(
        self, done: Callable[[Objects], T | None], on_change: Callable[[Objects], None] | None
    ) -> T | None:
        if on_change is not None:
            on_change(self.objects)
        return done(self.objects)

    def _changes(self, seconds: int, deadline: float) -> Iterator[None]:
        """Run one watch request, yielding after each change to the local copy.

        A connection that drops or cannot be made is retried after a growing
        pause (``retry_delays``), within the deadline; only when that many
        attempts in a row have failed is the server reported unreachable.
        """
        gone = False
        with api_errors(self.connection, self.what):
            try:
                for event in watch.Watch(return_type="object").stream(
                    self.list_fn,
                    *self.args,
                    **self.selectors,
                    resource_version=self.resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=seconds,
                    _request_timeout=(10.0, seconds + READ_GRACE_SECONDS),
                ):
                    self.failures = 0
                    if self._apply(event["type"], event["raw_object"]):
                        yield
                self.failures = 0
            except ApiException as error:
                if error.status != HTTP_GONE:
                    raise
                gone = True
            except (urllib3.exceptions.HTTPError, ConnectionError):
                if self.failures >= len(self.retry_delays):
                    raise
                pause = self.retry_delays[self.failures]
                self.failures += 1
                self.dropped += 1
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
        if gone:
            self.relists += 1
            self.list()
            yield
            return
        self.reconnects += 1

    def _apply(self, kind: str, obj: dict[str, Any]) -> bool:
        """Apply one watch event to the local copy; False for bookmarks."""
        metadata = obj.get("metadata") or {}
        if metadata.get("resourceVersion"):
            self.resource_version = str(metadata["resourceVersion"])
        if kind == "BOOKMARK":
            return False
        if kind == "DELETED":
            self.objects.pop(metadata["name"], None)
        else:
            self.objects[metadata["name"]] = obj
        return True
