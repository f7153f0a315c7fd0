"""Fixtures of the platform tests: the pinned tools, the chart, a real API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kfkit.platform.apiserver import LocalApiServer, apiserver_missing_reason
from kfkit.platform.tools import find_tool, missing_reason

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kubeflow-platform"
SITE_VALUES = REPO / "values.yaml"
MANIFESTS = REPO / "manifests"
DOCKERFILES = REPO / "dockerfiles"
UPSTREAM_CRDS = REPO.parent / "shared" / "crds"


def require_tool(name: str) -> Path:
    """The pinned tool, or skip saying why it is missing (``make platform-tools`` installs it)."""
    reason = missing_reason(name)
    if reason:
        pytest.skip(reason)
    return find_tool(name)


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    return require_tool("helm")


@pytest.fixture(scope="session")
def kubectl_bin() -> Path:
    return require_tool("kubectl")


@pytest.fixture(scope="session")
def apiserver() -> Iterator[LocalApiServer]:
    """One kube-apiserver + etcd for the whole session (they start in about 10 s)."""
    reason = apiserver_missing_reason()
    if reason:
        pytest.skip(reason)
    with LocalApiServer() as server:
        yield server
