"""``kfkit poddefaults apply``: show the pod the cluster would create, PodDefaults applied.

A notebook user can check what their team's PodDefaults add to a pod (secrets,
the shared volume) before anything is created, and ``--explain`` says which
PodDefaults matched and why each other one did not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from kfkit.errors import KfkitError, NotFoundError
from kfkit.poddefaults import apply_poddefaults, explain, load_poddefaults, pod_of


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "poddefaults", help="apply PodDefaults to a pod or notebook, as the Kubeflow webhook does"
    )
    verbs = group.add_subparsers(dest="poddefaults_command", metavar="VERB")
    verbs.required = True
    apply = verbs.add_parser(
        "apply",
        help="print the pod (for a Notebook: the pod its controller builds), PodDefaults applied",
    )
    apply.add_argument("-f", "--filename", required=True, help="a Pod, Notebook or pod template")
    apply.add_argument(
        "--poddefaults", required=True, metavar="DIR", help="directory of PodDefault YAML files"
    )
    apply.add_argument(
        "-n",
        "--namespace",
        help="namespace of the pod (default: the manifest's, else 'default')",
    )
    apply.add_argument(
        "--explain",
        action="store_true",
        help="say which PodDefaults matched and why the others did not, instead of the pod",
    )
    apply.set_defaults(func=cmd_apply)


def cmd_apply(args: argparse.Namespace) -> int:
    path = Path(args.filename)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise KfkitError(f"{path}: not valid YAML") from error
    pod, namespace = pod_of(document, str(path))
    poddefaults = load_poddefaults(args.poddefaults, args.namespace or namespace)
    if args.explain:
        for line in explain(pod, poddefaults, str(path)):
            print(line)
        return 0
    mutated = apply_poddefaults(pod, poddefaults, str(path))
    yaml.safe_dump(mutated, sys.stdout, sort_keys=False, default_flow_style=False)
    return 0
