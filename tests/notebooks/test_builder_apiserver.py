"""The builder's Kubernetes path against a real kube-apiserver, as a user holding only our Role.

The API server tier has no scheduler or kubelet, so a build never starts: these
tests check what the server itself decides (the Job is accepted by server-side
validation and admission, the shipped Role suffices and no more, a missing
registry secret stops the build before anything is written, a build that never
starts is deleted at its deadline). No build result is pretended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import yaml

from kfkit.builder import BuildConfig, build_image
from kfkit.errors import KfkitError
from kfkit.platform.apiserver import LIMITED_USER, LocalApiServer, apiserver_missing_reason

pytestmark = pytest.mark.apiserver

REPO = Path(__file__).resolve().parents[2]
RBAC = REPO / "manifests" / "notebook" / "containerbuilder-rbac.yaml"
NAMESPACE = "team"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalApiServer]:
    reason = apiserver_missing_reason()
    if reason:
        pytest.skip(reason)
    with LocalApiServer() as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: LocalApiServer):  # type: ignore[no-untyped-def]
    from kubernetes import client, config, utils

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
    # The shipped Role, as it is, granted to the limited user instead of the notebook's account.
    for doc in yaml.safe_load_all(RBAC.read_text()):
        doc["metadata"]["namespace"] = NAMESPACE
        if doc["kind"] == "RoleBinding":
            doc["subjects"] = [
                {"kind": "User", "name": LIMITED_USER, "apiGroup": "rbac.authorization.k8s.io"}
            ]
        utils.create_from_dict(api, doc, namespace=NAMESPACE)
    return api


def make_config(tmp_path: Path, server: LocalApiServer, **overrides: object) -> BuildConfig:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hi')")])
    source = tmp_path / "train.ipynb"
    nbformat.write(notebook, str(source))
    pvc = tmp_path / "pvc"
    pvc.mkdir(exist_ok=True)
    values: dict[str, object] = {
        "source": source,
        "image": "registry.example.org/team/mnist",
        "tag": "v1",
        "base_image": "tensorflow/tensorflow:2.16.1",
        "pvc_name": "shared-workspace",
        "pvc_mount_path": pvc,
        "registry_secret": "regcred",
        "namespace": NAMESPACE,
        "kubeconfig": str(server.limited_kubeconfig),
        "timeout": 5.0,
    }
    values.update(overrides)
    return BuildConfig(**values)  # type: ignore[arg-type]


def jobs(admin) -> list[str]:  # type: ignore[no-untyped-def]
    from kubernetes import client

    return [j.metadata.name for j in client.BatchV1Api(admin).list_namespaced_job(NAMESPACE).items]


@pytest.fixture
def regcred(admin):  # type: ignore[no-untyped-def]
    """The registry secret the builder checks for (its content is never read)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(admin).create_namespaced_secret(
            NAMESPACE,
            {
                "metadata": {"name": "regcred"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": "e30="},  # {}
            },
        )
    except ApiException as error:
        if error.status != 409:
            raise
    return "regcred"


def test_missing_registry_secret_stops_the_build_before_anything_is_written(
    tmp_path: Path, server: LocalApiServer, admin
) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(admin).delete_namespaced_secret("regcred", NAMESPACE)
    except ApiException as error:
        if error.status != 404:
            raise
    with pytest.raises(KfkitError, match="registry_secret: secret 'regcred' not found"):
        build_image(make_config(tmp_path, server))
    assert list((tmp_path / "pvc").iterdir()) == []
    assert jobs(admin) == []


def test_job_is_accepted_by_the_server_and_deleted_when_it_never_starts(
    tmp_path: Path, server: LocalApiServer, admin, regcred: str
) -> None:
    with pytest.raises(KfkitError, match="did not finish within 5s; job deleted"):
        build_image(make_config(tmp_path, server))
    assert list((tmp_path / "pvc").iterdir()) == []  # the context is gone too
    assert jobs(admin) == []


def test_the_role_grants_no_more_than_builds_need(server: LocalApiServer, admin) -> None:
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(server.limited_kubeconfig), client_configuration=configuration
    )
    limited = client.ApiClient(configuration)
    core = client.CoreV1Api(limited)
    forbidden = [
        lambda: core.create_namespaced_pod(
            NAMESPACE,
            {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "x", "image": "x"}]}},
        ),
        lambda: core.list_namespaced_secret(NAMESPACE),
        lambda: core.read_namespaced_secret("other-secret", NAMESPACE),
        lambda: client.BatchV1Api(limited).list_namespaced_job("default"),
    ]
    for call in forbidden:
        with pytest.raises(ApiException) as raised:
            call()
        assert raised.value.status == 403


