"""The images' Dockerfiles, checked by parsing them (no base image can be pulled here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ["pytorch", "tensorflow", "kit"]


def parse(image: str) -> DockerfileParser:
    parser = DockerfileParser(fileobj=(ROOT / "dockerfiles" / image / "Dockerfile").open("rb"))
    return parser


def instructions(image: str) -> list[dict[str, str]]:
    return [i for i in parse(image).structure if i["instruction"] != "COMMENT"]


def stages(image: str) -> list[list[dict[str, str]]]:
    result: list[list[dict[str, str]]] = []
    for item in instructions(image):
        if item["instruction"] == "FROM":
            result.append([])
        if result:
            result[-1].append(item)
    return result


def build_args(image: str) -> dict[str, str]:
    args = {}
    for item in instructions(image):
        if item["instruction"] == "ARG" and "=" in item["value"]:
            name, _, value = item["value"].partition("=")
            args[name] = value
    return args


@pytest.mark.parametrize("image", IMAGES)
def test_multi_stage_from_a_pinned_slim_python(image: str) -> None:
    froms = [i["value"] for i in instructions(image) if i["instruction"] == "FROM"]
    assert len(froms) >= 2, "multi-stage: build, then a clean runtime stage"
    base = build_args(image)["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    for value in froms:
        assert value.split()[0] in ("${PYTHON_IMAGE}", base)


@pytest.mark.parametrize("image", IMAGES)
def test_final_stage_runs_as_uid_1000_without_compilers(image: str) -> None:
    final = stages(image)[-1]
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] == "1000"
    runs = " ".join(i["value"] for i in final if i["instruction"] == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|clang|build-essential|make)\b", runs)
    assert "apt-get install" not in runs
    labels = parse(image).labels
    for key in ("title", "description", "version", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}")


@pytest.mark.parametrize("image", IMAGES)
def test_no_remote_add_and_no_secrets(image: str) -> None:
    for item in instructions(image):
        if item["instruction"] == "ADD":
            assert not re.search(r"\b(https?|ftp)://", item["value"]), item["content"]
        if item["instruction"] in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"(?i)(password|secret|token|api_?key)", item["value"])
    text = (ROOT / "dockerfiles" / image / "Dockerfile").read_text()
    assert not re.search(r"(?i)(password|secret|token|api_?key)\s*=", text)


@pytest.mark.parametrize("image", IMAGES)
def test_pinned_requirements_installed_before_the_code(image: str) -> None:
    build = stages(image)[0]
    steps = [(i["instruction"], i["value"]) for i in build]

    def first(predicate: object) -> int:
        return next(n for n, step in enumerate(steps) if predicate(step))  # type: ignore[operator]

    copy_reqs = first(lambda s: s[0] == "COPY" and "requirements/runtime.txt" in s[1])
    install_reqs = first(
        lambda s: s[0] == "RUN" and "-c /opt/kfkit/requirements/constraints.txt" in s[1]
    )
    copy_code = first(lambda s: s[0] == "COPY" and s[1].startswith("src "))
    install_code = first(lambda s: s[0] == "RUN" and "--no-deps /opt/kfkit" in s[1])
    assert copy_reqs < install_reqs < copy_code < install_code
    assert "requirements/constraints.txt" in steps[copy_reqs][1]


@pytest.mark.parametrize("image", IMAGES)
def test_ignore_file_keeps_the_context_small(image: str) -> None:
    lines = (ROOT / "dockerfiles" / image / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"  # everything excluded unless re-included
    assert {"!src/", "!requirements/runtime.txt", "!requirements/constraints.txt"} <= set(rules)
