"""What both trainers share: the operator's environment, logging, metrics, timing.

Nothing here imports a framework, so the TensorFlow trainer does not pay for
torch and the other way round.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfkit.errors import KfkitError


@dataclass(frozen=True)
class TorchEnv:
    """The PyTorchJob contract: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (LOCAL_RANK if set)."""

    rank: int
    world_size: int
    local_rank: int


def _int_env(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        if default is None:
            raise KfkitError(f"environment: {name}: required when WORLD_SIZE is set")
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise KfkitError(f"environment: {name}: not an integer: {raw!r}") from error


def torch_env() -> TorchEnv:
    """Read the PyTorchJob environment; a single process when WORLD_SIZE is unset."""
    world_size = _int_env("WORLD_SIZE", 1)
    if world_size < 1:
        raise KfkitError(f"environment: WORLD_SIZE: must be at least 1, got {world_size}")
    if world_size == 1:
        return TorchEnv(rank=0, world_size=1, local_rank=0)
    rank = _int_env("RANK")
    if not 0 <= rank < world_size:
        raise KfkitError(f"environment: RANK: {rank} is outside 0..{world_size - 1}")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise KfkitError(f"environment: {name}: required when WORLD_SIZE is set")
    return TorchEnv(rank=rank, world_size=world_size, local_rank=_int_env("LOCAL_RANK", 0))


def threads_from_env() -> int | None:
    """The thread budget the CPU limit implies (OMP_NUM_THREADS, as operators and kfkit set it)."""
    raw = os.environ.get("OMP_NUM_THREADS", "")
    try:
        threads = int(raw)
    except ValueError:
        return None
    return threads if threads >= 1 else None


def peak_rss_bytes() -> int:
    """This process's peak resident set size."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


class RankLog:
    """Prints progress lines; loss lines from rank 0 only, results from every rank."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def info(self, message: str, all_ranks: bool = True) -> None:
        if all_ranks or self.rank == 0:
            print(message, flush=True)

    def warn(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    """Write JSON so a reader (the report, a benchmark) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(temp, path)


