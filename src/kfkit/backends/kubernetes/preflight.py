"""Checks made before anything is created on a cluster, each with an error a user can act on.

1. The API server answers and serves the resource (its CRD is installed):
   discovery (``/apis/<group>/<version>``), which every authenticated user may read.
2. The namespace exists (when the user may read namespaces at all).
3. The user may create and patch the resource there: a SelfSubjectAccessReview
   per verb, since a server-side apply is a PATCH that may create.

Results are remembered per backend, so submitting ten jobs asks once.
"""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.rest import ApiException

from kfkit.backends.kubernetes.connection import (
    REQUEST_TIMEOUT,
    Connection,
    ForbiddenError,
    api_errors,
    discard,
    read_json,
)
from kfkit.backends.kubernetes.objects import crd_missing
from kfkit.backends.kubernetes.resources import Resource
from kfkit.errors import KfkitError

APPLY_VERBS = ("create", "patch")


class Preflight:
    """Remembered answers about one cluster: served resources, namespaces, permissions."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._served: dict[str, set[str]] = {}
        self._namespaces: set[str] = set()
        self._allowed: set[tuple[str, str, str]] = set()

    def served(self, resource: Resource) -> bool:
        """Whether the cluster serves ``resource`` (its CRD is installed and established)."""
        if resource.api_version not in self._served:
            api = client.CustomObjectsApi(self.connection.api)
            with api_errors(self.connection, f"discover {resource.api_version}"):
                try:
                    body = read_json(
                        api.get_api_resources(
                            resource.group,
                            resource.version,
                            _preload_content=False,
                            _request_timeout=REQUEST_TIMEOUT,
                        )
                    )
                except ApiException as error:
                    if error.status != 404:
                        raise
                    body = {}
            self._served[resource.api_version] = {
                r["name"] for r in body.get("resources") or [] if "/" not in r["name"]
            }
        return resource.plural in self._served[resource.api_version]

    def require_served(self, resource: Resource) -> None:
        if not self.served(resource):
            raise crd_missing(resource, self.connection)

    def require_namespace(self, namespace: str) -> None:
        if namespace in self._namespaces:
            return
        core = client.CoreV1Api(self.connection.api)
        try:
            with api_errors(self.connection, f"namespace {namespace}"):
                try:
                    discard(
                        core.read_namespace(
                            namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                        )
                    )
                except ApiException as error:
                    if error.status != 404:
                        raise
                    raise KfkitError(
                        f"namespace {namespace!r} does not exist on "
                        f"{self.connection.describe()}: create it "
                        f"(kubectl create namespace {namespace}) or pass another --namespace"
                    ) from None
        except ForbiddenError:
            pass  # may not read namespaces: the access review below still answers
        self._namespaces.add(namespace)

    def require_allowed(
        self, resource: Resource, namespace: str, verbs: tuple[str, ...] = APPLY_VERBS
    ) -> None:
        authorization = client.AuthorizationV1Api(self.connection.api)
        for verb in verbs:
            key = (resource.crd_name, namespace, verb)
            if key in self._allowed:
                continue
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "group": resource.group,
                        "resource": resource.plural,
                        "verb": verb,
                        "namespace": namespace,
                    }
                },
            }
            with api_errors(self.connection, f"access review ({verb} {resource.crd_name})"):
                status = (
                    read_json(
                        authorization.create_self_subject_access_review(
                            review, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                        )
                    ).get("status")
                    or {}
                )
            if not status.get("allowed"):
                why = (
                    status.get("reason")
                    or status.get("evaluationError")
                    or "no RBAC rule allows it"
                )
                raise ForbiddenError(
                    f"forbidden: your credentials on {self.connection.describe()} may not {verb} "
                    f"{resource.crd_name} in namespace {namespace!r} ({why}); ask a cluster "
                    f"admin for a Role granting {', '.join(verbs)} on {resource.plural}"
                )
            self._allowed.add(key)

    def check(
        self, resource: Resource, namespace: str, verbs: tuple[str, ...] = APPLY_VERBS
    ) -> None:
        """All three checks, in the order their fixes are needed."""
        self.require_served(resource)
        self.require_namespace(namespace)
        self.require_allowed(resource, namespace, verbs)
