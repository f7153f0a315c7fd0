"""Notebooks and PodDefaults on a cluster: apply, wait until ready, list, delete.

The notebook controller turns a Notebook into a StatefulSet whose pod is
``<name>-0`` and reports ``.status.readyReplicas`` (plus the pod's container
state and conditions); a Notebook is ready once one replica is. PodDefaults
are plain configuration that Kubeflow's admission webhook reads when a pod is
created, so applying one changes only pods created afterwards.
"""

from __future__ import annotations

from typing import Any

from kfkit.backends.kubernetes.connection import Connection, with_source
from kfkit.backends.kubernetes.events import list_events
from kfkit.backends.kubernetes.objects import CustomObjects
from kfkit.backends.kubernetes.preflight import Preflight
from kfkit.backends.kubernetes.resources import NOTEBOOKS, PODDEFAULTS, Resource
from kfkit.backends.kubernetes.watch import WATCH_SECONDS, WaitTimeout
from kfkit.errors import KfkitError, NotFoundError, ValidationError
from kfkit.poddefaults import validate_poddefault


def _check_manifest(manifest: dict[str, Any], resource: Resource, source: str) -> None:
    """The checks every object needs before it is sent; the API server validates the rest."""
    problems = []
    if manifest.get("apiVersion") != resource.api_version:
        problems.append(
            f"{source}: apiVersion: must be {resource.api_version}, got "
            f"{manifest.get('apiVersion')!r}"
        )
    if manifest.get("kind") != resource.kind:
        problems.append(f"{source}: kind: must be {resource.kind}, got {manifest.get('kind')!r}")
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        problems.append(f"{source}: metadata.name: required")
    if resource is PODDEFAULTS:
        problems += [f"{source}: {p}" for p in validate_poddefault(manifest) if p not in problems]
    if resource is NOTEBOOKS:
        containers = (((manifest.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        )
        if not isinstance(containers, list) or not containers:
            problems.append(f"{source}: spec.template.spec.containers: at least one is required")
    if problems:
        raise ValidationError(sorted(set(problems), key=problems.index))


def notebook_ready(notebook: dict[str, Any]) -> bool:
    return int((notebook.get("status") or {}).get("readyReplicas") or 0) >= 1


def notebook_waiting_reason(notebook: dict[str, Any]) -> str:
    """What the notebook's container waits for, from the status the controller copies."""
    status = notebook.get("status") or {}
    state = status.get("containerState") or {}
    waiting = state.get("waiting") or {}
    if waiting:
        return str(waiting.get("reason") or "waiting")
    if state.get("terminated"):
        return f"terminated: {state['terminated'].get('reason') or 'exited'}"
    return "no ready replica"


class ClusterNotebooks:
    """Notebooks and PodDefaults of one cluster, with the same preflight as jobs."""

    def __init__(
        self, connection: Connection, checks: Preflight, watch_seconds: int = WATCH_SECONDS
    ) -> None:
        self.connection = connection
        self.checks = checks
        self.watch_seconds = watch_seconds

    def _apply(
        self, resource: Resource, manifest: dict[str, Any], namespace: str | None, source: str
    ) -> dict[str, Any]:
        _check_manifest(manifest, resource, source)
        target = namespace or (manifest.get("metadata") or {}).get("namespace") or "default"
        try:
            self.checks.check(resource, target)
            return CustomObjects(self.connection, resource).apply(manifest, target)
        except KfkitError as error:
            raise with_source(error, source) from None

    def create_notebook(
        self, manifest: dict[str, Any], namespace: str | None = None, source: str = "<notebook>"
    ) -> dict[str, Any]:
        """Apply a Notebook (creating or updating it); return the stored object."""
        return self._apply(NOTEBOOKS, manifest, namespace, source)

    def apply_poddefault(
        self, manifest: dict[str, Any], namespace: str | None = None, source: str = "<poddefault>"
    ) -> dict[str, Any]:
        """Apply a PodDefault; pods created from now on in its namespace get its settings."""
        return self._apply(PODDEFAULTS, manifest, namespace, source)

    def get_notebook(self, name: str, namespace: str) -> dict[str, Any]:
        notebook = CustomObjects(self.connection, NOTEBOOKS).get(name, namespace)
        if notebook is None:
            raise NotFoundError(f"Notebook {namespace}/{name} not found")
        return notebook

    def list_poddefaults(self, namespace: str) -> list[dict[str, Any]]:
        return CustomObjects(self.connection, PODDEFAULTS).list(namespace)

    def wait_notebook_ready(
        self, name: str, namespace: str, timeout: float = 300.0
    ) -> dict[str, Any]:
        """Watch the Notebook until a replica is ready; on timeout say what it waits for."""
        objects = CustomObjects(self.connection, NOTEBOOKS)
        watcher = objects.watcher(
            name,
            namespace,
            what=f"waiting for Notebook {namespace}/{name}",
            watch_seconds=self.watch_seconds,
        )
        seen: dict[str, Any] = {}

        def ready(found: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
            notebook = found.get(name)
            if notebook is None:
                gone = "was deleted while waiting" if seen else "not found"
                raise NotFoundError(f"Notebook {namespace}/{name} {gone}")
            seen["last"] = notebook
            return notebook if notebook_ready(notebook) else None

        try:
            return watcher.until(ready, timeout)
        except WaitTimeout:
            why = notebook_waiting_reason(seen.get("last") or {})
            events = list_events(
                self.connection, namespace, [("Notebook", name), ("Pod", f"{name}-0")]
            )
            last = (
                f"; last event: {events[-1]['reason']}: {events[-1]['message']}" if events else ""
            )
            raise WaitTimeout(
                f"Notebook {namespace}/{name} not ready after {timeout:.0f}s ({why}){last}"
            ) from None

    def delete_notebook(self, name: str, namespace: str) -> bool:
        return CustomObjects(self.connection, NOTEBOOKS).delete(name, namespace)

    def delete_poddefault(self, name: str, namespace: str) -> bool:
        return CustomObjects(self.connection, PODDEFAULTS).delete(name, namespace)
