"""Load with a correctness oracle (issue 8, item 3): ``make load``.

A bounded run (loopback only; it stops by itself) against gunicorn with several workers, on
PostgreSQL and Redis, serving the example project's JSON API. Client threads mix conditional
GETs and HEADs (``If-None-Match`` with current and superseded tags), plain GETs, and ``PATCH``
writes with ``If-Match``. The oracle records every request with its send and receive times and
every successful write's resulting ETag. Meanwhile a back-office process (``bench/load_backdoor.py``)
changes other articles without the API: saves with an explicit primary key, upserts, moves to
another author, and author edits (which change every article's tag). The oracle then checks:

- no stale answer: a tag first seen before a change (a successful write, a back-office commit)
  started is superseded once it ended: no 304 for it, no 200 or 412 carrying it, for any request
  sent after that;
- no double success: no two writes with the same ``If-Match`` both succeeded;
- no lost write: each API-written article ends with the title of its last successful write.

It prints requests, errors (must be 0) and violations (must be 0); the exit status is non-zero
otherwise. Environment: ``DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432/test: the
server and credentials used to create and drop a database of the run's own, ``loadoracle`` by
default, never touching other data), ``REDIS_URL`` (default redis://127.0.0.1:6379/0; keys under a
prefix of the run's own, deleted afterwards). Options: ``--help``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if (
    str(ROOT) not in sys.path
):  # run as a script (make load): the repository's own packages
    sys.path.insert(0, str(ROOT))

from bench import load_faults  # noqa: E402
from example_project.blog.testing import prepare_database  # noqa: E402
from example_project.serving import free_port, stop, wait_until  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
AUTH = "Basic " + base64.b64encode(b"demo:demo").decode()
REQUEST_TIMEOUT = 15.0


# Setup ----------------------------------------------------------------------------------------


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise SystemExit(f"DATABASE_URL must be a postgres:// URL, not {base!r}")
    if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit(
            "the load run stays on loopback: DATABASE_URL must name 127.0.0.1"
        )
    return urlunsplit(parts._replace(path="/" + name))


def recreate_database(base: str, name: str, drop_only: bool = False) -> None:
    """Drop (and create) the run's own database, through the server's maintenance database."""
    import psycopg

    with psycopg.connect(base, autocommit=True) as connection:
        try:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.errors.SyntaxError:  # PostgreSQL < 13
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')


def delete_redis_keys(url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    deleted = 0
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        deleted += int(client.delete(key))
    client.close()
    return deleted


SETTINGS = """\
from example_project.settings import *  # noqa: F403

