"""A job from a Python function or an image, built exactly as kubeflow-training 1.9.4 builds it.

``create_job(train_func=..., num_workers=N)`` in the SDK turns the function's
source into a ``bash -c`` script (written to a temporary file and run with
``python -u``, or ``torchrun`` when a PyTorchJob has more than one worker or
``num_procs_per_worker``), puts it in one container named after the kind's
container (``pytorch``, ``tensorflow``), and makes a Master plus
``num_workers - 1`` Workers (PyTorchJob) or ``num_workers`` Workers with
optional Chief and PS (TFJob). The SDK's own helpers do each step here, so
the generated object is the SDK's, field for field; this module only holds
the order of the checks and the choice of entrypoint, which the SDK keeps in
``create_job`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubeflow.training.constants import constants
from kubeflow.training.utils import utils

from kfkit.client.errors import ClientValueError


def job_from_function(
    *,
    name: str | None,
    namespace: str,
    job_kind: str,
    labels: dict[str, str] | None,
    annotations: dict[str, str] | None,
    base_image: str | None,
    train_func: Callable[..., Any] | None,
    parameters: dict[str, Any] | None,
    num_workers: int | None,
    num_procs_per_worker: int | str | None,
    resources_per_worker: Any,
    num_chief_replicas: int | None,
    num_ps_replicas: int | None,
    packages_to_install: list[str] | None,
    pip_index_url: str,
    env_vars: Any,
    volumes: Any,
    volume_mounts: Any,
) -> Any:
    """The SDK's job model (``KubeflowOrgV1PyTorchJob``/``KubeflowOrgV1TFJob``) for the call."""
    if name is None:
        raise ClientValueError("name: Job name must be set to configure Job from function or image")
    if num_workers is None or num_workers < 1:
        raise ClientValueError(f"num_workers: At least one Worker for {job_kind} must be set")
    image = base_image or str(constants.JOB_PARAMETERS[job_kind]["base_image"])
    command, args = None, None
    if train_func is not None:
        torchrun = job_kind == constants.PYTORCHJOB_KIND and (
            num_workers > 1 or num_procs_per_worker is not None
        )
        try:
            command, args = utils.get_command_using_train_func(
                train_func=train_func,
                entrypoint=constants.ENTRYPOINT_TORCH if torchrun else constants.ENTRYPOINT_PYTHON,
                train_func_parameters=parameters,
                packages_to_install=packages_to_install,
                pip_index_url=pip_index_url,
            )
        except (OSError, TypeError) as error:  # inspect.getsource: a builtin, a lambda in a REPL
            raise ClientValueError(f"train_func: its source cannot be read: {error}") from None
        except ValueError as error:
            raise ClientValueError(f"train_func: {error}") from None
    container = utils.get_container_spec(
        name=constants.JOB_PARAMETERS[job_kind]["container"],
        base_image=image,
        command=command,
        args=args,
        resources=resources_per_worker,
        env_vars=env_vars,
        volume_mounts=volume_mounts,
    )
    template = utils.get_pod_template_spec(containers=[container], volumes=volumes)
    if job_kind == constants.TFJOB_KIND:
        if num_procs_per_worker is not None:
            raise ClientValueError(f"num_procs_per_worker: can't be set for {constants.TFJOB_KIND}")
        return utils.get_tfjob_template(
            name=name,
            namespace=namespace,
            labels=labels,
            annotations=annotations,
            pod_template_spec=template,
            num_workers=num_workers,
            num_chief_replicas=num_chief_replicas,
            num_ps_replicas=num_ps_replicas,
        )
    if num_chief_replicas is not None or num_ps_replicas is not None:
        raise ClientValueError(
            f"num_chief_replicas, num_ps_replicas: can't be set for {constants.PYTORCHJOB_KIND}"
        )
    return utils.get_pytorchjob_template(
        name=name,
        namespace=namespace,
        labels=labels,
        annotations=annotations,
        worker_pod_template_spec=template,
        num_workers=num_workers,
        num_procs_per_worker=num_procs_per_worker,
    )
