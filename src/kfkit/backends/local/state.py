"""Where a local job keeps its state, and how it is read and written safely.

``$KFKIT_HOME/jobs/<namespace>/<name>/`` holds ``job.yaml`` (the defaulted
manifest), ``status.json`` (the operator-shaped ``.status``), ``replicas.json``
(per-replica process state), ``launch.json`` (how the job was submitted),
``events.json``, ``supervisor.json`` (the supervisor's pid and start time),
``supervisor.lock`` and ``logs/<replica>.log``.

Three promises live here:

- Every path is built from single, plain path components and checked, after
  resolving symlinks, to lie under its root, so no name (validated upstream or
  not) can reach outside ``$KFKIT_HOME``.
- Writers replace whole files atomically (temp file + rename), so a reader
  never sees half a status; readers that find a file missing, truncated or
  corrupt raise :class:`CorruptStateError` with one line naming the file.
- Removal only ever deletes the job's own directory, never through a symlink.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from kfkit.errors import KfkitError

RESERVE_BYTES = 64 * 1024


class StateError(KfkitError):
    """A name or path that cannot be trusted to stay inside kfkit's state."""


class CorruptStateError(StateError):
    """A state file exists but cannot be read back."""


def kfkit_home() -> Path:
    """``$KFKIT_HOME``, default ``~/.kfkit``."""
    return Path(os.environ.get("KFKIT_HOME") or Path.home() / ".kfkit")


def plain_component(value: object) -> bool:
    """Is ``value`` one directory entry name (not empty, ``.``, ``..``, no ``/`` or NUL)?"""
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and "/" not in value
        and "\0" not in value
    )


def contained(root: Path, *parts: str, what: str = "name") -> Path:
    """``root/parts...``, refused unless every part is a plain component and the
    result, with symlinks resolved, still lies under ``root``.

    This is the defence in depth behind name validation: even a name that
    reached here unvalidated cannot climb out of ``root``.
    """
    for part in parts:
        if not plain_component(part):
            raise StateError(f"{what}: {part!r} cannot name a directory under {root}")
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise StateError(f"{what}: {path} resolves outside {root}")
    return path


