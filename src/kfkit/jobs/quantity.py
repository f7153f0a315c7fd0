"""Kubernetes resource quantities as numbers (``500m`` -> 0.5, ``1Gi`` -> 1073741824)."""

from __future__ import annotations

import math
import re

from kfkit.errors import KfkitError

_SUFFIXES = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0,
    "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
_PATTERN = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")


def parse_quantity(value: str | int | float) -> float:
    """The number a quantity stands for; ``KfkitError`` if it is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _PATTERN.match(str(value).strip())
    if not match:
        raise KfkitError(f"{value!r} is not a valid quantity")
    number, suffix = float(match.group(1)), match.group(2) or ""
    try:
        if suffix not in _SUFFIXES:  # an exponent, e3 or E3 ("E" and "Ei" are suffixes)
            return number * 10.0 ** int(suffix[1:])
        return number * _SUFFIXES[suffix]
    except OverflowError:  # 1e400: larger than any float, so larger than any machine
        return math.inf if number > 0 else -math.inf if number < 0 else 0.0


def cpu_threads(value: str | int | float) -> int:
    """Threads that fit a CPU limit: at least 1, rounded up (``500m`` -> 1, ``2`` -> 2)."""
    return max(1, math.ceil(parse_quantity(value) - 1e-9))
