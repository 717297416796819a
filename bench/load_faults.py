"""The load oracle's options for the local version cache (issue 16 item 2): a redis-server of the
run's own, faults injected into it while the load runs, and the workers' local-cache counters.

- ``--own-redis``: a redis-server on a free loopback port, started and stopped by the run;
- ``--faults``: on that server, in a cycle, a pause (``SIGSTOP``, ``SIGCONT`` a second later),
  ``CLIENT KILL TYPE normal`` (every worker's connections, the tracking ones included), a
  ``FLUSHDB`` and a restart (an empty server with a new ``run_id``);
- ``--no-local`` (``CONDITIONAL_LOCAL_CACHE = False``), ``--no-fence`` (the control:
  ``CONDITIONAL_WRITE_FENCE = False``), ``--lease`` (``CONDITIONAL_LEASE_SECONDS``);
- ``--django-redis``: the cache is django-redis's ``RedisCache`` (same server);
- ``--sentinel``: a Redis Sentinel group of the run's own (``tests.redis_topology``: a primary, a
  replica, three sentinels) behind django-redis's Sentinel client, and, with ``--faults``, a
  forced ``SENTINEL FAILOVER`` in a cycle (each waits until the old master is a replica again);
- every gunicorn worker appends its ``store.local.stats()`` to a file when it exits (a gunicorn
  ``worker_exit`` hook): reads answered from memory and reads that made a round trip on the
  tracking connection, counted there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from example_project.serving import free_port

GUNICORN_CONF = """\
import json, os

def worker_exit(server, worker):
    from django_conditional.store import local
    with open(os.environ["LOAD_ORACLE_STATS"], "a") as out:
        out.write(json.dumps(local.stats()) + "\\n")
"""


def add_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--own-redis", action="store_true", help="a redis-server of the run's own")
    add("--django-redis", action="store_true", help="django-redis's RedisCache")
    add("--sentinel", action="store_true", help="a Sentinel group of the run's own")
    add("--faults", action="store_true", help="pause, kill, flush, restart (own Redis)")
    add("--no-local", action="store_true", help="CONDITIONAL_LOCAL_CACHE = False")
    add("--no-fence", action="store_true", help="the control: no writer's wait")
    add("--lease", type=float, default=None, help="CONDITIONAL_LEASE_SECONDS")
    add("--write-interval", type=float, default=0.0, help="pause between writes")
    add("--steady", type=float, default=0.0, help="then wrk revalidations, seconds")


def settings(args: argparse.Namespace) -> str:
    lines = []
    if args.no_local:
        lines.append("CONDITIONAL_LOCAL_CACHE = False")
    if args.no_fence:
        lines.append("CONDITIONAL_WRITE_FENCE = False")
    if args.lease is not None:
        lines.append(f"CONDITIONAL_LEASE_SECONDS = {args.lease!r}")
    if args.own_redis and not args.django_redis:
        lines.append(
            'CACHES["default"]["OPTIONS"] = {"socket_timeout": 5}  # noqa: F405'
        )
    topology = getattr(args, "topology", None)
    if topology is not None:
        entry = topology.django_redis_cache_settings(db=0, SOCKET_TIMEOUT=5)
        lines.append(
            f'CACHES["default"] = {{**{entry!r}, "KEY_PREFIX": CACHES["default"]["KEY_PREFIX"]}}  # noqa: F405'
        )
    return "".join(line + "\n" for line in lines)


def start_sentinel(directory: Path) -> Any:
    """A Sentinel group of the run's own (``--sentinel``)."""
    from tests.redis_topology import SentinelTopology

    topology = SentinelTopology(directory / "sentinel")
    topology.start()
    return topology


def fail_over(topology: Any, stop: threading.Event, done: list[str]) -> None:
    """A forced failover, then 3 s of calm, until ``stop``: what was done goes to ``done``."""
    while not stop.wait(3.0):
        began = time.monotonic()
        address = topology.failover()
        done.append(
            f"{began:.3f} failover to {address[1]} ({time.monotonic() - began:.1f}s)"
        )