DIGEST = "sha256:" + "cd" * 32


def _act_as_kubelet(admin, terminated: dict, stop: threading.Event) -> None:  # type: ignore[no-untyped-def]
    """Do what the job controller and kubelet would: a pod for the Job, then its statuses.

    The API server tier runs neither; the builder only sees what the API says,
    so the statuses are written through the API as a kubelet writes them.
    """
    from kubernetes import client

    batch, core = client.BatchV1Api(admin), client.CoreV1Api(admin)
    while not stop.is_set():
        found = [
            job
            for job in batch.list_namespaced_job(NAMESPACE).items
            if job.metadata.deletion_timestamp is None
        ]
        if found:
            break
        time.sleep(0.2)
    else:
        return
    job = found[0]
    template = client.ApiClient().sanitize_for_serialization(job.spec.template)
    pod_name = f"{job.metadata.name}-x7k2p"
    template["metadata"]["labels"]["job-name"] = job.metadata.name
    core.create_namespaced_pod(
        NAMESPACE,
        {"metadata": {"name": pod_name, **template["metadata"]}, "spec": template["spec"]},
    )
    base = {"name": "kaniko", "image": "kaniko", "imageID": "", "restartCount": 0}
    for phase, state in (("Running", {"running": {}}), ("Succeeded", {"terminated": terminated})):
        time.sleep(1.0)
        status = {
            "phase": phase,
            "containerStatuses": [{**base, "ready": phase == "Running", "state": state}],
        }
        core.patch_namespaced_pod_status(pod_name, NAMESPACE, {"status": status})


def _build_with_kubelet(tmp_path: Path, server: LocalApiServer, admin, terminated: dict):  # type: ignore[no-untyped-def]
    stop = threading.Event()
    kubelet = threading.Thread(target=_act_as_kubelet, args=(admin, terminated, stop))
    kubelet.start()
    try:
        return build_image(make_config(tmp_path, server, timeout=30.0))
    finally:
        stop.set()
        kubelet.join(timeout=30)
        from kubernetes import client

        for job in jobs(admin):
            # Background: no orphan finalizer, which no garbage collector here would remove.
            client.BatchV1Api(admin).delete_namespaced_job(
                job, NAMESPACE, propagation_policy="Background"
            )
        for pod in client.CoreV1Api(admin).list_namespaced_pod(NAMESPACE).items:
            client.CoreV1Api(admin).delete_namespaced_pod(pod.metadata.name, NAMESPACE)


def test_build_succeeds_when_the_pod_reports_exit_zero_and_a_digest(
    tmp_path: Path,
    server: LocalApiServer,
    admin,
    regcred: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _build_with_kubelet(tmp_path, server, admin, {"exitCode": 0, "message": DIGEST})
    assert result.succeeded and result.digest == DIGEST
    assert list((tmp_path / "pvc").iterdir()) == []
    err = capsys.readouterr().err
    assert "Waiting for kaniko-mnist-" in err and "Pod started running" in err


def test_exit_zero_without_a_digest_is_a_failed_build(
    tmp_path: Path, server: LocalApiServer, admin, regcred: str
) -> None:
    with pytest.raises(KfkitError, match="reported no pushed digest"):
        _build_with_kubelet(tmp_path, server, admin, {"exitCode": 0, "message": ""})
    assert list((tmp_path / "pvc").iterdir()) == []


def test_executor_error_is_a_failed_build(
    tmp_path: Path, server: LocalApiServer, admin, regcred: str
) -> None:
    with pytest.raises(KfkitError, match=r"Kaniko exited with code 1 \(Error\)"):
        _build_with_kubelet(tmp_path, server, admin, {"exitCode": 1, "reason": "Error"})
