"""Helpers for the CLI tests: small jobs whose replicas are one-line Python programs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

KFKIT = [sys.executable, "-m", "kfkit.cli.main"]


def _script_job(name: str, code: str, port: int, policy: str = "Never", **spec: Any) -> dict:
    """A PyTorchJob with one master running ``code``."""
    container = {
        "name": "pytorch",
        "image": "kfkit/test:1",
        "command": ["python", "-c", textwrap.dedent(code)],
        "ports": [{"name": "pytorchjob-port", "containerPort": port}],
    }
    template: dict[str, Any] = {"spec": {"containers": [container]}}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "restartPolicy": policy, "template": template}
            },
            **spec,
        },
    }


@pytest.fixture
def manifest(tmp_path: Path) -> Callable[..., Path]:
    def write(*documents: dict[str, Any], name: str = "job.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump_all(list(documents)))
        return path

    return write


@pytest.fixture
def kfkit(kfkit_home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the kfkit command as a script would: stdout and stderr are pipes."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
        return subprocess.run(
            [*KFKIT, *args], capture_output=True, text=True, timeout=timeout, env=env
        )

    return run


@pytest.fixture
def script_job() -> Callable[..., dict[str, Any]]:
    """``script_job(name, code, port, policy="Never")``: a PyTorchJob whose master runs code."""
    return _script_job


@pytest.fixture
def kfkit_argv() -> list[str]:
    """How to start the kfkit command with this interpreter."""
    return list(KFKIT)
