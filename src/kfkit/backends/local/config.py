"""The local backend's settings: which interpreter runs an image, where volumes live.

Read from ``$KFKIT_HOME/config.yaml`` (or the file named by ``$KFKIT_CONFIG``)::

    images:                      # image pattern (fnmatch) -> local environment
      "kfkit/pytorch-mnist:*":
        python: /opt/venvs/torch/bin/python   # what `python`/`python3` run
        env: {EXTRA: "1"}                      # added before the container's env
    poddefaults: ~/team/poddefaults            # PodDefaults applied to replicas
    secrets: ~/.kfkit/secrets                  # <namespace>/<secret>/<key> files
    configmaps: ~/.kfkit/configmaps            # <namespace>/<configmap>/<key> files
    terminationGracePeriodSeconds: 5           # SIGTERM -> SIGKILL grace, capped
    runtime: process                           # or container (podman); KFKIT_RUNTIME wins

Without a config every image runs with kfkit's own interpreter.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kfkit.backends.local.state import kfkit_home
from kfkit.errors import KfkitError

# How replicas run: as processes of a local interpreter, or as podman containers of their image.
RUNTIMES = ("process", "container")


@dataclass
class ImageEnvironment:
    """How a container image is emulated on this machine."""

    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalConfig:
    home: Path
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    poddefaults: Path | None = None
    secrets: Path | None = None
    configmaps: Path | None = None
    grace_seconds: float = 5.0
    runtime: str = "process"

    def image(self, image: str) -> ImageEnvironment:
        for pattern, settings in self.images.items():
            if fnmatch.fnmatchcase(image, pattern):
                return ImageEnvironment(
                    python=str(settings.get("python") or sys.executable),
                    env={str(k): str(v) for k, v in (settings.get("env") or {}).items()},
                )
        return ImageEnvironment()

    def volumes_root(self) -> Path:
        return self.home / "volumes"


def _path(value: Any) -> Path | None:
    return Path(os.path.expanduser(str(value))) if value else None


def load_config(home: Path | None = None) -> LocalConfig:
    home = home or kfkit_home()
    config_file = Path(os.environ.get("KFKIT_CONFIG") or home / "config.yaml")
    raw: dict[str, Any] = {}
    if config_file.exists():
        try:
            raw = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise KfkitError(f"{config_file}: invalid YAML: {error}") from None
        if not isinstance(raw, dict):
            raise KfkitError(f"{config_file}: must be a mapping")
    images = raw.get("images") or {}
    if not isinstance(images, dict):
        raise KfkitError(f"{config_file}: images: must be a mapping of image pattern to settings")
    grace = raw.get("terminationGracePeriodSeconds", 5)
    if not isinstance(grace, int | float) or grace < 0:
        raise KfkitError(f"{config_file}: terminationGracePeriodSeconds: must be >= 0")
    runtime = os.environ.get("KFKIT_RUNTIME") or raw.get("runtime") or "process"
    if runtime not in RUNTIMES:
        where = "KFKIT_RUNTIME" if os.environ.get("KFKIT_RUNTIME") else f"{config_file}: runtime"
        raise KfkitError(f"{where}: {runtime!r} is not one of {', '.join(RUNTIMES)}")
    poddefaults = _path(raw.get("poddefaults") or os.environ.get("KFKIT_PODDEFAULTS"))
    return LocalConfig(
        home=home,
        images=images,
        poddefaults=poddefaults,
        secrets=_path(raw.get("secrets")) or home / "secrets",
        configmaps=_path(raw.get("configmaps")) or home / "configmaps",
        grace_seconds=float(grace),
        runtime=str(runtime),
    )
