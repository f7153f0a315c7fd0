"""The lock that makes one supervisor per job: ``flock`` on ``supervisor.lock``.

``kfkit run`` takes the lock before it writes anything and hands the locked
file to the supervisor, which holds it until its very end (the kernel drops it
when the last process holding it exits, however it exits). So "is the lock
held?" is the answer to "is this job being run?", with no pid to trust and no
window while the job starts in which a reader could think it is gone.

A lock file can be unlinked while held (``kfkit delete`` removes the job's
directory), so a lock counts only when the file locked is still the one at its
path; otherwise it is taken again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

RETRY_SECONDS = 0.05
_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC  # a lock file is never reached through a symlink


class JobLock:
    """An exclusive flock on one file; ``fd`` is the locked descriptor once acquired."""

    def __init__(self, path: Path, fd: int | None = None) -> None:
        self.path = path
        self.fd = fd

    def acquire(self, timeout: float = 0.0) -> bool:
        """Take the lock, waiting up to ``timeout`` seconds; False when someone holds it."""
        deadline = time.monotonic() + timeout
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, _FLAGS | os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:  # the directory was removed meanwhile: try again
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    return False
                time.sleep(RETRY_SECONDS)
                continue
            if _same_file(fd, self.path):
                self.fd = fd
                return True
            os.close(fd)

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def __enter__(self) -> JobLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
    except FileNotFoundError:
        return False


def is_held(path: Path) -> bool:
    """Does some process hold the lock at ``path``? (A shared probe: it never blocks a holder.)"""
    try:
        fd = os.open(path, _FLAGS | os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
