"""The input boundary, one test per defect: names, validate == run, all or nothing, secrets.

Every test runs the real CLI in-process (``kfkit.cli.main.main``) against a
private ``$KFKIT_HOME``; none starts a replica, so a refused input must leave
nothing behind: no state under ``$KFKIT_HOME/jobs`` and no process.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from kfkit.cli.main import main
from kfkit.jobs import names

SECRET_VALUE = "s3cr3t-hunter2-value"


def job(name: str = "demo", **container: Any) -> dict[str, Any]:
    """A one-replica PyTorchJob running ``python -c pass`` unless told otherwise."""
    pod_fields = container.pop("pod", {})
    spec = {"name": "pytorch", "image": "kfkit/test:1", "command": ["python", "-c", "pass"]}
    spec.update(container)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {
                    "replicas": 1,
                    "template": {"spec": {"containers": [spec], **pod_fields}},
                }
            }
        },
    }


def kfkit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def state(home: Path) -> list[Path]:
    return sorted((home / "jobs").rglob("*")) if (home / "jobs").exists() else []


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    def write_documents(*documents: Any, name: str = "job.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump_all([copy.deepcopy(d) for d in documents]))
        return path

    return write_documents


@pytest.fixture
def refused(kfkit_home: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """Assert validate and run both refuse (exit 2, no state, no process); return run's lines."""

    def check(*argv: str) -> str:
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        validated, validate_output = kfkit(capsys, "validate", *argv)
        assert validated == 2, validate_output
        ran, run_output = kfkit(capsys, "run", "--detach", *argv)
        assert ran == 2, run_output
        assert state(kfkit_home) == []
        assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
        assert "Traceback" not in validate_output + run_output
        assert validate_output.strip().splitlines() == run_output.strip().splitlines()
        return run_output

    return check


# --- names checked as the API server checks them ---------------------------------------


@pytest.mark.parametrize("namespace", ["..", "../../x", "a/b", "UPPER", "-x", "x" * 64, "."])
def test_namespace_is_a_dns1123_label(refused, write, namespace: str, tmp_path: Path) -> None:
    doc = job("volumes")
    doc["metadata"]["namespace"] = namespace
    doc["spec"]["runPolicy"] = {"ttlSecondsAfterFinished": 0}
    output = refused("-f", str(write(doc)))
    assert "metadata.namespace:" in output and "DNS-1123 label" in output


def test_namespace_flag_is_checked_like_the_manifests(refused, write, kfkit_home: Path) -> None:
    outside = kfkit_home.parent / "x"
    outside.mkdir()
    output = refused("-n", "../../x", "-f", str(write(job())))
    assert "metadata.namespace: '../../x'" in output
    assert outside.is_dir()


@pytest.mark.parametrize(
    ("where", "container", "pod"),
    [
        (
            "volumes[0].secret.secretName",
            {"volumeMounts": [{"name": "v", "mountPath": "/s"}]},
            {"volumes": [{"name": "v", "secret": {"secretName": "../../etc"}}]},
        ),
        (
            "volumes[0].configMap.name",
            {"volumeMounts": [{"name": "v", "mountPath": "/c"}]},
            {"volumes": [{"name": "v", "configMap": {"name": "../x"}}]},
        ),
        (
            "volumes[0].persistentVolumeClaim.claimName",
            {"volumeMounts": [{"name": "v", "mountPath": "/d"}]},
            {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "../../jobs"}}]},
        ),
        (
            "volumeMounts[0].subPath",
            {"volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "../../../x"}]},
            {"volumes": [{"name": "v", "emptyDir": {}}]},
        ),
        (
            "volumeMounts[0].subPath",
            {"volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "/etc"}]},
            {"volumes": [{"name": "v", "emptyDir": {}}]},
        ),
        (
            "volumes[0].name",
            {"volumeMounts": [{"name": "../v", "mountPath": "/d"}]},
            {"volumes": [{"name": "../v", "emptyDir": {}}]},
        ),
        (
            "env[0].valueFrom.secretKeyRef.key",
            {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "../k"}}}]},
            {},
        ),
        (
            "envFrom[0].secretRef.name",
            {"envFrom": [{"secretRef": {"name": "../s"}}]},
            {},
        ),
        (
            "volumeMounts[0].mountPath",
            {"volumeMounts": [{"name": "v", "mountPath": "rel"}]},
            {"volumes": [{"name": "v", "emptyDir": {}}]},
        ),
        ("env[0].name", {"env": [{"name": "A=B", "value": "1"}]}, {}),
        (
            "resources.requests.memory: must be less than or equal to the memory limit",
            {"resources": {"limits": {"memory": "1Gi"}, "requests": {"memory": "2Gi"}}},
            {},
        ),
        (
            "resources.limits.cpu: must not be negative",
            {"resources": {"limits": {"cpu": "-1"}}},
            {},
        ),
        ("imagePullPolicy: must be one of", {"imagePullPolicy": "Sometimes"}, {}),
        (
            "terminationGracePeriodSeconds: must not be negative",
            {},
            {"terminationGracePeriodSeconds": -1},
        ),
    ],
)
def test_names_that_would_become_paths_are_refused(
    refused, write, where: str, container: dict, pod: dict
) -> None:
    output = refused("-f", str(write(job(pod=pod, **container))))
    assert where in output


