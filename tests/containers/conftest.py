"""The `container` tier: real podman containers, kfkit's podman configuration, built images.

Every test here skips, saying why, only when podman cannot run containers on this machine
(``make containers-tools`` installs it); a missing image is built, not skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfkit.containers import images, podman

ROOT = Path(__file__).resolve().parents[2]
BASE = "python:3.11.7-slim-bookworm"


@pytest.fixture(scope="session")
def podman_ready() -> None:
    problem = podman.available()
    if problem:
        pytest.skip(problem)
    podman.ensure_config()


@pytest.fixture(scope="session")
def base_image(podman_ready: None) -> str:
    from kfkit.containers import base

    base.ensure_base(BASE)
    return BASE


@pytest.fixture(scope="session")
def kit_image(podman_ready: None) -> Callable[[str], str]:
    """Build (unless up to date) and name one of the kit's images."""

    def ensure(key: str) -> str:
        image = images.IMAGES[key]
        images.ensure_image(ROOT, image)
        return image.name

    return ensure


def leftovers(label: str) -> dict[str, list[str]]:
    """The pods, containers and networks of a job still in podman's storage."""
    found: dict[str, list[str]] = {}
    for kind in ("pod", "container", "network"):
        command = [kind, "ls", "--filter", f"label=io.kfkit.job={label}", "--format", "{{.Name}}"]
        if kind == "container":
            command = ["ps", "-a", "--filter", f"label=io.kfkit.job={label}"]
            command += ["--format", "{{.Names}}"]
        names = podman.podman(command, check=False).stdout.split()
        if names:
            found[kind] = names
    return found


def wait_for_no_leftovers(label: str, timeout: float = 60) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    while (found := leftovers(label)) and time.monotonic() < deadline:
        time.sleep(1)
    return found


@pytest.fixture
def container_home(kfkit_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KFKIT_RUNTIME", "container")
    return kfkit_home


def write_job(tmp_path: Path, manifest: dict[str, Any], name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return path


def kfkit(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "kfkit.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def cleanup_label() -> Iterator[list[str]]:
    """Labels whose podman objects are removed after the test, whatever happened."""
    labels: list[str] = []
    yield labels
    for label in labels:
        for kind, names in leftovers(label).items():
            if kind == "network":
                podman.podman(["network", "rm", "-f", *names], check=False)
            elif kind == "pod":
                podman.podman(["pod", "rm", "-f", "-t", "0", *names], check=False)
            else:
                podman.podman(["rm", "-f", "-t", "0", *names], check=False)
