"""The pod a Notebook becomes, as the notebook controller (v1.10) and its StatefulSet build it.

PodDefaults select pods by label and honour the pod's exclude annotation, so
what matters is the pod the cluster creates, not the Notebook as written. The
controller makes a StatefulSet whose pod template has:

- labels ``statefulset`` and ``notebook-name`` (the Notebook's name), then every
  label of the Notebook, which win over those two;
- every annotation of the Notebook whose key contains neither ``kubectl`` nor
  ``notebook``;
- the Notebook's ``spec.template.spec``, its template metadata ignored; on the
  first container ``workingDir: /home/jovyan`` when it has none, port 8888 named
  ``notebook-port`` when it declares no ports, and ``NB_PREFIX`` set to
  ``/notebook/<namespace>/<name>`` unless the container already has an
  ``NB_PREFIX`` (upstream keeps that one as it is);
- ``securityContext: {fsGroup: 100}`` when the pod spec has no securityContext
  (the controller's default, ``ADD_FSGROUP`` unset).

The StatefulSet controller names the pod ``<name>-0`` (also its ``hostname``) and adds the labels
``statefulset.kubernetes.io/pod-name`` and ``apps.kubernetes.io/pod-index``
(and ``controller-revision-hash``, whose value only the cluster knows).
"""

from __future__ import annotations

import copy
from typing import Any

from kfkit.errors import KfkitError

DEFAULT_WORKING_DIR = "/home/jovyan"
DEFAULT_PORT = {"containerPort": 8888, "name": "notebook-port", "protocol": "TCP"}
DEFAULT_FS_GROUP = 100
PREFIX_ENV = "NB_PREFIX"

Object = dict[str, Any]


def notebook_pod(notebook: Object, source: str = "<notebook>") -> Object:
    """The Pod the cluster creates for ``notebook`` (before admission webhooks)."""
    metadata = notebook.get("metadata") or {}
    name = str(metadata.get("name") or "")
    namespace = str(metadata.get("namespace") or "default")
    spec = copy.deepcopy(((notebook.get("spec") or {}).get("template") or {}).get("spec") or {})
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        raise KfkitError(f"{source}: spec.template.spec.containers: at least one is required")
    labels = {"statefulset": name, "notebook-name": name}
    labels.update({str(k): str(v) for k, v in (metadata.get("labels") or {}).items()})
    labels["statefulset.kubernetes.io/pod-name"] = f"{name}-0"
    labels["apps.kubernetes.io/pod-index"] = "0"
    annotations = {
        str(k): v
        for k, v in (metadata.get("annotations") or {}).items()
        if "kubectl" not in str(k) and "notebook" not in str(k)
    }
    container = containers[0]
    if not container.get("workingDir"):
        container["workingDir"] = DEFAULT_WORKING_DIR
    if container.get("ports") is None:
        container["ports"] = [dict(DEFAULT_PORT)]
    env: list[Any] = container["env"] if isinstance(container.get("env"), list) else []
    if not any(isinstance(v, dict) and v.get("name") == PREFIX_ENV for v in env):
        container["env"] = [*env, {"name": PREFIX_ENV, "value": f"/notebook/{namespace}/{name}"}]
    if spec.get("securityContext") is None:
        spec["securityContext"] = {"fsGroup": DEFAULT_FS_GROUP}
    spec["hostname"] = f"{name}-0"  # the StatefulSet controller's pod identity
    pod_metadata: Object = {"name": f"{name}-0", "namespace": namespace, "labels": labels}
    if annotations:
        pod_metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_metadata, "spec": spec}


def pod_of(document: Any, source: str = "<input>") -> tuple[Object, str | None]:
    """The pod (or pod template) inside a manifest, and the namespace it would run in.

    A Pod is itself; a Notebook is the pod its controller builds; any other
    workload with ``spec.template`` runs its template's pod.
    """
    if not isinstance(document, dict):
        raise KfkitError(f"{source}: not a Kubernetes object")
    kind = document.get("kind")
    namespace = (document.get("metadata") or {}).get("namespace")
    if kind == "Pod":
        return document, namespace
    if kind == "Notebook":
        return notebook_pod(document, source), namespace
    template = (document.get("spec") or {}).get("template")
    if isinstance(template, dict):
        return copy.deepcopy(template), namespace
    if kind is None and "containers" in (document.get("spec") or {}):
        return document, namespace
    raise KfkitError(f"{source}: kind {kind!r}: expected a Pod or an object with spec.template")