def contained_subpath(root: Path, subpath: str, what: str) -> Path:
    """``root/subpath`` for a relative subPath that may not climb out (no ``..``, not absolute)."""
    parts = [part for part in subpath.split("/") if part not in ("", ".")]
    if subpath.startswith("/") or ".." in parts or "\0" in subpath:
        raise StateError(f"{what}: {subpath!r} must be a relative path without '..'")
    return contained(root, *parts, what=what) if parts else root


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (owner-only, as it may hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _corrupt(path: Path, problem: str) -> CorruptStateError:
    return CorruptStateError(
        f"{path}: {problem}; `kfkit delete job` removes the job and a new run starts afresh"
    )


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in ``path``; ``default`` when it is missing.

    A file that is truncated, not JSON, or not of ``default``'s type (a dict
    where a list is expected) raises :class:`CorruptStateError`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default
    except (OSError, UnicodeDecodeError) as error:
        raise _corrupt(path, f"cannot be read ({error.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _corrupt(path, f"is corrupt (not JSON: {error.msg}, line {error.lineno})") from None
    if default is not None and not isinstance(data, type(default)):
        expected = type(default).__name__
        raise _corrupt(path, f"is corrupt (a {type(data).__name__}, expected a {expected})")
    return data


class JobDir:
    """The state directory of one local job."""

    def __init__(self, namespace: str, name: str, home: Path | None = None) -> None:
        self.namespace = namespace
        self.name = name
        self.root = (home or kfkit_home()) / "jobs"
        self.path = contained(
            self.root, namespace, name, what=f"job {namespace}/{name}: metadata.namespace/name"
        )

    @property
    def manifest_file(self) -> Path:
        return self.path / "job.yaml"

    @property
    def status_file(self) -> Path:
        return self.path / "status.json"

    @property
    def replicas_file(self) -> Path:
        return self.path / "replicas.json"

    @property
    def launch_file(self) -> Path:
        return self.path / "launch.json"

    @property
    def events_file(self) -> Path:
        return self.path / "events.json"

    @property
    def supervisor_file(self) -> Path:
        return self.path / "supervisor.json"

    @property
    def lock_file(self) -> Path:
        return self.path / "supervisor.lock"

    @property
    def reserve_file(self) -> Path:
        return self.path / "space.reserve"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def reserve_space(self) -> None:
        """Set aside a little disk, so the reason a job failed can be written on a full disk."""
        with self.reserve_file.open("wb") as reserve:
            try:
                os.posix_fallocate(reserve.fileno(), 0, RESERVE_BYTES)
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    raise
                reserve.write(b"\0" * RESERVE_BYTES)  # a filesystem without fallocate

    def release_space(self) -> bool:
        """Give the reserved disk back; False when there was none left to give."""
        try:
            self.reserve_file.unlink()
        except FileNotFoundError:
            return False
        return True

    def log_file(self, replica_key: str) -> Path:
        return contained(self.logs, f"{replica_key}.log", what="replica")

    def volume_dir(self, replica_key: str, volume: str) -> Path:
        """Where an emptyDir of one replica lives: inside the job, gone with it."""
        return contained(self.path / "volumes", replica_key, volume, what="volumes[].name")

    def exists(self) -> bool:
        """Does a job live here (its directory exists, whatever state its files are in)?"""
        return self.path.is_dir() and not self.path.is_symlink()

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_atomic(self.manifest_file, yaml.safe_dump(manifest, sort_keys=False))

    def read_manifest(self) -> dict[str, Any]:
        try:
            text = self.manifest_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _corrupt(self.manifest_file, "is missing") from None
        except (OSError, UnicodeDecodeError) as error:
            raise _corrupt(
                self.manifest_file, f"cannot be read ({error.__class__.__name__})"
            ) from None
        try:
            manifest = yaml.safe_load(text)
        except yaml.YAMLError:
            raise _corrupt(self.manifest_file, "is corrupt (not YAML)") from None
        if not isinstance(manifest, dict):
            raise _corrupt(self.manifest_file, "is corrupt (not a mapping)")
        return manifest

    def write_json(self, path: Path, data: Any) -> None:
        write_atomic(path, json.dumps(data, indent=2, sort_keys=True))

    def clear(self, keep: tuple[str, ...] = ()) -> None:
        """Remove every entry of the job's directory except ``keep`` (a new run's fresh start)."""
        for entry in list(self.path.iterdir()) if self.exists() else []:
            if entry.name not in keep:
                _remove(entry)

    def remove(self) -> None:
        """Delete the job's own directory; a symlink in its place is unlinked, never followed."""
        if self.path.is_symlink():
            self.path.unlink()
        elif self.path.exists():
            contained(self.root, self.namespace, self.name, what="job directory")
            _remove(self.path)
        for parent in (self.path.parent, self.root):  # the namespace and jobs/, once empty
            with contextlib.suppress(OSError):
                parent.rmdir()


def _remove(path: Path) -> None:
    """Remove a file or a whole tree without following any symlink inside it."""
    assert shutil.rmtree.avoids_symlink_attacks
    if path.is_dir() and not path.is_symlink():
        try:
            shutil.rmtree(path)
        except OSError as error:
            raise StateError(f"{path}: cannot be removed: {error.strerror}") from None
    else:
        path.unlink(missing_ok=True)


def all_job_dirs(home: Path | None = None, namespace: str | None = None) -> list[JobDir]:
    """Every job directory (skipping entries kfkit cannot have made: symlinks, odd names)."""
    root = (home or kfkit_home()) / "jobs"

    def entries(directory: Path) -> list[str]:
        if not directory.is_dir() or directory.is_symlink():
            return []
        return sorted(
            path.name
            for path in directory.iterdir()
            if plain_component(path.name) and path.is_dir() and not path.is_symlink()
        )

    if namespace is not None and not plain_component(namespace):
        raise StateError(f"namespace: {namespace!r} cannot name a directory under {root}")
    namespaces = [namespace] if namespace is not None else entries(root)
    return [JobDir(ns, name, home) for ns in namespaces for name in entries(root / ns)]
