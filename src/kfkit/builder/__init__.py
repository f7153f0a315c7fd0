"""Container builder: notebook or directory → build context on a PVC → Kaniko Job.

Use from a notebook::

    from kfkit.builder import BuildConfig, build_image

    build_image(BuildConfig(
        source=Path("train.ipynb"), image="registry.example.org/team/mnist", tag="v1",
        base_image="tensorflow/tensorflow:2.16.1", pvc_name="shared-workspace",
        pvc_mount_path=Path("/home/jovyan/shared"), registry_secret="regcred",
    ))
"""

from kfkit.builder.build import BuildConfig, BuildResult, ContainerBuilder, build_image

__all__ = ["BuildConfig", "BuildResult", "ContainerBuilder", "build_image"]
