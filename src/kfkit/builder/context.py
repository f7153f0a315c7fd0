"""The PVC context source: the build context as a directory on a ReadWriteMany volume.

The notebook and the Kaniko pod mount the same PersistentVolumeClaim, so the
context needs no object store and no upload: the notebook writes a fresh
``kanikotmp*`` directory under its mount of the PVC, and Kaniko reads it as
``dir://`` through its own mount. The directory is removed when the build ends,
whatever the outcome; nothing is written before every input has been checked.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from kfkit.builder.dockerfile import CODE_DIR
from kfkit.builder.preprocess import BuildFiles
from kfkit.errors import KfkitError

CONTEXT_PREFIX = "kanikotmp"
KANIKO_WORKSPACE = "/workspace"  # where the Kaniko pod mounts the PVC


def check_mount_path(mount_path: Path) -> Path:
    """The PVC's mount path in this container, checked to be a writable directory."""
    if not mount_path.is_absolute():
        raise KfkitError(f"pvc_mount_path: {mount_path} must be an absolute path")
    if not mount_path.is_dir():
        raise KfkitError(
            f"pvc_mount_path: {mount_path} does not exist; mount the PVC there "
            "(e.g. with the mount-shared-workspace PodDefault)"
        )
    if not os.access(mount_path, os.W_OK | os.X_OK):
        raise KfkitError(f"pvc_mount_path: {mount_path} is not writable by this user")
    return mount_path


class PvcContext:
    """One build's context directory on the shared volume."""

    def __init__(self, mount_path: Path) -> None:
        self.mount_path = check_mount_path(mount_path)
        self.path: Path | None = None

    def prepare(self, files: BuildFiles, dockerfile: str) -> Path:
        """Write Dockerfile, requirements.txt and the code under a new kanikotmp* directory."""
        while self.path is None:
            candidate = self.mount_path / f"{CONTEXT_PREFIX}-{secrets.token_hex(4)}"
            try:
                candidate.mkdir(mode=0o755)
            except FileExistsError:
                continue
            self.path = candidate
        try:
            (self.path / "Dockerfile").write_text(dockerfile, encoding="utf-8")
            for name, content in files.files.items():
                target = self.path / (name if name == "requirements.txt" else f"{CODE_DIR}/{name}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            (self.path / CODE_DIR).mkdir(exist_ok=True)
        except BaseException:
            self.cleanup()
            raise
        return self.path

    @property
    def build_id(self) -> str:
        """The random part of the directory's name, reused to name the Job."""
        return self.name.removeprefix(f"{CONTEXT_PREFIX}-")

    @property
    def name(self) -> str:
        if self.path is None:
            raise RuntimeError("context not prepared")
        return self.path.name

    def kaniko_path(self) -> str:
        """The context directory as the Kaniko pod sees it."""
        return f"{KANIKO_WORKSPACE}/{self.name}"

    def cleanup(self) -> None:
        if self.path is not None and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
