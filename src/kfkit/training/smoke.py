"""A distributed smoke test: every rank checks its environment, then all-reduces its rank.

Run by the example PyTorchJob and the chart's ``helm test``: it proves that
the operator's environment (RANK, WORLD_SIZE, MASTER_ADDR/PORT) is consistent
and that the replicas really talk to each other over gloo.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--expect-world-size", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=60.0, help="rendezvous timeout (s)")
    args = parser.parse_args(argv)

    import torch
    import torch.distributed as dist

    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if args.expect_world_size is not None and world_size != args.expect_world_size:
        print(f"WORLD_SIZE={world_size}, expected {args.expect_world_size}", file=sys.stderr)
        return 1
    dist.init_process_group(
        "gloo", timeout=datetime.timedelta(seconds=args.timeout)
    )  # reads MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE from the environment
    if dist.get_rank() != rank or dist.get_world_size() != world_size:
        print("process group disagrees with RANK/WORLD_SIZE", file=sys.stderr)
        return 1
    total = torch.tensor([float(rank)])
    dist.all_reduce(total)
    expected = world_size * (world_size - 1) / 2
    print(f"rank={rank} world_size={world_size} all_reduce(sum of ranks)={total.item():.0f}")
    dist.destroy_process_group()
    if total.item() != expected:
        print(f"all_reduce gave {total.item()}, expected {expected}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
