"""In-cluster configuration against the real API server, from a pod's point of view.

A pod finds its API server in ``KUBERNETES_SERVICE_HOST``/``PORT`` and its
credentials in the service account files under
``/var/run/secrets/kubernetes.io/serviceaccount``. Here those files are written
to a temporary directory (the client's and kfkit's paths to them are pointed
there) holding the admin token and the server's CA; the process is not really
in a pod, so what a real pod's service account may do is not tested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.config import incluster_config

from kfkit.backends.kubernetes import KubernetesBackend, connection
from kfkit.platform.apiserver import ADMIN_USER

from .test_k8s_jobs import make_job

pytestmark = pytest.mark.apiserver


def test_a_pod_uses_its_service_account_and_namespace(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = cluster.namespace("pod")
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(cluster.server.token_for(ADMIN_USER))
    (account / "ca.crt").write_bytes(Path(cluster.server.ca_file).read_bytes())
    (account / "namespace").write_text(namespace)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(account / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(account / "ca.crt"))
    monkeypatch.setattr(connection, "IN_CLUSTER_NAMESPACE_FILE", account / "namespace")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(cluster.server.port))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig-here"))

    backend = KubernetesBackend()
    assert backend.connection.context is None
    assert backend.connection.host == cluster.server.url
    assert backend.default_namespace == namespace
    backend.submit(make_job("from-a-pod", namespace))
    assert [r.job.name for r in backend.list(namespace)] == ["from-a-pod"]