def test_the_rules_are_the_api_servers() -> None:
    # Cases from k8s.io/apimachinery/pkg/util/validation/validation_test.go.
    for good in ("a", "ab", "a-b", "0", "a" * 63, "1-2"):
        assert names.dns1123_label(good) is None, good
    for bad in ("", "A", "-a", "a-", "a.b", "a_b", "a" * 64, ".."):
        assert names.dns1123_label(bad) is not None, bad
    for good in ("a.b", "a-b.c", "0.a", "a" * 253):
        assert names.dns1123_subdomain(good) is None, good
    for bad in ("a..b", ".a", "a.", "a/b", "a" * 254, ".."):
        assert names.dns1123_subdomain(bad) is not None, bad
    for good in ("simple", "now-with-dashes", "1-starts-with-num", "prefix.io/name", "a_b.c"):
        assert names.qualified_name(good) is None, good
    for bad in ("", "-a", "a/", "/a", "a/b/c", "UPPER_PREFIX.IO/x", "x" * 64):
        assert names.qualified_name(bad) is not None, bad
    for good in ("key", "a.b", "-._", "a..b"):
        assert names.config_map_key(good) is None, good
    for bad in (".", "..", "..a", "a/b", "a b", ""):
        assert names.config_map_key(bad) is not None, bad
    for good in ("A", "a.b", "1A", "a b", "-x", "x:y"):
        assert names.env_var_name(good) is None, good
    for bad in ("", "A=B", "tab\t", "é"):
        assert names.env_var_name(bad) is not None, bad
    for bad in ("/abs", "..", "a/../b", "../a"):
        assert names.descending_path(bad) is not None, bad
    assert names.descending_path("a/..b/c") is None


# --- validate and run share one path ------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]},
            "secret 'nope' key 'k' not found",
        ),
        ({"command": ["no-such-program-here"]}, "is not a program on this machine"),
        ({"workingDir": "/no/such/dir"}, "workingDir: /no/such/dir does not exist"),
        (
            {
                "volumeMounts": [{"name": "h", "mountPath": "/h"}],
                "pod": {"volumes": [{"name": "h", "hostPath": {"path": "/", "type": "File"}}]},
            },
            "hostPath /: is not a file (type File)",
        ),
        ({"command": ["python", "-c", "pass\x00"]}, "command/args[2]: contains a NUL byte"),
        ({"env": [{"name": "A", "value": "a\x00b"}]}, "env[A]: contains a NUL byte"),
        (
            {
                "env": [
                    {
                        "name": "C",
                        "valueFrom": {
                            "resourceFieldRef": {"resource": "limits.cpu", "divisor": "0"}
                        },
                    }
                ]
            },
            "resourceFieldRef.divisor: '0' must be one of 1m, 1 for cpu",
        ),
        (
            {"resources": {"limits": {"memory": "1e400"}}},
            "resources.limits.memory: '1e400' is larger than any process can use",
        ),
    ],
)
def test_validate_reports_what_run_refuses(refused, write, fields: dict, expected: str) -> None:
    assert expected in refused("-f", str(write(job(**fields))))


