"""Turn one replica of a job into a local process: argv, environment, directory, limits.

This is the part of the kubelet and the operator that the local backend plays:
the operator's labels and environment variables, PodDefaults, ``env``/``envFrom``
with their ``valueFrom`` sources, ``$(VAR)`` expansion in command and args,
volumes as local directories, and CPU/memory limits. Everything here is
computed before any process starts, so a missing secret or an unsupported
volume stops the job before it begins.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfkit.backends.local.config import ImageEnvironment, LocalConfig
from kfkit.backends.local.ports import PortReservations
from kfkit.backends.local.state import JobDir
from kfkit.errors import ValidationError
from kfkit.jobs import names
from kfkit.jobs.environment import Network, container_port, operator_env
from kfkit.jobs.model import PYTORCH_JOB, RESTART_POLICIES, Job, Replica
from kfkit.jobs.quantity import cpu_threads, parse_quantity

PYTHON_NAMES = ("python", "python3")
# Thread settings derived from a CPU limit, unless the container sets them itself.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
REDACTED = "<redacted>"
# Larger than any process can use; a limit beyond it means "no limit" nowhere.
MAX_MEMORY_BYTES = 2**63 - 1
MAX_CPUS = 2**20
_VAR_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass
class ReplicaLaunch:
    """Everything needed to start (and restart) one replica's process."""

    replica: str  # e.g. "worker-1"
    argv: list[str]
    env: dict[str, str]
    cwd: str
    memory_limit_bytes: int | None
    grace_seconds: float
    # Local directories standing in for volumes; created just before the process starts.
    directories: list[str] = field(default_factory=list)
    # Names of environment variables whose values came from secrets: never printed.
    secret_env: list[str] = field(default_factory=list)
    # argv with every secret-sourced value replaced by REDACTED: what messages quote.
    display_argv: list[str] = field(default_factory=list)

    def shown_program(self) -> str:
        """The program as messages may name it (never a secret's value)."""
        return (self.display_argv or self.argv or [""])[0]

    # The container runtime's pod (kfkit.backends.local.pods); None for a process.
    pod: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplicaLaunch:
        return cls(**data)


def operator_labels(job: Job, replica: Replica) -> dict[str, str]:
    """The labels the operator puts on every replica pod."""
    labels = {
        "training.kubeflow.org/job-name": job.name,
        "training.kubeflow.org/operator-name": f"{job.kind.lower()}-controller",
        "training.kubeflow.org/replica-type": replica.type.lower(),
        "training.kubeflow.org/replica-index": str(replica.index),
    }
    if replica.type in ("Master", "Chief"):
        labels["training.kubeflow.org/job-role"] = "master"
    return labels


def _reserve(
    reservations: PortReservations,
    job_dir: JobDir,
    replica: str,
    declared: int,
    notes: list[str],
    variable: str,
) -> int:
    """``declared`` when nothing listens there and no other job holds it, else a free port."""
    port = reservations.reserve(job_dir, preferred=declared)
    if port != declared:
        holder = reservations.holder(declared)
        why = "is in use on this machine" if holder is None else f"is reserved by job {holder}"
        if holder == f"{job_dir.namespace}/{job_dir.name}":
            why = "is taken by another replica of this job"
        notes.append(
            f"port {declared} {why}; {replica} listens on {port} instead ({variable} says so)"
        )
    return port


