"""The kit's image table, context hashing and podman configuration (no podman needed)."""

from __future__ import annotations

import re
import resource
import shutil
import sys
from pathlib import Path

from kfkit.containers import images, pipconfig, podman

ROOT = Path(__file__).resolve().parents[2]


def test_every_kit_image_the_manifests_name_is_built_by_make_images() -> None:
    named: set[str] = set()
    for folder in ("manifests", "pipelines"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in (".yaml", ".yml", ".py"):
                named.update(re.findall(r"\bkfkit/[a-z0-9-]+:[0-9][\w.-]*", path.read_text()))
    assert named, "the manifests name no kit image"
    assert named <= {image.name for image in images.IMAGES.values()}


def test_every_dockerfile_folder_has_an_image_and_a_base() -> None:
    folders = {path.parent.name for path in (ROOT / "dockerfiles").glob("*/Dockerfile")}
    assert folders == set(images.IMAGES)
    for image in images.IMAGES.values():
        assert images.base_images(image.dockerfile(ROOT)) == ["python:3.11.7-slim-bookworm"]


def _copy_pytorch_context(tmp_path: Path) -> Path:
    for relative in (
        "dockerfiles/pytorch",
        "requirements",
        "pyproject.toml",
        "README.md",
        "src/kfkit/containers",
    ):
        source, target = ROOT / relative, tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return tmp_path


def test_the_context_hash_follows_exactly_what_the_build_sees(tmp_path: Path) -> None:
    root = _copy_pytorch_context(tmp_path)
    image = images.IMAGES["pytorch"]
    first = images.context_hash(root, image)
    assert images.context_hash(root, image) == first
    # Outside the context (not let in by the ignore file): no rebuild.
    (root / "requirements" / "dev.txt").write_text("pytest==0\n")
    (root / "src" / "kfkit" / "containers" / "__pycache__").mkdir()
    (root / "src" / "kfkit" / "containers" / "__pycache__" / "x.pyc").write_bytes(b"x")
    assert images.context_hash(root, image) == first
    # Inside it: a rebuild.
    (root / "src" / "kfkit" / "containers" / "new.py").write_text("X = 1\n")
    assert images.context_hash(root, image) != first
    files = {
        p.relative_to(root).as_posix() for p in images.context_files(root, image.dockerfile(root))
    }
    assert "requirements/runtime.txt" in files and "requirements/dev.txt" not in files


def test_build_mounts_cover_the_paths_pip_is_configured_with(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    (tmp_path / "index" / "simple").mkdir(parents=True)
    wheels.mkdir()
    settings = {
        "find-links": str(wheels),
        "extra-index-url": f"file://{tmp_path}/index/simple https://example.org/simple",
        "timeout": "60",
    }
    # The index's folder, not only simple/: its pages link to files beside it.
    assert pipconfig.local_paths(settings) == [wheels, tmp_path / "index"]


def test_containers_conf_sets_runc_cgroupfs_and_limits_podman_may_set() -> None:
    text = podman.config_text()
    assert 'runtime = "runc"' in text and 'cgroup_manager = "cgroupfs"' in text
    nofile = int(re.search(r"nofile=(\d+):", text)[1])  # type: ignore[index]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert 0 < nofile <= (hard if hard != resource.RLIM_INFINITY else nofile)


def test_the_notebook_image_installs_what_its_kfkit_modules_import() -> None:
    """The notebook image imports kfkit.builder and kfkit.poddefaults at build time."""
    import ast

    modules = {"yaml": "pyyaml", "kubernetes": "kubernetes", "rich": "rich"}
    needed: set[str] = set()
    for package in ("builder", "poddefaults", "containers"):
        for path in (ROOT / "src" / "kfkit" / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                needed.update(name.split(".")[0] for name in names)
    third_party = {n for n in needed if n not in sys.stdlib_module_names and n != "kfkit"}
    pinned = {
        line.split("==")[0].strip().lower().replace("_", "-")
        for line in (ROOT / "dockerfiles/notebook/requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    missing = {n for n in third_party if modules.get(n, n).lower() not in pinned}
    assert not missing, f"dockerfiles/notebook/requirements.txt lacks {sorted(missing)}"
