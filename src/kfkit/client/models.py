"""The training SDK's model objects from kfkit's records, and plain dicts from them.

``get_job`` and friends return what kubeflow-training 1.9.4 returns
(``KubeflowOrgV1PyTorchJob``, ``V1JobCondition``, ``V1Pod``...), built by the
SDK's own deserializer from the object as stored: the API server's object on
a cluster, the saved manifest and ``status.json`` locally.
"""

from __future__ import annotations

import copy
from typing import Any

from kubeflow.training import ApiClient
from kubeflow.training.constants import constants
from kubeflow.training.utils.utils import FakeResponse

from kfkit.backends.base import CREATED, JobRecord

_API = ApiClient()


def to_dict(model: Any) -> Any:
    """A model (or a dict holding models) as the API's JSON, camelCase keys, no Nones."""
    return _API.sanitize_for_serialization(model)


def from_dict(obj: dict[str, Any], model: str) -> Any:
    """The SDK model called ``model`` (``"V1Pod"``, ``"KubeflowOrgV1TFJob"``) from API JSON."""
    return _API.deserialize(FakeResponse(obj), model)


def job_model_name(kind: str) -> str:
    return str(constants.JOB_PARAMETERS[kind]["model"])


def stored_object(record: JobRecord) -> dict[str, Any]:
    """The job as its store keeps it: the API object, or the local manifest with its status.

    A local job has no server to stamp ``creationTimestamp``; it is the time of
    its Created condition, the moment ``submit`` wrote it.
    """
    if record.stored is not None:
        # A job applied as written lacks the fields the operator's controller
        # defaults in memory (``runPolicy``...), which the SDK's models require:
        # read it with those defaults, as the controller does.
        return {**record.stored, "spec": copy.deepcopy(record.job.manifest["spec"])}
    obj = copy.deepcopy(record.job.manifest)
    obj["status"] = copy.deepcopy(record.status.raw)
    created = record.status.condition(CREATED) or {}
    metadata = obj.setdefault("metadata", {})
    if created.get("lastTransitionTime"):
        metadata.setdefault("creationTimestamp", created["lastTransitionTime"])
    return obj


def job_model(record: JobRecord) -> Any:
    """The record as the SDK's job model of its kind."""
    return from_dict(stored_object(record), job_model_name(record.job.kind))
