"""Without a cluster, the builder really builds the image with buildah when it can.

The base image is made locally from scratch (nothing can be pulled here), so the
generated Dockerfile is built as written, without RUN steps: the build proves
the context layout, the COPY with its ownership, the non-root USER and the CMD.
Storage lives in the test's temporary directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from kfkit.builder import BuildConfig, build_image
from kfkit.builder.local import find_tool

pytestmark = pytest.mark.skipif(
    shutil.which("buildah") is None, reason="buildah is installed by `make builder-tools`"
)


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private containers-storage for this test (vfs: works in any container)."""
    conf = tmp_path / "storage.conf"
    conf.write_text(
        "[storage]\n"
        'driver = "vfs"\n'
        f'graphroot = "{tmp_path / "graph"}"\n'
        f'runroot = "{tmp_path / "run"}"\n'
    )
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
    monkeypatch.setenv("BUILDAH_ISOLATION", "chroot")
    yield tmp_path
    # vfs layers are plain directories; buildah removes what it made.
    subprocess.run(["buildah", "rm", "--all"], capture_output=True, timeout=60, check=False)
    subprocess.run(
        ["buildah", "rmi", "--all", "--force"], capture_output=True, timeout=60, check=False
    )


def buildah(*args: str) -> str:
    return subprocess.run(
        ["buildah", *args], capture_output=True, text=True, timeout=120, check=True
    ).stdout.strip()


def test_notebook_is_built_into_a_non_root_image(storage: Path) -> None:
    container = buildah("from", "scratch")
    buildah("commit", "--quiet", container, "localhost/kfkit-test-base:1")
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("%matplotlib inline\nprint('trained')")]
    )
    source = storage / "train.ipynb"
    nbformat.write(notebook, str(source))
    pvc = storage / "pvc"
    pvc.mkdir()
    result = build_image(
        BuildConfig(
            source=source,
            image="localhost/team/mnist",
            tag="v1",
            base_image="localhost/kfkit-test-base:1",
            pvc_name="shared-workspace",
            pvc_mount_path=pvc,
            dry_run=True,
            timeout=120,
        )
    )
    assert result.succeeded, result.message
    tool = find_tool()  # podman when installed: it reads the storage buildah wrote
    assert result.message == f"built localhost/team/mnist:v1 locally with {tool} (not pushed)"
    config = json.loads(buildah("inspect", "--type", "image", "localhost/team/mnist:v1"))
    image = config["OCIv1"]["config"]
    assert image["User"] == "1000:100"
    assert image["Cmd"] == ["python", "/app/train.py"]
    assert image["WorkingDir"] == "/app"
    working = buildah("from", "localhost/team/mnist:v1")
    root = Path(buildah("mount", working))
    try:
        script = root / "app" / "train.py"
        assert "print('trained')" in script.read_text()
        assert "%matplotlib" not in script.read_text()
        assert (script.stat().st_uid, script.stat().st_gid) == (1000, 100)
    finally:
        buildah("umount", working)


def test_missing_base_image_is_reported_not_built(storage: Path) -> None:
    source = storage / "train.py"
    source.write_text("print('x')\n")
    pvc = storage / "pvc"
    pvc.mkdir()
    result = build_image(
        BuildConfig(
            source=source,
            image="localhost/team/mnist",
            tag="v2",
            base_image="localhost/not-here:1",
            pvc_name="shared-workspace",
            pvc_mount_path=pvc,
            dry_run=True,
        )
    )
    assert not result.succeeded
    tool = find_tool()  # podman when installed: it reads the storage buildah wrote
    assert result.message == (
        f"not built locally: base image localhost/not-here:1 is not in {tool}'s local storage "
        f"(pull it first: {tool} pull localhost/not-here:1)"
    )
