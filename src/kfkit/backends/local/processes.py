"""Which processes belong to a local job, and how to stop all of them.

A pid alone is never trusted: it is recorded with the process's start time
(psutil's ``create_time``), and a process whose start time differs is another
program that reused the number. Every replica process is started with
``KFKIT_LOCAL_POD=<job uid>/<replica>`` in its environment, which its
children inherit, so a replica's whole tree is found again even when some of
it left the replica's process group or was re-parented after its parent died:
killing a replica kills its process group, its descendants and every process
carrying its mark, as the end of a pod's containers does on a node.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import psutil

POD_MARK = "KFKIT_LOCAL_POD"
_SAME_START = 0.05  # seconds: create_time is derived from clock ticks, not exact


def identity(pid: int) -> dict[str, Any] | None:
    """``{"pid", "createTime"}`` of a live process, to be stored beside each other."""
    try:
        return {"pid": pid, "createTime": psutil.Process(pid).create_time()}
    except psutil.Error:
        return None


def find(ref: Any) -> psutil.Process | None:
    """The live (non-zombie) process ``ref`` names, or None when it is gone or was reused."""
    if not isinstance(ref, dict) or not isinstance(ref.get("pid"), int):
        return None
    created = ref.get("createTime")
    try:
        process = psutil.Process(ref["pid"])
        if not isinstance(created, int | float) or abs(process.create_time() - created) > (
            _SAME_START
        ):
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return process


def marked(mark: str) -> list[psutil.Process]:
    """Every process carrying ``mark``: ``<uid>/<replica>`` is one replica, ``<uid>/`` a job."""
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            value = process.environ().get(POD_MARK, "")
            if value == mark or (mark.endswith("/") and value.startswith(mark)):
                found.append(process)
    return found


def signal_group(pid: int, signum: int) -> None:
    """Signal the process group led by ``pid`` (each replica has its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def kill_tree(root: psutil.Process | None, mark: str | None, timeout: float = 5.0) -> int:
    """SIGKILL ``root``'s process group, its descendants and every process marked ``mark``.

    Returns how many processes were killed; waits (bounded) until they are gone,
    so the caller may remove their directories afterwards.
    """
    victims: dict[int, psutil.Process] = {}
    if root is not None:
        with contextlib.suppress(psutil.Error):
            victims.update({child.pid: child for child in root.children(recursive=True)})
            victims[root.pid] = root
            signal_group(root.pid, signal.SIGKILL)
    if mark:
        victims.update({process.pid: process for process in marked(mark)})
    for process in victims.values():
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(list(victims.values()), timeout=timeout)
    return len(victims)
