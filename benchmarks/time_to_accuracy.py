"""Time to accuracy of the MNIST trainers, launched through kfkit's local backend.

Each run is the repository's own manifest (manifests/pytorchjob-mnist-gloo.yaml,
manifests/tfjob-mnist-*.yaml) with only the replica count, the recipe and the
evaluation flags changed, submitted exactly as ``kfkit run -f`` would. The
trainers evaluate on the full test set every ``--eval-every-samples`` training
samples; the JSON written to ``--out`` has, per run:

- ``time_to_target_s``: training time (inside steps; evaluation excluded) until the
  first evaluation at or past the run's target (96.62% accuracy; cross-entropy 0.10
  for TF), ``wall_to_target_s`` the same in wall time from the first step,
  evaluations included, and ``samples_to_target`` the training samples by then,
- ``time_to_99_s``, ``wall_to_99_s``, ``samples_to_99``: the same for the second
  target of every run, 99.0% test accuracy (null when it is not reached),
- ``final_accuracy`` / ``final_loss`` after the last epoch, ``samples_per_second``,
- ``launch_overhead_s``: from loading the manifest to the first training step,
- ``peak_rss_bytes``: the largest replica's peak resident set (PyTorch: all ranks;
  TensorFlow: the chief).

Every run gets a fresh ``KFKIT_HOME`` (removed afterwards) unless ``--kfkit-home``
names one to keep. Beside the JSON, ``kfkit.report.benchmark`` draws every run's test
accuracy against training time (``<out>.png`` and ``<out>.html``).

Usage (from the repository root)::

    .venv/bin/python benchmarks/time_to_accuracy.py --out reports/time_to_accuracy.json
    .venv/bin/python benchmarks/time_to_accuracy.py --runs pytorch-fast-2 pytorch-classic-2
    # both local runtimes, run by run (the container one needs `make images`):
    .venv/bin/python benchmarks/time_to_accuracy.py --runtime process container
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ACCURACY_TARGET = 0.9662  # PyTorch runs' first target
LOSS_TARGET = 0.10  # TensorFlow runs' first target: validation cross-entropy
ACCURACY_99 = 0.99  # every run's second target


@dataclass(frozen=True)
class Run:
    """One benchmark configuration: a manifest with its replica count and recipe changed.

    ``flags`` are further trainer flags (set on every replica), ``env`` extra container
    environment per replica type (``{"Master": {"CUDA_VISIBLE_DEVICES": "0"}}``).
    """

    manifest: str
    framework: str
    world_size: int
    variant: str
    flags: dict[str, str] = field(default_factory=dict)
    env: dict[str, dict[str, str]] = field(default_factory=dict)


RUNS: dict[str, Run] = {
    "pytorch-fast-1": Run("pytorchjob-mnist-gloo.yaml", "pytorch", 1, "fast"),
    "pytorch-fast-2": Run("pytorchjob-mnist-gloo.yaml", "pytorch", 2, "fast"),
    "pytorch-classic-1": Run("pytorchjob-mnist-gloo.yaml", "pytorch", 1, "classic"),
    "pytorch-classic-2": Run("pytorchjob-mnist-gloo.yaml", "pytorch", 2, "classic"),
    "tf-multiworker-1": Run("tfjob-mnist-multiworker.yaml", "tensorflow", 1, "multiworker"),
    "tf-multiworker-2": Run("tfjob-mnist-multiworker.yaml", "tensorflow", 2, "multiworker"),
    "tf-ps-2": Run("tfjob-mnist-ps.yaml", "tensorflow", 2, "ps"),
}


def set_flag(command: list[str], flag: str, value: str | None) -> None:
    """Set ``flag`` to ``value`` in a container command (append it when absent)."""
    if flag in command:
        index = command.index(flag)
        if value is None:
            return
        command[index + 1] = value
    else:
        command.extend([flag] if value is None else [flag, value])


def job_manifest(run: Run, name: str, epochs: int | None, eval_every: int) -> dict[str, Any]:
    """The repository's manifest for ``run`` with only the benchmark's changes
    (``epochs`` None keeps the manifest's own)."""
    manifest = yaml.safe_load((ROOT / "manifests" / run.manifest).read_text())
    manifest["metadata"]["name"] = name
    if run.framework == "pytorch":
        specs = manifest["spec"]["pytorchReplicaSpecs"]
        if run.world_size == 1:
            del specs["Worker"]
        else:
            specs["Worker"]["replicas"] = run.world_size - 1
        flags = {"--recipe": run.variant, "--target-accuracy": str(ACCURACY_TARGET)}
    else:
        specs = manifest["spec"]["tfReplicaSpecs"]
        specs["Worker"]["replicas"] = run.world_size
        flags = {"--target-loss": str(LOSS_TARGET)}
    flags["--eval-every-samples"] = str(eval_every)
    if epochs is not None:
        flags["--epochs"] = str(epochs)
    flags.update(run.flags)
    for replica_type, spec in specs.items():
        # The replica types share one pod template (a YAML anchor): give each its own.
        spec["template"] = template = json.loads(json.dumps(spec["template"]))
        container = template["spec"]["containers"][0]
        for flag, value in flags.items():
            set_flag(container["command"], flag, value)
        for env_name, env_value in run.env.get(replica_type, {}).items():
            container.setdefault("env", []).append({"name": env_name, "value": env_value})
    return manifest


def metrics_path(manifest: dict[str, Any], home: Path, name: str) -> Path:
    """Where the metrics file lands: the checkpoint claim's local directory."""
    specs = next(v for k, v in manifest["spec"].items() if k.endswith("ReplicaSpecs"))
    pod = next(iter(specs.values()))["template"]["spec"]
    claim = next(
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if v["name"] == "checkpoints"
    )
    return home / "volumes" / manifest["metadata"].get("namespace", "default") / claim / name


def first_eval(
    evals: list[dict[str, Any]], accuracy: float | None = None, loss: float | None = None
) -> dict[str, Any] | None:
    """The first evaluation at or past a target (accuracy at least, or loss at most)."""
    for entry in evals:
        if accuracy is not None and entry["accuracy"] >= accuracy:
            return entry
        if loss is not None and entry["loss"] <= loss:
            return entry
    return None


def target_fields(suffix: str, reached: dict[str, Any] | None) -> dict[str, Any]:
    """``time_to_<suffix>_s``, ``wall_to_<suffix>_s``, ``samples_to_<suffix>``; null when the
    target was not reached."""
    return {
        f"time_to_{suffix}_s": reached["train_seconds"] if reached else None,
        f"wall_to_{suffix}_s": reached.get("wall_seconds") if reached else None,
        f"samples_to_{suffix}": reached["samples"] if reached else None,
    }


def summarise(metrics: dict[str, Any], framework: str, started: float) -> dict[str, Any]:
    """The benchmark's view of one trainer metrics document."""
    evals = metrics["evals"]
    if framework == "pytorch":
        reached = first_eval(evals, accuracy=ACCURACY_TARGET)
    else:
        reached = first_eval(evals, loss=LOSS_TARGET)
    first_step = metrics.get("first_step_time")
    return {
        "target": ACCURACY_TARGET if framework == "pytorch" else LOSS_TARGET,
        **target_fields("target", reached),
        "target_99": ACCURACY_99,
        **target_fields("99", first_eval(evals, accuracy=ACCURACY_99)),
        "final_accuracy": metrics["final_accuracy"],
        "final_loss": metrics["final_loss"],
        "epoch_accuracy": [e["accuracy"] for e in metrics["epochs"]],
        "epoch_loss": [e["test_loss"] for e in metrics["epochs"]],
        "samples_per_second": metrics["samples_per_second"],
        "train_seconds": metrics["train_seconds"],
        "launch_overhead_s": round(first_step - started, 2) if first_step else None,
        "peak_rss_bytes": metrics["peak_rss_bytes"],
        "backend": metrics.get("backend"),
        "threads_per_replica": metrics.get("threads"),
        "global_batch": metrics.get("global_batch"),
        "evals": [
            {k: e.get(k) for k in ("samples", "accuracy", "loss", "train_seconds", "wall_seconds")}
            for e in evals
        ],
    }


def run_one(
    label: str,
    run: Run,
    epochs: int | None,
    eval_every: int,
    timeout: float,
    home: Path,
    runtime: str = "process",
) -> dict[str, Any]:
    """Submit one configuration to the local backend, wait, and summarise its metrics."""
    from kfkit.backends import get_backend
    from kfkit.jobs.load import load_jobs

    name = f"tta-{label}-{int(time.time())}"
    load_at_start = round(os.getloadavg()[0], 2)
    manifest = job_manifest(run, name, epochs, eval_every)
    if runtime == "container":
        from kfkit.verify import containers

        containers.prepare(manifest, home)  # images built, MNIST in the data claim
    backend = get_backend("local", runtime=runtime)
    with tempfile.TemporaryDirectory(prefix="kfkit-tta-") as scratch:
        path = Path(scratch) / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        started = time.time()
        (job,) = load_jobs([str(path)])
        backend.submit(job)
        try:
            record = backend.wait(job.name, job.namespace, timeout=timeout)
        finally:
            backend.stop(job.name, job.namespace)  # no supervisor or replica left behind
    finished = time.time()
    result: dict[str, Any] = {
        "run": label,
        "runtime": runtime,
        "job": name,
        "framework": run.framework,
        "manifest": run.manifest,
        "world_size": run.world_size,
        "variant": run.variant,
        "flags": run.flags,
        "succeeded": record.status.succeeded,
        "job_seconds": round(finished - started, 2),
        "load_average_1m_at_start": load_at_start,
    }
    metrics_file = metrics_path(manifest, home, name) / "metrics.json"
    if not metrics_file.exists():
        result["error"] = f"no metrics at {metrics_file}"
        return result
    metrics = json.loads(metrics_file.read_text())
    result["epochs"] = len(metrics["epochs"])
    result.update(summarise(metrics, run.framework, started))
    return result


@contextlib.contextmanager
def kfkit_home(keep: Path | None) -> Iterator[Path]:
    """``KFKIT_HOME`` for the runs: ``keep`` as given, else a fresh directory removed after.

    The fresh one lies under ``$KFKIT_CACHE`` (default ``.cache`` in the checkout), not
    under /tmp: the manifests mount an emptyDir at /tmp, and the claims' local
    directories must not be inside a mount point the process runtime rewrites.
    """
    previous = os.environ.get("KFKIT_HOME")
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        home_context: contextlib.AbstractContextManager[str] = contextlib.nullcontext(str(keep))
    else:
        cache = Path(os.environ.get("KFKIT_CACHE") or ROOT / ".cache")
        cache.mkdir(parents=True, exist_ok=True)
        home_context = tempfile.TemporaryDirectory(prefix="kfkit-home-", dir=cache)
    with home_context as home:
        os.environ["KFKIT_HOME"] = home
        try:
            yield Path(home)
        finally:
            if previous is None:
                os.environ.pop("KFKIT_HOME", None)
            else:
                os.environ["KFKIT_HOME"] = previous


def target_legend() -> dict[str, float]:
    """The targets behind ``*_to_target_*`` (by framework) and ``*_to_99_*`` (every run)."""
    return {
        "pytorch_accuracy": ACCURACY_TARGET,
        "tensorflow_loss": LOSS_TARGET,
        "accuracy_99": ACCURACY_99,
    }


def runtime_comparison(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per run measured in both runtimes: container over process for launch and training."""
    comparison: dict[str, Any] = {}
    for run in dict.fromkeys(r["run"] for r in results):
        pair = {r["runtime"]: r for r in results if r["run"] == run}
        process, container = pair.get("process"), pair.get("container")
        if not process or not container:
            continue
        entry = {}
        for key, label in (
            ("launch_overhead_s", "launch"),
            ("time_to_target_s", "time_to_target"),
            ("train_seconds", "train"),
        ):
            if process.get(key) and container.get(key):
                entry[f"{label}_container_over_process"] = round(container[key] / process[key], 2)
        comparison[f"runtimes_{run}"] = entry
    return comparison


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", choices=sorted(RUNS), default=list(RUNS))
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs of every run but classic (the manifest's)"
    )
    parser.add_argument(
        "--classic-epochs",
        type=int,
        default=3,
        help="epochs of the classic recipe (at world size 2 one is not enough for 96.62%%)",
    )
    parser.add_argument("--eval-every-samples", type=int, default=6000)
    parser.add_argument(
        "--runtime",
        nargs="+",
        choices=["process", "container"],
        default=["process"],
        help="local backend runtime(s); both compares them run by run",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "time_to_accuracy.json")
    parser.add_argument(
        "--kfkit-home", type=Path, default=None, help="local backend state to keep (default: none)"
    )
    args = parser.parse_args(argv)

    results = []
    with kfkit_home(args.kfkit_home) as home:
        for label in args.runs:
            for runtime in args.runtime:
                print(f"== {label} ({runtime} runtime)", flush=True)
                run = RUNS[label]
                epochs = args.classic_epochs if run.variant == "classic" else args.epochs
                result = run_one(
                    label, run, epochs, args.eval_every_samples, args.timeout, home, runtime
                )
                print(json.dumps({k: v for k, v in result.items() if k != "evals"}), flush=True)
                results.append(result)

    by_run = {r["run"]: r for r in results if r["runtime"] == args.runtime[0]}
    summary: dict[str, Any] = {}
    fast, classic = by_run.get("pytorch-fast-2"), by_run.get("pytorch-classic-2")
    if fast and classic and fast.get("time_to_target_s") and classic.get("time_to_target_s"):
        summary["classic_over_fast_at_world_size_2"] = round(
            classic["time_to_target_s"] / fast["time_to_target_s"], 2
        )
    fast1 = by_run.get("pytorch-fast-1")
    if fast and fast1 and fast.get("time_to_target_s") and fast1.get("time_to_target_s"):
        summary["fast_world_size_2_over_1"] = round(
            fast["time_to_target_s"] / fast1["time_to_target_s"], 2
        )
    document = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "epochs": args.epochs,
        "classic_epochs": args.classic_epochs,
        "eval_every_samples": args.eval_every_samples,
        "targets": target_legend(),
        "summary": {**summary, **runtime_comparison(results)},
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(summary), flush=True)
    print(f"wrote {args.out}")
    from kfkit.report.benchmark import write_plots

    png, html = write_plots(args.out)  # beside the JSON: accuracy against training time
    print(f"wrote {html}" + (f" and {png}" if png else ""))
    return 0 if all(r.get("succeeded") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
