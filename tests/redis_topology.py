"""A throwaway Redis Sentinel deployment on loopback ports, for tests and load scripts.

``SentinelTopology(directory)`` starts in ``directory`` a primary ``redis-server``, one replica
and three ``redis-sentinel`` (quorum 2, down-after 1 s) on free 127.0.0.1 ports, no persistence;
it stops only the processes it started, by PID, and never touches another Redis (6379's).
``scripts/ensure-redis-sentinel`` installs the binaries.

    with SentinelTopology(tmp_path) as topology:
        topology.failover()  # the replica is the master now, the old master its replica

Django with django-redis 7: ``django_redis_cache_settings()`` (``LOCATION``
``redis://<service name>/<db>``, OPTIONS ``CLIENT_CLASS``, ``CONNECTION_FACTORY``
``django_redis.pool.SentinelConnectionFactory`` (else the global
``DJANGO_REDIS_CONNECTION_FACTORY``, which makes every django-redis cache a Sentinel one),
``SENTINELS``). SentinelClient reads the cache's own keys from a replica; DefaultClient with the
same factory reads and writes through the master. Versions always go to the master.

Measured (Redis 7.0, forced failover): sentinels name the new master after ~1 s; the old master
becomes a replica ~10 s later, taking writes meanwhile (docs/deployment.md).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from example_project.serving import free_port

__all__ = ["SentinelTopology", "find_binary", "free_port"]

HOST = "127.0.0.1"
SENTINEL_FACTORY = "django_redis.pool.SentinelConnectionFactory"
BAD_FLAGS = {"s_down", "o_down", "disconnected"}


def find_binary(name: str) -> str | None:
    """Path of the executable ``name``: on PATH, or in /usr/bin or /usr/sbin (Debian's)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/bin", "/usr/sbin"):
        path = Path(folder) / name
        if path.is_file() and path.stat().st_mode & 0o111:
            return str(path)
    return None


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def as_dict(reply: Any) -> dict[str, Any]:
    """A ``SENTINEL replicas`` entry as a dict (redis-py parses it, or gives a flat list)."""
    if isinstance(reply, Mapping):
        return {str(key): value for key, value in reply.items()}
    return {str(key): value for key, value in zip(reply[::2], reply[1::2], strict=True)}


@dataclass
class Process:
    """One process of the topology, its port and its log file (its stdout and stderr)."""

    name: str
    port: int
    log: Path
    popen: subprocess.Popen[bytes]


class SentinelTopology:
    """A primary, one replica and three sentinels; a context manager (see the module docstring)."""

    def __init__(
        self,
        directory: str | Path,
        service_name: str = "mymaster",
        *,
        timeout: float = 30.0,
        primary_args: tuple[str, ...] = (),
    ) -> None:
        self.directory = Path(directory)
        self.primary_args = (
            primary_args  # more redis-server arguments for the first primary
        )
        self.service_name = service_name
        self.timeout = timeout
        self.processes: list[Process] = []
        ports = free_ports(5)
        self.servers: tuple[int, int] = (ports[0], ports[1])
        self.sentinels: list[tuple[str, int]] = [(HOST, port) for port in ports[2:]]

    def __enter__(self) -> SentinelTopology:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the five processes; wait until the replica and the sentinels are in step."""
        server = find_binary("redis-server")
        sentinel = find_binary("redis-sentinel")
        if server is None or sentinel is None:
            raise RuntimeError("redis-server and redis-sentinel are needed")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.forget_django_redis_pools()
        try:
            primary, replica = self.servers
            primary_command = [
                *self._server_command(server, primary),
                *self.primary_args,
            ]
            self._spawn("primary", primary, primary_command)
            replica_command = self._server_command(server, replica)
            replica_command += ["--replicaof", HOST, str(primary)]
            self._spawn("replica", replica, replica_command)
            self.wait_for(lambda: self._link_problem(replica, primary), "replication")
            for index, (_, port) in enumerate(self.sentinels):
                config = self._write_sentinel_config(index, port, primary)
                self._spawn(f"sentinel{index}", port, [sentinel, str(config)])
            self.wait_for(lambda: self._sentinel_problem(primary, replica), "sentinels")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the processes this topology started (by PID: SIGTERM, SIGKILL after 5 s)."""
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                process.popen.terminate()
        for process in reversed(self.processes):
            try:
                process.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=5)
        self.forget_django_redis_pools()

    def _server_command(self, binary: str, port: int) -> list[str]:
        data = self.directory / f"redis-{port}"
        data.mkdir(exist_ok=True)
        return [
            binary,
            *("--port", str(port), "--bind", HOST, "--dir", str(data)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            *("--replica-announce-ip", HOST, "--logfile", ""),
            # A (re)syncing replica is served at once, not 5 s later (Redis 7's default).
            *("--repl-diskless-sync-delay", "0"),
        ]

    def _write_sentinel_config(self, index: int, port: int, primary: int) -> Path:
        name = self.service_name
        lines = [
            f"port {port}",
            f"bind {HOST}",
            "daemonize no",
            'logfile ""',
            f"dir {self.directory}",
            f"sentinel announce-ip {HOST}",
            f"sentinel announce-port {port}",
            "sentinel resolve-hostnames no",
            f"sentinel monitor {name} {HOST} {primary} 2",
            f"sentinel down-after-milliseconds {name} 1000",
            f"sentinel failover-timeout {name} 10000",
            f"sentinel parallel-syncs {name} 1",
        ]
        path = self.directory / f"sentinel{index}-{port}.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _spawn(self, name: str, port: int, command: list[str]) -> None:
        log = self.directory / f"{name}-{port}.log"
        with log.open("wb") as output:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        self.processes.append(Process(name, port, log, popen))

    def wait_for(
        self, problem: Callable[[], str | None], what: str, timeout: float | None = None
    ) -> None:
        """Poll ``problem()`` (None: all is well; a redis error counts as a problem) until it
        is None; a RuntimeError with the last problem and the logs after ``timeout`` s
        (``self.timeout`` by default) or as soon as a process exits."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                last = problem()
            except (redis.RedisError, OSError) as error:
                last = f"{type(error).__name__}: {error}"
            if last is None:
                return
            dead = [p.name for p in self.processes if p.popen.poll() is not None]
            if dead or time.monotonic() > deadline:
                reason = f"exited: {', '.join(dead)}" if dead else "timed out"
                raise RuntimeError(
                    f"Sentinel topology, waiting for {what} ({reason}, "
                    f"{timeout:.0f} s): {last}\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _link_problem(self, replica: int, master: int) -> str | None:
        info = self.call(replica, "INFO", "replication")
        if info.get("role") != "slave" or info.get("master_port") != master:
            return f"{replica} is {info.get('role')} of {info.get('master_port')}"
        if info.get("master_link_status") != "up":
            return f"{replica}: master_link_status:{info.get('master_link_status')}"
        connected = self.call(master, "INFO", "replication").get("connected_slaves")
        return None if connected == 1 else f"{master}: connected_slaves:{connected}"

    def _sentinel_problem(self, master: int, replica: int) -> str | None:
        for _, port in self.sentinels:
            problem = self._one_sentinel_problem(port, master, replica)
            if problem is not None:
                return f"sentinel {port}: {problem}"
        return None

    def _one_sentinel_problem(self, port: int, master: int, replica: int) -> str | None:
        name = self.service_name
        address = self.call(port, "SENTINEL", "get-master-addr-by-name", name)
        if address is None or int(address[1]) != master:
            return f"master is {address}, not {master}"
        replicas = [as_dict(r) for r in self.call(port, "SENTINEL", "replicas", name)]
        known = [(int(r["port"]), set(str(r["flags"]).split(","))) for r in replicas]
        if len(known) != 1 or known[0][0] != replica or known[0][1] & BAD_FLAGS:
            return f"replicas (port, flags) are {known}, not {replica}"
        others = self.call(port, "SENTINEL", "sentinels", name)
        return None if len(others) == 2 else f"knows {len(others)} other sentinels"

    def call(self, port: int, *words: str | int) -> Any:
        """Send one command to 127.0.0.1:``port``; redis-py's reply, strings decoded."""
        client = redis.Redis(HOST, port, decode_responses=True, socket_timeout=5)
        try:
            return client.execute_command(*words)
        finally:
            client.close()

    def master_address(self) -> tuple[str, int]:
        """The master's address, as the first sentinel that answers has it."""
        for _, port in self.sentinels:
            try:
                reply = self.call(
                    port, "SENTINEL", "get-master-addr-by-name", self.service_name
                )
            except redis.ConnectionError:
                continue
            if reply is not None:
                return str(reply[0]), int(reply[1])
        raise RuntimeError(f"no sentinel names a master for {self.service_name}")

    def role(self, port: int) -> str:
        """``master`` or ``slave`` (``ROLE``'s first word)."""
        return str(self.call(port, "ROLE")[0])

    def failover(self, timeout: float = 30.0) -> tuple[str, int]:
        """Force a failover (``SENTINEL FAILOVER``) and wait until it is over: every sentinel
        names the other server, the old master replicates it with its link up, the new master
        counts one replica. The new master's address."""
        old = self.master_address()[1]
        new = self.servers[1] if old == self.servers[0] else self.servers[0]
        self._ask_failover(timeout)
        self.wait_for(
            lambda: self._sentinel_problem(new, old) or self._link_problem(old, new),
            "the failover",
            timeout,
        )
        return HOST, new

    def _ask_failover(self, timeout: float) -> None:
        """``SENTINEL FAILOVER`` to a sentinel, again while they answer INPROG/NOGOODSLAVE."""
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            port = self.sentinels[attempt % len(self.sentinels)][1]
            try:
                self.call(port, "SENTINEL", "FAILOVER", self.service_name)
                return
            except redis.ResponseError as error:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"SENTINEL FAILOVER: {error}") from error
            attempt += 1
            time.sleep(0.2)

    def sentinel_url_for_django_redis(self, db: int = 0) -> str:
        """django-redis's LOCATION for this service: ``redis://<service_name>/<db>``."""
        return f"redis://{self.service_name}/{db}"

    def django_redis_cache_settings(
        self, db: int = 0, **options: Any
    ) -> dict[str, Any]:
        """A ``CACHES`` entry for django-redis 7 through these sentinels (the module docstring
        says why each key); ``options`` are added to (or override) its OPTIONS."""
        return {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": self.sentinel_url_for_django_redis(db),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": SENTINEL_FACTORY,
                "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
                "SENTINELS": list(self.sentinels),
                **options,
            },
        }

    def forget_django_redis_pools(self) -> None:
        """Drop (and disconnect) django-redis's pools for this service name: they live in a
        process-wide dict keyed by URL (``redis://<service_name>/<db>?is_master=1``), so an
        earlier topology's pool would keep asking that topology's stopped sentinels. Called on
        start and stop; a cache object built earlier keeps its own clients (build a new one)."""
        module = sys.modules.get("django_redis.pool")
        if module is None:  # django-redis never used in this process: nothing pooled
            return
        pools: dict[str, Any] = module.ConnectionFactory._pools
        name = self.service_name.lower()
        for url in [url for url in pools if urlsplit(url).hostname == name]:
            pools.pop(url).disconnect()

    @staticmethod
    def connection_factory_setting() -> dict[str, str]:
        """The global alternative to OPTIONS["CONNECTION_FACTORY"] (every django-redis cache)."""
        return {"DJANGO_REDIS_CONNECTION_FACTORY": SENTINEL_FACTORY}

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of every process's log, for failure messages."""
        parts = []
        for process in self.processes:
            parts.append(f"--- {process.name} :{process.port} ({process.log})")
            with suppress(OSError):
                parts += process.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(parts)