def local_network(job: Job, job_dir: JobDir, home: Path) -> tuple[Network, list[str]]:
    """Reserve loopback ports for the replicas that listen; return notes on any remapping.

    A PyTorch master (and, in an elastic job, worker-0, the rendezvous host)
    keeps its declared ``pytorchjob-port`` when that is free here: replicas of
    a cluster each have their own IP, so ports never collide there, here they
    may. TensorFlow replicas all listen, so each gets a distinct free port.
    Every port is reserved under ``$KFKIT_HOME/ports`` until the job ends, so
    jobs planned together never share one.
    """
    reservations = PortReservations(home)
    reservations.release(job_dir)  # a finished job of the same name being replaced
    ports: dict[str, int] = {}
    notes: list[str] = []
    if job.kind == PYTORCH_JOB:
        if "Master" in job.replica_specs:
            declared = container_port(job, "Master")
            ports["master-0"] = _reserve(
                reservations, job_dir, "master-0", declared, notes, "MASTER_PORT"
            )
        policy = job.spec.get("elasticPolicy")
        if policy is not None and "Worker" in job.replica_specs:
            declared = container_port(job, "Worker")
            if policy.get("rdzvHost") is None and policy.get("rdzvPort") is not None:
                declared = int(policy["rdzvPort"])  # worker-0 hosts the rendezvous there
            ports["worker-0"] = _reserve(
                reservations, job_dir, "worker-0", declared, notes, "PET_RDZV_ENDPOINT"
            )
    else:
        for replica in job.replicas:
            ports[replica.key] = reservations.reserve(job_dir)
    return Network(job, local=True, ports=ports), notes


def release_ports(job_dir: JobDir, home: Path) -> None:
    """Give back the ports reserved for a job that will not run."""
    PortReservations(home).release(job_dir)


def pod_template(job: Job, replica: Replica, config: LocalConfig) -> dict[str, Any]:
    """The replica's pod template with the operator's labels and the team's PodDefaults."""
    template = copy.deepcopy(job.replica_specs[replica.type].template)
    metadata = template.setdefault("metadata", {})
    metadata.setdefault("labels", {}).update(operator_labels(job, replica))
    metadata["name"] = replica.pod_name(job.name)
    metadata["namespace"] = job.namespace
    if config.poddefaults is not None:
        from kfkit import poddefaults

        defaults = poddefaults.load_poddefaults(config.poddefaults, job.namespace)
        template = poddefaults.apply_poddefaults(
            template, defaults, f"{job.source}: pod {metadata['name']}"
        )
    return template


