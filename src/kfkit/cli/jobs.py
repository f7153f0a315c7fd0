"""``kfkit run | validate | get | describe | logs | delete | wait``: kubectl's verbs for jobs.

They read as kubectl's do: ``get jobs``, ``get pytorchjob NAME``, ``get tfjob/NAME``,
``-o json|yaml|wide|name``, ``delete -f FILE`` or ``--all``, ``logs --tail``,
``wait --for=condition=Succeeded job/NAME --timeout 10m``. Results go to stdout,
diagnostics to stderr (see :mod:`kfkit.cli.output`). Exit status: 0 succeeded,
1 a job failed, 2 bad input, 3 timed out while the job still runs, 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

from kfkit.backends import BACKENDS, Backend, JobRecord, get_backend
from kfkit.backends.local.config import RUNTIMES
from kfkit.cli import output, progress
from kfkit.cli.args import Target, duration, targets
from kfkit.errors import KfkitError, NotFoundError, ValidationError
from kfkit.jobs.load import load_jobs
from kfkit.jobs.model import Job

OUTPUT_FORMATS = ("json", "yaml", "wide", "name")
WAIT_POLL_SECONDS = 0.2


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


def _age(start: str | None) -> str:
    """How long ago ``start`` was, as kubectl's AGE column says it."""
    if not start:
        return "<none>"
    started = dt.datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    seconds = int((dt.datetime.now(dt.UTC) - started).total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _running(record: JobRecord, replica_type: str | None = None) -> int:
    return sum(
        1
        for state in record.replicas.values()
        if state.get("phase") == "Running" and replica_type in (None, state.get("type"))
    )


def _replicas_column(record: JobRecord) -> str:
    """Running/desired replicas, read as kubectl's READY column is (``2/3``)."""
    return f"{_running(record)}/{record.job.total_replicas}"


def _wide_replicas(record: JobRecord) -> str:
    """Per replica type: running/desired, and what has succeeded or failed."""
    parts = []
    for replica_type, spec in record.job.replica_specs.items():
        counts = record.status.replica_statuses.get(replica_type, {})
        part = f"{replica_type}:{_running(record, replica_type)}/{spec.replicas}"
        done = [f"{counts[k]} {k}" for k in ("succeeded", "failed") if counts.get(k)]
        parts.append(part + (f" ({', '.join(done)})" if done else ""))
    return ", ".join(parts)


def _restarts(record: JobRecord) -> str:
    return str(sum(int(s.get("restarts") or 0) for s in record.replicas.values()))


# --- finding jobs ----------------------------------------------------------------------


def _select(backend: Backend, args: argparse.Namespace, wanted: list[Target]) -> list[JobRecord]:
    """The jobs ``wanted`` names, or every job of their kind when no name is given."""
    namespace = None if getattr(args, "all_namespaces", False) else _namespace(args)
    found: list[JobRecord] = []
    for target in wanted:
        if target.name is None:
            found += [
                r
                for r in backend.list(namespace)
                if target.kind is None or r.job.kind == target.kind
            ]
        else:
            namespace_of = target.namespace or _namespace(args)
            found.append(backend.get(target.name, namespace_of, target.kind))
    return found


# --- run, validate ---------------------------------------------------------------------


def print_warnings(jobs: list[Job]) -> None:
    """Admission warnings, one line each on stderr, as kubectl prints API warnings."""
    for job in jobs:
        for warning in job.warnings:
            output.note(f"Warning: {job.source}: {warning}")


def cmd_run(args: argparse.Namespace) -> int:
    # Every document of every file is admitted before anything starts: all or nothing.
    jobs = load_jobs(args.filename, namespace=args.namespace)
    print_warnings(jobs)
    backend = _backend(args)
    preflight = getattr(backend, "preflight", None)
    if preflight is not None:
        # A cluster checks CRDs, namespaces and RBAC; the local backend plans every
        # replica (secrets, programs, directories) before anything is created.
        preflight(jobs)
    _refuse_existing(backend, jobs, args.replace)
    submitted: list[JobRecord] = []
    try:
        for job in jobs:
            record = backend.submit(job, replace=args.replace)
            submitted.append(record)
            output.result(f"{output.resource_name(record)} created")
            output.note(f"{job.describe()} runs on the {backend.name} backend")
        if args.detach:
            return 0
        records, timed_out = progress.follow(backend, submitted, args.timeout)
        if timed_out:
            return progress.report_timeout(records, args.timeout)
        return progress.report_outcome(backend, records)
    except KeyboardInterrupt:
        output.note("interrupted: stopping every replica")
        for record in submitted:
            _stop(backend, record.job)
        return 130


def _refuse_existing(backend: Backend, jobs: list[Job], replace: bool) -> None:
    """Every name a submit would refuse, before any job starts (nothing half-applied)."""
    problems = []
    for job in jobs:
        try:
            existing = backend.get(job.name, job.namespace, job.kind)
        except NotFoundError:
            continue
        if replace and existing.status.finished:
            continue
        how = "`kfkit delete job " + job.name + "` first"
        if existing.status.finished:
            how += ", or run with --replace"
        problems.append(
            f"{job.source}: metadata.name: {job.describe()} already exists "
            f"({existing.status.phase}); {how}"
        )
    if problems:
        raise ValidationError(problems)


def _stop(backend: Backend, job: Job) -> None:
    stop = getattr(backend, "stop", None)
    if stop is not None:
        stop(job.name, job.namespace)
    else:
        backend.delete(job.name, job.namespace, job.kind)


def cmd_validate(args: argparse.Namespace) -> int:
    jobs = load_jobs(args.filename, skip_other_kinds=True, namespace=args.namespace)
    print_warnings(jobs)
    if args.backend == "local":
        # The very checks `kfkit run` makes before it starts anything, without starting.
        # (Another backend's preflight would need its cluster: validate works offline.)
        from kfkit.backends.local import LocalBackend

        LocalBackend(poddefaults=args.poddefaults).preflight(jobs)
    for job in jobs:
        output.result(f"{job.source}: {job.describe()} is valid ({job.total_replicas} replicas)")
    return 0


# --- get, describe -----------------------------------------------------------------------


def _print_records(
    records: list[JobRecord], args: argparse.Namespace, single: bool, header: bool = True
) -> None:
    if args.output in ("json", "yaml"):
        output.print_objects(records, args.output, single)
        return
    if args.output == "name":
        for record in records:
            output.result(output.resource_name(record))
        return
    columns = ["NAME", "KIND", "STATE", "REPLICAS", "RESTARTS", "AGE"]
    if args.output == "wide":
        columns += ["REPLICA TYPES", "MESSAGE"]
    if args.all_namespaces:
        columns.insert(0, "NAMESPACE")
    output.table(columns, [_row(record, args) for record in records], header=header)


def _row(record: JobRecord, args: argparse.Namespace) -> list[Any]:
    row: list[Any] = [
        record.job.name,
        record.job.kind,
        output.phase_text(record.status.phase),
        _replicas_column(record),
        _restarts(record),
        _age(record.status.raw.get("startTime")),
    ]
    if args.output == "wide":
        condition = record.status.condition(record.status.phase) or {}
        row += [_wide_replicas(record), str(condition.get("message", ""))]
    if args.all_namespaces:
        row.insert(0, record.job.namespace)
    return row


def cmd_get(args: argparse.Namespace) -> int:
    backend = _backend(args)
    wanted = targets(args.resource, need_name=False)
    single = len(wanted) == 1 and wanted[0].name is not None
    records = _select(backend, args, wanted)
    if args.watch and args.output in ("json", "yaml"):
        for record in records:  # a watch prints objects one by one, never a List
            output.print_objects([record], args.output, single=True)
    elif records or args.output in ("json", "yaml"):
        _print_records(records, args, single)  # json/yaml: an empty List is still a List
    else:
        where = "any namespace" if args.all_namespaces else f"{_namespace(args)} namespace"
        output.note(f"No resources found in {where}.")
    if args.watch:
        return _watch(backend, args, wanted, records)
    return 0


def _watch(
    backend: Backend, args: argparse.Namespace, wanted: list[Target], shown: list[JobRecord]
) -> int:
    """``get -w``: print a job again whenever its row changes, until Ctrl-C or --timeout."""
    last = {(r.job.namespace, r.job.name): _watch_key(r) for r in shown}
    printed_header = bool(shown)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    while deadline is None or time.monotonic() < deadline:
        time.sleep(args.interval)
        try:
            records = _select(backend, args, wanted)
        except NotFoundError:
            continue  # a named job not (yet, or any more) there
        changed = [r for r in records if last.get((r.job.namespace, r.job.name)) != _watch_key(r)]
        for record in changed:
            last[(record.job.namespace, record.job.name)] = _watch_key(record)
        if changed:
            if args.output in ("json", "yaml"):
                for record in changed:
                    output.print_objects([record], args.output, single=True)
            else:
                # As kubectl: the header once, then a row per change.
                _print_records(changed, args, single=False, header=not printed_header)
                printed_header = True
    return 0


def _watch_key(record: JobRecord) -> str:
    return repr((record.status.raw, record.replicas))


def cmd_describe(args: argparse.Namespace) -> int:
    backend = _backend(args)
    records = _select(backend, args, targets(args.resource, need_name=False))
    for number, record in enumerate(records):
        if number:
            output.result("")
        _describe(record)
    return 0


def _describe(record: JobRecord) -> None:
    job = record.job
    run_policy = ", ".join(f"{k}={v}" for k, v in job.run_policy.items()) or "-"
    for label, value in (
        ("Name", job.name),
        ("Namespace", job.namespace),
        ("Kind", job.kind),
        ("Source", job.source),
        ("Run policy", run_policy),
        ("State", record.status.phase),
    ):
        output.result(f"{label + ':':<12}{value}")
    output.result("Conditions:")
    output.table(
        ["TYPE", "STATUS", "REASON", "MESSAGE", "LAST TRANSITION"],
        [
            [
                str(c.get("type", "")),
                str(c.get("status", "")),
                str(c.get("reason", "")),
                str(c.get("message", "")),
                str(c.get("lastTransitionTime", "")),
            ]
            for c in record.status.conditions
        ],
        boxed=True,
    )
    output.result("Replicas:")
    output.table(
        ["REPLICA", "PHASE", "RESTARTS", "EXIT CODE", "REASON"],
        [
            [
                key,
                output.phase_text(str(state.get("phase", "Pending"))),
                str(state.get("restarts", 0)),
                "" if state.get("exitCode") is None else str(state.get("exitCode")),
                str(state.get("reason") or ""),
            ]
            for key, state in record.replicas.items()
        ],
        boxed=True,
    )
    output.result("Events:")
    if not record.events:
        output.result("  <none>")
        return
    output.table(
        ["TIME", "TYPE", "REASON", "MESSAGE"],
        [
            [
                str(e.get("time", "")),
                str(e.get("type", "")),
                str(e.get("reason", "")),
                str(e.get("message", "")),
            ]
            for e in record.events
        ],
        boxed=True,
    )


# --- logs ---------------------------------------------------------------------------------


def cmd_logs(args: argparse.Namespace) -> int:
    backend = _backend(args)
    target = targets([args.name] if "/" in args.name else ["job", args.name], need_name=True)[0]
    assert target.name is not None
    record = backend.get(target.name, _namespace(args), target.kind)
    prefix = args.replica is None and record.job.total_replicas > 1
    for replica, line in backend.logs(
        record.job.name,
        record.job.namespace,
        args.replica,
        args.follow,
        record.job.kind,
        tail=None if args.tail is None or args.tail < 0 else args.tail,
        previous=args.previous,
        since=args.since,
        timestamps=args.timestamps,
    ):
        print(f"[{replica}] {line}" if prefix else line, flush=args.follow)
    return 0


# --- delete, wait ---------------------------------------------------------------------------


def cmd_delete(args: argparse.Namespace) -> int:
    backend = _backend(args)
    if args.filename:
        if args.resource or args.all:
            raise KfkitError("delete: give either -f FILE, or names, or --all")
        documents = load_jobs(args.filename, skip_other_kinds=True, namespace=args.namespace)
        wanted = [Target(j.kind, j.name, j.namespace) for j in documents]
    elif args.all:
        if any("/" in word for word in args.resource) or len(args.resource) > 1:
            raise KfkitError("delete --all: name only a resource type (e.g. `jobs`)")
        wanted = targets(args.resource or ["jobs"], need_name=False)
    else:
        wanted = targets(args.resource, need_name=True)
    records = []
    for target in wanted:
        try:
            records += _select(backend, args, [target])
        except NotFoundError:
            if not args.ignore_not_found:
                raise
    for record in records:
        backend.delete(record.job.name, record.job.namespace, record.job.kind)
        output.result(f"{output.resource_name(record)} deleted")
        _warn_kept_volumes(backend, record.job)
    if not records and args.all:
        output.note("No resources found.")
    return 0


def _warn_kept_volumes(backend: Backend, job: Job) -> None:
    """A deleted job's claims outlive it, as PVCs do on a cluster: say so, since a new job
    of the same name reading its checkpoint directory there would resume from it."""
    claims = sorted(
        {
            volume["persistentVolumeClaim"]["claimName"]
            for spec in job.replica_specs.values()
            for volume in (spec.template.get("spec") or {}).get("volumes") or []
            if (volume.get("persistentVolumeClaim") or {}).get("claimName")
        }
    )
    if not claims:
        return
    home = getattr(getattr(backend, "config", None), "home", None)
    where = [
        f"{claim} ({Path(home) / 'volumes' / job.namespace / claim})" if home else claim
        for claim in claims
    ]
    output.note(
        f"  kept: the PersistentVolumeClaims {', '.join(where)}; checkpoints written there "
        f"are resumed by the next job that reads them: remove them to start afresh"
    )


def _condition(text: str) -> str:
    """``--for=condition=Succeeded`` (kubectl's form) -> ``Succeeded``."""
    kind, _, value = text.partition("=")
    if kind != "condition" or not value:
        raise argparse.ArgumentTypeError(
            f"expected condition=NAME (e.g. condition=Succeeded), got {text!r}"
        )
    condition, _, status = value.partition("=")
    if status and status.lower() != "true":
        raise argparse.ArgumentTypeError("only condition=NAME (status True) is supported")
    return condition


def cmd_wait(args: argparse.Namespace) -> int:
    """Wait until every named job has the condition; 1 when one ends without it."""
    backend = _backend(args)
    wanted = targets(args.resource, need_name=not args.all)
    pending = _select(backend, args, wanted)
    if not pending:
        raise NotFoundError("wait: no matching jobs found")
    deadline = time.monotonic() + args.timeout
    status = progress.EXIT_SUCCEEDED
    for record in pending:
        remaining = max(0.0, deadline - time.monotonic())
        final = _wait_for(backend, record, args.condition, remaining)
        if final is None:
            latest = backend.get(record.job.name, record.job.namespace, record.job.kind)
            return progress.report_timeout([latest], args.timeout)
        if final.status.is_true(args.condition):
            output.result(f"{output.resource_name(final)} condition met")
        else:
            output.note(
                f"{output.resource_name(final)} finished {final.status.phase} without "
                f"condition {args.condition}"
            )
            status = progress.EXIT_FAILED
    return status


def _wait_for(
    backend: Backend, record: JobRecord, condition: str, timeout: float
) -> JobRecord | None:
    """The job once it has ``condition`` or has finished; None when time ran out first."""
    if record.status.is_true(condition):
        return record
    wait_for = getattr(backend, "wait_for", None)  # a cluster watches instead of polling
    try:
        if wait_for is not None:
            final: JobRecord = wait_for(
                record.job,
                lambda status: status.is_true(condition) or status.finished,
                timeout,
            )
            return final
        deadline = time.monotonic() + timeout
        while True:
            latest = backend.get(record.job.name, record.job.namespace, record.job.kind)
            if latest.status.is_true(condition) or latest.status.finished:
                return latest
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(WAIT_POLL_SECONDS, max(0.01, deadline - time.monotonic())))
    except TimeoutError:
        return None


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


