"""The notebook image's invariants (parsed, linted, its start script run) and its manifests.

The image itself cannot be built here (no base image can be pulled), so the
Dockerfile is checked by parsing it, and the start script it runs is started
for real with the same pinned JupyterLab, on an empty home directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[2]
IMAGE_DIR = REPO / "dockerfiles" / "notebook"
MANIFESTS = REPO / "manifests" / "notebook"
# Where `make` puts its tools: $KFKIT_CACHE, by default ~/.cache/kfkit (see Makefile).
CACHE = Path(os.environ.get("KFKIT_CACHE") or Path.home() / ".cache" / "kfkit")
NOTEBOOK_VENV = CACHE / "venv-notebook"
K8S_VERSION = "1.30.0"


def documents() -> list[dict]:
    return [
        doc
        for path in sorted(MANIFESTS.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


# --- manifests -----------------------------------------------------------------------------


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_validates(doc: dict, upstream_crds) -> None:
    if doc["apiVersion"].startswith("kubeflow.org/"):
        assert upstream_crds.validate(doc) == []
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_notebook_pod_is_restricted_and_requests_resources() -> None:
    (notebook,) = [d for d in documents() if d["kind"] == "Notebook"]
    pod = notebook["spec"]["template"]["spec"]
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nb"}, "spec": pod},
        K8S_VERSION,
        strict=True,
    )
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["fsGroup"] == 100
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert any(p["containerPort"] == 8888 for p in container["ports"])
        assert {"name": "home", "mountPath": "/home/jovyan"} in container["volumeMounts"]


def test_shared_pvc_is_read_write_many_and_poddefaults_match_the_notebook() -> None:
    docs = documents()
    shared = next(d for d in docs if d["metadata"]["name"] == "shared-workspace")
    assert shared["kind"] == "PersistentVolumeClaim"
    assert shared["spec"]["accessModes"] == ["ReadWriteMany"]
    (notebook,) = [d for d in docs if d["kind"] == "Notebook"]
    labels = notebook["metadata"]["labels"]  # what the controller gives the notebook's pod
    for poddefault in (d for d in docs if d["kind"] == "PodDefault"):
        for key, value in poddefault["spec"]["selector"]["matchLabels"].items():
            assert labels.get(key) == value, poddefault["metadata"]["name"]
    namespaces = {d["metadata"]["namespace"] for d in docs}
    assert namespaces == {"kubeflow-user-example-com"}


# --- the image -----------------------------------------------------------------------------


def parsed() -> DockerfileParser:
    parser = DockerfileParser(str(IMAGE_DIR / "Dockerfile"))
    return parser


def test_dockerfile_invariants() -> None:
    parser = parsed()
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    base = parser.baseimage
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    args = {v.split("=")[0]: v.split("=")[1] for k, v in instructions if k == "ARG"}
    assert args == {"NB_USER": "jovyan", "NB_UID": "1000", "NB_GID": "100"}
    users = [v for k, v in instructions if k == "USER"]
    assert users == ["${NB_UID}:${NB_GID}"]  # one switch, to the non-root user, at the end
    assert [k for k, _ in instructions].index("USER") > max(
        i for i, (k, _) in enumerate(instructions) if k == "RUN"
    )
    assert ("EXPOSE", "8888") in instructions
    assert parser.envs["NB_PREFIX"] == "/"
    assert parser.envs["HOME"] == "/home/jovyan"
    assert ("CMD", '["/usr/local/bin/start-notebook.sh"]') in instructions
    runs = " ".join(v for k, v in instructions if k == "RUN")
    assert "-c /opt/kfkit/requirements/constraints.txt" in runs
    assert "import kfkit.builder" in runs
    # Requirements are installed before the code is copied: code edits keep that layer.
    copies = [v for k, v in instructions if k == "COPY"]
    assert copies.index("src /opt/kfkit/src") > copies.index(
        "dockerfiles/notebook/requirements.txt /opt/kfkit/dockerfiles/notebook/requirements.txt"
    )


def test_requirements_are_all_pinned_and_jupyterlab_is_there() -> None:
    lines = [
        line.strip()
        for line in (IMAGE_DIR / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][^ ]*", line) for line in lines), lines
    assert any(line.startswith("jupyterlab==") for line in lines)
    constraints = (REPO / "requirements" / "constraints.txt").read_text().lower()
    for line in lines:
        name = line.split("==")[0].lower()
        if f"\n{name}==" in constraints:
            assert f"\n{line.lower()}\n" in constraints, f"{line} disagrees with constraints.txt"


def test_start_script_honours_nb_prefix_and_port() -> None:
    script = (IMAGE_DIR / "start-notebook.sh").read_text()
    assert '--ServerApp.base_url="${NB_PREFIX}"' in script
    assert ': "${NB_PORT:=8888}"' in script
    assert "exec jupyter lab" in script


@pytest.mark.skipif(
    not (NOTEBOOK_VENV / "bin" / "hadolint").exists(),
    reason="hadolint is installed by `make notebook-env`",
)
def test_dockerfile_is_hadolint_clean() -> None:
    lint = subprocess.run(
        [str(NOTEBOOK_VENV / "bin" / "hadolint"), str(IMAGE_DIR / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.skipif(
    not (NOTEBOOK_VENV / "bin" / "jupyter").exists(),
    reason="the image's JupyterLab is installed by `make notebook-env`",
)
def test_jupyterlab_starts_on_an_empty_home_under_nb_prefix(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    home = tmp_path / "home"  # a brand-new, empty volume
    home.mkdir()
    port = free_port()
    prefix = "/notebook/kubeflow-user-example-com/tf-notebook/"
    env = {
        "PATH": f"{NOTEBOOK_VENV / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "NB_PREFIX": prefix,
        "NB_PORT": str(port),
    }
    # The image runs it as uid 1000; tests run as whoever runs them, root on CI.
    extra = ["--allow-root"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [str(IMAGE_DIR / "start-notebook.sh"), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        status = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}{prefix}api/status", timeout=2
                ) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200, "JupyterLab did not answer under NB_PREFIX"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{prefix}lab", timeout=5) as page:
            assert page.status == 200
        with pytest.raises(urllib.error.HTTPError):  # nothing is served outside the prefix
            urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5)
        assert (home / ".local" / "share" / "jupyter" / "runtime").is_dir()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
