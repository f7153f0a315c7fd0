"""Load, default and validate PyTorchJob/TFJob manifests into :class:`Job` objects."""

from kfkit.jobs.model import KINDS, PYTORCH_JOB, TF_JOB, Job, JobKind, Replica, ReplicaSpec

__all__ = ["KINDS", "PYTORCH_JOB", "TF_JOB", "Job", "JobKind", "Replica", "ReplicaSpec"]
