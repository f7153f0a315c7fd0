"""Device benchmark: the NCCL PyTorchJob on a GPU, and CPU scaling of the fast recipe.

One command (``make bench-device``), sized for a machine with one NVIDIA GPU and 16
cores (under 8 minutes there), one JSON document at ``--out``:

- ``gpu``: ``manifests/pytorchjob-mnist-nccl.yaml`` through kfkit's local backend, as
  shipped (fast recipe, 2 epochs, ``--backend auto``, which picks NCCL when a GPU is
  visible): time to 96.62% and to 99.0% test accuracy, samples/s. Each replica gets one
  GPU of its own (``CUDA_VISIBLE_DEVICES``, as the device plugin does for a
  ``nvidia.com/gpu: 1`` limit), so the job runs Master + Worker with two GPUs and the
  Master alone with one: NCCL cannot put two ranks of one job on the same GPU. Without a
  GPU this part is ``{"skipped": true, "reason": ...}``.
- ``cpu_scaling``: ``manifests/pytorchjob-mnist-gloo.yaml`` (fast recipe, gloo, the
  manifest's limit of 1 CPU so 1 thread per replica) at 1, 2, 4 and 8 replicas: samples/s,
  time to each target, and the scaling efficiency ``samples/s(N) / (N x samples/s(1))``
  (goal: at least 0.75 at 8 replicas).

Each run is the same as a ``benchmarks/time_to_accuracy.py`` run (its ``Run``,
``run_one`` and ``kfkit_home``): one fresh ``KFKIT_HOME``, removed afterwards.

    .venv/bin/python benchmarks/device.py --out reports/device.json
    .venv/bin/python benchmarks/device.py --quick   # small data, 1 and 2 replicas
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from time_to_accuracy import ROOT, Run, kfkit_home, machine, run_one, target_legend

GOAL_REPLICAS, GOAL_EFFICIENCY = 8, 0.75
# --quick: enough to exercise every part in well under a minute per job on 2 cores.
QUICK_FLAGS = {"--train-limit": "3000", "--test-limit": "1000", "--epochs": "1"}


def visible_gpus() -> list[str]:
    """Names of the CUDA devices torch sees (empty without a GPU or a CUDA build)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]


def gpu_part(
    gpus: list[str], flags: dict[str, str], eval_every: int, timeout: float, home: Path
) -> dict[str, Any]:
    """The NCCL PyTorchJob, one GPU per replica, at most Master + 1 Worker (as shipped)."""
    if not gpus:
        return {"skipped": True, "reason": "no CUDA device is visible to torch"}
    world_size = min(2, len(gpus))
    env = {"Master": {"CUDA_VISIBLE_DEVICES": "0"}, "Worker": {"CUDA_VISIBLE_DEVICES": "1"}}
    run = Run("pytorchjob-mnist-nccl.yaml", "pytorch", world_size, "fast", flags, env)
    result = run_one(f"nccl-{world_size}", run, None, eval_every, timeout, home)
    result["skipped"] = False
    result["gpus"] = gpus[:world_size]
    if world_size == 1:
        result["note"] = "one GPU: the Master alone (NCCL needs a GPU per rank), no all-reduce"
    return result


def cpu_part(
    replicas: list[int], flags: dict[str, str], eval_every: int, timeout: float, home: Path
) -> dict[str, Any]:
    """The fast recipe over gloo at each replica count, 1 thread per replica."""
    runs = []
    for count in replicas:
        run = Run("pytorchjob-mnist-gloo.yaml", "pytorch", count, "fast", flags)
        print(f"== cpu, {count} replica(s)", flush=True)
        runs.append(run_one(f"cpu-{count}", run, None, eval_every, timeout, home))
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "evals"}), flush=True)
    base = next((r for r in runs if r["world_size"] == 1), None)
    base_rate = base.get("samples_per_second") if base else None
    for result in runs:
        rate = result.get("samples_per_second")
        result["efficiency"] = (
            round(rate / (result["world_size"] * base_rate), 3) if rate and base_rate else None
        )
    at_goal = next((r for r in runs if r["world_size"] == GOAL_REPLICAS), None)
    efficiency = at_goal["efficiency"] if at_goal else None
    return {
        "threads_per_replica": 1,
        "goal": {
            "replicas": GOAL_REPLICAS,
            "efficiency": GOAL_EFFICIENCY,
            "measured": efficiency,
            "met": None if efficiency is None else efficiency >= GOAL_EFFICIENCY,
        },
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "device.json")
    parser.add_argument("--quick", action="store_true", help="small data, 1 and 2 replicas")
    parser.add_argument("--replicas", type=int, nargs="+", default=None, help="CPU replica counts")
    parser.add_argument("--eval-every-samples", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument(
        "--kfkit-home", type=Path, default=None, help="local backend state to keep (default: none)"
    )
    args = parser.parse_args(argv)
    replicas = args.replicas or ([1, 2] if args.quick else [1, 2, 4, 8])
    if any(count < 1 for count in replicas):
        parser.error("--replicas must be at least 1")
    eval_every = args.eval_every_samples or (1000 if args.quick else 6000)
    flags = dict(QUICK_FLAGS) if args.quick else {}

    started = time.time()
    gpus = visible_gpus()
    with kfkit_home(args.kfkit_home) as home:
        print("== gpu" + ("" if gpus else ": skipped, no GPU visible"), flush=True)
        gpu = gpu_part(gpus, flags, eval_every, args.timeout, home)
        cpu = cpu_part(replicas, flags, eval_every, args.timeout, home)
    document = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**machine(), "gpus": gpus},
        "quick": args.quick,
        "flags": flags,
        "eval_every_samples": eval_every,
        "targets": target_legend(),
        "gpu": gpu,
        "cpu_scaling": cpu,
        "elapsed_s": round(time.time() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({"gpu_skipped": gpu["skipped"], "cpu_goal": cpu["goal"]}), flush=True)
    print(f"wrote {args.out} in {document['elapsed_s']} s")
    runs = [*cpu["runs"], *([] if gpu["skipped"] else [gpu])]
    return 0 if all(r.get("succeeded") for r in runs) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
