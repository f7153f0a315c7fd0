"""The local API server tier itself: it starts, authenticates, authorizes with RBAC, stops."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kfkit.platform.apiserver import LIMITED_USER, LocalApiServer

pytestmark = pytest.mark.apiserver


def kubectl(kubectl_bin: Path, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl_bin), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_admin_reads_and_the_limited_user_is_forbidden(
    apiserver: LocalApiServer, kubectl_bin: Path
) -> None:
    admin = kubectl(kubectl_bin, apiserver.kubeconfig, "get", "namespaces", "-o", "name")
    assert admin.returncode == 0, admin.stderr
    assert "namespace/kube-system" in admin.stdout

    limited = kubectl(kubectl_bin, apiserver.limited_kubeconfig, "get", "namespaces")
    assert limited.returncode != 0
    assert f'User "{LIMITED_USER}" cannot list resource "namespaces"' in limited.stderr


def test_a_role_binding_grants_the_limited_user_exactly_its_verbs(
    apiserver: LocalApiServer, kubectl_bin: Path
) -> None:
    admin = apiserver.kubeconfig
    for args in (
        ("create", "namespace", "rbac-probe"),
        (
            "-n",
            "rbac-probe",
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=configmaps",
        ),
        (
            "-n",
            "rbac-probe",
            "create",
            "rolebinding",
            "reader",
            "--role=reader",
            f"--user={LIMITED_USER}",
        ),
    ):
        result = kubectl(kubectl_bin, admin, *args)
        assert result.returncode == 0, result.stderr
    limited = apiserver.limited_kubeconfig
    allowed = kubectl(kubectl_bin, limited, "-n", "rbac-probe", "get", "configmaps")
    assert allowed.returncode == 0, allowed.stderr
    denied = kubectl(kubectl_bin, limited, "-n", "rbac-probe", "create", "configmap", "x")
    assert "forbidden" in denied.stderr


def test_the_servers_are_stopped_and_reaped_on_exit() -> None:
    server = LocalApiServer()
    with server:
        processes = [process for _, process, _ in server._processes]
        workdir = server.workdir
        assert all(process.poll() is None for process in processes)
    assert all(process.returncode is not None for process in processes)
    assert not workdir.exists()
