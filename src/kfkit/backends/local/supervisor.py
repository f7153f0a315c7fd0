"""The process that runs one local job, playing the training operator and the kubelet.

``kfkit run`` starts one supervisor per job, detached from the terminal, with
``python -m kfkit.backends.local.supervisor JOB_DIR``. It starts every
replica in a process group of its own, restarts replicas as their
restartPolicy says, enforces ``backoffLimit``, ``activeDeadlineSeconds``,
``cleanPodPolicy``, ``ttlSecondsAfterFinished`` and memory limits, and keeps
``status.json`` in the operator's shape. On SIGTERM (``kfkit delete``, Ctrl-C)
it stops every replica: SIGTERM to the group, then SIGKILL to the replica's
whole tree after the grace period, since a TensorFlow worker waiting for a
peer ignores SIGTERM.

The process ``kfkit run`` starts is a guardian: it holds the job's lock
(:mod:`kfkit.backends.local.lock`), forks the supervisor proper and waits
for it. However the supervisor ends (an exception, a full disk, kill -9), the
guardian kills whatever is left of every replica's process tree and records
why the job ended as its Failed condition. If the guardian itself is killed,
the supervisor gets SIGTERM (PR_SET_PDEATHSIG) and stops the replicas; a
replica's own process also gets SIGKILL when its supervisor dies.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

from kfkit.backends.base import (
    FAILED,
    RESTARTING,
    RUNNING,
    SUCCEEDED,
    now_rfc3339,
)
from kfkit.backends.local import processes
from kfkit.backends.local.launch import ReplicaLaunch
from kfkit.backends.local.lock import JobLock
from kfkit.backends.local.security import enforced
from kfkit.backends.local.state import CorruptStateError, JobDir, read_json
from kfkit.backends.local.volumes import MountError, prepare
from kfkit.jobs.model import PYTORCH_JOB, Job, Replica

POLL_SECONDS = 0.1
MEMORY_CHECK_SECONDS = 0.5
RESTART_BACKOFF_SECONDS = (1, 2, 4, 8, 16, 30)  # the kubelet's crash-loop backoff, scaled down
_PR_SET_PDEATHSIG = 1


def _die_with_parent(signum: int = signal.SIGKILL) -> None:
    """In the child: get ``signum`` when the parent dies, whatever kills it.

    Runs after the child switched users (the kernel clears this setting then).
    """
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)


def killed_by_user(job_dir: JobDir, replica_key: str) -> Path:
    """The marker ``kill_replica`` leaves before it kills a replica's container."""
    return job_dir.path / f".killed-{replica_key}"


def add_event(job_dir: JobDir, kind: str, reason: str, message: str) -> None:
    """Append a Kubernetes-style event (Normal/Warning) to the job's events.json."""
    try:
        events = read_json(job_dir.events_file, [])
    except CorruptStateError as error:
        # Keep the job running; the events so far are lost, and that is said.
        events = [{"time": now_rfc3339(), "type": "Warning", "reason": "EventsLost"}]
        events[0]["message"] = error.message
    events.append({"time": now_rfc3339(), "type": kind, "reason": reason, "message": message})
    job_dir.write_json(job_dir.events_file, events)


def set_condition(
    status: dict[str, Any], kind: str, condition: str, message: str, reason: str | None = None
) -> bool:
    """Set ``condition`` True as the operator does, turning Running/Restarting off as needed.

    A finished job stays finished: once Succeeded or Failed is True, neither can
    be set again (the operator stops reconciling a finished job), so the two are
    never both True. Returns whether the condition was set.
    """
    now = now_rfc3339()
    reason = reason or f"{kind}{condition}"
    conditions = status.setdefault("conditions", [])
    if any(c.get("type") in (SUCCEEDED, FAILED) and c.get("status") == "True" for c in conditions):
        return False
    if condition in (RUNNING, RESTARTING, SUCCEEDED, FAILED):
        # Only one of Running/Restarting is true; finishing turns both off.
        for existing in conditions:
            exclusive = (RUNNING, RESTARTING) if condition in (RUNNING, RESTARTING) else ()
            finishing = condition in (SUCCEEDED, FAILED) and existing["type"] in (
                RUNNING,
                RESTARTING,
            )
            turn_off = (
                existing["type"] in exclusive and existing["type"] != condition
            ) or finishing
            if turn_off and existing["status"] == "True":
                existing.update(status="False", lastUpdateTime=now, lastTransitionTime=now)
    for existing in conditions:
        if existing["type"] == condition:
            if existing["status"] != "True" or existing["message"] != message:
                existing.update(status="True", reason=reason, message=message, lastUpdateTime=now)
                existing["lastTransitionTime"] = now
            return True
    conditions.append(
        {
            "type": condition,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
        }
    )
    return True


