"""Where and with what a verification ran: shown in the report so runs can be compared.

Versions come from package metadata, so collecting them never imports torch or
tensorflow (which would take seconds and memory just to print a number).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from importlib import metadata

PACKAGES = ("kfkit", "torch", "tensorflow-cpu", "tensorflow", "kfp", "radish-bdd", "kubernetes")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def collect_environment(**extra: str) -> dict[str, str]:
    """Python, OS, package versions and the caller's own entries (target, tags, ...)."""
    environment = {
        "date (UTC)": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
    }
    environment.update({f"{name} version": v for name, v in package_versions().items()})
    environment.update({key: value for key, value in extra.items() if value})
    return environment