DEBUG = False
# The demo's Basic auth would spend ~0.3 s of PBKDF2 on every write: a load run measures the app.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES["default"]["KEY_PREFIX"] = {prefix!r}  # noqa: F405
# Persistent connections, as a production site sets them (a new one per request costs ~15 ms).
DATABASES["default"]["CONN_MAX_AGE"] = 60  # noqa: F405
# A 500's traceback goes to the server's log (the run reports what it logged).
LOGGING = {{
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{"console": {{"class": "logging.StreamHandler"}}}},
    "loggers": {{"django.request": {{"handlers": ["console"], "level": "ERROR"}}}},
}}
"""
# Under ASGI a sync view runs in a thread of its request's own: a persistent connection per
# thread would be one per request, never reused (Django's deployment docs: no CONN_MAX_AGE there).
ASGI_SETTINGS = """DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
"""
# --local-cache (a self-check of the oracle): each worker keeps versions in its own memory, the
# misconfiguration system check W010 warns about; the run must then report stale answers.
LOCAL_CACHE = """CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SILENCED_SYSTEM_CHECKS = ["django_conditional.W010"]
"""


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        stop(self.process)


# gunicorn's worker classes: one request at a time per process, threads sharing a process (and
# its local version cache) with keep-alive, or an event loop serving the ASGI application.
WORKER_CLASSES: dict[str, list[str]] = {
    "sync": [],
    "gthread": ["--worker-class", "gthread", "--threads", "4", "--keep-alive", "5"],
    "uvicorn": ["--worker-class", "uvicorn.workers.UvicornWorker"],
}
ASGI_APP = "example_project.asgi:application"


def start_server(
    env: dict[str, str],
    workers: int,
    log_path: Path,
    app: str = "example_project.wsgi",
    worker_class: str = "sync",
) -> Server:
    port = free_port()
    conf = log_path.parent / "gunicorn_conf.py"  # the workers' local-cache counters
    conf.write_text(load_faults.GUNICORN_CONF)
    if worker_class == "uvicorn":
        app = ASGI_APP
    options = WORKER_CLASSES[worker_class]
    command = [
        sys.executable, "-m", "gunicorn", app,
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--timeout", "30", "--backlog", "256", "-c", str(conf), *options,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(port, process, log_path)
    try:
        wait_until(
            lambda: call(port, "GET", "/api/articles/").status == 200,
            process,
            what="gunicorn",
        )
    except RuntimeError as exc:
        server.stop()
        raise SystemExit(f"{exc}:\n{log_path.read_text(errors='replace')}") from None
    return server


# HTTP -----------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    etag: str | None
    body: bytes


def call(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return Reply(response.status, response.getheader("ETag"), data)
    finally:
        connection.close()


# The run --------------------------------------------------------------------------------------


@dataclass
class Write:
    path: str
    if_match: str
    title: str
    sent: float
    received: float
    status: int
    etag: str | None


@dataclass
class Read:
    path: str
    method: str
    tag: str | None  # the If-None-Match sent, None for a plain GET
    sent: float
    received: float
    status: int
    etag: str | None


@dataclass
class Record:
    writes: list[Write] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Tags each client has seen, per article (readers revalidate with recent and older ones).
    seen: dict[str, list[str]] = field(default_factory=dict)
    # (path, tag) -> when a response first carried it (time.monotonic()).
    first_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, path: str, tag: str | None) -> None:
        if tag:
            with self.lock:
                self.first_seen.setdefault((path, tag), time.monotonic())
                tags = self.seen.setdefault(path, [])
                if tag not in tags:
                    tags.append(tag)
                    del tags[:-8]

    def tags(self, path: str) -> list[str]:
        with self.lock:
            return list(self.seen.get(path, []))


def writer(
    port: int,
    paths: list[str],
    record: Record,
    stop: threading.Event,
    seed: int,
    interval: float = 0.0,
) -> None:
    rng = random.Random(seed)
    current: dict[str, str] = {}
    while not stop.wait(interval):
        path = rng.choice(paths)
        try:
            tag = current.get(path)
            if tag is None or rng.random() < 0.3:
                reply = call(port, "GET", path)
                if reply.status != 200 or not reply.etag:
                    record.errors.append(f"GET {path} for a write: {reply.status}")
                    continue
                tag = reply.etag
            title = f"w{seed}-{time.monotonic_ns()}"
            body = json.dumps({"title": title}).encode()
            headers = {
                "Authorization": AUTH,
                "If-Match": tag,
                "Content-Type": "application/json",
            }
            sent = time.monotonic()
            reply = call(port, "PATCH", path, headers, body)
            received = time.monotonic()
        except OSError as exc:
            record.errors.append(f"write {path}: {type(exc).__name__}: {exc}")
            continue
        with record.lock:
            record.writes.append(
                Write(path, tag, title, sent, received, reply.status, reply.etag)
            )
        if reply.status == 200 and reply.etag:
            current[path] = reply.etag
            record.saw(path, reply.etag)
        elif reply.status == 412 and reply.etag:
            current[path] = reply.etag  # the 412 carries the current validator
        else:
            record.errors.append(f"PATCH {path}: {reply.status} {reply.body[:200]!r}")


def reader(
    port: int, paths: list[str], record: Record, stop: threading.Event, seed: int
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        path = rng.choice(paths)
        tags = record.tags(path)
        method = "HEAD" if rng.random() < 0.25 else "GET"
        tag = None if not tags or rng.random() < 0.15 else rng.choice(tags[-3:])
        headers = {"If-None-Match": tag} if tag else {}
        sent = time.monotonic()
        try:
            reply = call(port, method, path, headers)
        except OSError as exc:
            record.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            continue
        received = time.monotonic()
        with record.lock:
            record.reads.append(
                Read(path, method, tag, sent, received, reply.status, reply.etag)
            )
        if reply.status not in {200, 304}:
            record.errors.append(f"{method} {path}: {reply.status}")
        elif reply.status == 200:
            record.saw(path, reply.etag)


# The oracle -----------------------------------------------------------------------------------


@dataclass
class Change:
    """A change of an article's state: from ``start`` (it may not have happened yet) to ``end``
    (it has), by a successful HTTP write or a back-office write (``bench/load_backdoor.py``)."""

    path: str
    start: float
    end: float
    what: str


def changes(
    record: Record,
    backdoor: list[dict[str, Any]],
    paths: list[str],
    ids: dict[int, str],
) -> list[Change]:
    found = [
        Change(w.path, w.sent, w.received, f"PATCH with {w.if_match}")
        for w in record.writes
        if w.status == 200
    ]
    for entry in backdoor:
        touched = paths if entry["all"] else [ids[int(i)] for i in entry["ids"]]
        found += [
            Change(
                p,
                float(entry["started"]),
                float(entry["committed"]),
                str(entry["kind"]),
            )
            for p in touched
        ]
    return found


def check(
    record: Record,
    final: dict[str, tuple[str | None, str]],
    found: list[Change],
    http_paths: list[str],
) -> list[str]:
    """A tag first seen before a change started is stale once the change ended: no 304 for it,
    no 200 or 412 carrying it, for a request sent after that. No double success, no lost write."""
    violations: list[str] = []
    successes = [w for w in record.writes if w.status == 200]
    doubled = Counter((w.path, w.if_match) for w in successes)
    violations += [
        f"{n} writes succeeded with If-Match {tag} on {p}"
        for (p, tag), n in doubled.items()
        if n > 1
    ]
    for path in http_paths:
        mine = sorted(
            (w for w in successes if w.path == path), key=lambda w: w.received
        )
        if mine and final[path][1] != mine[-1].title:
            violations.append(
                f"{path}: final title {final[path][1]!r}, last write {mine[-1].title!r}"
            )
    by_path: dict[str, list[Change]] = {}
    for each in found:
        by_path.setdefault(each.path, []).append(each)

    def stale(path: str, tag: str | None, sent: float) -> Change | None:
        first = record.first_seen.get((path, tag or ""))
        if first is None:
            return None
        for candidate in by_path.get(path, []):
            if first < candidate.start and candidate.end < sent:
                return candidate
        return None

    for read in record.reads:
        shown = read.tag if read.status == 304 else read.etag
        change = (
            stale(read.path, shown, read.sent) if read.status in (200, 304) else None
        )
        if change is not None:
            violations.append(
                f"stale {read.status}: {read.method} {read.path} with {shown} sent "
                f"{read.sent - change.end:.3f}s after {change.what} ended"
            )
    for write in record.writes:
        change = (
            stale(write.path, write.etag, write.sent) if write.status == 412 else None
        )
        if change is not None:
            violations.append(
                f"412 on {write.path} offered {write.etag}, superseded by {change.what}"
            )
    return violations


def run(args: argparse.Namespace) -> int:
    base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if urlsplit(redis_url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit(
            "the load run stays on loopback: REDIS_URL must name 127.0.0.1"
        )
    name = args.database
    prefix = f"loadoracle-{os.getpid()}-{time.time_ns()}"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loadoracle-") as tmp:
        module_dir = Path(tmp)
        own = load_faults.OwnRedis(module_dir) if args.own_redis else None
        if own is not None:
            own.start()
            redis_url = own.url
        args.own = own
        args.topology = (
            load_faults.start_sentinel(module_dir) if args.sentinel else None
        )
        settings = (
            SETTINGS.format(prefix=prefix)
            + (LOCAL_CACHE if args.local_cache else "")
            + (ASGI_SETTINGS if args.worker_class == "uvicorn" else "")
            + load_faults.settings(args)
        )
        (module_dir / "load_oracle_settings.py").write_text(settings)
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        if args.django_redis or args.sentinel:
            env["REDIS_CACHE_BACKEND"] = "django-redis"
        env.update(
            DATABASE_URL=database_url(base, name),
            REDIS_URL=redis_url,
            DJANGO_SETTINGS_MODULE="load_oracle_settings",
            PYTHONPATH=os.pathsep.join([str(module_dir), str(ROOT)]),
            PYTHONUNBUFFERED="1",
            LOAD_ORACLE_STATS=str(module_dir / "local-stats.jsonl"),
        )
        recreate_database(base, name)
        server: Server | None = None
        try:
            prepare_database(env, args.articles + args.backdoor)
            server = start_server(
                env,
                args.workers,
                module_dir / "gunicorn.log",
                worker_class=args.worker_class,
            )
            return exercise(server, args, started, env)
        finally:
            if server is not None:
                server.stop()
                load_faults.report(
                    module_dir / "local-stats.jsonl",
                    getattr(args, "count_304", 0) + getattr(args, "steady_304", 0),
                )
                load_faults.report_log(server.log_path)
            recreate_database(base, name, drop_only=True)
            if args.topology is not None:
                args.topology.stop()
            if own is not None:
                own.stop()
            elif args.topology is None:
                delete_redis_keys(redis_url, prefix)


def start_backdoor(
    env: dict[str, str], seconds: float, ids: list[int]
) -> subprocess.Popen[str] | None:
    if not ids:
        return None
    script = str(ROOT / "bench" / "load_backdoor.py")
    return subprocess.Popen(
        [sys.executable, script, str(seconds), ",".join(map(str, ids)), "7"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def backdoor_entries(
    process: subprocess.Popen[str] | None, record: Record
) -> list[dict[str, Any]]:
    if process is None:
        return []
    out, err = process.communicate(timeout=REQUEST_TIMEOUT + 30)
    if process.returncode != 0:
        record.errors.append(f"back-office writer failed: {err[-2000:]}")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def exercise(
    server: Server, args: argparse.Namespace, started: float, env: dict[str, str]
) -> int:
    port = server.port
    listing = json.loads(call(port, "GET", "/api/articles/").body)
    docs = listing["results"][: args.articles + args.backdoor]
    ids = {int(doc["id"]): f"/api/articles/{doc['id']}/" for doc in docs}
    paths = list(ids.values())
    http_paths, backdoor_ids = paths[: args.articles], list(ids)[args.articles :]
    record = Record()
    for path in paths:
        reply = call(port, "GET", path)
        assert reply.status == 200 and reply.etag, reply
        record.saw(path, reply.etag)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=writer,
            args=(port, http_paths, record, stop, n, args.write_interval),
            daemon=True,
        )
        for n in range(args.writers)
    ] + [
        threading.Thread(
            target=reader, args=(port, paths, record, stop, 1000 + n), daemon=True
        )
        for n in range(args.readers)
    ]
    load_started = time.monotonic()
    backdoor = start_backdoor(env, args.seconds, backdoor_ids)
    for thread in threads:
        thread.start()
    faults = load_faults.start_faults(args.own, args, stop)
    stop.wait(args.seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT + 5)
    entries = backdoor_entries(backdoor, record)
    elapsed = time.monotonic() - load_started
    final: dict[str, tuple[str | None, str]] = {}
    for path in paths:
        reply = call(port, "GET", path)
        final[path] = (reply.etag, json.loads(reply.body)["title"])
    args.steady_304 = load_faults.steady(port, final, args.steady)
    found = changes(record, entries, paths, ids)
    violations = check(record, final, found, http_paths)
    if any(thread.is_alive() for thread in threads):
        record.errors.append("a client thread did not stop")
    log = server.log_path.read_text(errors="replace")
    if "Traceback" in log or "WORKER TIMEOUT" in log:
        at = max(log.find("Traceback"), log.find("WORKER TIMEOUT"))
        record.errors.append("gunicorn logged an error:\n" + log[at : at + 3000])
    print(f"back-office writes: {Counter(str(e['kind']) for e in entries)}")
    if faults:
        print(f"faults injected: {Counter(f.split()[1] for f in faults)}")
    return report(record, violations, elapsed, time.monotonic() - started, args)


def report(
    record: Record,
    violations: list[str],
    elapsed: float,
    total: float,
    args: argparse.Namespace,
) -> int:
    writes = Counter(w.status for w in record.writes)
    reads = Counter((r.method, r.tag is not None, r.status) for r in record.reads)
    requests = len(record.writes) + len(record.reads)
    conditional_304 = sum(n for (_, _, status), n in reads.items() if status == 304)
    args.count_304 = conditional_304
    print(
        f"load oracle: {args.workers} gunicorn {args.worker_class} workers, {args.writers} writers, {args.readers} readers, "
        f"{args.articles} articles, {elapsed:.1f}s of load ({total:.1f}s in all)"
    )
    print(f"requests: {requests} ({requests / elapsed:.0f}/s)")
    print(f"  writes: {len(record.writes)} (200: {writes[200]}, 412: {writes[412]})")
    print(
        f"  reads:  {len(record.reads)} (304: {conditional_304}, HEAD: {sum(n for (m, _, _), n in reads.items() if m == 'HEAD')})"
    )
    print(f"errors: {len(record.errors)}")
    for error in record.errors[:10]:
        print(f"  {error}")
    print(f"violations: {len(violations)}")
    for violation in violations[:20]:
        print(f"  {violation}")
    too_little = writes[200] < 10 or conditional_304 < 10
    if too_little:
        print(
            "the run was too small to mean anything (fewer than 10 successful writes or 304s)"
        )
    return 1 if record.errors or violations or too_little else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("LOAD_ORACLE_SECONDS", 60)),
    )
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument(
        "--worker-class",
        choices=sorted(WORKER_CLASSES),
        default="sync",
        help="gunicorn worker class (gthread: 4 threads; uvicorn: the ASGI application)",
    )
    parser.add_argument("--writers", type=int, default=4, help="writing client threads")
    parser.add_argument(
        "--readers", type=int, default=8, help="revalidating client threads"
    )
    parser.add_argument(
        "--articles", type=int, default=5, help="articles written (contention)"
    )
    parser.add_argument(
        "--backdoor",
        type=int,
        default=3,
        help="articles changed by back-office writes (explicit-pk saves, upserts, moves, author edits)",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("LOAD_ORACLE_DATABASE", "loadoracle"),
        help="the run's own database, created and dropped (default loadoracle)",
    )
    parser.add_argument(
        "--local-cache",
        action="store_true",
        help="self-check of the oracle: a per-worker cache (LocMemCache), which must fail the run",
    )
    load_faults.add_options(parser)
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 90:
        parser.error(
            "--seconds must be in (0, 90]: the whole run stays under 2 minutes"
        )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
