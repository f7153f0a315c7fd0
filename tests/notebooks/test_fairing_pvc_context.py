"""kfkit's PVC context source, plugged into kubeflow-fairing 1.0.2's own ClusterBuilder.

fairing lives in its own virtualenv (``make fairing-env``): its pins clash with
this one. The script below runs there: fairing preprocesses a file, writes its
Dockerfile, packs the context and asks our context source for the Kaniko pod;
the Job fairing then builds is captured at the client's create call, because
there is no cluster to send it to. The Job is checked here against the
Kubernetes schema.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

REPO = Path(__file__).resolve().parents[2]
# Where `make` puts its tools: $KFKIT_CACHE, by default ~/.cache/kfkit (see Makefile).
CACHE = Path(os.environ.get("KFKIT_CACHE") or Path.home() / ".cache" / "kfkit")
FAIRING_PYTHON = CACHE / "venv-fairing" / "bin" / "python"
K8S_VERSION = "1.30.0"

FAIRING_SCRIPT = r"""
import json, os, pathlib, sys

from kubernetes import client

captured = {}


class Captured(Exception):
    pass


def capture(self, namespace, body, **kwargs):
    captured["namespace"] = namespace
    captured["job"] = client.ApiClient().sanitize_for_serialization(body)
    raise Captured()


client.BatchV1Api.create_namespaced_job = capture

from kubeflow.fairing.builders.cluster.cluster import ClusterBuilder
from kubeflow.fairing.preprocessors.base import BasePreProcessor

from kfkit.fairing_context import PvcContextSource

work = pathlib.Path(sys.argv[1])
pvc = work / "pvc"
pvc.mkdir()
(work / "train.py").write_text("print('hello from the image')\n")
(work / "requirements.txt").write_text("numpy==1.23.5\n")
preprocessor = BasePreProcessor(
    input_files=[str(work / "requirements.txt")],
    executable=str(work / "train.py"),
    path_prefix="/app",
)
source = PvcContextSource("shared-workspace", pvc, registry_secret="regcred")
builder = ClusterBuilder(
    registry="registry.example.org/team",
    image_name="mnist",
    base_image="tensorflow/tensorflow:2.16.1",
    preprocessor=preprocessor,
    context_source=source,
    namespace="team",
)
try:
    builder.build()
except Captured:
    pass
context = source.context_dir
files = sorted(str(p.relative_to(context)) for p in context.rglob("*") if p.is_file())
dockerfile = (context / "Dockerfile").read_text()
source.cleanup()
print(json.dumps({
    "namespace": captured["namespace"],
    "job": captured["job"],
    "context_dir": context.name,
    "context_files": files,
    "dockerfile": dockerfile,
    "left_on_pvc": sorted(os.listdir(pvc)),
    "image_tag": builder.image_tag,
}))
"""

DUMMY_KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- name: none
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: nobody
  user: {token: not-a-real-token}
contexts:
- name: none
  context: {cluster: none, user: nobody, namespace: team}
current-context: none
"""


@pytest.fixture(scope="module")
def fairing_build(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not FAIRING_PYTHON.exists():
        pytest.skip("kubeflow-fairing's environment is created by `make fairing-env`")
    work = tmp_path_factory.mktemp("fairing")
    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text(DUMMY_KUBECONFIG)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "KUBECONFIG": str(kubeconfig),
        "PYTHONPATH": str(REPO / "src"),
    }
    completed = subprocess.run(
        [str(FAIRING_PYTHON), "-c", FAIRING_SCRIPT, str(work)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_fairing_builds_a_valid_kaniko_job_from_our_pvc_context(fairing_build: dict) -> None:
    job = fairing_build["job"]
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    assert fairing_build["namespace"] == "team"
    assert job["spec"]["backoffLimit"] == 0
    template = job["spec"]["template"]
    assert template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    pod = template["spec"]
    assert pod["serviceAccountName"] == "containerbuilder"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["name"] == "kaniko"  # fairing follows the logs of that container
    assert container["image"].endswith("kaniko-project/executor:v1.23.2")
    context = f"/workspace/{fairing_build['context_dir']}"
    assert f"--context=dir://{context}" in container["args"]
    assert f"--dockerfile={context}/Dockerfile" in container["args"]
    assert f"--destination={fairing_build['image_tag']}" in container["args"]
    assert "--digest-file=/dev/termination-log" in container["args"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["build-context"]["persistentVolumeClaim"]["claimName"] == "shared-workspace"
    assert volumes["registry-credentials"]["secret"]["secretName"] == "regcred"


def test_fairing_context_lands_on_the_pvc_and_is_removed(fairing_build: dict) -> None:
    assert fairing_build["context_dir"].startswith("kanikotmp-")
    assert "Dockerfile" in fairing_build["context_files"]
    assert any(f.endswith("train.py") for f in fairing_build["context_files"])
    assert "FROM tensorflow/tensorflow:2.16.1" in fairing_build["dockerfile"]
    assert fairing_build["left_on_pvc"] == []
    assert fairing_build["image_tag"].startswith("registry.example.org/team/mnist:")
