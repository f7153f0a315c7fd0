"""A real kube-apiserver and etcd on loopback, for tests that need a real API.

Usage::

    from kfkit.platform.apiserver import LocalApiServer, apiserver_missing_reason

    reason = apiserver_missing_reason()          # None, or why it cannot start
    with LocalApiServer() as server:
        server.url                # https://127.0.0.1:<port>
        server.kubeconfig         # admin (group system:masters)
        server.limited_kubeconfig # user "kfkit-limited": authenticated, no RBAC grants
        server.kubeconfig_for("kfkit-limited")
        server.token_for("kfkit-limited")

What it is: etcd (Debian's ``etcd-server``) and kube-apiserver 1.20.2 (built
from Debian's ``kubernetes`` source package by ``make platform-apiserver``),
both on random free loopback ports, with a temporary data directory, a
generated service-account key, the server's self-signed serving certificate
(its CA is written into the kubeconfigs) and a static token file. Authorization
is RBAC, so the limited users (``users=``, by default ``kfkit-limited`` with no
groups) are forbidden everything until a test binds a Role to them; the admin
token belongs to ``system:masters``.

What it is not: a cluster. No kubelet, scheduler or controller-manager run, so
pods are stored but never start, Deployments never become available, Jobs never
complete, namespaces get no ``default`` ServiceAccount and ResourceQuota status
is never computed. The ServiceAccount admission plugin is disabled for that
reason (it would reject every pod whose ServiceAccount no controller created). Webhook
Services are reached through their Endpoints (``--enable-aggregator-routing``): with no
webhook server running, a webhook call fails at once ("endpoints ... not found") instead of
resolving a cluster DNS name on the host.
Tests must assert what the API server itself does: admission, schema
validation, defaulting, RBAC, storage, dry runs.

Both processes are stopped and reaped on exit, also when start-up fails; their
logs stay in ``server.workdir`` until then and the last lines are part of the
error raised when the server does not become ready.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import yaml

from kfkit.errors import KfkitError
from kfkit.platform.tools import find_tool, missing_reason, which_system

ADMIN_USER = "kfkit-admin"
LIMITED_USER = "kfkit-limited"
SERVICE_CIDR = "10.0.0.0/24"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class ApiServerError(KfkitError):
    """The local API server could not be started."""


def apiserver_missing_reason() -> str | None:
    """Why LocalApiServer cannot start here, or None when every binary is in place."""
    for name in ("kube-apiserver", "etcd"):
        reason = missing_reason(name)
        if reason:
            return reason
    if which_system("openssl") is None:
        return "openssl: not on PATH (it makes the service-account key); apt-get install openssl"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalApiServer:
    """etcd + kube-apiserver on loopback; a context manager that always reaps both."""

    def __init__(
        self,
        *,
        users: Mapping[str, Sequence[str]] | None = None,
        startup_timeout: float = 90.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        """``users`` maps extra token users to their groups (default: kfkit-limited, none)."""
        self.users: dict[str, list[str]] = {
            name: list(groups) for name, groups in (users or {LIMITED_USER: []}).items()
        }
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self._tokens: dict[str, str] = {}
        self._processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = Path()
        self.url = ""
        self.port = 0

    # -- public API -----------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (group system:masters)."""
        return self.kubeconfig_for(ADMIN_USER)

    @property
    def limited_kubeconfig(self) -> Path:
        """The kubeconfig of ``kfkit-limited``, who may do nothing until a test grants it."""
        return self.kubeconfig_for(LIMITED_USER)

    def kubeconfig_for(self, user: str) -> Path:
        path = self.workdir / f"kubeconfig-{user}"
        if user not in self._tokens or not path.exists():
            raise KeyError(f"no such user on this server: {user}")
        return path

    def token_for(self, user: str) -> str:
        return self._tokens[user]

    @property
    def ca_file(self) -> Path:
        """The serving certificate bundle (its CA signs the serving certificate)."""
        return self.workdir / "certs" / "apiserver.crt"

    def __enter__(self) -> LocalApiServer:
        reason = apiserver_missing_reason()
        if reason:
            raise ApiServerError(reason)
        self._tmp = tempfile.TemporaryDirectory(prefix="kfkit-apiserver-")
        self.workdir = Path(self._tmp.name)
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    # -- start-up ---------------------------------------------------------------------------

    def _start(self) -> None:
        (self.workdir / "certs").mkdir()
        sa_key = self.workdir / "sa.key"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(sa_key), "2048"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        token_file = self._write_tokens()

        etcd_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn(
            "etcd",
            [
                str(find_tool("etcd")),
                "--name=kfkit",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=kfkit=http://127.0.0.1:{peer_port}",
                "--log-level=warn",
            ],
        )
        self._wait_http(f"{etcd_url}/health", context=None, token=None)

        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._spawn(
            "kube-apiserver",
            [
                str(find_tool("kube-apiserver")),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                "--insecure-port=0",
                f"--cert-dir={self.workdir / 'certs'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                f"--token-auth-file={token_file}",
                "--authorization-mode=RBAC",
                "--disable-admission-plugins=ServiceAccount",
                "--enable-priority-and-fairness=false",
                # Reach webhook services through their Endpoints (none here: calls fail fast)
                # rather than through DNS names, which may resolve to anything on this host.
                "--enable-aggregator-routing=true",
                "--profiling=false",
                "--logtostderr=true",
                "--v=1",
                *self.extra_args,
            ],
        )
        # The serving certificate appears once the server has generated it.
        self._wait_for(lambda: self.ca_file.exists(), "serving certificate")
        context = ssl.create_default_context(cafile=str(self.ca_file))
        self._wait_http(f"{self.url}/readyz", context=context, token=self._tokens[ADMIN_USER])
        for user in self._tokens:
            self._write_kubeconfig(user)

    def _write_tokens(self) -> Path:
        """A static token file: the admin in system:masters, then the limited users."""
        rows = [(ADMIN_USER, ["system:masters"]), *self.users.items()]
        lines = []
        for uid, (user, groups) in enumerate(rows, start=1):
            token = secrets.token_hex(16)
            self._tokens[user] = token
            lines.append(f'{token},{user},{uid},"{",".join(groups)}"')
        path = self.workdir / "tokens.csv"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    def _write_kubeconfig(self, user: str) -> None:
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kfkit-local",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": user, "user": {"token": self._tokens[user]}}],
            "contexts": [{"name": user, "context": {"cluster": "kfkit-local", "user": user}}],
            "current-context": user,
        }
        path = self.workdir / f"kubeconfig-{user}"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        # Both servers talk only over loopback and the (unroutable) service network: a proxy
        # from the environment would carry webhook calls off the machine.
        env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            env=env,
        )
        self._processes.append((name, process, log))

    def _check_alive(self) -> None:
        for name, process, _ in self._processes:
            if process.poll() is not None:
                raise ApiServerError(
                    f"{name} exited with status {process.returncode} during start-up:\n"
                    + self._log_tail(name)
                )

    def _log_tail(self, name: str, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            text = (self.workdir / f"{name}.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"

    def _wait_for(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if ready():
                return
            time.sleep(0.2)
        tails = "\n".join(f"--- {name}:\n{self._log_tail(name)}" for name, _, _ in self._processes)
        raise ApiServerError(f"{what} not ready after {self.startup_timeout:.0f}s:\n{tails}")

    def _wait_http(self, url: str, *, context: ssl.SSLContext | None, token: str | None) -> None:
        def ok() -> bool:
            request = urllib.request.Request(url)
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(request, context=context, timeout=5) as response:
                    return bool(response.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        self._wait_for(ok, url)

    # -- shutdown ---------------------------------------------------------------------------

    def _stop(self) -> None:
        """Stop the API server first (it writes to etcd), then etcd; reap both."""
        for _name, process, log in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=15)
            log.close()
        self._processes.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


@contextlib.contextmanager
def local_apiserver(**kwargs: Any) -> Iterator[LocalApiServer]:
    """``with local_apiserver() as server:`` — the same as ``with LocalApiServer():``."""
    with LocalApiServer(**kwargs) as server:
        yield server
