"""PodDefaults: the settings a team agreed on, added to a pod when it is created.

On a cluster, Kubeflow's admission webhook applies every PodDefault of the pod's
namespace whose label selector matches the pod's labels. This package does the
same on a pod dict (a Pod, the pod a Notebook becomes, or a job replica's pod
template), so the local backend, ``kfkit poddefaults apply`` and the tests all
see what the cluster would create, or why it would refuse the pod:

- ``loading``: PodDefault files, checked as the API server checks them;
- ``selectors``: label selectors parsed and matched as the API machinery does;
- ``decoding``: values compared as the webhook's decoded Go structs compare;
- ``webhook``: matching, conflicts and the merge, as the v1.10 webhook does them;
- ``patch``: the webhook's JSON patch, and whether the API server can apply it;
- ``notebooks``: the pod the v1.10 notebook controller builds for a Notebook.
"""

from kfkit.poddefaults.loading import (
    API_VERSION,
    DEFAULT_NAMESPACE,
    KIND,
    PodDefault,
    load_poddefaults,
    validate_poddefault,
)
from kfkit.poddefaults.notebooks import notebook_pod, pod_of
from kfkit.poddefaults.selectors import selector_mismatch, selector_problems
from kfkit.poddefaults.webhook import (
    ANNOTATION_PREFIX,
    EXCLUDE_ANNOTATION,
    ISTIO_PROXY,
    MIRROR_ANNOTATION,
    Admission,
    Refused,
    admit,
    apply_poddefaults,
    explain,
    matching_poddefaults,
)

__all__ = [
    "ANNOTATION_PREFIX",
    "API_VERSION",
    "DEFAULT_NAMESPACE",
    "EXCLUDE_ANNOTATION",
    "ISTIO_PROXY",
    "KIND",
    "MIRROR_ANNOTATION",
    "Admission",
    "PodDefault",
    "Refused",
    "admit",
    "apply_poddefaults",
    "explain",
    "load_poddefaults",
    "matching_poddefaults",
    "notebook_pod",
    "pod_of",
    "selector_mismatch",
    "selector_problems",
    "validate_poddefault",
]
