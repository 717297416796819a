"""In-process half of the benchmark: seed the page, count queries and cache round trips per case,
time the cases through Django's WSGI handler (not the test client), micro-benchmark the engine,
the hashes and the version read, and profile the hot path with pyinstrument.

Needs ``DJANGO_SETTINGS_MODULE=bench.benchproject.settings`` and ``django.setup()`` done.
"""

from __future__ import annotations

import hashlib
import io
import random
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

SEED_ROWS = 200
BODY_SIZES = ("1k", "20k", "200k")
WRITE_PK = 7


@dataclass(frozen=True)
class Case:
    """One request the benchmark repeats: what it sends and the status it must get."""

    name: str
    path: str
    method: str = "GET"
    status: int = 200
    # Name of the header to send with the ETag of the GET of ``etag_from`` (a 304 case).
    conditional: str | None = None
    etag_from: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    writes: bool = False


def page_cases() -> list[Case]:
    return [
        Case("full-200", "/page/full/"),
        Case("versioned-200", "/page/versioned/"),
        Case(
            "django-db-304",
            "/page/django-db/",
            status=304,
            conditional="If-None-Match",
            etag_from="/page/django-db/",
        ),
        Case(
            "django-cache-304",
            "/page/django-cache/",
            status=304,
            conditional="If-None-Match",
            etag_from="/page/django-cache/",
        ),
        Case(
            "versioned-304",
            "/page/versioned/",
            status=304,
            conditional="If-None-Match",
            etag_from="/page/versioned/",
        ),
        Case("floor", "/floor/"),
        Case("floor-b", "/floor-b/"),
        Case("floor-read", "/floor-read/"),
        Case(
            "floor-304",
            "/floor-304/",
            status=304,
            conditional="If-None-Match",
            etag_from="/page/versioned/",
        ),
    ]


def middleware_cases(app_middleware: bool = True) -> list[Case]:
    cases = []
    for size in BODY_SIZES:
        cases.append(Case(f"mw-{size}-plain-200", f"/body/{size}/plain/"))
        kinds = ["django", "app"] if app_middleware else ["django"]
        for kind in kinds:
            url = f"/body/{size}/{kind}/"
            cases.append(Case(f"mw-{size}-{kind}-200", url))
            cases.append(
                Case(
                    f"mw-{size}-{kind}-304",
                    url,
                    status=304,
                    conditional="If-None-Match",
                    etag_from=url,
                )
            )
    return cases


def write_cases() -> list[Case]:
    """PUTs with ``If-Match: *`` to one row (concurrent writers contend for it) and to a random
    row of the first 50 for each request (``{row}`` in the path; row 7 in process)."""
    headers = {"If-Match": "*", "Content-Type": "text/plain"}
    cases = []
    for kind in ("django", "app"):
        for suffix, row in (("", str(WRITE_PK)), ("-spread", "{row}")):
            cases.append(
                Case(
                    f"put-{kind}{suffix}",
                    f"/rows/{row}/{kind}/",
                    method="PUT",
                    status=204,
                    headers=headers,
                    body=b"score+1",
                    writes=True,
                )
            )
    return cases


def has_app_middleware() -> bool:
    from bench.benchproject.pages import views

    return views.app_middleware_body is not None


# -- database ----------------------------------------------------------------------------------


def seed(rows: int = SEED_ROWS) -> None:
    """Migrate and (re)create the rows the page lists, with the same text every run."""
    from django.core.cache import caches
    from django.core.management import call_command

    from bench.benchproject.pages.models import Row
    from django_conditional import tracking

    call_command("migrate", verbosity=0, interactive=False)
    generator = random.Random(7)
    words = [
        *[
            "conditional",
            "request",
            "entity",
            "tag",
            "validator",
            "cache",
            "version",
            "store",
            "strong",
            "weak",
        ],
        *[
            "precondition",
            "modified",
            "since",
            "match",
            "none",
            "range",
            "representation",
            "origin",
            "server",
        ],
        *["client", "worker", "database", "template", "response", "header"],
    ]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with tracking.batch():
        Row.objects.all().delete()
        Row.objects.bulk_create(
            Row(
                id=index + 1,
                title=" ".join(generator.choice(words) for _ in range(6)).capitalize(),
                author=" ".join(generator.choice(words) for _ in range(2)),
                summary=" ".join(generator.choice(words) for _ in range(45)),
                score=generator.randint(0, 1000),
                updated=start + timedelta(minutes=index),
            )
            for index in range(rows)
        )
    from django_conditional import versions

    # bulk_create sends no signals: the deletes above marked the objects deleted, so mark the
    # recreated ones current again (and the table changed).
    versions.bump(
        versions.collection_key(Row),
        *(versions.object_key(Row, index + 1) for index in range(rows)),
    )
    caches["default"].delete("page-version")


