"""Fixtures shared by every test tier."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
UPSTREAM_CRDS = REPO.parent / "shared" / "crds"


def pytest_configure(config: pytest.Config) -> None:
    """Give the tests' children Ctrl-C as a terminal gives it.

    A shell starts a background command (``make test &``, nohup, some CI
    runners) with SIGINT ignored, and an ignored signal stays ignored across
    exec: every kfkit the tests start would then shrug off the SIGINT that the
    Ctrl-C tests send. A handled signal is reset to the default at exec, so
    handling it here gives each child the default, as in a foreground run.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def kfkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private $KFKIT_HOME, so tests never see each other's jobs."""
    home = tmp_path / "kfkit-home"
    monkeypatch.setenv("KFKIT_HOME", str(home))
    monkeypatch.delenv("KFKIT_CONFIG", raising=False)
    monkeypatch.delenv("KFKIT_PODDEFAULTS", raising=False)
    return home


@pytest.fixture
def free_port() -> Callable[[], int]:
    def pick() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])

    return pick


def _unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Fields the schema does not declare: what kubectl's strict field validation rejects."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    problems: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key in schema["properties"]:
                problems += _unknown_fields(item, schema["properties"][key], f"{path}.{key}")
            elif not schema.get("additionalProperties"):
                problems.append(f"{path}.{key}: unknown field")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            problems += _unknown_fields(item, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += _unknown_fields(item, schema["items"], f"{path}[{index}]")
    return problems


class CrdSchemas:
    """The openAPIV3Schemas of a set of CRDs, as a validator of their custom resources.

    A resource is checked with jsonschema and, like kubectl's strict field
    validation, every field the schema does not declare is a problem too.
    """

    def __init__(self, crds: Iterable[dict[str, Any]], name: str = "upstream") -> None:
        self.name = name
        self.schemas: dict[tuple[str, str], dict[str, Any]] = {}
        for crd in crds:
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                api_version = f"{group}/{version['name']}"
                self.schemas[(api_version, kind)] = version["schema"]["openAPIV3Schema"]

    @classmethod
    def from_directory(cls, directory: Path) -> CrdSchemas:
        return cls(
            yaml.load(crd_file.read_text(), Loader=yaml.CSafeLoader)
            for crd_file in sorted(directory.glob("*.yaml"))
        )

    def knows(self, obj: dict[str, Any]) -> bool:
        return (obj.get("apiVersion"), obj.get("kind")) in self.schemas

    def validate(self, obj: dict[str, Any]) -> list[str]:
        """Every problem the CRD schema finds in ``obj`` (empty when valid)."""
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        if key not in self.schemas:
            return [f"no {self.name} CRD for {key[0]} {key[1]}"]
        schema = self.schemas[key]
        validator = jsonschema.Draft7Validator(schema)
        problems = [
            f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in validator.iter_errors(obj)
        ]
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        return problems + _unknown_fields(body, schema, "")


@pytest.fixture(scope="session")
def crd_schemas() -> type[CrdSchemas]:
    """The validator class, for CRDs other than the upstream ones (the chart's own)."""
    return CrdSchemas


@pytest.fixture(scope="session")
def upstream_crds() -> CrdSchemas:
    if not UPSTREAM_CRDS.is_dir():
        pytest.skip(f"the upstream CRDs are not at {UPSTREAM_CRDS}")
    return CrdSchemas.from_directory(UPSTREAM_CRDS)


@pytest.fixture(scope="session")
def upstream_crd_validator(upstream_crds: CrdSchemas) -> Callable[[dict[str, Any]], list[str]]:
    """``validate(obj) -> list of problems`` against the upstream Kubeflow CRDs."""
    return upstream_crds.validate
