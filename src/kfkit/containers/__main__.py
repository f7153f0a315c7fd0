"""``python -m kfkit.containers``: what ``make containers-tools`` and ``make images`` run.

python -m kfkit.containers config          write containers.conf, print its path
python -m kfkit.containers images [KEY..]  build the kit's images (all by default)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kfkit.containers import images, podman
from kfkit.errors import KfkitError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kfkit.containers")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("config", help="write kfkit's containers.conf and print its path")
    build = commands.add_parser("images", help="build the kit's images unless up to date")
    build.add_argument("keys", nargs="*", choices=[[], *images.IMAGES], metavar="KEY")
    build.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    args = parser.parse_args(argv)
    try:
        if args.command == "config":
            print(podman.ensure_config())
            return 0
        problem = podman.available()
        if problem:
            raise KfkitError(problem)
        for key in args.keys or list(images.IMAGES):
            print(images.ensure_image(args.root, images.IMAGES[key]), flush=True)
    except KfkitError as error:
        for line in error.lines():
            print(line, file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
