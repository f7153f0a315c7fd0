"""Planning a replica's process without starting it: interpreter, paths, problems."""

from __future__ import annotations

import os
import sys

import pytest

from kfkit.backends.local.config import load_config
from kfkit.backends.local.launch import expand, plan_job
from kfkit.backends.local.state import JobDir
from kfkit.errors import KfkitError, ValidationError
from kfkit.jobs.load import load_jobs


def plan(build, write_manifest, kfkit_home, mutate=None, config_text: str | None = None):
    doc = build.pytorch_job("planned", workers=1)
    for spec in doc["spec"]["pytorchReplicaSpecs"].values():
        spec["template"]["spec"]["containers"][0]["command"] = ["python", "-m", "train"]
    if mutate:
        mutate(doc)
    if config_text is not None:
        kfkit_home.mkdir(parents=True, exist_ok=True)
        (kfkit_home / "config.yaml").write_text(config_text)
    job = load_jobs([write_manifest(doc)])[0]
    config = load_config()
    return plan_job(job, config, JobDir(job.namespace, job.name), "/tmp")


def test_python_runs_the_kits_interpreter(build, write_manifest, kfkit_home) -> None:
    launches, _ = plan(build, write_manifest, kfkit_home)
    assert launches["master-0"].argv == [sys.executable, "-m", "train"]
    assert launches["worker-0"].env["RANK"] == "1"


def test_an_image_can_be_mapped_to_another_interpreter(build, write_manifest, kfkit_home) -> None:
    config = (
        'images:\n  "kfkit/test:*":\n    python: /opt/other/python\n    env: {FROM_IMAGE: "1"}\n'
    )
    launches, _ = plan(build, write_manifest, kfkit_home, config_text=config)
    assert launches["master-0"].argv[0] == "/opt/other/python"
    assert launches["master-0"].env["FROM_IMAGE"] == "1"


def test_a_shell_in_the_replica_finds_the_images_interpreter_first(
    build, write_manifest, kfkit_home
) -> None:
    """``bash -c "python -u ..."`` (the training SDK's command) runs the image's python."""
    config = 'images:\n  "kfkit/test:*":\n    python: /opt/other/bin/python\n'
    launches, _ = plan(build, write_manifest, kfkit_home, config_text=config)
    path = launches["master-0"].env["PATH"].split(os.pathsep)
    assert path[0] == "/opt/other/bin" and path.count("/opt/other/bin") == 1
    launches, _ = plan(build, write_manifest, kfkit_home, config_text="{}\n")  # no mapping
    assert launches["master-0"].env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)


def test_mount_paths_are_rewritten(build, write_manifest, kfkit_home) -> None:
    def mount(doc):
        template = doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
        template["spec"]["volumes"] = [{"name": "ckpt", "emptyDir": {}}]
        container = template["spec"]["containers"][0]
        container["volumeMounts"] = [{"name": "ckpt", "mountPath": "/ckpt"}]
        container["args"] = ["--checkpoint-dir=/ckpt/run", "/ckptx", "/data:/ckpt"]

    launches, _ = plan(build, write_manifest, kfkit_home, mount)
    local = str(kfkit_home / "jobs" / "default" / "planned" / "volumes" / "master-0" / "ckpt")
    assert launches["master-0"].argv[3:] == [
        f"--checkpoint-dir={local}/run",
        "/ckptx",
        f"/data:{local}",
    ]
    assert launches["master-0"].directories == [local]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][
                0
            ].pop("command"),
            "containers[0].command: required locally",
        ),
        (
            lambda d: d["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"].update(
                volumes=[{"name": "v", "nfs": {"server": "x", "path": "/"}}],
                containers=[
                    {
                        "name": "pytorch",
                        "image": "kfkit/test:1",
                        "command": ["python"],
                        "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                    }
                ],
            ),
            "volume 'v': only persistentVolumeClaim, emptyDir, hostPath, configMap and secret",
        ),
        (
            lambda d: d["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][
                0
            ].update(command=["no-such-program-here"]),
            "containers[0].command[0]: 'no-such-program-here' is not a program on this machine",
        ),
    ],
)
def test_problems_are_found_before_anything_starts(
    build, write_manifest, kfkit_home, mutate, message
) -> None:
    with pytest.raises(ValidationError) as raised:
        plan(build, write_manifest, kfkit_home, mutate)
    assert any(message in line for line in raised.value.lines()), raised.value.lines()
    assert not (kfkit_home / "jobs").exists()


def test_dollar_expansion() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)-$(C)-$$(A)", env) == "1-two-$(C)-$(A)"


def test_bad_config_is_a_user_error(kfkit_home) -> None:
    kfkit_home.mkdir(parents=True)
    (kfkit_home / "config.yaml").write_text("images: [not, a, map]\n")
    with pytest.raises(KfkitError, match=r"config\.yaml: images: must be a mapping"):
        load_config()


def test_a_local_directory_under_another_mount_path_is_rewritten_once(
    build, write_manifest, kfkit_home
) -> None:
    assert str(kfkit_home).startswith("/tmp/")  # the volumes live under the /tmp mount path

    def mount(doc):
        template = doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
        template["spec"]["volumes"] = [
            {"name": "scratch", "emptyDir": {}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "mnist-data"}},
        ]
        container = template["spec"]["containers"][0]
        container["volumeMounts"] = [
            {"name": "scratch", "mountPath": "/tmp"},
            {"name": "data", "mountPath": "/trainData"},
        ]
        container["args"] = ["--data-dir", "/trainData", "--scratch=/tmp/x"]

    launches, _ = plan(build, write_manifest, kfkit_home, mount)
    scratch = kfkit_home / "jobs" / "default" / "planned" / "volumes" / "master-0" / "scratch"
    assert launches["master-0"].argv[3:] == [
        "--data-dir",
        str(kfkit_home / "volumes" / "default" / "mnist-data"),
        f"--scratch={scratch}/x",
    ]
