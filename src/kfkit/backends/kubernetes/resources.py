"""The custom resources kfkit reads and writes on a cluster, and the operator's pod labels.

The label keys are the training operator's (v1.9, ``kubeflow.org/v1``
constants): every replica pod it creates carries the job's name, the replica
type in lower case (``master``, ``worker``, ``ps``) and the replica index.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfkit.errors import KfkitError
from kfkit.jobs.model import PYTORCH_JOB, TF_JOB

JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"
JOB_ROLE_LABEL = "training.kubeflow.org/job-role"
OPERATOR_NAME_LABEL = "training.kubeflow.org/operator-name"

# What to run when a CRD is missing: the chart installs the operator and its CRDs.
INSTALL_HINT = (
    "run `kfkit platform upgrade` (helm upgrade --install kubeflowinstaller "
    "charts/kubeflow-platform -n kubeflow) first"
)


@dataclass(frozen=True)
class Resource:
    """A namespaced custom resource: where the API serves it."""

    kind: str
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        """The CustomResourceDefinition's name, e.g. ``pytorchjobs.kubeflow.org``."""
        return f"{self.plural}.{self.group}"


PYTORCHJOBS = Resource(PYTORCH_JOB, "kubeflow.org", "v1", "pytorchjobs")
TFJOBS = Resource(TF_JOB, "kubeflow.org", "v1", "tfjobs")
NOTEBOOKS = Resource("Notebook", "kubeflow.org", "v1", "notebooks")
PODDEFAULTS = Resource("PodDefault", "kubeflow.org", "v1alpha1", "poddefaults")

JOB_RESOURCES: dict[str, Resource] = {r.kind: r for r in (PYTORCHJOBS, TFJOBS)}


def job_resource(kind: str) -> Resource:
    """The resource of a job kind; an unknown kind is the user's error."""
    try:
        return JOB_RESOURCES[kind]
    except KeyError:
        raise KfkitError(
            f"job kind {kind!r} is not supported (expected one of {', '.join(JOB_RESOURCES)})"
        ) from None


def job_selector(job_name: str) -> str:
    """The label selector of every pod of one job."""
    return f"{JOB_NAME_LABEL}={job_name}"


def replica_selector(job_name: str, replica_type: str, index: int) -> str:
    """The label selector of one replica's pod."""
    return (
        f"{JOB_NAME_LABEL}={job_name},{REPLICA_TYPE_LABEL}={replica_type.lower()},"
        f"{REPLICA_INDEX_LABEL}={index}"
    )
