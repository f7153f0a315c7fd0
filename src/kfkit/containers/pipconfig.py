"""Let pip inside an image build see the host's pip configuration.

A build's RUN steps see nothing of the host: not its pip.conf, nor the find-links
directories, local indexes, constraints and CA bundle that configuration names. On a
machine whose wheels (the CPU build of torch, for one) come from such places, pip inside
the build would resolve differently or not at all. ``build_mounts`` turns what
``pip config list`` shows (files and ``PIP_*`` variables alike) into one pip.conf plus
read-only bind mounts of every local path it names, for ``podman build -v``; nothing of
it ends up in the image's layers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

_LINE = re.compile(r"^(?P<section>[^.]+)\.(?P<key>[^=]+)='(?P<value>.*)'$")
# Keys whose values are local paths or URLs that may point at local paths.
_PATH_KEYS = {"find-links", "index-url", "extra-index-url", "cert", "client-cert", "constraint"}


def host_settings() -> dict[str, str]:
    """pip's effective global settings on this machine (files first, ``PIP_*`` on top)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    settings: dict[str, str] = {}
    env_settings: dict[str, str] = {}
    for line in result.stdout.splitlines():
        match = _LINE.match(line.strip())
        if not match or match["section"] not in ("global", "install", ":env:"):
            continue
        target = env_settings if match["section"] == ":env:" else settings
        target[match["key"]] = match["value"]
    return {**settings, **env_settings}


def local_paths(settings: dict[str, str]) -> list[Path]:
    """Every existing local path the settings name (``file://`` URLs included)."""
    paths: list[Path] = []
    for key, value in settings.items():
        if key not in _PATH_KEYS:
            continue
        for item in value.split():
            item = item.removeprefix("file://").rstrip("/")
            path = Path(item)
            # A local index's pages link to files beside its simple/ folder.
            if key.endswith("index-url") and path.name == "simple":
                path = path.parent
            if item.startswith("/") and path.exists() and path not in paths:
                paths.append(path)
    return paths


def build_mounts(workdir: Path) -> list[str]:
    """``-v`` arguments for ``podman build``: a pip.conf in ``workdir`` and the paths it names."""
    settings = host_settings()
    if not settings:
        return []
    conf = workdir / "pip.conf"
    conf.write_text(
        "[global]\n" + "".join(f"{key} = {value}\n" for key, value in sorted(settings.items())),
        encoding="utf-8",
    )
    mounts = [f"{conf}:/etc/pip.conf:ro"]
    mounts += [f"{path}:{path}:ro" for path in local_paths(settings)]
    return [argument for mount in mounts for argument in ("-v", mount)]
