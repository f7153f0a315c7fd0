"""PodDefault matching and merging, checked case by case against the webhook's rules."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from kfkit.errors import KfkitError, NotFoundError, ValidationError
from kfkit.poddefaults import (
    ANNOTATION_PREFIX,
    apply_poddefaults,
    explain,
    load_poddefaults,
    selector_mismatch,
)

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_MANIFESTS = REPO / "manifests" / "notebook"


def poddefault(name: str, selector: dict | None = None, **spec: object) -> dict:
    return {
        "apiVersion": "kubeflow.org/v1alpha1",
        "kind": "PodDefault",
        "metadata": {"name": name, "namespace": "team", "resourceVersion": "7"},
        "spec": {"selector": selector if selector is not None else {}, **spec},
    }


def pod(labels: dict | None = None, **container: object) -> dict:
    return {
        "metadata": {"labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", **container}]},
    }


# --- selectors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchLabels": {"a": "1"}}, {}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
        (
            {
                "matchLabels": {"team": "x"},
                "matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}],
            },
            {"team": "x", "gpu": "1"},
            False,
        ),
    ],
)
def test_selector_operators(selector: dict, labels: dict, matches: bool) -> None:
    assert (selector_mismatch(selector, labels) is None) is matches


# --- merging -----------------------------------------------------------------------------


def test_env_volumes_and_annotation_record_are_applied_and_input_is_untouched() -> None:
    pd = poddefault(
        "add-env",
        {"matchLabels": {"use": "yes"}},
        env=[{"name": "A", "value": "1"}],
        volumes=[{"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}}],
        volumeMounts=[{"name": "shared", "mountPath": "/shared"}],
        envFrom=[{"configMapRef": {"name": "settings"}}],
    )
    original = pod({"use": "yes"}, env=[{"name": "B", "value": "2"}])
    before = copy.deepcopy(original)
    result = apply_poddefaults(original, [pd])
    assert original == before
    container = result["spec"]["containers"][0]
    assert container["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    assert container["volumeMounts"] == [{"name": "shared", "mountPath": "/shared"}]
    assert container["envFrom"] == [{"configMapRef": {"name": "settings"}}]
    assert result["spec"]["volumes"][0]["name"] == "shared"
    assert result["metadata"]["annotations"] == {f"{ANNOTATION_PREFIX}/poddefault-add-env": "7"}


def test_unmatched_pod_is_returned_unchanged() -> None:
    pd = poddefault("x", {"matchLabels": {"use": "yes"}}, env=[{"name": "A", "value": "1"}])
    original = pod({"use": "no"})
    assert apply_poddefaults(original, [pd]) == original


def test_every_app_container_gets_env_but_not_init_containers_or_injected_sidecars() -> None:
    pd = poddefault(
        "inject",
        env=[{"name": "A", "value": "1"}],
        initContainers=[{"name": "init", "image": "busybox:1.36"}],
        sidecars=[{"name": "helper", "image": "busybox:1.36"}],
    )
    original = pod()
    original["spec"]["initContainers"] = [{"name": "setup", "image": "busybox:1.36"}]
    result = apply_poddefaults(original, [pd])
    containers = {c["name"]: c for c in result["spec"]["containers"]}
    assert list(containers) == ["main", "helper"]
    assert containers["main"]["env"] == [{"name": "A", "value": "1"}]
    assert "env" not in containers["helper"]
    assert [c["name"] for c in result["spec"]["initContainers"]] == ["setup", "init"]
    assert "env" not in result["spec"]["initContainers"][0]

    # Two containers that change plus a sidecar: upstream's JSON patch cannot be applied.
    original["spec"]["containers"].append({"name": "second", "image": "busybox:1.36"})
    with pytest.raises(ValidationError, match=r"cannot apply the PodDefault webhook's JSON patch"):
        apply_poddefaults(original, [pd])
    without_sidecar = poddefault("inject", env=[{"name": "A", "value": "1"}])
    result = apply_poddefaults(original, [without_sidecar])
    assert [c["env"] for c in result["spec"]["containers"]] == [[{"name": "A", "value": "1"}]] * 2


def test_identical_entries_from_two_poddefaults_are_merged_once() -> None:
    env = [{"name": "A", "value": "1"}]
    result = apply_poddefaults(pod(), [poddefault("one", env=env), poddefault("two", env=env)])
    assert result["spec"]["containers"][0]["env"] == env
    annotations = result["metadata"]["annotations"]
    assert set(annotations) == {
        f"{ANNOTATION_PREFIX}/poddefault-one",
        f"{ANNOTATION_PREFIX}/poddefault-two",
    }


def test_command_and_args_only_fill_containers_that_have_none_and_skip_istio_proxy() -> None:
    pd = poddefault("cmd", command=["run"], args=["--fast"])
    original = pod(command=["own"])
    original["spec"]["containers"].append({"name": "istio-proxy", "image": "proxy:1"})
    result = apply_poddefaults(original, [pd])
    main, proxy = result["spec"]["containers"]
    assert main["command"] == ["own"] and main["args"] == ["--fast"]
    assert "command" not in proxy and "args" not in proxy


def test_pod_level_fields_labels_tolerations_and_service_account() -> None:
    pds = [
        poddefault(
            "a-first",
            labels={"team": "ml"},
            annotations={"note": "a"},
            tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            imagePullSecrets=[{"name": "regcred"}],
            serviceAccountName="first",
            automountServiceAccountToken=False,
        ),
        poddefault("b-second", serviceAccountName="second"),
    ]
    result = apply_poddefaults(pod({"app": "nb"}), list(reversed(pds)))
    assert result["metadata"]["labels"] == {"app": "nb", "team": "ml"}
    assert result["metadata"]["annotations"]["note"] == "a"
    assert result["spec"]["tolerations"][0]["key"] == "gpu"
    assert result["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    # Applied in name order, the last one setting it wins, as on the cluster.
    assert result["spec"]["serviceAccountName"] == "second"
    assert result["spec"]["automountServiceAccountToken"] is False


def test_excluded_pod_gets_nothing() -> None:
    original = pod()
    original["metadata"]["annotations"] = {f"{ANNOTATION_PREFIX}/exclude": "true"}
    pd = poddefault("x", env=[{"name": "A", "value": "1"}])
    assert apply_poddefaults(original, [pd]) == original
    assert "exclude" in explain(original, [pd])[0]


def test_namespace_of_a_pod_must_match() -> None:
    original = pod()
    original["metadata"]["namespace"] = "other"
    pd = poddefault("x", env=[{"name": "A", "value": "1"}])
    assert apply_poddefaults(original, [pd]) == original
    assert "namespace" in explain(original, [pd])[0]


# --- conflicts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "two", "expected"),
    [
        (
            {"env": [{"name": "A", "value": "1"}]},
            {"env": [{"name": "A", "value": "2"}]},
            "env in container 'main': 'A'",
        ),
        (
            {"volumes": [{"name": "v", "emptyDir": {}}]},
            {"volumes": [{"name": "v", "secret": {"secretName": "s"}}]},
            "volume 'v'",
        ),
        (
            {"volumeMounts": [{"name": "v", "mountPath": "/data"}]},
            {"volumeMounts": [{"name": "w", "mountPath": "/data"}]},
            "mount path in container 'main': '/data'",
        ),
        ({"labels": {"team": "a"}}, {"labels": {"team": "b"}}, "label 'team'"),
        (
            {"tolerations": [{"key": "gpu", "operator": "Exists"}]},
            {"tolerations": [{"key": "gpu", "operator": "Equal", "value": "x"}]},
            "toleration 'gpu'",
        ),
        (
            {"sidecars": [{"name": "s", "image": "a:1"}]},
            {"sidecars": [{"name": "s", "image": "b:1"}]},
            "sidecar container 's'",
        ),
    ],
)
def test_conflict_between_two_poddefaults_names_both_and_applies_nothing(
    one: dict, two: dict, expected: str
) -> None:
    original = pod()
    before = copy.deepcopy(original)
    with pytest.raises(ValidationError) as raised:
        apply_poddefaults(original, [poddefault("one", **one), poddefault("two", **two)])
    message = str(raised.value)
    assert expected in message
    assert "PodDefault 'one'" in message and "PodDefault 'two'" in message
    assert original == before


def test_conflict_with_the_pod_itself_names_the_pod_and_hides_values() -> None:
    original = pod(env=[{"name": "TOKEN", "value": "pod-secret-value"}])
    pd = poddefault("creds", env=[{"name": "TOKEN", "value": "other-secret-value"}])
    with pytest.raises(KfkitError) as raised:
        apply_poddefaults(original, [pd])
    message = str(raised.value)
    assert "PodDefault 'creds' and the pod" in message
    assert "secret-value" not in message


# --- loading and the CLI -------------------------------------------------------------------


def test_load_filters_by_namespace_defaults_to_default_and_sorts(tmp_path: Path) -> None:
    docs = [
        {**poddefault("zeta"), "metadata": {"name": "zeta"}},
        {**poddefault("alpha"), "metadata": {"name": "alpha", "namespace": "default"}},
        {**poddefault("other"), "metadata": {"name": "other", "namespace": "team"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ignored"}},
    ]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(docs))
    assert [pd["metadata"]["name"] for pd in load_poddefaults(tmp_path)] == ["alpha", "zeta"]
    assert [pd["metadata"]["name"] for pd in load_poddefaults(tmp_path, "team")] == ["other"]


def test_load_reports_every_bad_poddefault_with_its_file(tmp_path: Path) -> None:
    bad = poddefault("bad", {"matchExpressions": [{"key": "a", "operator": "Near"}]})
    del bad["spec"]["selector"]["matchExpressions"][0]["key"]
    no_selector = poddefault("nosel")
    del no_selector["spec"]["selector"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump_all([bad, no_selector]))
    with pytest.raises(ValidationError) as raised:
        load_poddefaults(tmp_path, "team")
    lines = raised.value.lines()
    assert any("bad.yaml: spec.selector.matchExpressions[0].key: required" in x for x in lines)
    assert any("bad.yaml: spec.selector: required" in x for x in lines)
    with pytest.raises(NotFoundError):
        load_poddefaults(tmp_path / "missing")


def test_explain_says_why_each_poddefault_did_not_match() -> None:
    pds = [
        poddefault("wants-gpu", {"matchLabels": {"gpu": "true"}}),
        poddefault("wants-team", {"matchExpressions": [{"key": "team", "operator": "Exists"}]}),
        poddefault("for-all"),
    ]
    lines = explain(pod({"gpu": "false"}), pds)
    assert lines == [
        "for-all: matched",
        "wants-gpu: not matched: label gpu=false (selector wants gpu=true)",
        "wants-team: not matched: pod has no label 'team' (selector wants it to exist)",
    ]


def _run_cli(*argv: str) -> int:
    """Run the command group as ``kfkit`` would, through its own register()."""
    import argparse

    from kfkit.cli import poddefaults as command

    parser = argparse.ArgumentParser(prog="kfkit")
    command.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_applies_the_shipped_poddefaults_to_the_notebook(
    capsys: pytest.CaptureFixture[str],
) -> None:
    notebook = str(NOTEBOOK_MANIFESTS / "notebook.yaml")
    assert (
        _run_cli("poddefaults", "apply", "-f", notebook, "--poddefaults", str(NOTEBOOK_MANIFESTS))
        == 0
    )
    template = yaml.safe_load(capsys.readouterr().out)
    container = template["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_DEFAULT"]["value"] == "Testing is enabled"
    assert env["POD_DEFAULT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "test-secret",
        "key": "secret_key",
    }
    mount = {"name": "shared-workspace", "mountPath": "/home/jovyan/shared"}
    assert mount in container["volumeMounts"]
    annotations = template["metadata"]["annotations"]
    assert f"{ANNOTATION_PREFIX}/poddefault-add-test-secret" in annotations
    assert f"{ANNOTATION_PREFIX}/poddefault-mount-shared-workspace" in annotations

    assert (
        _run_cli(
            "poddefaults",
            "apply",
            "-f",
            notebook,
            "--poddefaults",
            str(NOTEBOOK_MANIFESTS),
            "--explain",
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines() == [
        "add-test-secret: matched (Expose the test secret and enable testing)",
        "mount-shared-workspace: matched (Mount the team's shared volume on /home/jovyan/shared)",
    ]


def test_cli_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        _run_cli(
            "poddefaults",
            "apply",
            "-f",
            str(tmp_path / "nope.yaml"),
            "--poddefaults",
            str(tmp_path),
        )


def test_notebook_pod_gets_the_notebook_labels_as_the_controller_gives_them() -> None:
    from kfkit.poddefaults import pod_of

    notebook = yaml.safe_load((NOTEBOOK_MANIFESTS / "notebook.yaml").read_text())
    template, namespace = pod_of(notebook, "notebook.yaml")
    assert namespace == "kubeflow-user-example-com"
    labels = template["metadata"]["labels"]
    assert labels["notebook-name"] == labels["statefulset"] == "tf-notebook"
    assert labels["add-test-secret"] == "true"
    assert "metadata" not in notebook["spec"]["template"]  # the input is not changed
    with pytest.raises(KfkitError, match=r"expected a Pod or an object with spec\.template"):
        pod_of({"kind": "ConfigMap", "data": {}}, "cm.yaml")


def test_load_admits_what_the_crd_admits_and_the_webhook_refuses_later(tmp_path: Path) -> None:
    near = poddefault("near", {"matchExpressions": [{"key": "a", "operator": "Near"}]})
    (tmp_path / "near.yaml").write_text(yaml.safe_dump(near))
    loaded = load_poddefaults(tmp_path, "team")
    assert [pd["metadata"]["name"] for pd in loaded] == ["near"]
    assert loaded[0].source == str(tmp_path / "near.yaml")
    with pytest.raises(ValidationError) as raised:
        apply_poddefaults(pod(), loaded, "pod.yaml")
    assert f"{tmp_path / 'near.yaml'}: spec.selector.matchExpressions[0].operator" in str(
        raised.value
    )
    null_selector = poddefault("null")
    null_selector["spec"]["selector"] = None
    (tmp_path / "near.yaml").write_text(yaml.safe_dump(null_selector))
    with pytest.raises(ValidationError, match=r"near\.yaml: spec\.selector: must be"):
        load_poddefaults(tmp_path, "team")


def test_cli_refused_pod_is_an_error_and_explain_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pd = poddefault("inject", env=[{"name": "A", "value": "1"}], sidecars=[{"name": "s"}])
    (tmp_path / "pd.yaml").write_text(yaml.safe_dump(pd))
    manifest = pod()
    manifest["kind"] = "Pod"
    manifest["metadata"]["namespace"] = "team"
    manifest["spec"]["containers"].append({"name": "istio-proxy", "image": "proxyv2:1"})
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(manifest))
    argv = ["poddefaults", "apply", "-f", str(tmp_path / "pod.yaml"), "--poddefaults"]
    with pytest.raises(KfkitError) as raised:
        _run_cli(*argv, str(tmp_path))
    assert raised.value.exit_code == 2
    assert raised.value.lines()[0].startswith(f"{tmp_path / 'pod.yaml'}: refused: ")
    assert _run_cli(*argv, str(tmp_path), "--explain") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "inject: matched"
    assert "cannot apply the PodDefault webhook's JSON patch" in out[1]


@pytest.mark.parametrize(
    ("bad_pod", "expected"),
    [
        ("not a pod", "<pod>: must be a Pod or a pod template"),
        ({"spec": "x"}, "<pod>: spec: must be an object"),
        ({"metadata": {"labels": ["x"]}}, "<pod>: metadata.labels: must be a map of strings"),
        ({"spec": {"containers": ["x"]}}, "<pod>: spec.containers[0]: must be an object"),
        ({"spec": {"containers": [{"name": "c", "env": "x"}]}}, "spec.containers[0].env: must be"),
        ({"spec": {"volumes": {"name": "v"}}}, "<pod>: spec.volumes: must be a list"),
    ],
)
def test_a_malformed_pod_is_a_user_error(bad_pod: object, expected: str) -> None:
    pd = poddefault("x", env=[{"name": "A", "value": "1"}], sidecars=[{"name": "s"}])
    with pytest.raises(ValidationError) as raised:
        apply_poddefaults(bad_pod, [pd])  # type: ignore[arg-type]
    assert expected in raised.value.lines()[0]
    assert expected in explain(bad_pod, [pd])[0]  # type: ignore[arg-type]


def test_a_poddefault_with_items_of_the_wrong_type_is_refused_on_load(tmp_path: Path) -> None:
    bad = poddefault("bad", env=[None], command=[1], tolerations=7)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ValidationError) as raised:
        load_poddefaults(tmp_path, "team")
    assert raised.value.lines() == [
        f"{tmp_path / 'bad.yaml'}: spec.env[0]: must be an object",
        f"{tmp_path / 'bad.yaml'}: spec.tolerations: must be a list",
        f"{tmp_path / 'bad.yaml'}: spec.command[0]: must be a string",
    ]
