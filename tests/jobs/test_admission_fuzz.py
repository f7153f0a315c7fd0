"""Property test of the input boundary: mutated versions of every shipped manifest.

Each example takes one file under ``manifests/``, applies a few random
mutations (a value replaced by a hostile one, a field deleted, an unknown field
added, a second document appended) and runs ``kfkit validate`` and, when
validate refuses, ``kfkit run --detach`` in-process. Whatever the input:

- no traceback (only ``KfkitError``s reach the user) and no hang;
- the exit status is 0 or 2;
- validate and run agree: run refuses what validate refuses, and exit 2 leaves
  nothing under ``$KFKIT_HOME/jobs`` and no process behind;
- nothing a cluster would refuse is accepted: the upstream CRD schema (after
  the API server's pruning of nulls) and path-shaped names are the oracle.

``KFKIT_FUZZ_EXAMPLES`` raises the number of examples (default 150, about a
minute here) for a longer campaign.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from kfkit.cli.main import main

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((REPO / "manifests").rglob("*.yaml"))
EXAMPLES = int(os.environ.get("KFKIT_FUZZ_EXAMPLES", "150"))
# A hang is a case that does not finish; on a loaded machine one case can take seconds.
HANG_SECONDS = 60

HOSTILE: list[Any] = [
    None,
    "",
    "..",
    "../../escape",
    "/absolute/path",
    "a/b",
    "A=B",
    "Upper_Case",
    "1Ei",
    "1e400",
    "-1",
    -1,
    0,
    2**63,
    1.5,
    True,
    "true",
    [],
    {},
    [None],
    {"unknown": None},
    "x" * 300,
    "nul\x00byte",
    "ünïcödé",
    "$(MASTER_ADDR)",
    "*",
    "Directory",
    "File",
    # Values that are valid in some places, so mutated jobs also reach planning.
    "valid-name",
    "a.b",
    "1Gi",
    "500m",
    "/tmp",
    1,
    2,
    "Never",
    "OnFailure",
]
# Fields whose value becomes a path or a name on a cluster: '/' and '..' are refused there.
NAME_FIELDS = {"name", "namespace", "claimName", "secretName", "key", "subPath"}


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node)
    if isinstance(node, list):
        return list(range(len(node)))
    return []


NAMES = ["valid-name", "a.b", "a-1", "UPPER", "..", "a/b", "-a", "x" * 64, "é", "a_b"]


def _name_fields(node: Any) -> list[tuple[Any, Any]]:
    """Every (parent, key) whose value is a string in a name field."""
    found: list[tuple[Any, Any]] = []
    for key in _children(node):
        child = node[key]
        if key in NAME_FIELDS and isinstance(child, str):
            found.append((node, key))
        found += _name_fields(child)
    return found


def mutate_once(choose: Callable[[list[Any]], Any], document: Any) -> None:
    """Walk down to a random node and replace, delete or add something there.

    ``choose(options)`` picks one option: hypothesis draws in the test, a plain
    random generator in a longer campaign.
    """
    names = _name_fields(document)
    if names and choose([True, False]):  # half the time: a name, valid or not
        parent, key = choose(names)
        parent[key] = choose(NAMES)
        return
    parent = None
    key = None
    node = document
    while _children(node) and (parent is None or choose([True, False])):
        parent, key = node, choose(_children(node))
        node = node[key]
    operation = choose(["replace", "delete", "add", "duplicate"])
    hostile = choose(HOSTILE)
    if operation == "replace" and parent is not None:
        parent[key] = hostile
    elif operation == "delete" and parent is not None:
        del parent[key]
    elif operation == "add" and isinstance(node, dict):
        node[choose(["name", "extra", "type", "value", "optional"])] = hostile
    elif operation == "duplicate" and isinstance(node, list) and node:
        node.append(yaml.safe_load(yaml.safe_dump(node[0])))
    elif parent is not None:
        parent[key] = hostile


def _without_nulls(value: Any) -> Any:
    """What the API server keeps of a custom resource: null fields are pruned."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _path_like_names(value: Any, field: str = "") -> list[str]:
    """Values of name fields that no cluster accepts, whatever else it checks."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if field == "env" and key == "name":
                continue  # an env var name may be any printable ASCII but '=' (1.32+)
            if key == "key" and field not in ("secretKeyRef", "configMapKeyRef", "items"):
                continue  # toleration and selector keys are qualified names, with a '/'
            found += _path_like_names(item, str(key))
    elif isinstance(value, list):
        for item in value:
            found += _path_like_names(item, field)
    elif field in NAME_FIELDS and isinstance(value, str):
        if field == "subPath":
            if value.startswith("/") or ".." in value.split("/"):
                found.append(f"{field}={value!r}")
        elif "/" in value or value in (".", ".."):
            found.append(f"{field}={value!r}")
    return found


def cluster_refuses(documents: list[Any], upstream_crds: Any) -> list[str]:
    """Why a cluster would refuse these documents (empty: it might accept them)."""
    reasons: list[str] = []
    for document in documents:
        if not isinstance(document, dict) or document.get("kind") not in ("PyTorchJob", "TFJob"):
            continue
        if not upstream_crds.knows(document) or not isinstance(document.get("apiVersion"), str):
            continue
        pruned = _without_nulls(document)
        reasons += upstream_crds.validate(pruned)
        reasons += _path_like_names(pruned)
    return reasons


@contextlib.contextmanager
def _watchdog(seconds: int) -> Iterator[None]:
    """Turn a hang into an error instead of a stuck test run."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"hung for more than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _kfkit(*argv: str) -> tuple[int, str]:
    """Run the CLI in-process; return its exit status and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as exit_:  # argparse
            status = int(exit_.code or 0)
    return status, out.getvalue() + err.getvalue()


def _state_files(home: Path) -> list[str]:
    jobs = home / "jobs"
    return sorted(str(p.relative_to(home)) for p in jobs.rglob("*")) if jobs.exists() else []


@pytest.fixture(autouse=True, scope="module")
def _no_local_config() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("KFKIT_CONFIG", "KFKIT_PODDEFAULTS"):
            patch.delenv(variable, raising=False)
        yield


def _delete_started(home: Path) -> None:
    """If a bug let a job start, stop it so the campaign goes on cleanly."""
    from kfkit.backends.local import LocalBackend

    backend = LocalBackend(home)
    for record in backend.list(None):
        backend.delete(record.job.name, record.job.namespace)


@pytest.mark.timeout(600)
@settings(
    max_examples=EXAMPLES,
    deadline=None,  # the watchdog bounds each example; timing varies with the machine's load
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    # Explaining a failure re-runs it hundreds of times: minutes here. Shrinking is enough.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(
    manifest=st.sampled_from(MANIFESTS),
    mutations=st.integers(min_value=1, max_value=3),
    data=st.data(),
)
def test_mutated_manifests_are_admitted_all_or_nothing(
    manifest: Path, mutations: int, data: st.DataObject, upstream_crds: Any
) -> None:
    def choose(options: list[Any]) -> Any:
        return data.draw(st.sampled_from(options))

    documents = mutated_documents(manifest, mutations, choose)
    event(check_admission(documents, manifest.name, upstream_crds))


def mutated_documents(
    manifest: Path, mutations: int, choose: Callable[[list[Any]], Any]
) -> list[Any]:
    """The manifest's documents after ``mutations`` random mutations."""
    documents = [d for d in yaml.safe_load_all(manifest.read_text()) if d is not None]
    for _ in range(mutations):
        target = choose(list(range(len(documents) + 1)))
        if target == len(documents):  # a second document: half of a file must not start
            documents.append(yaml.safe_load(yaml.safe_dump(documents[0])))
        mutate_once(choose, documents[target])
    return documents


def check_admission(documents: list[Any], file_name: str, upstream_crds: Any) -> str:
    """Assert the boundary's properties for one input; return what happened."""
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    outcome = ""
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        path = Path(scratch) / file_name
        path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
        previous_home = os.environ.get("KFKIT_HOME")
        os.environ["KFKIT_HOME"] = str(home)
        try:
            with _watchdog(HANG_SECONDS):
                validated, validate_output = _kfkit("validate", "-f", str(path))
                assert validated in (0, 2), validate_output
                outcome = f"validate exit {validated}"
                if validated == 0:
                    refused = cluster_refuses(documents, upstream_crds)
                    assert not refused, f"accepted what a cluster refuses: {refused}"
                else:
                    ran, run_output = _kfkit("run", "--detach", "-f", str(path))
                    assert ran == 2, f"validate refused but run gave {ran}: {run_output}"
                    assert _state_files(home) == [], run_output
        finally:
            if _state_files(home):
                _delete_started(home)
            if previous_home is None:
                os.environ.pop("KFKIT_HOME", None)
            else:
                os.environ["KFKIT_HOME"] = previous_home
    after = {child.pid for child in psutil.Process().children(recursive=True)}
    assert after <= before, "a process was left behind"
    return outcome
