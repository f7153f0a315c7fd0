"""How the kfkit command reads kubectl's argument forms (no job runs)."""

from __future__ import annotations

import argparse

import pytest

from kfkit.cli.args import Target, duration, targets
from kfkit.errors import KfkitError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("600", 600.0), ("10m", 600.0), ("1h30m", 5400.0), ("90s", 90.0), ("500ms", 0.5)],
)
def test_durations_read_as_kubectl_reads_them(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["ten", "10 m", "1x", "m", "-5", "10m-"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        duration(text)


def test_kind_names_singular_plural_qualified_and_slash_forms() -> None:
    assert targets(["jobs"], need_name=False) == [Target(None)]
    assert targets(["pytorchjob", "a", "b"], need_name=True) == [
        Target("PyTorchJob", "a"),
        Target("PyTorchJob", "b"),
    ]
    assert targets(["tfjobs.kubeflow.org"], need_name=False) == [Target("TFJob")]
    assert targets(["job/a", "TFJob/b"], need_name=True) == [
        Target(None, "a"),
        Target("TFJob", "b"),
    ]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["pods"], "unknown resource type 'pods'"),
        (["job"], "name the job to act on"),
        (["job/a", "b"], "no need to name a resource type"),
        (["job/"], "expected KIND/NAME"),
    ],
)
def test_bad_resource_arguments_are_one_line_errors(words: list[str], message: str) -> None:
    with pytest.raises(KfkitError, match=message):
        targets(words, need_name=True)
