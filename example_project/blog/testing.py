"""Serve the demo from a real server in a subprocess, for the tests (runserver, gunicorn, uvicorn).

Each server gets its own SQLite file (migrated and seeded with ``seed_demo``) and a free loopback
port; its log goes to a file the tests read (runserver logs one line per request, status included).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from example_project.serving import free_port, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("runserver", "gunicorn", "uvicorn")


def demo_env(sqlite_path: Path) -> dict[str, str]:
    """The environment of ``make demo``: SQLite and the local-memory cache, whatever the suite uses."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["DJANGO_SQLITE_PATH"] = str(sqlite_path)
    env["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def prepare_database(env: dict[str, str], articles: int | None = None) -> None:
    """Migrate and seed the demo database that ``env`` names (``articles``: seed_demo's count)."""
    seed = (
        ["seed_demo"]
        if articles is None
        else ["seed_demo", "--articles", str(articles)]
    )
    for command in (["migrate", "--noinput"], seed):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )


def server_command(kind: str, port: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if kind == "runserver":
        return [sys.executable, "manage.py", "runserver", bind, "--noreload"]
    if kind == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "example_project.wsgi",
            "--bind",
            bind,
            # One process: the demo's local-memory cache is per process, and versions cached
            # in one worker would not see a bump made in another (use REDIS_URL for more).
            "--workers",
            "1",
            "--threads",
            "4",
            "--access-logfile",
            "-",
        ]
    if kind == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "example_project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    raise ValueError(f"unknown server {kind!r}: one of {SERVERS}")


@dataclass
class DemoServer:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5):
        return True


@contextmanager
def demo_server(
    tmp_path: Path, kind: str = "runserver", timeout: float = 30.0
) -> Iterator[DemoServer]:
    """A seeded demo served by ``kind`` on a free port; stopped (and waited for) on exit."""
    env = demo_env(tmp_path / "demo.sqlite3")
    prepare_database(env)
    port = free_port()
    log_path = tmp_path / f"{kind}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(kind, port),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = DemoServer(f"http://127.0.0.1:{port}", log_path, process)
    try:
        try:
            wait_until(
                lambda: _answers(f"{server.url}/about/"),
                process,
                timeout=timeout,
                what=kind,
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc} (port {port}):\n{server.log()}") from None
        yield server
    finally:
        stop(process, timeout=10)


def reset_version_cache() -> None:
    """Forget cached versions and remembered headers (the test database is flushed between
    tests, the cache is not: a version read from it would belong to a previous test)."""
    from django.core.cache import caches

    from django_conditional import remembered, versions
    from django_conditional.conf import conf

    caches[conf.CACHE_ALIAS].clear()
    versions.clear_local_state()
    # This process's record of the headers it wrote to the cache, which was just emptied.
    remembered.forget_written()