class Metrics:
    """Everything a run reports: per-interval loss, each evaluation, each epoch, timings.

    ``train_seconds`` counts time inside training steps only (evaluation and
    checkpoints excluded); ``time_to_target_s`` is that training time at the first
    evaluation that met the target, and ``wall_to_target_s`` the wall time from the
    first step to it, evaluations included.
    """

    def __init__(self, framework: str, world_size: int, start_time: float, **info: Any) -> None:
        self.framework = framework
        self.world_size = world_size
        self.start_time = start_time
        self.target_accuracy: float | None = info.pop("target_accuracy", None)
        self.target_loss: float | None = info.pop("target_loss", None)
        self.info = info
        self.steps: list[dict[str, Any]] = []
        self.evals: list[dict[str, Any]] = []
        self.epochs: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self.first_step_time: float | None = None
        self.time_to_target_s: float | None = None
        self.wall_to_target_s: float | None = None
        self.peak_rss_bytes = 0.0
        self.resumed_from_step: int | None = None
        self._step_started = 0.0
        self._wall_offset = 0.0

    # timing
    def mark_step_start(self) -> None:
        self._step_started = time.time()
        if self.first_step_time is None:
            self.first_step_time = self._step_started

    def mark_step_end(self) -> None:
        self.train_seconds += time.time() - self._step_started

    def wall_seconds(self) -> float:
        """Wall time since the first step, carried across restarts."""
        if self.first_step_time is None:
            return self._wall_offset
        return self._wall_offset + time.time() - self.first_step_time

    # records
    def log_step(self, step: int, epoch: int, samples: int, loss: float) -> None:
        self.steps.append(
            {
                "step": step,
                "epoch": epoch,
                "samples": samples,
                "loss": round(loss, 6),
                "train_seconds": round(self.train_seconds, 4),
            }
        )

    def log_eval(self, step: int, epoch: int, samples: int, accuracy: float, loss: float) -> bool:
        """Record an evaluation; True when it meets the target (accuracy or loss)."""
        self.evals.append(
            {
                "step": step,
                "epoch": epoch,
                "samples": samples,
                "accuracy": round(accuracy, 6),
                "loss": round(loss, 6),
                "train_seconds": round(self.train_seconds, 4),
                "wall_seconds": round(self.wall_seconds(), 4),
            }
        )
        met = (self.target_accuracy is not None and accuracy >= self.target_accuracy) or (
            self.target_loss is not None and loss <= self.target_loss
        )
        if met and self.time_to_target_s is None:
            self.time_to_target_s = round(self.train_seconds, 4)
            self.wall_to_target_s = round(self.wall_seconds(), 4)
        return met

    def log_epoch(self, epoch: int, train_loss: float, seconds: float, samples: int) -> None:
        last = self.evals[-1] if self.evals else {}
        self.epochs.append(
            {
                "epoch": epoch,
                "train_loss": round(train_loss, 6),
                "test_loss": last.get("loss"),
                "accuracy": last.get("accuracy"),
                "seconds": round(seconds, 4),
                "samples_per_second": round(samples / seconds, 2) if seconds > 0 else None,
            }
        )

    # checkpoints
    def snapshot(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "evals": self.evals,
            "epochs": self.epochs,
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds(),
            "time_to_target_s": self.time_to_target_s,
            "wall_to_target_s": self.wall_to_target_s,
        }

    def restore(self, snapshot: dict[str, Any], step: int) -> None:
        self.steps = list(snapshot["steps"])
        self.evals = list(snapshot["evals"])
        self.epochs = list(snapshot["epochs"])
        self.train_seconds = float(snapshot["train_seconds"])
        self._wall_offset = float(snapshot["wall_seconds"])
        self.time_to_target_s = snapshot["time_to_target_s"]
        self.wall_to_target_s = snapshot["wall_to_target_s"]
        self.resumed_from_step = step

    # output
    def document(self) -> dict[str, Any]:
        samples = self.steps[-1]["samples"] if self.steps else 0
        last = self.evals[-1] if self.evals else {}
        return {
            "framework": self.framework,
            "world_size": self.world_size,
            **self.info,
            "target_accuracy": self.target_accuracy,
            "target_loss": self.target_loss,
            "start_time": self.start_time,
            "first_step_time": self.first_step_time,
            "startup_seconds": (
                round(self.first_step_time - self.start_time, 4) if self.first_step_time else None
            ),
            "train_seconds": round(self.train_seconds, 4),
            "wall_seconds": round(self.wall_seconds(), 4),
            "samples_per_second": (
                round(samples / self.train_seconds, 2) if self.train_seconds > 0 else None
            ),
            "time_to_target_s": self.time_to_target_s,
            "wall_to_target_s": self.wall_to_target_s,
            "final_accuracy": last.get("accuracy"),
            "final_loss": last.get("loss"),
            "peak_rss_bytes": int(self.peak_rss_bytes),
            "resumed_from_step": self.resumed_from_step,
            "epochs": self.epochs,
            "evals": self.evals,
            "steps": self.steps,
        }

    def write(self, path: Path | None) -> None:
        if path is not None:
            write_json_atomic(path, self.document())

    def summary(self) -> str:
        doc = self.document()
        return (
            f"Done: final_accuracy={doc['final_accuracy']} final_loss={doc['final_loss']} "
            f"train_seconds={doc['train_seconds']} samples_per_second={doc['samples_per_second']} "
            f"time_to_target_s={doc['time_to_target_s']}"
        )


def run_main(main: Callable[[], int]) -> int:
    """Run a trainer's main; a KfkitError becomes one line on stderr and exit status 2."""
    try:
        return main()
    except KfkitError as error:
        for line in error.lines():
            print(line, file=sys.stderr, flush=True)
        return error.exit_code
