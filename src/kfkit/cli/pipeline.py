"""``kfkit pipeline``: the verification suite as a Kubeflow pipeline.

- ``kfkit pipeline compile``: write pipelines/verify_pipeline.yaml.
- ``kfkit pipeline run --local``: run it here with kfp.local (no cluster, no Docker);
  ``--runner container`` runs every component in the kit image with podman.
- ``kfkit pipeline submit --host URL``: run it on Kubeflow Pipelines.

``run`` exits 1 when a scenario failed, like ``kfkit verify``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kfkit.cli.output import stdout_is_terminal
from kfkit.errors import KfkitError
from kfkit.verify import TARGETS, find_suite_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pipeline", help="compile, run locally or submit the verification pipeline"
    )
    parser.add_argument("--suite-dir", help="the kfkit checkout (default: found from here)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    compile_parser = verbs.add_parser("compile", help="compile to pipelines/verify_pipeline.yaml")
    compile_parser.add_argument("--output", help="where to write the YAML (default: beside it)")
    compile_parser.set_defaults(func=run_compile)

    run_parser = verbs.add_parser("run", help="run the pipeline with kfp.local")
    run_parser.add_argument(
        "--local", action="store_true", required=True, help="run here with kfp.local"
    )
    run_parser.add_argument(
        "--runner",
        choices=("subprocess", "container"),
        default="subprocess",
        help="subprocess: this interpreter (default); container: each component in the "
        "image the compiled pipeline names, with podman (DOCKER_HOST when set)",
    )
    _add_run_arguments(run_parser)
    run_parser.add_argument(
        "--report-dir", default="reports/pipeline", help="where the merged reports are copied"
    )
    run_parser.add_argument(
        "--pipeline-root", default="reports/pipeline-root", help="kfp.local's outputs"
    )
    run_parser.set_defaults(func=run_local)

    submit_parser = verbs.add_parser("submit", help="submit to Kubeflow Pipelines")
    submit_parser.add_argument("--host", required=True, help="the KFP API endpoint URL")
    _add_run_arguments(submit_parser)
    submit_parser.add_argument(
        "--target", choices=TARGETS, default="kubernetes", help="where the jobs run"
    )
    submit_parser.add_argument(
        "--image-suite-dir", help="where the suite is in the kit image (compiled default)"
    )
    submit_parser.add_argument("--experiment", help="KFP experiment name")
    submit_parser.add_argument("--namespace", help="the Kubeflow profile namespace")
    submit_parser.set_defaults(func=run_submit)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tags", default="fast", help="radish tag expression (default: fast)")
    parser.add_argument(
        "--group",
        action="append",
        dest="groups",
        help="a feature file to run, relative to the suite (repeat; default: every group)",
    )


def _suite(args: argparse.Namespace) -> Path:
    return Path(args.suite_dir).resolve() if args.suite_dir else find_suite_dir()


def _check_groups(suite: Path, groups: list[str] | None) -> None:
    missing = [group for group in groups or [] if not (suite / group).is_file()]
    if missing:
        raise KfkitError(f"--group: {', '.join(missing)}: no such feature file in {suite}")


def run_compile(args: argparse.Namespace) -> int:
    from kfkit.verify.pipeline import compile_pipeline

    path = compile_pipeline(_suite(args), Path(args.output) if args.output else None)
    print(f"compiled {path}")
    return 0


def run_local(args: argparse.Namespace) -> int:
    from kfkit.verify.pipeline import run_local as run

    suite = _suite(args)
    _check_groups(suite, args.groups)
    log_file = None
    if not stdout_is_terminal():
        # In a pipe or CI log: kfp.local's own output goes to a file, progress to stderr.
        log_file = Path(args.report_dir).resolve() / "kfp-local.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        print(f"kfp.local's log: {log_file}", file=sys.stderr)
    result = run(
        suite,
        tags=args.tags,
        groups=args.groups,
        pipeline_root=Path(args.pipeline_root),
        report_dir=Path(args.report_dir),
        runner=args.runner,
        log_file=log_file,
    )
    print()
    for line in result.summary.lines():
        print(line)
    print(f"pipeline outputs: {result.run_dir}")
    print(f"HTML report:      {result.report_dir / 'report.html'}")
    return 0 if result.succeeded else 1


def run_submit(args: argparse.Namespace) -> int:
    from kfkit.verify.pipeline import COMPILED_NAME, submit

    suite = _suite(args)
    run_id = submit(
        host=args.host,
        tags=args.tags,
        target=args.target,
        suite_dir=args.image_suite_dir,
        groups=args.groups,
        experiment=args.experiment,
        namespace=args.namespace,
        package=suite / COMPILED_NAME,
    )
    print(f"submitted run {run_id} to {args.host}")
    return 0
