"""Where a local job keeps its state, and how it is read and written safely.

``$KFKIT_HOME/jobs/<namespace>/<name>/`` holds ``job.yaml`` (the defaulted
manifest), ``status.json`` (the operator-shaped ``.status``), ``replicas.json``
(per-replica process state), ``launch.json`` (how the job was submitted),
``supervisor.pid`` and ``logs/<replica>.log``. Writers replace whole files
atomically (temp file + rename), so a reader never sees half a status.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml


def kfkit_home() -> Path:
    """``$KFKIT_HOME``, default ``~/.kfkit``."""
    return Path(os.environ.get("KFKIT_HOME") or Path.home() / ".kfkit")


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


class JobDir:
    """The state directory of one local job."""

    def __init__(self, namespace: str, name: str, home: Path | None = None) -> None:
        self.namespace = namespace
        self.name = name
        self.path = (home or kfkit_home()) / "jobs" / namespace / name

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
    def pid_file(self) -> Path:
        return self.path / "supervisor.pid"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def log_file(self, replica_key: str) -> Path:
        return self.logs / f"{replica_key}.log"

    def exists(self) -> bool:
        return self.manifest_file.exists()

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_atomic(self.manifest_file, yaml.safe_dump(manifest, sort_keys=False))

    def read_manifest(self) -> dict[str, Any]:
        return dict(yaml.safe_load(self.manifest_file.read_text(encoding="utf-8")))

    def write_json(self, path: Path, data: Any) -> None:
        write_atomic(path, json.dumps(data, indent=2, sort_keys=True))

    def supervisor_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None


def all_job_dirs(home: Path | None = None, namespace: str | None = None) -> list[JobDir]:
    root = (home or kfkit_home()) / "jobs"
    namespaces = [namespace] if namespace else sorted(p.name for p in root.glob("*") if p.is_dir())
    found = []
    for ns in namespaces:
        for path in sorted((root / ns).glob("*")):
            job_dir = JobDir(ns, path.name, home)
            if job_dir.exists():
                found.append(job_dir)
    return found
