"""Entry point of the ``kfkit`` command.

Each command group lives in its own module under ``kfkit.cli`` and exposes
``register(subparsers)``, which adds its parsers and sets ``func`` to the
callable that runs it. ``main`` turns user errors (``KfkitError``) into one
line per problem on stderr and their exit status (2, or 3 for a wait that ran
out of time), so no user ever sees a traceback for something they can fix; a
reader that goes away (``kfkit logs X -f | head -3``) ends the command quietly.
Tab completion comes from argcomplete (``kfkit completion bash``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import argcomplete

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
    "kfkit.cli.shell",
)

# 128 + SIGPIPE, what a shell reports for a command whose reader went away.
EXIT_BROKEN_PIPE = 141


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
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    if args.command is None:  # `kfkit` alone: what it can do, as `kubectl` alone shows
        parser.print_help()
        return 0
    try:
        result = args.func(args)
        sys.stdout.flush()
    except KfkitError as error:
        for line in error.lines():
            print(line, file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("kfkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit: point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
