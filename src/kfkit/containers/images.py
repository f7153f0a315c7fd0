"""The kit's images: which Dockerfile makes which name, and building them once.

The names are the ones the manifests and pipelines use (a test checks that every
``kfkit/...`` image they name is here). A build is skipped when podman already has the
image with a label holding the hash of everything that goes into it (its Dockerfile, the
files its ``.dockerignore`` lets into the context, the build arguments), so ``make images``
is cheap when nothing changed and rebuilds exactly what did.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kfkit.containers import base, pipconfig
from kfkit.containers.podman import PodmanError, cache_root, podman

HASH_LABEL = "io.kfkit.context-sha256"
# Docker's image format keeps the Dockerfiles' SHELL (bash with pipefail); OCI drops it.
BUILD_FORMAT = "docker"


@dataclass(frozen=True)
class Image:
    key: str  # the folder under dockerfiles/
    name: str
    build_args: dict[str, str] = field(default_factory=dict)

    def dockerfile(self, root: Path) -> Path:
        return root / "dockerfiles" / self.key / "Dockerfile"


IMAGES = {
    image.key: image
    for image in (
        Image("pytorch", "kfkit/pytorch-mnist:0.1.0"),
        Image("tensorflow", "kfkit/tensorflow-mnist:0.1.0"),
        Image("notebook", "kfkit/notebook:0.1.0"),
        Image("kit", "kfkit/kit:0.1.0"),
    )
}


def base_images(dockerfile: Path) -> list[str]:
    """The external images a Dockerfile builds FROM (ARG defaults resolved, stages skipped)."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    found: list[str] = []
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "ARG" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            args.setdefault(key, value)
        elif len(words) >= 2 and words[0].upper() == "FROM":
            name = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], ""), words[1])
            if name not in stages and name not in found:
                found.append(name)
            if len(words) >= 4 and words[2].upper() == "AS":
                stages.add(words[3])
    return found


def context_files(root: Path, dockerfile: Path) -> list[Path]:
    """The files a build of ``dockerfile`` sees, by its ``Dockerfile.dockerignore``.

    The kit's ignore files all start with ``*`` and then let paths back in with ``!``;
    later patterns drop files again (``**/__pycache__``).
    """
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    patterns = [
        line.strip()
        for line in ignore.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    if not patterns or patterns[0] != "*":
        raise PodmanError(f"{ignore}: must start with '*' and list what the build needs")
    included = [p[1:].rstrip("/") for p in patterns[1:] if p.startswith("!")]
    excluded = [p for p in patterns[1:] if not p.startswith("!")]
    files: list[Path] = []
    for item in included:
        path = root / item
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        for candidate in candidates:
            relative = candidate.relative_to(root).as_posix()
            parts = relative.split("/")
            dropped = any(
                fnmatch.fnmatch(relative, pattern)
                or fnmatch.fnmatch(parts[-1], pattern.removeprefix("**/"))
                or any(fnmatch.fnmatch(part, pattern.removeprefix("**/")) for part in parts)
                for pattern in excluded
            )
            if candidate.is_file() and not dropped:
                files.append(candidate)
    return files


def context_hash(root: Path, image: Image) -> str:
    """sha256 over the Dockerfile, its ignore file, the build arguments and the context files."""
    dockerfile = image.dockerfile(root)
    digest = hashlib.sha256()
    inputs = [dockerfile, dockerfile.with_name(dockerfile.name + ".dockerignore")]
    for path in inputs + context_files(root, dockerfile):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(str(path.stat().st_mode & 0o111).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update(f"format={BUILD_FORMAT}\0".encode())
    for key, value in sorted(image.build_args.items()):
        digest.update(f"{key}={value}\0".encode())
    return digest.hexdigest()


def built_hash(name: str) -> str | None:
    """The context hash podman's copy of ``name`` was built from, or None if it has none."""
    result = podman(
        ["image", "inspect", "--format", '{{index .Labels "' + HASH_LABEL + '"}}', name],
        check=False,
    )
    value = result.stdout.strip()
    return value if result.returncode == 0 and value and value != "<no value>" else None


def ensure_image(root: Path, image: Image, *, timeout: float = 3600) -> str:
    """Build ``image`` unless podman has it from the same context; say what happened."""
    wanted = context_hash(root, image)
    if built_hash(image.name) == wanted:
        return f"{image.name}: up to date"
    dockerfile = image.dockerfile(root)
    for name in base_images(dockerfile):
        base.ensure_base(name)
    started = time.monotonic()
    work = cache_root() / "containers"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="build-") as tmp:
        command = [
            "build",
            "--pull=never",
            "--layers",
            "--format",
            BUILD_FORMAT,
            # The host's network: its resolver is not reachable from a container's own.
            "--network",
            "host",
            "-f",
            str(dockerfile),
            "--ignorefile",
            str(dockerfile.with_name(dockerfile.name + ".dockerignore")),
            "--label",
            f"{HASH_LABEL}={wanted}",
            "-t",
            image.name,
            *pipconfig.build_mounts(Path(tmp)),
            *[
                arg
                for key, value in image.build_args.items()
                for arg in ("--build-arg", f"{key}={value}")
            ],
            str(root),
        ]
        result = podman(command, timeout=timeout, check=False, capture=False)
    if result.returncode != 0:
        raise PodmanError(f"{dockerfile}: podman build failed (exit {result.returncode})")
    return f"{image.name}: built in {time.monotonic() - started:.0f}s"
