"""Remembered 304s (``answers``): a versioned view's 304 sent again while the read that made it
holds, and never once anything it depends on changed, against a redis-server of the test's own
with the local version cache on.

Each test counts the store reads (``versions.read``) and the view's runs: a 304 sent again reads
nothing; any change in its inputs or in the local copy makes the next request compute its answer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings
from django.utils.cache import patch_response_headers

from django_conditional import answers, versions
from django_conditional.httpdate import format_http_date
from django_conditional.resources import KeyFunction, ObjectOf
from django_conditional.store import local, stamps
from django_conditional.versioned_views import FROM_VERSIONS, versioned
from tests.test_local_cache import _arrived, _tracked
from tests.test_store_faults import REDIS_SERVER, Redis
from tests.testapp.models import Article

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None, reason="needs redis-server on the PATH"
)
KEY = versions.object_key(Article, 1)
ran: list[str] = []


def _page(request: HttpRequest, pk: int) -> HttpResponse:
    ran.append(request.method or "")
    response = HttpResponse(f"article {pk}")
    patch_response_headers(
        response, cache_timeout=60
    )  # Cache-Control and a relative Expires
    return response


article = versioned(
    ObjectOf(Article),
    vary=("Accept-Language",),
    last_modified=FROM_VERSIONS,
    headers={"Cache-Control": "max-age=60"},
)(_page)
per_user = versioned(ObjectOf(Article), per_user=True)(_page)
by_function = versioned(KeyFunction(lambda request, pk: KEY))(_page)
checked_each_time = versioned(ObjectOf(Article), visible=lambda request, pk: True)(
    _page
)
by_state = versioned(
    ObjectOf(Article), visible=lambda request, pk: True, visible_by_state=True
)(_page)


@pytest.fixture
def reads(
    local_store: Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[object]]:
    """The store reads made (each a ``versions.read`` or ``aread`` call), the view runs cleared."""
    made: list[object] = []
    real = versions.read

    def counted(*args: Any, **kwargs: Any) -> versions.Snapshot:
        made.append(args)
        return real(*args, **kwargs)

    versions.bump(KEY)  # a bump time: a Last-Modified
    real_async = versions.aread

    async def acounted(*args: Any, **kwargs: Any) -> versions.Snapshot:
        made.append(args)
        return await real_async(*args, **kwargs)

    monkeypatch.setattr(versions, "read", counted)
    monkeypatch.setattr(versions, "aread", acounted)
    ran.clear()
    answers.forget()
    yield made
    answers.forget()


def _get(view: Any, tag: str | None = None, **headers: str) -> HttpResponse:
    meta = {f"HTTP_{name.upper()}": value for name, value in headers.items()}
    if tag is not None:
        meta["HTTP_IF_NONE_MATCH"] = tag
    request = RequestFactory().get("/articles/1/")
    request.META.update(meta)
    response: HttpResponse = view(request, pk=1)
    return response


def _warm(view: Any, **headers: str) -> str:
    """The 200's tag, then one computed 304 (which is remembered)."""
    tag: str = _get(view, **headers).headers["ETag"]
    assert _get(view, tag, **headers).status_code == 304
    return tag


def _other_client(server: Redis) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def test_a_repeated_revalidation_reads_nothing_and_keeps_the_headers(
    reads: list[object],
) -> None:
    tag = _warm(article)
    computed = _get(article, tag)
    before, hits = len(reads), local.stats()["hits"]
    again = _get(article, tag)
    assert again.status_code == 304 and len(reads) == before
    assert (
        local.stats()["hits"] == hits + 1
    )  # counted as an answer without a round trip
    assert ran == ["GET"]  # the 200 only
    assert dict(again.items()).keys() == dict(computed.items()).keys()
    for name in ("ETag", "Last-Modified", "Cache-Control", "Vary"):
        assert again[name] == computed[name]
    assert "Content-Length" not in again and again.content == b""


def test_a_relative_expires_is_recomputed_on_every_copy(
    reads: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = _warm(article)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3600)
    later = _get(article, tag)
    assert later.status_code == 304
    assert later["Expires"] == format_http_date(
        datetime.fromtimestamp(now + 3600 + 60, timezone.utc)
    )


def test_a_bump_here_is_never_answered_from_memory(reads: list[object]) -> None:
    tag = _warm(article)
    versions.bump(KEY)
    response = _get(article, tag)
    assert response.status_code == 200 and response["ETag"] != tag
    assert ran == ["GET", "GET"]


