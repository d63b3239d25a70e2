"""The HTTP servers under test, as subprocesses on 127.0.0.1: ``ledger serve``
and the bare baseline app, both uvicorn in factory mode with the same number
of workers; and a sampler of their resident memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from bench.loadgen import LOOPBACK

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
SAMPLE_EVERY_S = 0.2


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def _process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` with its output in ``log``; stop it on exit (SIGINT, then
    SIGKILL of its process group after ``STOP_TIMEOUT_S``)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT_S)


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[int]:
    """Start ``command``; yield its pid once ``/healthz`` answers."""
    with _process(command, env, log) as process:
        _wait_ready(process, port, log)
        yield process.pid


@contextmanager
def background(command: list[str], env: dict[str, str], log: Path) -> Iterator[int]:
    """Run ``command`` (no port: e.g. ``ledger project``) for the duration."""
    with _process(command, env, log) as process:
        time.sleep(1.0)
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited ({process.returncode}); see {log}")
        yield process.pid


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}); see {log}")
        try:
            if httpx.get(f"http://{LOOPBACK}:{port}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {START_TIMEOUT_S:.0f} s; see {log}")


def ledger_serve(port: int, workers: int) -> list[str]:
    """The command line of ``ledger serve`` (its settings come through ``server``'s env)."""
    return [
        str(BIN / "ledger"),
        "serve",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def uvicorn_bare(port: int, workers: int) -> list[str]:
    """The bare app under the same uvicorn settings as ``ledger serve``."""
    return [
        str(BIN / "uvicorn"),
        "bench.bare_app:create_app",
        "--factory",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


class RssSampler:
    """Samples the resident memory of a process and its children every
    ``SAMPLE_EVERY_S`` in a thread; keeps the peaks (total and per process)."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak_total_bytes = 0
        self.peak_process_bytes = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.sample()

    def sample(self) -> None:
        sizes = []
        for process in [self.root, *self.root.children(recursive=True)]:
            try:
                sizes.append(process.memory_info().rss)
            except psutil.Error:
                continue
        if sizes:
            self.processes = max(self.processes, len(sizes))
            self.peak_total_bytes = max(self.peak_total_bytes, sum(sizes))
            self.peak_process_bytes = max(self.peak_process_bytes, max(sizes))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid`` and its live children."""
    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total
