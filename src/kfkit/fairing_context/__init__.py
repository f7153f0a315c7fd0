"""A PVC context source for kubeflow-fairing 1.0.2's ClusterBuilder.

For notebook users who already build with fairing::

    from kubeflow.fairing.builders.cluster.cluster import ClusterBuilder
    from kfkit.fairing_context import PvcContextSource

    builder = ClusterBuilder(
        registry="registry.example.org/team", image_name="mnist",
        base_image="tensorflow/tensorflow:2.16.1", preprocessor=preprocessor,
        context_source=PvcContextSource("shared-workspace", "/home/jovyan/shared",
                                        registry_secret="regcred"),
    )
    builder.build()

Fairing packs the build context into a .tar.gz and hands it to the context
source; this one unpacks it into a ``kanikotmp-*`` directory on the shared
ReadWriteMany PVC, so Kaniko reads it with ``--context=dir://`` and no object
store is involved. The Kaniko pod spec is kfkit's own (the same executor pin,
service account, capabilities and digest file as ``kfkit build``), converted to
the client objects of fairing's kubernetes 10 client.

This module runs inside fairing's environment, not kfkit's: it imports only
fairing, fairing's kubernetes client and the pure-Python parts of kfkit.builder.
fairing itself does not check that a build pushed anything; use ``kfkit build``
for that.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

from kubeflow.fairing.builders.cluster.context_source import ContextSourceInterface
from kubernetes import client

from kfkit.builder.context import CONTEXT_PREFIX, check_mount_path
from kfkit.builder.kaniko import (
    DEFAULT_KANIKO_IMAGE,
    DEFAULT_SERVICE_ACCOUNT,
    JobRequest,
    job_manifest,
)
from kfkit.errors import KfkitError


class _Response:
    """What ApiClient.deserialize reads: a response with a JSON body."""

    def __init__(self, body: Any) -> None:
        self.data = json.dumps(body)


class PvcContextSource(ContextSourceInterface):
    """Build context on a ReadWriteMany PVC shared by the notebook and the Kaniko pod."""

    def __init__(
        self,
        pvc_name: str,
        pvc_mount_path: str | Path,
        registry_secret: str | None = None,
        service_account: str = DEFAULT_SERVICE_ACCOUNT,
        kaniko_image: str = DEFAULT_KANIKO_IMAGE,
        cache: bool = True,
    ) -> None:
        self.pvc_name = pvc_name
        self.mount_path = check_mount_path(Path(pvc_mount_path))
        self.registry_secret = registry_secret
        self.service_account = service_account
        self.kaniko_image = kaniko_image
        self.cache = cache
        self.context_dir: Path | None = None

    def prepare(self, context_filename: str) -> None:
        """Unpack fairing's context archive into a fresh kanikotmp-* directory on the PVC."""
        import secrets

        while self.context_dir is None:
            candidate = self.mount_path / f"{CONTEXT_PREFIX}-{secrets.token_hex(4)}"
            try:
                candidate.mkdir(mode=0o755)
            except FileExistsError:
                continue
            self.context_dir = candidate
        try:
            with tarfile.open(context_filename, "r:gz") as archive:
                # The "data" filter refuses absolute paths, links out of the tree and devices.
                archive.extractall(self.context_dir, filter="data")
        except (tarfile.TarError, OSError) as error:
            self.cleanup()
            raise KfkitError(
                f"{context_filename}: cannot unpack the build context: {error}"
            ) from None

    def generate_pod_spec(self, image_name: str, push: bool = True) -> Any:
        """The Kaniko pod as a V1PodSpec; the container is named ``kaniko`` as fairing expects."""
        if self.context_dir is None:
            raise RuntimeError("prepare() must run before generate_pod_spec()")
        repository = (
            image_name.rsplit(":", 1)[0] if ":" in image_name.rsplit("/", 1)[-1] else image_name
        )
        job = job_manifest(
            JobRequest(
                name="fairing-builder",
                namespace="default",
                context_dir=self.context_dir.name,
                destination=image_name,
                pvc_name=self.pvc_name,
                kaniko_image=self.kaniko_image,
                registry_secret=self.registry_secret,
                service_account=self.service_account,
                cache=self.cache,
                cache_repo=f"{repository}/cache" if self.cache else None,
            )
        )
        pod_spec = job["spec"]["template"]["spec"]
        if not push:
            pod_spec["containers"][0]["args"].append("--no-push")
        return client.ApiClient().deserialize(_Response(pod_spec), "V1PodSpec")

    def cleanup(self) -> None:
        if self.context_dir is not None and self.context_dir.exists():
            shutil.rmtree(self.context_dir, ignore_errors=True)
        self.context_dir = None