def test_a_write_by_another_client_is_seen_before_the_next_answer(
    reads: list[object], redis_process: Redis
) -> None:
    tag = _warm(article)
    made = caches["default"].make_key(versions.cache_key(KEY))
    _other_client(redis_process).set(
        made, stamps.pickled((7, 1_700_000_000_000))
    )  # another worker's
    _arrived(_tracked())  # the invalidation is in the socket, not yet applied
    before = len(reads)
    response = _get(article, tag)
    assert len(reads) == before + 1  # the invalidation was applied: computed
    assert response.status_code == 200 and response["ETag"] != tag


def test_a_flush_forgets_what_was_remembered(
    reads: list[object], redis_process: Redis
) -> None:
    tag = _warm(article)
    _other_client(redis_process).flushdb()
    before = len(reads)
    assert _get(article, tag).status_code == 304  # the database still says version 1
    assert len(reads) == before + 1


def test_no_copy_without_the_lease(reads: list[object]) -> None:
    with override_settings(CONDITIONAL_LEASE_SECONDS=0.05):
        tag = _warm(article)
        time.sleep(0.1)
        before, trips = len(reads), local.stats()["round_trips"]
        assert _get(article, tag).status_code == 304
        assert len(reads) == before + 1  # computed, after a fence round trip
        assert local.stats()["round_trips"] == trips + 1


