"""The kubernetes backend's apiserver tier: a real kube-apiserver + etcd, a stand-in operator.

What is real here: kube-apiserver 1.20 and etcd (``kfkit.platform.apiserver``),
the upstream CRDs (``../shared/crds``, loaded at run time, never copied), RBAC,
server-side apply, watches, resourceVersions, 410 Gone, status subresources,
Events and pod objects.

What is not: no training operator, kubelet, scheduler or controller-manager
runs. :class:`FakeOperator` does through the real API only what the operator
would write (``.status`` conditions and replicaStatuses, labelled replica pods,
services, Events); its pods are stored but never start. So whether the real
operator writes those conditions in that order, and whether its pods really
run the training, is not tested here: ``make e2e-cluster`` (mk/e2e.mk) checks
that on a real cluster. Log streaming is exercised through the real API
server's log endpoint against :class:`FakeKubelet`, a small HTTPS server that
answers the kubelet's ``/containerLogs`` path; a real kubelet never runs here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import itertools
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from kfkit.backends.kubernetes import KubernetesBackend
from kfkit.backends.kubernetes.resources import (
    JOB_NAME_LABEL,
    JOB_RESOURCES,
    NOTEBOOKS,
    OPERATOR_NAME_LABEL,
    PODDEFAULTS,
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
    Resource,
)
from kfkit.backends.kubernetes.watch import ListWatch
from kfkit.jobs.model import KINDS

REPO = Path(__file__).resolve().parents[2]
UPSTREAM_CRDS = REPO.parent / "shared" / "crds"
CRD_FILES = {
    "PyTorchJob": "kubeflow.org_pytorchjobs.yaml",
    "TFJob": "kubeflow.org_tfjobs.yaml",
    "Notebook": "kubeflow.org_notebooks.yaml",
    "PodDefault": "kubeflow.org_poddefaults.yaml",
}
RESOURCES: dict[str, Resource] = {**JOB_RESOURCES, "Notebook": NOTEBOOKS, "PodDefault": PODDEFAULTS}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- CRDs -------------------------------------------------------------------------------------


def strip_keys(node: Any, key: str) -> Any:
    """``node`` without ``key`` at any depth (kube-apiserver 1.20 predates CEL rules)."""
    if isinstance(node, dict):
        return {k: strip_keys(v, key) for k, v in node.items() if k != key}
    if isinstance(node, list):
        return [strip_keys(item, key) for item in node]
    return node


def load_crd(kind: str) -> dict[str, Any]:
    """The upstream CRD of ``kind`` as a 1.20 API server accepts it."""
    crd = yaml.load((UPSTREAM_CRDS / CRD_FILES[kind]).read_text(), Loader=yaml.CSafeLoader)
    crd = strip_keys(crd, "x-kubernetes-validations")
    crd.pop("status", None)
    return dict(crd)


# --- the stand-in operator ---------------------------------------------------------------------


class FakeOperator:
    """Writes what the training operator writes, through the real API; runs nothing."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self._names = itertools.count()

    def job(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        r = RESOURCES[kind]
        return dict(
            self.custom.get_namespaced_custom_object(r.group, r.version, namespace, r.plural, name)
        )

    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """A merge patch of ``.status`` through the status subresource."""
        r = RESOURCES[kind]
        self.custom.patch_namespaced_custom_object_status(
            r.group, r.version, namespace, r.plural, name, {"status": status}
        )

    def set_condition(
        self,
        kind: str,
        namespace: str,
        name: str,
        condition_type: str,
        reason: str = "",
        message: str = "",
        replica_statuses: dict[str, dict[str, int]] | None = None,
    ) -> None:
        """Add a True condition the way the operator does, turning Running off at the end."""
        status = self.job(kind, namespace, name).get("status") or {}
        conditions = [c for c in status.get("conditions") or [] if c["type"] != condition_type]
        turned_off = {"Running": ["Restarting"], "Restarting": ["Running"]}.get(condition_type, [])
        if condition_type in ("Succeeded", "Failed"):
            turned_off = ["Running"]
        for condition in conditions:
            if condition["type"] in turned_off:
                condition["status"] = "False"
        stamp = now()
        conditions.append(
            {
                "type": condition_type,
                "status": "True",
                "reason": reason or f"{kind}{condition_type}",
                "message": message or f"{kind} {name} is {condition_type.lower()}.",
                "lastUpdateTime": stamp,
                "lastTransitionTime": stamp,
            }
        )
        new_status: dict[str, Any] = {"conditions": conditions}
        new_status["replicaStatuses"] = replica_statuses or status.get("replicaStatuses") or {}
        if condition_type == "Created":
            new_status["startTime"] = stamp
        if condition_type in ("Succeeded", "Failed"):
            new_status["completionTime"] = stamp
        self.patch_status(kind, namespace, name, new_status)

    def labels(self, kind: str, name: str, replica_type: str, index: int) -> dict[str, str]:
        labels = {
            OPERATOR_NAME_LABEL: f"{kind.lower()}-controller",
            JOB_NAME_LABEL: name,
            REPLICA_TYPE_LABEL: replica_type.lower(),
            REPLICA_INDEX_LABEL: str(index),
        }
        if replica_type in ("Master", "Chief"):
            labels["training.kubeflow.org/job-role"] = "master"
        return labels

    def create_replicas(
        self, kind: str, namespace: str, name: str, node: str | None = None
    ) -> list[str]:
        """One pod and one service per replica, labelled and owned as the operator does."""
        job = self.job(kind, namespace, name)
        owner = {
            "apiVersion": job["apiVersion"],
            "kind": kind,
            "name": name,
            "uid": job["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        pods = []
        for replica_type, spec in job["spec"][KINDS[kind].replica_specs_key].items():
            for index in range(int(spec.get("replicas", 1))):
                pod_name = f"{name}-{replica_type.lower()}-{index}"
                labels = self.labels(kind, name, replica_type, index)
                template = spec["template"]
                pod_spec = dict(template["spec"])
                policy = spec.get("restartPolicy", "Never")
                pod_spec["restartPolicy"] = "Never" if policy == "ExitCode" else policy
                if node:
                    pod_spec["nodeName"] = node
                metadata = dict(template.get("metadata") or {})
                metadata.update(
                    name=pod_name,
                    labels={**(metadata.get("labels") or {}), **labels},
                    ownerReferences=[owner],
                )
                self.core.create_namespaced_pod(
                    namespace,
                    {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec},
                )
                self.core.create_namespaced_service(
                    namespace,
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {
                            "name": pod_name,
                            "labels": labels,
                            "ownerReferences": [owner],
                        },
                        "spec": {
                            "clusterIP": "None",
                            "selector": labels,
                            "ports": [
                                {"name": KINDS[kind].port_name, "port": KINDS[kind].default_port}
                            ],
                        },
                    },
                )
                pods.append(pod_name)
        return pods

    def set_pod_phase(
        self, namespace: str, pod: str, phase: str, container: str, **state: Any
    ) -> None:
        """What the kubelet reports: the pod's phase and its container's state."""
        container_state = state or {"running": {"startedAt": now()}}
        self.core.patch_namespaced_pod_status(
            pod,
            namespace,
            {
                "status": {
                    "phase": phase,
                    "containerStatuses": [
                        {
                            "name": container,
                            "image": "kfkit/test:1",
                            "imageID": "",
                            "ready": phase == "Running",
                            "restartCount": 0,
                            "state": container_state,
                        }
                    ],
                }
            },
        )

    def event(
        self, namespace: str, kind: str, name: str, event_type: str, reason: str, message: str
    ) -> None:
        stamp = now()
        self.core.create_namespaced_event(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{name}.{next(self._names)}.{time.monotonic_ns()}"},
                "involvedObject": {"kind": kind, "name": name, "namespace": namespace},
                "type": event_type,
                "reason": reason,
                "message": message,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "source": {"component": f"{kind.lower()}-controller"},
            },
        )

    def later(self, delay: float, *steps: Any) -> threading.Thread:
        """Run ``(method, args...)`` steps after ``delay`` seconds, in a thread."""

        def run() -> None:
            time.sleep(delay)
            for method, *args in steps:
                method(*args)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


# --- a stand-in kubelet for the log endpoint ----------------------------------------------------


class FakeKubelet:
    """An HTTPS server answering ``/containerLogs/<ns>/<pod>/<container>`` as a kubelet does.

    The API server proxies ``pods/log`` requests to the node's kubelet; this
    one serves ``logs[(namespace, pod)]``, and with ``follow=true`` writes one
    line every ``interval`` seconds before closing, as a container that exits.
    """

    def __init__(self, workdir: Path) -> None:
        self.logs: dict[tuple[str, str], list[str]] = {}
        self.requests: list[str] = []
        self.interval = 0.05
        cert, key = workdir / "kubelet.crt", workdir / "kubelet.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=fake-kubelet", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        kubelet = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                kubelet.requests.append(self.path)
                parts = url.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self.send_error(404)
                    return
                lines = kubelet.logs.get((parts[1], parts[2]))
                if lines is None:
                    self.send_error(404)
                    return
                follow = parse_qs(url.query).get("follow") == ["true"]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                for line in lines:
                    self.wfile.write(f"{line}\n".encode())
                    self.wfile.flush()
                    if follow:
                        time.sleep(kubelet.interval)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def register_node(self, core: client.CoreV1Api, name: str) -> None:
        """A Node whose kubelet endpoint is this server on loopback."""
        core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        core.patch_node_status(
            name,
            {
                "status": {
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                }
            },
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- a TCP proxy whose connections can be cut ---------------------------------------------------


class CuttableProxy:
    """Forwards loopback TCP connections to the API server; ``cut()`` breaks them all.

    Cutting the connections under a running watch is what a network blip or an
    API server restart does to a client; ``close()`` also stops accepting new
    ones, as a server that went away.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.cuts = 0
        self.closed = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            if self.closed:
                downstream.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self.sockets += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Break every open connection (both directions)."""
        with self._lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.cuts += len(sockets) // 2

    def close(self) -> None:
        """Refuse new connections from now on, and break the open ones."""
        self.closed = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.listener.close()
        self.cut()

    def kubeconfig(self, original: Path, directory: Path) -> Path:
        """A copy of ``original`` that goes through this proxy."""
        config = yaml.safe_load(original.read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        path = directory / "kubeconfig-through-proxy"
        path.write_text(yaml.safe_dump(config))
        return path


# --- the session's cluster ------------------------------------------------------------------------


class Cluster:
    """The session's API server, its CRDs, and handles for the admin and the limited user."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.admin = config.new_client_from_config(str(server.kubeconfig), persist_config=False)
        self.operator = FakeOperator(self.admin)
        self.extensions = client.ApiextensionsV1Api(self.admin)
        self.core = client.CoreV1Api(self.admin)
        self.rbac = client.RbacAuthorizationV1Api(self.admin)
        self._namespaces = itertools.count()
        self.kubelet: FakeKubelet | None = None

    def backend(self, kubeconfig: Path | None = None, **tuning: Any) -> KubernetesBackend:
        backend = KubernetesBackend(kubeconfig=str(kubeconfig or self.server.kubeconfig))
        for key, value in tuning.items():
            setattr(backend, key, value)
        return backend

    def install_crd(self, kind: str) -> None:
        """Create the CRD and wait (watching) until the API server serves it."""
        crd = load_crd(kind)
        with contextlib.suppress(ApiException):
            self.extensions.create_custom_resource_definition(crd, _preload_content=False)
        backend = self.backend()
        watcher: ListWatch[bool] = ListWatch(
            backend.connection,
            self.extensions.list_custom_resource_definition,
            what=f"CRD {crd['metadata']['name']}",
            field_selector=f"metadata.name={crd['metadata']['name']}",
        )

        def established(objects: dict[str, dict[str, Any]]) -> bool | None:
            for obj in objects.values():
                for condition in (obj.get("status") or {}).get("conditions") or []:
                    if condition["type"] == "Established" and condition["status"] == "True":
                        return True
            return None

        watcher.until(established, timeout=60)
        # Discovery lags establishment by a moment; wait until it lists the resource.
        resource = RESOURCES[kind]
        deadline = time.monotonic() + 30
        while not backend.checks.served(resource):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{resource.crd_name} not in discovery after 30s")
            backend = self.backend()
            time.sleep(0.2)

    def remove_crd(self, kind: str) -> None:
        """Delete the CRD and wait until discovery no longer lists it."""
        resource = RESOURCES[kind]
        self.extensions.delete_custom_resource_definition(resource.crd_name)
        deadline = time.monotonic() + 60
        while self.backend().checks.served(resource):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{resource.crd_name} still served after 60s")
            time.sleep(0.2)

    def namespace(self, prefix: str = "t") -> str:
        name = f"{prefix}-{next(self._namespaces)}"
        self.core.create_namespace(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
        return name

    def grant(self, user: str, namespace: str, rules: list[dict[str, Any]]) -> None:
        """Bind a Role with ``rules`` to ``user`` in ``namespace``."""
        name = f"grant-{user}"
        self.rbac.create_namespaced_role(
            namespace,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name},
                "rules": rules,
            },
        )
        self.rbac.create_namespaced_role_binding(
            namespace,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )

    def fake_kubelet(self, node: str = "fake-node") -> FakeKubelet:
        if self.kubelet is None:
            self.kubelet = FakeKubelet(Path(self.server.workdir))
            self.kubelet.register_node(self.core, node)
        return self.kubelet


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """One API server for the whole session, with the four upstream CRDs installed."""
    from kfkit.platform.apiserver import LocalApiServer, apiserver_missing_reason

    reason = apiserver_missing_reason()
    if reason:
        pytest.skip(f"apiserver tier: {reason}")
    if not UPSTREAM_CRDS.is_dir():
        pytest.skip(f"apiserver tier: the upstream CRDs are not at {UPSTREAM_CRDS}")
    with LocalApiServer() as server:
        cluster = Cluster(server)
        for kind in CRD_FILES:
            cluster.install_crd(kind)
        try:
            yield cluster
        finally:
            if cluster.kubelet is not None:
                cluster.kubelet.close()


@pytest.fixture
def namespace(cluster: Cluster) -> str:
    """A fresh namespace per test (never deleted: no namespace controller runs here)."""
    return cluster.namespace()
