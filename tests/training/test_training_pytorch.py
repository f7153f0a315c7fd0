"""The PyTorch trainer: environment, recipes, and real multi-process runs with gloo."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kfkit.errors import KfkitError
from kfkit.training import common

TRAINER = [sys.executable, "-m", "kfkit.training.pytorch_mnist"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def replica_env(rank: int, world_size: int, port: int) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    return env


def test_torch_env_single_process_when_world_size_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert common.torch_env() == common.TorchEnv(rank=0, world_size=1, local_rank=0)


def test_torch_env_errors_are_user_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(KfkitError, match="RANK: required"):
        common.torch_env()
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(KfkitError, match=r"RANK: 2 is outside 0\.\.1"):
        common.torch_env()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(KfkitError, match="WORLD_SIZE: not an integer"):
        common.torch_env()


def test_recipes() -> None:
    from kfkit.training.pytorch_mnist import RECIPES, ClassicNet

    classic = RECIPES["classic"]()
    net = classic.model()
    assert isinstance(net, ClassicNet)
    assert [m.out_channels for m in (net.conv1, net.conv2)] == [20, 50]
    assert net.fc1.out_features == 500
    sgd = classic.optimizer(net.parameters(), world_size=2)
    assert sgd.defaults["lr"] == 0.01 and sgd.defaults["momentum"] == 0.5
    assert classic.batch_size == 64

    fast = RECIPES["fast"]()
    small = fast.model()
    assert [m.out_channels for m in (small.conv1, small.conv2)] == [16, 32]
    assert small.fc1.out_features == 128 and fast.batch_size == 64
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in net.parameters()) / 2
    lr1 = fast.optimizer(small.parameters(), world_size=1).defaults["lr"]
    lr4 = fast.optimizer(small.parameters(), world_size=4).defaults["lr"]
    assert lr4 == pytest.approx(2 * lr1)  # square-root scaling with the global batch
    factors = [fast.lr_factor(step, 200) for step in range(200)]
    assert factors[0] < factors[29] == 1.0 > factors[199] >= 0.05


def test_metrics_time_to_target() -> None:
    metrics = common.Metrics("pytorch", 1, time.time(), target_accuracy=0.9)
    metrics.mark_step_start()
    metrics.mark_step_end()
    assert not metrics.log_eval(10, 1, 640, 0.8, 0.5)
    assert metrics.time_to_target_s is None
    assert metrics.log_eval(20, 1, 1280, 0.95, 0.2)
    first = metrics.time_to_target_s
    assert first is not None
    metrics.log_eval(30, 1, 1920, 0.97, 0.1)
    assert metrics.time_to_target_s == first  # the first time counts
    assert metrics.document()["final_accuracy"] == 0.97


def test_checkpoint_of_another_net_is_one_line_exit_2(tmp_path: Path) -> None:
    """A checkpoint whose weights do not fit the recipe's net (an earlier version of it)
    is named in one line, exit status 2, not a traceback."""
    import torch

    (tmp_path / "ckpt").mkdir()
    state = {"finished": False, "recipe": "fast", "step": 5, "metrics": {}}
    state["model"] = {"fc.weight": torch.zeros(10, 1568), "fc.bias": torch.zeros(10)}
    state["optimizer"] = {"state": {}, "param_groups": []}
    torch.save(state, tmp_path / "ckpt" / "checkpoint.pt")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    flags = [
        "--train-limit",
        "500",
        "--test-limit",
        "100",
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
    ]
    result = subprocess.run(
        [*TRAINER, *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "checkpoint.pt: does not fit the model of recipe 'fast'" in result.stderr


def test_bad_flags_exit_2() -> None:
    result = subprocess.run(
        [*TRAINER, "--max-steps", "0"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "--max-steps must be at least 1" in result.stderr


@pytest.mark.integration
def test_two_process_gloo_reports_the_global_accuracy(tmp_path: Path) -> None:
    """Master + worker on a subset; every rank prints the accuracy of the whole test
    subset (counts all-reduced), which the test recomputes from the saved model."""
    import torch

    from kfkit.data import load
    from kfkit.training.pytorch_mnist import FastNet, normalise

    port = free_port()
    args = [
        "--recipe", "fast", "--train-limit", "3000", "--test-limit", "1000",
        "--log-interval", "5", "--checkpoint-dir", str(tmp_path / "ckpt"),
        "--metrics-file", str(tmp_path / "metrics.json"),
    ]  # fmt: skip
    procs = []
    for rank in range(2):
        env = replica_env(rank, 2, port)
        out = subprocess.PIPE
        proc = subprocess.Popen([*TRAINER, *args], env=env, stdout=out, stderr=out, text=True)
        procs.append(proc)
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        outputs.append(out)
    accuracies = [re.findall(r"^accuracy=([0-9.]+)$", out, re.M) for out in outputs]
    assert accuracies[0] and accuracies[0] == accuracies[1]
    counts = [re.findall(r"(\d+)/(\d+) correct", out) for out in outputs]
    assert counts[0] == counts[1] and counts[0][-1][1] == "1000"  # both halves counted
    assert "Train Epoch: 1 [" in outputs[0] and "Train Epoch" not in outputs[1]
    assert re.search(r"Train Epoch: 1 \[\d+/3000 \(\d+%\)\] loss=[0-9.]+", outputs[0])

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_batch"] == 128
    assert metrics["steps"] and metrics["epochs"][0]["accuracy"] == float(accuracies[0][-1])

    state = torch.load(tmp_path / "ckpt" / "checkpoint.pt", weights_only=True)
    model = FastNet()
    model.load_state_dict(state["model"])
    model.eval()
    mnist = load()
    images = torch.from_numpy(mnist.test_images[:1000].copy())
    labels = torch.from_numpy(mnist.test_labels[:1000].astype("int64"))
    correct = 0
    with torch.no_grad():  # in the trainer's chunks: float sums depend on batch shapes
        for begin in range(0, 1000, 250):
            output = model(normalise(images[begin : begin + 250]))
            correct += int((output.argmax(1) == labels[begin : begin + 250]).sum())
    assert f"accuracy={correct / 1000:.4f}" in outputs[0]


@pytest.mark.integration
def test_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    """SIGKILL after a dozen steps, start again: training continues from the last
    checkpoint (every 5 steps), losing fewer than 5 steps."""
    args = [
        *TRAINER, "--recipe", "classic", "--train-limit", "4000", "--test-limit", "500",
        "--max-steps", "30", "--log-interval", "1", "--checkpoint-every", "5",
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--metrics-file", str(tmp_path / "m.json"),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    seen = 0
    deadline = time.monotonic() + 180
    for line in first.stdout:
        seen += line.startswith("Train Epoch")
        if seen >= 12 or time.monotonic() > deadline:
            break
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    assert seen >= 12
    saved = int(__import__("torch").load(tmp_path / "ckpt" / "checkpoint.pt")["step"])
    assert saved >= 10 and saved % 5 == 0

    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr
    match = re.search(r"Resumed from checkpoint .* at step (\d+)", second.stdout)
    assert match and int(match.group(1)) == saved
    train_lines = [line for line in second.stdout.splitlines() if line.startswith("Train Epoch")]
    assert len(train_lines) == 30 - saved  # only the steps after the checkpoint are trained
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["resumed_from_step"] == saved
    assert metrics["steps"][-1]["step"] == 30
    assert [s["step"] for s in metrics["steps"]][:saved] == list(range(1, saved + 1))

    # The finished run's checkpoint does not swallow the next run of the same job.
    args[args.index("--max-steps") + 1] = "3"
    third = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)
    assert third.returncode == 0, third.stderr
    assert "is from a finished run; starting a new one" in third.stdout
    assert json.loads((tmp_path / "m.json").read_text())["steps"][-1]["step"] == 3