def test_exa_quantities_are_quantities(kfkit_home, write, capsys) -> None:
    from kfkit.jobs.quantity import parse_quantity

    assert parse_quantity("1Ei") == 2.0**60 and parse_quantity("2E") == 2e18
    assert parse_quantity("1e3") == 1000.0 and parse_quantity("1E3") == 1000.0
    status, output = kfkit(
        capsys, "validate", "-f", str(write(job(resources={"limits": {"memory": "1Ei"}})))
    )
    assert status == 0, output


def test_explicit_nulls_mean_not_set(kfkit_home, write, capsys) -> None:
    doc = job(ports=None, env=None)
    doc["spec"]["runPolicy"] = None
    doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["metadata"] = None
    status, output = kfkit(capsys, "validate", "-f", str(write(doc)))
    assert status == 0, output


def test_null_list_items_are_refused(refused, write) -> None:
    doc = job()
    doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"].append(None)
    assert "containers[1]: must not be null" in refused("-f", str(write(doc)))


def test_a_fifo_in_a_manifest_directory_is_refused_not_read(refused, tmp_path: Path) -> None:
    directory = tmp_path / "manifests"
    directory.mkdir()
    (directory / "job.yaml").write_text(yaml.safe_dump(job()))
    os.mkfifo(directory / "pipe.yaml")
    assert f"{directory / 'pipe.yaml'}: not a regular file" in refused("-f", str(directory))


def test_a_yaml_alias_bomb_is_refused_quickly(refused, tmp_path: Path) -> None:
    # Ten nested aliases of ten items each: 10**9 values once expanded.
    chain = ["  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    chain += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text(yaml.safe_dump(job()) + "status:\n" + "\n".join(chain) + "\n")
    assert "once YAML aliases are expanded" in refused("-f", str(path))


# --- all or nothing -------------------------------------------------------------------------


def test_a_multi_document_file_is_all_or_nothing(refused, write) -> None:
    good = job("first")
    bad = job("second", command=["no-such-program-here"])
    output = refused("-f", str(write(good, bad)))
    assert "no-such-program-here" in output


def test_several_files_and_a_directory_are_all_or_nothing(refused, write, tmp_path) -> None:
    first = write(job("first"), name="a.yaml")
    second = write(job("second", workingDir="/no/such/dir"), name="b.yaml")
    refused("-f", str(first), "-f", str(second))
    assert "workingDir" in refused("-f", str(tmp_path))


# --- secrets never printed -------------------------------------------------------------------


def _secret(home: Path, name: str, key: str, value: bytes) -> None:
    directory = home / "secrets" / "default" / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / key).write_bytes(value)


def test_a_secret_expanded_into_the_command_is_never_printed(
    refused, write, kfkit_home: Path
) -> None:
    _secret(kfkit_home, "creds", "token", SECRET_VALUE.encode())
    doc = job(
        command=["$(DERIVED)", "--token", "$(TOKEN)"],
        env=[
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "DERIVED", "value": "/bin/$(TOKEN)"},
        ],
    )
    output = refused("-f", str(write(doc)))
    assert "is not a program" in output and "<redacted>" in output
    assert SECRET_VALUE not in output


def test_a_secret_from_env_from_is_redacted_too(refused, write, kfkit_home: Path) -> None:
    _secret(kfkit_home, "creds", "PASSWORD", SECRET_VALUE.encode())
    doc = job(command=["$(PASSWORD)"], envFrom=[{"secretRef": {"name": "creds"}}])
    output = refused("-f", str(write(doc)))
    assert "'<redacted>' is not a program" in output
    assert SECRET_VALUE not in output


