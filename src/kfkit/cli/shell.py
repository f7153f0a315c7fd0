"""``kfkit version`` and ``kfkit completion SHELL``: what a shell user reaches for first."""

from __future__ import annotations

import argparse
import json
import platform
from typing import Any

import argcomplete

from kfkit import __version__
from kfkit.cli.output import result

SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")


def cmd_version(args: argparse.Namespace) -> int:
    info = {"kfkit": __version__, "python": platform.python_version()}
    if args.output == "json":
        result(json.dumps(info, indent=2))
    else:
        result(f"kfkit {__version__} (Python {info['python']})")
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    """The shell code that makes TAB complete kfkit's verbs and flags (argcomplete's)."""
    print(argcomplete.shellcode(["kfkit"], shell=args.shell), end="")
    return 0


def register(subparsers: Any) -> None:
    version = subparsers.add_parser("version", help="print kfkit's version")
    version.add_argument("-o", "--output", choices=["json"], help="json for scripts")
    version.set_defaults(func=cmd_version)

    completion = subparsers.add_parser(
        "completion",
        help="print shell completion code",
        description='Enable TAB completion in bash with: eval "$(kfkit completion bash)"',
    )
    completion.add_argument("shell", choices=SHELLS)
    completion.set_defaults(func=cmd_completion)
