"""The operator's defaults and admission rules, applied by kfkit.jobs."""

from __future__ import annotations

import pytest

from kfkit.errors import ValidationError
from kfkit.jobs.load import load_jobs


def load_one(write_manifest, doc):
    return load_jobs([write_manifest(doc)])[0]


def test_pytorch_defaults(build, write_manifest) -> None:
    doc = build.pytorch_job()
    del doc["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"]
    job = load_one(write_manifest, doc)
    specs = job.manifest["spec"]["pytorchReplicaSpecs"]
    assert sorted(specs) == ["Master", "Worker"]
    assert specs["Worker"]["replicas"] == 1
    assert {s["restartPolicy"] for s in specs.values()} == {"OnFailure"}
    ports = specs["Master"]["template"]["spec"]["containers"][0]["ports"]
    assert ports == [{"name": "pytorchjob-port", "containerPort": 23456}]
    assert job.manifest["spec"]["nprocPerNode"] == "auto"
    assert job.run_policy["cleanPodPolicy"] == "None"
    assert job.namespace == "default"


def test_declared_port_is_kept(build, write_manifest) -> None:
    doc = build.pytorch_job(workers=0)
    container = doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"name": "pytorchjob-port", "containerPort": 30000}]
    job = load_one(write_manifest, doc)
    assert job.replica_specs["Master"].containers[0]["ports"] == container["ports"]


def test_tf_defaults_and_case(build, write_manifest) -> None:
    job = load_one(write_manifest, build.tf_job(ps=1, worker=2, chief=1))
    assert sorted(job.replica_specs) == ["Chief", "PS", "Worker"]
    spec = job.replica_specs["PS"]
    assert spec.restart_policy == "Never"
    assert spec.containers[0]["ports"] == [{"name": "tfjob-port", "containerPort": 2222}]
    assert [r.key for r in job.replicas] == ["ps-0", "worker-0", "worker-1", "chief-0"]


def test_elastic_policy_defaults_to_worker_count(build, write_manifest) -> None:
    job = load_one(write_manifest, build.pytorch_job(workers=3, elasticPolicy={"rdzvId": "x"}))
    assert job.spec["elasticPolicy"]["minReplicas"] == 3
    assert job.spec["elasticPolicy"]["maxReplicas"] == 3


def test_input_document_is_not_mutated(build, write_manifest) -> None:
    doc = build.pytorch_job()
    load_one(write_manifest, doc)
    assert "runPolicy" not in doc["spec"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["spec"]["pytorchReplicaSpecs"]["Master"].update(replicas=2),
            "spec.pytorchReplicaSpecs[Master].replicas: Forbidden: must be 1",
        ),
        (
            lambda d: d["metadata"].update(name="Bad_Name"),
            'metadata.name: Invalid value: "Bad_Name": should match: a DNS-1035 label',
        ),
        (
            lambda d: d["spec"]["pytorchReplicaSpecs"].update(
                Chief=d["spec"]["pytorchReplicaSpecs"]["Worker"]
            ),
            'spec.pytorchReplicaSpecs[Chief]: Unsupported value: "Chief": supported values: '
            '"Master", "Worker"',
        ),
        (
            lambda d: d["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][
                0
            ].update(name="main"),
            "spec.pytorchReplicaSpecs[Worker].template.spec.containers: Required value: must "
            "have at least one container with name pytorch",
        ),
        (
            lambda d: d["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][
                0
            ].pop("image"),
            "spec.pytorchReplicaSpecs[Worker].template.spec.containers[0].image: Required "
            "value: must be required",
        ),
        (
            lambda d: d["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][
                0
            ].update(resources={"limits": {"memory": "1Gb"}}),
            "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].resources.limits.memory: "
            "'1Gb' is not a valid quantity",
        ),
        (
            lambda d: d["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][
                0
            ].update(comand=["python"]),
            "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].comand: unknown field",
        ),
        (
            lambda d: d["spec"]["pytorchReplicaSpecs"]["Worker"].update(replicas="2"),
            "spec.pytorchReplicaSpecs.Worker.replicas: must be an integer, got string",
        ),
        (lambda d: d.update(apiVersion="kubeflow.org/v2"), "apiVersion: must be kubeflow.org/v1"),
    ],
)
def test_invalid_pytorch_jobs(build, write_manifest, mutate, message: str) -> None:
    doc = build.pytorch_job()
    mutate(doc)
    path = write_manifest(doc)
    with pytest.raises(ValidationError) as raised:
        load_jobs([path])
    lines = raised.value.lines()
    assert any(line.startswith(f"{path}: {message}") for line in lines), lines


def test_tf_rules(build, write_manifest) -> None:
    path = write_manifest(build.tf_job(Chief=2, Master=1, Worker=1))
    with pytest.raises(ValidationError) as raised:
        load_jobs([path])
    assert raised.value.lines() == [
        f"{path}: spec.tfReplicaSpecs: Forbidden: must not have more than 1 Chief or Master role"
    ]
    # Two chiefs are admitted (neither the webhook nor the CRD forbids it), with a warning.
    job = load_one(write_manifest, build.tf_job(Chief=2, Worker=1))
    assert job.warnings == [
        "spec.tfReplicaSpecs[Chief].replicas: 2 (TensorFlow expects a single chief)"
    ]


def test_every_problem_of_every_document_is_reported(build, write_manifest) -> None:
    good, bad1, bad2 = (
        build.pytorch_job("good"),
        build.pytorch_job("bad-one"),
        build.tf_job("bad-two", Worker=1),
    )
    bad1["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = 3
    bad2["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["image"] = ""
    path = write_manifest(good, bad1, bad2)
    with pytest.raises(ValidationError) as raised:
        load_jobs([path])
    lines = raised.value.lines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}[1]: spec.pytorchReplicaSpecs[Master].replicas")
    assert lines[1].startswith(
        f"{path}[2]: spec.tfReplicaSpecs[Worker].template.spec.containers[0].image: Required"
    )


def test_yaml_errors_name_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: PyTorchJob\nspec: [unclosed\n")
    with pytest.raises(ValidationError) as raised:
        load_jobs([path])
    assert str(raised.value).startswith(f"{path}: line ")
    assert "invalid YAML" in str(raised.value)


def test_duplicate_names_are_rejected(build, write_manifest) -> None:
    path = write_manifest(build.pytorch_job("same"), build.pytorch_job("same"))
    with pytest.raises(ValidationError, match="also defined in"):
        load_jobs([path])
