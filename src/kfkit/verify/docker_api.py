"""The Docker-compatible API that kfp.local's DockerRunner talks to.

kfp's DockerRunner uses the ``docker`` package, which finds its daemon through
``DOCKER_HOST``. When the user has set one (their own Docker or podman service), the
run uses it as it is. Otherwise kfkit starts ``podman system service`` on a socket of
its own, with kfkit's podman configuration, for exactly the length of the run, and
stops it afterwards: in its own session, so that a Ctrl-C in the terminal reaches
kfkit (which cleans up through the service) and not the service itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kfkit.containers import podman

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def _ping(url: str) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=url, timeout=5)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, OSError):
        return False
    finally:
        client.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the service's process group, SIGKILL after the grace period; reap it."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    process.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def podman_service() -> Iterator[str]:
    """Run ``podman system service`` on a private socket; yield its ``unix://`` URL."""
    problem = podman.available()
    if problem:
        raise podman.PodmanError(problem)
    # A short directory: a unix socket's path is limited to about 100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="kfkit-docker-api-"))
    socket = directory / "podman.sock"
    url = f"unix://{socket}"
    log_path = directory / "service.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["podman", "system", "service", "--time=0", url],
            env=podman.environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (socket.exists() and _ping(url)):
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
                raise podman.PodmanError(
                    f"podman system service exited (status {process.returncode})"
                    + (f": {tail[0]}" if tail else "")
                )
            if time.monotonic() > deadline:
                raise podman.PodmanError(
                    f"podman system service did not answer on {socket} "
                    f"within {START_TIMEOUT_S:.0f}s"
                )
            time.sleep(0.2)
        yield url
    finally:
        _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def docker_host() -> Iterator[str]:
    """``DOCKER_HOST`` for the run: the user's own, or a podman service started for it.

    While the context is open ``DOCKER_HOST`` is set in this process, which is where
    kfp's DockerRunner reads it (``docker.from_env()``); it is put back afterwards.
    """
    own = os.environ.get("DOCKER_HOST")
    if own:
        if not _ping(own):
            raise podman.PodmanError(f"DOCKER_HOST={own}: no Docker-compatible API answers there")
        yield own
        return
    with podman_service() as url:
        os.environ["DOCKER_HOST"] = url
        try:
            yield url
        finally:
            os.environ.pop("DOCKER_HOST", None)
