"""The kit's real images in the container runtime: training to the paper's numbers, the
notebook server, and a notebook built into an image that then runs as a PyTorchJob.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from kfkit.containers import podman

from .conftest import ROOT, kfkit, wait_for_no_leftovers, write_job

pytestmark = pytest.mark.container


def test_container_scenarios_pass(
    kit_image: Callable[[str], str], kfkit_home: Path, tmp_path: Path
) -> None:
    """@container: the shipped PyTorchJob to 96.62%, the paper's TFJob with parameter
    servers to cross-entropy <= 0.10 with every replica ending, and a killed worker
    container whose job resumes from its checkpoint."""
    from kfkit.report import load
    from kfkit.report.cucumber import scenario_error, scenarios
    from kfkit.verify import verify

    kit_image("pytorch")
    kit_image("tensorflow")
    result = verify(
        tags="container", target="local", report_dir=tmp_path, suite_dir=ROOT, timeout=3600
    )
    failures = [
        f"{scenario['name']}: {scenario_error(scenario)}"
        for _, scenario in scenarios(load(result.reports.cucumber_json))
        if scenario_error(scenario)
    ]
    assert result.ok, "\n".join([*result.reports.summary.lines(), *failures])
    assert result.reports.summary.scenarios.passed == 3
    for name in ("pytorch-mnist-gloo", "tfjob-mnist-ps"):
        assert wait_for_no_leftovers(f"default/{name}") == {}


PROBE = """
import sys, time, urllib.error, urllib.request
def status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None
prefix_url, root_url = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 180
while status(prefix_url) != 200 and time.monotonic() < deadline:
    time.sleep(1)
print("prefix", status(prefix_url), "root", status(root_url))
"""


def test_notebook_image_serves_jupyterlab_under_its_prefix_as_uid_1000(
    kit_image: Callable[[str], str],
) -> None:
    """As the notebook controller starts it, reached from another pod on its network."""
    image = kit_image("notebook")
    name, network = "kfkit-test-notebook", "kfkit-test-notebook"
    prefix = "/notebook/team/lab"
    podman.podman(["rm", "-f", "-t", "0", name], check=False)
    podman.podman(["network", "rm", "-f", network], check=False)
    podman.podman(["network", "create", network])
    try:
        podman.podman(
            [
                "run",
                "-d",
                "--name",
                name,
                "--network",
                network,
                "--init",
                "-e",
                f"NB_PREFIX={prefix}",
                image,
            ],
            timeout=120,
        )
        probe = podman.podman(
            [
                "run",
                "--rm",
                "--network",
                network,
                "--entrypoint",
                "python",
                image,
                "-c",
                PROBE,
                f"http://{name}:8888{prefix}/lab",
                f"http://{name}:8888/lab",
            ],
            timeout=300,
            check=False,
        )
        logs = podman.podman(["logs", name], check=False)
        # Under the prefix JupyterLab answers; outside it there is nothing.
        assert "prefix 200 root 404" in probe.stdout, (
            probe.stdout + probe.stderr + logs.stderr[-2000:]
        )
        top = podman.podman(["top", name, "user", "args"]).stdout
        jupyter = [line for line in top.splitlines() if "jupyter" in line]
        assert jupyter and all(line.split()[0] in ("1000", "jovyan") for line in jupyter), top
    finally:
        podman.podman(["rm", "-f", "-t", "0", name], check=False)
        podman.podman(["network", "rm", "-f", network], check=False)


NOTEBOOK_CODE = """\
import os
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
print(f"rank={dist.get_rank()} world={dist.get_world_size()} allreduce={value.item():g}")
dist.destroy_process_group()
"""


def test_a_notebook_built_into_an_image_runs_as_a_pytorchjob(
    kit_image: Callable[[str], str],
    container_home: Path,
    tmp_path: Path,
    cleanup_label: list[str],
) -> None:
    from kfkit.builder import BuildConfig, build_image

    base = kit_image("pytorch")
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# DDP"), nbformat.v4.new_code_cell(NOTEBOOK_CODE)]
    )
    source = tmp_path / "ddp.ipynb"
    nbformat.write(notebook, str(source))
    (tmp_path / "pvc").mkdir()
    tag = f"t{int(time.time())}"
    result = build_image(
        BuildConfig(
            source=source,
            image="localhost/team/ddp",
            tag=tag,
            base_image=base,
            pvc_name="shared-workspace",
            pvc_mount_path=tmp_path / "pvc",
            dry_run=True,
            timeout=600,
        )
    )
    assert result.succeeded, result.message
    image = f"localhost/team/ddp:{tag}"
    try:
        config = json.loads(
            podman.podman(["image", "inspect", "--format", "{{json .Config}}", image]).stdout
        )
        assert config["User"] == "1000:100" and config["Cmd"] == ["python", "/app/ddp.py"]
        cleanup_label.append("default/from-notebook")
        container = {"name": "pytorch", "image": image, "command": ["python", "/app/ddp.py"]}
        replica = {
            "replicas": 1,
            "restartPolicy": "Never",
            "template": {"spec": {"containers": [container]}},
        }
        manifest = {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {"name": "from-notebook", "namespace": "default"},
            "spec": {"pytorchReplicaSpecs": {"Master": replica, "Worker": replica}},
        }
        run = kfkit(
            "run",
            "-f",
            str(write_job(tmp_path, manifest)),
            "--runtime",
            "container",
            "--timeout",
            "300",
        )
        assert run.returncode == 0, run.stdout + run.stderr
        logs = kfkit("logs", "from-notebook").stdout
        assert "rank=0 world=2 allreduce=3" in logs and "rank=1 world=2 allreduce=3" in logs
        assert wait_for_no_leftovers("default/from-notebook") == {}
    finally:
        podman.podman(["rmi", "-f", image], check=False)