RESOURCE_HELP = "jobs, pytorchjobs, tfjobs (or singular), then names; or KIND/NAME"


def register(subparsers: Any) -> None:
    common = _backend_options()

    run = subparsers.add_parser(
        "run", parents=[common], help="run PyTorchJob/TFJob manifests and wait for them"
    )
    run.add_argument("-f", "--filename", action="append", required=True, help="file or dir")
    run.add_argument("--detach", action="store_true", help="return once the jobs are started")
    run.add_argument(
        "--timeout", type=duration, default=3600.0, help="how long to wait: 90s, 10m, 1h (1h)"
    )
    run.add_argument(
        "--replace",
        action="store_true",
        help="delete a finished job of the same name first (else it is refused)",
    )
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

    validate = subparsers.add_parser(
        "validate",
        parents=[common],
        help="check manifests without running them (the local backend: all that run checks)",
    )
    validate.add_argument("-f", "--filename", action="append", required=True)
    validate.add_argument(
        "--poddefaults", metavar="DIR", help="local backend: apply the PodDefaults in DIR"
    )
    validate.set_defaults(func=cmd_validate)

    get = subparsers.add_parser("get", parents=[common], help="list jobs, or show some")
    get.add_argument("resource", nargs="+", metavar="RESOURCE", help=RESOURCE_HELP)
    get.add_argument("-A", "--all-namespaces", action="store_true")
    get.add_argument("-o", "--output", choices=OUTPUT_FORMATS, help="json, yaml, wide or name")
    get.add_argument("-w", "--watch", action="store_true", help="print changes until Ctrl-C")
    get.add_argument("--timeout", type=duration, help="with -w: stop watching after this long")
    get.add_argument("--interval", type=duration, default=1.0, help=argparse.SUPPRESS)
    get.set_defaults(func=cmd_get)

    describe = subparsers.add_parser("describe", parents=[common], help="show jobs in detail")
    describe.add_argument("resource", nargs="+", metavar="RESOURCE", help=RESOURCE_HELP)
    describe.set_defaults(func=cmd_describe, all_namespaces=False)

    logs = subparsers.add_parser("logs", parents=[common], help="print a job's logs")
    logs.add_argument("name", help="NAME or KIND/NAME")
    logs.add_argument("--replica", help="one replica, e.g. master-0 or worker-1")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", type=int, help="only the last N lines of each replica")
    logs.add_argument("-p", "--previous", action="store_true", help="the run before a restart")
    logs.add_argument("--since", type=duration, help="kubernetes backend: only newer lines")
    logs.add_argument("--timestamps", action="store_true", help="kubernetes backend: add times")
    logs.set_defaults(func=cmd_logs)

    delete = subparsers.add_parser("delete", parents=[common], help="stop and remove jobs")
    delete.add_argument("resource", nargs="*", metavar="RESOURCE", help=RESOURCE_HELP)
    delete.add_argument("-f", "--filename", action="append", help="the jobs a file defines")
    delete.add_argument("--all", action="store_true", help="every job in the namespace")
    delete.add_argument("-A", "--all-namespaces", action="store_true", help="with --all")
    delete.add_argument("--ignore-not-found", action="store_true")
    delete.set_defaults(func=cmd_delete)

    wait = subparsers.add_parser(
        "wait",
        parents=[common],
        help="wait for a condition: --for=condition=Succeeded job/NAME --timeout 10m",
    )
    wait.add_argument("resource", nargs="+", metavar="RESOURCE", help=RESOURCE_HELP)
    wait.add_argument(
        "--for",
        dest="condition",
        type=_condition,
        required=True,
        metavar="condition=NAME",
        help="Created, Running, Restarting, Succeeded or Failed",
    )
    wait.add_argument("--timeout", type=duration, default=30.0, help="90s, 10m, 1h (30s)")
    wait.add_argument("--all", action="store_true", help="every job of the type")
    wait.set_defaults(func=cmd_wait, all_namespaces=False)
