"""Distributed MNIST with PyTorch: the program a PyTorchJob's replicas run.

Every replica runs this same module. It reads only what the training operator
gives it (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; a single process when
WORLD_SIZE is unset), trains with DistributedDataParallel, evaluates on the
full test set with the counts all-reduced so every rank reports the same
global accuracy, and checkpoints so a restarted replica picks up where the job
left off.

Two recipes:
- ``classic``: the classic PyTorch MNIST example, our baseline (two 5x5 conv
  layers with 20 and 50 channels, max-pooling, FC 500; SGD lr 0.01 momentum 0.5,
  batch 64 per replica).
- ``fast``: tuned for time to accuracy on CPU replicas and for 99% within two
  epochs (a net with narrow convolutions, Adam with the learning rate scaled to the
  global batch, warm-up then linear decay). docs/benchmarks.md has the search.

Output that Katib's stdout collector and the report understand::

    Train Epoch: 1 [640/60000 (1%)] loss=0.2135
    accuracy=0.9662
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, TensorDataset

from kfkit.data import load as load_mnist
from kfkit.errors import KfkitError
from kfkit.training import common
from kfkit.training.torch_checkpoint import Checkpoints

MEAN, STD = 0.1307, 0.3081  # of the MNIST training pixels, scaled to [0, 1]


# --- models -------------------------------------------------------------------------------------


class ClassicNet(nn.Module):
    """The classic example's net: conv 20 -> pool -> conv 50 -> pool -> FC 500 -> FC 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, 1)
        self.conv2 = nn.Conv2d(20, 50, 5, 1)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return F.log_softmax(self.fc2(x), dim=1)


