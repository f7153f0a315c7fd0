"""The verification suite: run radish on the feature files, and the helpers its steps call.

Two halves, one module:

- :func:`verify` runs radish in a child process (radish keeps its steps and
  configuration in module globals, so a fresh interpreter per run is the only
  clean way to run it twice) and turns its cucumber JSON into the three
  reports of :mod:`kfkit.report`.
- :class:`Settings`, :class:`JobPlan` and :func:`run_job` are what
  ``stepfile.py`` calls. A step only names what it wants ("this manifest, two
  workers, these trainer arguments, run it"); loading, validating and running
  stay in kfkit's job model and backends, so the suite tests the same code a
  user runs.

On the local target every job of a run lives under ``<work dir>/kfkit-home``,
so verification never mixes its jobs into the user's ``kfkit get``, and its
manifests, logs and metrics stay next to the report for a post-mortem.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kfkit.errors import KfkitError
from kfkit.report import Reports, collect_environment, load, write_reports

TARGETS = ("local", "kubernetes")
RADISH_MAIN = "import sys; from radish.main import main; sys.exit(main())"
METRICS_NAME = "metrics.json"


# --- running the suite ----------------------------------------------------------------------


def find_suite_dir(start: str | Path | None = None) -> Path:
    """The nearest directory at or above ``start`` with ``features/`` and ``stepfile.py``."""
    here = Path(start or os.getcwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "features").is_dir() and (directory / "stepfile.py").is_file():
            return directory
    raise KfkitError(
        f"{here}: no verification suite here or above (a directory with features/ and "
        "stepfile.py); run from the kfkit checkout or pass --suite-dir"
    )


def tag_expression(tags: str | None, target: str) -> str | None:
    """The radish tag expression for ``tags`` on ``target``.

    On the local target scenarios tagged ``@cluster`` cannot run, so they are
    left out rather than failed.
    """
    parts = [f"({tags})"] if tags else []
    if target == "local":
        parts.append("not cluster")
    return " and ".join(parts) or None


def _basedir_with_stepfile(suite_dir: Path, work_dir: Path) -> Path:
    """A directory holding only (a link to) stepfile.py: radish imports every .py in ``-b``."""
    basedir = work_dir / "steps"
    basedir.mkdir(parents=True, exist_ok=True)
    link = basedir / "stepfile.py"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(suite_dir / "stepfile.py")
    return basedir


def radish_command(
    features: Sequence[str | Path],
    basedir: Path,
    cucumber_json: Path,
    tags: str | None,
    user_data: dict[str, str],
) -> list[str]:
    command = [sys.executable, "-c", RADISH_MAIN, *map(str, features)]
    command += ["-b", str(basedir), "--cucumber-json", str(cucumber_json)]
    if not sys.stdout.isatty():
        command += ["--no-ansi"]
    if tags:
        command += ["--tags", tags]
    for key, value in user_data.items():
        command += ["-u", f"{key}={value}"]
    return command


def _run_radish(command: list[str], env: dict[str, str], timeout: float) -> int:
    """Run radish in its own process group so a timeout stops its jobs' helpers too."""
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        raise KfkitError(f"verification timed out after {timeout:.0f}s") from None
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise


@dataclass
class Verification:
    """What ``kfkit verify`` did: the reports and radish's own exit status."""

    reports: Reports
    radish_exit_code: int

    @property
    def ok(self) -> bool:
        return self.radish_exit_code == 0 and self.reports.summary.ok


