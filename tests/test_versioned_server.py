"""No stale 304 across workers: gunicorn with 3 workers, PostgreSQL and Redis, real concurrent requests.

One client thread changes an article through ``PUT`` with ``If-Match`` (each 200 carries the new
ETag); three others revalidate with ``If-None-Match``, sending current and superseded tags, as fast
as they can. Every response is checked against the version history the writer recorded: a tag is
superseded once the writer has *received* the 200 of a later write, so a 304 (or a 200 carrying an
old ETag) to a request sent after that moment is a stale answer that no worker may give.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from example_project.serving import free_port, stop, wait_until
from tests.testapp.models import Article, Author
from tests.versioned_support import clear_version_cache

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_WORKERS = 3
READERS = 3
MAX_READS = 3000
MAX_SECONDS = 30.0


def request(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("ETag") or ""
    finally:
        connection.close()


def database_url() -> str:
    database = settings.DATABASES["default"]
    user = database["USER"] or "postgres"
    host = database["HOST"] or "127.0.0.1"
    port = database["PORT"] or "5432"
    password = f":{database['PASSWORD']}" if database["PASSWORD"] else ""
    # NAME is the test database's name while the test runs.
    return f"postgres://{user}{password}@{host}:{port}/{database['NAME']}"


def server_env(extra_env: dict[str, str]) -> dict[str, str]:
    """The environment of tests.serverproject, on the test database this test created."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.serverproject.settings",
        "DATABASE_URL": database_url(),
        "PYTHONPATH": str(ROOT),
        **extra_env,
    }
    env.pop("TEST_DATABASE_NAME", None)
    return env


def start_gunicorn(
    port: int, log: Path, extra_env: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = server_env(extra_env)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(GUNICORN_WORKERS),
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "30",
        "--log-level",
        "warning",
        "tests.serverproject.wsgi:application",
    ]
    with log.open("wb") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )


def wait_until_serving(process: subprocess.Popen[bytes], port: int, path: str) -> None:
    wait_until(lambda: request(port, "GET", path, {})[0] == 200, process)


@dataclass(frozen=True)
class Read:
    sent: float
    tag: str
    status: int
    etag: str


