"""Preflight on a real kube-apiserver: missing CRD, RBAC (a limited identity), missing namespace.

Each check must stop ``submit`` before anything is created, with one line that
says what to do. The limited user is authenticated but has no RBAC grants
until a test binds a Role to it, as a data scientist's account on a cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfkit.backends.kubernetes.connection import ForbiddenError, ServerUnreachableError
from kfkit.backends.kubernetes.objects import CrdMissingError
from kfkit.cli.main import main
from kfkit.errors import KfkitError, NotFoundError
from kfkit.platform.apiserver import LIMITED_USER

from .test_k8s_jobs import job_manifest, make_job

pytestmark = pytest.mark.apiserver
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def without_tfjob_crd(cluster: Any) -> Iterator[None]:
    """The TFJob CRD removed for one test, and installed again afterwards."""
    cluster.remove_crd("TFJob")
    try:
        yield
    finally:
        cluster.install_crd("TFJob")


def test_a_missing_crd_stops_submit_with_the_install_command(
    cluster: Any, namespace: str, without_tfjob_crd: None, tmp_path: Path, capsys: Any
) -> None:
    backend = cluster.backend()
    with pytest.raises(CrdMissingError) as error:
        backend.submit(make_job("tf", namespace, kind="TFJob"))
    assert str(error.value) == (
        f"tf.yaml: TFJob CRD not installed on {cluster.server.url} (context kfkit-admin) "
        "(tfjobs.kubeflow.org, kubeflow.org/v1): run `kfkit platform upgrade` "
        "(helm upgrade --install kubeflowinstaller charts/kubeflow-platform -n kubeflow) first"
    )
    with pytest.raises(CrdMissingError, match="TFJob CRD not installed"):
        backend.get("tf", namespace, kind="TFJob")
    # PyTorchJobs still work, and listing skips the kind the cluster does not serve.
    backend.submit(make_job("pt", namespace))
    assert [r.job.name for r in backend.list(namespace)] == ["pt"]

    manifest = tmp_path / "tf.yaml"
    manifest.write_text(yaml.safe_dump(job_manifest("tf", namespace, kind="TFJob")))
    kubeconfig = str(cluster.server.kubeconfig)
    code = main(
        [
            "run",
            "-f",
            str(manifest),
            "--backend",
            "kubernetes",
            "--kubeconfig",
            kubeconfig,
            "--detach",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "TFJob CRD not installed" in err[0]


def test_a_missing_namespace_is_named(cluster: Any) -> None:
    backend = cluster.backend()
    with pytest.raises(KfkitError) as error:
        backend.submit(make_job("mnist", "no-such-team"))
    assert "namespace 'no-such-team' does not exist" in str(error.value)
    assert "kubectl create namespace no-such-team" in str(error.value)


def test_rbac_is_checked_before_anything_is_created(cluster: Any, namespace: str) -> None:
    limited = cluster.backend(kubeconfig=cluster.server.limited_kubeconfig)
    admin = cluster.backend()
    with pytest.raises(ForbiddenError) as error:
        limited.submit(make_job("mine", namespace))
    message = str(error.value)
    assert message.startswith("mine.yaml: forbidden: your credentials on ")
    assert f"may not create pytorchjobs.kubeflow.org in namespace {namespace!r}" in message
    assert "ask a cluster admin for a Role granting create, patch on pytorchjobs" in message
    with pytest.raises(NotFoundError):
        admin.get("mine", namespace)

    # create alone is not enough: a server-side apply is a PATCH.
    cluster.grant(
        LIMITED_USER,
        namespace,
        [{"apiGroups": ["kubeflow.org"], "resources": ["pytorchjobs"], "verbs": ["create"]}],
    )
    with pytest.raises(ForbiddenError, match=r"may not patch pytorchjobs\.kubeflow\.org"):
        cluster.backend(kubeconfig=cluster.server.limited_kubeconfig).submit(
            make_job("mine", namespace)
        )
    with pytest.raises(NotFoundError):
        admin.get("mine", namespace)


def test_a_user_allowed_only_jobs_can_run_and_follow_them(cluster: Any, namespace: str) -> None:
    verbs = ["create", "patch", "get", "list", "watch", "delete"]
    cluster.grant(
        LIMITED_USER,
        namespace,
        [{"apiGroups": ["kubeflow.org"], "resources": ["pytorchjobs", "tfjobs"], "verbs": verbs}],
    )
    limited = cluster.backend(kubeconfig=cluster.server.limited_kubeconfig)
    limited.submit(make_job("mine", namespace))
    cluster.operator.create_replicas("PyTorchJob", namespace, "mine")
    cluster.operator.event(namespace, "PyTorchJob", "mine", "Normal", "SuccessfulCreatePod", "ok")
    cluster.operator.set_condition("PyTorchJob", namespace, "mine", "Succeeded")
    record = limited.wait("mine", namespace, timeout=20)
    assert record.status.succeeded
    # May not read pods or events: the record says "no pod" and has no events, it does not fail.
    assert {s["reason"] for s in record.replicas.values()} == {"no pod"}
    assert record.events == []
    limited.delete("mine", namespace)  # the pods stay for the garbage collector (none runs here)
    with pytest.raises(NotFoundError):
        cluster.backend().get("mine", namespace)


def test_forbidden_reads_are_one_line_cli_errors(cluster: Any, namespace: str, capsys: Any) -> None:
    kubeconfig = str(cluster.server.limited_kubeconfig)
    code = main(
        ["get", "jobs", "--backend", "kubernetes", "--kubeconfig", kubeconfig, "-n", namespace]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"list PyTorchJob in namespace {namespace}: forbidden: ")
    assert (
        'cannot list resource "pytorchjobs" in API group "kubeflow.org" '
        f'in the namespace "{namespace}"' in err[0]
    )


def run_e2e_check(kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "tests/kubernetes/e2e_cluster.py"), "--check"],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_e2e_check_passes_only_when_the_crds_are_served(cluster: Any) -> None:
    result = run_e2e_check(cluster.server.kubeconfig)
    assert result.returncode == 0, result.stderr
    assert "answers (Kubernetes v1.20.2)" in result.stdout
    cluster.remove_crd("TFJob")
    try:
        result = run_e2e_check(cluster.server.kubeconfig)
    finally:
        cluster.install_crd("TFJob")
    assert result.returncode == 2
    assert result.stderr.startswith("e2e-cluster: TFJob CRD not installed on ")


def test_a_server_with_an_unknown_certificate_is_a_tls_error(cluster: Any, tmp_path: Path) -> None:
    config = yaml.safe_load(Path(cluster.server.kubeconfig).read_text())
    del config["clusters"][0]["cluster"]["certificate-authority"]  # verify against system CAs
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    with pytest.raises(ServerUnreachableError) as error:
        cluster.backend(kubeconfig=kubeconfig).list("default")
    assert str(error.value) == (
        f"discover kubeflow.org/v1: cannot reach the Kubernetes API server {cluster.server.url} "
        "(context kfkit-admin): TLS handshake failed (wrong CA or server?); is the cluster "
        "running, and are --kubeconfig and --context right?"
    )
