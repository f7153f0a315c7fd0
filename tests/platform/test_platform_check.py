"""The post-install check's waiting logic and the smoke test's verdicts, without a cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kfkit.platform.check import wait_until_ready
from kfkit.platform.podsecurity import check_object
from kfkit.platform.smoketest import final_state, smoke_job


def test_wait_until_ready_reports_each_check_once_and_what_never_passed() -> None:
    calls = {"crd": 0}

    def crd_after_two_polls() -> bool:
        calls["crd"] += 1
        return calls["crd"] >= 3

    said: list[str] = []
    failing = wait_until_ready(
        {"crd": crd_after_two_polls, "deployment": lambda: False},
        timeout=0.3,
        interval=0.01,
        say=said.append,
    )
    assert said == ["ready: crd"]
    assert failing == ["deployment"]


def test_wait_until_ready_returns_at_once_when_everything_is_ready() -> None:
    assert wait_until_ready({"a": lambda: True}, timeout=0, interval=10, say=lambda _: None) == []


def test_final_state_reads_the_operators_conditions() -> None:
    def job(*conditions: tuple[str, str]) -> dict[str, object]:
        return {"status": {"conditions": [{"type": t, "status": s} for t, s in conditions]}}

    assert final_state({}) is None
    assert final_state(job(("Created", "True"), ("Running", "True"))) is None
    assert final_state(job(("Running", "False"), ("Succeeded", "True"))) == "Succeeded"
    assert final_state(job(("Failed", "True"))) == "Failed"
    assert final_state(job(("Succeeded", "False"))) is None


def test_the_smoke_job_runs_two_replicas_of_the_gloo_check(
    upstream_crd_validator: Callable[[dict[str, Any]], list[str]],
) -> None:
    job = smoke_job("smoke", "kubeflow", "kfkit/pytorch-mnist:0.1.0", {"limits": {"cpu": "500m"}})
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert {name: spec["replicas"] for name, spec in specs.items()} == {"Master": 1, "Worker": 1}
    container = specs["Worker"]["template"]["spec"]["containers"][0]
    assert container["name"] == "pytorch"
    assert container["command"] == ["python", "-m", "kfkit.training.smoke"]
    assert container["args"][:2] == ["--expect-world-size", "2"]
    assert container["resources"] == {"limits": {"cpu": "500m"}}
    assert check_object(job) == []
    assert upstream_crd_validator(job) == []
