"""Distributed MNIST with TensorFlow 2: the program a TFJob's replicas run.

Every replica runs this module; TF_CONFIG (set by the operator when the job has
more than one replica) says who is who.

- ``--strategy multiworker``: MultiWorkerMirroredStrategy. Every worker trains
  synchronously (gradients all-reduced each step) and evaluates; the chief (the
  ``chief`` task, else worker 0) writes the metrics file.
- ``--strategy ps``: ParameterServerStrategy. ``ps`` and ``worker`` tasks start a
  TensorFlow server and serve until they are stopped (SIGTERM: clean exit 0); the
  chief creates the variables on the parameter servers, schedules steps on the
  workers with a ClusterCoordinator, evaluates and exits. On a cluster the TFJob's
  ``cleanPodPolicy: Running`` removes the serving pods once the chief has
  succeeded (see docs/training.md).
- ``--strategy auto``: ``ps`` when TF_CONFIG has ps tasks, ``multiworker`` when it
  has several tasks, otherwise a single process.

Keras 3's ``model.fit`` does not run under these strategies, so the model is a
plain ``tf.Module`` with its own Adam and a custom loop (``strategy.run``).

Output the paper and Katib's stdout collector understand::

    validation cross entropy = 0.0712
    accuracy=0.9781
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A CPU limit of 1 makes the operator's tooling (and kfkit's local backend) set
# TF_NUM_INTEROP_THREADS=1. The distributed runtime blocks inter-op threads while it
# waits for remote tensors, so a single one deadlocks a parameter-server worker: keep
# at least two (they mostly wait; the compute threads stay at the limit).
if os.environ.get("TF_NUM_INTEROP_THREADS", "2").strip() in ("0", "1"):
    os.environ["TF_NUM_INTEROP_THREADS"] = "2"

import numpy as np
import tensorflow as tf

from kfkit.data import load as load_mnist
from kfkit.data import prepare as prepare_mnist
from kfkit.data.mnist import find as find_mnist_file
from kfkit.errors import KfkitError
from kfkit.training import common

MEAN, STD = 0.1307, 0.3081

# --- the cluster, from TF_CONFIG -----------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """TF_CONFIG as the operator writes it; a single local task when it is unset."""

    spec: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def is_chief(self) -> bool:
        if "chief" in self.spec:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def size(self) -> int:
        return sum(len(hosts) for hosts in self.spec.values())


def read_cluster() -> Cluster:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return Cluster(spec={}, task_type="worker", task_index=0)
    try:
        config = json.loads(raw)
        spec = {str(k): [str(h) for h in v] for k, v in config["cluster"].items()}
        task_type = str(config["task"]["type"])
        task_index = int(config["task"]["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise KfkitError(
            f"environment: TF_CONFIG: not a cluster/task description: {error}"
        ) from error
    if task_type not in spec or not 0 <= task_index < len(spec[task_type]):
        raise KfkitError(f"environment: TF_CONFIG: task {task_type}:{task_index} is not in cluster")
    return Cluster(spec=spec, task_type=task_type, task_index=task_index)


# --- the model and its optimiser ----------------------------------------------------------------


class ConvNet(tf.Module):
    """conv 3x3x16 -> pool -> conv 3x3x32 -> pool -> FC 10, as raw variables and ops."""

    def __init__(self, seed: int) -> None:
        super().__init__(name="convnet")

        def init(shape: list[int]) -> tf.Tensor:  # He-normal, reproducible from the seed
            fan_in = int(np.prod(shape[:-1]))
            seed_pair = [seed, len(shape) * 1000 + shape[-1]]
            return tf.random.stateless_normal(shape, seed_pair) * np.sqrt(2.0 / fan_in)

        self.conv1 = tf.Variable(init([3, 3, 1, 16]), name="conv1")
        self.bias1 = tf.Variable(tf.zeros([16]), name="bias1")
        self.conv2 = tf.Variable(init([3, 3, 16, 32]), name="conv2")
        self.bias2 = tf.Variable(tf.zeros([32]), name="bias2")
        self.dense = tf.Variable(init([7 * 7 * 32, 10]), name="dense")
        self.bias3 = tf.Variable(tf.zeros([10]), name="bias3")

    @property
    def weights(self) -> list[tf.Variable]:
        return [self.conv1, self.bias1, self.conv2, self.bias2, self.dense, self.bias3]

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        x = tf.nn.relu(tf.nn.conv2d(images, self.conv1, 1, "SAME") + self.bias1)
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        x = tf.nn.relu(tf.nn.conv2d(x, self.conv2, 1, "SAME") + self.bias2)
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        return tf.matmul(tf.reshape(x, [-1, 7 * 7 * 32]), self.dense) + self.bias3


class Adam(tf.Module):
    """Adam whose slots are created next to the weights (mirrored or on the parameter servers).

    ``apply`` runs in a replica context: gradients are summed across replicas (the
    loss is already divided by the global batch), then each variable is updated
    once per device through the strategy, which is how distributed optimisers do it.
    """

    def __init__(self, weights: list[tf.Variable], lr: float) -> None:
        super().__init__(name="adam")
        self.lr, self.beta1, self.beta2, self.eps = lr, 0.9, 0.999, 1e-7
        self.iterations = tf.Variable(0, dtype=tf.int64, name="iterations")
        self.m = [tf.Variable(tf.zeros_like(w), name=f"m{i}") for i, w in enumerate(weights)]
        self.v = [tf.Variable(tf.zeros_like(w), name=f"v{i}") for i, w in enumerate(weights)]

    def apply(self, grads: list[tf.Tensor], weights: list[tf.Variable]) -> None:
        context = tf.distribute.get_replica_context()
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        context.merge_call(self._update_all, args=(grads, weights))

    def _update_all(
        self, strategy: tf.distribute.Strategy, grads: Any, weights: list[tf.Variable]
    ) -> None:
        extended = strategy.extended
        extended.update(self.iterations, lambda var: var.assign_add(1), group=False)
        t = tf.cast(self.iterations, tf.float32)
        lr = self.lr * tf.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        for grad, weight, m, v in zip(grads, weights, self.m, self.v, strict=True):
            extended.update(weight, self._update_one, args=(grad, m, v, lr), group=False)

    def _update_one(
        self, weight: tf.Variable, grad: tf.Tensor, m: tf.Variable, v: tf.Variable, lr: tf.Tensor
    ) -> None:
        m.assign(self.beta1 * m + (1.0 - self.beta1) * grad)
        v.assign(self.beta2 * v + (1.0 - self.beta2) * tf.square(grad))
        weight.assign_sub(lr * m / (tf.sqrt(v) + self.eps))


# --- data ---------------------------------------------------------------------------------------


def normalise(images: tf.Tensor) -> tf.Tensor:
    return (tf.cast(images, tf.float32) / 255.0 - MEAN) / STD


def train_dataset(
    data_dir: Path, limit: int | None, batch: int, seed: int, context: tf.distribute.InputContext
) -> tf.data.Dataset:
    """Shuffled, repeated training batches read straight from the IDX files.

    Reading the files on each worker (rather than shipping arrays from the chief)
    keeps parameter-server workers independent of the chief's memory.
    """
    images_path = find_mnist_file(data_dir, "train-images-idx3-ubyte")
    labels_path = find_mnist_file(data_dir, "train-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        raise KfkitError(f"{data_dir}: MNIST training files missing")

    def records(path: Path, size: int, header: int) -> tf.data.Dataset:
        compression = "GZIP" if path.suffix == ".gz" else ""
        return tf.data.FixedLengthRecordDataset(
            str(path), size, header_bytes=header, compression_type=compression
        ).map(lambda raw: tf.io.decode_raw(raw, tf.uint8))

    images = records(images_path, 28 * 28, 16).map(lambda x: tf.reshape(x, [28, 28, 1]))
    labels = records(labels_path, 1, 8).map(lambda y: tf.cast(tf.reshape(y, []), tf.int64))
    dataset = tf.data.Dataset.zip((images, labels))
    if limit:
        dataset = dataset.take(limit)
    dataset = dataset.shard(context.num_input_pipelines, context.input_pipeline_id)
    dataset = dataset.cache().shuffle(60_000, seed=seed + context.input_pipeline_id)
    dataset = dataset.repeat().batch(batch, drop_remainder=True)
    return dataset.map(lambda x, y: (normalise(x), y)).prefetch(2)


def evaluate(model: ConvNet, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on the whole test set, computed locally."""
    correct = 0.0
    loss_sum = 0.0
    for begin in range(0, len(labels), 1000):
        x = images[begin : begin + 1000, :, :, None]
        y = labels[begin : begin + 1000]
        batch_correct, batch_loss = _eval_batch(model, tf.constant(x), tf.constant(y))
        correct += float(batch_correct)
        loss_sum += float(batch_loss)
    return correct / len(labels), loss_sum / len(labels)


