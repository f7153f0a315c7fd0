"""What the assertion steps measured, attached to the report before they assert.

A step such as "the test accuracy is at least 0.9662" calls :func:`check`:
the value, threshold and unit go into the cucumber JSON first (see
:mod:`kfkit.report.evidence`), then the step passes or fails on them. So a
failing step still shows what was measured, and a passing one says by how
much it passed.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from kfkit.report.evidence import (
    Embeds,
    Event,
    JobRecord,
    Measurement,
    attach_event,
    attach_job,
    attach_measurement,
)
from kfkit.verify.jobs import JobPlan, JobRun, Settings, restarts, wait_replicas_ended

LOG_TAIL_LINES = 20
_TRAIN_LINE = re.compile(r"Train Epoch: (\d+) \[(\d+)/(\d+)")


def world_size(run: JobRun) -> int:
    """The trainer's own count (it knows PS and evaluators are not ranks), else every replica."""
    size = run.metrics.get("world_size")
    if isinstance(size, int) and size > 0:
        return size
    return run.plan.job.total_replicas


def check(
    step: Embeds,
    run: JobRun | None,
    metric: str,
    value: float | None,
    comparison: str,
    threshold: float,
    unit: str = "",
) -> Measurement:
    """Attach ``metric value comparison threshold`` to the step, then assert it."""
    measurement = Measurement(
        metric=metric,
        value=None if value is None else float(value),
        comparison=comparison,
        threshold=float(threshold),
        unit=unit,
        job=run.plan.name if run else None,
        world_size=world_size(run) if run else None,
    )
    attach_measurement(step, measurement)
    if not measurement.passed:
        detail = f"\n{run.describe_failure()}" if run and value is None else ""
        raise AssertionError(measurement.text() + detail)
    return measurement


def metric(run: JobRun, key: str) -> float | None:
    value = run.metrics.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _failed_replicas(run: JobRun) -> list[str]:
    """Replicas of the types the job status counts as failed (``worker-0``, ...)."""
    failed_types = {
        replica_type.lower()
        for replica_type, status in run.status.replica_statuses.items()
        if int(status.get("failed") or 0) > 0
    }
    return [
        replica.key for replica in run.plan.job.replicas if replica.type.lower() in failed_types
    ]


def attach_run(settings: Settings, step: Embeds, run: JobRun) -> JobRecord:
    """Attach how the job ended, links to its logs (in the report directory), their last lines."""
    report_dir = settings.work_dir.parent
    logs, tails = {}, {}
    for log_file in sorted(run.logs_dir.glob("*.log")):
        logs[log_file.stem] = os.path.relpath(log_file, report_dir)
        lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        tails[log_file.stem] = lines[-LOG_TAIL_LINES:]
    record = JobRecord(
        job=run.plan.name,
        kind=run.plan.kind,
        phase=str(run.status.phase),
        world_size=world_size(run),
        seconds=round(run.seconds, 1),
        logs=logs,
        log_tails=tails,
        failed_replicas=_failed_replicas(run),
    )
    attach_job(step, record)
    return record


def _samples_at(line: str) -> float | None:
    """Samples seen so far from a trainer's ``Train Epoch: E [seen/size ...]`` line."""
    match = _TRAIN_LINE.search(line)
    if not match:
        return None
    epoch, seen, size = (int(group) for group in match.groups())
    return float((epoch - 1) * size + seen)


def attach_kill(
    settings: Settings, step: Embeds, plan: JobPlan, victim: str, watched: str, count: int
) -> Event:
    """Attach where ``victim`` was killed: at ``watched``'s ``count``-th training log line."""
    lines = [
        line
        for _, line in settings.backend().logs(plan.name, plan.namespace, replica=watched)
        if line.startswith("Train Epoch")
    ]
    at = lines[count - 1] if len(lines) >= count else (lines[-1] if lines else "")
    event = Event(
        job=plan.name,
        kind="kill",
        label=f"{victim} killed after {count} logged steps of {watched}",
        samples=_samples_at(at),
    )
    attach_event(step, event)
    return event


def _samples_of_step(run: JobRun, step_number: int) -> float | None:
    for record in run.metrics.get("steps") or []:
        if isinstance(record, dict) and record.get("step") == step_number:
            samples = record.get("samples")
            return float(samples) if isinstance(samples, int | float) else None
    return None


def check_restarted(step: Embeds, run: JobRun) -> Measurement:
    """Attach the number of restarts the operator recorded (and a marker), then assert one."""
    found = restarts(run)
    if found:
        message = str(found[0].get("message") or "replica restarted")
        attach_event(step, Event(job=run.plan.name, kind="restart", label=message))
    return check(step, run, "restarts", len(found), ">=", 1)


def check_resumed(step: Embeds, run: JobRun) -> Measurement:
    """Attach the checkpoint step training resumed from (a marker on the curves), then assert it."""
    resumed: Any = run.metrics.get("resumed_from_step")
    if isinstance(resumed, int) and resumed > 0:
        label = f"resumed from the checkpoint of step {resumed}"
        event = Event(run.plan.name, "resume", label, _samples_of_step(run, resumed), resumed)
        attach_event(step, event)
    value = float(resumed) if isinstance(resumed, int) else None
    return check(step, run, "resumed from step", value, ">", 0)


def check_replicas_ended(
    settings: Settings, step: Embeds, run: JobRun, seconds: float
) -> dict[str, Any]:
    """Wait for every replica to end (at most ``seconds``); attach how long that took."""
    started = time.monotonic()
    statuses = wait_replicas_ended(settings, run, timeout=seconds)
    elapsed = round(time.monotonic() - started, 1)
    check(step, run, "replicas ended after", elapsed, "<=", seconds, unit="s")
    return statuses
