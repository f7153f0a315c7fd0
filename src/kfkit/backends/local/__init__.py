"""The local backend: every replica of a job runs as a process on this machine.

``submit`` validates and plans every replica first (so a missing secret stops
the job before anything starts), writes the job's state directory, and
starts a detached supervisor (:mod:`kfkit.backends.local.supervisor`) that
plays the training operator. Everything else reads the state directory, so
``kfkit get``/``logs``/``describe`` work from any terminal while the job runs.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import psutil

from kfkit.backends.base import CREATED, FAILED, JobRecord, JobStatus, now_rfc3339
from kfkit.backends.local.config import RUNTIMES, LocalConfig, load_config
from kfkit.backends.local.launch import ReplicaLaunch, operator_labels, plan_job, release_ports
from kfkit.backends.local.pods import plan_job_pods
from kfkit.backends.local.state import JobDir, all_job_dirs, read_json
from kfkit.backends.local.supervisor import add_event, killed_by_user, set_condition
from kfkit.containers.podman import podman
from kfkit.errors import (
    AlreadyExistsError,
    KfkitError,
    NotFoundError,
    ValidationError,
    WaitTimeoutError,
)
from kfkit.jobs.load import load_manifest
from kfkit.jobs.model import Job, Replica

POLL_SECONDS = 0.2
# One machine: more processes than this is a typo (replicas: 1000), not a job to run.
MAX_REPLICAS = 128
# What a merge patch may change on a submitted local job: the supervisor runs the spec it
# was started with, so only these take effect (the server's own metadata is ignored).
UPDATABLE_METADATA = ("labels", "annotations")
SERVER_METADATA = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields")
# A replica's phase as its pod's phase: a restarting replica's pod is still Running.
POD_PHASES = {"Restarting": "Running"}


def merge_patch(target: object, patch: object) -> object:
    """``target`` with ``patch`` merged into it as RFC 7386 says (null deletes a key)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