@tf.function(reduce_retracing=True)
def _eval_batch(model: ConvNet, images: tf.Tensor, labels: tf.Tensor) -> tuple[Any, Any]:
    logits = model(normalise(images))
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    hits = tf.cast(tf.equal(tf.argmax(logits, axis=1), labels), tf.float32)
    return tf.reduce_sum(hits), tf.reduce_sum(loss)


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kfkit.training.tf_mnist",
        description="Distributed MNIST training with TensorFlow 2 strategies (TFJob replicas).",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="MNIST IDX files (fetched if missing)"
    )
    parser.add_argument("--strategy", choices=["auto", "multiworker", "ps"], default="auto")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128, help="per worker")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=20, help="steps between loss lines")
    parser.add_argument("--eval-every-samples", type=int, default=0)
    parser.add_argument("--target-loss", type=float, default=None, help="record time to this CE")
    parser.add_argument("--stop-at-target", action="store_true")
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--metrics-file", type=Path, default=None, help="JSON; the chief writes it")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "log_interval"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("train_limit", "test_limit", "max_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def configure_threads() -> int | None:
    """Honour the CPU limit (OMP_NUM_THREADS) before TensorFlow starts its thread pools."""
    threads = common.threads_from_env()
    if threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(threads, 2))
    return threads


