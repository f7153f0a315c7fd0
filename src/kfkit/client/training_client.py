"""``TrainingClient``: kubeflow-training 1.9.4's client, on kfkit's local or kubernetes backend.

Every method but ``train`` has the SDK's signature, defaults, return types and
exception types, so code written for the SDK runs by changing its import::

    from kfkit.client import TrainingClient      # was: from kubeflow.training import ...

    def train(parameters):
        print("lr", parameters["lr"])

    client = TrainingClient()                     # $KFKIT_BACKEND, else local
    client.create_job(name="hello", train_func=train, parameters={"lr": 0.1}, num_workers=2)
    client.wait_for_job_conditions("hello", polling_interval=1)
    logs, _ = client.get_job_logs("hello")

The backend is the keyword-only ``backend=``: ``"local"``, ``"kubernetes"``
or a backend object. Jobs go through kfkit's admission (the API server's and
the operator webhook's checks, the operator's defaults) before anything is
created, on both backends. Where kfkit differs from the SDK, docs/kubernetes.md
lists it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubeflow.training import ApiClient
from kubeflow.training.constants import constants
from kubeflow.training.utils import utils
from kubernetes import client

from kfkit.backends import Backend, JobRecord, get_backend
from kfkit.backends.base import FAILED
from kfkit.client.errors import (
    ClientRuntimeError,
    ClientTimeoutError,
    ClientValueError,
    JobFailedError,
    JobNotFoundError,
    JobRejectedError,
    TrainNotSupportedError,
)
from kfkit.client.functions import job_from_function
from kfkit.client.models import from_dict, job_model, job_model_name, to_dict
from kfkit.errors import KfkitError, NotFoundError, ValidationError
from kfkit.jobs.load import load_jobs, load_manifest
from kfkit.jobs.model import KINDS, Job

# What a job passed as ``job=`` may be: the SDK's model, or (kfkit's additions) a
# manifest dict, a manifest file or a loaded Job.
JobInput = Any
TRAIN_UNSUPPORTED = (
    "train: LLM fine-tuning (storage initializer, Hugging Face trainer, PVCs) is not part of "
    "kfkit; build the job with create_job(train_func=...) or a manifest"
)
PACKAGES_UNSUPPORTED = (
    "packages_to_install: the local backend runs the function with the image's local "
    "interpreter and installs nothing; install the packages into it (see the local "
    "backend's images: config) or create the job on a cluster"
)
# Arguments ``create_job`` takes with ``job=`` (any other must be None), as the SDK checks.
WITH_JOB_ALLOWED = ("namespace", "pip_index_url", "num_workers", "labels", "annotations")
QUEUE_LABEL = constants.LOCAL_QUEUE_LABEL


def job_from_manifest(manifest: dict[str, Any], source: str = "<manifest>") -> Job:
    """Check, default and admit one manifest dict exactly as ``kfkit run`` does a file."""
    return load_manifest(manifest, source)


def _within(timeout: float, what: str, call: Callable[[], Any]) -> Any:
    """``call()``, or ``TimeoutError`` after ``timeout`` seconds, as the SDK's requests.

    The SDK runs each request on a thread pool and waits ``timeout`` for it; a
    late answer is dropped. Here the call runs on a daemon thread, likewise.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name=f"kfkit-client {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ClientTimeoutError(f"Timeout to {what}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@contextlib.contextmanager
def _failing(what: str) -> Iterator[None]:
    """kfkit's errors as the SDK's: ``Failed to <what>. Error: <kfkit's one line>``."""
    try:
        yield
    except (ClientValueError, ClientRuntimeError, ClientTimeoutError, JobNotFoundError):
        raise
    except (JobRejectedError, JobFailedError):
        raise
    except ValidationError as error:
        raise JobRejectedError(error.lines()) from None
    except NotFoundError as error:
        raise JobNotFoundError(f"Failed to {what}. Error: {error}") from None
    except KfkitError as error:
        raise ClientRuntimeError(f"Failed to {what}. Error: {error}") from None


def _check_kind(job_kind: str) -> str:
    """The SDK's check of ``job_kind``, then kfkit's: it runs PyTorchJob and TFJob."""
    if job_kind not in constants.JOB_PARAMETERS:
        raise ClientValueError(
            f"job_kind: Job kind must be one of these: {list(constants.JOB_PARAMETERS)}"
        )
    if job_kind not in KINDS:
        raise ClientValueError(f"job_kind: {job_kind}: kfkit runs {' and '.join(KINDS)} only")
    return job_kind


