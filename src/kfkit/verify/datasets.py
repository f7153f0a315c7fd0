"""Local verification jobs read MNIST from the shared cache; report directories keep no copy.

On the local target every run has its own ``$KFKIT_HOME`` under the report
directory, so a job's data volume (a PersistentVolumeClaim, which the local
backend keeps under ``volumes/<namespace>/<claim>``) starts empty and the
trainer would copy the 53 MB of MNIST into it: once per report. Instead,
before such a job starts, the four files of the verified cache
(``$KFKIT_CACHE/mnist``) are hard-linked into its data volume: the trainer
finds them there, checks their MD5 and copies nothing, and no disk is used.
Hard links rather than a symlink, because the volume must stay a directory
under ``$KFKIT_HOME`` that a replica running as its ``runAsUser`` can read.
When the scenario's jobs are deleted the links are removed again, so the
report directory keeps no data. Where the cache and the report lie on
different file systems nothing is linked and the trainer copies, as before.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path, PurePosixPath
from typing import Any

from kfkit.data import mnist
from kfkit.verify.jobs import JobPlan, Settings

DATA_DIR_FLAG = "--data-dir"


def _argument(argv: list[str], flag: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def data_claims(plan: JobPlan) -> set[str]:
    """The PersistentVolumeClaims the trainer's ``--data-dir`` lies on, in every replica."""
    claims = set()
    container_name = plan.job.info.container_name
    for spec in plan.replica_specs().values():
        pod: dict[str, Any] = spec["template"].get("spec") or {}
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for container in pod.get("containers") or []:
            if container.get("name") != container_name:
                continue
            argv = [
                str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]
            ]
            data_dir = _argument(argv, DATA_DIR_FLAG)
            if data_dir is None:
                continue
            for mount in container.get("volumeMounts") or []:
                mount_path = PurePosixPath(str(mount.get("mountPath") or "/nonexistent"))
                if mount_path not in (PurePosixPath(data_dir), *PurePosixPath(data_dir).parents):
                    continue
                claim = (volumes.get(mount.get("name")) or {}).get("persistentVolumeClaim")
                if claim and claim.get("claimName") and not mount.get("subPath"):
                    claims.add(str(claim["claimName"]))
    return claims


def _volumes(settings: Settings, plan: JobPlan) -> list[Path]:
    if settings.target != "local" or not plan.trainer:
        return []
    root = settings.backend().config.volumes_root() / plan.namespace
    return [root / claim for claim in sorted(data_claims(plan))]


def share_dataset(settings: Settings, plan: JobPlan) -> list[Path]:
    """Hard-link the cached MNIST files into the job's data volumes; return the links made."""
    volumes = _volumes(settings, plan)
    if not volumes:
        return []
    cache = mnist.prepare()  # fills the cache first when this machine has none yet
    linked: list[Path] = []
    for volume in volumes:
        volume.mkdir(parents=True, exist_ok=True)
        for name in mnist.FILES:
            source, link = cache / name, volume / name
            if mnist.find(volume, name) is not None:
                continue  # already there (an earlier job of the run, or the trainer's copy)
            try:
                os.link(source, link)
            except FileExistsError:
                continue
            except OSError:  # another file system, or links not allowed: the trainer copies
                return linked
            linked.append(link)
    return linked


def unshare_dataset(settings: Settings, plan: JobPlan) -> list[Path]:
    """Remove the links :func:`share_dataset` made (files that are the cache's), once jobs ended."""
    cache = mnist.cache_dir()
    removed: list[Path] = []
    for volume in _volumes(settings, plan):
        for name in mnist.FILES:
            link = volume / name
            with contextlib.suppress(OSError):
                if link.is_file() and os.path.samefile(link, cache / name):
                    link.unlink()
                    removed.append(link)
    return removed
