"""What ``stepfile.py`` calls: plan a job from a manifest, adjust it, run it, read its results.

A step only names what it wants ("this manifest, two workers, these trainer
arguments, run it"); loading, validating and running stay in kfkit's job
model and backends, so the suite tests the same code a user runs.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kfkit.errors import KfkitError
from kfkit.jobs.model import Job
from kfkit.verify.suite import TARGETS

METRICS_NAME = "metrics.json"

# --- helpers for the steps ------------------------------------------------------------------


@dataclass
class Settings:
    """One run's settings, passed from ``kfkit verify`` to the steps as radish user data."""

    target: str = "local"
    suite_dir: Path = field(default_factory=Path.cwd)
    work_dir: Path = field(default_factory=lambda: Path.cwd() / "reports" / "work")
    run_id: str = "0000"
    # Everything else given with -u key=value (cluster settings such as build_pvc).
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_user_data(cls, data: dict[str, Any] | None) -> Settings:
        data = data or {}
        target = str(data.get("target") or "local")
        if target not in TARGETS:
            raise KfkitError(f"-u target={target}: choose one of {', '.join(TARGETS)}")
        suite = Path(str(data.get("suite_dir") or Path.cwd()))
        return cls(
            target=target,
            suite_dir=suite,
            work_dir=Path(str(data.get("work_dir") or suite / "reports" / "work")),
            run_id=str(data.get("run_id") or "0000"),
            extra={str(k): str(v) for k, v in data.items()},
        )

    def backend(self) -> Any:
        """The target's backend; on a cluster ``-u kubeconfig=... -u context=...`` choose it."""
        from kfkit.backends import get_backend

        if self.target == "kubernetes":
            options = {k: self.extra[k] for k in ("kubeconfig", "context") if self.extra.get(k)}
            return get_backend(self.target, **options)
        return get_backend(self.target)

    def path(self, relative: str) -> Path:
        """A path named in a feature file, relative to the suite directory."""
        return self.suite_dir / relative


_job_counter = 0


@dataclass
class JobPlan:
    """A job manifest a scenario is preparing: loaded and checked, then adjusted by steps."""

    manifest: dict[str, Any]
    source: str
    # A kfkit trainer: it writes a metrics file, which is kept next to the report.
    trainer: bool = False
    # Set once the job is submitted: the manifest that ran, kept next to the report.
    manifest_file: Path | None = None

    @property
    def job(self) -> Job:
        """The manifest seen through the job model (the same dict, so edits show through)."""
        return Job(manifest=self.manifest, source=self.source)

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def namespace(self) -> str:
        return self.job.namespace

    @property
    def kind(self) -> str:
        return self.job.kind

    def replica_specs(self) -> dict[str, Any]:
        specs: dict[str, Any] = self.manifest["spec"][self.job.info.replica_specs_key]
        return specs

    def set_replicas(self, replica_type: str, count: int) -> None:
        specs = self.replica_specs()
        matching = [name for name in specs if name.lower() == replica_type.lower()]
        if not matching:
            raise KfkitError(
                f"{self.source}: no {replica_type} replicas (has {', '.join(specs) or 'none'})"
            )
        specs[matching[0]]["replicas"] = count

    def add_args(self, arguments: str) -> None:
        """Append trainer arguments to the main container of every replica."""
        container_name = self.job.info.container_name
        for spec in self.replica_specs().values():
            for container in spec["template"]["spec"]["containers"]:
                if container.get("name") == container_name:
                    container["args"] = [*(container.get("args") or []), *shlex.split(arguments)]

    def set_run_policy(self, field_name: str, value: Any) -> None:
        self.manifest["spec"].setdefault("runPolicy", {})[field_name] = value


def unshared(value: Any) -> Any:
    """A deep copy in which no two places share an object.

    YAML anchors (``template: &pod`` ... ``template: *pod``) load as one object
    seen from several places, and ``copy.deepcopy`` keeps that sharing; a step
    that edits one replica type's template must not edit the others' too.
    """
    if isinstance(value, dict):
        return {key: unshared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unshared(item) for item in value]
    return copy.copy(value)


def plan_job(settings: Settings, manifest: str, trainer: bool = False) -> JobPlan:
    """Load a manifest through the job model and give the job a name unique to this run.

    ``trainer`` says the job runs a kfkit trainer (its metrics are expected).
    """
    from kfkit.jobs.load import load_jobs

    global _job_counter
    jobs = load_jobs([settings.path(manifest)])
    if len(jobs) != 1:
        raise KfkitError(f"{manifest}: expected one job, found {len(jobs)}")
    _job_counter += 1
    plan = JobPlan(unshared(jobs[0].manifest), manifest, trainer)
    suffix = f"-{settings.run_id}-{_job_counter}"
    plan.manifest["metadata"]["name"] = plan.name[: 40 - len(suffix)].rstrip("-") + suffix
    return plan


