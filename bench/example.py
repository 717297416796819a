"""The example project's own pages under load (issue 16), run by ``make bench`` after the bench
project when PostgreSQL and Redis answer (alone: ``python bench/example.py``).

The site as it deploys (``example_project.settings``: its middleware, persistent connections, the
local version cache on), on PostgreSQL (a database of the run's own) and a redis-server of the run's
own (so that every command it counts is the site's), served by gunicorn with 2 sync workers and
loaded by wrk, then again on 2 gthread workers (keep-alive) for the main ratios. Beside the site's URLs (``bench/example_urls.py``): the floor and the article page
behind Django's ``condition()`` with a ``RedisCache`` read. Three parts, one run:

- in process (a child process, through Django's ``WSGIHandler``): CPU per request of each case,
  the store read alone, and a pyinstrument profile of the detail page's version 304;
- under load: rounds of wrk runs, cases shuffled per round, ratios per round;
- per 304 case, alone: database transactions per request from PostgreSQL's ``pg_stat_database``
  (the workers are restarted by ``SIGHUP`` after the run, so their backends flush their counters),
  Redis commands per request from the server's ``INFO`` (the site's only client), and the workers'
  local-cache counters (written by each worker when it exits).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import load, load_faults, load_oracle  # noqa: E402
from bench.inprocess import Case  # noqa: E402
from example_project.blog.testing import prepare_database  # noqa: E402
from example_project.serving import child_pids, wait_until  # noqa: E402

DATABASE = "bench_conditional_example"
ARTICLES = 40
PROFILE = ROOT / "bench" / "profiles" / "example-detail-304.txt"
SETTINGS = """\
from example_project.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.example_urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES["default"]["KEY_PREFIX"] = "bench-example"  # noqa: F405
LOGGING = {"version": 1, "disable_existing_loggers": False}
"""
# The bound of any answer made inside gunicorn's sync workers: a WSGI callable that answers
# /bench/bare/ before Django (a 200 with a tag, a 304 to If-None-Match), everything else to the site.
WSGI = """\
from example_project.wsgi import application as site


def application(environ, start_response):
    if environ.get("PATH_INFO") != "/bench/bare/":
        return site(environ, start_response)
    if environ.get("HTTP_IF_NONE_MATCH"):
        start_response("304 Not Modified", [("ETag", '"bare"')])
        return []
    start_response("200 OK", [("ETag", '"bare"'), ("Content-Length", "0")])
    return []
"""
BARE = ("bare-304", "/bench/bare/", True)  # under load only: it never reaches Django
# (name, path, conditional): a 304 case revalidates the tag of its own page's 200.
PAGES = [
    ("floor", "/bench/floor/", False),
    ("floor-b", "/bench/floor-b/", False),
    ("detail-200", "/articles/{pk}/", False),
    ("detail-304", "/articles/{pk}/", True),
    ("list-200", "/articles/", False),
    ("list-304", "/articles/", True),
    ("django-detail-304", "/bench/django/articles/{pk}/", True),
    ("api-detail-304", "/api/articles/{pk}/", True),
    ("api-list-304", "/api/articles/", True),
]
COUNTED = (
    "detail-304",
    "list-304",
    "api-detail-304",
    "api-list-304",
    "django-detail-304",
    "detail-200",
)


def cases(pk: int, bare: bool = False) -> list[Case]:
    built = []
    for name, path, conditional in [*PAGES, *([BARE] if bare else [])]:
        url = path.format(pk=pk)
        if conditional:
            built.append(
                Case(name, url, status=304, conditional="If-None-Match", etag_from=url)
            )
        else:
            built.append(Case(name, url))
    return built


# -- in process (a child process with the site's settings) ------------------------------------------


def in_process(pk: int, rounds: int, number: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.test import RequestFactory

    from bench import inprocess
    from django_conditional import versions, writes
    from example_project.blog import views

    client = inprocess.Client()
    measured = cases(pk)
    etags = client.etags(measured)
    timed = inprocess.time_cases(client, measured, etags, rounds=rounds, number=number)
    source = getattr(views.article_detail, writes.SOURCE_ATTRIBUTE)
    request = RequestFactory().get(f"/articles/{pk}/")
    keys = source.keys(request, (), {"pk": pk})
    extra = source._headers_key(request)
    read_us = inprocess._per_call_cpu(lambda: versions.read(keys, extra))
    detail = next(case for case in measured if case.name == "detail-304")
    inprocess.profile_case(client, detail, etags, PROFILE, 3000)
    return {"timed": timed, "read_cpu_us": read_us, "handler_cpu_us": _handler_floor()}


class AnswerAtOnce:
    """A first and only middleware that answers every request with an empty 304."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from django.http import HttpResponseNotModified

        return HttpResponseNotModified()


