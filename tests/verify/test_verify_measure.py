"""What the assertion steps attach before they assert, and the data volume of local jobs.

A step here is a small recorder of ``embed`` calls, as radish's Step keeps them;
the job run is made from a real manifest planned through ``kfkit.verify``.
"""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from kfkit import verify
from kfkit.backends.base import JobStatus
from kfkit.data import mnist
from kfkit.report import evidence
from kfkit.verify import datasets, measure

from .conftest import REPO


class Step:
    """Keeps embeddings the way radish's Step.embed does (base64 data, mime type)."""

    def __init__(self) -> None:
        self.embeddings: list[dict[str, str]] = []

    def embed(self, data: str, mime_type: str = "text/plain", encode_data_to_base64: bool = True):
        self.embeddings.append(
            {"data": base64.b64encode(data.encode()).decode(), "mime_type": mime_type}
        )

    def as_json(self) -> dict:
        return {"embeddings": self.embeddings}


@pytest.fixture
def settings(tmp_path, monkeypatch) -> verify.Settings:
    monkeypatch.setenv("KFKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KFKIT_CACHE", str(tmp_path / "cache"))
    return verify.Settings(suite_dir=REPO, work_dir=tmp_path / "report" / "work", run_id="t")


def make_run(settings: verify.Settings, metrics: dict, status: dict) -> verify.JobRun:
    plan = verify.plan_job(settings, "manifests/pytorchjob-mnist-gloo.yaml", trainer=True)
    logs = settings.work_dir / "jobs" / plan.name / "logs"
    logs.mkdir(parents=True)
    (logs / "master-0.log").write_text("".join(f"line {i}\n" for i in range(30)))
    (logs / "worker-0.log").write_text("Traceback ...\nRuntimeError: gloo\n")
    record = SimpleNamespace(status=JobStatus(raw=status))
    return verify.JobRun(plan, record, metrics, logs.parent / "job.yaml", logs, 12.34)


def test_check_attaches_before_it_asserts(settings):
    run = make_run(settings, {"final_accuracy": 0.8512, "world_size": 2}, {})
    step = Step()
    with pytest.raises(AssertionError, match=r"test accuracy 0.8512, required >= 0.9000"):
        measure.check(step, run, "test accuracy", 0.8512, ">=", 0.9)
    (measured,) = evidence.step_measurements(step.as_json())
    assert (measured.value, measured.threshold, measured.passed) == (0.8512, 0.9, False)
    assert (measured.job, measured.world_size) == (run.plan.name, 2)
    assert evidence.step_texts(step.as_json()) == [measured.text()]


def test_check_without_a_value_fails_and_says_so(settings):
    run = make_run(settings, {}, {"conditions": [{"type": "Failed", "status": "True"}]})
    with pytest.raises(AssertionError, match=r"none, required < 0.6000") as raised:
        measure.check(Step(), run, "validation cross-entropy", None, "<", 0.6)
    assert "worker-0: RuntimeError: gloo" in str(raised.value)


def test_attach_run_links_logs_relative_to_the_report_and_names_failed_replicas(settings):
    status = {
        "conditions": [{"type": "Failed", "status": "True"}],
        "replicaStatuses": {"Master": {"succeeded": 1}, "Worker": {"failed": 1}},
    }
    run = make_run(settings, {}, status)
    step = Step()
    record = measure.attach_run(settings, step, run)
    assert record.logs["worker-0"] == f"work/jobs/{run.plan.name}/logs/worker-0.log"
    assert (settings.work_dir.parent / record.logs["worker-0"]).is_file()
    assert record.failed_replicas == ["worker-0"]
    assert record.log_tails["master-0"] == [f"line {i}" for i in range(10, 30)]
    assert record.world_size == 2  # master + worker: no trainer count in these metrics
    (read,) = evidence.step_jobs(step.as_json())
    assert read == record


def test_resume_and_restart_become_markers(settings):
    metrics = {"resumed_from_step": 10, "steps": [{"step": 10, "samples": 640}]}
    status = {
        "conditions": [{"type": "Restarting", "status": "False", "message": "worker-0 restarted"}]
    }
    run = make_run(settings, metrics, status)
    step = Step()
    measure.check_restarted(step, run)
    measure.check_resumed(step, run)
    events = evidence.step_events(step.as_json())
    assert [(e.kind, e.samples, e.step) for e in events] == [
        ("restart", None, None),
        ("resume", 640.0, 10),
    ]
    texts = evidence.step_texts(step.as_json())
    assert "resumed from step 10 > 0" in " | ".join(texts)


def test_training_started_over_fails_the_resume_step(settings):
    run = make_run(settings, {"resumed_from_step": None}, {})
    with pytest.raises(AssertionError, match="resumed from step none, required > 0"):
        measure.check_resumed(Step(), run)


def test_samples_at_a_training_line():
    assert measure._samples_at("Train Epoch: 2 [640/3000 (21%)] loss=0.2") == 3640.0
    assert measure._samples_at("nothing here") is None


def test_data_volume_holds_links_to_the_cache_while_jobs_run(settings, tmp_path):
    cache = tmp_path / "cache" / "mnist"  # KFKIT_CACHE of the fixture
    cache.mkdir(parents=True)
    for name in mnist.FILES:
        (cache / name).write_bytes(name.encode())
    plan = verify.plan_job(settings, "manifests/pytorchjob-mnist-gloo.yaml", trainer=True)
    assert datasets.data_claims(plan) == {"mnist-data"}

    linked = datasets.share_dataset(settings, plan)
    volume = settings.backend().config.volumes_root() / "default" / "mnist-data"
    assert sorted(linked) == sorted(volume / name for name in mnist.FILES)
    assert volume.is_dir() and not volume.is_symlink()  # a directory under KFKIT_HOME
    assert all((volume / n).stat().st_ino == (cache / n).stat().st_ino for n in mnist.FILES)
    # A second job of the run finds them in place; a job that is no trainer is left alone.
    assert datasets.share_dataset(settings, plan) == []
    assert (
        datasets.share_dataset(
            settings, verify.plan_job(settings, "manifests/pytorchjob-mnist-gloo.yaml")
        )
        == []
    )

    # Once the jobs are deleted the report directory keeps no data; the cache keeps its files.
    (volume / "other-file").write_text("kept")
    assert sorted(datasets.unshare_dataset(settings, plan)) == sorted(linked)
    assert sorted(p.name for p in volume.iterdir()) == ["other-file"]
    assert all((cache / name).is_file() for name in mnist.FILES)