class OwnRedis:
    """A redis-server on a free loopback port (no persistence), restartable on that port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise SystemExit("--own-redis needs redis-server on the PATH")
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while self.call("PING") is None:
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(
                self.process.pid, signal.SIGCONT
            )  # a paused server cannot die cleanly
            self.process.kill()
            self.process.wait(timeout=10)

    def call(self, *words: str) -> Any:
        import redis

        try:
            client = redis.Redis(port=self.port, socket_timeout=5)
            try:
                return client.execute_command(*words)
            finally:
                client.close()
        except redis.RedisError:
            return None

    def signal(self, number: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, number)


def inject(server: OwnRedis, stop: threading.Event, done: list[str]) -> None:
    """The fault cycle, every 5 s, until ``stop``; what was done goes to ``done``."""
    actions = ["pause", "kill", "flushdb", "restart"]
    step = 0
    while not stop.wait(5.0):
        action = actions[step % len(actions)]
        step += 1
        if action == "pause":
            server.signal(signal.SIGSTOP)
            time.sleep(1.0)
            server.signal(signal.SIGCONT)
        elif action == "kill":
            server.call("CLIENT", "KILL", "TYPE", "normal")
        elif action == "flushdb":
            server.call("FLUSHDB")
        else:
            server.stop()
            server.start()
        done.append(f"{time.monotonic():.3f} {action}")


def start_faults(
    server: OwnRedis | None, args: argparse.Namespace, stop: threading.Event
) -> list[str]:
    done: list[str] = []
    topology = getattr(args, "topology", None)
    if args.faults and topology is not None:
        threading.Thread(
            target=fail_over, args=(topology, stop, done), daemon=True
        ).start()
    elif args.faults:
        if server is None:
            raise SystemExit("--faults needs --own-redis")
        threading.Thread(target=inject, args=(server, stop, done), daemon=True).start()
    return done


def steady(port: int, final: dict[str, tuple[str | None, str]], seconds: float) -> int:
    """A steady revalidation load after the oracle's (no writes): wrk sends each article's
    current tag for ``seconds``; the number of its answers (304s, checked once first)."""
    import http.client
    import re

    if not seconds:
        return 0
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("--steady needs wrk (bench/ensure-tools)")
    path, (tag, _) = next(iter(final.items()))
    assert tag is not None
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"If-None-Match": tag})
    status = connection.getresponse().status
    connection.close()
    assert status == 304, status
    run = subprocess.run(
        [wrk, "-t1", "-c8", f"-d{seconds:g}s", "-H", f"If-None-Match: {tag}",
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=seconds + 30,
    )  # fmt: skip
    found = re.search(r"(\d+) requests in", run.stdout)
    assert found and "Non-2xx" not in run.stdout, run.stdout
    print(f"steady revalidation (wrk, {seconds:g}s, {path}): {found.group(1)} 304s")
    return int(found.group(1))


def report(path: Path, conditional_304: int) -> None:
    """Print what the workers' local caches did (their ``worker_exit`` lines in ``path``)."""
    totals = {"hits": 0, "round_trips": 0, "flushes": 0, "connects": 0}
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        for key, value in json.loads(line).items():
            totals[key] = totals.get(key, 0) + int(value)
    reads = totals["hits"] + totals["round_trips"]
    print(f"local cache ({len(lines)} workers reported): {totals}")
    if reads:
        print(f"  version reads answered from memory: {totals['hits'] / reads:.1%}")
    if conditional_304 and reads:
        # Every round trip is charged to a 304: a lower bound of the 304s that made none.
        free = max(0, conditional_304 - totals["round_trips"]) / conditional_304
        print(f"  304s without a round trip (lower bound): {free:.1%}")


def report_log(path: Path) -> None:
    """Print how often the workers logged what the store did about a failover or a fault."""
    text = path.read_text(errors="replace") if path.exists() else ""
    keep = os.environ.get("LOAD_ORACLE_KEEP_LOG")
    if keep:  # for a post-mortem: the run's directory is removed after the run
        Path(keep).write_text(text)
    for what in (
        "retired the former master",
        "could not retire",
        "no master by a majority",
        "using the database",
    ):
        print(f"worker log lines with {what!r}: {text.count(what)}")
