"""The pod's user and groups, as the kubelet applies them, for a replica's process.

``runAsUser``, ``runAsGroup``, ``runAsNonRoot`` (container settings over the
pod's), ``fsGroup`` and ``supplementalGroups`` become the uid, gid and extra
groups the process runs with. Dropping to them needs root, so they are
enforced only when kfkit runs as root; otherwise the replica runs as kfkit's
own user and a note says so once per job. ``runAsNonRoot`` is checked either
way, with the kubelet's own messages: locally the "image" is kfkit's
interpreter, whose user is the one kfkit runs as.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunAs:
    """Who a replica's process runs as; None fields mean "as kfkit itself"."""

    user: int | None = None
    group: int | None = None
    groups: list[int] = field(default_factory=list)
    fs_group: int | None = None


def enforced() -> bool:
    """Can this process switch users (is kfkit running as root)?"""
    return os.geteuid() == 0


def _setting(template: dict[str, Any], container: dict[str, Any], name: str) -> Any:
    """A container securityContext setting, falling back to the pod's, as the kubelet does."""
    container_context = container.get("securityContext") or {}
    if container_context.get(name) is not None:
        return container_context[name]
    return (template.get("spec", {}).get("securityContext") or {}).get(name)


def resolve_run_as(
    template: dict[str, Any], container: dict[str, Any], path: str
) -> tuple[RunAs, list[str], list[str]]:
    """The replica's :class:`RunAs`, the problems that refuse it, and notes for the user."""
    pod_context = template.get("spec", {}).get("securityContext") or {}
    user = _setting(template, container, "runAsUser")
    group = _setting(template, container, "runAsGroup")
    fs_group = pod_context.get("fsGroup")
    supplemental = [int(g) for g in pod_context.get("supplementalGroups") or []]
    problems: list[str] = []
    notes: list[str] = []
    pod = f"{template.get('metadata', {}).get('namespace')}/{template['metadata'].get('name')}"
    if _setting(template, container, "runAsNonRoot"):
        # pkg/kubelet/kuberuntime: verifyRunAsNonRoot.
        if user == 0:
            problems.append(
                f"{path}.securityContext.runAsNonRoot: container's runAsUser breaks non-root "
                f'policy (pod: "{pod}", container: {container.get("name")})'
            )
        elif user is None and os.geteuid() == 0:
            problems.append(
                f"{path}.securityContext.runAsNonRoot: container has runAsNonRoot and image "
                f'will run as root (pod: "{pod}", container: {container.get("name")}); '
                "locally the image is kfkit's interpreter, run as root: set runAsUser"
            )
    wanted = [v for v in (user, group, fs_group, *supplemental) if v is not None]
    if not enforced():
        if wanted:
            notes.append(
                "runAsUser/runAsGroup/fsGroup are not enforced locally: kfkit is not running "
                f"as root, so replicas run as uid {os.geteuid()}"
            )
        return RunAs(), problems, notes
    if user is not None and group is None:
        # The image's user database decides the group; locally that is this machine's.
        try:
            group = pwd.getpwuid(int(user)).pw_gid
        except KeyError:
            group = 0
    extra = [g for g in [fs_group, *supplemental] if g is not None]
    run_as = RunAs(
        user=None if user is None else int(user),
        group=None if group is None else int(group),
        groups=sorted({int(g) for g in extra}),
        fs_group=None if fs_group is None else int(fs_group),
    )
    return run_as, problems, notes


def can_reach(path: Path, run_as: RunAs, need: int = os.X_OK) -> Path | None:
    """The first directory on the way to ``path`` that ``run_as`` cannot search, if any.

    A process has no mount namespace here, so its volumes, working directory and
    interpreter must be reachable through this machine's directories.
    """
    if run_as.user is None or run_as.user == 0:
        return None
    groups = {g for g in [run_as.group, *run_as.groups] if g is not None}
    path = path.absolute()
    for directory in [*reversed(path.parents), path]:
        try:
            info = directory.stat()
        except OSError:
            return None  # created later, by kfkit, with permissions it chooses
        bits = need if directory == path else os.X_OK
        if info.st_uid == run_as.user:
            allowed = (info.st_mode >> 6) & bits == bits
        elif info.st_gid in groups:
            allowed = (info.st_mode >> 3) & bits == bits
        else:
            allowed = info.st_mode & bits == bits
        if not allowed:
            return directory
    return None


def hand_over(directory: Path, run_as: RunAs, empty_dir: bool) -> None:
    """Make a volume directory usable by the replica, as the kubelet does.

    An emptyDir is world-writable (mode 0777); with ``fsGroup`` a volume is owned
    by that group, group-writable and setgid, so files the replica creates
    stay in the group.
    """
    if empty_dir:
        directory.chmod(0o777)
    if run_as.fs_group is None or not enforced():
        return
    for root, directories, files in os.walk(directory):
        for name in [".", *directories, *files]:
            entry = Path(root) / name if name != "." else Path(root)
            info = entry.lstat()
            if stat.S_ISLNK(info.st_mode):
                continue
            os.chown(entry, -1, run_as.fs_group, follow_symlinks=False)
            extra = stat.S_IRGRP | stat.S_IWGRP
            if stat.S_ISDIR(info.st_mode):
                extra |= stat.S_IXGRP | stat.S_ISGID
            entry.chmod(stat.S_IMODE(info.st_mode) | extra)