# -- requests through the WSGI handler -------------------------------------------------------------


class Client:
    """Calls Django's ``WSGIHandler`` as a WSGI server would, body consumed and closed."""

    def __init__(self) -> None:
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        self.status = status
        self.headers = headers
        return lambda data: None

    def environ(
        self, case: Case, etags: dict[str, str] | None = None
    ) -> dict[str, Any]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": case.method,
            "PATH_INFO": case.path.replace("{row}", str(WRITE_PK)),
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for name, value in case.headers.items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = value
        if case.body:
            environ["CONTENT_LENGTH"] = str(len(case.body))
        if case.conditional is not None and etags is not None:
            source = case.etag_from or case.path
            environ["HTTP_" + case.conditional.upper().replace("-", "_")] = etags[
                source
            ]
        return environ

    def call(self, environ: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:
        request_environ = dict(environ)
        request_environ["wsgi.input"] = io.BytesIO(body)
        result = self.handler(request_environ, self._start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(self.status.split(" ", 1)[0]), content

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def etags(self, cases: Sequence[Case]) -> dict[str, str]:
        """The current ETag of every page a case revalidates (one plain GET each)."""
        found: dict[str, str] = {}
        for case in cases:
            source = case.etag_from
            if source is None or source in found:
                continue
            status, _ = self.call(self.environ(Case("probe", source)))
            etag = self.header("ETag")
            if status != 200 or etag is None:
                raise RuntimeError(f"GET {source} gave {status} without an ETag")
            found[source] = etag
        return found


# -- counting --------------------------------------------------------------------------------------


_CACHE_METHODS = (
    "get",
    "get_many",
    "set",
    "set_many",
    "add",
    "delete",
    "delete_many",
    "incr",
    "decr",
    "has_key",
    "touch",
    "get_or_set",
)


@contextmanager
def count_cache_round_trips() -> Iterator[list[int]]:
    """Count cache round trips: packets sent to Redis, or calls to a local cache's methods."""
    from django.conf import settings

    counter = [0]
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith("RedisCache"):
        import redis.connection

        cls: Any = redis.connection.AbstractConnection
        original = cls.send_packed_command

        def counting(self: Any, command: Any, check_health: bool = True) -> None:
            counter[0] += 1
            original(self, command, check_health)

        cls.send_packed_command = counting
        try:
            yield counter
        finally:
            cls.send_packed_command = original
        return
    # A local cache has no wire: count the outermost calls of its public methods (BaseCache's
    # get_many calls get once per key: that is one call of the cache API, not several).
    from django.core.cache import caches

    cache_cls = type(caches["default"])
    depth = [0]

    def wrap(original: Any) -> Any:
        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            if depth[0] == 0:
                counter[0] += 1
            depth[0] += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                depth[0] -= 1

        return counted

    originals: dict[str, Any] = {}
    for name in _CACHE_METHODS:
        original = getattr(cache_cls, name, None)
        if original is None:
            continue
        originals[name] = cache_cls.__dict__.get(name)
        setattr(cache_cls, name, wrap(original))
    try:
        yield counter
    finally:
        for name, saved in originals.items():
            if saved is None:
                delattr(cache_cls, name)
            else:
                setattr(cache_cls, name, saved)


def count_case(client: Client, case: Case, etags: dict[str, str]) -> dict[str, int]:
    """Queries and cache round trips of one request of ``case`` (after a warm-up request)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    environ = client.environ(case, etags)
    client.call(environ, case.body)  # warm: connections opened, caches filled
    with (
        count_cache_round_trips() as cache_calls,
        CaptureQueriesContext(connection) as queries,
    ):
        status, _ = client.call(environ, case.body)
    return {"status": status, "queries": len(queries), "cache": cache_calls[0]}


# -- timing ----------------------------------------------------------------------------------------


def time_cases(
    client: Client,
    cases: Sequence[Case],
    etags: dict[str, str],
    rounds: int,
    number: int,
    baseline: str = "floor",
) -> dict[str, dict[str, float]]:
    """µs per request of each case through the WSGI handler, cases interleaved round by round.

    Returns per case: ``us`` (wall time, median over rounds), ``cpu_us`` (this process's CPU time:
    what a worker spends, without waiting for Redis or the database), and ``ratio`` /
    ``cpu_ratio``, medians of per-round ratios baseline time / case time (an rps ratio).
    """
    environs = {case.name: client.environ(case, etags) for case in cases}
    # Slow cases (a full page: milliseconds) get fewer requests, so every case costs about the same.
    numbers = {}
    for case in cases:
        start = time.perf_counter()
        client.call(environs[case.name], case.body)
        elapsed = time.perf_counter() - start
        numbers[case.name] = max(10, min(number, int(number * 0.0005 / elapsed)))
    wall: dict[str, list[float]] = {case.name: [] for case in cases}
    cpu: dict[str, list[float]] = {case.name: [] for case in cases}
    for round_index in range(rounds):
        order = list(cases)
        random.Random(round_index).shuffle(order)
        for case in order:
            environ = environs[case.name]
            call = client.call
            body = case.body
            count = numbers[case.name]
            start = time.perf_counter()
            start_cpu = time.process_time()
            for _ in range(count):
                call(environ, body)
            cpu[case.name].append((time.process_time() - start_cpu) / count * 1e6)
            wall[case.name].append((time.perf_counter() - start) / count * 1e6)
    results: dict[str, dict[str, float]] = {}
    base, base_cpu = wall.get(baseline), cpu.get(baseline)
    for name in wall:
        results[name] = {
            "us": statistics.median(wall[name]),
            "cpu_us": statistics.median(cpu[name]),
            "ratio": _median_ratio(base, wall[name]),
            "cpu_ratio": _median_ratio(base_cpu, cpu[name]),
        }
    return results


def _median_ratio(base: list[float] | None, times: list[float]) -> float:
    if base is None:
        return float("nan")
    return statistics.median(b / t for b, t in zip(base, times, strict=True) if t > 0)


def _per_call(
    func: Callable[[], Any], repeat: int = 5, min_time: float = 0.02
) -> float:
    timer = timeit.Timer(func)
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= min_time or number >= 1_000_000:
            break
        number *= 4
    return statistics.median(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def micro_engine(quick: bool = False) -> dict[str, float]:
    """µs of the engine's pieces on a typical revalidation."""
    from django_conditional.preconditions import (
        ConditionalHeaders,
        evaluate,
        parse_entity_tags,
    )
    from django_conditional.sources.versions import version_etag
    from django_conditional.validators import ETag, Validators

    meta = {
        "HTTP_IF_NONE_MATCH": '"3f2a9c1d8e7b6a5f.0a1b2c3d4e5f"',
        "HTTP_ACCEPT": "text/html",
    }
    ten = ", ".join(f'"tag{i:02d}.0a1b2c3d4e5f"' for i in range(10))
    validators = Validators(ETag("3f2a9c1d8e7b6a5f.0a1b2c3d4e5f"), None, exists=True)
    headers = ConditionalHeaders.from_meta(meta)
    repeat = 3 if quick else 5
    return {
        "ConditionalHeaders.from_meta": _per_call(
            lambda: ConditionalHeaders.from_meta(meta), repeat
        ),
        "parse_entity_tags (1 tag)": _per_call(
            lambda: parse_entity_tags(meta["HTTP_IF_NONE_MATCH"]), repeat
        ),
        "parse_entity_tags (10 tags)": _per_call(
            lambda: parse_entity_tags(ten), repeat
        ),
        "evaluate (If-None-Match hit)": _per_call(
            lambda: evaluate("GET", headers, validators), repeat
        ),
        "version_etag (2 keys)": _per_call(
            lambda: version_etag({"c:pages.row": 12, "o:pages.row:7": 3}), repeat
        ),
        **micro_observe(repeat),
    }


def micro_observe(repeat: int) -> dict[str, float]:
    """µs the decision records (#20) add at one decision point: nothing listening (what every
    304 pays), and one decision built and sent to a receiver."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from django_conditional import observe
    from django_conditional.preconditions import Evaluation, Outcome
    from django_conditional.signals import decision_made
    from django_conditional.validators import ETag, Validators

    request = RequestFactory().get("/", HTTP_IF_NONE_MATCH='"a"')
    response = HttpResponse(status=304)
    validators = Validators(ETag("a"), None, exists=True)
    evaluation = Evaluation(Outcome.NOT_MODIFIED, "If-None-Match")

    def point() -> None:
        watch = observe.watch(request, HttpResponse, "bench")
        if watch is not None:
            watch.read(("o:pages.row:7",), {"o:pages.row:7": 3}, 1)
            watch.decided(evaluation, validators)
        observe.finish(watch, response)

    off = _per_call(point, repeat)
    decision_made.connect(lambda **kwargs: None, weak=False, dispatch_uid="bench")
    try:
        on = _per_call(point, repeat)
    finally:
        decision_made.disconnect(dispatch_uid="bench")
    return {
        "observe: decision point, nothing listening": off,
        "observe: decision point, one receiver": on,
    }


def micro_hashes(quick: bool = False) -> dict[str, dict[str, float]]:
    """µs to hash a body with each candidate, per size."""
    import xxhash

    sizes = {"1k": 1024, "20k": 20 * 1024, "200k": 200 * 1024}
    funcs: dict[str, Callable[[bytes], str]] = {
        "md5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
        "sha1": lambda b: hashlib.sha1(b, usedforsecurity=False).hexdigest(),
        "blake2b-128": lambda b: hashlib.blake2b(b, digest_size=16).hexdigest(),
        "xxh3_128": xxhash.xxh3_128_hexdigest,
    }
    out: dict[str, dict[str, float]] = {}
    generator = random.Random(3)
    for size, length in sizes.items():
        body = generator.randbytes(length)
        out[size] = {
            name: _per_call(partial(func, body), 3 if quick else 5)
            for name, func in funcs.items()
        }
    return out


def micro_version_read(quick: bool = False) -> dict[str, float]:
    """µs of one version read of 3 keys: Django's cache API and this app's fast path."""
    from django.core.cache import caches

    from django_conditional import fastcache, versions

    cache = caches["default"]
    keys = [f"micro:{i}" for i in range(3)]
    cache.set_many(dict.fromkeys(keys, 1), None)
    repeat = 3 if quick else 5
    results = {
        "cache.get (1 key)": _per_call(lambda: cache.get(keys[0]), repeat),
        "cache.get_many (3 keys)": _per_call(lambda: cache.get_many(keys), repeat),
        "fastcache.get_ints (3 keys)": _per_call(
            lambda: fastcache.get_ints(cache, keys), repeat
        ),
        "versions.get_many (3 keys)": _per_call(
            lambda: versions.get_many(keys), repeat
        ),
    }
    # Worker CPU (not wall time: that includes waiting for Redis to be scheduled).
    results["CPU: cache.get (1 key)"] = _per_call_cpu(lambda: cache.get(keys[0]))
    results["CPU: cache.get_many (3 keys)"] = _per_call_cpu(
        lambda: cache.get_many(keys)
    )
    results["CPU: fastcache.get_ints (3 keys)"] = _per_call_cpu(
        lambda: fastcache.get_ints(cache, keys)
    )
    if fastcache.is_fast(cache):
        reader: Any = fastcache._reader(cache)
        connection = reader._idle[-1]  # the connection the reads above kept

        def ping() -> None:
            connection.send_command("PING")
            connection.read_response()

        results["CPU: PING on a kept connection"] = _per_call_cpu(ping)
        # The same MGET through redis-py's client (what fastcache skips), on Django's pool.
        redis_cache: Any = cache
        client = redis_cache._cache.get_client()
        made = reader.made_keys(keys)
        results["CPU: redis-py Redis.mget (3 keys)"] = _per_call_cpu(
            lambda: client.mget(made)
        )
    results["fast path in use"] = 1.0 if fastcache.is_fast(cache) else 0.0
    return results


def _per_call_cpu(
    func: Callable[[], Any], number: int = 2000, repeat: int = 5
) -> float:
    func()
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(number):
            func()
        samples.append((time.process_time() - start) / number * 1e6)
    return statistics.median(samples)


def micro_async_read(quick: bool = False) -> dict[str, float]:
    """µs of one async version read of 3 keys (inside a running event loop)."""
    import asyncio

    from asgiref.sync import sync_to_async
    from django.core.cache import caches

    from django_conditional import fastcache

    cache = caches["default"]
    keys = [f"micro:{i}" for i in range(3)]
    number = 300 if quick else 2000

    async def measure(factory: Callable[[], Any]) -> float:
        await factory()
        samples = []
        for _ in range(3 if quick else 5):
            start = time.perf_counter()
            for _ in range(number):
                await factory()
            samples.append((time.perf_counter() - start) / number * 1e6)
        return statistics.median(samples)

    async def main() -> dict[str, float]:
        return {
            "cache.aget_many (Django)": await measure(lambda: cache.aget_many(keys)),
            "sync_to_async(fastcache.get_ints)": await measure(
                lambda: sync_to_async(fastcache.get_ints)(cache, keys)
            ),
            "fastcache.aget_ints": await measure(
                lambda: fastcache.aget_ints(cache, keys)
            ),
        }

    return asyncio.run(main())


def profile_case(
    client: Client, case: Case, etags: dict[str, str], path: Path, number: int = 3000
) -> str | None:
    """Profile ``number`` requests of ``case`` with pyinstrument; the text report is saved at ``path``."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    environ = client.environ(case, etags)
    client.call(environ, case.body)
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(number):
        client.call(environ, case.body)
    profiler.stop()
    text: str = profiler.output_text(unicode=False, color=False, show_all=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text
