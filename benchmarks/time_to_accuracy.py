"""Time to accuracy of the MNIST trainers, launched through kfkit's local backend.

Each run is the repository's own manifest (manifests/pytorchjob-mnist-gloo.yaml,
manifests/tfjob-mnist-*.yaml) with only the replica count, the recipe and the
evaluation flags changed, submitted exactly as ``kfkit run -f`` would. The
trainers evaluate on the full test set every ``--eval-every-samples`` training
samples; the JSON written to ``--out`` has, per run:

- ``time_to_target_s``: training time (inside steps; evaluation excluded) until the
  first evaluation at or past the target (96.62% accuracy; cross-entropy 0.10 for TF),
- ``wall_to_target_s``: the same in wall time from the first step, evaluations included,
- ``final_accuracy`` / ``final_loss`` after the last epoch, ``samples_per_second``,
- ``launch_overhead_s``: from loading the manifest to the first training step,
- ``peak_rss_bytes``: the largest replica's peak resident set (PyTorch: all ranks;
  TensorFlow: the chief).

Beside the JSON, ``kfkit.report.benchmark`` draws every run's test accuracy against
training time (``<out>.png`` and ``<out>.html``).

Usage (from the repository root)::

    .venv/bin/python benchmarks/time_to_accuracy.py --out reports/time_to_accuracy.json
    .venv/bin/python benchmarks/time_to_accuracy.py --runs pytorch-fast-2 pytorch-classic-2
    # both local runtimes, run by run (the container one needs `make images`):
    .venv/bin/python benchmarks/time_to_accuracy.py --runtime process container
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ACCURACY_TARGET = 0.9662
LOSS_TARGET = 0.10

# name -> (manifest, framework, world size, recipe or strategy)
RUNS: dict[str, tuple[str, str, int, str]] = {
    "pytorch-fast-1": ("pytorchjob-mnist-gloo.yaml", "pytorch", 1, "fast"),
    "pytorch-fast-2": ("pytorchjob-mnist-gloo.yaml", "pytorch", 2, "fast"),
    "pytorch-classic-1": ("pytorchjob-mnist-gloo.yaml", "pytorch", 1, "classic"),
    "pytorch-classic-2": ("pytorchjob-mnist-gloo.yaml", "pytorch", 2, "classic"),
    "tf-multiworker-1": ("tfjob-mnist-multiworker.yaml", "tensorflow", 1, "multiworker"),
    "tf-multiworker-2": ("tfjob-mnist-multiworker.yaml", "tensorflow", 2, "multiworker"),
    "tf-ps-2": ("tfjob-mnist-ps.yaml", "tensorflow", 2, "ps"),
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


def job_manifest(run: str, name: str, epochs: int, eval_every: int) -> dict[str, Any]:
    """The repository's manifest for ``run`` with only the benchmark's changes."""
    manifest_file, framework, world_size, variant = RUNS[run]
    manifest = yaml.safe_load((ROOT / "manifests" / manifest_file).read_text())
    manifest["metadata"]["name"] = name
    if framework == "pytorch":
        specs = manifest["spec"]["pytorchReplicaSpecs"]
        if world_size == 1:
            del specs["Worker"]
        else:
            specs["Worker"]["replicas"] = world_size - 1
        targets = ["--recipe", variant, "--target-accuracy", str(ACCURACY_TARGET)]
    else:
        specs = manifest["spec"]["tfReplicaSpecs"]
        specs["Worker"]["replicas"] = world_size
        targets = ["--target-loss", str(LOSS_TARGET)]
    for spec in specs.values():
        container = spec["template"]["spec"]["containers"][0]
        command = container["command"]
        for flag, value in zip(targets[::2], targets[1::2], strict=True):
            set_flag(command, flag, value)
        set_flag(command, "--epochs", str(epochs))
        set_flag(command, "--eval-every-samples", str(eval_every))
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


def run_one(
    run: str, epochs: int, eval_every: int, timeout: float, home: Path, runtime: str = "process"
) -> dict[str, Any]:
    from kfkit.backends import get_backend
    from kfkit.jobs.load import load_jobs

    name = f"tta-{run}-{int(time.time())}"
    manifest = job_manifest(run, name, epochs, eval_every)
    if runtime == "container":
        from kfkit.verify import containers

        containers.prepare(manifest, home)  # images built, MNIST in the data claim
    load_at_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="kfkit-tta-") as scratch:
        path = Path(scratch) / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        started = time.time()
        (job,) = load_jobs([str(path)])
        backend = get_backend("local", runtime=runtime)
        backend.submit(job)
        record = backend.wait(job.name, job.namespace, timeout=timeout)
    finished = time.time()
    result: dict[str, Any] = {
        "run": run,
        "runtime": runtime,
        "job": name,
        "framework": RUNS[run][1],
        "epochs": epochs,
        "world_size": RUNS[run][2],
        "variant": RUNS[run][3],
        "succeeded": record.status.succeeded,
        "job_seconds": round(finished - started, 2),
        "load_average_1m_at_start": load_at_start,
    }
    metrics_file = metrics_path(manifest, home, name) / "metrics.json"
    if not metrics_file.exists():
        result["error"] = f"no metrics at {metrics_file}"
        return result
    metrics = json.loads(metrics_file.read_text())
    first_step = metrics.get("first_step_time")
    result.update(
        {
            "target": ACCURACY_TARGET if RUNS[run][1] == "pytorch" else LOSS_TARGET,
            "time_to_target_s": metrics["time_to_target_s"],
            "wall_to_target_s": metrics["wall_to_target_s"],
            "final_accuracy": metrics["final_accuracy"],
            "final_loss": metrics["final_loss"],
            "epoch_accuracy": [e["accuracy"] for e in metrics["epochs"]],
            "epoch_loss": [e["test_loss"] for e in metrics["epochs"]],
            "samples_per_second": metrics["samples_per_second"],
            "train_seconds": metrics["train_seconds"],
            "launch_overhead_s": round(first_step - started, 2) if first_step else None,
            "peak_rss_bytes": metrics["peak_rss_bytes"],
            "threads_per_replica": metrics.get("threads"),
            "global_batch": metrics.get("global_batch"),
            "evals": [
                {k: e[k] for k in ("samples", "accuracy", "loss", "train_seconds")}
                for e in metrics["evals"]
            ],
        }
    )
    return result


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", choices=sorted(RUNS), default=list(RUNS))
    parser.add_argument("--epochs", type=int, default=1)
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
        "--kfkit-home", type=Path, default=None, help="local backend state (default: a fresh one)"
    )
    args = parser.parse_args(argv)
    home = args.kfkit_home or Path(tempfile.mkdtemp(prefix="kfkit-home-"))
    if args.kfkit_home is None:
        # A fresh home (with its copy of MNIST in the data volume) goes with the run;
        # the results file keeps everything measured.
        atexit.register(shutil.rmtree, home, True)
    os.environ["KFKIT_HOME"] = str(home)

    results = []
    for run in args.runs:
        for runtime in args.runtime:
            print(f"== {run} ({runtime} runtime)", flush=True)
            epochs = args.classic_epochs if RUNS[run][3] == "classic" else args.epochs
            result = run_one(run, epochs, args.eval_every_samples, args.timeout, home, runtime)
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
    summary.update(runtime_comparison(results))
    document = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
        "epochs": args.epochs,
        "classic_epochs": args.classic_epochs,
        "eval_every_samples": args.eval_every_samples,
        "summary": summary,
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
