"""Building without a cluster: podman or buildah, when one is installed and has the base image.

Neither needs a daemon, like Kaniko. The image is built only, never pushed:
pushing is the cluster build's job, with the registry secret. Both run with kfkit's one
podman configuration (``kfkit.containers.podman``: runc, cgroupfs, rlimits that work here)
and see the host's pip configuration during RUN steps, as ``make images`` does.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kfkit.containers import pipconfig
from kfkit.containers.podman import environment

TOOLS = ("podman", "buildah")


@dataclass(frozen=True)
class LocalBuild:
    built: bool
    message: str


def find_tool() -> str | None:
    for tool in TOOLS:
        if shutil.which(tool):
            return tool
    return None


def has_image(tool: str, image: str) -> bool:
    if tool == "podman":
        command = ["podman", "image", "exists", image]
    else:
        command = ["buildah", "inspect", "--type", "image", image]
    result = subprocess.run(
        command, capture_output=True, timeout=60, check=False, env=environment()
    )
    return result.returncode == 0


def build_locally(context: Path, image: str, base_image: str, timeout: float) -> LocalBuild:
    """Build ``image`` from ``context`` when possible; say exactly why not otherwise."""
    tool = find_tool()
    if tool is None:
        return LocalBuild(False, "not built locally: neither podman nor buildah is installed")
    if not has_image(tool, base_image):
        return LocalBuild(
            False,
            f"not built locally: base image {base_image} is not in {tool}'s local storage "
            f"(pull it first: {tool} pull {base_image})",
        )
    verb = "build" if tool == "podman" else "bud"
    command = [tool, verb, "--pull=never", "--network", "host", "-f", str(context / "Dockerfile")]
    command += ["-t", image]
    try:
        with tempfile.TemporaryDirectory(prefix="kfkit-build-") as tmp:
            command += pipconfig.build_mounts(Path(tmp))
            result = subprocess.run(
                [*command, str(context)], timeout=timeout, check=False, env=environment()
            )
    except subprocess.TimeoutExpired:
        return LocalBuild(False, f"{tool} did not finish within {timeout:.0f}s")
    if result.returncode != 0:
        return LocalBuild(False, f"{tool} {verb} failed with exit code {result.returncode}")
    return LocalBuild(True, f"built {image} locally with {tool} (not pushed)")
