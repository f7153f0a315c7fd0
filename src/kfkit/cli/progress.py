"""Following jobs until they finish: what ``kfkit run`` and ``kfkit wait`` show meanwhile.

On a terminal (stderr, rich's detection) a live table of every replica; anywhere
else (CI logs, pipes) one plain line per job whenever its state changes and at
least every ``PROGRESS_SECONDS``, so a minute-long job is never silent and no
line is ever glued to the next. When the jobs end, the outcome goes to stdout,
and a failed job's warnings and its failed replicas' last log lines to stderr,
so the cause is in the CI log without a second command.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from kfkit.backends import Backend, JobRecord
from kfkit.cli.output import note, phase_text, resource_name, result, stderr_console
from kfkit.errors import KfkitError, WaitTimeoutError
from kfkit.jobs.model import Job

PROGRESS_SECONDS = 10.0
FAILED_LOG_LINES = 20

# Exit statuses of `kfkit run` and `kfkit wait` (2, bad input, comes from KfkitError).
EXIT_SUCCEEDED, EXIT_FAILED, EXIT_TIMED_OUT = 0, 1, 3


def replica_table(record: JobRecord) -> Table:
    """One job's replicas: what each process (or pod) is doing."""
    title = Text.assemble(f"{record.job.describe()}  ", phase_text(record.status.phase))
    table = Table(title=title, title_justify="left", expand=False)
    for column in ("REPLICA", "PHASE", "RESTARTS", "EXIT CODE", "REASON"):
        table.add_column(column)
    for key, state in record.replicas.items():
        exit_code = state.get("exitCode")
        table.add_row(
            key,
            phase_text(str(state.get("phase", "Pending"))),
            str(state.get("restarts", 0)),
            "" if exit_code is None else str(exit_code),
            str(state.get("reason") or ""),
        )
    return table


def progress_line(record: JobRecord, elapsed: float) -> str:
    """``pytorchjob.kubeflow.org/x Running 12s: master-0 Running, worker-0 Restarting (1)``"""
    replicas = ", ".join(
        f"{key} {state.get('phase', 'Pending')}"
        + (f" ({state['restarts']} restarts)" if state.get("restarts") else "")
        for key, state in record.replicas.items()
    )
    return f"{resource_name(record)} {record.status.phase} {elapsed:.0f}s: {replicas or '-'}"


class Progress:
    """Shows updates of followed jobs: a live table, or periodic lines in a log."""

    def __init__(self, records: list[JobRecord]) -> None:
        self.latest = {(r.job.namespace, r.job.name): r for r in records}
        self.started = time.monotonic()
        self.terminal = stderr_console().is_terminal
        self.live: Live | None = None
        self._shown: dict[tuple[str, str], str] = {}
        self._last_line_at = 0.0

    def __enter__(self) -> Progress:
        if self.terminal:
            self.live = Live(self._render(), console=stderr_console(), refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(None, None, None)
        else:
            self._lines()

    def _render(self) -> Group:
        elapsed = Text(f"elapsed {time.monotonic() - self.started:.0f}s", style="dim")
        return Group(*(replica_table(r) for r in self.latest.values()), elapsed)

    def update(self, record: JobRecord) -> None:
        self.latest[(record.job.namespace, record.job.name)] = record
        if self.live is not None:
            self.live.update(self._render())
        else:
            self._lines()

    def _lines(self) -> None:
        now = time.monotonic()
        periodic = now - self._last_line_at >= PROGRESS_SECONDS
        for key, record in self.latest.items():
            state = repr((record.status.phase, record.replicas))
            if periodic or self._shown.get(key) != state:
                note(progress_line(record, now - self.started))
                self._shown[key] = state
                self._last_line_at = now


def follow(
    backend: Backend,
    records: list[JobRecord],
    timeout: float,
    reached: Callable[[JobRecord], bool] | None = None,
) -> tuple[list[JobRecord], bool]:
    """Wait for every job to finish (or ``timeout`` seconds in all); show progress.

    Returns the latest records and whether the wait ran out of time.
    """
    deadline = time.monotonic() + timeout
    with Progress(records) as progress:
        for record in records:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                final = backend.wait(
                    record.job.name, record.job.namespace, remaining, progress.update,
                    record.job.kind,
                )  # fmt: skip
            except WaitTimeoutError:
                return list(progress.latest.values()), True
            progress.update(final)
        return list(progress.latest.values()), False


def report_timeout(records: list[JobRecord], timeout: float) -> int:
    """Say which jobs are still running after ``timeout``; exit status 3."""
    for record in records:
        if record.status.finished:
            continue
        note(
            f"timed out after {timeout:.0f}s: {resource_name(record)} is still running "
            f"({record.status.phase}); `kfkit wait job/{record.job.name}` waits again, "
            f"`kfkit delete job {record.job.name}` stops it"
        )
    return EXIT_TIMED_OUT


def report_outcome(backend: Backend, records: list[JobRecord]) -> int:
    """The outcome of finished jobs: 0 when every one succeeded, else 1."""
    for record in records:
        condition = record.status.condition(record.status.phase) or {}
        result(f"{resource_name(record)} {record.status.phase}: {condition.get('message', '')}")
        if record.status.succeeded:
            line = _last_line(backend, record, deciding_replica(record.job))
            if line is not None:
                result(f"  {deciding_replica(record.job)}: {line}")
        else:
            _explain_failure(backend, record)
        still_running = [k for k, s in record.replicas.items() if s.get("phase") == "Running"]
        if still_running:
            note(
                f"  still running ({record.job.run_policy.get('cleanPodPolicy')} cleanPodPolicy):"
                f" {', '.join(still_running)}; `kfkit delete job {record.job.name}` stops them"
            )
    return EXIT_SUCCEEDED if all(r.status.succeeded for r in records) else EXIT_FAILED


def deciding_replica(job: Job) -> str:
    """The replica whose end decides success: the Master or Chief, else worker 0."""
    keys = [r.key for r in job.replicas]
    for candidate in ("master-0", "chief-0", "worker-0"):
        if candidate in keys:
            return candidate
    return keys[0]


def _last_lines(backend: Backend, record: JobRecord, replica: str, count: int) -> list[str]:
    try:
        lines = deque(
            (line for _, line in backend.logs(record.job.name, record.job.namespace, replica)),
            maxlen=count,
        )
    except KfkitError:
        return []  # no log (yet): the events above still say why
    return [line for line in lines if line.strip()]


def _last_line(backend: Backend, record: JobRecord, replica: str) -> str | None:
    lines = _last_lines(backend, record, replica, 5)
    return lines[-1] if lines else None


def _explain_failure(backend: Backend, record: JobRecord) -> None:
    for event in record.events:
        if event.get("type") == "Warning":
            note(f"  {event.get('time', '')} {event.get('reason', '')}: {event.get('message', '')}")
    failed = [k for k, s in record.replicas.items() if s.get("phase") == "Failed"]
    for replica in failed or [deciding_replica(record.job)]:
        lines = _last_lines(backend, record, replica, FAILED_LOG_LINES)
        if lines:
            note(f"  last {len(lines)} log lines of {replica}:")
            for line in lines:
                note(f"    {line}")
