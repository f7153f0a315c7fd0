"""Each component of the verification pipeline in its own container, as Kubeflow Pipelines runs it.

kfp.local's DockerRunner does the orchestration (the DAG, the ParallelFor, the
executor input, the pipeline root bind-mounted at the same path). What starts one
component's container is kfkit's :meth:`ContainerRun.run_container`, put in the place
of kfp's own for the length of the run, because with podman 4.3 kfp's would lose
what a run has to prove: it removes containers on exit (``auto_remove``), and podman
then answers the exit-status query of a removed container with status 0, so a
component that failed would pass. Here a container is removed only after its status
was read; each one is labelled with the run, so a cancelled or failed run removes
every container it started; and each component's image, user, exit status and log
are recorded for the report.

As on a cluster, the IR's ``command`` replaces the image's ENTRYPOINT and the
component runs as the image's own (non-root) user.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kfkit.errors import KfkitError

RUN_LABEL = "io.kfkit.pipeline-run"
# The longest a component may run (a paper-sized training job included), and the longest
# its log may stay silent.
COMPONENT_TIMEOUT_S = 3 * 3600
LOG_TAIL_LINES = 30
# kfp's status for a component kfkit refused to start because the run was cancelled.
CANCELLED = 130


@dataclass
class ComponentRecord:
    """One component's container: what it ran in, how it ended, where its log is."""

    task: str  # its task's path under the run directory
    image: str  # the name the compiled IR gives
    image_id: str  # what the container runtime resolved that name to
    user: str  # the user the container ran as
    feature: str | None = None  # run-feature-group's feature file
    exit_code: int | None = None  # None: it did not end (cancelled, or the runtime failed)
    started: float = 0.0  # when its container started and ended (seconds since the epoch)
    ended: float = 0.0
    log: str = ""
    tail: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


def _executor_input(command: list[str]) -> dict[str, Any]:
    if "--executor_input" not in command:
        return {}
    try:
        value = json.loads(command[command.index("--executor_input") + 1])
    except (IndexError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def task_path(command: list[str], pipeline_root: Path) -> str:
    """The task's directory under its run, from the executor input kfp put in the command."""
    output_file = _executor_input(command).get("outputs", {}).get("outputFile")
    if not output_file:
        return "unknown-task"
    parts = Path(output_file).parent.relative_to(pipeline_root).parts
    return "/".join(parts[1:]) or "unknown-task"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_") or "task"


class ContainerRun:
    """The containers of one pipeline run: started, recorded, and never left behind."""

    def __init__(self, pipeline_root: Path, log_dir: Path, environment: dict[str, str]) -> None:
        self.run_id = uuid.uuid4().hex[:12]
        self.pipeline_root = pipeline_root
        self.log_dir = log_dir
        self.environment = environment
        self.mounts: list[Any] = []
        self.records: list[ComponentRecord] = []
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    @property
    def labels(self) -> dict[str, str]:
        return {RUN_LABEL: self.run_id}

    def client(self) -> Any:
        import docker

        return docker.from_env(timeout=COMPONENT_TIMEOUT_S)

    def run_container(
        self, client: Any, image: str, command: list[str], volumes: dict[str, Any], **args: Any
    ) -> int:
        """Run one component to its end; return its exit status (kfp's handler calls this)."""
        del client  # kfp's client has a 60 s read timeout: a quiet component would fail
        if self._cancelled.is_set():
            return CANCELLED
        task = task_path(command, self.pipeline_root)
        parameters = _executor_input(command).get("inputs", {}).get("parameterValues", {})
        # The task's own environment (the IR's env) on top of the run's.
        environment = {**self.environment, **(args.get("environment") or {})}
        log_path = self.log_dir / f"{_slug(task)}.log"
        own = self.client()
        try:
            container = own.containers.create(
                image=image,
                # On a cluster the IR's command replaces the image's ENTRYPOINT.
                entrypoint=command[:1],
                command=command[1:],
                volumes=volumes,
                mounts=self.mounts,
                environment=environment,
                labels=self.labels,
                detach=True,
            )
            record = ComponentRecord(
                task=task,
                image=image,
                image_id=str(container.attrs.get("Image", "")),
                user=str(container.attrs.get("Config", {}).get("User") or "root"),
                feature=parameters.get("feature"),
                log=str(log_path),
            )
            with self._lock:
                self.records.append(record)
            try:
                if self._cancelled.is_set():
                    return CANCELLED
                container.start()
                record.started = time.time()
                self.log_dir.mkdir(parents=True, exist_ok=True)
                with open(log_path, "wb") as log:
                    for chunk in container.logs(stream=True, follow=True):
                        log.write(chunk)
                        log.flush()
                        print(chunk.decode(errors="replace"), end="")
                status = container.wait(timeout=COMPONENT_TIMEOUT_S)
                record.exit_code = int(status.get("StatusCode", -1))
            finally:
                record.ended = time.time()
                _remove(container)
                lines = (
                    log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
                )
                record.tail = lines[-LOG_TAIL_LINES:]
        finally:
            own.close()
        return record.exit_code if record.exit_code is not None else CANCELLED

    def cancel(self) -> None:
        """Start no more containers and remove every one this run started."""
        self._cancelled.set()
        self.remove_all()

    def remove_all(self) -> list[str]:
        """Remove every container (and its anonymous volumes) labelled with this run."""
        import docker

        removed = []
        client = self.client()
        try:
            for container in client.containers.list(
                all=True, filters={"label": f"{RUN_LABEL}={self.run_id}"}
            ):
                _remove(container)
                removed.append(container.name)
        except docker.errors.DockerException as error:
            raise KfkitError(f"cannot remove the run's containers: {error}") from None
        finally:
            client.close()
        return removed

    def write_record(self, path: Path) -> Path:
        """components.json: every component's image, user, exit status and log tail."""
        path.write_text(
            json.dumps([asdict(r) for r in self.records], indent=2) + "\n", encoding="utf-8"
        )
        return path


def _remove(container: Any) -> None:
    import docker

    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        # podman 4.3 answers 500, not 404, for a container that is already gone.
        if "no such container" not in str(error):
            raise


@contextmanager
def kfp_runs_containers_with(run: ContainerRun) -> Iterator[None]:
    """Route kfp.local's DockerRunner through ``run`` for the length of the context."""
    from kfp.local import docker_task_handler

    original = docker_task_handler.run_docker_container
    docker_task_handler.run_docker_container = run.run_container
    try:
        yield
    finally:
        docker_task_handler.run_docker_container = original
