"""Custom objects on the cluster: server-side apply, get, list, delete, watch.

``apply`` is a server-side apply (PATCH with ``application/apply-patch+yaml``,
field manager ``kfkit``): the API server merges the manifest, records kfkit as
the owner of every field in it, and creates the object when it does not exist.
``force`` takes over fields another manager (``kubectl edit``, a controller)
set earlier: kfkit's manifest is the source of truth for the fields it sends,
and the operator's own writes go to ``.status``, which apply never touches.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from kfkit.backends.kubernetes.connection import (
    FIELD_MANAGER,
    REQUEST_TIMEOUT,
    Connection,
    api_errors,
    discard,
    read_json,
)
from kfkit.backends.kubernetes.resources import INSTALL_HINT, Resource
from kfkit.backends.kubernetes.watch import WATCH_SECONDS, ListWatch
from kfkit.errors import KfkitError

# metadata the server owns; sending it back in an apply is an error or a stale write.
SERVER_METADATA = (
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


class CrdMissingError(KfkitError):
    """The cluster does not serve the resource: its CRD is not installed."""


def crd_missing(resource: Resource, connection: Connection) -> CrdMissingError:
    return CrdMissingError(
        f"{resource.kind} CRD not installed on {connection.describe()} "
        f"({resource.crd_name}, {resource.api_version}): {INSTALL_HINT}"
    )


def apply_body(manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
    """What to send in a server-side apply: the manifest without status or server metadata."""
    body = copy.deepcopy(manifest)
    body.pop("status", None)
    metadata = body.setdefault("metadata", {})
    for key in SERVER_METADATA:
        metadata.pop(key, None)
    metadata["namespace"] = namespace
    return body


def without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as users want to read it (managedFields are bookkeeping)."""
    obj = dict(obj)
    obj["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return obj


class CustomObjects:
    """One custom resource of one cluster."""

    def __init__(self, connection: Connection, resource: Resource) -> None:
        self.connection = connection
        self.resource = resource
        self.api = client.CustomObjectsApi(connection.api)
        self.apply_api = client.CustomObjectsApi(connection.apply_api)

    def _where(self, verb: str, name: str, namespace: str | None) -> str:
        if name:
            return f"{verb} {self.resource.kind} {namespace}/{name}"
        scope = f"in namespace {namespace}" if namespace else "in all namespaces"
        return f"{verb} {self.resource.kind} {scope}"

    def _args(self, namespace: str) -> tuple[str, str, str, str]:
        r = self.resource
        return (r.group, r.version, namespace, r.plural)

    def _not_served(self, error: ApiException) -> bool:
        """A 404 that means the resource type itself is unknown, not a missing object."""
        if error.status != 404:
            return False
        try:
            details = json.loads(error.body or "{}").get("details") or {}
        except (ValueError, AttributeError):
            details = {}
        return "name" not in details

    def apply(self, manifest: dict[str, Any], namespace: str, force: bool = True) -> dict[str, Any]:
        body = apply_body(manifest, namespace)
        name = str(body["metadata"]["name"])
        with api_errors(self.connection, self._where("apply", name, namespace)):
            try:
                response = self.apply_api.patch_namespaced_custom_object(
                    *self._args(namespace),
                    name,
                    body,
                    field_manager=FIELD_MANAGER,
                    force=force,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            except ApiException as error:
                if self._not_served(error):
                    raise crd_missing(self.resource, self.connection) from None
                raise
            return dict(read_json(response))

    def get(self, name: str, namespace: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        with api_errors(self.connection, self._where("get", name, namespace)):
            try:
                response = self.api.get_namespaced_custom_object(
                    *self._args(namespace),
                    name,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            except ApiException as error:
                if error.status != 404:
                    raise
                if self._not_served(error):
                    raise crd_missing(self.resource, self.connection) from None
                return None
            return dict(read_json(response))

    def list(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every object in ``namespace`` (all namespaces when None)."""
        r = self.resource
        with api_errors(self.connection, self._where("list", "", namespace)):
            try:
                if namespace is None:
                    response = self.api.list_cluster_custom_object(
                        r.group,
                        r.version,
                        r.plural,
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                else:
                    response = self.api.list_namespaced_custom_object(
                        *self._args(namespace),
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
            except ApiException as error:
                if error.status == 404:
                    raise crd_missing(self.resource, self.connection) from None
                raise
            return list(read_json(response).get("items") or [])

    def delete(self, name: str, namespace: str) -> bool:
        """Delete the object (its dependents in the background); False if it did not exist."""
        with api_errors(self.connection, self._where("delete", name, namespace)):
            try:
                discard(
                    self.api.delete_namespaced_custom_object(
                        *self._args(namespace),
                        name,
                        propagation_policy="Background",
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                )
            except ApiException as error:
                if error.status != 404:
                    raise
                if self._not_served(error):
                    raise crd_missing(self.resource, self.connection) from None
                return False
        return True

    def watcher(
        self, name: str, namespace: str, what: str, watch_seconds: int = WATCH_SECONDS
    ) -> ListWatch[Any]:
        """A list+watch of this one object (``metadata.name`` field selector)."""
        return ListWatch(
            self.connection,
            self.api.list_namespaced_custom_object,
            *self._args(namespace),
            what=what,
            field_selector=f"metadata.name={name}",
            watch_seconds=watch_seconds,
        )
