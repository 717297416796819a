"""Servers in subprocesses, for the tests and the benchmarks: a free loopback port, waiting
until one answers, finding its worker processes, and stopping it for sure."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    *,
    timeout: float = 30.0,
    what: str = "the server",
) -> None:
    """Poll ``ready()`` (an OSError counts as not ready) until it holds; fail if ``process``
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Terminate ``process`` and wait for it; kill it if it does not stop in ``timeout`` s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def processes() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, name, the ``/proc/<pid>/stat`` fields after the name) of every process (Linux)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")
            yield int(stat.parent.name), head.split("(", 1)[1], rest.split()
        except (OSError, IndexError, ValueError):
            continue


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (a gunicorn master's workers)."""
    return [child for child, _, fields in processes() if fields[1] == str(pid)]