@dataclass
class JobRun:
    """A finished job: its record (status), metrics and where its files were kept."""

    plan: JobPlan
    record: Any
    metrics: dict[str, Any]
    manifest_file: Path
    logs_dir: Path
    seconds: float

    @property
    def status(self) -> Any:
        return self.record.status

    def describe_failure(self) -> str:
        """The job's last condition and the end of its logs, for an assertion message."""
        conditions = self.status.conditions
        last = conditions[-1] if conditions else {}
        tail = []
        for log_file in sorted(self.logs_dir.glob("*.log")):
            lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-3:]
            tail += [f"{log_file.stem}: {line}" for line in lines]
        return f"{self.status.phase}: {last.get('message', '')}\n" + "\n".join(tail)


def _local_metrics_file(settings: Settings, plan: JobPlan) -> Path | None:
    """The file a local job's trainer wrote its metrics to, as the backend launched it.

    Manifests name the metrics file inside a volume (``/checkpoints/$(JOB_NAME)/
    metrics.json``); the local backend maps volumes to directories and records
    each replica's final argv in the job's state, so the path is read from
    there rather than worked out again. The first replica (master or chief)
    writes the file.
    """
    from kfkit.backends.local.state import JobDir, read_json

    home = settings.backend().config.home
    launch = read_json(JobDir(plan.namespace, plan.name, home).launch_file, {})
    for replica in (launch.get("replicas") or {}).values():
        argv = [str(arg) for arg in replica.get("argv") or []]
        mounts: list[dict[str, str]] = []
        pod = replica.get("pod")
        if pod:  # the container runtime: the main container's argv, paths inside its mounts
            main = next(c for c in pod["containers"] if c["name"] == pod["main"])
            argv, mounts = [str(arg) for arg in main["argv"]], main["mounts"]
        for index, arg in enumerate(argv):
            if arg == "--metrics-file" and index + 1 < len(argv):
                return _on_host(argv[index + 1], mounts)
            if arg.startswith("--metrics-file="):
                return _on_host(arg.split("=", 1)[1], mounts)
    return None


def _on_host(path: str, mounts: list[dict[str, str]]) -> Path:
    """Where a container's ``path`` lies on this machine: below the mount that holds it."""
    for mount in sorted(mounts, key=lambda item: len(item["target"]), reverse=True):
        target = mount["target"].rstrip("/")
        if path == target or path.startswith(target + "/"):
            return Path(mount["source"] + path[len(target) :])
    return Path(path)


_DONE_LINE = re.compile(r"final_accuracy=(\S+)\s+final_loss=(\S+)")


def metrics_from_logs(lines: Sequence[str]) -> dict[str, Any]:
    """On a cluster the metrics file stays in the pod: read the trainer's summary line instead."""
    metrics: dict[str, Any] = {}
    for line in lines:
        match = _DONE_LINE.search(line)
        if match:
            for key, value in zip(("final_accuracy", "final_loss"), match.groups(), strict=True):
                try:
                    metrics[key] = float(value)
                except ValueError:
                    metrics[key] = None
    return metrics


def submit_job(settings: Settings, plan: JobPlan) -> Path:
    """Write the plan as a manifest next to the report, load it through the job model, submit."""
    from kfkit.jobs.load import load_jobs
    from kfkit.verify.datasets import share_dataset

    if plan.manifest_file is not None:
        raise KfkitError(f"job {plan.name} was already started")
    job_dir = settings.work_dir / "jobs" / plan.name
    job_dir.mkdir(parents=True, exist_ok=True)
    manifest_file = job_dir / "job.yaml"
    manifest_file.write_text(yaml.safe_dump(plan.manifest, sort_keys=False), encoding="utf-8")
    job = load_jobs([manifest_file])[0]
    share_dataset(settings, plan)
    settings.backend().submit(job)
    plan.manifest_file = manifest_file
    return manifest_file


