"""The container builder without a cluster: preprocessing, Dockerfile, context, bad inputs.

Notebooks are real .ipynb files written with nbformat. No build is pretended:
without podman/buildah the builder must say it did not build, and why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

from kfkit.builder import BuildConfig, build_image
from kfkit.builder.local import find_tool
from kfkit.builder.preprocess import notebook_to_script, preprocess
from kfkit.errors import KfkitError, ValidationError

REPO = Path(__file__).resolve().parents[2]
# Where `make` puts its tools: $KFKIT_CACHE, by default ~/.cache/kfkit (see Makefile).
CACHE = Path(os.environ.get("KFKIT_CACHE") or Path.home() / ".cache" / "kfkit")
HADOLINT = CACHE / "venv-notebook" / "bin" / "hadolint"


def write_notebook(path: Path, cells: list[tuple[str, str]]) -> Path:
    notebook = nbformat.v4.new_notebook()
    for kind, source in cells:
        maker = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        notebook.cells.append(maker(source))
    nbformat.write(notebook, str(path))
    return path


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "train.ipynb",
        [
            ("markdown", "# Train MNIST\nSome *prose* that is not code."),
            ("code", "!pip install --quiet tensorflow\n%matplotlib inline\nimport os"),
            ("code", "%%bash\necho this is a shell cell"),
            ("code", "  %time x = 1\nresult = sum(range(4))\nprint('result', result)"),
        ],
    )


def config(tmp_path: Path, source: Path, **overrides: object) -> BuildConfig:
    pvc = tmp_path / "pvc"
    pvc.mkdir(exist_ok=True)
    values: dict[str, object] = {
        "source": source,
        "image": "registry.example.org/team/mnist",
        "tag": "v1",
        "base_image": "tensorflow/tensorflow:2.16.1",
        "pvc_name": "shared-workspace",
        "pvc_mount_path": pvc,
        "registry_secret": "regcred",
        "namespace": "team",
        "dry_run": True,
    }
    values.update(overrides)
    return BuildConfig(**values)  # type: ignore[arg-type]


def test_notebook_becomes_a_script_without_magics_or_markdown(notebook: Path) -> None:
    script = notebook_to_script(notebook)
    assert "!pip" not in script and "%matplotlib" not in script and "%time" not in script
    assert "echo this is a shell cell" not in script
    assert "Some *prose*" not in script
    assert "import os" in script and "print('result', result)" in script
    completed = subprocess.run(
        [shutil.which("python3") or "python3", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout == "result 6\n"


def test_empty_notebook_and_markdown_only_notebook_are_refused(tmp_path: Path) -> None:
    empty = write_notebook(tmp_path / "empty.ipynb", [])
    prose = write_notebook(tmp_path / "prose.ipynb", [("markdown", "# only words")])
    magics = write_notebook(tmp_path / "magic.ipynb", [("code", "%pwd\n!ls")])
    for path in (empty, prose, magics):
        with pytest.raises(KfkitError, match="no code to run"):
            notebook_to_script(path)


def test_notebook_that_does_not_parse_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(KfkitError, match=r"broken.ipynb: not a readable notebook"):
        notebook_to_script(broken)
    bad_code = write_notebook(tmp_path / "bad.ipynb", [("code", "x = 1"), ("code", "def f(:")])
    with pytest.raises(KfkitError, match=r"bad.ipynb: cells\[1\]: not valid Python"):
        notebook_to_script(bad_code)


def test_dry_run_writes_context_dockerfile_and_job_manifest(tmp_path: Path, notebook: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.4.6\n", encoding="utf-8")
    result = build_image(config(tmp_path, notebook, requirements=requirements))
    assert result.mode == "no-cluster"
    assert result.context_path is not None and result.job_manifest_path is not None
    context = result.context_path
    assert context.parent == tmp_path / "pvc" and context.name.startswith("kanikotmp-")
    assert sorted(p.relative_to(context).as_posix() for p in context.rglob("*")) == [
        "Dockerfile",
        "app",
        "app/train.py",
        "requirements.txt",
    ]
    dockerfile = (context / "Dockerfile").read_text().splitlines()
    assert dockerfile[0] == "FROM tensorflow/tensorflow:2.16.1"
    # The requirements layer comes before the code, and the image runs non-root.
    assert dockerfile.index("COPY requirements.txt /app/requirements.txt") < dockerfile.index(
        "COPY --chown=1000:100 app/ /app/"
    )
    assert dockerfile[-2:] == ["USER 1000:100", 'CMD ["python", "/app/train.py"]']
    manifest = yaml.safe_load(result.job_manifest_path.read_text())
    args = manifest["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--context=dir:///workspace/{context.name}" in args
    assert "--destination=registry.example.org/team/mnist:v1" in args
    # No base image can be pulled here, so no local build either; the reason is given.
    assert not result.succeeded
    tool = find_tool()
    if tool is None:
        assert result.message == "not built locally: neither podman nor buildah is installed"
    else:
        assert result.message.startswith(
            f"not built locally: base image tensorflow/tensorflow:2.16.1 is not in {tool}'s"
        )


@pytest.mark.skipif(not HADOLINT.exists(), reason="hadolint comes with `make notebook-env`")
def test_generated_dockerfile_is_hadolint_clean(tmp_path: Path, notebook: Path) -> None:
    result = build_image(config(tmp_path, notebook))
    assert result.context_path is not None
    lint = subprocess.run(
        [str(HADOLINT), str(result.context_path / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_directory_source_with_entrypoint(tmp_path: Path) -> None:
    source = tmp_path / "project"
    (source / "pkg").mkdir(parents=True)
    (source / "train.py").write_text("print('hi')\n")
    (source / "pkg" / "util.py").write_text("X = 1\n")
    (source / "requirements.txt").write_text("rich==15.0.0\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    files = preprocess(source, entrypoint="train.py")
    assert sorted(files.files) == ["pkg/util.py", "requirements.txt", "train.py"]
    assert files.has_requirements and files.entrypoint == "train.py"
    with pytest.raises(KfkitError, match=r"entrypoint 'main\.py' is not in the directory"):
        preprocess(source, entrypoint="main.py")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"image": "Registry/Team/MNIST"},
            "image: 'Registry/Team/MNIST' is not a valid image name",
        ),
        ({"tag": "v1:latest"}, "tag: 'v1:latest' is not a valid tag"),
        ({"base_image": "tensorflow/:2"}, "base_image: 'tensorflow/:2' is not a valid image"),
        ({"pvc_name": "Shared_Workspace"}, "pvc_name: 'Shared_Workspace' is not a valid"),
        ({"registry_secret": "reg cred"}, "registry_secret: 'reg cred' is not a valid"),
        ({"user": "0:0"}, "user: the image must run as a non-root user"),
    ],
)
def test_bad_inputs_are_refused_and_nothing_is_left_on_the_pvc(
    tmp_path: Path, notebook: Path, overrides: dict, expected: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        build_image(config(tmp_path, notebook, **overrides))
    assert any(expected in line for line in raised.value.lines()), raised.value.lines()
    assert list((tmp_path / "pvc").iterdir()) == []


def test_missing_pvc_path_and_broken_notebook_leave_nothing_behind(tmp_path: Path) -> None:
    good = write_notebook(tmp_path / "ok.ipynb", [("code", "print(1)")])
    with pytest.raises(ValidationError, match=r"pvc_mount_path: .* does not exist"):
        build_image(config(tmp_path, good, pvc_mount_path=tmp_path / "not-mounted"))
    broken = tmp_path / "broken.ipynb"
    broken.write_text("not json", encoding="utf-8")
    with pytest.raises(KfkitError, match="not a readable notebook"):
        build_image(config(tmp_path, broken))
    with pytest.raises(KfkitError, match="no such notebook"):
        build_image(config(tmp_path, tmp_path / "missing.ipynb"))
    assert list((tmp_path / "pvc").iterdir()) == []


def test_cli_build_dry_run(tmp_path: Path, notebook: Path, capsys: pytest.CaptureFixture) -> None:
    import argparse

    from kfkit.cli import build as command

    parser = argparse.ArgumentParser(prog="kfkit")
    command.register(parser.add_subparsers())
    pvc = tmp_path / "pvc"
    pvc.mkdir()
    args = parser.parse_args(
        [
            "build",
            str(notebook),
            "--image=registry.example.org/team/mnist",
            "--tag=v2",
            "--base-image=tensorflow/tensorflow:2.16.1",
            "--pvc-name=shared-workspace",
            f"--pvc-mount-path={pvc}",
            "--kaniko-image=mirror.example.org/kaniko-project/executor:v1.23.2",
            "--namespace=team",
            "--dry-run",
        ]
    )
    assert args.func(args) == 0
    (manifest_path,) = pvc.glob("kanikotmp-*-job.yaml")
    job = yaml.safe_load(manifest_path.read_text())
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mirror.example.org/kaniko-project/executor:v1.23.2"
    assert job["metadata"]["namespace"] == "team"
    assert "--dry-run" in capsys.readouterr().err.replace("\n", " ")


def test_directory_source_refuses_links_out_of_the_directory(tmp_path: Path) -> None:
    private = tmp_path / "private.key"
    private.write_text("not for an image")
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print('hi')\n")
    (source / "inside.py").symlink_to(source / "train.py")
    (source / "loop").symlink_to(source / "loop")
    files = preprocess(source, entrypoint="train.py")
    assert files.files["inside.py"] == b"print('hi')\n"  # a link inside is its file
    assert "loop" not in files.files
    (source / "key").symlink_to(private)
    with pytest.raises(KfkitError, match=r"key: a symbolic link to .*private.key, outside"):
        preprocess(source, entrypoint="train.py")
    (source / "key").unlink()
    (source / "etc").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(KfkitError, match=r"etc: a symbolic link to .*, outside"):
        preprocess(source, entrypoint="train.py")
