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
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from kfkit.backends.base import CREATED, JobRecord, JobStatus, now_rfc3339
from kfkit.backends.local import processes
from kfkit.backends.local.config import RUNTIMES, LocalConfig, load_config
from kfkit.backends.local.launch import ReplicaLaunch, operator_labels, plan_job, release_ports
from kfkit.backends.local.lock import JobLock, is_held
from kfkit.backends.local.pods import plan_job_pods
from kfkit.backends.local.state import (
    CorruptStateError,
    JobDir,
    StateError,
    all_job_dirs,
    read_json,
)
from kfkit.backends.local.supervisor import (
    add_event,
    killed_by_user,
    record_failure,
    replicas_lost,
    set_condition,
)
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
LOCK_WAIT_SECONDS = 2.0  # a reader may hold the lock for a moment; a supervisor holds it for good
_jobs: dict[Path, tuple[tuple[int, int, int], Job]] = {}  # job.yaml already read and checked
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
        # One line per job that ``list`` had to leave out because its state is unreadable.
        self.unreadable: builtins.list[str] = []

    # --- helpers ----------------------------------------------------------------------

    def _dir(self, name: str, namespace: str) -> JobDir:
        return JobDir(namespace, name, self.config.home)

    def _existing(self, name: str, namespace: str, kind: str | None = None) -> JobDir:
        job_dir = self._dir(name, namespace)
        if not job_dir.exists():
            raise NotFoundError(f"job {namespace}/{name} not found")
        if kind and self._job(job_dir).kind != kind:
            raise NotFoundError(f"{kind} {namespace}/{name} not found")
        return job_dir

    @staticmethod
    def _job(job_dir: JobDir) -> Job:
        """The job stored in ``job.yaml``, checked again as on submission (cached by stat)."""
        try:
            info = job_dir.manifest_file.stat()
        except FileNotFoundError:
            if is_held(job_dir.lock_file):  # `kfkit run` is writing it right now
                raise NotFoundError(f"job {job_dir.namespace}/{job_dir.name} not found") from None
            raise CorruptStateError(
                f"{job_dir.manifest_file}: is missing; `kfkit delete job` removes the job"
            ) from None
        signature = (info.st_ino, info.st_size, info.st_mtime_ns)
        cached = _jobs.get(job_dir.manifest_file)
        if cached is not None and cached[0] == signature:
            return cached[1]
        source = str(job_dir.manifest_file)
        try:
            job = load_manifest(job_dir.read_manifest(), source=source)
        except CorruptStateError:
            raise
        except KfkitError as error:
            raise CorruptStateError(f"{source}: is corrupt ({error.lines()[0]})") from None
        _jobs[job_dir.manifest_file] = (signature, job)
        return job

    def _record(self, job_dir: JobDir) -> JobRecord:
        job = self._job(job_dir)
        status = JobStatus(read_json(job_dir.status_file, {}))
        if not status.finished and not is_held(job_dir.lock_file):
            status = self._supervisor_gone(job_dir, job) or status
        return JobRecord(
            job=job,
            status=status,
            replicas=read_json(job_dir.replicas_file, {}),
            events=read_json(job_dir.events_file, []),
        )

    def _supervisor_gone(self, job_dir: JobDir, job: Job) -> JobStatus | None:
        """No process holds the job's lock, yet the job never finished (a reboot, say)."""
        with JobLock(job_dir.lock_file) as lock:
            if not lock.acquire():
                return None  # being started or run right now
            status = JobStatus(read_json(job_dir.status_file, {}))
            if status.finished or not job_dir.launch_file.exists():
                return status
            self._kill_leftovers(job_dir)
            message = "the local supervisor is gone (no process holds the job's lock)"
            record_failure(job_dir, message, reason="LocalSupervisorGone")
            replicas_lost(job_dir, "its supervisor is gone")
            return JobStatus(read_json(job_dir.status_file, {}))

    @staticmethod
    def _supervisor_alive(job_dir: JobDir) -> bool:
        return is_held(job_dir.lock_file)

    # --- the Backend verbs -------------------------------------------------------------

    def _admit(
        self, job: Job, locked: bool = False
    ) -> tuple[dict[str, ReplicaLaunch], builtins.list[str]]:
        """Everything that decides whether ``job`` can run here; nothing is written.

        ``kfkit validate``, ``preflight`` and ``submit`` all come here, so whatever
        would stop a job from starting is reported before any job starts. ``submit``
        calls it holding the job's lock (``locked``), so no other run can start meanwhile.
        """
        if job.total_replicas > MAX_REPLICAS:
            raise KfkitError(
                f"{job.source}: {job.describe()} has {job.total_replicas} replicas; the local "
                f"backend runs at most {MAX_REPLICAS} processes per job"
            )
        job_dir = self._dir(job.name, job.namespace)
        if not locked and is_held(job_dir.lock_file):
            raise self._already_running(job)
        try:
            if self.config.runtime == "container":
                return plan_job_pods(job, self.config, job_dir), []
            return plan_job(job, self.config, job_dir, self.workdir)
        except OSError as error:  # port reservations on a full or read-only disk
            raise _not_created(job, error, job_dir) from None

    @staticmethod
    def _already_running(job: Job) -> KfkitError:
        return AlreadyExistsError(
            f"{job.source}: metadata.name: {job.describe()} already exists and is running; "
            f"`kfkit delete job {job.name} -n {job.namespace}` first"
        )

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
        fresh = not job_dir.exists()
        lock = JobLock(job_dir.lock_file)
        if not lock.acquire(timeout=LOCK_WAIT_SECONDS):
            raise self._already_running(job)
        cleared = False
        try:
            if not fresh and not replace and job_dir.manifest_file.exists():
                previous = self._record(job_dir)
                raise AlreadyExistsError(
                    f"{job.source}: metadata.name: {job.describe()} already exists "
                    f"({previous.status.phase}); `kfkit delete job {job.name}` first, "
                    "or run with --replace"
                )
            # Planned under the lock: a running job of the same name keeps its ports.
            launches, notes = self._admit(job, locked=True)
            uid = str(uuid.uuid4())
            job_dir.clear(keep=(job_dir.lock_file.name,))  # a finished run of the same job
            cleared = True
            _jobs.pop(job_dir.manifest_file, None)
            self._write_new_job(job, job_dir, uid, launches, notes, self.workdir)
            with (job_dir.path / "supervisor.log").open("ab") as log:
                assert lock.fd is not None
                guardian = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "kfkit.backends.local.supervisor",
                        str(job_dir.path),
                        "--lock-fd",
                        str(lock.fd),
                        "--uid",
                        uid,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=(lock.fd,),
                )
            # So that `kfkit delete` can stop the job at once; the guardian writes the full
            # record itself (with the supervisor it forks) unless it already has.
            with contextlib.suppress(OSError):  # best effort: it exists, or the disk is full
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
                descriptor = os.open(job_dir.supervisor_file, flags, 0o600)
                with os.fdopen(descriptor, "w") as out:
                    json.dump({"guardian": processes.identity(guardian.pid)}, out)
        except BaseException as error:
            # Nothing half-made is left: a new job's directory goes; a finished job that was
            # to be replaced stays as it was unless its state was already cleared.
            if fresh:
                job_dir.remove()
            elif cleared:
                job_dir.clear(keep=(job_dir.lock_file.name,))
            if isinstance(error, OSError):  # a full or read-only disk: the user's to fix
                raise _not_created(job, error, job_dir) from None
            raise
        finally:
            lock.release()  # the supervisor holds it from here on
        return self._record(job_dir)

    @staticmethod
    def _write_new_job(
        job: Job,
        job_dir: JobDir,
        uid: str,
        launches: dict[str, Any],
        notes: builtins.list[str],
        workdir: str,
    ) -> None:
        job_dir.logs.mkdir(exist_ok=True)
        job_dir.reserve_space()
        job_dir.write_manifest(job.manifest)
        job_dir.write_json(
            job_dir.launch_file,
            {
                "source": job.source,
                "workdir": workdir,
                "uid": uid,
                "replicas": {key: launch.to_dict() for key, launch in launches.items()},
            },
        )
        status: dict[str, object] = {}
        set_condition(status, job.kind, CREATED, f"{job.kind} {job.name} is created.")
        job_dir.write_json(job_dir.status_file, status)
        add_event(job_dir, "Normal", f"{job.kind}Created", f"{job.kind} {job.name} is created.")
        for note in notes:
            add_event(job_dir, "Normal", "LocalBackend", note)

    def get(self, name: str, namespace: str = "default", kind: str | None = None) -> JobRecord:
        return self._record(self._existing(name, namespace, kind))

    def list(self, namespace: str | None = None) -> list[JobRecord]:
        """Every readable job; one line per unreadable one goes to ``self.unreadable``."""
        records, self.unreadable = [], []
        for job_dir in all_job_dirs(self.config.home, namespace):
            try:
                records.append(self._record(job_dir))
            except StateError as error:
                if job_dir.manifest_file.exists() or not is_held(job_dir.lock_file):
                    self.unreadable.append(error.message)  # else: being created right now
        return records

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
        job = self._job(job_dir)
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
        self._stop(self._existing(name, namespace), timeout)

    def _stop(self, job_dir: JobDir, timeout: float = 60.0) -> None:
        """SIGTERM the supervisor (it stops the replicas), SIGKILL it after ``timeout``."""
        try:
            info = read_json(job_dir.supervisor_file, {})
        except CorruptStateError:
            info = {}
        # Only processes whose start time matches what was recorded: never a reused pid.
        guardian, supervisor = (
            processes.find(info.get("guardian")),
            processes.find(info.get("supervisor")),
        )
        deadline = time.monotonic() + timeout
        if is_held(job_dir.lock_file):
            for process in (guardian or supervisor,):
                if process is not None:
                    with contextlib.suppress(Exception):
                        process.send_signal(signal.SIGTERM)
            while is_held(job_dir.lock_file) and time.monotonic() < deadline:
                time.sleep(0.05)
        for process in (guardian, supervisor):
            if process is not None and process.is_running():
                with contextlib.suppress(Exception):
                    process.kill()
        self._kill_leftovers(job_dir)

    @staticmethod
    def _kill_leftovers(job_dir: JobDir) -> None:
        """Kill every process of the job's replicas that is still alive (by mark and pid)."""
        uid: Any = None
        with contextlib.suppress(CorruptStateError):
            uid = read_json(job_dir.launch_file, {}).get("uid")
        with contextlib.suppress(CorruptStateError, AttributeError):
            for state in read_json(job_dir.replicas_file, {}).values():
                processes.kill_tree(processes.find(state), None)
        if isinstance(uid, str) and uid:
            processes.kill_tree(None, f"{uid}/")

    def kill_replica(self, name: str, replica: str, namespace: str = "default") -> None:
        record = self.get(name, namespace)
        state = record.replicas.get(replica)
        if state is None:
            raise NotFoundError(
                f"replica {replica!r} not found in {record.job.describe()} "
                f"({', '.join(record.replicas)})"
            )
        process = processes.find(state)
        if process is None:
            raise KfkitError(f"{record.job.describe()}: {replica} is not running")
        job_dir = self._dir(name, namespace)
        pod = (read_json(job_dir.launch_file, {}).get("replicas", {}).get(replica) or {}).get("pod")
        if pod:
            # The container dies, as when a node kills it; its pod process sees exit 137.
            marker = killed_by_user(job_dir, replica)
            marker.touch()
            container = f"{pod['name']}-{pod['main']}"
            try:
                podman(["kill", "--signal", "KILL", container])
            except KfkitError:
                marker.unlink(missing_ok=True)
                raise
            return
        processes.signal_group(process.pid, signal.SIGKILL)

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
        """Stop and remove a job, whatever state its files are in."""
        job_dir = self._dir(name, namespace)
        if not job_dir.exists():
            raise NotFoundError(f"job {namespace}/{name} not found")
        if kind:
            with contextlib.suppress(StateError):  # an unreadable job is deleted all the same
                self._existing(name, namespace, kind)
        self._stop(job_dir)
        with JobLock(job_dir.lock_file) as lock:
            if not lock.acquire(timeout=10.0):
                raise KfkitError(f"job {namespace}/{name}: its supervisor did not stop; try again")
            self._kill_leftovers(job_dir)
            _jobs.pop(job_dir.manifest_file, None)
            job_dir.remove()


def _not_created(job: Job, error: OSError, job_dir: JobDir) -> KfkitError:
    where = error.filename or job_dir.path
    return KfkitError(
        f"{job.source}: {job.describe()} not created: cannot write {where}: {error.strerror}"
    )


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
