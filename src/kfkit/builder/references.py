"""Image references, checked the way registries parse them, before any build starts."""

from __future__ import annotations

import re

from kfkit.errors import KfkitError

# [host[:port]/]component(/component)* with lowercase path components; tag separate.
_HOST_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]+)?)"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def check_name(name: str, what: str = "image") -> str:
    """``name`` when it is a valid repository name (no tag), else KfkitError."""
    if not name or not _NAME.match(name) or len(name) > 255:
        raise KfkitError(
            f"{what}: {name!r} is not a valid image name "
            "(lowercase path components, optional registry host; no tag here)"
        )
    return name


def check_tag(tag: str) -> str:
    if not _TAG.match(tag or ""):
        raise KfkitError(f"tag: {tag!r} is not a valid tag (letters, digits, '_', '.', '-')")
    return tag


def check_reference(reference: str, what: str = "base image") -> str:
    """A full reference (``name[:tag][@sha256:...]``), e.g. a base image."""
    rest, _, digest = reference.partition("@")
    if digest and not _DIGEST.match(digest):
        raise KfkitError(f"{what}: {reference!r} has an invalid digest")
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest.rsplit(":", 1)
    try:
        check_name(name, what)
        if tag is not None:
            check_tag(tag)
    except KfkitError:
        raise KfkitError(f"{what}: {reference!r} is not a valid image reference") from None
    return reference


def is_digest(text: str) -> bool:
    return bool(_DIGEST.match(text.strip()))
