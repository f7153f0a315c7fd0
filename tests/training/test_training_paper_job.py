"""The paper's job, full size: manifests/pytorchjob-mnist-gloo.yaml through the local backend."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_paper_job_reaches_96_62_after_one_epoch_and_99_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Master + 1 Worker, gloo, the fast recipe, 2 epochs: >= 96.62% test accuracy after
    epoch 1 and >= 99.0% on the full test set at the end."""
    from kfkit.backends import get_backend
    from kfkit.jobs.load import load_jobs

    # Outside /tmp: the manifest mounts an emptyDir at /tmp, whose path rewriting must
    # not touch the claims' local directories.
    home = Path(os.environ.get("KFKIT_CACHE", ROOT / ".cache")) / "test-paper-job-home"
    shutil.rmtree(home, ignore_errors=True)
    monkeypatch.setenv("KFKIT_HOME", str(home))
    manifest = yaml.safe_load((ROOT / "manifests" / "pytorchjob-mnist-gloo.yaml").read_text())
    manifest["metadata"]["name"] = "paper-mnist-gloo"
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest))
    (job,) = load_jobs([str(path)])
    backend = get_backend("local")
    backend.submit(job)
    record = backend.wait(job.name, job.namespace, timeout=900)
    assert record.status.succeeded, record.status.raw
    metrics_file = home / "volumes/default/mnist-checkpoints/paper-mnist-gloo/metrics.json"
    metrics = json.loads(metrics_file.read_text())
    assert metrics["world_size"] == 2 and metrics["recipe"] == "fast"
    assert metrics["epochs"][0]["accuracy"] >= 0.9662
    assert metrics["test_size"] == 10000 and metrics["final_accuracy"] >= 0.99
    logs = [line for _, line in backend.logs(job.name, job.namespace)]
    accuracy_lines = [line for line in logs if line.startswith("accuracy=")]
    assert len(accuracy_lines) == 4  # two epochs, printed by both ranks
