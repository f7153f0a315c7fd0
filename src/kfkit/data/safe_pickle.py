"""A pickle loader that can build numpy arrays and nothing else.

Unpickling runs whatever callables the pickle names, so a pickle from a
download must never go through ``pickle.load``. This loader resolves only
the three globals a pickled ndarray needs; anything else is refused before
it runs.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from kfkit.errors import KfkitError


def _reconstruct() -> Any:
    # numpy 2 moved numpy.core to numpy._core; pickles written by numpy 1 name the old path.
    from numpy._core.multiarray import _reconstruct as reconstruct

    return reconstruct


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class ArrayUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` allows only numpy array reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return factory()


def loads_arrays(data: bytes, name: str) -> Any:
    """Unpickle ``data`` (Python 2 pickles included) allowing only numpy arrays.

    Raises KfkitError naming ``name`` when the pickle asks for anything else
    or is damaged.
    """
    try:
        return ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise KfkitError(f"{name}: unsafe or corrupt pickle: {error}") from error
