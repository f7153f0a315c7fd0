"""Loopback ports for local replicas: probed for a listener, reserved across processes.

On a cluster every pod has its own IP, so two jobs can both listen on 23456.
Here every replica shares 127.0.0.1, so a port must be chosen per replica and
must stay taken from the moment it is chosen until the replica binds it:
``kfkit run -f dir/`` plans two PyTorchJobs one after the other, and two
``kfkit`` processes may plan at the same time, long before any replica
listens.

A reservation is a file ``$KFKIT_HOME/ports/<port>`` naming the job that
owns it, written under a lock file so exactly one planner wins a port. It
holds while that job is unfinished and its supervisor alive, or for a short
grace period after it was made (the job directory and its supervisor do not
exist yet while the job is planned). A stale reservation is simply taken
over, so a killed kfkit never leaks ports.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from kfkit.backends.base import JobStatus
from kfkit.backends.local.lock import is_held
from kfkit.backends.local.state import (
    CorruptStateError,
    JobDir,
    StateError,
    read_json,
    write_atomic,
)

# How long a reservation holds before its job's supervisor has started.
PLANNING_GRACE_SECONDS = 120.0
_ATTEMPTS = 200


def port_is_free(port: int) -> bool:
    """True unless something listens on ``port`` (any address).

    The probe binds with ``SO_REUSEADDR``, which Linux refuses only when a
    socket listens on the port: connections left in TIME_WAIT by an earlier
    job do not make a port busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port the kernel says nothing uses now (not yet reserved)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _owner_is_running(job_dir: JobDir) -> bool:
    """Is the job in ``job_dir`` still unfinished, with its supervisor alive (holding its lock)?"""
    if not is_held(job_dir.lock_file):
        return False
    try:
        return not JobStatus(read_json(job_dir.status_file, {}) or {}).finished
    except (OSError, ValueError, TypeError, AttributeError, CorruptStateError):
        return False


class PortReservations:
    """The reservations under ``<home>/ports``, shared by every kfkit process."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.directory = home / "ports"

    def _file(self, port: int) -> Path:
        return self.directory / str(port)

    def holder(self, port: int) -> str | None:
        """``namespace/name`` of the job holding ``port``, or None when nothing (validly) does."""
        try:
            record = json.loads(self._file(port).read_text())
            job_dir = JobDir(str(record["namespace"]), str(record["name"]), self.home)
            made = float(record["time"])
        except (OSError, ValueError, KeyError, TypeError, StateError):
            return None  # none, or corrupt (written atomically, so never half-written)
        if time.time() - made < PLANNING_GRACE_SECONDS or _owner_is_running(job_dir):
            return f"{job_dir.namespace}/{job_dir.name}"
        return None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise claims across processes (held only while one port is checked)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _claim(self, port: int, owner: JobDir) -> bool:
        """Make ``port`` ours unless a live reservation holds it (stale ones are replaced)."""
        with self._locked():
            if self.holder(port) is not None:
                return False
            record = {
                "namespace": owner.namespace,
                "name": owner.name,
                "time": time.time(),
                "pid": os.getpid(),
            }
            write_atomic(self._file(port), json.dumps(record))
            return True

    def reserve(self, owner: JobDir, preferred: int | None = None) -> int:
        """Reserve ``preferred`` if nothing listens there and no job holds it, else a free port.

        Raises ``OSError`` only if no port could be reserved after many attempts.
        """
        if preferred is not None and port_is_free(preferred) and self._claim(preferred, owner):
            return preferred
        for _ in range(_ATTEMPTS):
            port = free_port()
            if port != preferred and self._claim(port, owner):
                return port
        raise OSError("no free port on 127.0.0.1 could be reserved")

    def release(self, owner: JobDir) -> None:
        """Drop every reservation ``owner`` holds (its job is replaced or will not run).

        Stale reservations of other jobs are removed on the way, so the
        directory never grows beyond the ports in use.
        """
        if not self.directory.is_dir():
            return
        with self._locked():
            for path in self.directory.iterdir():
                if not path.name.isdigit():
                    continue
                try:
                    record = json.loads(path.read_text())
                    mine = (record["namespace"], record["name"]) == (owner.namespace, owner.name)
                except (OSError, ValueError, KeyError, TypeError):
                    mine = False
                if mine or self.holder(int(path.name)) is None:
                    with contextlib.suppress(OSError):
                        path.unlink()
