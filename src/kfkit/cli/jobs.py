"""``kfkit run | validate | get | describe | logs | delete``: kubectl-like verbs for jobs."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from kfkit.backends import BACKENDS, Backend, JobRecord, get_backend
from kfkit.backends.local.config import RUNTIMES
from kfkit.jobs.load import load_jobs
from kfkit.jobs.model import Job

PHASE_STYLES = {
    "Succeeded": "green",
    "Failed": "red",
    "Running": "cyan",
    "Restarting": "yellow",
    "Created": "blue",
    "Pending": "dim",
}
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _backend(args: argparse.Namespace) -> Backend:
    options: dict[str, Any] = {}
    if args.backend == "kubernetes":
        options = {"kubeconfig": args.kubeconfig, "context": args.context}
    else:
        if getattr(args, "poddefaults", None):
            options["poddefaults"] = args.poddefaults
        if getattr(args, "runtime", None):
            options["runtime"] = args.runtime
    return get_backend(args.backend, **options)


def _namespace(args: argparse.Namespace) -> str:
    return str(args.namespace or "default")


def _phase(phase: str) -> Text:
    return Text(phase, style=PHASE_STYLES.get(phase, ""))


def _age(start: str | None) -> str:
    if not start:
        return "-"
    import datetime as dt

    started = dt.datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    seconds = int((dt.datetime.now(dt.UTC) - started).total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def replica_table(record: JobRecord) -> Table:
    """One job's replicas: what each process (or pod) is doing."""
    title = Text.assemble(f"{record.job.describe()}  ", _phase(record.status.phase))
    table = Table(title=title, title_justify="left", expand=False)
    for column in ("REPLICA", "PHASE", "RESTARTS", "EXIT CODE", "REASON"):
        table.add_column(column)
    for key, state in record.replicas.items():
        exit_code = state.get("exitCode")
        table.add_row(
            key,
            _phase(str(state.get("phase", "Pending"))),
            str(state.get("restarts", 0)),
            "" if exit_code is None else str(exit_code),
            str(state.get("reason") or ""),
        )
    return table


# --- run -----------------------------------------------------------------------------


def print_warnings(jobs: list[Job]) -> None:
    """Admission warnings, one line each on stderr, as kubectl prints API warnings."""
    for job in jobs:
        for warning in job.warnings:
            err_console.print(f"Warning: {job.source}: {warning}", markup=False, highlight=False)


def cmd_run(args: argparse.Namespace) -> int:
    jobs = load_jobs(args.filename)  # everything validated before anything starts
    print_warnings(jobs)
    backend = _backend(args)
    if args.namespace:
        for job in jobs:
            job.manifest["metadata"]["namespace"] = args.namespace
    preflight = getattr(backend, "preflight", None)
    if preflight is not None:
        preflight(jobs)  # a cluster checks CRDs, namespaces and RBAC before anything is created
    submitted: list[JobRecord] = []
    try:
        for job in jobs:
            submitted.append(backend.submit(job))
            err_console.print(f"{job.describe()} created ({backend.name} backend)")
        if args.detach:
            return 0
        return _follow(backend, submitted, args.timeout)
    except KeyboardInterrupt:
        err_console.print("interrupted: stopping every replica")
        for record in submitted:
            stop = getattr(backend, "stop", None)
            if stop is not None:
                stop(record.job.name, record.job.namespace)
            else:
                backend.delete(record.job.name, record.job.namespace, record.job.kind)
        return 130


def _follow(backend: Backend, records: list[JobRecord], timeout: float) -> int:
    """Show a live table of every job's replicas until all of them finish."""
    latest = {(r.job.namespace, r.job.name): r for r in records}
    started = time.monotonic()

    def render() -> Group:
        elapsed = Text(f"elapsed {time.monotonic() - started:.0f}s", style="dim")
        return Group(*(replica_table(r) for r in latest.values()), elapsed)

    with Live(render(), console=err_console, refresh_per_second=4, transient=False) as live:
        for key, record in list(latest.items()):
            remaining = max(1.0, timeout - (time.monotonic() - started))

            def update(new: JobRecord, key: tuple[str, str] = key) -> None:
                latest[key] = new
                live.update(render())

            latest[key] = backend.wait(
                record.job.name, record.job.namespace, remaining, update, record.job.kind
            )
        live.update(render())
    failed = [r for r in latest.values() if not r.status.succeeded]
    for record in latest.values():
        condition = record.status.condition(record.status.phase) or {}
        err_console.print(
            f"{record.job.describe()}: {record.status.phase}: {condition.get('message', '')}"
        )
        if not record.status.succeeded:
            for event in record.events:
                if event.get("type") == "Warning":
                    err_console.print(
                        f"  {event.get('time', '')} {event.get('reason', '')}: "
                        f"{event.get('message', '')}",
                        highlight=False,
                    )
        still_running = [k for k, s in record.replicas.items() if s.get("phase") == "Running"]
        if still_running:
            err_console.print(
                f"  still running ({record.job.run_policy.get('cleanPodPolicy')} cleanPodPolicy):"
                f" {', '.join(still_running)}; `kfkit delete job {record.job.name}` stops them"
            )
    return 1 if failed else 0


