"""Container builder: notebook or directory → build context on a PVC → Kaniko Job.

Use from a notebook::

    from kfkit.builder import BuildConfig, build_image

    build_image(BuildConfig(
        source=Path("train.ipynb"), image="registry.example.org/team/mnist", tag="v1",
        base_image="tensorflow/tensorflow:2.16.1", pvc_name="shared-workspace",
        pvc_mount_path=Path("/home/jovyan/shared"), registry_secret="regcred",
    ))

The names below are loaded on first use, so the pure-Python parts (``kaniko``,
``context``, ``preprocess``) import without rich or the Kubernetes client; the
fairing plug-in relies on that inside fairing's own environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kfkit.builder.build import BuildConfig, BuildResult, ContainerBuilder, build_image

__all__ = ["BuildConfig", "BuildResult", "ContainerBuilder", "build_image"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kfkit.builder import build

        return getattr(build, name)
    raise AttributeError(f"module 'kfkit.builder' has no attribute {name!r}")