def server_config() -> tf.compat.v1.ConfigProto:
    """Thread pools of a ps/worker server: the CPU limit for compute, at least two inter-op."""
    threads = common.threads_from_env() or 0
    return tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads,
        inter_op_parallelism_threads=max(threads, 2),
    )


def serve(cluster: Cluster, data_dir: Path | None, log: common.RankLog) -> int:
    """A ps or worker task of ParameterServerStrategy: run a server until told to stop."""
    if cluster.task_type == "worker":
        prepare_mnist(data_dir, log=log.warn)  # workers read the training files themselves

    def stop(signum: int, frame: FrameType | None) -> None:
        del frame
        log.info(f"{cluster.task_type}:{cluster.task_index}: signal {signum}, stopping")
        # The server's threads never return, so a normal interpreter exit would hang
        # joining them; nothing here holds state worth saving.
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = tf.distribute.Server(
        tf.train.ClusterSpec(cluster.spec),
        job_name=cluster.task_type,
        task_index=cluster.task_index,
        protocol="grpc",
        config=server_config(),
        start=True,
    )
    log.info(f"{cluster.task_type}:{cluster.task_index}: serving at {server.target}")
    while True:  # the Python main thread stays free to handle SIGTERM promptly
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_time = time.time()
    cluster = read_cluster()
    strategy_name = args.strategy
    if strategy_name == "auto":
        strategy_name = (
            "ps" if "ps" in cluster.spec else "multiworker" if cluster.size > 1 else "single"
        )
    if strategy_name == "ps" and "ps" not in cluster.spec:
        raise KfkitError("--strategy ps: TF_CONFIG has no ps tasks")
    if strategy_name == "ps" and "chief" not in cluster.spec:
        raise KfkitError("--strategy ps: TF_CONFIG has no chief task to coordinate")
    if cluster.task_type not in ("chief", "worker", "ps"):
        raise KfkitError(
            f"environment: TF_CONFIG: task type {cluster.task_type!r} is not supported"
        )
    log = common.RankLog(0 if cluster.is_chief else 1)
    threads = configure_threads()
    if strategy_name == "ps" and cluster.task_type in ("ps", "worker"):
        return serve(cluster, args.data_dir, log)

    strategy: tf.distribute.Strategy
    if strategy_name == "ps":
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        strategy = tf.distribute.experimental.ParameterServerStrategy(resolver)
        workers = len(cluster.spec.get("worker", []))
    elif strategy_name == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        workers = strategy.num_replicas_in_sync
    else:
        strategy = tf.distribute.get_strategy()
        workers = 1

    data_dir = prepare_mnist(args.data_dir, log=log.warn)
    mnist = load_mnist(data_dir, log=log.warn)
    test_images = mnist.test_images[: args.test_limit]
    test_labels = mnist.test_labels[: args.test_limit].astype(np.int64)
    train_size = min(args.train_limit or len(mnist.train_labels), len(mnist.train_labels))
    del mnist

    # Synchronous strategies consume one batch per worker per step; the ps chief schedules
    # steps that each consume one worker's batch.
    global_batch = args.batch_size * (workers if strategy_name != "ps" else 1)
    steps_per_epoch = max(train_size // global_batch, 1)
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)

    with strategy.scope():
        model = ConvNet(args.seed)
        optimizer = Adam(model.weights, args.learning_rate)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return train_dataset(data_dir, args.train_limit, args.batch_size, args.seed, context)

    def replica_step(images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits = model(images)
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.weights)
        optimizer.apply(grads, model.weights)
        return loss

    @tf.function
    def train_step(iterator: Any) -> tf.Tensor:
        images, labels = next(iterator)
        losses = strategy.run(replica_step, args=(images, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    metrics = common.Metrics(
        framework="tensorflow",
        world_size=workers,
        start_time=start_time,
        strategy=strategy_name,
        threads=threads,
        batch_size=args.batch_size,
        global_batch=global_batch,
        train_size=train_size,
        test_size=len(test_labels),
        target_loss=args.target_loss,
    )
    coordinator = None
    if strategy_name == "ps":
        coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
        per_worker = coordinator.create_per_worker_dataset(
            lambda: strategy.distribute_datasets_from_function(dataset_fn)
        )
        iterator = iter(per_worker)
    else:
        iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))

    log.info(
        f"strategy={strategy_name} task={cluster.task_type}:{cluster.task_index} workers={workers} "
        f"threads={threads} global_batch={global_batch} steps_per_epoch={steps_per_epoch}"
    )
    samples_per_step = args.batch_size * workers if strategy_name != "ps" else args.batch_size
    next_eval = args.eval_every_samples or None
    step = 0
    stopped = False

    def run_eval(epoch: int) -> bool:
        accuracy, cross_entropy = evaluate(model, test_images, test_labels)
        log.info(f"Validation: epoch {epoch}, step {step}")
        log.info(f"validation cross entropy = {cross_entropy:.4f}")
        log.info(f"accuracy={accuracy:.4f}")
        return metrics.log_eval(step, epoch, step * samples_per_step, accuracy, cross_entropy)

    for epoch in range(1, args.epochs + 1):
        if step >= total_steps or stopped:
            break
        epoch_started = time.time()
        epoch_loss, epoch_steps = 0.0, 0
        for _ in range(steps_per_epoch):
            if step >= total_steps:
                break
            metrics.mark_step_start()
            if coordinator is not None:
                remote = coordinator.schedule(train_step, args=(iterator,))
                step += 1
                log_now = step % args.log_interval == 0 or step == total_steps
                if log_now:
                    loss_value = float(remote.fetch())  # waits for this step only
            else:
                loss_value = float(train_step(iterator))
                step += 1
                log_now = step % args.log_interval == 0 or step == total_steps
            metrics.mark_step_end()
            if log_now:
                epoch_loss += loss_value
                epoch_steps += 1
                seen = min((step - (epoch - 1) * steps_per_epoch) * samples_per_step, train_size)
                log.info(
                    f"Train Epoch: {epoch} [{seen}/{train_size} "
                    f"({100.0 * seen / train_size:.0f}%)] loss={loss_value:.4f}",
                    all_ranks=False,
                )
                metrics.log_step(step, epoch, step * samples_per_step, loss_value)
            if next_eval is not None and step * samples_per_step >= next_eval:
                next_eval += args.eval_every_samples
                if coordinator is not None:
                    metrics.mark_step_start()
                    coordinator.join()
                    metrics.mark_step_end()
                if run_eval(epoch) and args.stop_at_target:
                    stopped = True
                    break
        if coordinator is not None:
            metrics.mark_step_start()
            coordinator.join()
            metrics.mark_step_end()
        if not stopped and (not metrics.evals or metrics.evals[-1]["step"] != step):
            run_eval(epoch)
        metrics.log_epoch(
            epoch,
            train_loss=epoch_loss / max(epoch_steps, 1),
            seconds=time.time() - epoch_started,
            samples=(step - (epoch - 1) * steps_per_epoch) * samples_per_step,
        )
        metrics.peak_rss_bytes = common.peak_rss_bytes()
        if cluster.is_chief:
            metrics.write(args.metrics_file)

    metrics.peak_rss_bytes = common.peak_rss_bytes()
    if cluster.is_chief:
        metrics.write(args.metrics_file)
    log.info(metrics.summary())
    return 0


if __name__ == "__main__":
    sys.exit(common.run_main(main))
