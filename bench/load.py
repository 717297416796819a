"""Load half of the benchmark: gunicorn on loopback, loaded by wrk (or a Python loop without it).

Nothing here imports Django: the server runs in its own processes.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from example_project.serving import free_port, processes, wait_until

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
CONNECTIONS = 4
# A path with "{row}" gets a random row number in 1..SPREAD_ROWS for each request.
SPREAD_ROWS = 50
STARTUP_TIMEOUT = 30.0


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def request(
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body or None, headers=dict(headers or {}))
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


@contextmanager
def gunicorn(env: Mapping[str, str], workers: int = WORKERS) -> Iterator[Server]:
    """gunicorn (sync workers) on a free loopback port; always stopped, by its pid, on exit."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")[1])
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--backlog",
        "256",
        "--timeout",
        "30",
        "--error-logfile",
        str(log),
        "--log-level",
        "warning",
        "bench.benchproject.wsgi:application",
    ]
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(port, process, log)
    try:
        try:
            wait_until(
                lambda: request(port, "GET", "/floor/", timeout=2.0)[0] == 200,
                process,
                timeout=STARTUP_TIMEOUT,
                what="gunicorn",
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{log.read_text()[-3000:]}") from None
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(
            process.pid, signal.SIGTERM
        )  # the session we started: master and workers
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    statuses: dict[int, int] = field(default_factory=dict)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    path = wrk_path()
    if path is None:
        return "not installed"
    done = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _millis(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if match is None:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


# Count the status of every response (per wrk thread), printed by done() as "status CODE COUNT".
_STATUS_COUNTER = """\
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      io.write(string.format("status %d %d\\n", code, count))
    end
  end
end"""


def _lua(method: str, headers: Mapping[str, str], body: bytes, path: str = "") -> str:
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"wrk.method = {quote(method)}", _STATUS_COUNTER]
    if body:
        lines.append(f"wrk.body = {quote(body.decode())}")
    for name, value in headers.items():
        lines.append(f"wrk.headers[{quote(name)}] = {quote(value)}")
    if "{row}" in path:
        before, _, after = path.partition("{row}")
        lines.append(
            "function request() return wrk.format(nil, "
            f"{quote(before)} .. math.random(1, {SPREAD_ROWS}) .. {quote(after)}) end"
        )
    return "\n".join(lines) + "\n"


def run_wrk(
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    duration: float,
    connections: int = CONNECTIONS,
    expected: int | None = None,
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(method, headers, body, path))
    try:
        command = [
            wrk_path() or "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            script.name,
            f"http://127.0.0.1:{port}{path.replace('{row}', '1')}",
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    finally:
        os.unlink(script.name)
    if done.returncode != 0:
        raise RuntimeError(
            f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}"
        )
    return parse_wrk(done.stdout, expected)


def parse_wrk(out: str, expected: int | None = None) -> LoadResult:
    """Requests/s, p50/p99 latency, statuses and errors (responses whose status is not
    ``expected``, connect errors and timeouts) from the output of ``wrk --latency``."""
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps_match is None:
        raise RuntimeError(f"wrk printed no Requests/sec: {out}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.MULTILINE))
    total = re.search(r"(\d+) requests in", out)
    statuses = {
        int(code): int(count)
        for code, count in re.findall(r"^status (\d+) (\d+)$", out, re.MULTILINE)
    }
    errors = 0
    if expected is not None and statuses:
        errors += sum(count for code, count in statuses.items() if code != expected)
    else:
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if non_2xx:
            errors += int(non_2xx.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        # A sync gunicorn worker closes each connection: wrk may count those closes as read errors.
        errors += int(socket_errors.group(1)) + int(socket_errors.group(4))
    return LoadResult(
        rps=float(rps_match.group(1)),
        p50_ms=_millis(latency.get("50", "nan")),
        p99_ms=_millis(latency.get("99", "nan")),
        requests=int(total.group(1)) if total else 0,
        errors=errors,
        statuses=statuses,
    )


def run_python(
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    duration: float,
    connections: int = CONNECTIONS,
    expected: int | None = None,
) -> LoadResult:
    """Fallback load generator: ``connections`` threads of http.client, a new connection per request
    (as a sync gunicorn worker closes each one). Far weaker than wrk: its own CPU competes."""
    latencies: list[float] = []
    errors = [0]
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def loop() -> None:
        mine: list[float] = []
        seen: dict[int, int] = {}
        failed = 0
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            try:
                url = path.replace("{row}", str(random.randint(1, SPREAD_ROWS)))
                status, _, _ = request(port, method, url, headers, body)
                seen[status] = seen.get(status, 0) + 1
                unexpected = status >= 400 if expected is None else status != expected
                if unexpected:
                    failed += 1
            except OSError:
                failed += 1
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)
            errors[0] += failed
            for code, count in seen.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=loop) for _ in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 30)
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return LoadResult(
        rps=len(latencies) / elapsed if elapsed else 0.0,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        requests=len(latencies),
        errors=errors[0],
        statuses=statuses,
    )


# -- CPU accounting ---------------------------------------------------------------------------------


def _cpu_ticks(pid: int) -> int:
    """User + system CPU clock ticks of ``pid`` so far (Linux ``/proc``), 0 if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def pid_of(name: str) -> int | None:
    """The pid of a local process named ``name`` (the Redis server), if there is one."""
    return next((pid for pid, found, _ in processes() if found == name), None)


class CpuMeter:
    """CPU time that groups of processes spend while a block runs, per request served."""

    def __init__(self, groups: Mapping[str, list[int]]) -> None:
        self.groups = {name: pids for name, pids in groups.items() if pids}
        self.ticks_per_second = os.sysconf("SC_CLK_TCK")

    def start(self) -> dict[str, int]:
        return {name: sum(map(_cpu_ticks, pids)) for name, pids in self.groups.items()}

    def per_request(self, started: dict[str, int], requests: int) -> dict[str, float]:
        """µs of CPU per request of each group since ``started``."""
        if requests <= 0:
            return {}
        now = self.start()
        return {
            name: (now[name] - started[name]) / self.ticks_per_second / requests * 1e6
            for name in self.groups
        }
