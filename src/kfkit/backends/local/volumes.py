"""A replica's volumes made ready just before it starts, as the kubelet mounts them.

The plan (:mod:`kfkit.backends.local.launch`) says which local directory stands
in for each volume; here they are created, hostPath types are checked with the
kubelet's rules and messages (``pkg/volume/hostpath``), and emptyDir/PVC
directories are handed to the replica's user and fsGroup. A failure is a
:class:`MountError`, recorded as the replica's start failure and the job's
condition, never a crash of the supervisor.
"""

from __future__ import annotations

import stat
from pathlib import Path

from kfkit.backends.local.security import RunAs, hand_over

_KINDS = {
    "Directory": (stat.S_ISDIR, "a directory"),
    "File": (stat.S_ISREG, "a file"),
    "Socket": (stat.S_ISSOCK, "a socket file"),
    "CharDevice": (stat.S_ISCHR, "a character device"),
    "BlockDevice": (stat.S_ISBLK, "a block device"),
}


class MountError(Exception):
    """A volume could not be set up for a replica (the kubelet's FailedMount)."""


def host_path_problem(path: str, kind: str, create: bool) -> str | None:
    """What is wrong with hostPath ``path`` of ``type: kind``; create ``...OrCreate`` ones."""
    target = Path(path)
    if kind in ("DirectoryOrCreate", "FileOrCreate") and not target.exists():
        if not create:
            return None
        try:
            if kind == "DirectoryOrCreate":
                target.mkdir(mode=0o755, parents=True)
            else:
                target.touch(mode=0o644)
        except OSError as error:
            return f"hostPath type check failed: cannot create {path}: {error.strerror}"
        return None
    check = _KINDS.get(kind.removesuffix("OrCreate"))
    if check is None:
        return None  # "" (no checks), or a type the API server has already refused
    is_kind, what = check
    try:
        ok = is_kind(target.stat().st_mode)
    except OSError:
        ok = False
    return None if ok else f"hostPath type check failed: {path} is not {what}"


def prepare(
    directories: list[str],
    empty_dirs: list[str],
    fs_group_dirs: list[str],
    host_paths: list[list[str]],
    run_as: RunAs,
) -> None:
    """Create and check every volume of one replica; raise :class:`MountError` on failure."""
    for path, kind in host_paths:
        problem = host_path_problem(path, kind, create=True)
        if problem:
            raise MountError(problem)
    try:
        for directory in directories:
            Path(directory).mkdir(parents=True, exist_ok=True)
        for directory in fs_group_dirs:
            hand_over(Path(directory), run_as, empty_dir=directory in empty_dirs)
    except OSError as error:
        raise MountError(f"{error.filename}: {error.strerror}") from None
