"""Connecting to a cluster, and turning what goes wrong there into one-line errors.

A :class:`Connection` holds two API clients built from the same configuration:
``api`` for every ordinary call, and ``apply_api`` whose requests carry the
``application/apply-patch+yaml`` content type, because the generated
``CustomObjectsApi.patch_*`` methods always send a merge patch and the client's
default headers are the one place that overrides it.

The configuration comes, in this order, from an explicit ``kubeconfig`` or
``context``, from the pod's service account when running in a pod, and from
``$KUBECONFIG`` or ``~/.kube/config`` otherwise — the order ``kubectl`` and the
training SDK use.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from kfkit.errors import KfkitError, NotFoundError, ValidationError

# Every request has a bounded connect and read time (watches and log streams set their own).
REQUEST_TIMEOUT = (10.0, 60.0)
FIELD_MANAGER = "kfkit"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ForbiddenError(KfkitError):
    """The API server (RBAC) refused a request."""


class ConflictError(KfkitError):
    """The object exists already, or another field manager owns a field."""


class ServerUnreachableError(KfkitError):
    """No answer from the API server at all."""


@dataclass
class Connection:
    """The API clients of one kubeconfig context (or of the pod's service account)."""

    api: client.ApiClient
    apply_api: client.ApiClient
    host: str
    context: str | None
    namespace: str

    def describe(self) -> str:
        """``https://host:6443 (context kind-kfkit)`` — how errors name the cluster."""
        return f"{self.host} (context {self.context})" if self.context else self.host


def running_in_pod() -> bool:
    """True inside a pod whose service account token is mounted."""
    return (
        "KUBERNETES_SERVICE_HOST" in os.environ
        and Path(config.incluster_config.SERVICE_TOKEN_FILENAME).exists()
    )


def default_kubeconfig() -> Path | None:
    """The kubeconfig kubectl would read: the first file of ``$KUBECONFIG``, else
    ``~/.kube/config``; None when there is none."""
    paths = os.environ.get("KUBECONFIG") or "~/.kube/config"
    found = [Path(p).expanduser() for p in paths.split(os.pathsep) if p]
    return next((path for path in found if path.is_file()), None)


def _default_kubeconfig_exists() -> bool:
    return default_kubeconfig() is not None


def connect(
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    client_configuration: client.Configuration | None = None,
) -> Connection:
    """Build the clients; a missing or broken kubeconfig is a one-line ``KfkitError``.

    A ``client_configuration`` given (host and credentials already set, as the
    training SDK accepts) is used as it is, in namespace ``default``.
    """
    if client_configuration is not None:
        return _connection(copy.copy(client_configuration), None, "default")
    if kubeconfig is not None and not Path(kubeconfig).is_file():
        raise KfkitError(f"--kubeconfig {kubeconfig}: no such file")
    configuration = client.Configuration()
    namespace = "default"
    context_name: str | None = None
    try:
        if kubeconfig is None and context is None and running_in_pod():
            config.load_incluster_config(client_configuration=configuration)
            if IN_CLUSTER_NAMESPACE_FILE.exists():
                namespace = IN_CLUSTER_NAMESPACE_FILE.read_text().strip() or namespace
        else:
            if kubeconfig is None and not _default_kubeconfig_exists():
                raise KfkitError(
                    "no kubeconfig: neither $KUBECONFIG nor ~/.kube/config exists and this is "
                    "not a pod; pass --kubeconfig (or create a cluster, e.g. kind create cluster)"
                )
            # $KUBECONFIG is read now (the client reads it once, when imported).
            config_file = str(kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config")
            config.load_kube_config(
                config_file=config_file,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
            contexts, current = config.list_kube_config_contexts(config_file)
            chosen = next((c for c in contexts if c["name"] == context), current)
            context_name = chosen["name"]
            namespace = chosen.get("context", {}).get("namespace") or namespace
    except ConfigException as error:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "kubeconfig"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "invalid"
        raise KfkitError(f"{where}: {first_line}") from None
    except OSError as error:
        raise KfkitError(f"--kubeconfig {kubeconfig}: cannot read: {error.strerror}") from None

    return _connection(configuration, context_name, namespace)


def _connection(
    configuration: client.Configuration, context_name: str | None, namespace: str
) -> Connection:
    # One retry of a failed connection, not urllib3's three: an unreachable server is
    # reported in seconds. Watches and log streams resume on their own.
    configuration.retries = 1
    apply_api = client.ApiClient(configuration)
    apply_api.set_default_header("Content-Type", APPLY_CONTENT_TYPE)
    return Connection(
        api=client.ApiClient(configuration),
        apply_api=apply_api,
        host=str(configuration.host),
        context=context_name,
        namespace=namespace,
    )


def status_message(error: ApiException) -> str:
    """The server's own one-line explanation (``Status.message``), else the HTTP reason."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"]).replace("\n", " ")
    return f"{error.status} {error.reason}".strip()


def unreachable_reason(error: BaseException) -> str:
    """A short cause for a failed connection: refused, timed out, TLS, name lookup."""
    cause: Any = getattr(error, "reason", None) or error
    text = str(cause)
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(cause, urllib3.exceptions.TimeoutError) or "timed out" in text:
        return "timed out"
    if isinstance(cause, urllib3.exceptions.SSLError) or "SSL" in text or "certificate" in text:
        return "TLS handshake failed (wrong CA or server?)"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name not found"
    return text.splitlines()[0] if text else type(cause).__name__


def translate(error: ApiException, what: str, connection: Connection) -> KfkitError:
    """An ``ApiException`` as the ``KfkitError`` a user can act on."""
    message = status_message(error)
    if error.status == 401:
        return KfkitError(
            f"{what}: unauthorized on {connection.describe()}: the credentials in your "
            "kubeconfig were rejected (expired token?)"
        )
    if error.status == 403:
        return ForbiddenError(f"{what}: forbidden: {message}")
    if error.status == 404:
        return NotFoundError(f"{what}: not found: {message}")
    if error.status == 409:
        return ConflictError(f"{what}: conflict: {message}")
    if error.status == 422:
        return KfkitError(f"{what}: rejected by the API server: {message}")
    return KfkitError(f"{what}: the API server answered {error.status}: {message}")


@contextlib.contextmanager
def api_errors(connection: Connection, what: str) -> Iterator[None]:
    """Run API calls, raising ``KfkitError`` one-liners instead of client exceptions.

    ``what`` names the operation (``create PyTorchJob default/mnist``). Callers
    that treat a status specially (404 on ``get``, 410 on a watch) catch
    ``ApiException`` inside the block themselves.
    """
    try:
        yield
    except ApiException as error:
        if not error.status:  # the client's own failure to connect (TLS, mostly)
            reason = str(error.reason or "")
            if "SSL" in reason or "certificate" in reason:
                reason = "TLS handshake failed (wrong CA or server?)"
            raise ServerUnreachableError(
                f"{what}: cannot reach the Kubernetes API server {connection.describe()}: "
                f"{reason.strip().splitlines()[0] if reason.strip() else 'no answer'}"
            ) from None
        raise translate(error, what, connection) from None
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as error:
        raise ServerUnreachableError(
            f"{what}: cannot reach the Kubernetes API server {connection.describe()}: "
            f"{unreachable_reason(error)}; is the cluster running, and are --kubeconfig and "
            "--context right?"
        ) from None


def read_json(response: Any) -> Any:
    """The body of a ``_preload_content=False`` response as plain JSON (camelCase keys)."""
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


def discard(response: Any) -> None:
    """Read and drop a ``_preload_content=False`` body, so its connection can be reused."""
    try:
        response.data  # noqa: B018 - reading the body is the point
    finally:
        response.release_conn()


def with_source(error: KfkitError, source: str) -> KfkitError:
    """The same error, each line prefixed with the file it is about (``FILE: ...``)."""
    if isinstance(error, ValidationError):
        return ValidationError(f"{source}: {line}" for line in error.lines())
    return type(error)(f"{source}: {error.message}")