def test_each_variant_and_method_is_its_own_answer(reads: list[object]) -> None:
    tag = _warm(article, Accept_Language="en")
    before = len(reads)
    response = _get(article, tag, Accept_Language="fr")
    assert response.status_code == 200  # another representation: never the English 304
    head = RequestFactory().head("/articles/1/", HTTP_IF_NONE_MATCH=tag)
    head.META["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert article(head, pk=1).status_code == 304
    assert len(reads) == before + 2


def test_a_coded_tag_is_remembered_per_accept_encoding(reads: list[object]) -> None:
    plain = _warm(article)
    coded = (
        plain[:-1] + '-gzip"'
    )  # what the compression middleware sent with a gzip body
    assert _get(article, coded, Accept_Encoding="gzip").status_code == 304
    assert _get(article, coded, Accept_Encoding="gzip").status_code == 304  # remembered
    before = len(reads)
    # Without gzip the client would get the identity body: its gzip copy is not current for it.
    assert _get(article, coded).status_code == 200
    assert _get(article, coded, Accept_Encoding="gzip;q=0").status_code == 200
    assert len(reads) == before + 2


def test_a_proof_left_by_an_unremembered_request_is_dropped(
    reads: list[object],
) -> None:
    tag = _warm(article)
    request = RequestFactory().get("/articles/1/", HTTP_IF_NONE_MATCH=tag)
    request.META["HTTP_RANGE"] = "bytes=0-1"  # not remembered: no key
    assert article(request, pk=1).status_code == 304
    assert "_conditional_proven" not in request.__dict__


def test_a_setting_change_forgets_every_answer(reads: list[object]) -> None:
    tag = _warm(article)
    with override_settings(CONDITIONAL_DEPLOY_SALT="another-deploy"):
        response = _get(article, tag)
    assert response.status_code == 200  # the salt is part of the tag: not the old 304


@pytest.mark.parametrize(
    ("view", "headers"),
    [
        (per_user, {}),
        (by_function, {}),
        (checked_each_time, {}),
        (article, {"If_Match": '"x"'}),
        (article, {"Range": "bytes=0-1"}),
        (article, {"If_Range": '"x"'}),
        (article, {"If_Unmodified_Since": "Sat, 01 Jan 2000 00:00:00 GMT"}),
        (article, {"Accept_Language": "x" * (answers.MAX_INPUT + 1)}),
    ],
)
def test_what_may_differ_is_always_computed(
    reads: list[object], view: Any, headers: dict[str, str]
) -> None:
    tag = _get(view, **headers).headers.get("ETag", '"none"')
    before = len(reads)
    for _ in range(3):
        _get(view, tag, **headers)
    assert len(reads) == before + 3


def test_an_observed_request_is_always_computed(reads: list[object]) -> None:
    tag = _warm(article)
    with override_settings(CONDITIONAL_SERVER_TIMING=True):
        before = len(reads)
        response = _get(article, tag)
    assert response.status_code == 304 and "Server-Timing" in response
    assert len(reads) == before + 1


def test_an_access_check_remembered_by_state_is_repeated(reads: list[object]) -> None:
    tag = _warm(by_state)
    before = len(reads)
    assert _get(by_state, tag).status_code == 304
    assert len(reads) == before


def test_without_the_local_cache_every_304_is_computed(reads: list[object]) -> None:
    with override_settings(CONDITIONAL_LOCAL_CACHE=False):
        tag = _warm(article)
        before = len(reads)
        assert _get(article, tag).status_code == 304
        assert len(reads) == before + 1


def test_the_table_is_bounded(
    reads: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(answers, "MAX_ANSWERS", 2)
    for language in ("a", "b", "c"):
        _warm(article, Accept_Language=language)
    assert len(answers._answers) <= 2


def test_an_async_view_repeats_on_its_loops_connection(reads: list[object]) -> None:
    async def page(request: HttpRequest, pk: int) -> HttpResponse:
        return _page(request, pk)

    view = versioned(ObjectOf(Article), vary=())(page)

    async def three() -> list[int]:
        factory = RequestFactory()
        first = await view(factory.get("/articles/1/"), pk=1)
        tag = first["ETag"]
        codes = []
        for _ in range(3):
            request = factory.get("/articles/1/", HTTP_IF_NONE_MATCH=tag)
            codes.append((await view(request, pk=1)).status_code)
        return codes

    before = len(reads)
    assert asyncio.run(three()) == [304, 304, 304]
    assert len(reads) == before + 2  # the 200 and the first 304


def test_unhashable_url_arguments_are_computed(reads: list[object]) -> None:
    def page(request: HttpRequest, pk: int, **rest: object) -> HttpResponse:
        return HttpResponse(b"x")

    view = versioned(ObjectOf(Article), vary=())(page)
    tag = view(RequestFactory().get("/a/"), pk=1, extra=["x"])["ETag"]
    before = len(reads)
    for _ in range(2):
        request = RequestFactory().get("/a/", HTTP_IF_NONE_MATCH=tag)
        assert view(request, pk=1, extra=["x"]).status_code == 304
    assert len(reads) == before + 2


def test_a_failed_cache_write_stops_every_copy(reads: list[object]) -> None:
    from django_conditional.store import cache as store_cache

    tag = _warm(article)
    store_cache.untrusted.add(KEY)  # as a failed publication leaves it
    try:
        before = len(reads)
        _get(article, tag)
        assert len(reads) == before + 1
    finally:
        store_cache.untrusted.discard(KEY)


def test_a_304_without_a_relative_expires_is_copied_as_made(
    reads: list[object],
) -> None:
    def page(request: HttpRequest, pk: int) -> HttpResponse:
        return HttpResponse(
            b"x" * 300
        )  # compressible: the 304 carries the coding's Vary

    view = versioned(ObjectOf(Article), vary=())(page)
    tag = _warm(view)
    computed = _get(view, tag)
    again = _get(view, tag)
    assert "Expires" not in again and dict(again.items()) == dict(computed.items())
    assert getattr(again, "conditional_vary_coding", False) is True


def test_a_lock_held_by_another_thread_is_not_waited_for(reads: list[object]) -> None:
    _warm(article)
    proof = next(iter(answers._answers.values())).provenance.read
    side = local._side(caches["default"])
    assert side is not None
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with side.lock:  # as a thread in a read through would
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    try:
        assert not local.holds(proof.backend, proof.read)  # computed instead, no wait
    finally:
        release.set()
        thread.join(10)
    assert local.holds(proof.backend, proof.read)


def test_hostile_revalidations_are_answered_and_bounded(reads: list[object]) -> None:
    tag = _warm(article, Accept_Language="\u00e9" * 40)
    # Non-ASCII (as WSGI hands latin-1 bytes over) and a list far longer than a key may hold.
    odd = f'"\u00e9\u00e8", {tag}'
    huge = ", ".join([f'"{"x" * 60}{n}"' for n in range(60)] + [tag])
    for value in (odd, odd, huge, huge):
        assert _get(article, value, Accept_Language="\u00e9" * 40).status_code == 304
    before = len(reads)
    assert _get(article, odd, Accept_Language="\u00e9" * 40).status_code == 304
    assert len(reads) == before  # the short one is remembered
    assert _get(article, huge, Accept_Language="\u00e9" * 40).status_code == 304
    assert len(reads) == before + 1  # the long one never is
    assert all(len(str(key[5])) <= answers.MAX_INPUT for key in answers._answers)