def test_a_binary_secret_is_passed_through_not_decoded(kfkit_home, write, capsys) -> None:
    _secret(kfkit_home, "blob", "data", b"\xff\xfe\x80binary")
    doc = job(env=[{"name": "B", "valueFrom": {"secretKeyRef": {"name": "blob", "key": "data"}}}])
    from kfkit.backends.local import LocalBackend
    from kfkit.jobs.load import load_jobs

    (loaded,) = load_jobs([write(doc)])
    launches, _ = LocalBackend()._admit(loaded)
    assert os.fsencode(launches["master-0"].env["B"]) == b"\xff\xfe\x80binary"
    status, output = kfkit(capsys, "validate", "-f", str(write(doc)))
    assert status == 0, output


def test_a_secret_with_a_nul_byte_is_refused_without_quoting_it(
    refused, write, kfkit_home: Path
) -> None:
    _secret(kfkit_home, "blob", "data", b"abc\x00" + SECRET_VALUE.encode())
    doc = job(env=[{"name": "B", "valueFrom": {"secretKeyRef": {"name": "blob", "key": "data"}}}])
    output = refused("-f", str(write(doc)))
    assert "contains a NUL byte" in output
    assert SECRET_VALUE not in output


def test_names_a_poddefault_adds_are_checked_too(refused, write, tmp_path: Path) -> None:
    poddefaults = tmp_path / "poddefaults"
    poddefaults.mkdir()
    (poddefaults / "escape.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubeflow.org/v1alpha1",
                "kind": "PodDefault",
                "metadata": {"name": "escape", "namespace": "default"},
                "spec": {
                    "selector": {"matchLabels": {"escape": "true"}},
                    "desc": "mounts a secret that is not one",
                    "volumes": [{"name": "v", "secret": {"secretName": "../../etc"}}],
                    "volumeMounts": [{"name": "v", "mountPath": "/etc/x"}],
                },
            }
        )
    )
    doc = job()
    template = doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    template["metadata"] = {"labels": {"escape": "true"}}
    output = refused("--poddefaults", str(poddefaults), "-f", str(write(doc)))
    assert "(with PodDefaults).spec.volumes[0].secret.secretName: '../../etc'" in output


def test_a_key_given_twice_is_refused(refused, tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump(job()) + "kind: TFJob\n")
    assert "invalid YAML: duplicate key 'kind'" in refused("-f", str(path))


def test_replica_counts_are_bounded(refused, write) -> None:
    doc = job()
    doc["spec"]["pytorchReplicaSpecs"]["Worker"] = copy.deepcopy(
        doc["spec"]["pytorchReplicaSpecs"]["Master"]
    )
    doc["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = 2**31
    assert "Worker.replicas: 2147483648 is out of range" in refused("-f", str(write(doc)))
    doc["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = 100_000  # a cluster takes it
    assert "the local backend runs at most 128 processes" in refused("-f", str(write(doc)))


@pytest.mark.integration
def test_a_secret_program_that_cannot_start_is_redacted_in_logs_and_events(
    kfkit_home: Path, write, tmp_path: Path, capsys
) -> None:
    from kfkit.backends.local import LocalBackend

    program = tmp_path / SECRET_VALUE  # exists, so planning accepts it, but is not executable
    program.write_text("not a program\n")
    _secret(kfkit_home, "creds", "token", str(program).encode())
    doc = job(
        "leaky",
        command=["$(TOKEN)"],
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
    )
    doc["spec"]["pytorchReplicaSpecs"]["Master"]["restartPolicy"] = "Never"
    status, output = kfkit(capsys, "run", "--detach", "-f", str(write(doc)))
    assert status == 0, output
    backend = LocalBackend()
    record = backend.wait("leaky", timeout=60)
    assert record.status.phase == "Failed"
    status, described = kfkit(capsys, "describe", "job", "leaky")
    logs = "\n".join(line for _, line in backend.logs("leaky"))
    assert "<redacted>" in logs and "<redacted>" in described
    assert SECRET_VALUE not in logs + described + output
    backend.delete("leaky")
