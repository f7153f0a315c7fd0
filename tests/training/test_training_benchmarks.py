"""The benchmarks' own logic: manifests they submit, both targets, the state they leave,
and a --quick run of the device benchmark on CPU (its GPU part then says it was skipped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tta(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """benchmarks/time_to_accuracy.py as a module (benchmarks/ is not a package)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import time_to_accuracy

    return time_to_accuracy


EVALS = [
    {"samples": 6000, "accuracy": 0.95, "loss": 0.2, "train_seconds": 1.0, "wall_seconds": 1.5},
    {"samples": 12000, "accuracy": 0.97, "loss": 0.09, "train_seconds": 2.0, "wall_seconds": 3.0},
    {"samples": 18000, "accuracy": 0.985, "loss": 0.05, "train_seconds": 3.0, "wall_seconds": 4.5},
]


def test_both_targets_from_the_evaluations(tta: ModuleType) -> None:
    reached = tta.first_eval(EVALS, accuracy=0.9662)
    assert tta.target_fields("target", reached) == {
        "time_to_target_s": 2.0,
        "wall_to_target_s": 3.0,
        "samples_to_target": 12000,
    }
    assert tta.first_eval(EVALS, loss=0.10)["samples"] == 12000
    assert tta.target_fields("99", tta.first_eval(EVALS, accuracy=0.99)) == {
        "time_to_99_s": None,
        "wall_to_99_s": None,
        "samples_to_99": None,
    }
    metrics = {
        "evals": [*EVALS, {**EVALS[-1], "samples": 24000, "accuracy": 0.991, "train_seconds": 4}],
        "epochs": [{"accuracy": 0.991, "test_loss": 0.03}],
        "final_accuracy": 0.991,
        "final_loss": 0.03,
        "samples_per_second": 6000.0,
        "train_seconds": 4.0,
        "first_step_time": 101.0,
        "peak_rss_bytes": 1,
    }
    summary = tta.summarise(metrics, "pytorch", started=100.0)
    assert summary["samples_to_target"] == 12000 and summary["samples_to_99"] == 24000
    assert summary["time_to_99_s"] == 4 and summary["launch_overhead_s"] == 1.0
    assert tta.summarise(metrics, "tensorflow", started=100.0)["target"] == tta.LOSS_TARGET


def test_manifest_changes_only_what_the_run_asks(tta: ModuleType) -> None:
    run = tta.Run(
        "pytorchjob-mnist-nccl.yaml",
        "pytorch",
        2,
        "fast",
        {"--train-limit": "100"},
        {"Master": {"CUDA_VISIBLE_DEVICES": "0"}, "Worker": {"CUDA_VISIBLE_DEVICES": "1"}},
    )
    manifest = tta.job_manifest(run, "bench", None, 500)
    specs = manifest["spec"]["pytorchReplicaSpecs"]
    assert specs["Worker"]["replicas"] == 1
    for replica_type, device in (("Master", "0"), ("Worker", "1")):
        container = specs[replica_type]["template"]["spec"]["containers"][0]
        command = container["command"]
        assert command[command.index("--epochs") + 1] == "2"  # the manifest's own
        assert command[command.index("--train-limit") + 1] == "100"
        assert command[command.index("--eval-every-samples") + 1] == "500"
        assert command[command.index("--backend") + 1] == "auto"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["CUDA_VISIBLE_DEVICES"] == device  # each replica its own GPU
    single = tta.job_manifest(tta.RUNS["pytorch-classic-1"], "bench", 3, 6000)
    assert list(single["spec"]["pytorchReplicaSpecs"]) == ["Master"]
    command = single["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0][
        "command"
    ]
    assert command[command.index("--recipe") + 1] == "classic"
    assert command[command.index("--epochs") + 1] == "3"


def test_fresh_home_is_made_and_removed(
    tta: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "not-yet" / "cache"  # a fresh checkout has no cache directory
    monkeypatch.setenv("KFKIT_CACHE", str(cache))
    monkeypatch.setenv("KFKIT_HOME", "/elsewhere")
    with tta.kfkit_home(None) as home:
        assert os.environ["KFKIT_HOME"] == str(home) and home.parent == cache
        (home / "volumes").mkdir()
    assert not home.exists() and os.environ["KFKIT_HOME"] == "/elsewhere"
    kept = tmp_path / "kept"
    with tta.kfkit_home(kept) as home:
        assert home == kept
    assert kept.is_dir()


@pytest.mark.integration
def test_device_benchmark_quick_on_cpu(tmp_path: Path) -> None:
    """`benchmarks/device.py --quick`: one JSON with both parts; no GPU here, so the GPU
    part says it was skipped; the CPU part has 1 and 2 replicas and their efficiency."""
    out = tmp_path / "device.json"
    cache = Path(os.environ.get("KFKIT_CACHE") or ROOT / ".cache")
    before = set(cache.glob("kfkit-home-*")) if cache.exists() else set()
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # the CPU path, even on a GPU machine
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "device.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    document = json.loads(out.read_text())
    assert document["quick"] is True and document["machine"]["gpus"] == []
    assert document["gpu"]["skipped"] is True and "no CUDA device" in document["gpu"]["reason"]
    assert document["targets"]["accuracy_99"] == 0.99
    cpu = document["cpu_scaling"]
    assert cpu["goal"] == {"replicas": 8, "efficiency": 0.75, "measured": None, "met": None}
    assert [r["world_size"] for r in cpu["runs"]] == [1, 2]
    for run in cpu["runs"]:
        assert run["succeeded"] and run["backend"] == "gloo" and run["threads_per_replica"] == 1
        assert run["samples_per_second"] > 0 and run["evals"]
        assert run["final_accuracy"] > 0.5  # 3,000 images, one epoch: learning, not 99%
        for key in ("time_to_target_s", "samples_to_target", "time_to_99_s", "samples_to_99"):
            assert key in run
    assert cpu["runs"][0]["efficiency"] == 1.0 and cpu["runs"][1]["efficiency"] > 0
    assert (set(cache.glob("kfkit-home-*")) if cache.exists() else set()) == before