class LocalBackend:
    """Runs jobs as local processes; state under ``$KFKIT_HOME``."""

    name = "local"

    def __init__(
        self,
        home: str | Path | None = None,
        workdir: str | None = None,
        poddefaults: str | Path | None = None,
        runtime: str | None = None,
    ) -> None:
        self.config: LocalConfig = load_config(Path(home) if home else None)
        if runtime is not None:
            if runtime not in RUNTIMES:
                raise KfkitError(f"--runtime: {runtime!r} is not one of {', '.join(RUNTIMES)}")
            self.config.runtime = runtime
        if poddefaults is not None:
            self.config.poddefaults = Path(poddefaults)
        self.workdir = workdir or os.getcwd()

    # --- helpers ----------------------------------------------------------------------

    def _dir(self, name: str, namespace: str) -> JobDir:
        return JobDir(namespace, name, self.config.home)

    def _existing(self, name: str, namespace: str, kind: str | None = None) -> JobDir:
        job_dir = self._dir(name, namespace)
        if not job_dir.exists():
            raise NotFoundError(f"job {namespace}/{name} not found")
        if kind and job_dir.read_manifest().get("kind") != kind:
            raise NotFoundError(f"{kind} {namespace}/{name} not found")
        return job_dir

    def _record(self, job_dir: JobDir) -> JobRecord:
        job = Job(manifest=job_dir.read_manifest(), source=str(job_dir.manifest_file))
        status = JobStatus(read_json(job_dir.status_file, {}))
        record = JobRecord(
            job=job,
            status=status,
            replicas=read_json(job_dir.replicas_file, {}),
            events=read_json(job_dir.path / "events.json", []),
        )
        if not status.finished and not self._supervisor_alive(job_dir):
            # The supervisor died without finishing the job (machine reboot, kill -9).
            status = JobStatus(read_json(job_dir.status_file, {}))  # it may just have finished
            if not status.finished:
                set_condition(status.raw, job.kind, FAILED, "the local supervisor is gone")
                job_dir.write_json(job_dir.status_file, status.raw)
                record.status = status
        return record

    @staticmethod
    def _supervisor_alive(job_dir: JobDir) -> bool:
        pid = job_dir.supervisor_pid()
        if pid is None:
            return False
        try:
            return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    # --- the Backend verbs -------------------------------------------------------------

    def _admit(self, job: Job) -> tuple[dict[str, ReplicaLaunch], list[str]]:
        """Everything that decides whether ``job`` can run here; nothing is written.

        ``kfkit validate``, ``preflight`` and ``submit`` all come here, so whatever
        would stop a job from starting is reported before any job starts.
        """
        if job.total_replicas > MAX_REPLICAS:
            raise KfkitError(
                f"{job.source}: {job.describe()} has {job.total_replicas} replicas; the local "
                f"backend runs at most {MAX_REPLICAS} processes per job"
            )
        job_dir = self._dir(job.name, job.namespace)
        if job_dir.exists():
            previous = self._record(job_dir)
            if not previous.status.finished or self._supervisor_alive(job_dir):
                raise KfkitError(
                    f"{job.source}: metadata.name: {job.describe()} is already running; "
                    f"`kfkit delete job {job.name}` first"
                )
        if self.config.runtime == "container":
            return plan_job_pods(job, self.config, job_dir), []
        return plan_job(job, self.config, job_dir, self.workdir)

    def preflight(self, jobs: builtins.list[Job]) -> None:
        """Admit every job or none: raise one ``KfkitError`` listing every problem."""
        problems: builtins.list[str] = []
        for job in jobs:
            try:
                self._admit(job)
            except KfkitError as error:
                problems += error.lines()
            else:
                # Only admitted here; submit reserves the ports again for the job it starts.
                release_ports(self._dir(job.name, job.namespace), self.config.home)
        if problems:
            raise ValidationError(problems)

    def submit(self, job: Job, replace: bool = False) -> JobRecord:
        """Start ``job``; a job of the same name is refused, as the API server does,
        unless ``replace`` is set and that job has finished (its state then goes)."""
        job_dir = self._dir(job.name, job.namespace)
        if job_dir.exists() and not replace:
            previous = self._record(job_dir)
            if previous.status.finished and not self._supervisor_alive(job_dir):
                raise AlreadyExistsError(
                    f"{job.source}: metadata.name: {job.describe()} already exists "
                    f"({previous.status.phase}); `kfkit delete job {job.name}` first, "
                    "or run with --replace"
                )
        launches, notes = self._admit(job)  # refuses one that is still running
        if job_dir.exists():
            shutil.rmtree(job_dir.path)  # a finished run of the same job, replaced
        job_dir.path.mkdir(parents=True, exist_ok=True)
        job_dir.logs.mkdir(exist_ok=True)
        job_dir.write_manifest(job.manifest)
        job_dir.write_json(
            job_dir.launch_file,
            {
                "source": job.source,
                "workdir": self.workdir,
                "replicas": {key: launch.to_dict() for key, launch in launches.items()},
            },
        )
        status: dict[str, object] = {}
        set_condition(status, job.kind, CREATED, f"{job.kind} {job.name} is created.")
        job_dir.write_json(job_dir.status_file, status)
        add_event(job_dir, "Normal", f"{job.kind}Created", f"{job.kind} {job.name} is created.")
        for note in notes:
            add_event(job_dir, "Normal", "LocalPort", note)
        with (job_dir.path / "supervisor.log").open("ab") as log:
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "kfkit.backends.local.supervisor", str(job_dir.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        # Written here, not by the supervisor, so the job is never seen without one.
        job_dir.pid_file.write_text(str(supervisor.pid))
        return self._record(job_dir)

    def get(self, name: str, namespace: str = "default", kind: str | None = None) -> JobRecord:
        return self._record(self._existing(name, namespace, kind))

    def list(self, namespace: str | None = None) -> list[JobRecord]:
        return [self._record(job_dir) for job_dir in all_job_dirs(self.config.home, namespace)]

    def wait(
        self,
        name: str,
        namespace: str = "default",
        timeout: float = 600.0,
        on_update: Callable[[JobRecord], None] | None = None,
        kind: str | None = None,
    ) -> JobRecord:
        job_dir = self._existing(name, namespace, kind)
        deadline = time.monotonic() + timeout
        while True:
            record = self._record(job_dir)
            if on_update is not None:
                on_update(record)
            if record.status.finished:
                return record
            if time.monotonic() > deadline:
                raise WaitTimeoutError(
                    f"timed out after {timeout:.0f}s waiting for {record.job.describe()} "
                    f"(now {record.status.phase})"
                )
            time.sleep(POLL_SECONDS)

    def logs(
        self,
        name: str,
        namespace: str = "default",
        replica: str | None = None,
        follow: bool = False,
        kind: str | None = None,
        *,
        tail: int | None = None,
        previous: bool = False,
        since: float | None = None,
        timestamps: bool = False,
    ) -> Iterator[tuple[str, str]]:
        """Every run of each replica, oldest first, a separator line where it restarted.

        ``previous`` gives only the run before the latest one (``kubectl logs
        --previous``); ``tail`` the last lines of each replica. Replica output goes
        straight to its file, so there is no time per line: ``since`` and
        ``timestamps`` are refused rather than guessed.
        """
        if since is not None or timestamps:
            raise KfkitError(
                "--since/--timestamps: the local backend keeps no time per log line "
                "(replicas write straight to their log file); they work with --backend kubernetes"
            )
        job_dir = self._existing(name, namespace, kind)
        job = Job(manifest=job_dir.read_manifest(), source=str(job_dir.manifest_file))
        keys = [r.key for r in job.replicas]
        if replica is not None:
            if replica not in keys:
                raise NotFoundError(
                    f"replica {replica!r} not found in {job.describe()} ({', '.join(keys)})"
                )
            keys = [replica]
        states = read_json(job_dir.replicas_file, {})
        starts = {key: list((states.get(key) or {}).get("logStarts") or [0]) for key in keys}
        if previous:
            yield from self._previous_run(job_dir, keys, starts, tail)
            return
        offsets: dict[str, int] = {}
        for key in keys:
            lines, offsets[key] = _log_lines(
                job_dir.log_file(key), key, starts[key], 0, whole_lines=follow
            )
            yield from ((key, line) for line in (lines[-tail:] if tail is not None else lines))
        if follow:
            yield from self._follow(job_dir, keys, offsets)

    def _previous_run(
        self,
        job_dir: JobDir,
        keys: builtins.list[str],
        starts: dict[str, builtins.list[int]],
        tail: int | None,
    ) -> Iterator[tuple[str, str]]:
        for key in keys:
            if len(starts[key]) < 2:
                raise NotFoundError(
                    f"replica {key} of job {job_dir.namespace}/{job_dir.name} has not "
                    "restarted: there is no previous run"
                )
            begin, end = starts[key][-2], starts[key][-1]
            with job_dir.log_file(key).open("rb") as handle:
                handle.seek(begin)
                text = handle.read(end - begin).decode("utf-8", errors="replace")
            lines = text.splitlines()
            yield from ((key, line) for line in (lines[-tail:] if tail is not None else lines))

    def _follow(
        self, job_dir: JobDir, keys: builtins.list[str], offsets: dict[str, int]
    ) -> Iterator[tuple[str, str]]:
        """Yield new lines of every replica's log, from ``offsets``, until the job has finished."""
        while True:
            finished = self._record(job_dir).status.finished
            states = read_json(job_dir.replicas_file, {})
            for key in keys:
                starts = list((states.get(key) or {}).get("logStarts") or [0])
                # Only whole lines until the job ends; then whatever is left.
                lines, offsets[key] = _log_lines(
                    job_dir.log_file(key), key, starts, offsets[key], whole_lines=not finished
                )
                yield from ((key, line) for line in lines)
            if finished:
                return
            time.sleep(POLL_SECONDS)

    def stop(self, name: str, namespace: str = "default", timeout: float = 60.0) -> None:
        """Stop every replica of a running job, keeping its state and logs."""
        job_dir = self._existing(name, namespace)
        pid = job_dir.supervisor_pid()
        if pid is not None and self._supervisor_alive(job_dir):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self._supervisor_alive(job_dir) and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._supervisor_alive(job_dir):
                os.kill(pid, signal.SIGKILL)
        self._kill_leftovers(job_dir)

    @staticmethod
    def _kill_leftovers(job_dir: JobDir) -> None:
        """Last resort: kill replica process groups the supervisor left (it was killed)."""
        for state in read_json(job_dir.replicas_file, {}).values():
            pid = state.get("pid")
            if pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def kill_replica(self, name: str, replica: str, namespace: str = "default") -> None:
        record = self.get(name, namespace)
        state = record.replicas.get(replica)
        if state is None:
            raise NotFoundError(
                f"replica {replica!r} not found in {record.job.describe()} "
                f"({', '.join(record.replicas)})"
            )
        if not state.get("pid"):
            raise KfkitError(f"{record.job.describe()}: {replica} is not running")
        job_dir = self._dir(name, namespace)
        pod = (read_json(job_dir.launch_file, {}).get("replicas", {}).get(replica) or {}).get("pod")
        if pod:
            # The container dies, as when a node kills it; its pod process sees exit 137.
            killed_by_user(job_dir, replica).touch()
            container = f"{pod['name']}-{pod['main']}"
            podman(["kill", "--signal", "KILL", container], check=False)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(state["pid"]), signal.SIGKILL)

    def update(self, name: str, namespace: str, kind: str, patch: dict[str, Any]) -> JobRecord:
        """Merge ``patch`` into the job's labels and annotations; refuse any other change."""
        job_dir = self._existing(name, namespace, kind)
        manifest = job_dir.read_manifest()
        patch = {key: value for key, value in patch.items() if key != "status"}
        if isinstance(patch.get("metadata"), dict):
            patch["metadata"] = {
                key: value for key, value in patch["metadata"].items() if key not in SERVER_METADATA
            }
        merged = cast(dict[str, Any], merge_patch(manifest, patch))
        changed = sorted(
            key
            for key in set(manifest) | set(merged)
            if key != "metadata" and manifest.get(key) != merged.get(key)
        )
        old_meta, new_meta = manifest.get("metadata") or {}, merged.get("metadata") or {}
        changed += sorted(
            f"metadata.{key}"
            for key in set(old_meta) | set(new_meta)
            if key not in UPDATABLE_METADATA and old_meta.get(key) != new_meta.get(key)
        )
        if changed:
            raise KfkitError(
                f"{kind} {namespace}/{name}: {', '.join(changed)}: the local backend cannot "
                "change a submitted job (only metadata.labels and metadata.annotations); "
                "delete it and create it again"
            )
        load_manifest(merged, str(job_dir.manifest_file))  # new labels are checked as on create
        job_dir.write_manifest(merged)
        return self._record(job_dir)

    def pods(self, namespace: str, labels: dict[str, str]) -> builtins.list[dict[str, Any]]:
        """Each replica the supervisor has taken on, as the pod the operator would have made.

        A replica has a pod once it is in ``replicas.json``, as on a cluster it has
        one once the operator has created it; ``labels`` select as a label selector.
        """
        pods = []
        for record in self.list(namespace):
            for key, state in record.replicas.items():
                pod = replica_pod(record.job, key, state)
                pod_labels = pod["metadata"]["labels"]
                if all(pod_labels.get(k) == v for k, v in labels.items()):
                    pods.append(pod)
        return pods

    def delete(self, name: str, namespace: str = "default", kind: str | None = None) -> None:
        job_dir = self._existing(name, namespace, kind)
        self.stop(name, namespace)
        shutil.rmtree(job_dir.path, ignore_errors=True)


