"""Entry point of the ``kfkit`` command.

Each command group lives in its own module under ``kfkit.cli`` and exposes
``register(subparsers)``, which adds its parsers and sets ``func`` to the
callable that runs it. ``main`` turns user errors (``KfkitError``) into one
line per problem on stderr and exit status 2, so no user ever sees a traceback
for something they can fix.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kfkit import __version__
from kfkit.errors import KfkitError

# Command groups, in the order `kfkit --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "kfkit.cli.jobs",
    "kfkit.cli.data",
    "kfkit.cli.poddefaults",
    "kfkit.cli.build",
    "kfkit.cli.platform",
    "kfkit.cli.verify",
    "kfkit.cli.pipeline",
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit 2 with one line, like KfkitError."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kfkit",
        description="Run Kubeflow training jobs locally or on a cluster, and verify the platform.",
    )
    parser.add_argument("--version", action="version", version=f"kfkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except KfkitError as error:
        for line in error.lines():
            print(line, file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("kfkit: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
