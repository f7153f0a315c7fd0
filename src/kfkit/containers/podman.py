"""The podman configuration every kfkit command and test shares, and a way to run podman.

Rootful podman works on this kind of machine only with a few settings that differ from
its defaults: crun fails on a hybrid (v1 + v2) cgroup layout, so runc runs containers;
podman's default rlimits need CAP_SYS_RESOURCE, so nofile/nproc are set explicitly; there
is no systemd, so cgroups are managed through cgroupfs and events go to a file; netavark
with aardvark-dns gives each job's network DNS for its pods' names (CNI has none). The
settings live in one ``containers.conf`` under ``$KFKIT_CACHE/containers`` that is passed
to every podman command through ``CONTAINERS_CONF``.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kfkit.errors import KfkitError

CONTAINERS_CONF = """\
# Written by kfkit (kfkit.containers.podman); passed to podman as CONTAINERS_CONF.
[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
log_driver = "k8s-file"

[network]
network_backend = "netavark"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
MAX_ULIMIT = 16384


class PodmanError(KfkitError):
    """podman is missing or a podman command failed."""


def cache_root() -> Path:
    """``$KFKIT_CACHE``; it defaults to ``~/.cache/kfkit``, as in make."""
    return Path(os.environ.get("KFKIT_CACHE") or Path.home() / ".cache" / "kfkit")


def config_path() -> Path:
    """Where kfkit's containers.conf is: ``$CONTAINERS_CONF`` when make exported it."""
    exported = os.environ.get("CONTAINERS_CONF")
    return Path(exported) if exported else cache_root() / "containers" / "containers.conf"


def config_text() -> str:
    """The configuration for this machine: rlimits no higher than what podman may set here.

    Without CAP_SYS_RESOURCE runc cannot raise a limit, and here it fails even at podman's
    own hard limit; 16384 (or half the hard limit, when lower) works and is ample.
    """
    limits = {}
    for name, which in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(which)[1]
        limits[name] = MAX_ULIMIT if hard == resource.RLIM_INFINITY else min(hard // 2, MAX_ULIMIT)
    return CONTAINERS_CONF.format(**limits)


def ensure_config() -> Path:
    """Write the configuration when it is missing or stale (atomically), return its path."""
    path = config_path()
    text = config_text()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=".containers.conf.", delete=False, encoding="utf-8"
    ) as handle:
        handle.write(text)
    os.replace(handle.name, path)
    return path


def environment() -> dict[str, str]:
    """The environment podman runs in: ours, with ``CONTAINERS_CONF`` pointing at kfkit's."""
    return {**os.environ, "CONTAINERS_CONF": str(ensure_config())}


def available() -> str | None:
    """None when podman can run containers here, else why not (one line)."""
    if shutil.which("podman") is None:
        return "podman is not installed (make containers-tools installs it from Debian)"
    if shutil.which("runc") is None:
        return "runc is not installed (make containers-tools installs it from Debian)"
    return None


def podman(
    args: Sequence[str], *, timeout: float = 120, check: bool = True, capture: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` with kfkit's configuration; raise PodmanError on failure if asked."""
    if shutil.which("podman") is None:
        raise PodmanError("podman is not installed (make containers-tools installs it)")
    try:
        result = subprocess.run(
            ["podman", *args],
            env=environment(),
            capture_output=capture,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PodmanError(f"podman {args[0]} did not finish within {timeout:.0f}s") from None
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()
        raise PodmanError(
            f"podman {' '.join(args[:2])} failed (exit {result.returncode})"
            + (f": {detail[-1]}" if detail else "")
        )
    return result