class FastNet(nn.Module):
    """A small net that learns fast on CPU: two narrow 3x3 conv blocks with batch norm and a
    hidden FC layer of 128 units.

    The convolutions are where a CPU spends its time; keeping them at 16 and 32 channels
    keeps a step cheap (about a third of the classic net's multiply-adds), batch norm
    lets it take a large learning rate, and the hidden layer adds the capacity that takes
    it past 99% within two epochs for a few percent more time per step
    (docs/benchmarks.md has the search).
    """

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(7 * 7 * 32, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return F.log_softmax(self.fc2(x), dim=1)


# --- recipes ------------------------------------------------------------------------------------


class Recipe:
    """What differs between the baseline and ours: net, batch, optimiser, schedule."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size  # per replica

    def model(self) -> nn.Module:
        raise NotImplementedError

    def optimizer(self, params: Any, world_size: int) -> torch.optim.Optimizer:
        raise NotImplementedError

    def lr_factor(self, step: int, total_steps: int) -> float:
        """Multiplier of the base learning rate at ``step`` (0-based) of ``total_steps``."""
        return 1.0


class Classic(Recipe):
    """SGD lr 0.01 momentum 0.5, batch 64 per replica, constant rate: the classic example."""

    def __init__(self) -> None:
        super().__init__("classic", batch_size=64)

    def model(self) -> nn.Module:
        return ClassicNet()

    def optimizer(self, params: Any, world_size: int) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=0.01, momentum=0.5)


class Fast(Recipe):
    """Adam, batch 64 per replica, lr 5e-3 at a global batch of 128 (square-root scaled:
    Adam's step size does not grow linearly with the batch), 30-step warm-up, then linear
    decay to 5% by the end of the run.

    64 per replica rather than 128: twice the updates for the same samples, which a net
    this small turns into accuracy (the time to 96.62% and the final accuracy both gain)
    at a few percent more time per sample."""

    BASE_LR = 5e-3
    BASE_BATCH = 128
    WARMUP_STEPS = 30

    def __init__(self) -> None:
        super().__init__("fast", batch_size=64)

    def model(self) -> nn.Module:
        return FastNet()

    def optimizer(self, params: Any, world_size: int) -> torch.optim.Optimizer:
        global_batch = self.batch_size * world_size
        lr = self.BASE_LR * math.sqrt(global_batch / self.BASE_BATCH)
        return torch.optim.Adam(params, lr=lr)

    def lr_factor(self, step: int, total_steps: int) -> float:
        if step < self.WARMUP_STEPS:
            return (step + 1) / self.WARMUP_STEPS
        remaining = max(total_steps - self.WARMUP_STEPS, 1)
        done = min(step - self.WARMUP_STEPS, remaining) / remaining
        return 1.0 - 0.95 * done


RECIPES: dict[str, type[Classic] | type[Fast]] = {"classic": Classic, "fast": Fast}


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kfkit.training.pytorch_mnist",
        description="Distributed MNIST training with PyTorch DDP (PyTorchJob replicas).",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="MNIST IDX files (fetched if missing)"
    )
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="fast")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=None, help="per replica (recipe default)")
    parser.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=10, help="steps between loss lines")
    parser.add_argument(
        "--eval-every-samples",
        type=int,
        default=0,
        help="also evaluate each time this many training samples (all replicas) have passed",
    )
    parser.add_argument("--target-accuracy", type=float, default=None, help="record time to this")
    parser.add_argument("--stop-at-target", action="store_true", help="stop once it is reached")
    parser.add_argument("--train-limit", type=int, default=None, help="use the first N images")
    parser.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps in all")
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=100, help="steps")
    parser.add_argument("--metrics-file", type=Path, default=None, help="JSON; rank 0 writes it")
    parser.add_argument("--dist-timeout", type=float, default=300.0, help="seconds")
    args = parser.parse_args(argv)
    for name in ("epochs", "log_interval", "checkpoint_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("batch_size", "train_limit", "test_limit", "max_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.target_accuracy is not None and not 0 < args.target_accuracy <= 1:
        parser.error("--target-accuracy must be in (0, 1]")
    return args


# --- distributed helpers ------------------------------------------------------------------------


def set_torch_threads() -> int:
    """Honour the CPU limit: torch uses OMP_NUM_THREADS threads when it is set."""
    threads = common.threads_from_env()
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def init_distributed(args: argparse.Namespace) -> tuple[int, int, torch.device]:
    """Join the process group the operator's env describes; return (rank, world size, device)."""
    env = common.torch_env()
    backend = args.backend
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise KfkitError("--backend: nccl needs a GPU, and none is visible; use gloo")
    if backend == "nccl":
        device = torch.device("cuda", env.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if env.world_size > 1:
        dist.init_process_group(
            backend,
            init_method="env://",
            rank=env.rank,
            world_size=env.world_size,
            timeout=dt.timedelta(seconds=args.dist_timeout),
        )
    args.backend = backend
    return env.rank, env.world_size, device


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum ``values`` over all ranks (identity in a single process)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def all_reduce_max(value: float, device: torch.device) -> float:
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


# --- training -----------------------------------------------------------------------------------


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28), standardised like the classic example."""
    return images.unsqueeze(1).float().div_(255.0).sub_(MEAN).div_(STD)


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    rank: int,
    world_size: int,
    device: torch.device,
) -> tuple[float, float, int]:
    """Global (accuracy, mean loss, count): each rank scores its contiguous slice of the test set
    and the counts are all-reduced, so every rank gets the accuracy of the whole set."""
    if dist.is_initialized():
        # DDP syncs buffers (batch-norm statistics) from rank 0 at the start of each forward,
        # so after the last step every rank holds its own; evaluate rank 0's, the saved model.
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
    total = len(labels)
    start, stop = rank * total // world_size, (rank + 1) * total // world_size
    correct = loss_sum = 0.0
    model.eval()
    with torch.inference_mode():
        for begin in range(start, stop, 250):
            end = min(begin + 250, stop)
            output = model(normalise(images[begin:end]))
            loss_sum += F.nll_loss(output, labels[begin:end], reduction="sum").item()
            correct += (output.argmax(dim=1) == labels[begin:end]).sum().item()
    model.train()
    correct, loss_sum, count = all_reduce_sum([correct, loss_sum, float(stop - start)], device)
    return correct / count, loss_sum / count, int(count)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_time = time.time()
    threads = set_torch_threads()
    rank, world_size, device = init_distributed(args)
    log = common.RankLog(rank)
    recipe = RECIPES[args.recipe]()
    if args.batch_size:
        recipe.batch_size = args.batch_size
    torch.manual_seed(args.seed)

    mnist = load_mnist(args.data_dir, log=log.warn)
    train_x = torch.from_numpy(mnist.train_images[: args.train_limit].copy()).to(device)
    train_y = torch.from_numpy(mnist.train_labels[: args.train_limit].astype("int64")).to(device)
    test_x = torch.from_numpy(mnist.test_images[: args.test_limit].copy()).to(device)
    test_y = torch.from_numpy(mnist.test_labels[: args.test_limit].astype("int64")).to(device)
    train_size = len(train_y)

    model = recipe.model().to(device)
    net: nn.Module = model
    if world_size > 1:
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    optimizer = recipe.optimizer(net.parameters(), world_size)
    base_lrs = [group["lr"] for group in optimizer.param_groups]

    sampler: DistributedSampler[Any] = DistributedSampler(
        TensorDataset(train_y), num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed
    )
    steps_per_epoch = math.ceil(len(sampler) / recipe.batch_size)
    global_batch = recipe.batch_size * world_size
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)

    metrics = common.Metrics(
        framework="pytorch",
        recipe=recipe.name,
        world_size=world_size,
        backend=args.backend,
        threads=threads,
        batch_size=recipe.batch_size,
        global_batch=global_batch,
        train_size=train_size,
        test_size=len(test_y),
        start_time=start_time,
        target_accuracy=args.target_accuracy,
    )
    checkpoints = Checkpoints(args.checkpoint_dir, rank)
    step = 0
    state = checkpoints.load_broadcast()
    if state is not None and state.get("finished"):
        # Left by an earlier run of a job with the same name that completed: start afresh.
        log.info(f"Checkpoint {checkpoints.path} is from a finished run; starting a new one")
        state = None
    if state is not None:
        if state["recipe"] != recipe.name:
            raise KfkitError(
                f"{checkpoints.path}: written by recipe {state['recipe']!r}, not {recipe.name!r}"
            )
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError) as error:  # another version of the recipe's net
            raise KfkitError(
                f"{checkpoints.path}: does not fit the model of recipe {recipe.name!r} "
                "(written by another version of it); remove it to start afresh"
            ) from error
        step = int(state["step"])
        metrics.restore(state["metrics"], step)
        log.info(f"Resumed from checkpoint {checkpoints.path} at step {step}")

    def save_checkpoint(finished: bool = False) -> None:
        checkpoints.save(
            {
                "finished": finished,
                "recipe": recipe.name,
                "step": step,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "metrics": metrics.snapshot(),
            }
        )

    log.info(
        f"recipe={recipe.name} world_size={world_size} backend={args.backend} threads={threads} "
        f"global_batch={global_batch} steps_per_epoch={steps_per_epoch}"
    )
    next_eval = (
        (step * global_batch // args.eval_every_samples + 1) * args.eval_every_samples
        if args.eval_every_samples
        else None
    )
    stopped = False
    model.train()
    for epoch in range(step // steps_per_epoch, args.epochs):
        if step >= total_steps or stopped:
            break
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.long, device=device)
        interval_loss, interval_steps = 0.0, 0
        epoch_loss, epoch_steps = 0.0, 0
        epoch_started = time.time()
        for batch in range(step - epoch * steps_per_epoch, steps_per_epoch):
            if step >= total_steps:
                break
            metrics.mark_step_start()
            for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base_lr * recipe.lr_factor(step, total_steps)
            index = order[batch * recipe.batch_size : (batch + 1) * recipe.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.nll_loss(net(normalise(train_x[index])), train_y[index])
            loss.backward()
            optimizer.step()
            step += 1
            loss_value = loss.item()
            metrics.mark_step_end()
            interval_loss += loss_value
            interval_steps += 1
            epoch_loss += loss_value
            epoch_steps += 1
            if step % args.log_interval == 0 or batch == steps_per_epoch - 1:
                seen = min((batch + 1) * global_batch, train_size)
                mean_loss = interval_loss / interval_steps
                log.info(
                    f"Train Epoch: {epoch + 1} [{seen}/{train_size} "
                    f"({100.0 * seen / train_size:.0f}%)] loss={mean_loss:.4f}",
                    all_ranks=False,
                )
                metrics.log_step(step, epoch + 1, step * global_batch, mean_loss)
                interval_loss, interval_steps = 0.0, 0
            if checkpoints.enabled and step % args.checkpoint_every == 0:
                save_checkpoint()
            if next_eval is not None and step * global_batch >= next_eval:
                next_eval += args.eval_every_samples
                result = evaluate(model, test_x, test_y, rank, world_size, device)
                if record_eval(log, metrics, epoch + 1, step, global_batch, *result):
                    stopped = args.stop_at_target
                    if stopped:
                        break
        if not stopped and (not metrics.evals or metrics.evals[-1]["step"] != step):
            result = evaluate(model, test_x, test_y, rank, world_size, device)
            record_eval(log, metrics, epoch + 1, step, global_batch, *result)
        metrics.log_epoch(
            epoch + 1,
            train_loss=epoch_loss / max(epoch_steps, 1),
            seconds=time.time() - epoch_started,
            samples=epoch_steps * global_batch,
        )
        if checkpoints.enabled:
            save_checkpoint()
        metrics.peak_rss_bytes = all_reduce_max(common.peak_rss_bytes(), device)
        if rank == 0:
            metrics.write(args.metrics_file)

    if checkpoints.enabled:
        save_checkpoint(finished=True)
    metrics.peak_rss_bytes = all_reduce_max(common.peak_rss_bytes(), device)
    if rank == 0:
        metrics.write(args.metrics_file)
    log.info(metrics.summary())
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def record_eval(
    log: common.RankLog,
    metrics: common.Metrics,
    epoch: int,
    step: int,
    global_batch: int,
    accuracy: float,
    test_loss: float,
    count: int,
) -> bool:
    """Print and record one evaluation; True when the target accuracy has been reached."""
    log.info(
        f"Test set: epoch {epoch}, step {step}: average loss {test_loss:.4f}, "
        f"{round(accuracy * count)}/{count} correct"
    )
    log.info(f"accuracy={accuracy:.4f}")
    return metrics.log_eval(step, epoch, step * global_batch, accuracy, test_loss)


if __name__ == "__main__":
    sys.exit(common.run_main(main))
