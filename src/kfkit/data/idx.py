"""Read and write the IDX format that the MNIST files use.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order.
MNIST only uses unsigned bytes (type code 0x08), which is all this module handles.
Every problem names the file, so a corrupt or truncated download is never
mistaken for training data.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from kfkit.errors import KfkitError

UBYTE = 0x08


def encode(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array (any number of dimensions)."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX encoding here is for uint8 arrays, not {array.dtype}")
    header = struct.pack(">BBBB", 0, 0, UBYTE, array.ndim)
    header += b"".join(struct.pack(">I", size) for size in array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def decode(data: bytes, name: str) -> np.ndarray:
    """Parse IDX bytes into a uint8 array; ``name`` is used in error messages."""
    if len(data) < 4:
        raise KfkitError(f"{name}: not an IDX file: only {len(data)} bytes")
    zero1, zero2, type_code, ndim = struct.unpack(">BBBB", data[:4])
    if zero1 or zero2 or type_code != UBYTE or not 1 <= ndim <= 4:
        raise KfkitError(f"{name}: not an IDX file of unsigned bytes (bad magic number)")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise KfkitError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header_size
    if actual != expected:
        raise KfkitError(
            f"{name}: truncated or corrupt: header says {expected} values of shape "
            f"{tuple(shape)}, file holds {actual}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def read_bytes(path: Path) -> bytes:
    """The raw IDX bytes of ``path``, gunzipped when the name ends in ``.gz``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise KfkitError(f"{path}: cannot read: {error}") from error


def read(path: Path) -> np.ndarray:
    """Load an IDX file (raw or gzipped) as a uint8 array."""
    return decode(read_bytes(path), str(path))
