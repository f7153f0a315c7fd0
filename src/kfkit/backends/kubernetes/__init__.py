"""The kubernetes backend: jobs, notebooks and PodDefaults on a real cluster.

``KubernetesBackend`` implements :class:`kfkit.backends.base.Backend` with the
official ``kubernetes`` client; the training operator on the cluster does the
running. The modules, each with one job:

- ``connection``: kubeconfig / in-cluster configuration, API errors as one-liners;
- ``resources``: the custom resources and the operator's pod labels;
- ``preflight``: CRD served, namespace exists, create/patch allowed;
- ``objects``: server-side apply, get, list, delete of custom objects;
- ``watch``: list-then-watch with deadlines, reconnection and 410 recovery;
- ``pods``: replica pods, their state and their logs;
- ``events``: the Events of a job and of its pods;
- ``notebooks``: Notebooks (apply, wait until ready) and PodDefaults.
"""

from kfkit.backends.kubernetes.backend import KubernetesBackend
from kfkit.backends.kubernetes.notebooks import ClusterNotebooks

__all__ = ["ClusterNotebooks", "KubernetesBackend"]
