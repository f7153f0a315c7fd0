"""Local verification jobs read MNIST from the shared cache instead of a copy per report.

On the local target every run has its own ``$KFKIT_HOME`` under the report
directory, so a job's data volume (a PersistentVolumeClaim, which the local
backend keeps under ``volumes/<namespace>/<claim>``) starts empty and the
trainer would copy the 53 MB of MNIST into it: once per report. Before such
a job starts, its data volume is made a link to the verified cache
(``$KFKIT_CACHE/mnist``); the trainer finds the files there, verifies them
and copies nothing. A volume that already exists is left as it is.
"""

from __future__ import annotations

import contextlib
from pathlib import PurePosixPath
from typing import Any

from kfkit.data.mnist import cache_dir
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


def share_dataset(settings: Settings, plan: JobPlan) -> list[str]:
    """On the local target, link the job's data volumes to the MNIST cache; return the claims."""
    if settings.target != "local" or not plan.trainer:
        return []
    root = settings.backend().config.volumes_root() / plan.namespace
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    linked = []
    for claim in sorted(data_claims(plan)):
        volume = root / claim
        if volume.exists() or volume.is_symlink():
            continue
        root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another job of the run made it first
            volume.symlink_to(cache, target_is_directory=True)
        linked.append(claim)
    return linked