class _Resolver:
    """Resolves one container's environment, volumes and paths for one replica."""

    def __init__(
        self,
        job: Job,
        replica: Replica,
        template: dict[str, Any],
        container: dict[str, Any],
        config: LocalConfig,
        job_dir: JobDir,
        path: str,
    ) -> None:
        self.job, self.replica, self.template = job, replica, template
        self.container, self.config, self.job_dir, self.path = (
            container,
            config,
            job_dir,
            path,
        )
        self.problems: list[str] = []
        self.secret_env: list[str] = []
        # The container's variables as messages may show them: secrets as REDACTED.
        self.display: dict[str, str] = {}
        self.mounts: list[tuple[str, Path]] = []
        # Mount paths a container may not write: readOnly mounts, configMap and secret files.
        self.read_only: set[str] = set()

    # --- values from secrets, config maps and the pod itself -------------------------

    def _key_file(self, root: Path | None, name: str, key: str) -> Path:
        return (root or Path("/nonexistent")) / self.job.namespace / name / key

    def _read_key(
        self, kind: str, root: Path | None, ref: dict[str, Any], where: str
    ) -> str | None:
        key_file = self._key_file(root, ref.get("name", ""), ref.get("key", ""))
        if key_file.is_file():
            return self._read_value(
                key_file, f"{where}: {kind} {ref.get('name')!r} key {ref.get('key')!r}"
            )
        if not ref.get("optional"):
            self.problems.append(
                f"{where}: {kind} {ref.get('name')!r} key {ref.get('key')!r} not found "
                f"(the local backend reads {key_file})"
            )
        return None

    def _read_value(self, key_file: Path, what: str) -> str | None:
        """A key's bytes as an environment value; binary values pass through unchanged.

        Environment values are bytes to the kernel, as they are to the kubelet;
        ``surrogateescape`` carries bytes that are not UTF-8 through Python's str.
        Only a NUL byte cannot be in an environment; the value is never quoted.
        """
        try:
            data = key_file.read_bytes()
        except OSError as error:
            self.problems.append(f"{what}: cannot read {key_file}: {error.strerror}")
            return None
        if b"\0" in data:
            self.problems.append(
                f"{what}: contains a NUL byte, which an environment variable cannot hold"
            )
            return None
        return data.decode("utf-8", errors="surrogateescape")

    def _field_value(self, field_path: str, where: str) -> str | None:
        metadata = self.template.get("metadata", {})
        simple = {
            "metadata.name": metadata.get("name"),
            "metadata.namespace": self.job.namespace,
            "metadata.uid": f"local-{self.job.namespace}-{metadata.get('name')}",
            "spec.nodeName": socket.gethostname(),
            "spec.serviceAccountName": self.template.get("spec", {}).get(
                "serviceAccountName", "default"
            ),
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
        }
        if field_path in simple:
            return str(simple[field_path])
        match = re.match(r"^metadata\.(labels|annotations)\['([^']+)'\]$", field_path)
        if match:
            return str((metadata.get(match.group(1)) or {}).get(match.group(2), ""))
        self.problems.append(f"{where}: fieldRef {field_path!r} is not supported locally")
        return None

    def _resource_value(self, ref: dict[str, Any], where: str) -> str | None:
        section, _, name = str(ref.get("resource", "")).partition(".")
        value = (self.container.get("resources") or {}).get(section, {}).get(name)
        if value is None:
            return "0" if section == "requests" else str(os.cpu_count() or 1)
        divisor = parse_quantity(ref.get("divisor", 1) or 1)
        number = parse_quantity(value) / divisor
        return str(int(number) if name != "cpu" else max(1, int(-(-number // 1))))

    def env(
        self, image_env: dict[str, str], inherited: dict[str, str] | None = None
    ) -> dict[str, str]:
        """The container's environment on top of ``inherited`` (kfkit's own, for a process)."""
        env = dict(os.environ if inherited is None else inherited)
        env.update(image_env)
        for ref_index, source in enumerate(self.container.get("envFrom") or []):
            where = f"{self.path}.envFrom[{ref_index}]"
            prefix = source.get("prefix", "")
            for kind, root in (
                ("secretRef", self.config.secrets),
                ("configMapRef", self.config.configmaps),
            ):
                ref = source.get(kind)
                if not ref:
                    continue
                directory = (root or Path("/nonexistent")) / self.job.namespace / ref["name"]
                if not directory.is_dir():
                    if not ref.get("optional"):
                        self.problems.append(
                            f"{where}.{kind}: {ref['name']!r} not found "
                            f"(the local backend reads {directory})"
                        )
                    continue
                for key_file in sorted(directory.iterdir()):
                    name = prefix + key_file.name
                    # As the kubelet does, keys that are no valid variable name are skipped.
                    if not key_file.is_file() or names.env_var_name(name) is not None:
                        continue
                    text = self._read_value(key_file, f"{where}.{kind}: {ref['name']!r}")
                    if text is None:
                        continue
                    env[name] = text
                    if kind == "secretRef":
                        self.secret_env.append(name)
                        self.display[name] = REDACTED
                    else:
                        self.display[name] = text
        for item in self.container.get("env") or []:
            name, where = item["name"], f"{self.path}.env[{item['name']}]"
            value_from = item.get("valueFrom")
            if not value_from:
                value_text = str(item.get("value", ""))
                shown = expand(value_text, {**env, **self.display})
                env[name] = expand(value_text, env)
                self.display[name] = shown
                if shown != env[name]:  # it quotes a secret: it is one now
                    self.secret_env.append(name)
                continue
            value: str | None = None
            if "secretKeyRef" in value_from:
                value = self._read_key(
                    "secret", self.config.secrets, value_from["secretKeyRef"], where
                )
                self.secret_env.append(name)
            elif "configMapKeyRef" in value_from:
                value = self._read_key(
                    "configmap", self.config.configmaps, value_from["configMapKeyRef"], where
                )
            elif "fieldRef" in value_from:
                value = self._field_value(value_from["fieldRef"].get("fieldPath", ""), where)
            elif "resourceFieldRef" in value_from:
                value = self._resource_value(value_from["resourceFieldRef"], where)
            if value is not None:
                env[name] = value
                self.display[name] = REDACTED if name in self.secret_env else value
        return env

    # --- volumes --------------------------------------------------------------------

    def _volume_dir(self, volume: dict[str, Any]) -> Path | None:
        name = volume["name"]
        replica_volumes = self.job_dir.path / "volumes" / self.replica.key
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            return self.config.volumes_root() / self.job.namespace / claim
        if "emptyDir" in volume:
            return replica_volumes / name
        if "hostPath" in volume:
            return self._host_path(name, volume["hostPath"])
        for kind, root, key in (
            ("configMap", self.config.configmaps, "name"),
            ("secret", self.config.secrets, "secretName"),
        ):
            if kind in volume:
                source = (root or Path("/nonexistent")) / self.job.namespace / volume[kind][key]
                if not source.is_dir():
                    if not volume[kind].get("optional"):
                        self.problems.append(
                            f"{self.path}: volume {name!r}: {kind} {volume[kind][key]!r} not "
                            f"found (the local backend reads {source})"
                        )
                    return None
                return source
        self.problems.append(
            f"{self.path}: volume {name!r}: only persistentVolumeClaim, emptyDir, hostPath, "
            "configMap and secret volumes run locally"
        )
        return None

    def _host_path(self, name: str, host_path: dict[str, Any]) -> Path | None:
        """The host path, checked against its ``type`` as the kubelet checks it."""
        path = Path(host_path["path"])
        host_type = host_path.get("type") or ""
        where = f"{self.path}: volume {name!r}: hostPath {path}"
        checks = {
            "Directory": (path.is_dir, "is not a directory"),
            "File": (path.is_file, "is not a file"),
            "Socket": (path.is_socket, "is not a socket"),
            "CharDevice": (path.is_char_device, "is not a character device"),
            "BlockDevice": (path.is_block_device, "is not a block device"),
        }
        if host_type in checks:
            test, wrong = checks[host_type]
            if not test():
                self.problems.append(f"{where}: {wrong} (type {host_type})")
                return None
        elif host_type == "DirectoryOrCreate" and path.exists() and not path.is_dir():
            self.problems.append(f"{where}: exists and is not a directory (type {host_type})")
            return None
        elif host_type == "FileOrCreate" and not path.is_file():
            self.problems.append(
                f"{where}: {'is not a file' if path.exists() else 'does not exist'} "
                f"(type {host_type}; the local backend does not create files)"
            )
            return None
        return path

    def resolve_mounts(self) -> None:
        volumes = {v["name"]: v for v in self.template.get("spec", {}).get("volumes") or []}
        for mount in self.container.get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            if volume is None:
                self.problems.append(
                    f"{self.path}.volumeMounts[{mount['name']}]: no volume named "
                    f"{mount['name']!r} in the pod"
                )
                continue
            directory = self._volume_dir(volume)
            if directory is None:
                continue
            if mount.get("subPath"):
                directory = directory / mount["subPath"]
            mount_path = mount["mountPath"].rstrip("/") or "/"
            self.mounts.append((mount_path, directory))
            if mount.get("readOnly") or "configMap" in volume or "secret" in volume:
                self.read_only.add(mount_path)
        self.mounts.sort(key=lambda item: len(item[0]), reverse=True)

    def rewrite(self, text: str) -> str:
        """Replace mount paths by their local directories wherever they start a path.

        One pass over the original text, longest mount path first, so a local
        directory that happens to lie under another mount path (``/tmp``, say)
        is never rewritten a second time.
        """
        if not self.mounts:
            return text
        local = {mount_path: str(directory) for mount_path, directory in self.mounts}
        alternatives = "|".join(re.escape(path) for path, _ in self.mounts)
        pattern = re.compile(r"(?:^|(?<=[=:,\s]))(" + alternatives + r")(?=/|$|[:,\s])")
        return pattern.sub(lambda match: local[match.group(1)], text)


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known variables are replaced, ``$$`` is ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _VAR_REFERENCE.sub(replace, text)


def plan_replica(
    job: Job,
    replica: Replica,
    network: Network,
    config: LocalConfig,
    job_dir: JobDir,
    workdir: str,
) -> tuple[ReplicaLaunch | None, list[str]]:
    """Work out how to run ``replica``; return the plan or the problems that prevent it."""
    template = pod_template(job, replica, config)
    # The job's own names were checked when it was loaded; PodDefaults add theirs here.
    merged_problems = names.pod_problems(
        template, f"spec.{job.info.replica_specs_key}.{replica.type}.template (with PodDefaults)"
    )
    if merged_problems:
        return None, merged_problems
    containers = template["spec"]["containers"]
    index = next(i for i, c in enumerate(containers) if c.get("name") == job.info.container_name)
    container = containers[index]
    path = f"spec.{job.info.replica_specs_key}.{replica.type}.template.spec.containers[{index}]"
    resolver = _Resolver(job, replica, template, container, config, job_dir, path)
    image = config.image(str(container.get("image", "")))

    inherited = {**os.environ, "PATH": image_path(image)}
    env = resolver.env({"PATH": inherited["PATH"], **image.env})
    for name, value in operator_env(job, replica, network, container["name"]):
        env[name] = value
    limits = (container.get("resources") or {}).get("limits") or {}
    if "cpu" in limits and parse_quantity(limits["cpu"]) > MAX_CPUS:
        resolver.problems.append(
            f"{path}.resources.limits.cpu: {limits['cpu']!r} is more CPUs than any machine has"
        )
    elif "cpu" in limits:
        threads = str(cpu_threads(limits["cpu"]))
        for name in THREAD_VARIABLES:
            if not any(item.get("name") == name for item in container.get("env") or []):
                env[name] = threads
    memory_limit: int | None = None
    if "memory" in limits and parse_quantity(limits["memory"]) > MAX_MEMORY_BYTES:
        resolver.problems.append(
            f"{path}.resources.limits.memory: {limits['memory']!r} is larger than any "
            "process can use"
        )
    elif "memory" in limits:
        memory_limit = int(parse_quantity(limits["memory"]))

    resolver.resolve_mounts()
    parts = [*(container.get("command") or []), *(container.get("args") or [])]
    argv = [expand(part, env) for part in parts]
    shown = {**env, **resolver.display}
    display_argv = [expand(part, shown) for part in parts]
    # No process can be given a NUL byte; name where it is, never the value.
    nul = [f"{path}.command/args[{i}]" for i, part in enumerate(argv) if "\0" in part]
    nul += [f"{path}.env[{name}]" for name, value in env.items() if "\0" in value]
    if "\0" in str(container.get("workingDir") or ""):
        nul.append(f"{path}.workingDir")
    if nul:
        resolver.problems += [
            f"{where}: contains a NUL byte, which no process can be given" for where in nul
        ]
        return None, resolver.problems
    if not argv:
        resolver.problems.append(
            f"{path}.command: required locally (the local backend cannot run the image's "
            "entrypoint; set command, e.g. [python, -m, your.module])"
        )
    if resolver.problems:
        return None, resolver.problems
    if argv[0] in PYTHON_NAMES:
        argv[0] = image.python
    elif shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        resolver.problems.append(
            f"{path}.command[0]: {display_argv[0]!r} is not a program on this machine"
        )
        return None, resolver.problems
    argv = [resolver.rewrite(part) for part in argv]
    display_argv = [resolver.rewrite(part) for part in display_argv]
    for name in list(env):
        if name not in inherited or env[name] != inherited[name]:
            env[name] = resolver.rewrite(env[name])
    cwd = resolver.rewrite(container["workingDir"]) if container.get("workingDir") else workdir
    # Directories to create before the process starts: never a file a hostPath names.
    directories = [
        str(directory)
        for _, directory in resolver.mounts
        if directory.is_dir() or not directory.exists()
    ]
    if cwd not in directories and not Path(cwd).is_dir():
        resolver.problems.append(f"{path}.workingDir: {cwd} does not exist on this machine")
        return None, resolver.problems
    grace = template["spec"].get("terminationGracePeriodSeconds")
    grace_seconds = config.grace_seconds if grace is None else min(float(grace), 30.0)
    return (
        ReplicaLaunch(
            replica=replica.key,
            argv=argv,
            env=env,
            cwd=cwd,
            memory_limit_bytes=memory_limit,
            grace_seconds=grace_seconds,
            directories=directories,
            secret_env=sorted(set(resolver.secret_env)),
            display_argv=display_argv,
        ),
        [],
    )


def image_path(image: ImageEnvironment) -> str:
    """``$PATH`` with the image's interpreter directory first.

    An image's ``python``/``python3`` (and the tools installed beside it, such as
    ``torchrun``) are what a shell inside the container finds first; commands
    that start a shell (``bash -c "... python -u ..."``, as the training SDK
    writes them) find the same interpreter here as a bare ``python`` argv does.
    """
    directory = os.path.dirname(image.python)
    rest = [part for part in os.environ.get("PATH", "").split(os.pathsep) if part != directory]
    return os.pathsep.join([directory, *rest])


def plan_job(
    job: Job, config: LocalConfig, job_dir: JobDir, workdir: str
) -> tuple[dict[str, ReplicaLaunch], list[str]]:
    """Plan every replica; raise ``ValidationError`` (nothing started) on any problem."""
    problems = [f"{job.source}: {problem}" for problem in local_problems(job)]
    if problems:
        raise ValidationError(problems)
    network, notes = local_network(job, job_dir, config.home)
    launches: dict[str, ReplicaLaunch] = {}
    for replica in job.replicas:
        try:
            launch, replica_problems = plan_replica(job, replica, network, config, job_dir, workdir)
        except OSError as error:  # a path too long for this system, say; never its text
            launch, replica_problems = None, [f"{replica.key}: {error.strerror or error}"]
        problems += [f"{job.source}: {problem}" for problem in replica_problems]
        if launch is not None:
            launches[replica.key] = launch
    if problems:
        release_ports(job_dir, config.home)
        raise ValidationError(sorted(set(problems), key=problems.index))
    return launches, notes


def local_problems(job: Job) -> list[str]:
    """What a cluster admits but cannot run here, or not as the author meant; say why."""
    problems: list[str] = []
    if not job.replicas:
        problems.append(
            f"spec.{job.info.replica_specs_key}: the job has no replicas, so there is nothing "
            "to run (a cluster admits it and creates no pods)"
        )
    for replica_type, spec in job.replica_specs.items():
        if spec.replicas < 0:
            problems.append(
                f"spec.{job.info.replica_specs_key}[{replica_type}].replicas: {spec.replicas} "
                "cannot run: the v1.9 operator fails while building the replicas' TF_CONFIG"
            )
        if spec.restart_policy not in RESTART_POLICIES:
            problems.append(
                f"spec.{job.info.replica_specs_key}[{replica_type}].restartPolicy: "
                f"{spec.restart_policy!r} cannot run: a cluster's API server refuses pods with "
                f"it (the operator knows {', '.join(RESTART_POLICIES)})"
            )
    if (job.spec.get("elasticPolicy") or {}).get("rdzvConf") == []:
        problems.append(
            "spec.elasticPolicy.rdzvConf: an empty list cannot run: the v1.9 operator fails "
            "while building the pods' environment (omit the field)"
        )
    return problems
