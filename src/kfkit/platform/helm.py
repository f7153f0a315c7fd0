"""Running the pinned helm on the platform chart.

Every function here builds one helm command line and runs it with a timeout. When helm
refuses (bad values, a failed upgrade) the error is a ``HelmError`` whose lines are helm's
own messages, one problem per line; values that fail the chart's values.schema.json read
``VALUES: field.path: what is wrong``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kfkit.errors import KfkitError
from kfkit.platform.tools import find_tool, repo_root

CHART_DIR = repo_root() / "charts" / "kubeflow-platform"
SITE_VALUES = repo_root() / "values.yaml"
DEFAULT_RELEASE = "kubeflowinstaller"
DEFAULT_NAMESPACE = "kubeflow"
# The paper's install: each component keeps its own resources.
PAPER_SET = ("componentsResourceConfiguration.enabled=false",)


class HelmError(KfkitError):
    """helm refused; one line per problem it reported."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems) or ["helm failed without a message"]
        super().__init__("\n".join(self.problems))

    def lines(self) -> list[str]:
        return list(self.problems)


@dataclass
class Values:
    """Where a release's values come from: files (-f) then --set overrides, in order."""

    files: list[Path] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)

    def args(self) -> list[str]:
        out: list[str] = []
        for path in self.files:
            out += ["-f", str(path)]
        for assignment in self.sets:
            out += ["--set", assignment]
        return out

    def describe(self) -> str:
        parts = [str(p) for p in self.files] + [f"--set {s}" for s in self.sets]
        return ", ".join(parts) or "the chart's defaults"


def _problems(stderr: str, values: Values | None) -> list[str]:
    """helm's error output as one line per problem; schema errors name the values' source."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    schema = [line[2:] for line in lines if line.startswith("- ")]
    if schema and any("don't meet the specifications of the schema" in line for line in lines):
        source = values.describe() if values else "values"
        return [f"{source}: {problem}" for problem in schema]
    return [line.removeprefix("Error: ") for line in lines if not line.startswith("WARNING")]


def run_helm(
    args: Sequence[str],
    *,
    kubeconfig: Path | None = None,
    values: Values | None = None,
    timeout: float = 300.0,
) -> str:
    """Run ``helm ARGS``; its stdout, or HelmError with its messages."""
    command = [str(find_tool("helm")), *args]
    if kubeconfig is not None:
        command += ["--kubeconfig", str(kubeconfig)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        # helm lint reports its findings on stdout; everything else fails on stderr.
        findings = [
            line for line in result.stdout.splitlines() if "[ERROR]" in line or "[WARNING]" in line
        ]
        raise HelmError(_problems("\n".join([*findings, result.stderr]), values))
    return result.stdout


def render(
    values: Values | None = None,
    *,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    chart: Path = CHART_DIR,
    with_tests: bool = True,
) -> list[dict[str, Any]]:
    """``helm template``: every object the chart would install (hooks and tests included)."""
    values = values or Values()
    args = ["template", release, str(chart), "--namespace", namespace, *values.args()]
    if not with_tests:
        args.append("--skip-tests")
    text = run_helm(args, values=values)
    return [obj for obj in yaml.safe_load_all(text) if isinstance(obj, dict)]


def lint(values: Values | None = None, *, chart: Path = CHART_DIR, strict: bool = True) -> str:
    """``helm lint [--strict]``; its report, or HelmError."""
    values = values or Values()
    args = ["lint", str(chart), *values.args()]
    if strict:
        args.append("--strict")
    return run_helm(args, values=values)


def upgrade_args(
    values: Values,
    *,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    chart: Path = CHART_DIR,
    wait: bool = True,
    timeout_s: int = 1200,
    no_hooks: bool = False,
) -> list[str]:
    """The arguments of ``helm upgrade --install`` (what docs/platform.md shows)."""
    args = ["upgrade", "--install", release, str(chart), "--namespace", namespace]
    args += ["--create-namespace", *values.args()]
    if wait:
        args += ["--wait", f"--timeout={timeout_s}s"]
    else:
        args += [f"--timeout={timeout_s}s"]
    if no_hooks:
        args.append("--no-hooks")
    return args


def upgrade(
    values: Values,
    *,
    kubeconfig: Path | None = None,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    chart: Path = CHART_DIR,
    wait: bool = True,
    timeout_s: int = 1200,
    no_hooks: bool = False,
) -> str:
    """``helm upgrade --install``: install the release or upgrade it to ``values``."""
    args = upgrade_args(
        values,
        release=release,
        namespace=namespace,
        chart=chart,
        wait=wait,
        timeout_s=timeout_s,
        no_hooks=no_hooks,
    )
    return run_helm(args, kubeconfig=kubeconfig, values=values, timeout=timeout_s + 60)


def rollback(
    revision: int,
    *,
    kubeconfig: Path | None = None,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    no_hooks: bool = False,
    timeout_s: int = 300,
) -> str:
    """``helm rollback RELEASE REVISION``."""
    args = ["rollback", release, str(revision), "--namespace", namespace, f"--timeout={timeout_s}s"]
    if no_hooks:
        args.append("--no-hooks")
    return run_helm(args, kubeconfig=kubeconfig, timeout=timeout_s + 60)


def history(
    *,
    kubeconfig: Path | None = None,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
) -> list[dict[str, Any]]:
    """``helm history``: the release's revisions, oldest first."""
    text = run_helm(
        ["history", release, "--namespace", namespace, "-o", "yaml"], kubeconfig=kubeconfig
    )
    loaded = yaml.safe_load(text)
    return list(loaded) if isinstance(loaded, list) else []
