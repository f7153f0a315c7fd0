"""What the platform steps call: the chart (kfkit.platform), PodDefaults, the container builder.

Each helper hands the work to the module that owns it and only reshapes the
answer for an assertion: containers by ``Kind/name/container``, a pod's
environment as a name -> value (or reference) map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kfkit.errors import KfkitError
from kfkit.verify.jobs import Settings

Object = dict[str, Any]


# --- the chart ------------------------------------------------------------------------------


def render_chart(sets: list[str]) -> list[Object]:
    """``helm template`` of the platform chart with ``--set`` overrides."""
    from kfkit.platform.helm import Values, render

    return render(Values(sets=list(sets)))


def upgrade_chart(sets: list[str], kubeconfig: str | None) -> list[Object]:
    """``helm upgrade --install --wait`` on the cluster; then the release's Deployments."""
    from kubernetes import client, config

    from kfkit.platform.helm import DEFAULT_NAMESPACE, Values, upgrade

    upgrade(Values(sets=list(sets)), kubeconfig=Path(kubeconfig) if kubeconfig else None)
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig)
    else:
        config.load_config()
    apps = client.AppsV1Api()
    deployments = apps.list_namespaced_deployment(DEFAULT_NAMESPACE).items
    serialize = client.ApiClient().sanitize_for_serialization
    return [{"kind": "Deployment", **serialize(d)} for d in deployments]


def container_resources(objects: list[Object]) -> dict[str, Object]:
    """``{"Deployment/name/container": resources}`` for every container of every pod template."""
    from kfkit.platform.podsecurity import pod_templates

    found = {}
    for obj in objects:
        for template in pod_templates(obj):
            for container in template.spec.get("containers") or []:
                where = f"{obj.get('kind')}/{obj['metadata']['name']}/{container['name']}"
                found[where] = container.get("resources") or {}
    return found


def resources_from_table(rows: list[dict[str, str]]) -> Object:
    """``| kind | cpu | memory |`` rows as a container's ``resources``."""
    return {row["kind"]: {"cpu": row["cpu"], "memory": row["memory"]} for row in rows}


# --- notebooks and PodDefaults --------------------------------------------------------------


def notebook_pod(settings: Settings, notebook: str, poddefaults_dir: str) -> Object:
    """The notebook's pod as the admission webhook would admit it (PodDefaults applied)."""
    from kfkit.poddefaults import apply_poddefaults, load_poddefaults, pod_of

    path = settings.path(notebook)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KfkitError(f"{notebook}: cannot read: {error.strerror}") from None
    pod, namespace = pod_of(document, notebook)
    defaults = load_poddefaults(settings.path(poddefaults_dir), namespace)
    return apply_poddefaults(pod, defaults, notebook)


def notebook_pod_on_cluster(
    settings: Settings, notebook: str, poddefaults_dir: str, timeout: float
) -> tuple[Object, Object]:
    """Apply the PodDefaults and the Notebook, wait until it is ready; (notebook, its pod).

    The pod is what the cluster's admission webhook admitted, read back from
    the API server; the steps compare it with the local merge's promises.
    """
    from kubernetes import client

    from kfkit.poddefaults import load_poddefaults

    path = settings.path(notebook)
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KfkitError(f"{notebook}: cannot read: {error.strerror}") from None
    namespace = (manifest.get("metadata") or {}).get("namespace") or "default"
    backend = settings.backend()
    notebooks = backend.notebooks
    for poddefault in load_poddefaults(settings.path(poddefaults_dir), namespace):
        notebooks.apply_poddefault(poddefault, namespace, source=poddefaults_dir)
    created = notebooks.create_notebook(manifest, namespace, source=notebook)
    name = created["metadata"]["name"]
    notebooks.wait_notebook_ready(name, namespace, timeout=timeout)
    api = backend.connection.api
    pod = client.CoreV1Api(api).read_namespaced_pod(f"{name}-0", namespace)
    return created, api.sanitize_for_serialization(pod)


def delete_notebook_on_cluster(settings: Settings, notebook: Object) -> None:
    metadata = notebook["metadata"]
    settings.backend().notebooks.delete_notebook(metadata["name"], metadata["namespace"])


def container_env(pod: Object, container: str | None = None) -> dict[str, str]:
    """One container's environment: literal values, and ``secret:name/key`` for references."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    chosen = [c for c in containers if container in (None, c.get("name"))][:1]
    if not chosen:
        raise KfkitError(f"no container {container!r} in the pod")
    env = {}
    for variable in chosen[0].get("env") or []:
        reference = (variable.get("valueFrom") or {}).get("secretKeyRef")
        if reference:
            env[variable["name"]] = f"secret:{reference['name']}/{reference['key']}"
        else:
            env[variable["name"]] = str(variable.get("value", ""))
    return env


def container_mounts(pod: Object, container: str | None = None) -> list[str]:
    """The mount paths of one container (the first, or the one named ``container``)."""
    containers = (pod.get("spec") or {}).get("containers") or []
    chosen = [c for c in containers if container in (None, c.get("name"))][:1]
    return [str(m.get("mountPath")) for c in chosen for m in c.get("volumeMounts") or []]


# --- the container builder ------------------------------------------------------------------


def required_user_data(settings: Settings, key: str) -> str:
    value = settings.extra.get(key)
    if not value:
        raise KfkitError(f"this scenario needs -u {key}=... (kfkit verify --user-data {key}=...)")
    return value


def kaniko_args(job: Object | None) -> list[str]:
    """The Kaniko container's arguments in a builder's Job manifest."""
    containers = (job or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    return [str(arg) for c in containers or [] for arg in c.get("args") or []]


def build_image(settings: Settings, source: str, image: str, on_cluster: bool) -> Any:
    """Build ``source`` with kfkit.builder; without a cluster only the context and Job are made.

    The PVC is a directory in the run's work dir locally; on a cluster the
    claim, its mount path and the registry secret come from radish user data
    (``-u build_pvc=... -u build_mount=... -u registry_secret=...``).
    """
    from kfkit.builder import BuildConfig, build_image

    repository, _, tag = image.rpartition(":")
    extra = settings.extra
    mount = Path(extra.get("build_mount") or settings.work_dir / "build-pvc")
    mount.mkdir(parents=True, exist_ok=True)
    config = BuildConfig(
        source=settings.path(source),
        image=repository,
        tag=tag,
        base_image=extra.get("build_base_image") or "python:3.11.7-slim-bookworm",
        pvc_name=extra.get("build_pvc") or "shared-workspace",
        pvc_mount_path=mount,
        registry_secret=extra.get("registry_secret"),
        namespace=extra.get("namespace"),
        dry_run=not on_cluster,
        kubeconfig=extra.get("kubeconfig"),
    )
    return build_image(config)
