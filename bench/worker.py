"""One benchmark configuration (embedded, or PostgreSQL + Redis), run by bench/run.py in its own
process: ``python -m bench.worker NAME OUTPUT.json``. The environment carries the settings
(``BENCH_SQLITE_PATH`` or ``BENCH_DATABASE_URL``, ``BENCH_REDIS_URL``) and the knobs
``BENCH_ROUNDS``, ``BENCH_DURATION`` (seconds per wrk run), ``BENCH_NUMBER`` (requests per case
and round in process).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "bench" / "profiles"
WARM_REQUESTS = 12
PROFILED = {
    "versioned-304": 3000,
    "django-cache-304": 3000,
    "mw-20k-app-200": 3000,
    "mw-20k-app-304": 3000,
    "mw-200k-app-304": 1000,
}


def _blocks(cases: list[Any]) -> list[list[Any]]:
    """The page cases with the floor, then one block per body size of the middleware cases."""
    blocks: dict[str, list[Any]] = {}
    for case in cases:
        key = case.name.split("-")[1] if case.name.startswith("mw-") else "page"
        blocks.setdefault(key, []).append(case)
    return list(blocks.values())


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value else default


def main(name: str, output: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.benchproject.settings")
    # Its timer-overhead warning fires on a busy machine; the profiles are relative anyway.
    os.environ.setdefault("PYINSTRUMENT_IGNORE_OVERHEAD_WARNING", "1")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections

    from bench import inprocess, load
    from example_project.serving import child_pids

    rounds = int(_env_number("BENCH_ROUNDS", 3))
    duration = _env_number("BENCH_DURATION", 2.0)
    number = int(_env_number("BENCH_NUMBER", 500))
    postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    redis = settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    result: dict[str, Any] = {
        "name": name,
        "database": "PostgreSQL" if postgres else "SQLite",
        "cache": "RedisCache" if redis else "LocMemCache",
        "rounds": rounds,
        "duration": duration,
        "number": number,
        "notes": [],
    }
    started = time.monotonic()

    inprocess.seed()
    app_mw = inprocess.has_app_middleware()
    if not app_mw:
        result["notes"].append(
            "django_conditional.middleware is not importable: middleware cases of the app skipped."
        )
    read_cases = inprocess.page_cases() + inprocess.middleware_cases(app_mw)
    write_cases = inprocess.write_cases() if postgres else []
    client = inprocess.Client()
    etags = client.etags(read_cases)

    # Queries and cache round trips per request, counted.
    result["counts"] = {
        case.name: inprocess.count_case(client, case, etags)
        for case in read_cases + write_cases
    }
    for case in read_cases + write_cases:
        got = result["counts"][case.name]["status"]
        if got != case.status:
            raise RuntimeError(f"{case.name}: status {got}, expected {case.status}")
    if write_cases:
        inprocess.seed()  # the counted writes moved the versions: back to the seeded state
        etags = client.etags(read_cases)

    # In process, through the WSGI handler.
    result["inprocess"] = inprocess.time_cases(
        client, read_cases, etags, rounds=max(rounds, 3), number=number
    )
    result["micro"] = {
        "engine": inprocess.micro_engine(),
        "hashes": inprocess.micro_hashes(),
        "version_read": inprocess.micro_version_read(),
        "async_read": inprocess.micro_async_read(),
    }
    result["profiles"] = {}
    by_name = {case.name: case for case in read_cases}
    for case_name, count in PROFILED.items():
        profiled = by_name.get(case_name)
        if profiled is None:
            continue
        path = PROFILES / f"{name}-{case_name}.txt"
        if inprocess.profile_case(client, profiled, etags, path, count) is not None:
            result["profiles"][case_name] = str(path.relative_to(ROOT))
    for alias in connections:
        connections[alias].close()

    # Under load: gunicorn, 2 sync workers, loopback.
    runner = load.run_wrk if load.wrk_path() else load.run_python
    result["load_generator"] = (
        f"wrk -t1 -c{load.CONNECTIONS}" if load.wrk_path() else "python http.client"
    )
    if not load.wrk_path():
        result["notes"].append(
            "wrk is not installed: the Python http.client loop generated the load; its own CPU "
            "competes with the server's, so ratios are compressed towards 1."
        )
    env = {key: value for key, value in os.environ.items() if key.startswith("BENCH_")}
    env["DJANGO_SETTINGS_MODULE"] = "bench.benchproject.settings"
    env["PYTHONPATH"] = str(ROOT)
    loads: dict[str, list[dict[str, Any]]] = {}
    with load.gunicorn(env) as server:
        # CPU per request under load, by process group: where a round trip's cost lands.
        redis_pid = load.pid_of("redis-server") if redis else None
        meter = load.CpuMeter(
            {
                "gunicorn": [server.process.pid, *child_pids(server.process.pid)],
                "redis": [redis_pid] if redis_pid else [],
            }
        )
        served: dict[str, str] = {}
        for case in read_cases:
            if case.etag_from and case.etag_from not in served:
                status, headers, _ = load.request(server.port, "GET", case.etag_from)
                served[case.etag_from] = headers.get("etag", "")
        plans = {}
        for case in read_cases + write_cases:
            headers = dict(case.headers)
            if case.conditional and case.etag_from:
                headers[case.conditional] = served[case.etag_from]
            plans[case.name] = (case, headers)
            if case.writes:
                continue  # a write moves the versions the reads were probed with
            status, _, _ = load.request(
                server.port, case.method, case.path, headers, case.body
            )
            if status != case.status:
                raise RuntimeError(
                    f"{case.name} under gunicorn: status {status}, expected {case.status}"
                )
        # Warm both workers on every read case (imports, URLconf, templates, connections).
        for case, headers in plans.values():
            if not case.writes:
                for _ in range(WARM_REQUESTS):
                    load.request(
                        server.port, case.method, case.path, headers, case.body
                    )
        # Blocks of cases that are compared with each other run back to back (the page and
        # the floor; each body size), blocks and cases shuffled every round, so the two sides
        # of a ratio are seconds apart. Reads first; writes last, since they move versions.
        blocks = _blocks(read_cases)
        for phase in (blocks, [write_cases] if write_cases else []):
            for round_index in range(rounds):
                generator = random.Random(1000 + round_index)
                order = list(phase)
                generator.shuffle(order)
                for block in order:
                    members = list(block)
                    generator.shuffle(members)
                    for planned in members:
                        case, headers = plans[planned.name]
                        started_cpu = meter.start()
                        outcome = runner(
                            server.port,
                            case.method,
                            case.path,
                            headers,
                            case.body,
                            duration,
                            expected=case.status,
                        )
                        loads.setdefault(case.name, []).append(
                            {
                                "rps": outcome.rps,
                                "p50_ms": outcome.p50_ms,
                                "p99_ms": outcome.p99_ms,
                                "requests": outcome.requests,
                                "errors": outcome.errors,
                                "cpu_us": meter.per_request(
                                    started_cpu, outcome.requests
                                ),
                                "statuses": {
                                    str(code): count
                                    for code, count in outcome.statuses.items()
                                },
                            }
                        )
        gunicorn_log = server.log.read_text()[-2000:]
    result["load"] = loads
    result["load_summary"] = {
        case_name: {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "errors": sum(int(r["errors"]) for r in runs),
            # A round whose processes could not be measured has no figure: left out.
            "cpu_us": {
                group: statistics.median(
                    r["cpu_us"][group] for r in runs if group in r.get("cpu_us", {})
                )
                for group in {g for r in runs for g in r.get("cpu_us", {})}
            },
        }
        for case_name, runs in loads.items()
    }
    if gunicorn_log.strip():
        result["gunicorn_log_tail"] = gunicorn_log
    result["seconds"] = time.monotonic() - started
    output.write_text(json.dumps(result, indent=2, sort_keys=True))


def smoke(output: Path) -> None:
    """The in-process part only, a few requests per case (tests/test_bench_smoke.py runs it)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.benchproject.settings")
    import django

    django.setup()
    from bench import inprocess

    if os.environ.get("BENCH_REDIS_URL"):
        # Versions cached by an earlier run over another database would stay pending (the
        # database went back: see the notes of issue 16) and make the 304 read the database.
        from bench.load_oracle import delete_redis_keys

        delete_redis_keys(os.environ["BENCH_REDIS_URL"], "bench")
    inprocess.seed(rows=60)
    cases = inprocess.page_cases() + [
        case
        for case in inprocess.middleware_cases(inprocess.has_app_middleware())
        if case.name.startswith("mw-20k")
    ]
    client = inprocess.Client()
    etags = client.etags(cases)
    result: dict[str, Any] = {
        "counts": {
            case.name: inprocess.count_case(client, case, etags) for case in cases
        },
        "expected": {case.name: case.status for case in cases},
        "inprocess": inprocess.time_cases(client, cases, etags, rounds=2, number=20),
        "engine": inprocess.micro_engine(quick=True),
        "page_bytes": len(client.call(client.environ(cases[0]))[1]),
    }
    if os.environ.get(
        "BENCH_REDIS_URL"
    ):  # the Redis micro-benchmarks reach private parts
        result["version_read"] = inprocess.micro_version_read(quick=True)
    output.write_text(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    if sys.argv[1] == "--smoke":
        smoke(Path(sys.argv[2]))
    else:
        main(sys.argv[1], Path(sys.argv[2]))