def _handler_floor() -> float:
    """CPU µs of a request Django's handler serves with nothing but a first middleware that
    answers at once: what any answer given in Django costs (an early 304's server part)."""
    from django.test import override_settings

    from bench import inprocess

    with override_settings(MIDDLEWARE=["bench.example.AnswerAtOnce"]):
        client = inprocess.Client()
        environ = client.environ(Case("handler", "/articles/"))
        return inprocess._per_call_cpu(lambda: client.call(environ))


# -- the run ----------------------------------------------------------------------------------------


def _pg_counters(base: str, terminate: bool = False) -> tuple[int, int]:
    """Transactions and sessions (connections) of the run's database so far, read from
    ``pg_stat_database`` through the server's maintenance database (so this read is not counted).
    ``terminate`` first ends the database's sessions: an ended backend flushes its counters at
    once (a live one may hold them up to 10 s), and a 304 must not need one anyway."""
    import psycopg

    with psycopg.connect(base, autocommit=True) as connection:
        if terminate:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (DATABASE,),
            )
            time.sleep(0.5)
        connection.execute("SELECT pg_stat_clear_snapshot()")
        row = connection.execute(
            "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database "
            "WHERE datname = %s",
            (DATABASE,),
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _redis_commands(redis: load_faults.OwnRedis) -> int:
    info = redis.call("INFO", "stats") or {}
    return int(info.get("total_commands_processed", 0))


def _restart_workers(server: load_oracle.Server) -> None:
    """``SIGHUP``: new workers, the old ones exit (closing their database sessions, which flushes
    their counters, and writing their local-cache counters)."""
    master = server.process.pid
    old = set(child_pids(master))
    os.kill(master, signal.SIGHUP)

    def replaced() -> bool:
        now = set(child_pids(master))
        return len(now) == load.WORKERS and not now & old

    wait_until(replaced, server.process, timeout=30, what="new gunicorn workers")
    wait_until(
        lambda: load.request(server.port, "GET", "/bench/floor/")[0] == 200,
        server.process,
        timeout=30,
        what="gunicorn",
    )
    time.sleep(1.0)  # the old backends' exit flushes their statistics


def _local_stats(path: Path) -> dict[str, int]:
    totals: dict[str, int] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        for key, value in json.loads(line).items():
            totals[key] = totals.get(key, 0) + int(value)
    path.write_text("")
    return totals


def counted(
    server: load_oracle.Server,
    redis: load_faults.OwnRedis,
    base: str,
    plan: dict[str, tuple[Case, dict[str, str]]],
    duration: float,
    stats: Path,
) -> dict[str, dict[str, float]]:
    """Per case, alone: transactions, Redis commands and local-cache reads per request."""
    found: dict[str, dict[str, float]] = {}
    for name in COUNTED:
        case, headers = plan[name]
        _restart_workers(server)
        _local_stats(stats)  # what the old workers wrote: not this case's
        # Steady state: every new worker connects, learns the server and fills its copy (one
        # second of wrk on 4 connections reaches both; sequential requests may reach one).
        load.run_wrk(
            server.port, "GET", case.path, headers, b"", 1.0, expected=case.status
        )
        transactions, sessions = _pg_counters(base, terminate=True)
        commands = _redis_commands(redis)
        outcome = load.run_wrk(
            server.port, "GET", case.path, headers, b"", duration, expected=case.status
        )
        commands = _redis_commands(redis) - commands - 1  # this INFO
        _restart_workers(server)
        local = _local_stats(stats)
        after = _pg_counters(base)
        requests = max(1, outcome.requests)
        found[name] = {
            "requests": outcome.requests,
            "errors": outcome.errors,
            "transactions_per_request": (after[0] - transactions) / requests,
            "sessions_per_request": (after[1] - sessions) / requests,
            "redis_commands_per_request": commands / requests,
            "local_hits": local.get("hits", 0),
            "local_round_trips": local.get("round_trips", 0),
            # Every round trip of the tracking connection charged to a 304: a lower bound.
            "without_round_trip": max(0, requests - local.get("round_trips", 0))
            / requests,
        }
    return found


def run(base: str, rounds: int, duration: float, number: int) -> dict[str, Any]:
    result: dict[str, Any] = {"rounds": rounds, "duration": duration}
    with tempfile.TemporaryDirectory(prefix="bench-example-") as tmp:
        directory = Path(tmp)
        redis = load_faults.OwnRedis(directory)
        redis.start()
        (directory / "bench_example_settings.py").write_text(SETTINGS)
        (directory / "bench_example_wsgi.py").write_text(WSGI)
        stats = directory / "local-stats.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env.update(
            DATABASE_URL=load_oracle.database_url(base, DATABASE),
            REDIS_URL=redis.url,
            DJANGO_SETTINGS_MODULE="bench_example_settings",
            DJANGO_CONN_MAX_AGE="60",
            PYTHONPATH=os.pathsep.join([str(directory), str(ROOT)]),
            LOAD_ORACLE_STATS=str(stats),
        )
        load_oracle.recreate_database(base, DATABASE)
        server: load_oracle.Server | None = None
        try:
            prepare_database(env, ARTICLES)
            server = load_oracle.start_server(
                env, load.WORKERS, directory / "g.log", app="bench_example_wsgi"
            )
            page = load.request(server.port, "GET", "/articles/")[2].decode()
            pk = int(re.findall(r'href="/articles/(\d+)/"', page)[0])
            result["pk"] = pk
            child = directory / "inprocess.json"
            subprocess.run(
                [sys.executable, __file__, "--in-process", str(pk), str(rounds),
                 str(number), str(child)],
                cwd=ROOT, env=env, check=True, timeout=300,
            )  # fmt: skip
            result["inprocess"] = json.loads(child.read_text())
            plan = _plan(server, cases(pk, bare=True))
            result["load"] = _rounds(server, redis, plan, rounds, duration)
            result["counted"] = counted(server, redis, base, plan, duration, stats)
            server.stop()
            server = None
            result["keepalive"] = _keep_alive(
                env, directory, redis, pk, rounds, duration
            )
        finally:
            if server is not None:
                server.stop()
            load_oracle.recreate_database(base, DATABASE, drop_only=True)
            redis.stop()
    return result


