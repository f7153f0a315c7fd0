"""What a replica is in the container runtime: its pod, resolved into podman arguments.

The resolution is the same one the process runtime uses (``launch._Resolver``: env,
envFrom and valueFrom, ``$(VAR)`` expansion, volumes, limits) and happens before anything
starts; only the last step differs. Instead of argv for a local interpreter with mount
paths rewritten, each container of the pod becomes a ``podman run`` of its own image, with
its volumes bind-mounted at their real mountPaths and its securityContext applied, in a
podman pod named as on a cluster, on a network of the job's own where the cluster's DNS
names resolve. ``kfkit.containers.podrun`` runs the result; to the supervisor it is one
more replica process (start, signal, wait, exit code, log).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

from kfkit.backends.local.config import LocalConfig
from kfkit.backends.local.launch import (
    THREAD_VARIABLES,
    ReplicaLaunch,
    _Resolver,
    expand,
    local_problems,
    pod_template,
)
from kfkit.backends.local.state import JobDir
from kfkit.containers.podman import podman
from kfkit.errors import ValidationError
from kfkit.jobs.environment import Network, operator_env
from kfkit.jobs.model import Job, Replica
from kfkit.jobs.quantity import cpu_threads, parse_quantity

LABEL = "io.kfkit.job"  # <namespace>/<name> on every pod, container and network of a job
# What kfkit.containers.podrun itself needs of kfkit's environment (none of it reaches a pod).
PODRUN_ENV = ("PATH", "PYTHONPATH", "HOME", "LANG", "KFKIT_CACHE", "CONTAINERS_CONF")


def network_name(job: Job) -> str:
    return f"kfkit-{job.namespace}-{job.name}"


@functools.cache
def image_config(image: str) -> dict[str, Any] | None:
    """The image's Config (User, Entrypoint, Cmd, ...) from podman's storage, None if absent."""
    result = podman(["image", "inspect", "--format", "{{json .Config}}", image], check=False)
    if result.returncode != 0:
        return None
    config = json.loads(result.stdout or "null") or {}
    return dict(config)


def _security(container: dict[str, Any], pod: dict[str, Any]) -> dict[str, Any]:
    """The container's securityContext over the pod's (the kubelet's merge for shared fields)."""
    merged: dict[str, Any] = {
        key: pod[key]
        for key in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
        if key in pod
    }
    merged.update(container.get("securityContext") or {})
    return merged


def run_as_user(security: dict[str, Any], image_user: str) -> tuple[str | None, str]:
    """The user a container runs as (uid or name) and a ``--user`` value for podman."""
    user, _, group = (image_user or "0").partition(":")
    if "runAsUser" in security:
        user = str(security["runAsUser"])
    if "runAsGroup" in security:
        group = str(security["runAsGroup"])
    return user, f"{user}:{group}" if group else user


def non_root_problem(security: dict[str, Any], user: str | None, path: str) -> str | None:
    """The kubelet's runAsNonRoot check, with its message; it starts no such container."""
    if not security.get("runAsNonRoot"):
        return None
    if user is None or not user.isdigit():
        return (
            f"{path}.securityContext.runAsNonRoot: container has runAsNonRoot and image has "
            f"non-numeric user ({user}), cannot verify user is non-root (the kubelet refuses it)"
        )
    if int(user) == 0:
        return (
            f"{path}.securityContext.runAsNonRoot: container has runAsNonRoot and image will "
            "run as root (the kubelet refuses it)"
        )
    return None


def security_args(security: dict[str, Any], pod: dict[str, Any], user: str) -> list[str]:
    args = ["--user", user]
    for group in pod.get("supplementalGroups") or []:
        args += ["--group-add", str(group)]
    if "fsGroup" in pod:
        args += ["--group-add", str(pod["fsGroup"])]
    if security.get("privileged"):
        args.append("--privileged")
    if security.get("readOnlyRootFilesystem"):
        # As on a cluster: nothing writable but the volumes (podman would add tmpfs mounts).
        args += ["--read-only", "--read-only-tmpfs=false"]
    if security.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    capabilities = security.get("capabilities") or {}
    for capability in capabilities.get("drop") or []:
        args += ["--cap-drop", str(capability)]
    for capability in capabilities.get("add") or []:
        args += ["--cap-add", str(capability)]
    seccomp = (security.get("seccompProfile") or {}).get("type")
    if seccomp == "Localhost":
        profile = (security.get("seccompProfile") or {}).get("localhostProfile", "")
        args += ["--security-opt", f"seccomp={profile}"]
    elif seccomp != "RuntimeDefault":
        # The kubelet's default (no profile, or Unconfined) is no seccomp filter at all.
        args += ["--security-opt", "seccomp=unconfined"]
    return args


def _argv(container: dict[str, Any], image: dict[str, Any], env: dict[str, str]) -> list[str]:
    """command/args over the image's entrypoint/cmd, as the kubelet combines them."""
    command = [expand(str(part), env) for part in container.get("command") or []]
    args = [expand(str(part), env) for part in container.get("args") or []]
    if command:
        return command + args
    return list(image.get("Entrypoint") or []) + (args or list(image.get("Cmd") or []))


def plan_container(
    job: Job,
    replica: Replica,
    network: Network,
    config: LocalConfig,
    job_dir: JobDir,
    template: dict[str, Any],
    section: str,
    index: int,
) -> tuple[dict[str, Any] | None, list[str]]:
    """One container of the pod as podman arguments (no ``--pod``/``--name``), or problems."""
    spec = template["spec"]
    container = spec[section][index]
    path = f"spec.{job.info.replica_specs_key}.{replica.type}.template.spec.{section}[{index}]"
    resolver = _Resolver(job, replica, template, container, config, job_dir, path)
    image_name = str(container.get("image", ""))
    image = image_config(image_name)
    if image is None:
        return None, [
            f"{path}.image: {image_name!r} is not in podman's local storage "
            "(make images builds the kit's images; podman pull or build others)"
        ]
    env = resolver.env({}, inherited={})
    if section == "containers":
        for name, value in operator_env(job, replica, network, container["name"]):
            env[name] = value
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    run_args: list[str] = []
    if "cpu" in limits:
        threads = str(cpu_threads(limits["cpu"]))
        for name in THREAD_VARIABLES:
            if not any(item.get("name") == name for item in container.get("env") or []):
                env[name] = threads
        run_args += ["--cpus", f"{float(parse_quantity(limits['cpu'])):g}"]
    if "memory" in limits:
        memory = int(parse_quantity(limits["memory"]))
        run_args += ["--memory", str(memory), "--memory-swap", str(memory)]
    resolver.resolve_mounts()
    security = _security(container, spec.get("securityContext") or {})
    user, user_arg = run_as_user(security, str(image.get("User") or ""))
    problem = non_root_problem(security, user, path)
    if problem:
        resolver.problems.append(problem)
    argv = _argv(container, image, env)
    if not argv:
        resolver.problems.append(f"{path}: neither command nor the image's entrypoint/cmd is set")
    if resolver.problems:
        return None, resolver.problems
    mounts = []
    for mount_path, directory in sorted(resolver.mounts, key=lambda item: len(item[0])):
        options = "ro" if mount_path in resolver.read_only else "rw"
        mounts.append({"source": str(directory), "target": mount_path, "options": options})
    run_args += security_args(security, spec.get("securityContext") or {}, user_arg)
    if container.get("workingDir"):
        run_args += ["--workdir", str(container["workingDir"])]
    run_args += ["--entrypoint", json.dumps(argv)]
    return (
        {
            "name": str(container["name"]),
            "image": image_name,
            "env": env,
            "secret_env": sorted(set(resolver.secret_env)),
            "mounts": mounts,
            "args": run_args,
            "argv": argv,
        },
        [],
    )


def plan_pod(
    job: Job, replica: Replica, network: Network, config: LocalConfig, job_dir: JobDir
) -> tuple[ReplicaLaunch | None, list[str]]:
    """Every container of the replica's pod, and how the supervisor starts the pod."""
    template = pod_template(job, replica, config)
    spec = template["spec"]
    problems: list[str] = []
    planned: dict[str, list[dict[str, Any]]] = {"initContainers": [], "containers": []}
    for section in planned:
        for index in range(len(spec.get(section) or [])):
            container, found = plan_container(
                job, replica, network, config, job_dir, template, section, index
            )
            problems += found
            if container is not None:
                planned[section].append(container)
    if problems:
        return None, problems
    name = replica.pod_name(job.name)
    aliases = [name, network.host(replica, fqdn=True)]
    volumes = job_dir.path / "volumes" / replica.key
    directories = sorted(
        {
            mount["source"]
            for container in planned["initContainers"] + planned["containers"]
            for mount in container["mounts"]
            if not Path(mount["source"]).is_file()
            and (
                Path(mount["source"]).is_relative_to(volumes)
                or Path(mount["source"]).is_relative_to(config.volumes_root())
            )
        }
    )
    grace = spec.get("terminationGracePeriodSeconds")
    grace_seconds = config.grace_seconds if grace is None else min(float(grace), 30.0)
    pod = {
        "name": name,
        "namespace": job.namespace,
        "network": network_name(job),
        "aliases": sorted(set(aliases)),
        "label": f"{job.namespace}/{job.name}",
        "main": job.info.container_name,
        "grace_seconds": grace_seconds,
        "init_containers": planned["initContainers"],
        "containers": planned["containers"],
        "directories": directories,
    }
    main = next((c for c in planned["containers"] if c["name"] == pod["main"]), None)
    memory = None
    if main is not None and "--memory" in main["args"]:
        memory = int(main["args"][main["args"].index("--memory") + 1])
    return (
        ReplicaLaunch(
            replica=replica.key,
            argv=[sys.executable, "-m", "kfkit.containers.podrun", replica.key],
            env={name: os.environ[name] for name in PODRUN_ENV if name in os.environ},
            cwd=str(job_dir.path),
            memory_limit_bytes=None,  # cgroups enforce it; podrun reports OOM as exit 137
            grace_seconds=grace_seconds,
            directories=[],
            secret_env=sorted({n for c in planned["containers"] for n in c["secret_env"]}),
            pod={**pod, "memory_limit_bytes": memory},
        ),
        [],
    )


def pod_name_clashes(job: Job) -> list[str]:
    """Pods of another job that hold this job's pod names: podman's names are machine-wide,
    a cluster's are per namespace, so two namespaces' jobs of one name cannot run at once."""
    listed = podman(
        ["pod", "ls", "--format", '{{.Name}} {{index .Labels "' + LABEL + '"}}'], check=False
    )
    holders = dict(line.split(" ", 1) for line in listed.stdout.splitlines() if " " in line)
    mine = f"{job.namespace}/{job.name}"
    problems = []
    for replica in job.replicas:
        name = replica.pod_name(job.name)
        holder = holders.get(name)
        if holder is not None and holder != mine:
            problems.append(
                f"metadata.name: pod {name} already runs for job {holder} (podman pod names "
                "are machine-wide; delete that job first)"
            )
    return problems


def plan_job_pods(job: Job, config: LocalConfig, job_dir: JobDir) -> dict[str, ReplicaLaunch]:
    """Plan every replica's pod; raise ``ValidationError`` (nothing started) on any problem."""
    problems = [f"{job.source}: {problem}" for problem in local_problems(job)]
    if problems:
        raise ValidationError(problems)
    network = Network(job)  # the cluster's names and ports: each pod has its own address
    problems += pod_name_clashes(job)
    launches: dict[str, ReplicaLaunch] = {}
    for replica in job.replicas:
        launch, found = plan_pod(job, replica, network, config, job_dir)
        problems += [f"{job.source}: {problem}" for problem in found]
        if launch is not None:
            launches[replica.key] = launch
    if problems:
        raise ValidationError(sorted(set(problems), key=problems.index))
    return launches
