"""Scenarios in the container runtime: replicas as podman containers of the job's images.

What an administrator and a CI machine do before such a job runs on a cluster is done here
too: the kit's images the job names are built (unless up to date), and the claim the
trainer reads MNIST from holds verified MNIST, since a container has no way to this
machine's download cache.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from kfkit.containers import images, podman
from kfkit.errors import KfkitError
from kfkit.jobs.model import Job

ROOT = Path(__file__).resolve().parents[3]


def data_claims(job: Job) -> list[str]:
    """The claims mounted where a replica's trainer reads ``--data-dir``."""
    claims: list[str] = []
    for spec in job.replica_specs.values():
        pod = spec.template.get("spec", {})
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for container in pod.get("containers") or []:
            argv = [
                str(a) for a in (container.get("command") or []) + (container.get("args") or [])
            ]
            data_dirs = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--data-dir"}
            for mount in container.get("volumeMounts") or []:
                claim = (volumes.get(mount["name"]) or {}).get("persistentVolumeClaim")
                if claim and mount["mountPath"].rstrip("/") in data_dirs:
                    claims.append(str(claim["claimName"]))
    return sorted(set(claims))


def fill_mnist_claim(home: Path, namespace: str, claim: str) -> None:
    """Put verified MNIST in a claim's directory, as an administrator fills a volume."""
    from kfkit.data import mnist

    source = mnist.prepare()
    target = home / "volumes" / namespace / claim
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o777)
    for path in source.iterdir():
        if path.is_file() and not path.name.startswith(".") and not (target / path.name).exists():
            shutil.copy2(path, target / path.name)


def prepare(manifest: dict[str, Any], home: Path) -> None:
    """Images built, data in place: what the job needs before it runs in containers."""
    problem = podman.available()
    if problem:
        raise KfkitError(problem)
    job = Job(manifest=manifest, source="<scenario>")
    by_name = {image.name: image for image in images.IMAGES.values()}
    for spec in job.replica_specs.values():
        for container in spec.template.get("spec", {}).get("containers") or []:
            image = by_name.get(str(container.get("image")))
            if image is not None:
                images.ensure_image(ROOT, image)
    for claim in data_claims(job):
        fill_mnist_claim(home, job.namespace, claim)


def use_container_runtime() -> str | None:
    """Switch the local backend to containers; return the previous setting to restore."""
    previous = os.environ.get("KFKIT_RUNTIME")
    os.environ["KFKIT_RUNTIME"] = "container"
    return previous


def restore_runtime(previous: str | None) -> None:
    if previous is None:
        os.environ.pop("KFKIT_RUNTIME", None)
    else:
        os.environ["KFKIT_RUNTIME"] = previous
