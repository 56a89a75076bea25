"""Obtaining the raw IDX files and proving they are the official ones.

torchvision checks the md5 of the archives it downloads, but of files already in place it only
checks that they exist, so a truncated or altered file would train on garbage. Every file here is
checked against the published md5 of its uncompressed bytes, and files from any source are
verified in a staging folder before an atomic rename puts them in place, so a partial file never
sits where a later run would take it for a good one.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from torchvision.datasets.utils import check_integrity

from mnistlab.processes import alive

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawFiles:
    """The four IDX files of one dataset, laid out as torchvision reads them.

    ``folder`` is torchvision's dataset class name: files live in ``<data_dir>/<folder>/raw/``.
    ``files`` maps each file name to its size in bytes and the md5 of its uncompressed bytes.
    """

    folder: str
    files: Mapping[str, tuple[int, str]]

    def raw_dir(self, data_dir: str | os.PathLike[str]) -> Path:
        return Path(data_dir).expanduser().resolve() / self.folder / "raw"


MNIST_FILES = RawFiles(
    folder="MNIST",
    files={
        "train-images-idx3-ubyte": (47040016, "6bbc9ace898e44ae57da46a324031adb"),
        "train-labels-idx1-ubyte": (60008, "a25bea736e30d166cdddb491f175f624"),
        "t10k-images-idx3-ubyte": (7840016, "2646ac647ad5339dbf082846283269ea"),
        "t10k-labels-idx1-ubyte": (10008, "27ae3e4e09519cfbb04c329615203637"),
    },
)


@dataclass(frozen=True)
class Source:
    """One way to obtain the files: ``fetch(staging)`` returns the folder it wrote them to."""

    name: str
    fetch: Callable[[Path], Path]
    how_to_enable: str


class DataNotFoundError(RuntimeError):
    """The dataset is missing or damaged and no source could supply a verified copy."""


def find_problems(raw_dir: Path, spec: RawFiles, check_md5: bool = True) -> dict[str, str]:
    """Map each missing or damaged file to what is wrong with it (empty when all is well)."""
    problems = {}
    for name, (size, md5) in spec.files.items():
        path = raw_dir / name
        if path.is_dir():
            problems[name] = "is a folder where the file should be (remove it)"
        elif not path.is_file():
            problems[name] = "missing"
        elif path.stat().st_size != size:
            problems[name] = f"damaged: {path.stat().st_size} bytes, expected {size}"
        elif check_md5 and not check_integrity(str(path), md5):
            problems[name] = f"damaged: md5 differs from the official {md5}"
    return problems


def ensure_raw_files(data_dir: str | os.PathLike[str], spec: RawFiles,
                     sources: Sequence[Source]) -> Path:
    """Return the folder holding verified files, fetching them from ``sources`` in order."""
    raw_dir = spec.raw_dir(data_dir)
    blocking = next((p for p in [raw_dir, *raw_dir.parents] if p.exists() and not p.is_dir()),
                    None)
    if blocking is not None:
        raise DataNotFoundError(f"{blocking} is a file, so {spec.folder} data cannot be kept in "
                                f"{raw_dir}; point data.data_dir (or MNISTLAB_DATA_DIR) at a "
                                "folder")
    problems = find_problems(raw_dir, spec)
    if not problems:
        return raw_dir
    _remove_stale_staging(raw_dir.parent)
    log.info("%s files in %s need fetching: %s", spec.folder, raw_dir, ", ".join(problems))
    failures = []
    for source in sources:
        try:
            _fetch_verified(source, raw_dir, spec)
        except Exception as err:  # any failure means: try the next source
            failures.append(f"{source.name}: {type(err).__name__}: {_first_line(err)}")
            log.warning("could not obtain %s from %s: %s", spec.folder, source.name, err)
            continue
        log.info("obtained verified %s files from %s", spec.folder, source.name)
        return raw_dir
    raise DataNotFoundError(_not_found_message(raw_dir, spec, problems, sources, failures))


def _remove_stale_staging(folder: Path) -> None:
    """Delete staging folders left by fetches that were killed (their process is gone)."""
    for staging in folder.glob(".fetch-*-*"):
        pid = staging.name.split("-")[1]
        if pid.isdigit() and not alive(int(pid)):
            log.info("removing %s, left by an interrupted fetch", staging)
            shutil.rmtree(staging, ignore_errors=True)


def _fetch_verified(source: Source, raw_dir: Path, spec: RawFiles) -> None:
    """Fetch into a staging folder beside ``raw_dir``, verify, then move each file into place.

    The staging folder's name holds this process's id, so a later run can tell a folder left by
    a killed fetch from one that another process is still filling.
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw_dir.parent,
                                     prefix=f".fetch-{os.getpid()}-") as staging:
        fetched = source.fetch(Path(staging))
        bad = find_problems(fetched, spec)
        if bad:
            details = "; ".join(f"{name} {why}" for name, why in bad.items())
            raise ValueError(f"fetched files failed verification: {details}")
        for name in spec.files:
            os.replace(fetched / name, raw_dir / name)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no details"


def _not_found_message(raw_dir: Path, spec: RawFiles, problems: Mapping[str, str],
                       sources: Sequence[Source], failures: Sequence[str]) -> str:
    lines = [f"{spec.folder} data is missing or damaged in {raw_dir}:"]
    lines += [f"  {name}: {why}" for name, why in problems.items()]
    if failures:
        lines.append("Every source failed:")
        lines += [f"  {failure}" for failure in failures]
    lines.append("Fix it in one of these ways:")
    lines.append(
        f"  1. copy the four official uncompressed IDX files ({', '.join(spec.files)}) into "
        f"{raw_dir}/, or point data.data_dir (or the MNISTLAB_DATA_DIR environment variable) "
        f"at a folder that holds {spec.folder}/raw/ with them;"
    )
    lines += [f"  {i}. {source.how_to_enable}" for i, source in enumerate(sources, start=2)]
    return "\n".join(lines)
