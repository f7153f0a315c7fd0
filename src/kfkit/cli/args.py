"""Argument forms a kubectl user types: resource names, ``KIND/NAME``, durations.

``job``/``jobs`` mean every training job kind; ``pytorchjob``, ``pytorchjobs``
and ``pytorchjobs.kubeflow.org`` (and the TFJob forms) mean that kind, as the
CRDs' singular, plural and group-qualified names do on a cluster.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from kfkit.errors import KfkitError
from kfkit.jobs.model import KINDS

ANY_KIND = "job"


def _kind_names() -> dict[str, str]:
    names = {"job": ANY_KIND, "jobs": ANY_KIND}
    for kind in KINDS:
        singular = kind.lower()
        for name in (singular, f"{singular}s"):
            names[name] = kind
            names[f"{name}.kubeflow.org"] = kind
    return names


KIND_NAMES = _kind_names()


@dataclass(frozen=True)
class Target:
    """A kind (``None``: any job kind) and, optionally, one name (and its namespace,
    when a manifest names it)."""

    kind: str | None
    name: str | None = None
    namespace: str | None = None


def kind_of(word: str) -> str | None:
    """The job kind ``word`` names (``None`` for any job kind)."""
    kind = KIND_NAMES.get(word.lower())
    if kind is None:
        known = ", ".join(sorted(n for n in KIND_NAMES if "." not in n))
        raise KfkitError(f"unknown resource type {word!r}; expected one of {known}")
    return None if kind == ANY_KIND else kind


def targets(words: list[str], need_name: bool) -> list[Target]:
    """``[KIND] [NAME ...]`` or ``KIND/NAME ...`` as kubectl reads them.

    ``need_name`` is for verbs that act on named jobs (describe, delete, wait).
    """
    if not words:
        raise KfkitError("name a resource type, e.g. `jobs`, or KIND/NAME")
    if all("/" in word for word in words):
        found = []
        for word in words:
            kind_word, _, name = word.partition("/")
            if not name:
                raise KfkitError(f"{word!r}: expected KIND/NAME")
            found.append(Target(kind_of(kind_word), name))
        return found
    if any("/" in word for word in words):
        raise KfkitError(
            "there is no need to name a resource type when using KIND/NAME for every argument"
        )
    kind, names = kind_of(words[0]), words[1:]
    if need_name and not names:
        raise KfkitError(f"name the {words[0]} to act on (or use --all)")
    return [Target(kind, name) for name in names] or [Target(kind)]


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> float:
    """Seconds in ``text``: a Go/kubectl duration (``10m``, ``1h30m``, ``90s``) or a number
    of seconds (``600``), as ``kubectl wait --timeout`` accepts."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise argparse.ArgumentTypeError(
                f"invalid duration {text!r}; expected e.g. 90s, 10m, 1h30m or seconds"
            ) from None
        seconds = sum(float(number) * _SECONDS[unit] for number, unit in parts)
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must not be negative")
    return seconds
