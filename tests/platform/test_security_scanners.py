"""checkov, trivy and hadolint report zero failures on charts/, manifests/ and dockerfiles/.

Accepted findings are listed in .checkov.yaml (checks skipped everywhere), in
``checkov.io/skipN`` annotations (one object each) and in .trivyignore.yaml (scoped to
files); docs/security.md gives every reason. Each scanner is also shown a deliberately bad
input, so that a scanner which silently scans nothing cannot pass this file.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfkit.platform.tools import find_tool, tool_env

from .conftest import CHART, DOCKERFILES, MANIFESTS, REPO, require_tool

CHECKOV_CONFIG = REPO / ".checkov.yaml"
TRIVY_IGNORE = REPO / ".trivyignore.yaml"
# Only for the chart: checkov renders it with `helm template` into the "default" namespace,
# while the chart puts every object in the release namespace chosen at install time.
HELM_ONLY_SKIPS = ("CKV_K8S_21",)


def run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=tool_env(),
        cwd=REPO,
    )


def checkov(directory: Path, framework: str, extra_skips: tuple[str, ...] = ()) -> dict[str, Any]:
    """checkov's JSON report of one directory and framework, with the repository's skips."""
    binary = require_tool("checkov")
    skips = list(yaml.safe_load(CHECKOV_CONFIG.read_text())["skip-check"]) + list(extra_skips)
    result = run(
        [
            str(binary),
            "--config-file",
            str(CHECKOV_CONFIG),
            "--directory",
            str(directory),
            "--framework",
            framework,
            "--skip-check",
            ",".join(skips),
            "--output",
            "json",
        ]
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    merged: dict[str, Any] = {"passed": 0, "failed": 0, "failed_checks": []}
    for part in reports:
        summary = part.get("summary", part)
        merged["passed"] += summary.get("passed", 0)
        merged["failed"] += summary.get("failed", 0)
        merged["failed_checks"] += (part.get("results") or {}).get("failed_checks", [])
    merged["returncode"] = result.returncode
    return merged


def failures(report: dict[str, Any]) -> list[str]:
    return [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["failed_checks"]]


def test_checkov_passes_the_chart_rendered_by_helm() -> None:
    # Without helm checkov's helm scan renders nothing and passes: that must fail, not skip.
    find_tool("helm")
    report = checkov(CHART.parent, "helm", HELM_ONLY_SKIPS)
    assert failures(report) == []
    assert report["passed"] > 100, "checkov scanned too little of the chart: was it rendered?"


def test_checkov_passes_the_manifests() -> None:
    report = checkov(MANIFESTS, "kubernetes")
    assert failures(report) == []
    assert report["passed"] > 0


def test_checkov_passes_the_dockerfiles() -> None:
    assert list(DOCKERFILES.rglob("Dockerfile")), "no Dockerfile under dockerfiles/"
    report = checkov(DOCKERFILES, "dockerfile")
    assert failures(report) == []
    assert report["passed"] > 0


BAD_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bad", "namespace": "team"},
    "spec": {
        "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]
    },
}
BAD_DOCKERFILE = "FROM debian\nRUN apt-get update && apt-get install -y curl\n"


def base_images(path: Path) -> list[str]:
    """The FROM images of a Dockerfile, with ARG defaults substituted and stage names skipped."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images = []
    for line in path.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "ARG" and "=" in words[1]:
            name, default = words[1].split("=", 1)
            args.setdefault(name, default)
        elif len(words) >= 2 and words[0].upper() == "FROM":
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[1])
            if len(words) >= 4 and words[2].upper() == "AS":
                stages.add(words[3])
            if image not in stages:
                images.append(image)
    return images


def test_every_base_image_is_pinned_to_a_tag() -> None:
    """What CKV_DOCKER_7 would check if it resolved ARG defaults (it is skipped for that)."""
    problems = []
    for path in dockerfiles():
        for image in base_images(path):
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            if not tag or tag == "latest" or "$" in image:
                problems.append(f"{path.relative_to(REPO)}: FROM {image}: pin a version tag")
    assert problems == []


def test_base_images_resolve_arg_defaults_and_skip_stages(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(
        "ARG BASE=python:3.11.7-slim\nFROM ${BASE} AS build\nFROM build\nFROM debian:latest\n"
    )
    assert base_images(path) == ["python:3.11.7-slim", "debian:latest"]


def test_checkov_catches_a_privileged_pod(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(BAD_POD))
    report = checkov(tmp_path, "kubernetes")
    assert "CKV_K8S_16" in {c["check_id"] for c in report["failed_checks"]}  # privileged


def trivy(target: Path) -> tuple[int, list[dict[str, Any]]]:
    binary = require_tool("trivy")
    result = run(
        [
            str(binary),
            "config",
            "--quiet",
            "--skip-check-update",
            "--disable-telemetry",
            "--skip-version-check",
            "--ignorefile",
            str(TRIVY_IGNORE),
            "--exit-code",
            "1",
            "--format",
            "json",
            str(target),
        ]
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout).get("Results") or []


@pytest.mark.parametrize("directory", [CHART.parent, MANIFESTS, DOCKERFILES], ids=lambda p: p.name)
def test_trivy_config_finds_nothing(directory: Path) -> None:
    returncode, results = trivy(directory)
    found = [
        f"{r['Target']}: {m['ID']} {m['Title']}"
        for r in results
        for m in r.get("Misconfigurations") or []
        if m.get("Status") == "FAIL"
    ]
    assert found == []
    assert returncode == 0
    assert sum((r.get("MisconfSummary") or {}).get("Successes", 0) for r in results) > 0


def test_trivy_catches_a_privileged_pod_and_a_bad_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(BAD_POD))
    (tmp_path / "Dockerfile").write_text(BAD_DOCKERFILE)
    returncode, results = trivy(tmp_path)
    ids = {m["ID"] for r in results for m in r.get("Misconfigurations") or []}
    assert returncode == 1
    assert "KSV-0017" in ids  # privileged container
    assert "DS-0002" in ids  # runs as root (no USER)


def dockerfiles() -> list[Path]:
    return sorted(p for p in DOCKERFILES.rglob("Dockerfile*") if p.suffix != ".dockerignore")


def test_hadolint_passes_every_dockerfile() -> None:
    binary = require_tool("hadolint")
    assert dockerfiles(), "no Dockerfile under dockerfiles/"
    for path in dockerfiles():
        result = run([str(binary), str(path)])
        assert result.returncode == 0, f"{path}:\n{result.stdout}{result.stderr}"


def test_hadolint_catches_an_untagged_base_image(tmp_path: Path) -> None:
    binary = require_tool("hadolint")
    path = tmp_path / "Dockerfile"
    path.write_text(BAD_DOCKERFILE)
    result = run([str(binary), str(path)])
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # always tag the image version
