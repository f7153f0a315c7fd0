"""``kfkit platform ...``: parsed and run the way kfkit's main entry point runs a group."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from kfkit.cli import platform as platform_cli
from kfkit.errors import KfkitError, ValidationError

from .conftest import MANIFESTS, SITE_VALUES


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kfkit")
    platform_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["platform", *argv])
    return int(args.func(args))


def test_render_prints_every_object(helm_bin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("render", "-f", str(SITE_VALUES), "--paper") == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    operator = next(
        o
        for o in objects
        if o["metadata"]["name"].endswith("training-operator") and o["kind"] == "Deployment"
    )
    assert operator["metadata"]["namespace"] == "kubeflow"
    limits = operator["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["cpu"] == "1"  # --paper: the operator's own default, not componentResources


def test_bad_values_are_one_line_per_problem(helm_bin: Path) -> None:
    with pytest.raises(KfkitError) as caught:
        run("render", "--set", "componentResources.requests.memory=128MB")
    [line] = caught.value.lines()
    assert line.startswith(
        "--set componentResources.requests.memory=128MB: componentResources.requests.memory: "
        "Does not match pattern '^("
    )


def test_a_missing_values_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(KfkitError, match=r"no-such\.yaml: no such values file"):
        run("render", "-f", str(tmp_path / "no-such.yaml"))


def test_upgrade_print_shows_the_papers_command(
    helm_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("upgrade", "-f", str(SITE_VALUES), "--paper", "--print") == 0
    command = capsys.readouterr().out.strip()
    chart = SITE_VALUES.parent / "charts" / "kubeflow-platform"
    assert command.endswith(
        f"upgrade --install kubeflowinstaller {chart} --namespace kubeflow --create-namespace "
        f"-f {SITE_VALUES} --set componentsResourceConfiguration.enabled=false "
        "--wait --timeout=1200s"
    )


def test_lint(helm_bin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("lint", "-f", str(SITE_VALUES)) == 0
    assert "0 chart(s) failed" in capsys.readouterr().out


def test_podsecurity_passes_the_manifests_and_names_each_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(p) for p in sorted(MANIFESTS.rglob("*.yaml"))]
    assert run("podsecurity", *files) == 0
    assert "every pod template meets the restricted profile" in capsys.readouterr().out

    bad = tmp_path / "pod.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
        )
    )
    with pytest.raises(ValidationError) as caught:
        run("podsecurity", str(bad))
    assert (
        f"{bad}: Pod/p: spec.containers[c].securityContext.allowPrivilegeEscalation: must be false"
        in caught.value.lines()
    )


def test_tools_lists_every_pinned_tool(helm_bin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = run("tools")
    out = capsys.readouterr().out
    for name in ("helm", "kubectl", "kube-apiserver", "etcd", "checkov", "trivy", "hadolint"):
        assert name in out
    assert status == (1 if "MISSING" in out else 0)


def test_platform_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run("--help")
    out = capsys.readouterr().out
    assert "``" not in out and "- ``render``" not in out
    for verb in ("render", "lint", "upgrade", "check", "podsecurity", "tools"):
        assert verb in out


def test_check_reads_the_default_kubeconfig_like_every_verb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kfkit.cli.platform import _kubeconfig

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setattr("kfkit.backends.kubernetes.connection.running_in_pod", lambda: False)
    with pytest.raises(KfkitError, match=r"^no kubeconfig: neither \$KUBECONFIG nor"):
        _kubeconfig(None)
    home_config = tmp_path / ".kube" / "config"
    home_config.parent.mkdir()
    home_config.write_text("apiVersion: v1\nkind: Config\n")
    assert _kubeconfig(None) == home_config
    chosen = tmp_path / "team.kubeconfig"
    chosen.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{chosen}")
    assert _kubeconfig(None) == chosen
    with pytest.raises(KfkitError, match=r"--kubeconfig .*nope: no such file"):
        _kubeconfig(tmp_path / "nope")
