"""``kfkit verify``: run the verification suite and write cucumber JSON, JUnit XML and HTML.

The exit status is what CI and ``helm upgrade`` scripts look at: 0 when every
scenario that ran passed, 1 when one failed (or none ran), 2 for a usage
error such as an unknown target or no reachable cluster, 130 when interrupted
(the report then holds what ran until Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys

from kfkit.cli.args import duration
from kfkit.errors import KfkitError
from kfkit.verify import TARGETS, verify


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="run the radish verification suite and write its reports",
        description="Run features/*.feature (radish) against the local backend or a cluster, "
        "then write cucumber.json, junit.xml and report.html.",
    )
    parser.add_argument(
        "features", nargs="*", help="feature files or directories (default: the suite's features/)"
    )
    parser.add_argument("--tags", help="radish tag expression, e.g. 'fast' or 'full and not fault'")
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="local",
        help="where jobs run (default: local; @cluster scenarios are left out locally)",
    )
    parser.add_argument(
        "--report-dir", default="reports", help="where reports go (default: reports)"
    )
    parser.add_argument(
        "--suite-dir", help="directory with features/ and stepfile.py (default: found from here)"
    )
    parser.add_argument(
        "--timeout",
        type=duration,
        default=3600.0,
        help="for the whole run: 90s, 10m, 1h or seconds (default: 1h)",
    )
    parser.add_argument(
        "-u",
        "--user-data",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to the steps (e.g. kubeconfig=..., build_image=... for @cluster scenarios)",
    )
    parser.set_defaults(func=run)


def parse_user_data(pairs: list[str]) -> dict[str, str]:
    data = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise KfkitError(f"--user-data: {pair!r}: expected KEY=VALUE")
        data[key] = value
    return data


def run(args: argparse.Namespace) -> int:
    result = verify(
        features=args.features or None,
        tags=args.tags,
        target=args.target,
        report_dir=args.report_dir,
        suite_dir=args.suite_dir,
        timeout=args.timeout,
        user_data=parse_user_data(args.user_data),
    )
    reports = result.reports
    # radish has just printed the counts of features, scenarios and steps: not again.
    print()
    print(f"HTML report:  {reports.html}")
    print(f"cucumber JSON: {reports.cucumber_json}")
    print(f"JUnit XML:    {reports.junit_xml}")
    if result.interrupted:
        print("verification interrupted: the report holds what ran until then", file=sys.stderr)
        return 130
    if not result.ok:
        print("verification FAILED", file=sys.stderr)
        return 1
    return 0