def finish_job(settings: Settings, plan: JobPlan, timeout: float) -> JobRun:
    """Wait for a started job; keep its logs and metrics next to the report."""
    if plan.manifest_file is None:
        raise KfkitError(f"job {plan.name} was never started")
    backend = settings.backend()
    started = time.monotonic()
    try:
        record = backend.wait(plan.name, plan.namespace, timeout=timeout)
    finally:
        logs_dir = plan.manifest_file.parent / "logs"
        logs_dir.mkdir(exist_ok=True)
        lines: dict[str, list[str]] = {}
        for replica, line in backend.logs(plan.name, plan.namespace):
            lines.setdefault(replica, []).append(line)
        for replica, replica_lines in lines.items():
            (logs_dir / f"{replica}.log").write_text("\n".join(replica_lines) + "\n")
    metrics_file = _local_metrics_file(settings, plan) if settings.target == "local" else None
    if metrics_file is not None and metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    else:
        metrics = metrics_from_logs([line for group in lines.values() for line in group])
    if plan.trainer and metrics:
        (plan.manifest_file.parent / METRICS_NAME).write_text(json.dumps(metrics, indent=1))
    elapsed = time.monotonic() - started
    return JobRun(plan, record, metrics, plan.manifest_file, logs_dir, elapsed)


def cleanup_job(settings: Settings, plan: JobPlan) -> None:
    """Delete a job this run submitted (stopping any replica still running)."""
    from kfkit.errors import NotFoundError
    from kfkit.verify.datasets import unshare_dataset

    if plan.manifest_file is not None:
        with contextlib.suppress(NotFoundError):
            settings.backend().delete(plan.name, plan.namespace)
    unshare_dataset(settings, plan)  # also after a submit that failed


def run_job(settings: Settings, plan: JobPlan, timeout: float) -> JobRun:
    """Submit the planned job (unless a step started it), wait for it, collect its results.

    The job is left in place so later steps can look at its replicas; call
    :func:`cleanup_job` when the scenario ends.
    """
    if plan.manifest_file is None:
        submit_job(settings, plan)
    return finish_job(settings, plan, timeout)


def wait_for_log_lines(
    settings: Settings, plan: JobPlan, replica: str, prefix: str, count: int, timeout: float
) -> int:
    """Follow one replica's log until ``count`` lines start with ``prefix``; return the count.

    The backend's log stream ends when the job finishes, so this never waits
    on a job that is gone; ``timeout`` bounds a job that runs but never logs.
    """
    deadline = time.monotonic() + timeout
    seen = 0
    for _, line in settings.backend().logs(plan.name, plan.namespace, replica=replica, follow=True):
        seen += line.startswith(prefix)
        if seen >= count:
            return seen
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"{plan.name} {replica} logged {seen} of {count} {prefix!r} lines")


def kill_replica(settings: Settings, plan: JobPlan, replica: str) -> None:
    """Kill one replica the hard way (SIGKILL locally, pod deleted at once on a cluster)."""
    settings.backend().kill_replica(plan.name, replica, plan.namespace)


def restarts(run: JobRun) -> list[dict[str, Any]]:
    """The job's Restarting conditions: the operator records one when it restarts a replica."""
    return [c for c in run.status.conditions if c.get("type") == "Restarting"]


def wait_replicas_ended(settings: Settings, run: JobRun, timeout: float) -> dict[str, Any]:
    """Poll the job until no replica is active; return its replicaStatuses.

    Whether replicas stop once the job has finished is the run policy's
    ``cleanPodPolicy`` at work (the operator's on a cluster, the supervisor's
    locally), so this only watches, it never stops anything.
    """
    backend = settings.backend()
    deadline = time.monotonic() + timeout
    while True:
        record = backend.get(run.plan.name, run.plan.namespace)
        statuses: dict[str, Any] = record.status.replica_statuses
        if all(int(s.get("active") or 0) == 0 for s in statuses.values()):
            run.record = record
            return statuses
        if time.monotonic() > deadline:
            active = {t: s.get("active") for t, s in statuses.items() if s.get("active")}
            raise AssertionError(f"replicas still active after {timeout:.0f}s: {active}")
        time.sleep(0.5)


def final_accuracy(run: JobRun) -> float:
    value = run.metrics.get("final_accuracy")
    if value is None:
        raise AssertionError(f"job {run.plan.name} reported no accuracy\n{run.describe_failure()}")
    return float(value)


def final_loss(run: JobRun) -> float:
    value = run.metrics.get("final_loss")
    if value is None:
        raise AssertionError(f"job {run.plan.name} reported no loss\n{run.describe_failure()}")
    return float(value)


def attach_metrics(step: Any, run: JobRun) -> None:
    """Embed the job's metrics in the step's cucumber JSON; the HTML report plots them."""
    from kfkit.report import METRICS_MIME

    if run.metrics:
        payload = json.dumps({"job": run.plan.name, "metrics": run.metrics}, sort_keys=True)
        step.embed(payload, mime_type=METRICS_MIME)