def record_failure(job_dir: JobDir, message: str, reason: str = "LocalSupervisorFailed") -> None:
    """Record why the job ended as its Failed condition (unless it had already finished).

    On a full disk the job's reserved space is given back first, so the reason
    still gets written.
    """
    for attempt in range(2):
        try:
            try:
                status = read_json(job_dir.status_file, {})
            except CorruptStateError:
                status = {}
            kind = job_dir.read_manifest().get("kind", "Job")
            if set_condition(status, str(kind), FAILED, message, reason=reason):
                status.setdefault("completionTime", now_rfc3339())
                job_dir.write_json(job_dir.status_file, status)
                add_event(job_dir, "Warning", reason, message)
            return
        except OSError as error:
            if attempt == 0 and error.errno == errno.ENOSPC and job_dir.release_space():
                continue
            _say(f"kfkit: cannot record {message!r}: {error}")
            return
        except CorruptStateError as error:
            _say(f"kfkit: cannot record {message!r}: {error}")
            return


def _say(line: str) -> None:
    """A line for supervisor.log, which may itself be on a full disk."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


@dataclass
class ReplicaProcess:
    """One replica and its current process, if any."""

    replica: Replica
    launch: ReplicaLaunch
    restart_policy: str
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    phase: str = "Pending"  # Pending, Running, Restarting, Succeeded, Failed
    restarts: int = 0
    exit_code: int | None = None
    reason: str = ""
    restart_at: float | None = None
    oom_killed: bool = False
    message: str = ""  # why it could not start
    mark: str = ""  # the pod mark every process of this replica carries
    identity: dict[str, Any] | None = None  # pid and start time of the running process
    # Where each run of the replica starts in its log (one per start, restarts append):
    # what ``kfkit logs --previous`` reads and where it marks a restart.
    log_starts: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        running = self.process is not None and self.process.poll() is None
        return {
            "type": self.replica.type,
            "index": self.replica.index,
            "phase": self.phase,
            "restarts": self.restarts,
            "exitCode": self.exit_code,
            "reason": self.reason,
            **{
                key: self.identity[key] if running and self.identity else None
                for key in ("pid", "startTicks", "createTime")
            },
            "message": self.message,
            "logStarts": self.log_starts,
        }


def should_restart(policy: str, exit_code: int) -> bool:
    """Does ``restartPolicy`` restart a replica that exited with ``exit_code``?"""
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    if policy == "ExitCode":
        # 1-127 are the program's own verdict (permanent); 128+ mean it was killed (retryable).
        return exit_code >= 128
    return False


class Supervisor:
    def __init__(self, job_dir: JobDir) -> None:
        self.job_dir = job_dir
        self.job = Job(manifest=job_dir.read_manifest(), source=str(job_dir.manifest_file))
        launch = read_json(job_dir.launch_file, {})
        launches, self.uid = launch["replicas"], launch["uid"]
        specs = self.job.replica_specs
        self.replicas = [
            ReplicaProcess(
                replica=replica,
                launch=ReplicaLaunch.from_dict(launches[replica.key]),
                restart_policy=specs[replica.type].restart_policy,
                mark=f"{self.uid}/{replica.key}",
            )
            for replica in self.job.replicas
        ]
        self.status: dict[str, Any] = read_json(job_dir.status_file, {})
        self.stop_requested = False
        self.finished_at: float | None = None
        self.total_restarts = 0
        self._written = ""

    # --- processes ---------------------------------------------------------------

    def start(self, rp: ReplicaProcess) -> None:
        launch = rp.launch
        try:
            prepare(
                launch.directories,
                launch.empty_dirs,
                launch.fs_group_dirs,
                launch.host_paths,
                launch.run_as,
            )
            log_file = self.job_dir.log_file(rp.replica.key)
            log_file.parent.mkdir(parents=True, exist_ok=True)
            # Owner-only: a log may hold what a replica printed of its secrets.
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            rp.log = os.fdopen(os.open(log_file, flags, 0o600), "ab")
            rp.log_starts.append(rp.log.tell())
        except (MountError, OSError) as error:
            self._not_started(rp, "FailedMount", str(error))
            return
        as_user: dict[str, Any] = {}
        if enforced() and launch.user is not None:
            as_user = {"user": launch.user, "group": launch.group, "extra_groups": launch.groups}
        elif enforced() and launch.groups:
            as_user = {"extra_groups": launch.groups}
        try:
            rp.process = subprocess.Popen(
                launch.argv,
                env={**launch.env, processes.POD_MARK: rp.mark},
                cwd=launch.cwd,
                stdin=subprocess.DEVNULL,
                stdout=rp.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                **as_user,
            )
        except (OSError, subprocess.SubprocessError) as error:
            # strerror only: the error's own text quotes argv[0], which may hold a secret.
            program = rp.launch.shown_program()
            reason = getattr(error, "strerror", None) or type(error).__name__
            rp.log.write(f"kfkit: cannot start {program}: {reason}\n".encode())
            rp.log.close()
            self._not_started(rp, "StartError", f"{program}: {reason}")
            return
        rp.identity = processes.identity(rp.process.pid)
        rp.phase, rp.exit_code, rp.reason, rp.restart_at, rp.oom_killed = (
            "Running",
            None,
            "",
            None,
            False,
        )

    @staticmethod
    def _not_started(rp: ReplicaProcess, reason: str, message: str) -> None:
        rp.process, rp.phase, rp.exit_code, rp.reason = None, "Failed", 127, reason
        rp.message, rp.restart_at = message, None

    def terminate(self, targets: list[ReplicaProcess]) -> None:
        """SIGTERM every target's process group, then SIGKILL what is left after the grace."""
        running = [rp for rp in targets if rp.process and rp.process.poll() is None]
        for rp in running:
            assert rp.process is not None
            self._signal_group(rp.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + max((rp.launch.grace_seconds for rp in running), default=0)
        while time.monotonic() < deadline and any(
            rp.process and rp.process.poll() is None for rp in running
        ):
            time.sleep(POLL_SECONDS)
        for rp in running:
            assert rp.process is not None
            self._signal_group(rp.process.pid, signal.SIGKILL)
            rp.process.wait()
            self._record_exit(rp, stopped=True)

    @staticmethod
    def _signal_group(pid: int, signum: int) -> None:
        processes.signal_group(pid, signum)

    def _kill_tree(self, rp: ReplicaProcess) -> None:
        """Every process of the replica goes with it, as with a pod: group, tree, mark."""
        assert rp.process is not None
        self._signal_group(rp.process.pid, signal.SIGKILL)
        processes.kill_tree(None, rp.mark)

    def _record_exit(self, rp: ReplicaProcess, stopped: bool = False) -> None:
        assert rp.process is not None
        code = rp.process.returncode
        rp.exit_code = 128 - code if code < 0 else code
        if rp.log:
            rp.log.close()
            rp.log = None
        self._kill_tree(rp)
        # A container's cgroup OOM kill shows only as exit 137 (podman's OOMKilled flag
        # stays false on this kernel), so with a memory limit that code is trusted.
        pod = rp.launch.pod or {}
        marker = killed_by_user(self.job_dir, rp.replica.key)
        cgroup_oom = rp.exit_code == 137 and bool(pod.get("memory_limit_bytes"))
        if marker.exists():  # `kill_replica` killed the container: not the OOM killer
            cgroup_oom = False
            marker.unlink(missing_ok=True)
        if rp.oom_killed or (cgroup_oom and not stopped):
            rp.reason = "OOMKilled"
        elif stopped:
            rp.reason = "Stopped"
        else:
            rp.reason = "Completed" if rp.exit_code == 0 else "Error"
        # A replica stopped after its job ended (cleanPodPolicy) that exits cleanly on
        # SIGTERM, as parameter servers do, did its job: it counts as succeeded.
        rp.phase = "Succeeded" if rp.exit_code == 0 else "Failed"

    def check_memory(self) -> None:
        """Kill a replica whose processes use more memory than its limit, like the OOM killer."""
        for rp in self.replicas:
            limit = rp.launch.memory_limit_bytes
            if not limit or not rp.process or rp.process.poll() is not None:
                continue
            try:
                root = psutil.Process(rp.process.pid)
                used = root.memory_info().rss + sum(
                    child.memory_info().rss for child in root.children(recursive=True)
                )
            except psutil.Error:
                continue
            if used > limit:
                rp.oom_killed = True
                self._signal_group(rp.process.pid, signal.SIGKILL)
                self.event(
                    "Warning",
                    "OOMKilled",
                    f"{rp.replica.key} used {used >> 20} MiB, over its memory limit "
                    f"of {limit >> 20} MiB",
                )

    # --- the job's state -----------------------------------------------------------

    def event(self, kind: str, reason: str, message: str) -> None:
        add_event(self.job_dir, kind, reason, message)

    def condition(self, condition: str, message: str) -> None:
        if not set_condition(self.status, self.job.kind, condition, message):
            return
        if condition in (SUCCEEDED, FAILED):
            self.status["completionTime"] = now_rfc3339()
            self.finished_at = time.monotonic()
        kind = "Warning" if condition in (FAILED, RESTARTING) else "Normal"
        self.event(kind, f"{self.job.kind}{condition}", message)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def write(self) -> None:
        counts: dict[str, dict[str, int]] = {}
        for rp in self.replicas:
            entry = counts.setdefault(rp.replica.type, {"active": 0, "succeeded": 0, "failed": 0})
            if rp.phase in ("Running", "Restarting"):
                entry["active"] += 1
            elif rp.phase == "Succeeded":
                entry["succeeded"] += 1
            elif rp.phase == "Failed":
                entry["failed"] += 1
        self.status["replicaStatuses"] = counts
        replicas = {rp.replica.key: rp.to_dict() for rp in self.replicas}
        snapshot = repr((self.status, replicas))
        if snapshot != self._written:
            self.job_dir.write_json(self.job_dir.replicas_file, replicas)
            self.job_dir.write_json(self.job_dir.status_file, self.status)
            self._written = snapshot

    def _of_type(self, replica_type: str) -> list[ReplicaProcess]:
        return [rp for rp in self.replicas if rp.replica.type == replica_type]

    def succeeded(self) -> bool:
        """The operator's success rules for this kind of job."""

        def done(replicas: list[ReplicaProcess]) -> bool:
            return bool(replicas) and all(rp.phase == "Succeeded" for rp in replicas)

        types = self.job.replica_specs
        if self.job.kind == PYTORCH_JOB:
            return (
                done(self._of_type("Master"))
                if "Master" in types
                else done(self._of_type("Worker"))
            )
        for leader in ("Chief", "Master"):
            if leader in types:
                return done(self._of_type(leader))
        workers = self._of_type("Worker")
        if self.job.spec.get("successPolicy") == "AllWorkers":
            return done(workers)
        return done(workers[:1])

    def handle_exit(self, rp: ReplicaProcess) -> None:
        self._record_exit(rp)
        code = rp.exit_code if rp.exit_code is not None else 1
        if self.finished:
            return
        if should_restart(rp.restart_policy, code):
            rp.restarts += 1
            self.total_restarts += 1
            limit = self.job.run_policy.get("backoffLimit")
            if limit is not None and self.total_restarts > limit:
                self.fail(
                    f"{self.job.kind} {self.job.name} has failed because it has reached the "
                    f"specified backoff limit ({limit}); {rp.replica.key} exited with {code}",
                    stop_all=True,
                )
                return
            delay = RESTART_BACKOFF_SECONDS[min(rp.restarts - 1, len(RESTART_BACKOFF_SECONDS) - 1)]
            rp.phase, rp.restart_at = "Restarting", time.monotonic() + delay
            self.condition(
                RESTARTING,
                f"{self.job.kind} {self.job.name} is restarting because {rp.replica.key} "
                f"exited with code {code} ({rp.reason}); restart {rp.restarts} in {delay}s.",
            )
            return
        if rp.phase == "Failed":
            self.fail(
                f"{self.job.kind} {self.job.name} is failed because 1 "
                f"{rp.replica.type} replica(s) failed: {rp.replica.key} exited with code {code}"
                f" ({rp.reason}).",
                stop_all=False,
            )
        elif self.succeeded():
            self.condition(
                SUCCEEDED,
                f"{self.job.kind} {self.job.namespace}/{self.job.name} successfully completed.",
            )
            self.clean_up()

    def fail(self, message: str, stop_all: bool) -> None:
        self.condition(FAILED, message)
        if stop_all:
            self.terminate(self.replicas)
        else:
            self.clean_up()
        for rp in self.replicas:
            rp.restart_at = None
            if rp.phase in ("Restarting", "Pending"):
                rp.phase = "Failed"

    def clean_up(self) -> None:
        """Stop replicas still running after the job ended, as cleanPodPolicy says."""
        policy = self.job.run_policy.get("cleanPodPolicy", "None")
        if policy != "None":  # the operator treats any other value as All
            leftover = [rp for rp in self.replicas if rp.process and rp.process.poll() is None]
            if leftover:
                self.event(
                    "Normal",
                    "CleanPodPolicy",
                    f"cleanPodPolicy {policy}: stopping "
                    + ", ".join(rp.replica.key for rp in leftover),
                )
            self.terminate(leftover)

    def check_deadline(self, started: float) -> None:
        deadline = self.job.run_policy.get("activeDeadlineSeconds")
        if deadline is not None and not self.finished and time.monotonic() - started > deadline:
            self.fail(
                f"{self.job.kind} {self.job.name} has failed because it was active longer "
                f"than specified deadline ({deadline}s)",
                stop_all=True,
            )

    def ttl_expired(self) -> bool:
        ttl = self.job.run_policy.get("ttlSecondsAfterFinished")
        return (
            ttl is not None
            and self.finished_at is not None
            and time.monotonic() - self.finished_at >= ttl
        )

    # --- main loop -------------------------------------------------------------------

    def request_stop(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        started = time.monotonic()
        self.status.setdefault("startTime", now_rfc3339())
        for rp in self.replicas:
            self.start(rp)
        if not any(rp.phase == "Failed" for rp in self.replicas):
            self.condition(
                RUNNING, f"{self.job.kind} {self.job.namespace}/{self.job.name} is running."
            )
        self.write()
        last_memory_check = 0.0
        while True:
            if self.stop_requested:
                self.terminate(self.replicas)
                if not self.finished:
                    self.fail(f"{self.job.kind} {self.job.name} was stopped by the user.", False)
                self.write()
                break
            for rp in self.replicas:
                if (
                    rp.process is not None
                    and rp.phase == "Running"
                    and rp.process.poll() is not None
                ):
                    self.handle_exit(rp)
                elif rp.phase == "Failed" and rp.process is None and not self.finished:
                    self.handle_exit_unstarted(rp)
                due = rp.restart_at is not None and time.monotonic() >= rp.restart_at
                if due and not self.finished:
                    self.start(rp)
                    if all(r.phase in ("Running", "Succeeded") for r in self.replicas):
                        self.condition(RUNNING, f"{self.job.kind} {self.job.name} is running.")
            self.check_deadline(started)
            if time.monotonic() - last_memory_check >= MEMORY_CHECK_SECONDS:
                self.check_memory()
                last_memory_check = time.monotonic()
            self.write()
            alive = any(rp.process and rp.process.poll() is None for rp in self.replicas)
            if self.finished and self.ttl_expired():
                self.terminate(self.replicas)
                processes.kill_tree(None, f"{self.uid}/")
                self.job_dir.remove()  # its own directory only, symlinks never followed
                return 0
            ttl_pending = self.job.run_policy.get("ttlSecondsAfterFinished") is not None
            if self.finished and not alive and not ttl_pending:
                break
            time.sleep(POLL_SECONDS)
        return 0

    def handle_exit_unstarted(self, rp: ReplicaProcess) -> None:
        """A replica whose program could not even start fails like a crashed one."""
        self.fail(
            f"{self.job.kind} {self.job.name} is failed because {rp.replica.key} could not "
            f"start: {rp.message or rp.launch.shown_program()} ({rp.reason}).",
            stop_all=True,
        )


def supervise(job_dir: JobDir) -> int:
    """Run the job; whatever goes wrong is recorded as the job's Failed condition."""
    supervisor: Supervisor | None = None
    try:
        supervisor = Supervisor(job_dir)
        return supervisor.run()
    except BaseException as error:
        with contextlib.suppress(OSError):
            traceback.print_exc()
        if supervisor is not None:
            with contextlib.suppress(Exception):
                supervisor.terminate(supervisor.replicas)
                supervisor.write()
        record_failure(job_dir, f"the local supervisor failed: {type(error).__name__}: {error}")
        return 1


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def guard(job_dir: JobDir, uid: str) -> int:
    """Fork the supervisor, wait for it, then leave nothing of the job running."""
    guardian = os.getpid()
    child = os.fork()
    if child == 0:
        _die_with_parent(signal.SIGTERM)
        code = supervise(job_dir) if os.getppid() == guardian else 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    with contextlib.suppress(OSError):
        job_dir.write_json(
            job_dir.supervisor_file,
            {"guardian": processes.identity(guardian), "supervisor": processes.identity(child)},
        )
    _, status = os.waitpid(child, 0)
    processes.kill_tree(None, f"{uid}/")  # whatever the supervisor could not stop itself
    if not job_dir.exists():
        return 0  # ttlSecondsAfterFinished removed it
    if os.WIFSIGNALED(status):
        name = _signal_name(os.WTERMSIG(status))
        record_failure(
            job_dir, f"the local supervisor was killed ({name}); every replica was stopped"
        )
        replicas_lost(job_dir, f"its supervisor was killed ({name})")
    elif os.WEXITSTATUS(status) != 0:
        record_failure(job_dir, f"the local supervisor exited with {os.WEXITSTATUS(status)}")
    return 0


def replicas_lost(job_dir: JobDir, why: str) -> None:
    """Replicas still shown as running after their supervisor died are Failed."""
    try:
        replicas = read_json(job_dir.replicas_file, {})
        for state in replicas.values():
            if state.get("phase") in ("Running", "Restarting", "Pending"):
                state.update(
                    phase="Failed", pid=None, startTicks=None, createTime=None, reason="Killed"
                )
                state["message"] = why
        job_dir.write_json(job_dir.replicas_file, replicas)
    except (OSError, CorruptStateError, AttributeError) as error:
        _say(f"kfkit: cannot update {job_dir.replicas_file}: {error}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m kfkit.backends.local.supervisor")
    parser.add_argument("job_dir", type=Path)
    parser.add_argument("--lock-fd", type=int, required=True)
    parser.add_argument("--uid", required=True)
    args = parser.parse_args(argv)
    path: Path = args.job_dir
    job_dir = JobDir(path.parent.name, path.name, path.parent.parent.parent)
    lock = JobLock(job_dir.lock_file, args.lock_fd)  # held until this process and its child end
    try:
        return guard(job_dir, args.uid)
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
