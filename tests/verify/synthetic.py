"""Cucumber JSON shaped like a verification run's, built without running jobs.

The report tests need runs with trainer metrics, kills, resumes and failures;
running them for real takes minutes of CPU. These features are made with the
same writers the steps use (:mod:`kfkit.report.evidence`, the metrics
embedding), with metrics shaped like ``kfkit.training.common.Metrics``
documents, so the report reads exactly what a real run would give it.
"""

from __future__ import annotations

import base64
import math
from types import SimpleNamespace
from typing import Any

from kfkit.report import metrics_embedding, normalize
from kfkit.report.evidence import (
    Event,
    JobRecord,
    Measurement,
    attach_event,
    attach_failure,
    attach_job,
    attach_measurement,
)

TRAIN_SIZE = 16000


class Step:
    """A cucumber step being written: keyword, name, result and embeddings like radish's."""

    def __init__(self, keyword: str, name: str, line: int) -> None:
        self.json: dict[str, Any] = {
            "keyword": keyword,
            "name": f"{keyword} {name}",
            "line": line,
            "result": {"status": "passed", "duration": 1_500_000_000},
            "embeddings": [],
        }
        self.failure: Any = None

    def embed(self, data: str, mime_type: str = "text/plain", encode_data_to_base64: bool = True):
        encoded = base64.b64encode(data.encode()).decode() if encode_data_to_base64 else data
        self.json["embeddings"].append({"data": encoded, "mime_type": mime_type})

    def fail(self, message: str) -> Step:
        self.json["result"].update(status="failed", error_message=message)
        return self

    def skip(self) -> Step:
        self.json["result"]["status"] = "skipped"
        return self


def trainer_metrics(world_size: int, epochs: int, final_accuracy: float) -> dict[str, Any]:
    """A trainer's metrics document: a loss every 8 steps, an evaluation every 4,000 samples."""
    batch = 128 * world_size
    steps, evals = [], []
    steps_per_epoch = TRAIN_SIZE // batch
    for step in range(8, epochs * steps_per_epoch + 1, 8):
        samples = step * batch
        epoch = (step - 1) // steps_per_epoch + 1
        loss = 2.3 * math.exp(-samples / 3000) + 0.05
        steps.append({"step": step, "epoch": epoch, "samples": samples, "loss": round(loss, 4)})
    for samples in range(4000, epochs * TRAIN_SIZE + 1, 4000):
        progress = samples / (epochs * TRAIN_SIZE)
        accuracy = final_accuracy - (final_accuracy - 0.6) * math.exp(-5 * progress)
        evals.append(
            {
                "step": samples // batch,
                "epoch": (samples - 1) // TRAIN_SIZE + 1,
                "samples": samples,
                "accuracy": round(accuracy, 4),
                "loss": round(0.5 * (1 - progress) + 0.08, 4),
            }
        )
    evals[-1]["accuracy"] = final_accuracy
    return {
        "world_size": world_size,
        "final_accuracy": evals[-1]["accuracy"],
        "final_loss": evals[-1]["loss"],
        "steps": steps,
        "evals": evals,
        "epochs": [],
    }


def _job_steps(
    job: str, world_size: int, metrics: dict[str, Any], failed_replica: str | None
) -> Step:
    when = Step("When", "the job runs to completion within 300 seconds", 11)
    when.embed(  # the metrics embedding is already base64
        metrics_embedding(job, metrics)["data"],
        mime_type=metrics_embedding(job, {})["mime_type"],
        encode_data_to_base64=False,
    )
    replicas = ["master-0", *(f"worker-{i}" for i in range(world_size - 1))]
    attach_job(
        when,
        JobRecord(
            job=job,
            kind="PyTorchJob",
            phase="Failed" if failed_replica else "Succeeded",
            world_size=world_size,
            seconds=41.2,
            logs={r: f"work/jobs/{job}/logs/{r}.log" for r in replicas},
            log_tails={
                r: (
                    ["Train Epoch: 1 [4096/16000 (26%)] loss=0.41", "RuntimeError: gloo timed out"]
                    if r == failed_replica
                    else ["Train Epoch: 1 [16000/16000 (100%)] loss=0.12"]
                )
                for r in replicas
            },
            failed_replicas=[failed_replica] if failed_replica else [],
        ),
    )
    return when


