"""Run one replica's pod with podman, as the kubelet would, and leave nothing behind.

``python -m kfkit.containers.podrun REPLICA`` runs in the job's state directory, started by
the supervisor like any replica process: its exit code is the main container's, its
output (the containers' logs) is the replica's log, and SIGTERM stops it. It

1. makes the job's network if it is missing (each pod's name and cluster service name
   resolve on it) and a pod named as on a cluster, replacing a leftover one;
2. runs the init containers in order, each to completion; one that fails ends the pod;
3. starts the other containers (sidecars) detached in the pod, then the main container
   attached, so its output and exit code come straight back;
4. on SIGTERM stops the pod within the grace period (``--init`` makes the containers'
   PID 1 pass SIGTERM on; Python as PID 1 would ignore it), and in every case removes the
   pod, its containers and, when no other pod uses it any more, the job's network.

If the supervisor dies, this process is told with SIGTERM (PR_SET_PDEATHSIG) and cleans up.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from kfkit.backends.local.processes import POD_MARK
from kfkit.containers.podman import PodmanError, environment, podman

_PR_SET_PDEATHSIG = 1
KILLED_EXIT_CODE = 137  # SIGKILL: the cgroup's OOM killer, or a kill


def _say(message: str) -> None:
    print(f"kfkit: {message}", flush=True)


class PodRun:
    def __init__(self, pod: dict[str, Any], workdir: Path) -> None:
        self.pod = pod
        self.name = str(pod["name"])
        self.workdir = workdir
        self.stopping = threading.Event()
        self.main: subprocess.Popen[bytes] | None = None
        self.followers: list[subprocess.Popen[bytes]] = []

    # --- set-up and tear-down ------------------------------------------------------------

    def create(self) -> None:
        network, label = self.pod["network"], f"io.kfkit.job={self.pod['label']}"
        if podman(["network", "exists", network], check=False).returncode != 0:
            made = podman(["network", "create", "--label", label, network], check=False)
            if made.returncode != 0 and "already exists" not in made.stderr:
                raise PodmanError(f"podman network create {network}: {made.stderr.strip()}")
        podman(["pod", "rm", "-f", "-t", "0", self.name], check=False)
        command = ["pod", "create", "--name", self.name, "--hostname", self.name]
        command += ["--label", label, "--network", network]
        for alias in self.pod["aliases"]:
            command += ["--network-alias", alias]
        podman(command)
        # Starting the pod's infra container sets up its network now, with podman's own
        # chatter captured here rather than mixed into the containers' log.
        podman(["pod", "start", self.name])
        for directory in self.pod["directories"]:
            path = Path(directory)
            path.mkdir(parents=True, exist_ok=True)
            # A cluster's emptyDir and hostPath-provisioned claims are writable by any user.
            with contextlib.suppress(OSError):
                path.chmod(0o777)

    def cleanup_env(self) -> dict[str, str]:
        """podman's environment without the replica's mark: what cleans up must outlive
        the replica's processes, which the supervisor kills by that mark."""
        env = environment()
        env.pop(POD_MARK, None)
        return env

    def start_reaper(self) -> None:
        """A detached watcher that removes the pod and network once this process is gone,
        however it goes (SIGKILL included)."""
        script = (
            'while kill -0 "$1" 2>/dev/null; do sleep 1; done; '
            'podman pod rm -f -t 0 "$2" >/dev/null 2>&1; podman network rm "$3" >/dev/null 2>&1'
        )
        subprocess.Popen(
            ["sh", "-c", script, "sh", str(os.getpid()), self.name, self.pod["network"]],
            env=self.cleanup_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def remove(self) -> None:
        """Remove the pod, then the network unless another pod of the job still uses it.

        The removal runs in a session of its own, unmarked, so it finishes even if this
        process is killed meanwhile (the supervisor's SIGKILL after the grace period).
        """
        script = 'podman pod rm -f -t 0 "$1" >/dev/null; podman network rm "$2" >/dev/null 2>&1'
        cleanup = subprocess.Popen(
            ["sh", "-c", script, "sh", self.name, self.pod["network"]],
            env=self.cleanup_env(),
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        cleanup.wait()

    def stop(self) -> None:
        """SIGTERM to every container, SIGKILL after most of the grace period."""
        self.stopping.set()
        grace = max(0, int(float(self.pod["grace_seconds"]) * 0.6))
        try:
            podman(["pod", "stop", "-t", str(grace), self.name], timeout=grace + 60, check=False)
        except PodmanError as error:  # the supervisor's SIGKILL after the grace period follows
            _say(f"{self.name}: {error}")

    # --- containers ----------------------------------------------------------------------

    def run_args(self, container: dict[str, Any], env_file: Path, detach: bool) -> list[str]:
        name = f"{self.name}-{container['name']}"
        args = ["podman", "run", "--pod", self.name, "--name", name, "--init", "--pull=never"]
        args += ["--label", f"io.kfkit.job={self.pod['label']}", "--env-file", str(env_file)]
        args += ["-d"] if detach else ["--sig-proxy=false"]
        for key, value in container["env"].items():
            if "\n" in value:  # an env file holds one line per variable
                args += ["--env", f"{key}={value}"]
        for mount in container["mounts"]:
            spec = f"type=bind,source={mount['source']},destination={mount['target']}"
            args += ["--mount", spec + (",ro=true" if mount["options"] == "ro" else "")]
        return [*args, *container["args"], container["image"]]

    def env_file(self, container: dict[str, Any], directory: Path) -> Path:
        path = directory / f"{container['name']}.env"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for key, value in container["env"].items():
                if "\n" not in value:
                    handle.write(f"{key}={value}\n")
        return path

    def attached(self, command: list[str]) -> int:
        # A session of its own: the supervisor's SIGTERM to this replica's process group is
        # for this process, which stops the pod within the grace period; podman's client
        # must not take it as a reason to detach.
        self.main = subprocess.Popen(
            command, env=environment(), stdin=subprocess.DEVNULL, start_new_session=True
        )
        code = self.main.wait()
        self.main = None
        return code

    def run(self) -> int:
        self.start_reaper()
        self.create()
        with tempfile.TemporaryDirectory(dir=self.workdir, prefix=".pod-") as tmp:
            for container in self.pod["init_containers"]:
                if self.stopping.is_set():
                    return 143
                _say(f"{self.name}: init container {container['name']}")
                command = self.run_args(container, self.env_file(container, Path(tmp)), False)
                code = self.attached(command)
                if code != 0:
                    _say(f"{self.name}: init container {container['name']} exited with {code}")
                    return code
            main = next(c for c in self.pod["containers"] if c["name"] == self.pod["main"])
            for container in self.pod["containers"]:
                if container is main or self.stopping.is_set():
                    continue
                command = self.run_args(container, self.env_file(container, Path(tmp)), True)
                started = subprocess.run(command, env=environment(), capture_output=True)
                if started.returncode != 0:
                    _say(f"{self.name}: sidecar {container['name']}: {started.stderr.decode()}")
                    return 1
                # The sidecar's output goes to the replica's log as it comes.
                follower = subprocess.Popen(
                    ["podman", "logs", "-f", f"{self.name}-{container['name']}"],
                    env=environment(),
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
                self.followers.append(follower)
            if self.stopping.is_set():
                return 143
            command = self.run_args(main, self.env_file(main, Path(tmp)), False)
            code = self.attached(command)
        if code == KILLED_EXIT_CODE and not self.stopping.is_set():
            # The OOM killer or a kill of the container; the supervisor tells them apart.
            _say(f"{self.name}: {main['name']} was killed (exit 137)")
        return code


def main(argv: list[str]) -> int:
    key = argv[0]
    workdir = Path.cwd()
    launch = json.loads((workdir / "launch.json").read_text(encoding="utf-8"))
    run = PodRun(launch["replicas"][key]["pod"], workdir)
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    def on_term(signum: int, frame: object) -> None:
        if not run.stopping.is_set():
            threading.Thread(target=run.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    code = 1
    try:
        code = run.run()
    except PodmanError as error:
        _say(str(error))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.remove()
        for follower in run.followers:
            follower.terminate()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
