"""Which processes belong to a local job, and how to stop all of them.

A pid alone is never trusted: it is recorded with the process's start time in
clock ticks since boot (``/proc/<pid>/stat``, exact and the same whoever reads
it), and a process whose start differs is another program that reused the
number. psutil's ``create_time`` is kept beside it for people; it is rounded to
ticks and offset by a boot time that can read a second apart, so it would
confuse a stranger started within a few ticks with the replica it replaced.

Every replica process is started with
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
from pathlib import Path
from typing import Any

import psutil

POD_MARK = "KFKIT_LOCAL_POD"


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # Fields after the command name, which may itself hold spaces and parentheses:
    # the 22nd field of the file (starttime) is the 20th after it.
    after_name = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(after_name[19])
    except (IndexError, ValueError):
        return None


def identity(pid: int) -> dict[str, Any] | None:
    """``{"pid", "startTicks", "createTime"}`` of a live process, to be stored together."""
    ticks = start_ticks(pid)
    if ticks is None:
        return None
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        return None
    return {"pid": pid, "startTicks": ticks, "createTime": created}


def find(ref: Any) -> psutil.Process | None:
    """The live (non-zombie) process ``ref`` names, or None when it is gone or was reused."""
    if not isinstance(ref, dict) or not isinstance(ref.get("pid"), int):
        return None
    ticks = ref.get("startTicks")
    if not isinstance(ticks, int) or isinstance(ticks, bool):
        return None  # a record without an exact start names no process we can trust
    try:
        process = psutil.Process(ref["pid"])
        if start_ticks(process.pid) != ticks or process.status() == psutil.STATUS_ZOMBIE:
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
