"""``kfkit platform render | lint | upgrade | check | podsecurity | tools``: the platform chart.

- ``render``: the objects the chart would install (``helm template``), as YAML;
- ``lint``: ``helm lint --strict`` with the given values;
- ``upgrade``: ``helm upgrade --install`` (``--print`` shows the command instead);
- ``check``: wait until the platform's CRDs are Established and Deployments Available;
- ``podsecurity``: the Pod Security "restricted" check of every pod template in YAML files;
- ``tools``: where the pinned helm, kubectl, kube-apiserver, etcd and scanners are.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from kfkit.errors import KfkitError, ValidationError

if TYPE_CHECKING:
    from kfkit.platform.helm import Values


def register(subparsers: argparse._SubParsersAction) -> None:
    platform = subparsers.add_parser(
        "platform",
        help="the Kubeflow platform Helm chart",
        description="Render, lint, install (helm upgrade) and check the Kubeflow platform "
        "chart; check pod templates against Pod Security; show the pinned tools.",
    )
    verbs = platform.add_subparsers(dest="platform_command", metavar="VERB")
    verbs.required = True

    def values_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "-f", "--values", action="append", default=[], type=Path, help="values file (repeat)"
        )
        parser.add_argument(
            "--set", action="append", default=[], dest="sets", help="KEY=VALUE (repeat)"
        )
        parser.add_argument(
            "--paper",
            action="store_true",
            help="add the paper's --set componentsResourceConfiguration.enabled=false",
        )

    render = verbs.add_parser("render", help="print the objects the chart would install")
    values_options(render)
    render.add_argument("--release", default="kubeflowinstaller")
    render.add_argument("-n", "--namespace", default="kubeflow")
    render.set_defaults(func=run_render)

    lint = verbs.add_parser("lint", help="helm lint --strict")
    values_options(lint)
    lint.set_defaults(func=run_lint)

    upgrade = verbs.add_parser("upgrade", help="helm upgrade --install the platform")
    values_options(upgrade)
    upgrade.add_argument("--release", default="kubeflowinstaller")
    upgrade.add_argument("-n", "--namespace", default="kubeflow")
    upgrade.add_argument("--kubeconfig", type=Path)
    upgrade.add_argument("--timeout", type=int, default=1200, help="seconds (default 1200)")
    upgrade.add_argument("--no-wait", action="store_true", help="do not wait for readiness")
    upgrade.add_argument("--print", action="store_true", help="print the helm command, run nothing")
    upgrade.set_defaults(func=run_upgrade)

    check = verbs.add_parser("check", help="wait for the CRDs and Deployments to be ready")
    check.add_argument("--release", default="kubeflowinstaller")
    check.add_argument("-n", "--namespace", default="kubeflow")
    check.add_argument("--kubeconfig", type=Path, help="default: $KUBECONFIG, else ~/.kube/config")
    check.add_argument("--timeout", type=float, default=300.0)
    values_options(check)
    check.set_defaults(func=run_check)

    podsec = verbs.add_parser("podsecurity", help="check pod templates in YAML files")
    podsec.add_argument("files", nargs="+", type=Path)
    podsec.add_argument(
        "--builder-namespace",
        action="append",
        default=None,
        help="namespace where Kaniko builds may run as root (repeat)",
    )
    podsec.set_defaults(func=run_podsecurity)

    tools = verbs.add_parser("tools", help="show the pinned tools and what is missing")
    tools.set_defaults(func=run_tools)


def _values(args: argparse.Namespace) -> Values:
    from kfkit.platform.helm import PAPER_SET, Values

    for path in args.values:
        if not path.is_file():
            raise KfkitError(f"{path}: no such values file")
    return Values(files=list(args.values), sets=[*args.sets, *(PAPER_SET if args.paper else ())])


def run_render(args: argparse.Namespace) -> int:
    from kfkit.platform.helm import render

    objects = render(_values(args), release=args.release, namespace=args.namespace)
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


def run_lint(args: argparse.Namespace) -> int:
    from kfkit.platform.helm import lint

    print(lint(_values(args)).strip())
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    from kfkit.platform.helm import upgrade, upgrade_args
    from kfkit.platform.tools import tool_path

    values = _values(args)
    wait = not args.no_wait
    if args.print:
        helm_args = upgrade_args(
            values,
            release=args.release,
            namespace=args.namespace,
            wait=wait,
            timeout_s=args.timeout,
        )
        print(shlex.join([str(tool_path("helm")), *helm_args]))
        return 0
    output = upgrade(
        values,
        kubeconfig=args.kubeconfig,
        release=args.release,
        namespace=args.namespace,
        wait=wait,
        timeout_s=args.timeout,
    )
    print(output.strip())
    return 0


def run_check(args: argparse.Namespace) -> int:
    from kfkit.platform import check
    from kfkit.platform.helm import render

    kubeconfig = _kubeconfig(args.kubeconfig)
    objects = render(_values(args), release=args.release, namespace=args.namespace)
    argv = [f"--namespace={args.namespace}", f"--timeout={args.timeout}"]
    if kubeconfig is not None:
        argv.append(f"--kubeconfig={kubeconfig}")
    for obj in objects:
        annotations = obj["metadata"].get("annotations") or {}
        if "helm.sh/hook" in annotations:
            continue
        if obj["kind"] == "CustomResourceDefinition":
            argv.append(f"--crd={obj['metadata']['name']}")
        elif obj["kind"] == "Deployment":
            argv.append(f"--deployment={obj['metadata']['name']}")
    return check.main(argv)


def _kubeconfig(given: Path | None) -> Path | None:
    """``--kubeconfig``, else ``$KUBECONFIG`` or ``~/.kube/config`` as every other verb
    reads it; None inside a pod (its service account is used)."""
    from kfkit.backends.kubernetes.connection import default_kubeconfig, running_in_pod

    if given is not None:
        if not given.is_file():
            raise KfkitError(f"--kubeconfig {given}: no such file")
        return given
    found = default_kubeconfig()
    if found is None and not running_in_pod():
        raise KfkitError(
            "no kubeconfig: neither $KUBECONFIG nor ~/.kube/config exists and this is not a "
            "pod; pass --kubeconfig"
        )
    return found


def run_podsecurity(args: argparse.Namespace) -> int:
    from kfkit.platform import podsecurity

    namespaces = args.builder_namespace or sorted(podsecurity.DEFAULT_BUILDER_NAMESPACES)
    problems: list[str] = []
    for path in args.files:
        try:
            objects = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as error:
            raise KfkitError(f"{path}: cannot read: {error}".splitlines()[0]) from None
        problems += podsecurity.check_objects(
            objects, source=str(path), builder_namespaces=namespaces
        )
    if problems:
        raise ValidationError(problems)
    print(f"{len(args.files)} file(s): every pod template meets the restricted profile")
    return 0


def run_tools(args: argparse.Namespace) -> int:
    from kfkit.platform.tools import TOOLS, missing_reason, tool_path

    missing = 0
    for name in TOOLS:
        reason = missing_reason(name)
        missing += reason is not None
        print(f"{name:15} {tool_path(name)}" + (f"  MISSING: {reason}" if reason else ""))
    return 1 if missing else 0
