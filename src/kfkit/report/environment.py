"""Where and with what a verification ran: shown in the report so runs can be compared.

Versions come from package metadata, so collecting them never imports torch or
tensorflow (which would take seconds and memory just to print a number). The
git commit is that of the suite's checkout, when it is one (a pipeline image
has no ``.git``; the entry is then left out).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("kfkit", "torch", "tensorflow-cpu", "tensorflow", "kfp", "radish-bdd", "kubernetes")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(directory: str | Path | None = None) -> str | None:
    """``<sha> (modified)`` of the checkout holding ``directory``; None outside git."""
    where = str(directory or Path.cwd())
    try:
        sha = subprocess.run(
            ["git", "-C", where, "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha} (modified)" if dirty else sha or None


def collect_environment(suite_dir: str | Path | None = None, **extra: str) -> dict[str, str]:
    """Date, host, git commit, Python, OS, package versions and the caller's own entries.

    The caller adds what only it knows: target, tags, cluster context.
    """
    environment = {
        "date (UTC)": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
    }
    commit = git_commit(suite_dir)
    if commit:
        environment["git commit"] = commit
    environment.update({f"{name} version": v for name, v in package_versions().items()})
    environment.update({key: value for key, value in extra.items() if value})
    return environment


def cluster_context(kubeconfig: str | None = None, context: str | None = None) -> str | None:
    """The kubeconfig context a cluster run uses: the one asked for, else the current one."""
    if context:
        return context
    try:
        from kubernetes import config

        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception:  # no kubeconfig, or one the client cannot read: nothing to show
        return None
    return str(active.get("name")) if active else None