# --- validate, get, describe, logs, delete ---------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    jobs = load_jobs(args.filename, skip_other_kinds=True)
    print_warnings(jobs)
    for job in jobs:
        console.print(f"{job.source}: {job.describe()} is valid ({job.total_replicas} replicas)")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    backend = _backend(args)
    records = backend.list(None if args.all_namespaces else _namespace(args))
    table = Table(box=None, pad_edge=False)
    columns = ["NAME", "KIND", "STATE", "REPLICAS", "RESTARTS", "AGE"]
    if args.all_namespaces:
        columns.insert(0, "NAMESPACE")
    for column in columns:
        table.add_column(column)
    for record in records:
        replicas = record.replicas.values()
        row: list[Any] = [
            record.job.name,
            record.job.kind,
            _phase(record.status.phase),
            ", ".join(
                f"{t}:{c.get('succeeded', 0)}/{record.job.replica_specs[t].replicas}"
                for t, c in record.status.replica_statuses.items()
                if t in record.job.replica_specs
            ),
            str(sum(int(s.get("restarts", 0)) for s in replicas)),
            _age(record.status.raw.get("startTime")),
        ]
        if args.all_namespaces:
            row.insert(0, record.job.namespace)
        table.add_row(*row)
    if not records:
        err_console.print("No jobs found.")
        return 0
    console.print(table)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    record = _backend(args).get(args.name, _namespace(args))
    job = record.job
    console.print(f"[bold]Name:[/]       {job.name}")
    console.print(f"[bold]Namespace:[/]  {job.namespace}")
    console.print(f"[bold]Kind:[/]       {job.kind}")
    console.print(f"[bold]Source:[/]     {job.source}")
    run_policy = ", ".join(f"{k}={v}" for k, v in job.run_policy.items()) or "-"
    console.print(f"[bold]Run policy:[/] {run_policy}")
    conditions = Table(title="Conditions", title_justify="left")
    for column in ("TYPE", "STATUS", "REASON", "MESSAGE", "LAST TRANSITION"):
        conditions.add_column(column)
    for condition in record.status.conditions:
        conditions.add_row(
            condition["type"],
            condition["status"],
            condition.get("reason", ""),
            condition.get("message", ""),
            condition.get("lastTransitionTime", ""),
        )
    console.print(conditions)
    console.print(replica_table(record))
    if record.events:
        events = Table(title="Events", title_justify="left")
        for column in ("TIME", "TYPE", "REASON", "MESSAGE"):
            events.add_column(column)
        for event in record.events:
            events.add_row(
                event.get("time", ""),
                event.get("type", ""),
                event.get("reason", ""),
                event.get("message", ""),
            )
        console.print(events)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    backend = _backend(args)
    record = backend.get(args.name, _namespace(args))
    prefix = args.replica is None and record.job.total_replicas > 1
    for replica, line in backend.logs(args.name, _namespace(args), args.replica, args.follow):
        print(f"[{replica}] {line}" if prefix else line, flush=args.follow)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _backend(args).delete(args.name, _namespace(args))
    err_console.print(f"job {_namespace(args)}/{args.name} deleted")
    return 0


# --- parsers -----------------------------------------------------------------------------


def _backend_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("KFKIT_BACKEND", "local"),
        help="where jobs run (default: $KFKIT_BACKEND, else local)",
    )
    common.add_argument("--kubeconfig", help="kubernetes backend: kubeconfig file")
    common.add_argument("--context", help="kubernetes backend: kubeconfig context")
    common.add_argument("-n", "--namespace", help="default: the manifest's, else default")
    return common


def register(subparsers: Any) -> None:
    common = _backend_options()

    run = subparsers.add_parser(
        "run", parents=[common], help="run PyTorchJob/TFJob manifests and wait for them"
    )
    run.add_argument("-f", "--filename", action="append", required=True, help="file or dir")
    run.add_argument("--detach", action="store_true", help="return once the jobs are started")
    run.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait (3600)")
    run.add_argument(
        "--poddefaults", metavar="DIR", help="local backend: apply the PodDefaults in DIR"
    )
    run.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help="local backend: run replicas as processes (default) or podman containers "
        "(also KFKIT_RUNTIME, or runtime: in $KFKIT_HOME/config.yaml)",
    )
    run.set_defaults(func=cmd_run)

    validate = subparsers.add_parser("validate", help="check manifests without running them")
    validate.add_argument("-f", "--filename", action="append", required=True)
    validate.set_defaults(func=cmd_validate)

    get = subparsers.add_parser("get", parents=[common], help="list jobs")
    get.add_argument("resource", choices=["jobs", "job"])
    get.add_argument("-A", "--all-namespaces", action="store_true")
    get.set_defaults(func=cmd_get)

    describe = subparsers.add_parser("describe", parents=[common], help="show a job in detail")
    describe.add_argument("resource", choices=["job"])
    describe.add_argument("name")
    describe.set_defaults(func=cmd_describe)

    logs = subparsers.add_parser("logs", parents=[common], help="print a job's logs")
    logs.add_argument("name")
    logs.add_argument("--replica", help="one replica, e.g. master-0 or worker-1")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(func=cmd_logs)

    delete = subparsers.add_parser("delete", parents=[common], help="stop and remove a job")
    delete.add_argument("resource", choices=["job"])
    delete.add_argument("name")
    delete.set_defaults(func=cmd_delete)