def restart_separator(key: str, run: int) -> str:
    """The line ``kfkit logs`` shows where a replica's log continues after a restart."""
    return f"----- {key}: restart {run} -----"


def _log_lines(
    log_file: Path, key: str, starts: builtins.list[int], begin: int, whole_lines: bool = False
) -> tuple[builtins.list[str], int]:
    """The lines of ``log_file`` from byte ``begin``, a separator before each restart;
    and the offset reading stopped at (before a partial last line with ``whole_lines``)."""
    try:
        with log_file.open("rb") as handle:
            handle.seek(begin)
            data = handle.read()
    except FileNotFoundError:
        return [], begin
    if whole_lines:
        data = data[: data.rfind(b"\n") + 1]
    lines: builtins.list[str] = []
    cuts = {s - begin for s in starts if s > 0 and begin <= s < begin + len(data)}
    edges = sorted({0, len(data), *cuts})
    for low, high in itertools.pairwise(edges):
        if low in cuts:
            lines.append(restart_separator(key, starts.index(begin + low)))
        lines += data[low:high].decode("utf-8", errors="replace").splitlines()
    return lines, begin + len(data)


def replica_pod(job: Job, key: str, state: dict[str, Any]) -> dict[str, Any]:
    """One replica's pod as an API dict: the operator's name and labels, the kubelet's status."""
    replica = Replica(str(state["type"]), int(state["index"]))
    spec = job.replica_specs[replica.type]
    container = spec.container(job.info.container_name) or {}
    phase = str(state.get("phase") or "Pending")
    if state.get("exitCode") is not None:
        container_state: dict[str, Any] = {
            "terminated": {"exitCode": state["exitCode"], "reason": state.get("reason") or ""}
        }
    else:
        container_state = {"running": {}} if phase == "Running" else {"waiting": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{job.name}-{key}",
            "namespace": job.namespace,
            "labels": operator_labels(job, replica),
        },
        "spec": spec.template.get("spec") or {},
        "status": {
            "phase": POD_PHASES.get(phase, phase),
            "containerStatuses": [
                {
                    "name": job.info.container_name,
                    "image": str(container.get("image", "")),
                    "imageID": "",
                    "ready": phase == "Running",
                    "restartCount": int(state.get("restarts") or 0),
                    "state": container_state,
                }
            ],
        },
    }


__all__ = ["LocalBackend", "now_rfc3339", "restart_separator"]
