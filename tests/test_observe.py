"""Why this answer (#20): the decision record and where it goes (signal, logs, Server-Timing,
Prometheus, OpenTelemetry); nothing is built while nothing listens."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.core.cache import caches
from django.test import RequestFactory, override_settings

from django_conditional import observe, versions
from django_conditional.observe import export, record
from django_conditional.signals import decision_made
from django_conditional.store import local as store_local

WITH_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_conditional.middleware.ConditionalGetMiddleware",
]


@pytest.fixture
def decisions() -> Iterator[list[tuple[object, observe.Decision]]]:
    """The decisions sent while the test runs, with their senders."""
    seen: list[tuple[object, observe.Decision]] = []

    def receiver(sender: object, decision: observe.Decision, **kwargs: Any) -> None:
        seen.append((sender, decision))

    decision_made.connect(receiver, dispatch_uid="test_observe")
    yield seen
    decision_made.disconnect(dispatch_uid="test_observe")


def _etag(client: Any, url: str) -> str:
    etag: str = client.get(url).headers["ETag"]
    return etag


pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.urls_versioned"),
    pytest.mark.usefixtures("clean_versions"),
]


def test_nothing_is_built_when_nothing_listens(client, article):
    etag = _etag(client, f"/articles/{article.pk}/")
    assert not observe.listening()
    with (
        mock.patch.object(record, "Decision") as built,
        mock.patch.object(observe, "Watch") as watched,
    ):
        response = client.get(
            f"/articles/{article.pk}/", headers={"If-None-Match": etag}
        )
    assert response.status_code == 304
    assert not built.called and not watched.called
    assert "Server-Timing" not in response.headers


def test_a_304_is_one_decision_with_what_it_read(client, article, decisions):
    url = f"/articles/{article.pk}/"
    etag = _etag(client, url)
    decisions.clear()
    response = client.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    [(sender, decision)] = decisions
    assert sender.__name__ == "VersionedSource"
    assert (decision.outcome, decision.status) == ("not-modified", 304)
    assert decision.decided_by == "If-None-Match"
    assert decision.label == "304 If-None-Match"
    assert decision.etag == etag
    assert decision.conditions == {"If-None-Match": etag}
    assert decision.keys and set(decision.versions) == set(decision.keys)
    assert all(version > 0 for version in decision.versions.values())
    assert (decision.round_trips, decision.queries) == (1, 0)
    assert decision.view.endswith("article")
    assert decision.local_cache is None
    assert decision.duration > 0
    assert decision.as_dict()["label"] == "304 If-None-Match"


def test_a_200_without_preconditions_is_recorded_as_proceed(client, article, decisions):
    response = client.get(f"/articles/{article.pk}/")
    [(_, decision)] = decisions
    assert (decision.outcome, decision.status, decision.decided_by) == (
        "proceed",
        200,
        None,
    )
    assert decision.etag == response.headers["ETag"]


def test_write_412_and_428(client, article, decisions):
    failed = client.put(
        f"/articles/{article.pk}/",
        data="{}",
        content_type="application/json",
        headers={"If-Match": '"stale"'},
    )
    required = client.put(
        f"/required/{article.pk}/", data="{}", content_type="application/json"
    )
    assert (failed.status_code, required.status_code) == (412, 428)
    first, second = (decision for _, decision in decisions)
    assert (first.outcome, first.decided_by, first.method) == (
        "precondition-failed",
        "If-Match",
        "PUT",
    )
    assert first.keys and first.round_trips == 0  # the locked rows, no cache
    assert first.queries is not None and first.queries >= 1  # the lock, counted
    assert (second.outcome, second.status, second.label) == (
        "precondition-required",
        428,
        "428",
    )
    assert second.queries == 0  # the versions came from the cache


def test_async_view_is_recorded_with_its_query_count(client, article, decisions):
    url = f"/async/{article.pk}/"
    etag = _etag(client, url)
    decisions.clear()
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    [(_, decision)] = decisions
    assert decision.outcome == "not-modified" and decision.queries == 0
    # A cold read (the versions gone from the cache) asks the database in a sync_to_async
    # thread, on that thread's connection: counted all the same.
    caches["default"].clear()
    versions.clear_local_state()
    decisions.clear()
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    [(_, decision)] = decisions
    assert decision.queries is not None and decision.queries >= 1


@override_settings(MIDDLEWARE=WITH_MIDDLEWARE)
def test_middleware_decides_once_and_views_are_not_recorded_twice(
    client, article, decisions
):
    with override_settings(ROOT_URLCONF="tests.urls_middleware"):
        etag = _etag(client, "/page/")
        decisions.clear()
        assert client.get("/page/", headers={"If-None-Match": etag}).status_code == 304
    [(sender, decision)] = decisions
    assert sender.__name__ == "ConditionalGetMiddleware"
    assert (decision.outcome, decision.decided_by) == ("not-modified", "If-None-Match")
    assert decision.keys == () and decision.etag == etag
    decisions.clear()
    # A versioned view's 200 with a stale tag: the view decided, the middleware adds nothing.
    url = f"/articles/{article.pk}/"
    assert client.get(url, headers={"If-None-Match": '"old"'}).status_code == 200
    assert [d.face for _, d in decisions] == ["VersionedSource"]


@override_settings(
    MIDDLEWARE=WITH_MIDDLEWARE, CONDITIONAL_REQUIRE_PRECONDITION={"paths": ["^/page/"]}
)
@pytest.mark.urls("tests.urls_middleware")
def test_middleware_428_is_recorded(client, decisions):
    assert client.put("/page/").status_code == 428
    [(_, decision)] = decisions
    assert decision.outcome == "precondition-required"


def test_a_failing_receiver_is_logged_not_raised(client, article, caplog):
    def broken(**kwargs: object) -> None:
        raise RuntimeError("receiver bug")

    decision_made.connect(broken, dispatch_uid="broken")
    try:
        with caplog.at_level(logging.ERROR, logger="django_conditional"):
            assert client.get(f"/articles/{article.pk}/").status_code == 200
    finally:
        decision_made.disconnect(dispatch_uid="broken")
    assert "decision_made receiver" in caplog.text


def test_debug_log_is_one_structured_record(client, article, caplog):
    url = f"/articles/{article.pk}/"
    etag = _etag(client, url)
    with caplog.at_level(logging.DEBUG, logger="django_conditional.decisions"):
        client.get(url, headers={"If-None-Match": etag})
    [found] = [r for r in caplog.records if r.name == "django_conditional.decisions"]
    assert found.levelno == logging.DEBUG
    assert "304 If-None-Match" in found.getMessage()
    assert found.conditional["outcome"] == "not-modified"


def test_server_timing_is_off_by_default_and_opt_in(client, article, settings):
    url = f"/articles/{article.pk}/"
    etag = _etag(client, url)
    assert "Server-Timing" not in client.get(url).headers
    settings.CONDITIONAL_SERVER_TIMING = True
    response = client.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    timing = response.headers["Server-Timing"]
    assert timing.startswith('cond;desc="304 If-None-Match";dur=')
    assert float(timing.rsplit("=", 1)[1]) >= 0


def test_server_timing_never_goes_to_other_origins_unless_listed(
    client, article, settings
):
    settings.CONDITIONAL_SERVER_TIMING = True
    url = f"/articles/{article.pk}/"
    other = {"Origin": "https://elsewhere.example", "Sec-Fetch-Site": "cross-site"}
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert "Server-Timing" not in client.get(url, headers=other).headers
    assert (
        "Server-Timing"
        not in client.get(url, headers={"Origin": "https://x.example"}).headers
    )
    assert "Server-Timing" in client.get(url, headers=same).headers
    settings.CONDITIONAL_SERVER_TIMING_ORIGINS = ["https://elsewhere.example"]
    assert "Server-Timing" in client.get(url, headers=other).headers


def test_server_timing_joins_an_existing_header():
    from django.http import HttpResponse
    from django.test import RequestFactory

    response = HttpResponse(headers={"Server-Timing": "db;dur=1"})
    decision = observe.Decision("F", "v", "GET", "/", "proceed", 200, duration=0.001)
    with override_settings(CONDITIONAL_SERVER_TIMING=True):
        export.server_timing(RequestFactory().get("/"), response, decision)
    assert response.headers["Server-Timing"] == 'db;dur=1, cond;desc="200";dur=1.000'


def test_prometheus_counter(client, article, settings):
    prometheus = pytest.importorskip("prometheus_client")
    settings.CONDITIONAL_METRICS = True
    url = f"/articles/{article.pk}/"
    etag = _etag(client, url)
    labels = {
        "outcome": "not-modified",
        "precondition": "If-None-Match",
        "view": "tests.testapp.views.article",
    }
    before = prometheus.REGISTRY.get_sample_value("conditional_outcomes_total", labels)
    client.get(url, headers={"If-None-Match": etag})
    after = prometheus.REGISTRY.get_sample_value("conditional_outcomes_total", labels)
    assert after == (before or 0) + 1


def test_opentelemetry_span_attributes(client, article, settings):
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    settings.CONDITIONAL_METRICS = True
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    url = f"/articles/{article.pk}/"
    etag = _etag(client, url)
    with provider.get_tracer("test").start_as_current_span("request"):
        client.get(url, headers={"If-None-Match": etag})
    [span] = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["conditional.outcome"] == "not-modified"
    assert attributes["conditional.precondition"] == "If-None-Match"
    assert attributes["conditional.etag"] == etag
    assert attributes["conditional.round_trips"] == 1


def test_metrics_without_the_libraries_do_nothing(monkeypatch):
    monkeypatch.setattr(export, "_loaded", {})
    monkeypatch.setattr(export, "import_module", mock.Mock(side_effect=ImportError))
    decision = observe.Decision("F", "v", "GET", "/", "proceed", 200)
    export.metrics(decision)  # no error
    assert export._loaded == {"prometheus_client": None, "opentelemetry.trace": None}


def test_local_cache_field_follows_the_local_caches_hits(
    client, article, decisions, monkeypatch
):
    # Unit-level: the local cache (Redis only) replaced by counters that move during the read.
    hits = iter(range(100))
    monkeypatch.setattr(store_local, "is_on", lambda cache: True)
    monkeypatch.setattr(store_local, "stats", lambda: {"hits": next(hits)})
    client.get(f"/articles/{article.pk}/")
    [(_, decision)] = decisions
    assert decision.local_cache is True
    monkeypatch.setattr(store_local, "stats", lambda: {"hits": 7})
    decisions.clear()
    client.get(f"/articles/{article.pk}/")
    assert decisions[0][1].local_cache is False


@pytest.mark.django_db(transaction=True)
def test_concurrent_async_decisions_count_their_own_queries():
    # Two watched decisions in flight at once on one event loop, their queries interleaved on
    # the one sync thread: each record counts its own (1 and 3), none of the other's.
    import asyncio

    from asgiref.sync import async_to_sync, sync_to_async
    from django.db import connection

    from django_conditional.observe.record import Watch

    def query() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    async def decide(queries: int, pause: float) -> Watch:
        watch = Watch(RequestFactory().get("/"), Watch, "test")

        async def resolve() -> None:
            for _ in range(queries):
                await sync_to_async(query)()
                await asyncio.sleep(pause)

        await watch.acounted(resolve)
        return watch

    async def both() -> tuple[Watch, Watch]:
        return await asyncio.gather(decide(1, 0.02), decide(3, 0.005))

    one, three = async_to_sync(both)()
    assert (one.queries, three.queries) == (1, 3)
