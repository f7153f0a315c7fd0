"""The container builder: a notebook or a directory in, a pushed image out.

The steps keep the names kubeflow-fairing users know:

1. *preprocess*: the notebook becomes a script (or the directory is taken as is);
2. *Dockerfile*: the base image, a requirements layer, then the code, non-root;
3. *context source*: a ``kanikotmp-*`` directory on the shared ReadWriteMany PVC;
4. *builder*: a Kaniko Job on the cluster, followed until it pushed, or, with no
   cluster, the context and the Job manifest on disk and a local podman/buildah
   build when that is possible.

Every input is checked before step 3 writes anything, and the context directory
is removed when a cluster build ends, whatever its outcome.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from kfkit.builder import cluster, local
from kfkit.builder.context import PvcContext, check_mount_path
from kfkit.builder.dockerfile import DEFAULT_USER, render_dockerfile
from kfkit.builder.kaniko import (
    DEFAULT_KANIKO_IMAGE,
    DEFAULT_SERVICE_ACCOUNT,
    JobRequest,
    job_manifest,
)
from kfkit.builder.preprocess import BuildFiles, preprocess
from kfkit.builder.references import check_name, check_reference, check_tag
from kfkit.errors import KfkitError, ValidationError

KANIKO_IMAGE_ENV = "KFKIT_KANIKO_IMAGE"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class BuildConfig:
    """The builder's inputs, as in the paper, plus the image's name and tag."""

    source: Path  # notebook (.ipynb), script (.py) or directory
    image: str  # repository, e.g. registry.example.org/team/mnist
    tag: str
    base_image: str  # e.g. a TensorFlow image that runs as a non-root user
    pvc_name: str
    pvc_mount_path: Path  # where this process sees the PVC
    registry_secret: str | None = None  # a kubernetes.io/dockerconfigjson Secret
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    namespace: str | None = None
    requirements: Path | None = None
    entrypoint: str | None = None  # for a directory: the script the image runs
    kaniko_image: str = field(
        default_factory=lambda: os.environ.get(KANIKO_IMAGE_ENV, DEFAULT_KANIKO_IMAGE)
    )
    cache: bool = True
    user: str = DEFAULT_USER
    timeout: float = 1800.0
    dry_run: bool = False
    kubeconfig: str | None = None
    kube_context: str | None = None

    @property
    def destination(self) -> str:
        return f"{self.image}:{self.tag}"


@dataclass
class BuildResult:
    destination: str
    mode: str  # "cluster" or "no-cluster"
    succeeded: bool
    message: str
    digest: str | None = None
    context_path: Path | None = None  # kept only when there was no cluster
    job_manifest_path: Path | None = None
    job_manifest: dict[str, Any] | None = None


def check_config(config: BuildConfig) -> list[str]:
    """Every problem with the inputs, one line each; empty when the build may start."""
    problems: list[str] = []
    for check in (
        lambda: check_name(config.image, "image"),
        lambda: check_tag(config.tag),
        lambda: check_reference(config.base_image, "base_image"),
        lambda: check_reference(config.kaniko_image, "kaniko_image"),
        lambda: check_mount_path(Path(config.pvc_mount_path)),
    ):
        try:
            check()
        except KfkitError as error:
            problems.append(error.message)
    if not _DNS_SUBDOMAIN.match(config.pvc_name or "") or len(config.pvc_name) > 253:
        problems.append(f"pvc_name: {config.pvc_name!r} is not a valid PersistentVolumeClaim name")
    for what, value in (
        ("registry_secret", config.registry_secret),
        ("service_account", config.service_account),
    ):
        if value is not None and (not _DNS_SUBDOMAIN.match(value) or len(value) > 253):
            problems.append(f"{what}: {value!r} is not a valid Kubernetes name")
    if config.namespace is not None and not _DNS_LABEL.match(config.namespace):
        problems.append(f"namespace: {config.namespace!r} is not a valid namespace")
    if not re.match(r"^[0-9]+(:[0-9]+)?$", config.user):
        problems.append(f"user: {config.user!r} must be numeric (uid or uid:gid)")
    elif config.user.split(":")[0] == "0":
        problems.append("user: the image must run as a non-root user")
    return problems


def job_name(image: str, build_id: str) -> str:
    """``kaniko-<last path component>-<build id>``, a valid Job name."""
    base = re.sub(r"[^a-z0-9-]+", "-", image.rsplit("/", 1)[-1].lower()).strip("-") or "image"
    return f"kaniko-{base[: 63 - len('kaniko--') - len(build_id)]}-{build_id}"


class ContainerBuilder:
    """Builds ``config.destination`` from a notebook or directory; see the module docstring."""

    def __init__(self, config: BuildConfig, console: Console | None = None) -> None:
        self.config = config
        self.console = console or Console(stderr=True, soft_wrap=True)  # paths never wrap

    def build(self) -> BuildResult:
        config = self.config
        problems = check_config(config)
        if problems:
            raise ValidationError(problems)
        files = preprocess(Path(config.source), config.requirements, config.entrypoint)
        dockerfile = render_dockerfile(
            config.base_image, files.entrypoint, files.has_requirements, config.user
        )
        api = None if config.dry_run else cluster.connect(config.kubeconfig, config.kube_context)
        namespace = config.namespace or cluster.default_namespace(
            config.kubeconfig, config.kube_context
        )
        if api is not None and config.registry_secret:
            cluster.check_secret(api, namespace, config.registry_secret, self.console)
        context = PvcContext(Path(config.pvc_mount_path))
        context.prepare(files, dockerfile)
        self.console.print(f"Build context written to {context.path}")
        try:
            manifest = job_manifest(self._job_request(context, namespace))
            if api is None:
                return self._without_cluster(context, manifest)
        except BaseException:
            context.cleanup()
            raise
        try:
            outcome = cluster.run_job(api, manifest, config.timeout, self.console)
        finally:
            context.cleanup()
        result = BuildResult(
            destination=config.destination,
            mode="cluster",
            succeeded=outcome.succeeded,
            message=outcome.reason,
            digest=outcome.digest,
            job_manifest=manifest,
        )
        if not outcome.succeeded:
            raise KfkitError(f"build of {config.destination} failed: {outcome.reason}")
        self.console.print(f"[green]Pushed {config.destination}@{outcome.digest}[/]")
        return result

    def _job_request(self, context: PvcContext, namespace: str) -> JobRequest:
        config = self.config
        return JobRequest(
            name=job_name(config.image, context.build_id),
            namespace=namespace,
            context_dir=context.name,
            destination=config.destination,
            pvc_name=config.pvc_name,
            kaniko_image=config.kaniko_image,
            registry_secret=config.registry_secret,
            service_account=config.service_account,
            cache=config.cache,
            cache_repo=f"{config.image}/cache" if config.cache else None,
            deadline_seconds=int(config.timeout),
        )

    def _without_cluster(self, context: PvcContext, manifest: dict[str, Any]) -> BuildResult:
        """Keep the context and write the Job manifest; build locally when possible."""
        config = self.config
        assert context.path is not None
        why = "--dry-run" if config.dry_run else "no in-cluster config and no kubeconfig found"
        manifest_path = context.path.with_name(f"{context.name}-job.yaml")
        manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        self.console.print(f"No cluster build ({why}).")
        self.console.print(f"Kaniko job manifest: {manifest_path} (kubectl apply -f it later)")
        outcome = local.build_locally(
            context.path, config.destination, config.base_image, config.timeout
        )
        self.console.print(outcome.message)
        return BuildResult(
            destination=config.destination,
            mode="no-cluster",
            succeeded=outcome.built,
            message=outcome.message,
            context_path=context.path,
            job_manifest_path=manifest_path,
            job_manifest=manifest,
        )


def build_image(config: BuildConfig, console: Console | None = None) -> BuildResult:
    """Build (and on a cluster, push) one image; raises KfkitError when it fails."""
    return ContainerBuilder(config, console).build()


__all__ = ["BuildConfig", "BuildFiles", "BuildResult", "ContainerBuilder", "build_image"]
