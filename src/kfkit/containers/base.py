"""A local stand-in for the images' base, made only when the base cannot be pulled.

The Dockerfiles build ``FROM python:3.11.7-slim-bookworm``: Debian bookworm (minimal) with
CPython 3.11.7 under ``/usr/local``. Where no registry answers, the same thing is made here:
``debootstrap --variant=minbase bookworm`` with the shared libraries CPython's modules link
against, plus this machine's own CPython of exactly that version (its standard library,
without its site-packages, and pip from its bundled ``ensurepip``), imported with
``podman import`` under the base's name. The Dockerfiles stay what a user with a registry
builds, and both bases give the same interpreter, so the same pins resolve.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kfkit.containers.podman import PodmanError, cache_root, podman

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What the official slim image carries besides the minimal base: CA certificates, netbase,
# tzdata and the libraries CPython's extension modules are linked against.
PACKAGES = (
    "ca-certificates,netbase,tzdata,libssl3,libsqlite3-0,libffi8,zlib1g,libbz2-1.0,"
    "liblzma5,libreadline8,libuuid1,libncursesw6,libgdbm6,libexpat1"
)
PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"


def python_version(image: str) -> str:
    """The CPython version a ``python:X.Y.Z-...`` image name promises."""
    match = re.fullmatch(
        r"(?:docker\.io/(?:library/)?)?python:(\d+\.\d+\.\d+)-slim-bookworm", image
    )
    if not match:
        raise PodmanError(
            f"{image}: no local stand-in for this base (only python:X.Y.Z-slim-bookworm)"
        )
    return match[1]


def ensure_base(image: str, *, pull_timeout: float = 90) -> str:
    """Make sure ``image`` is in podman's storage; say how it got there."""
    if podman(["image", "exists", image], check=False).returncode == 0:
        return f"{image}: present"
    pulled = podman(["pull", "-q", image], check=False, timeout=pull_timeout)
    if pulled.returncode == 0:
        return f"{image}: pulled"
    make_stand_in(image)
    return f"{image}: made locally (debootstrap {SUITE} + CPython {python_version(image)})"


def _host_python_prefix(version: str) -> Path:
    if platform.python_version() != version:
        raise PodmanError(
            f"cannot make a stand-in for python:{version}: this machine's CPython is "
            f"{platform.python_version()}, and {version} cannot be pulled"
        )
    return Path(sys.base_prefix)


def make_stand_in(image: str) -> None:
    """debootstrap + this machine's CPython, imported as ``image``."""
    version = python_version(image)
    prefix = _host_python_prefix(version)
    for tool in ("debootstrap", "chroot", "tar"):
        if shutil.which(tool) is None:
            raise PodmanError(f"cannot make the base {image}: {tool} is not installed")
    work = cache_root() / "containers"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={PACKAGES}",
                SUITE,
                str(rootfs),
                MIRROR,
            ]
        )
        _copy_python(prefix, rootfs / "usr" / "local")
        _run(["chroot", str(rootfs), "/sbin/ldconfig"])
        minor = ".".join(version.split(".")[:2])
        for name, target in (("python3", f"python{minor}"), ("python", "python3")):
            link = rootfs / "usr" / "local" / "bin" / name
            if not link.exists():
                link.symlink_to(target)
        _run(["chroot", str(rootfs), "/usr/local/bin/python3", "-m", "ensurepip", "--default-pip"])
        pip = rootfs / "usr" / "local" / "bin" / "pip"
        if not pip.exists():
            pip.symlink_to("pip3")
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        shutil.rmtree(rootfs / "var" / "lib" / "apt" / "lists", ignore_errors=True)
        archive = Path(tmp) / "rootfs.tar"
        _run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(archive), "."])
        changes = [
            f"ENV PATH={PATH}",
            "ENV LANG=C.UTF-8",
            f"ENV PYTHON_VERSION={version}",
            'CMD ["python3"]',
        ]
        podman(
            [
                "import",
                *[arg for change in changes for arg in ("--change", change)],
                str(archive),
                image,
            ],
            timeout=600,
        )


def _copy_python(prefix: Path, destination: Path) -> None:
    """The interpreter, its shared library and standard library; none of its installed packages."""
    destination.mkdir(parents=True, exist_ok=True)
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    members = [f"bin/{minor}", f"lib/{minor}"]
    members += [str(path.relative_to(prefix)) for path in prefix.glob("lib/libpython3*")]
    exclude = [f"{minor}/site-packages/*", f"{minor}/test"]
    pack = subprocess.Popen(
        [
            "tar",
            "-C",
            str(prefix),
            *[f"--exclude=lib/{item}" for item in exclude],
            "-cf",
            "-",
            *members,
        ],
        stdout=subprocess.PIPE,
    )
    unpack = subprocess.run(
        ["tar", "-C", str(destination), "-xf", "-"], stdin=pack.stdout, check=False
    )
    if pack.wait() != 0 or unpack.returncode != 0:
        raise PodmanError(f"copying CPython from {prefix} into the base failed")


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise PodmanError(f"{command[0]} failed (exit {result.returncode}): {' '.join(tail)}")
