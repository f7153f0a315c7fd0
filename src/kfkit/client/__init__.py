"""kfkit's Python API: the Kubeflow training SDK's ``TrainingClient`` on kfkit's backends.

:mod:`.training_client` holds the client, :mod:`.functions` builds jobs from
Python functions as the SDK does, :mod:`.models` turns kfkit's records into
the SDK's model objects, and :mod:`.errors` holds exceptions that are both
kfkit's one-line errors and the built-in types the SDK raises.
"""

from kfkit.client.errors import (
    ClientRuntimeError,
    ClientTimeoutError,
    ClientValueError,
    JobFailedError,
    JobNotFoundError,
    JobRejectedError,
    TrainNotSupportedError,
)
from kfkit.client.training_client import TrainingClient, job_from_manifest

__all__ = [
    "ClientRuntimeError",
    "ClientTimeoutError",
    "ClientValueError",
    "JobFailedError",
    "JobNotFoundError",
    "JobRejectedError",
    "TrainNotSupportedError",
    "TrainingClient",
    "job_from_manifest",
]
