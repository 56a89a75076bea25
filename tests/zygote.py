"""Test tooling: the entry points run as `python <script> <args>` runs them, each in a process
forked from one that has imported torch, Lightning and mnistlab already.

A fresh interpreter spends about 5 s of CPU importing them, and the end-to-end tests start
dozens of runs; forked, a run starts at once. The forked process is a new process (its own
pid, signals, exit status, cwd, environment, stdout and stderr files) that runs the script as
``__main__`` with the user's argv, as the interpreter does; only the imports are done already.
Tests that depend on a fresh interpreter (an address-space limit, what gets imported) start
one with ``subprocess`` instead. ``MNISTLAB_TEST_FORK=0`` makes every run a fresh interpreter.

The server (``python -m tests.zygote``) reads one request per line on stdin. For each, it forks
a supervisor, which forks the run, writes the run's pid and, once it ends, its exit status
(negative: the signal that ended it, as ``subprocess`` reports it) into the request's folder.
"""

from __future__ import annotations

import json
import os
import resource
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

# What every run imports, imported once here before any fork: the point of the zygote.
import lightning  # noqa: F401
import torch  # noqa: F401

import mnistlab.evaluation
import mnistlab.training  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
FORK = os.environ.get("MNISTLAB_TEST_FORK", "1") != "0"


class Run:
    """A started run, with the part of ``subprocess.Popen``'s interface the tests use."""

    def __init__(self, pid: int, status: Path | None = None,
                 process: subprocess.Popen | None = None) -> None:
        self.pid, self._status, self._process = pid, status, process
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            if self._process is not None:
                self.returncode = self._process.poll()
            elif self._status.is_file():
                self.returncode = int(self._status.read_text())
                shutil.rmtree(self._status.parent, ignore_errors=True)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)


class _Server:
    """This test process's zygote, started at its first use (its imports take about 5 s)."""

    _process: subprocess.Popen | None = None
    _lock = threading.Lock()

    @classmethod
    def request(cls, request: dict) -> None:
        with cls._lock:
            if cls._process is None or cls._process.poll() is not None:
                cls._process = subprocess.Popen(
                    [sys.executable, "-m", "tests.zygote"], cwd=ROOT, stdin=subprocess.PIPE,
                    text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
            cls._process.stdin.write(json.dumps(request) + "\n")
            cls._process.stdin.flush()


def start(script: str, args: Sequence[str], cwd: Path, env: dict[str, str], stdout: Path,
          stderr: Path | None = None, address_space: int | None = None) -> Run:
    """Run ``python ROOT/script args`` (script ``-m``: ``python -m args``) from ``cwd`` with
    ``env``, its output into files (both into ``stdout`` without ``stderr``), its address space
    capped at ``address_space`` bytes when given."""
    if not FORK:
        with stdout.open("w") as out:
            err = stderr.open("w") if stderr is not None else subprocess.STDOUT
            command = [sys.executable, *(["-m"] if script == "-m" else [str(ROOT / script)])]
            process = subprocess.Popen([*command, *args], cwd=cwd,
                                       env=env, stdout=out, stderr=err,
                                       stdin=subprocess.DEVNULL,
                                       preexec_fn=lambda: _cap(address_space))
            if stderr is not None:
                err.close()
        return Run(process.pid, process=process)
    folder = Path(tempfile.mkdtemp(prefix="zygote-"))
    _Server.request({"script": str(ROOT / script), "args": list(args), "cwd": str(cwd),
                     "env": dict(env), "stdout": str(stdout),
                     "stderr": None if stderr is None else str(stderr), "folder": str(folder),
                     "address_space": address_space})
    while not (folder / "pid").is_file():  # written by the supervisor once the run is forked
        time.sleep(0.02)
    return Run(int((folder / "pid").read_text()), status=folder / "status")


def run(script: str, args: Sequence[str], cwd: Path, env: dict[str, str],
        address_space: int | None = None) -> subprocess.CompletedProcess:
    """``start`` and wait; the output as text, like ``subprocess.run(capture_output=True)``."""
    with tempfile.TemporaryDirectory(prefix="output-") as output:
        out, err = Path(output, "stdout"), Path(output, "stderr")
        code = start(script, args, cwd, env, out, err, address_space).wait()
        return subprocess.CompletedProcess([script, *args], code, out.read_text(),
                                           err.read_text())


def _cap(address_space: int | None) -> None:
    """The run's address space capped (a memory limit that a large allocation runs into)."""
    if address_space is not None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))


def _write(path: Path, text: str) -> None:
    """Whole or not at all: the test process polls for the file."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.rename(path)


def _supervise(request: dict) -> None:
    """In the supervisor: fork the run, report its pid and its exit status."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the run's own children are waited for
    pid = os.fork()
    if pid == 0:
        _become(request)
    folder = Path(request["folder"])
    _write(folder / "pid", str(pid))
    _, status = os.waitpid(pid, 0)
    _write(folder / "status", str(os.waitstatus_to_exitcode(status)))
    os._exit(0)


def _become(request: dict) -> None:
    """In the run: the script's cwd, environment, argv and output files, then the script.

    Its exit (an exception, SystemExit or a signal) ends this process as it ends the
    interpreter's."""
    _cap(request["address_space"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        if path is None:  # stderr into stdout's file
            os.dup2(1, fd)
            continue
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    # New stream objects: the zygote's may hold state from before the fork.
    sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, closefd=False,  # noqa: SIM115
                                       errors="backslashreplace")
    if request["script"].endswith("/-m"):  # python -m <module> <args>
        module, *args = request["args"]
        sys.argv, sys.path[0] = ["-m", *args], request["cwd"]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [request["script"], *request["args"]]
        sys.path[0] = str(Path(request["script"]).parent)
        runpy.run_path(request["script"], run_name="__main__")
    sys.exit(0)


def _serve() -> None:
    """Fork a supervised run per request line (what they import is imported above)."""
    assert threading.active_count() == 1, "a fork would copy the zygote's threads' locks"
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    for line in sys.stdin:
        if os.fork() == 0:
            _supervise(json.loads(line))


if __name__ == "__main__":
    _serve()