# The same site on gunicorn's gthread workers (keep-alive: wrk's connections stay open), so a
# request no longer pays a TCP connection and a process-wide accept: what an answer costs then.
KEEP_ALIVE = (
    "floor",
    "detail-200",
    "detail-304",
    "list-304",
    "django-detail-304",
    "bare-304",
)


def _keep_alive(
    env: dict[str, str],
    directory: Path,
    redis: load_faults.OwnRedis,
    pk: int,
    rounds: int,
    duration: float,
) -> dict[str, Any]:
    server = load_oracle.start_server(
        env,
        load.WORKERS,
        directory / "gthread.log",
        app="bench_example_wsgi",
        worker_class="gthread",
    )
    try:
        measured = [case for case in cases(pk, bare=True) if case.name in KEEP_ALIVE]
        plan = _plan(server, measured)
        return {"load": _rounds(server, redis, plan, rounds, duration)}
    finally:
        server.stop()


def _plan(
    server: load_oracle.Server, measured: list[Case]
) -> dict[str, tuple[Case, dict[str, str]]]:
    plan = {}
    for case in measured:
        headers = {}
        if case.conditional and case.etag_from:
            got = load.request(server.port, "GET", case.etag_from)[1].get("etag", "")
            headers[case.conditional] = got
        status = load.request(server.port, case.method, case.path, headers)[0]
        if status != case.status:
            raise RuntimeError(f"{case.name}: status {status}, expected {case.status}")
        plan[case.name] = (case, headers)
    return plan


def _rounds(
    server: load_oracle.Server,
    redis: load_faults.OwnRedis,
    plan: dict[str, tuple[Case, dict[str, str]]],
    rounds: int,
    duration: float,
) -> dict[str, list[dict[str, Any]]]:
    import random

    workers = [server.process.pid, *child_pids(server.process.pid)]
    meter = load.CpuMeter(
        {"gunicorn": workers, "redis": [redis.process.pid] if redis.process else []}
    )
    runs: dict[str, list[dict[str, Any]]] = {}
    for round_index in range(rounds):
        order = list(plan)
        random.Random(2000 + round_index).shuffle(order)
        for name in order:
            case, headers = plan[name]
            started = meter.start()
            outcome = load.run_wrk(
                server.port,
                "GET",
                case.path,
                headers,
                b"",
                duration,
                expected=case.status,
            )
            runs.setdefault(name, []).append(
                {
                    "rps": outcome.rps,
                    "p50_ms": outcome.p50_ms,
                    "p99_ms": outcome.p99_ms,
                    "requests": outcome.requests,
                    "errors": outcome.errors,
                    "cpu_us": meter.per_request(started, outcome.requests),
                }
            )
    return runs


def main(argv: list[str]) -> int:
    if argv[:1] == ["--in-process"]:
        pk, rounds, number, output = argv[1:5]
        found = in_process(int(pk), int(rounds), int(number))
        Path(output).write_text(json.dumps(found))
        return 0
    base = os.environ.get("DATABASE_URL") or load_oracle.DEFAULT_DATABASE_URL
    result = run(base, int(os.environ.get("BENCH_ROUNDS", "3")), 2.0, 500)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
