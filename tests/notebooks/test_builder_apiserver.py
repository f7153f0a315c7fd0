"""The builder's Kubernetes path against a real kube-apiserver, as a user holding only our Role.

The API server tier has no scheduler or kubelet, so a build never starts: these
tests check what the server itself decides (the Job is accepted by server-side
validation and admission, the shipped Role suffices and no more, a missing
registry secret stops the build before anything is written, a build that never
starts is deleted at its deadline). No build result is pretended.
"""

from __future__ import annotations

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


def test_missing_registry_secret_stops_the_build_before_anything_is_written(
    tmp_path: Path, server: LocalApiServer, admin
) -> None:
    with pytest.raises(KfkitError, match="registry_secret: secret 'regcred' not found"):
        build_image(make_config(tmp_path, server))
    assert list((tmp_path / "pvc").iterdir()) == []
    assert jobs(admin) == []


def test_job_is_accepted_by_the_server_and_deleted_when_it_never_starts(
    tmp_path: Path, server: LocalApiServer, admin
) -> None:
    from kubernetes import client

    client.CoreV1Api(admin).create_namespaced_secret(
        NAMESPACE,
        {
            "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": "e30="},  # {}
        },
    )
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