def verify(
    features: Sequence[str | Path] | None = None,
    tags: str | None = None,
    target: str = "local",
    report_dir: str | Path = "reports",
    suite_dir: str | Path | None = None,
    timeout: float = 3600.0,
) -> Verification:
    """Run the suite (or the given feature files) and write the reports."""
    if target not in TARGETS:
        raise KfkitError(f"--target: unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    suite = Path(suite_dir).resolve() if suite_dir else find_suite_dir()
    if not (suite / "stepfile.py").is_file():
        raise KfkitError(f"{suite}: no stepfile.py in the suite directory")
    feature_paths = [Path(f).resolve() for f in features] if features else [suite / "features"]
    missing = [str(path) for path in feature_paths if not path.exists()]
    if missing:
        raise KfkitError(f"{', '.join(missing)}: no such feature file or directory")
    reports_path = Path(report_dir).resolve()
    work_dir = reports_path / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    raw_json = work_dir / "radish-cucumber.json"
    raw_json.unlink(missing_ok=True)

    expression = tag_expression(tags, target)
    user_data = {
        "target": target,
        "suite_dir": str(suite),
        "work_dir": str(work_dir),
        "run_id": secrets.token_hex(2),
    }
    env = dict(os.environ)
    if target == "local":
        env["KFKIT_HOME"] = str(work_dir / "kfkit-home")
    command = radish_command(
        feature_paths, _basedir_with_stepfile(suite, work_dir), raw_json, expression, user_data
    )
    exit_code = _run_radish(command, env, timeout)
    if not raw_json.is_file():
        chosen = f" match tags {expression!r}" if expression else " were found"
        raise KfkitError(
            f"radish exited with status {exit_code} before writing a report "
            f"(no scenarios{chosen}, or see its output above)"
        )
    environment = collect_environment(
        target=target, tags=expression or "", features=" ".join(map(str, feature_paths))
    )
    reports = write_reports(load(raw_json), reports_path, environment)
    return Verification(reports=reports, radish_exit_code=exit_code)


# --- helpers for the steps ------------------------------------------------------------------


@dataclass
class Settings:
    """One run's settings, passed from ``kfkit verify`` to the steps as radish user data."""

    target: str = "local"
    suite_dir: Path = field(default_factory=Path.cwd)
    work_dir: Path = field(default_factory=lambda: Path.cwd() / "reports" / "work")
    run_id: str = "0000"

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
        )

    def backend(self) -> Any:
        from kfkit.backends import get_backend

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
    # A kfkit trainer takes --metrics-file; other programs get no extra arguments.
    trainer: bool = False

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.manifest["metadata"].get("namespace") or "default")

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    def replica_specs(self) -> dict[str, Any]:
        from kfkit.jobs.model import KINDS

        specs: dict[str, Any] = self.manifest["spec"][KINDS[self.kind].replica_specs_key]
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
        from kfkit.jobs.model import KINDS

        container_name = KINDS[self.kind].container_name
        for spec in self.replica_specs().values():
            for container in spec["template"]["spec"]["containers"]:
                if container.get("name") == container_name:
                    container["args"] = [*(container.get("args") or []), *shlex.split(arguments)]

    def set_run_policy(self, field_name: str, value: Any) -> None:
        self.manifest["spec"].setdefault("runPolicy", {})[field_name] = value


def plan_job(settings: Settings, manifest: str, trainer: bool = False) -> JobPlan:
    """Load a manifest through the job model and give the job a name unique to this run.

    ``trainer`` says the job runs a kfkit trainer, which writes its metrics to
    the file named by ``--metrics-file`` (on the local target).
    """
    from kfkit.jobs.load import load_jobs

    global _job_counter
    jobs = load_jobs([settings.path(manifest)])
    if len(jobs) != 1:
        raise KfkitError(f"{manifest}: expected one job, found {len(jobs)}")
    _job_counter += 1
    plan = JobPlan(copy.deepcopy(jobs[0].manifest), manifest, trainer)
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


def _metrics_file(settings: Settings, plan: JobPlan) -> Path:
    return settings.work_dir / "jobs" / plan.name / METRICS_NAME


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


def submit_job(settings: Settings, plan: JobPlan) -> tuple[Any, Path]:
    """Write the plan as a manifest next to the report, load it through the job model, submit."""
    from kfkit.jobs.load import load_jobs

    job_dir = settings.work_dir / "jobs" / plan.name
    job_dir.mkdir(parents=True, exist_ok=True)
    if settings.target == "local" and plan.trainer:
        plan.add_args(f"--metrics-file {shlex.quote(str(_metrics_file(settings, plan)))}")
    manifest_file = job_dir / "job.yaml"
    manifest_file.write_text(yaml.safe_dump(plan.manifest, sort_keys=False), encoding="utf-8")
    job = load_jobs([manifest_file])[0]
    backend = settings.backend()
    backend.submit(job)
    return backend, manifest_file


def finish_job(
    settings: Settings, plan: JobPlan, backend: Any, manifest_file: Path, timeout: float
) -> JobRun:
    """Wait for the job, keep its logs and metrics, then delete it (stopping leftovers)."""
    started = time.monotonic()
    try:
        record = backend.wait(plan.name, plan.namespace, timeout=timeout)
    finally:
        logs_dir = manifest_file.parent / "logs"
        logs_dir.mkdir(exist_ok=True)
        lines: dict[str, list[str]] = {}
        for replica, line in backend.logs(plan.name, plan.namespace):
            lines.setdefault(replica, []).append(line)
        for replica, replica_lines in lines.items():
            (logs_dir / f"{replica}.log").write_text("\n".join(replica_lines) + "\n")
    metrics_file = _metrics_file(settings, plan)
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    else:
        metrics = metrics_from_logs([line for group in lines.values() for line in group])
    return JobRun(plan, record, metrics, manifest_file, logs_dir, time.monotonic() - started)


def cleanup_job(settings: Settings, plan: JobPlan) -> None:
    """Delete a job this run submitted (stopping any replica still running)."""
    from kfkit.errors import NotFoundError

    with contextlib.suppress(NotFoundError):
        settings.backend().delete(plan.name, plan.namespace)


def run_job(settings: Settings, plan: JobPlan, timeout: float) -> JobRun:
    """Submit the planned job, wait for it to finish and collect its logs and metrics.

    The job is left in place so later steps can look at its replicas; call
    :func:`cleanup_job` when the scenario ends.
    """
    backend, manifest_file = submit_job(settings, plan)
    return finish_job(settings, plan, backend, manifest_file, timeout)


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
