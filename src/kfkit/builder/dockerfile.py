"""The Dockerfile of a build: the base image, the requirements layer, then the code.

Requirements are installed before the code is copied, so editing the code does
not reinstall them (Kaniko's layer cache keeps that layer). Installing runs as
root, since pip writes to the image's site-packages; the image then runs as a
non-root user, whatever the base image's default user was.
"""

from __future__ import annotations

import json

DEFAULT_USER = "1000:100"  # jovyan:users, as in Kubeflow's notebook images
WORKDIR = "/app"


CODE_DIR = "app"  # where the context keeps the code, beside Dockerfile and requirements.txt


def render_dockerfile(
    base_image: str,
    entrypoint: str | None,
    has_requirements: bool,
    user: str = DEFAULT_USER,
) -> str:
    """The Dockerfile for a context laid out as ``requirements.txt`` + ``app/``."""
    lines = [f"FROM {base_image}", "USER 0", f"WORKDIR {WORKDIR}"]
    if has_requirements:
        lines += [
            f"COPY requirements.txt {WORKDIR}/requirements.txt",
            f"RUN python -m pip install --no-cache-dir -r {WORKDIR}/requirements.txt",
        ]
    lines += [f"COPY --chown={user} {CODE_DIR}/ {WORKDIR}/", f"USER {user}"]
    if entrypoint is not None:
        lines.append(f"CMD {json.dumps(['python', f'{WORKDIR}/{entrypoint}'])}")
    return "\n".join(lines) + "\n"
