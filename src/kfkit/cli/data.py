"""``kfkit data``: prepare data sets ahead of training.

``kfkit data mnist --dir DIR`` fills DIR with the four verified MNIST files,
for example a volume that replicas mount at /trainData, or a directory an
image build bakes in. Without ``--dir`` it fills the local cache.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="prepare training data sets")
    kinds = data.add_subparsers(dest="dataset", metavar="DATASET")
    kinds.required = True
    mnist = kinds.add_parser(
        "mnist", help="fetch, verify and cache MNIST; copy it into a directory"
    )
    mnist.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="directory to fill with the four IDX files (default: only the cache)",
    )
    mnist.set_defaults(func=run_mnist)


def run_mnist(args: argparse.Namespace) -> int:
    from kfkit.data import FILES, prepare

    directory = prepare(args.dir)
    print(f"MNIST ready in {directory} ({', '.join(FILES)}; MD5 verified)")
    return 0