def run(
    tmp_path: Path, max_seconds: float, extra_env: dict[str, str]
) -> tuple[list[tuple[float, str]], list[Read], str]:
    """Serve, write and revalidate concurrently; the version history, the reads, the final title."""
    clear_version_cache()
    article = Article.objects.create(
        author=Author.objects.create(name="Ada"), title="v0"
    )
    path = f"/articles/{article.pk}/"
    port = free_port()
    process = start_gunicorn(port, tmp_path / "gunicorn.log", extra_env)
    try:
        wait_until_serving(process, port, path)
        status, first = request(port, "GET", path, {})
        assert status == 200 and first
        # history[i] = (time the writer received tag i, tag i); tag i+1 supersedes tag i.
        history: list[tuple[float, str]] = [(time.monotonic(), first)]
        history_lock = threading.Lock()
        reads: list[Read] = []
        errors: list[BaseException] = []
        stop_at = time.monotonic() + max_seconds
        done = threading.Event()

        def writer() -> None:
            try:
                number = 0
                while not done.is_set() and time.monotonic() < stop_at:
                    number += 1
                    with history_lock:
                        current = history[-1][1]
                    body = json.dumps({"title": f"v{number}"}).encode()
                    status, etag = request(
                        port,
                        "PUT",
                        path,
                        {"If-Match": current, "Content-Type": "application/json"},
                        body,
                    )
                    assert status == 200, status
                    assert etag and etag != current
                    with history_lock:
                        history.append((time.monotonic(), etag))
                    time.sleep(random.uniform(0, 0.02))
            except BaseException as exc:
                errors.append(exc)
                done.set()

        def reader(seed: int) -> None:
            chooser = random.Random(seed)
            try:
                while not done.is_set() and time.monotonic() < stop_at:
                    with history_lock:
                        if len(reads) >= MAX_READS:
                            done.set()
                            return
                        known = [tag for _, tag in history[-3:]]
                    # Mostly the latest tag (304 expected), sometimes superseded ones.
                    tag = known[-1] if chooser.random() < 0.7 else chooser.choice(known)
                    sent = time.monotonic()
                    status, etag = request(port, "GET", path, {"If-None-Match": tag})
                    with history_lock:
                        reads.append(Read(sent, tag, status, etag))
            except BaseException as exc:
                errors.append(exc)
                done.set()

        threads = [threading.Thread(target=writer)] + [
            threading.Thread(target=reader, args=(seed,)) for seed in range(READERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max_seconds + 30)
        done.set()
        assert not any(thread.is_alive() for thread in threads)
        assert not errors, errors
    finally:
        stop(process)
    return history, reads, Article.objects.get(pk=article.pk).title


def stale_answers(
    history: list[tuple[float, str]], reads: list[Read]
) -> list[tuple[Read, str]]:
    """Reads answered with a tag superseded before they were sent (304 to it, or a 200 carrying it)."""
    index = {tag: position for position, (_, tag) in enumerate(history)}
    assert len(index) == len(history), "every write produced a new ETag"
    stale = []
    for read in reads:
        # The newest write whose 200 the writer had received when the read was sent.
        known = max(
            position
            for position, (received, _) in enumerate(history)
            if received <= read.sent
        )
        assert read.status in (200, 304), read
        answered = read.tag if read.status == 304 else read.etag
        if answered not in index or index[answered] < known:
            stale.append((read, history[known][1]))
    return stale


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_no_worker_answers_304_to_a_superseded_etag(tmp_path):
    history, reads, title = run(tmp_path, MAX_SECONDS, {})
    stale = stale_answers(history, reads)
    writes = len(history) - 1
    not_modified = sum(read.status == 304 for read in reads)
    print(
        f"{writes} writes, {len(reads)} revalidations ({not_modified} x 304), "
        f"{len(stale)} stale"
    )
    assert not stale, f"{len(stale)} stale answers, first: {stale[:3]}"
    assert writes >= 20, writes
    assert len(reads) >= 500, len(reads)
    assert not_modified >= 100, not_modified
    assert any(read.status == 200 for read in reads)
    assert title == f"v{writes}"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_the_check_catches_stale_304s_of_a_per_process_cache(tmp_path):
    # Control: with a local-memory cache in each worker (the misconfiguration the system checks
    # warn about), workers that did not handle a write keep serving the old version. The same
    # check must see it, or the test above proves nothing.
    history, reads, _ = run(tmp_path, 8.0, {"REDIS_URL": ""})
    assert len(history) > 5
    assert stale_answers(history, reads)


def start_uvicorn(port: int, log: Path) -> subprocess.Popen[bytes]:
    env = server_env({})
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "tests.serverproject.asgi:application",
    ]
    with log.open("wb") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_async_versioned_views_under_uvicorn(tmp_path):
    # Async views read versions with the async store path and run writes in the transaction's
    # thread: a sync ORM or cache call on the event loop would be a 500 (SynchronousOnlyOperation).
    clear_version_cache()
    article = Article.objects.create(
        author=Author.objects.create(name="Ada"), title="start"
    )
    port = free_port()
    process = start_uvicorn(port, tmp_path / "uvicorn.log")
    path = f"/async/{article.pk}/"
    try:
        wait_until_serving(process, port, path)
        clear_version_cache()  # the next GET reads the database (cold path), off the loop
        status, tag = request(port, "GET", path, {})
        assert status == 200 and tag
        assert request(port, "GET", path, {"If-None-Match": tag}) == (304, tag)
        many = "/async-many/5/"
        status, many_tag = request(port, "GET", many, {})
        assert request(port, "GET", many, {"If-None-Match": many_tag})[0] == 304
        keys_path = f"/async-keys/{article.pk}/"
        status, keys_tag = request(port, "GET", keys_path, {})
        assert request(port, "GET", keys_path, {"If-None-Match": keys_tag})[0] == 304
        # Class-based async view with require_precondition = True.
        cbv = f"/cbv/async/{article.pk}/"
        body = json.dumps({"title": "cbv"}).encode()
        json_type = {"Content-Type": "application/json"}
        assert request(port, "PUT", cbv, json_type, body)[0] == 428
        assert (
            request(port, "PUT", cbv, {**json_type, "If-Match": '"x"'}, body)[0] == 412
        )
        # Eight concurrent writes with the same If-Match: one wins.
        results: list[tuple[int, str]] = []
        barrier = threading.Barrier(8)

        def write(index: int) -> None:
            barrier.wait(timeout=10)
            payload = json.dumps({"title": f"writer {index}"}).encode()
            results.append(
                request(port, "PUT", path, {**json_type, "If-Match": tag}, payload)
            )

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        statuses = sorted(status for status, _ in results)
        assert statuses == [200] + [412] * 7, results
        new_tag = next(etag for status, etag in results if status == 200)
        assert request(port, "GET", path, {"If-None-Match": tag})[0] == 200
        assert request(port, "GET", path, {"If-None-Match": new_tag}) == (304, new_tag)
    finally:
        stop(process)
    log = (tmp_path / "uvicorn.log").read_text()
    assert "SynchronousOnlyOperation" not in log
    assert Article.objects.get(pk=article.pk).title.startswith("writer ")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["async-func", "sync-func"])
def test_dropin_validator_functions_with_the_orm_under_uvicorn(tmp_path, kind):
    # An async view whose etag_func is `async def` (awaits the async ORM) or plain (runs in a
    # thread): under a real ASGI server neither calls the sync ORM on the event loop.
    article = Article.objects.create(
        author=Author.objects.create(name="Ada"), title="first"
    )
    port = free_port()
    process = start_uvicorn(port, tmp_path / "uvicorn.log")
    path = f"/dropin/{kind}/{article.pk}/"
    try:
        wait_until_serving(process, port, path)
        assert request(port, "GET", path, {}) == (200, '"title-first"')
        assert request(port, "GET", path, {"If-None-Match": '"title-first"'}) == (
            304,
            '"title-first"',
        )
        Article.objects.filter(pk=article.pk).update(title="second")
        assert request(port, "GET", path, {"If-None-Match": '"title-first"'}) == (
            200,
            '"title-second"',
        )
        missing = f"/dropin/{kind}/{article.pk + 1000}/"
        assert request(port, "PUT", missing, {"If-Match": "*"})[0] == 412
    finally:
        stop(process)
    log = (tmp_path / "uvicorn.log").read_text()
    assert "SynchronousOnlyOperation" not in log
    assert "Traceback" not in log
