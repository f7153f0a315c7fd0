"""Backends run jobs: ``local`` (processes on this machine) and ``kubernetes`` (a real cluster).

Both implement :class:`kfkit.backends.base.Backend`; pick one with :func:`get_backend`.
"""

from __future__ import annotations

from kfkit.backends.base import Backend, JobRecord, JobStatus
from kfkit.errors import KfkitError

BACKENDS = ("local", "kubernetes")


def get_backend(name: str = "local", **options: object) -> Backend:
    """Return the backend called ``name``; options go to its constructor."""
    if name == "local":
        from kfkit.backends.local import LocalBackend

        return LocalBackend(**options)  # type: ignore[arg-type]
    if name == "kubernetes":
        from kfkit.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(**options)
    raise KfkitError(f"--backend: unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "JobRecord", "JobStatus", "get_backend"]