def _event_line(event: dict[str, Any]) -> str:
    """An event as the SDK lists it: ``2024-05-01 12:00:00 <message>``."""
    stamp = str(event.get("time") or "")
    with contextlib.suppress(ValueError):
        stamp = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
    return f"{stamp} {event.get('message', '')}"


class TrainingClient:
    """The Kubeflow training SDK's ``TrainingClient`` (1.9.4), over a kfkit backend."""

    def __init__(
        self,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        namespace: str | None = None,
        job_kind: str = constants.PYTORCHJOB_KIND,
        *,
        backend: str | Backend | None = None,
    ) -> None:
        """Connect to a backend; nothing is requested yet.

        ``backend`` defaults to ``$KFKIT_BACKEND``; without it, the cluster when
        ``config_file``, ``context`` or ``client_configuration`` is given (what
        they are for), else the local backend. ``namespace`` defaults, as the
        SDK's, to the kubeconfig context's (or the pod's) namespace on a
        cluster, else ``default``; the SDK reads it once when imported, kfkit
        from the kubeconfig this client uses.
        """
        cluster_options = {
            "kubeconfig": config_file,
            "context": context,
            "client_configuration": client_configuration,
        }
        given = {key: value for key, value in cluster_options.items() if value is not None}
        if backend is None:
            backend = os.environ.get("KFKIT_BACKEND") or ("kubernetes" if given else "local")
        if isinstance(backend, str):
            if backend != "kubernetes" and given:
                flags = {"kubeconfig": "config_file"}
                names = ", ".join(flags.get(key, key) for key in given)
                raise ClientValueError(f"{names}: only the kubernetes backend takes them")
            self.backend: Backend = get_backend(backend, **given)
        else:
            self.backend = backend
        self.namespace = namespace or str(getattr(self.backend, "default_namespace", "default"))
        self.job_kind = _check_kind(job_kind)
        # The SDK's attributes: its (de)serializer, and on a cluster the Kubernetes APIs.
        self.api_client = ApiClient()
        connection = getattr(self.backend, "connection", None)
        api = getattr(connection, "api", None)
        self.custom_api = client.CustomObjectsApi(api) if api is not None else None
        self.core_api = client.CoreV1Api(api) if api is not None else None

    # --- records (kfkit's view), shared by the SDK-shaped methods -----------------------

    def _record(self, name: str, namespace: str, job_kind: str, timeout: float) -> JobRecord:
        what = f"get {job_kind}: {namespace}/{name}"
        with _failing(what):
            record: JobRecord = _within(
                timeout, what, lambda: self.backend.get(name, namespace, job_kind)
            )
            return record

    # --- create -----------------------------------------------------------------------------

    def train(
        self,
        name: str,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        num_workers: int = 1,
        num_procs_per_worker: int = 1,
        resources_per_worker: Any = None,
        model_provider_parameters: Any = None,
        dataset_provider_parameters: Any = None,
        trainer_parameters: Any = None,
        init_env_vars: Any = None,
        env_vars: Any = None,
        storage_config: dict[str, Any] = {  # noqa: B006 - the SDK's default, never mutated here
            "size": constants.PVC_DEFAULT_SIZE,
            "storage_class": None,
            "access_modes": constants.PVC_DEFAULT_ACCESS_MODES,
        },
        queue_name: str | None = None,
    ) -> None:
        """Not offered: the SDK's LLM fine-tuning needs its storage initializer and trainer."""
        raise TrainNotSupportedError(TRAIN_UNSUPPORTED)

    def create_job(
        self,
        job: JobInput = None,
        name: str | None = None,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        job_kind: str | None = None,
        base_image: str | None = None,
        train_func: Callable[..., Any] | None = None,
        parameters: dict[str, Any] | None = None,
        num_workers: int | None = 1,
        num_procs_per_worker: int | str | None = None,
        resources_per_worker: Any = None,
        num_chief_replicas: int | None = None,
        num_ps_replicas: int | None = None,
        packages_to_install: list[str] | None = None,
        pip_index_url: str = constants.DEFAULT_PIP_INDEX_URL,
        env_vars: Any = None,
        queue_name: str | None = None,
        volumes: list[Any] | None = None,
        volume_mounts: list[Any] | None = None,
    ) -> None:
        """Create a job from ``job`` (an SDK model; or a manifest dict, file or ``Job``), or
        from ``train_func``/``base_image`` and ``num_workers``, as the SDK does.

        Raises ``ValueError`` for arguments the SDK rejects, ``RuntimeError``
        when the job is refused (kfkit's admission, one line per problem) or
        already exists, ``TimeoutError`` never (no request is left waiting).
        """
        if job is not None:
            given = {
                "name": name,
                "job_kind": job_kind,
                "base_image": base_image,
                "train_func": train_func,
                "parameters": parameters,
                "num_procs_per_worker": num_procs_per_worker,
                "resources_per_worker": resources_per_worker,
                "num_chief_replicas": num_chief_replicas,
                "num_ps_replicas": num_ps_replicas,
                "packages_to_install": packages_to_install,
                "env_vars": env_vars,
                "volumes": volumes,
                "volume_mounts": volume_mounts,
            }
            for key, value in given.items():
                if value is not None:
                    raise ClientValueError(
                        f"{key}: If `job` is set only `namespace`, `labels`, and `annotations` "
                        f"arguments are allowed. Argument `{key}` must be None."
                    )
        namespace = namespace or self.namespace
        kind = _check_kind(str(_kind_of(job) or job_kind or self.job_kind))
        if len(volumes or []) != len(volume_mounts or []):
            raise ClientValueError(
                "volumes, volume_mounts: Volumes and VolumeMounts must be the same length: "
                f"{len(volumes or [])} vs. {len(volume_mounts or [])}"
            )
        if job is None and (train_func is not None or base_image is not None):
            if packages_to_install is not None and self.backend.name == "local":
                raise ClientValueError(PACKAGES_UNSUPPORTED)
            job = job_from_function(
                name=name,
                namespace=namespace,
                job_kind=kind,
                labels=labels,
                annotations=annotations,
                base_image=base_image,
                train_func=train_func,
                parameters=parameters,
                num_workers=num_workers,
                num_procs_per_worker=num_procs_per_worker,
                resources_per_worker=resources_per_worker,
                num_chief_replicas=num_chief_replicas,
                num_ps_replicas=num_ps_replicas,
                packages_to_install=packages_to_install,
                pip_index_url=pip_index_url,
                env_vars=env_vars,
                volumes=volumes,
                volume_mounts=volume_mounts,
            )
        if job is None:
            raise ClientValueError(
                f"job: Job must be one of these types: {constants.JOB_MODELS}, but Job is: "
                f"{type(job)}"
            )
        loaded = self._load(job, namespace, kind)
        if len(loaded) != 1:
            raise ClientValueError(
                f"job: {job} holds {len(loaded)} jobs; create_job takes one (use create_jobs)"
            )
        one = loaded[0]
        what = f"create {one.kind}: {one.namespace}/{one.name}"
        with _failing(what):
            if queue_name and queue_name.strip():  # the SDK labels the job for Kueue
                metadata = one.manifest["metadata"]
                metadata["labels"] = {**(metadata.get("labels") or {}), QUEUE_LABEL: queue_name}
                one = job_from_manifest(one.manifest, one.source)  # the label is checked too
            try:
                self.backend.get(one.name, one.namespace, one.kind)
            except NotFoundError:
                pass
            else:
                raise ClientRuntimeError(f"Failed to {what}. Error: it already exists")
            self._submit([one])

    def _load(self, job: JobInput, namespace: str, kind: str) -> list[Job]:
        """Admitted jobs from any ``job=`` form; a model must be of ``kind``, as in the SDK."""
        if isinstance(job, Job):
            return [job]
        if isinstance(job, str | Path):
            with _failing(f"create {kind}s from {job}"):
                return load_jobs([job])
        if isinstance(job, dict):
            manifest = dict(job)
        elif type(job).__name__ == job_model_name(kind) and hasattr(job, "to_dict"):
            manifest = to_dict(job)
        else:
            raise ClientValueError(
                f"job: Job must be one of these types: {constants.JOB_MODELS}, but Job is: "
                f"{type(job)}"
            )
        metadata = dict(manifest.get("metadata") or {})
        if metadata.get("namespace") not in (None, namespace):
            raise ClientRuntimeError(
                f"Failed to create {kind}: {namespace}/{metadata.get('name')}. Error: the "
                f"namespace of the job ({metadata['namespace']}) does not match the namespace "
                "of the request"
            )
        metadata["namespace"] = namespace
        manifest["metadata"] = metadata
        with _failing(f"create {kind}: {namespace}/{metadata.get('name')}"):
            return [job_from_manifest(manifest)]

    def _submit(self, jobs: list[Job]) -> list[JobRecord]:
        preflight = getattr(self.backend, "preflight", None)
        if preflight is not None:
            preflight(jobs)
        return [self.backend.submit(job) for job in jobs]

    def create_jobs(
        self, jobs: Job | dict[str, Any] | str | Path, namespace: str | None = None
    ) -> list[JobRecord]:
        """kfkit's addition: every job of a file or directory, all checked before any is created.

        Returns kfkit's records; a finished job of the same name is replaced,
        as ``kfkit run`` does.
        """
        if isinstance(jobs, Job):
            loaded = [jobs]
        elif isinstance(jobs, dict):
            loaded = self._load(jobs, namespace or self.namespace, str(jobs.get("kind")))
        else:
            loaded = load_jobs([jobs])
        if namespace is not None:
            for one in loaded:
                one.manifest["metadata"]["namespace"] = namespace
        return self._submit(loaded)

    # --- read -------------------------------------------------------------------------------

    def get_job(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> Any:
        """The job as the SDK's model of its kind (``KubeflowOrgV1PyTorchJob``...)."""
        kind = _check_kind(job_kind or self.job_kind)
        return job_model(self._record(name, namespace or self.namespace, kind, timeout))

    def list_jobs(
        self,
        namespace: str | None = None,
        job_kind: str | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[Any]:
        """Every job of one kind in one namespace, as the SDK's models."""
        namespace = namespace or self.namespace
        kind = _check_kind(job_kind or self.job_kind)
        what = f"list {kind}s in namespace: {namespace}"
        with _failing(what):
            records: list[JobRecord] = _within(timeout, what, lambda: self.backend.list(namespace))
        return [job_model(r) for r in records if r.job.kind == kind]

    def get_job_conditions(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[Any]:
        """The job's conditions as ``V1JobCondition`` models (``[]`` before the first)."""
        kind = _check_kind(job_kind or self.job_kind)
        if job is not None and type(job).__name__ != job_model_name(kind):
            raise ClientValueError(f"job: Job must be one of these types: {constants.JOB_MODELS}")
        if job is None:
            if name is None:
                raise ClientValueError(
                    "name: Job name must be set to configure Job from function or image"
                )
            job = self.get_job(name, namespace, kind, timeout)
        if job.status and job.status.conditions:
            return list(job.status.conditions)
        return []

    def _has(self, condition: str, *args: Any) -> bool:
        return bool(utils.has_condition(self.get_job_conditions(*args), condition))

    def is_job_created(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        return self._has(constants.JOB_CONDITION_CREATED, name, namespace, job_kind, job, timeout)

    def is_job_running(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        return self._has(constants.JOB_CONDITION_RUNNING, name, namespace, job_kind, job, timeout)

    def is_job_restarting(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        return self._has(
            constants.JOB_CONDITION_RESTARTING, name, namespace, job_kind, job, timeout
        )

    def is_job_succeeded(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        return self._has(constants.JOB_CONDITION_SUCCEEDED, name, namespace, job_kind, job, timeout)

    def is_job_failed(
        self,
        name: str | None = None,
        namespace: str | None = None,
        job_kind: str | None = None,
        job: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        return self._has(constants.JOB_CONDITION_FAILED, name, namespace, job_kind, job, timeout)

    # --- wait -------------------------------------------------------------------------------

    def wait_for_job_conditions(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        expected_conditions: set[str] = frozenset(  # type: ignore[assignment]
            {constants.JOB_CONDITION_SUCCEEDED}
        ),
        wait_timeout: int = 600,
        polling_interval: int = 15,
        callback: Callable[[Any], None] | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> Any:
        """Poll the job every ``polling_interval`` seconds until one of ``expected_conditions``
        is True; return the job's model.

        As the SDK: a Failed job raises ``RuntimeError`` (:class:`JobFailedError`,
        with the job's warning events) unless Failed is expected, the deadline
        ``TimeoutError``, and ``callback`` gets the job's model at every poll.
        A job that has finished without reaching an expected condition never
        will; kfkit raises the ``TimeoutError`` at once instead of at the deadline.
        """
        namespace = namespace or self.namespace
        kind = _check_kind(job_kind or self.job_kind)
        if not set(expected_conditions).issubset(constants.JOB_CONDITIONS):
            raise ClientValueError(
                f"expected_conditions: {', '.join(sorted(expected_conditions)) or 'empty'}: "
                f"must be a subset of {', '.join(sorted(constants.JOB_CONDITIONS))}"
            )
        if not polling_interval > 0:
            raise ClientValueError("polling_interval: must be more than 0 seconds")
        awaited = ", ".join(sorted(expected_conditions))
        deadline = time.monotonic() + wait_timeout
        while True:
            record = self._record(name, namespace, kind, timeout)
            job = job_model(record)
            if callback:
                callback(job)
            if FAILED not in expected_conditions and record.status.is_true(FAILED):
                raise JobFailedError(record)
            if any(record.status.is_true(c) for c in expected_conditions):
                return job
            if record.status.finished:
                raise ClientTimeoutError(
                    f"Timeout waiting for {kind}: {namespace}/{name} to reach expected "
                    f"conditions: {awaited} (it finished as {record.status.phase})"
                )
            if time.monotonic() + polling_interval > deadline:
                raise ClientTimeoutError(
                    f"Timeout waiting for {kind}: {namespace}/{name} to reach expected "
                    f"conditions: {awaited} (now {record.status.phase} after {wait_timeout}s)"
                )
            time.sleep(polling_interval)

    # --- pods and logs ----------------------------------------------------------------------

    def get_job_pods(
        self,
        name: str,
        namespace: str | None = None,
        is_master: bool = False,
        replica_type: str | None = None,
        replica_index: int | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[Any]:
        """The job's pods that exist now, as ``V1Pod`` models, selected by the operator's labels.

        Locally a replica has a pod once the supervisor has taken it on.
        """
        namespace = namespace or self.namespace
        replica_types = (
            constants.TFJOB_REPLICA_TYPES,
            constants.PYTORCHJOB_REPLICA_TYPES,
            constants.XGBOOSTJOB_REPLICA_TYPES,
            constants.MPIJOB_REPLICA_TYPES,
            constants.PADDLEJOB_REPLICA_TYPES,
            constants.JAXJOB_REPLICA_TYPES,
        )
        if replica_type is not None and all(replica_type not in t for t in replica_types):
            known = sorted({*constants.TFJOB_REPLICA_TYPES, *constants.PYTORCHJOB_REPLICA_TYPES})
            raise ClientValueError(
                f"replica_type: {replica_type!r}: must be one of {', '.join(known)} (lowercase)"
            )
        labels = {constants.JOB_NAME_LABEL: name}
        if is_master:
            labels[constants.JOB_ROLE_LABEL] = constants.JOB_ROLE_MASTER
        if replica_type:
            labels[constants.REPLICA_TYPE_LABEL] = replica_type.lower()
        if replica_index is not None:
            labels[constants.REPLICA_INDEX_LABEL] = str(replica_index)
        what = f"list pods for Job: {namespace}/{name}"
        with _failing(what):
            pods = _within(timeout, what, lambda: self.backend.pods(namespace, labels))
        return [from_dict(pod, "V1Pod") for pod in pods]

    def get_job_pod_names(
        self,
        name: str,
        namespace: str | None = None,
        is_master: bool = False,
        replica_type: str | None = None,
        replica_index: int | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[str]:
        """The names of :meth:`get_job_pods`."""
        pods = self.get_job_pods(name, namespace, is_master, replica_type, replica_index, timeout)
        return [pod.metadata.name for pod in pods]

    def get_job_logs(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        is_master: bool = True,
        replica_type: str | None = None,
        replica_index: int | None = None,
        follow: bool = False,
        timeout: int = constants.DEFAULT_TIMEOUT,
        verbose: bool = False,
    ) -> tuple[dict[str, str], dict[str, list[str]]]:
        """``(logs, events)``: each selected pod's log (the master's by default), and with
        ``verbose`` the events of the job and those pods, as the SDK returns them.

        Pods still Pending have no log. With ``follow`` each line is printed as
        ``[Pod <name>]: <line>`` while it arrives, and the call returns when the
        containers have ended.
        """
        namespace = namespace or self.namespace
        kind = _check_kind(job_kind or self.job_kind)
        pods = self.get_job_pods(name, namespace, is_master, replica_type, replica_index, timeout)
        started = {
            pod.metadata.name: f"{pod.metadata.labels[constants.REPLICA_TYPE_LABEL]}-"
            f"{pod.metadata.labels[constants.REPLICA_INDEX_LABEL]}"
            for pod in pods
            if pod.status is not None and pod.status.phase != constants.POD_PHASE_PENDING
        }
        logs: dict[str, str] = {}
        for pod, line in self._log_lines(name, namespace, kind, started, follow):
            if follow:
                print(f"[Pod {pod}]: {line}")
            logs[pod] = logs.get(pod, "") + line + "\n"
        for pod in started:
            logs.setdefault(pod, "")
        events: dict[str, list[str]] = {}
        if verbose:
            record = self._record(name, namespace, kind, timeout)
            objects = {f"{kind}/{name}"} | {f"Pod/{pod.metadata.name}" for pod in pods}
            for event in record.events:
                involved = str(event.get("object") or f"{kind}/{name}")
                if involved in objects:
                    object_kind, _, object_name = involved.partition("/")
                    key = f"{object_kind.lower()}/{object_name}"
                    events.setdefault(key, []).append(_event_line(event))
        return logs, events

    def _log_lines(
        self, name: str, namespace: str, kind: str, pods: dict[str, str], follow: bool
    ) -> Iterator[tuple[str, str]]:
        """``(pod, line)`` of ``pods`` (pod name -> replica key): read one after the other,
        or, following, every pod's stream at once (as the SDK does), each on its own thread.
        """
        with _failing(f"read logs for pods of {kind}: {namespace}/{name}"):
            if not follow:
                for pod, key in pods.items():
                    for _, line in self.backend.logs(name, namespace, key, False, kind):
                        yield pod, line
                return
            lines: queue.Queue[tuple[str, str] | BaseException | None] = queue.Queue()

            def follow_one(pod: str, key: str) -> None:
                try:
                    for _, line in self.backend.logs(name, namespace, key, True, kind):
                        lines.put((pod, line))
                except BaseException as error:  # handed to the reading thread
                    lines.put(error)
                finally:
                    lines.put(None)

            for pod, key in pods.items():
                threading.Thread(target=follow_one, args=(pod, key), daemon=True).start()
            ended = 0
            while ended < len(pods):
                item = lines.get()
                if item is None:
                    ended += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item

    def stream_job_logs(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        replica_type: str | None = None,
        replica_index: int | None = None,
        follow: bool = False,
    ) -> Iterator[tuple[str, str]]:
        """kfkit's addition: ``(pod name, line)`` of every replica (or the selected ones),
        following them as they grow with ``follow``."""
        namespace = namespace or self.namespace
        kind = _check_kind(job_kind or self.job_kind)
        job = self._record(name, namespace, kind, constants.DEFAULT_TIMEOUT).job
        pods = {
            replica.pod_name(job.name): replica.key
            for replica in job.replicas
            if (replica_type is None or replica.type.lower() == replica_type.lower())
            and (replica_index is None or replica.index == replica_index)
        }
        if not pods:
            raise JobNotFoundError(
                f"{job.describe()}: no replica matches type={replica_type} index={replica_index}"
            )
        yield from self._log_lines(name, namespace, kind, pods, follow)

    # --- update and delete ------------------------------------------------------------------

    def update_job(
        self,
        job: Any,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
    ) -> None:
        """Merge-patch the job with ``job`` (a model or a dict), as the SDK does.

        The local backend takes changes of labels and annotations only: its
        supervisor runs the spec it started with.
        """
        namespace = namespace or self.namespace
        kind = _check_kind(job_kind or self.job_kind)
        body = job if isinstance(job, dict) else to_dict(job)
        with _failing(f"update {kind}: {namespace}/{name}"):
            self.backend.update(name, namespace, kind, body)

    def delete_job(
        self,
        name: str,
        namespace: str | None = None,
        job_kind: str | None = None,
        delete_options: Any = None,
    ) -> None:
        """Delete the job and its replicas (pods, services; local processes and state)."""
        namespace = namespace or self.namespace
        kind = _check_kind(job_kind or self.job_kind)
        if delete_options is not None:
            raise ClientValueError(
                "delete_options: not supported by kfkit; it deletes the job in the background "
                "and removes its pods and services at once"
            )
        with _failing(f"delete {kind}: {namespace}/{name}"):
            self.backend.delete(name, namespace, kind)


def _kind_of(job: JobInput) -> str | None:
    """The kind of a ``job=`` argument, where it says (the SDK takes it from the model)."""
    if isinstance(job, dict):
        return str(job.get("kind")) if job.get("kind") else None
    if isinstance(job, Job):
        return job.kind
    kind = getattr(job, "kind", None)
    return str(kind) if isinstance(kind, str) else None