def pytorch_scenario(workers: int, accuracy: float, threshold: float) -> dict[str, Any]:
    """An outline row of the PyTorch feature; it fails when ``accuracy`` is under ``threshold``."""
    job = f"pytorch-mnist-gloo-t{workers}"
    world_size = workers + 1
    metrics = trainer_metrics(world_size, 1, accuracy)
    given = Step("Given", 'the training job "manifests/pytorchjob-mnist-gloo.yaml"', 8)
    then = Step("Then", f"the test accuracy is at least {threshold}", 13)
    measured = Measurement(
        "test accuracy", metrics["final_accuracy"], ">=", threshold, job=job, world_size=world_size
    )
    attach_measurement(then, measured)
    if not measured.passed:
        then.fail(measured.text())
    return {
        "keyword": "Scenario Outline",
        "name": f"A CI-sized PyTorchJob learns MNIST (workers={workers}, accuracy={threshold})",
        "line": 7,
        "type": "scenario",
        "tags": [{"name": "@fast", "line": 6}],
        "steps": [given.json, _job_steps(job, world_size, metrics, None).json, then.json],
    }


def fault_scenario() -> dict[str, Any]:
    """A killed worker, a restart and a resume from the checkpoint of step 10."""
    job = "pytorch-mnist-gloo-fault"
    metrics = trainer_metrics(2, 3, 0.95)
    metrics["resumed_from_step"] = 40
    kill = Step("And", "worker-0 is killed once master-0 has logged 12 training steps", 12)
    attach_event(kill, Event(job, "kill", "worker-0 killed", samples=12 * 256))
    restarted = Step("And", "the job restarted a replica", 15)
    attach_event(restarted, Event(job, "restart", "worker-0 restarted"))
    attach_measurement(restarted, Measurement("restarts", 1, ">=", 1, job=job, world_size=2))
    resumed = Step("And", "training resumed from a checkpoint", 16)
    attach_event(resumed, Event(job, "resume", "resumed from step 10", samples=10 * 256, step=10))
    attach_measurement(resumed, Measurement("resumed from step", 10, ">", 0, job=job, world_size=2))
    return {
        "keyword": "Scenario",
        "name": "A killed worker is restarted and the job succeeds from its checkpoint",
        "line": 7,
        "type": "scenario",
        "tags": [{"name": "@fast", "line": 6}],
        "steps": [
            kill.json,
            _job_steps(job, 2, metrics, None).json,
            restarted.json,
            resumed.json,
        ],
    }


def failing_job_scenario() -> dict[str, Any]:
    """A job whose worker failed: the job step fails, the accuracy step is skipped."""
    job = "pytorch-mnist-gloo-broken"
    metrics = trainer_metrics(2, 1, 0.7)
    when = _job_steps(job, 2, metrics, "worker-0")
    when.fail("pytorch-mnist-gloo-broken did not succeed: Failed: worker-0 exited with code 1")
    # What radish's Failure holds for the step; the suite's hook attaches it the same way.
    when.failure = SimpleNamespace(
        name="AssertionError",
        reason="did not succeed",
        traceback='Traceback (most recent call last):\n  File "stepfile.py", line 84\n'
        "AssertionError: did not succeed",
        filename="stepfile.py",
        line=84,
    )
    attach_failure(when)
    then = Step("Then", "the test accuracy is at least 0.9", 13).skip()
    return {
        "keyword": "Scenario",
        "name": "A PyTorchJob whose worker fails",
        "line": 20,
        "type": "scenario",
        "tags": [{"name": "@broken", "line": 19}],
        "steps": [when.json, then.json],
    }


def run(failing: bool) -> list[dict[str, Any]]:
    """A passing run (three scenarios), or the same with a low accuracy and a failed job."""
    pytorch = [
        pytorch_scenario(1, 0.943, 0.9),
        pytorch_scenario(2, 0.85 if failing else 0.932, 0.9),
    ]
    features = [
        {
            "keyword": "Feature",
            "name": "Distributed PyTorch MNIST",
            "uri": "features/pytorch_mnist.feature",
            "line": 2,
            "tags": [{"name": "@pytorch", "line": 1}],
            "elements": pytorch + ([failing_job_scenario()] if failing else []),
        },
        {
            "keyword": "Feature",
            "name": "Fault tolerance",
            "uri": "features/fault_tolerance.feature",
            "line": 2,
            "tags": [{"name": "@fault", "line": 1}],
            "elements": [fault_scenario()],
        },
    ]
    return normalize(features)
