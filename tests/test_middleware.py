"""ConditionalGetMiddleware through Django's test clients, on sync and async stacks."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import xxhash
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import override_settings

from django_conditional.middleware import ConditionalGetMiddleware
from django_conditional.request import get_twin
from django_conditional.sources.content import content_etag, get_hasher
from tests import urls_middleware
from tests.urls_middleware import STATE

pytestmark = pytest.mark.urls("tests.urls_middleware")

MW = "django_conditional.middleware.ConditionalGetMiddleware"
SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
GZIP = "django.middleware.gzip.GZipMiddleware"
COMMON = "django.middleware.common.CommonMiddleware"
LOCALE = "django.middleware.locale.LocaleMiddleware"
UPDATE_CACHE = "django.middleware.cache.UpdateCacheMiddleware"
FETCH_CACHE = "django.middleware.cache.FetchFromCacheMiddleware"
ORIGINAL_CONTENT = STATE["content"]
# Cookie-based sessions keep these tests off the database.
STACK = override_settings(
    MIDDLEWARE=[SESSION, MW],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
)

Fetch = Callable[..., Any]


@pytest.fixture(autouse=True)
def _state() -> Iterator[None]:
    STATE.update(content=ORIGINAL_CONTENT, writes=0, gets=0, file=None)
    with STACK:
        yield
    STATE.update(content=ORIGINAL_CONTENT, writes=0, gets=0, file=None)


@pytest.fixture(params=["sync", "async"])
def http(request: pytest.FixtureRequest, client: Any, async_client: Any) -> Fetch:
    """``http(method, path, headers={...}, data=b"")`` through the sync or the async client."""

    def fetch(
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        data: bytes | str = b"",
    ) -> Any:
        if request.param == "sync":
            return client.generic(
                method, path, data, "text/plain", headers=headers or {}
            )

        async def fetch_async() -> Any:
            return await async_client.generic(
                method, path, data, "text/plain", headers=headers or {}
            )

        return async_to_sync(fetch_async)()

    return fetch


def body_tag(body: str | bytes) -> str:
    raw = body.encode() if isinstance(body, str) else body
    return f'"{xxhash.xxh3_128_hexdigest(raw)}"'


# Content ETags


def test_get_gets_a_strong_etag_hashing_the_body(http):
    response = http("GET", "/page/")
    assert response.status_code == 200
    assert response["ETag"] == body_tag(ORIGINAL_CONTENT)


def test_async_view_gets_the_same_etag(http):
    assert http("GET", "/apage/")["ETag"] == body_tag(ORIGINAL_CONTENT)


def test_head_gets_the_etag_of_the_get(http):
    head = http("HEAD", "/page/")
    assert head.status_code == 200
    assert head.content == b""
    assert head["ETag"] == http("GET", "/page/")["ETag"]


def test_head_of_a_view_that_skips_its_body_gets_the_etag_of_the_get(http):
    head = http("HEAD", "/head-special/")
    assert head["ETag"] == body_tag(ORIGINAL_CONTENT)
    assert head["ETag"] == http("GET", "/head-special/")["ETag"]


def test_matching_head_gets_304(http):
    tag = http("GET", "/page/")["ETag"]
    response = http("HEAD", "/page/", {"If-None-Match": tag})
    assert response.status_code == 304
    assert response["ETag"] == tag


@pytest.mark.parametrize(
    ("name", "digest"),
    [
        ("md5", lambda b: hashlib.md5(b).hexdigest()),
        ("sha1", lambda b: hashlib.sha1(b).hexdigest()),
        ("sha256", lambda b: hashlib.sha256(b).hexdigest()),
        ("blake2b", lambda b: hashlib.blake2b(b, digest_size=16).hexdigest()),
        ("xxh3", xxhash.xxh3_128_hexdigest),
    ],
)
def test_hash_setting_chooses_the_hash(http, name, digest):
    with override_settings(CONDITIONAL_HASH=name):
        response = http("GET", "/page/")
    assert response["ETag"] == f'"{digest(ORIGINAL_CONTENT.encode())}"'


def test_md5_tags_equal_djangos(client):
    with override_settings(
        CONDITIONAL_HASH="md5",
        MIDDLEWARE=["django.middleware.http.ConditionalGetMiddleware"],
    ):
        djangos = client.get("/page/")["ETag"]
    with override_settings(CONDITIONAL_HASH="md5"):
        ours = client.get("/page/")["ETag"]
    assert ours == djangos


def test_unknown_hash_is_improperly_configured():
    with pytest.raises(ImproperlyConfigured, match="crc32"):
        get_hasher("crc32")
    assert content_etag(b"x", "md5").tag == hashlib.md5(b"x").hexdigest()


def test_empty_200_is_untagged_like_django(http):
    # Django's ConditionalGetMiddleware leaves empty bodies untagged (a view answering HEAD with
    # no body would otherwise announce a tag its GET never has); so does this one.
    response = http("GET", "/empty/")
    assert response.status_code == 200
    assert "ETag" not in response
    assert http("GET", "/empty/", {"If-None-Match": body_tag(b"")}).status_code == 200


def test_empty_200_agrees_with_django(client):
    from django.middleware.http import ConditionalGetMiddleware as DjangoMiddleware
    from django.test import RequestFactory

    request = RequestFactory().get("/empty/")
    django_response: Any = DjangoMiddleware(urls_middleware.empty)(request)
    ours = client.get("/empty/")
    assert ("ETag" in ours) == ("ETag" in django_response)


def test_view_etag_is_kept_and_evaluated(http):
    response = http("GET", "/with-etag/", {"If-None-Match": '"view-tag"'})
    assert response.status_code == 304
    assert response["ETag"] == '"view-tag"'
    assert http("GET", "/with-etag/")["ETag"] == '"view-tag"'


def test_last_modified_page_gets_no_etag_but_its_date_is_evaluated(http):
    assert "ETag" not in http("GET", "/with-last-modified/")
    response = http(
        "GET",
        "/with-last-modified/",
        {"If-Modified-Since": "Sun, 02 Jan 2022 00:00:00 GMT"},
    )
    assert response.status_code == 304
    assert response["Last-Modified"] == "Sat, 01 Jan 2022 00:00:00 GMT"
    newer = http(
        "GET",
        "/with-last-modified/",
        {"If-Modified-Since": "Fri, 31 Dec 2021 00:00:00 GMT"},
    )
    assert newer.status_code == 200


def test_no_store_gets_no_etag(http):
    response = http("GET", "/no-store/", {"If-None-Match": "*"})
    assert "ETag" not in response
    # If-None-Match: * is false for a representation that exists (§13.1.2), tag or not.
    assert response.status_code == 304


def test_no_store_without_preconditions_is_a_plain_200(http):
    response = http("GET", "/no-store/")
    assert response.status_code == 200
    assert "ETag" not in response


def test_non_200_gets_no_etag_and_no_304(http):
    response = http("GET", "/not-found/", {"If-None-Match": "*"})
    assert response.status_code == 404
    assert "ETag" not in response


def test_other_2xx_is_evaluated(http):
    response = http("GET", "/created/", {"If-None-Match": '"created-tag"'})
    assert response.status_code == 304


def test_streaming_body_is_never_hashed(http):
    for path in ("/streaming/", "/astreaming/"):
        response = http("GET", path)
        assert response.status_code == 200
        assert response.streaming
        assert "ETag" not in response


def test_file_response_gets_a_tag_from_size_and_mtime(http, tmp_path):
    path = tmp_path / "report.txt"
    path.write_bytes(b"version one")
    os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    STATE["file"] = str(path)
    response = http("GET", "/file/")
    tag = response["ETag"]
    # Draining closes the file; the clients wrap close() so that it does not touch the database.
    assert b"".join(response.streaming_content) == b"version one"
    assert tag == f'"{1_700_000_000_000_000_000:x}-{len(b"version one"):x}"'
    again = http("GET", "/file/", {"If-None-Match": tag})
    assert again.status_code == 304
    path.write_bytes(b"version two, longer")
    changed = http("GET", "/file/", {"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed["ETag"] != tag
    assert b"".join(changed.streaming_content) == b"version two, longer"


def test_file_response_over_memory_gets_no_tag(http):
    response = http("GET", "/memory-file/")
    assert response.status_code == 200
    assert "ETag" not in response
    assert b"".join(response.streaming_content) == ORIGINAL_CONTENT.encode()


@override_settings(CONDITIONAL_SKIP_PATHS=[r"^/skipped/", "/api/"])
def test_skip_paths_are_left_alone(http):
    assert "ETag" not in http("GET", "/skipped/page/")
    assert "ETag" in http("GET", "/page/")


def test_post_response_is_not_tagged(http):
    response = http("POST", "/resource/", data="new")
    assert response.status_code == 200
    assert "ETag" not in response


# 304 and 412


def test_304_keeps_the_15_4_5_headers_and_no_body(http):
    first = http("GET", "/cached/")
    tag = first["ETag"]
    response = http("GET", "/cached/", {"If-None-Match": tag})
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == tag
    assert response["Cache-Control"] == "max-age=60"
    assert response["Vary"] == "Accept-Language"
    assert response["Content-Location"] == "/cached/"
    assert "Expires" in response
    for dropped in ("Content-Length", "Content-Language", "Content-Type"):
        assert dropped not in response


def test_non_matching_tag_gets_the_full_200(http):
    response = http("GET", "/page/", {"If-None-Match": '"something-else"'})
    assert response.status_code == 200
    assert response.content.decode() == ORIGINAL_CONTENT


def test_changed_content_gets_200_with_a_new_tag(http):
    tag = http("GET", "/page/")["ETag"]
    STATE["content"] = "Changed content."
    response = http("GET", "/page/", {"If-None-Match": tag})
    assert response.status_code == 200
    assert response.content == b"Changed content."
    assert response["ETag"] == body_tag("Changed content.")


def test_if_none_match_star_gets_304(http):
    assert http("GET", "/page/", {"If-None-Match": "*"}).status_code == 304


def test_weak_if_none_match_matches_and_the_304_repeats_it_weak(http):
    tag = http("GET", "/page/")["ETag"]
    response = http("GET", "/page/", {"If-None-Match": f'"other", W/{tag}'})
    assert response.status_code == 304
    assert response["ETag"] == f"W/{tag}"


def test_strong_if_none_match_gets_a_strong_304(http):
    tag = http("GET", "/page/")["ETag"]
    response = http("GET", "/page/", {"If-None-Match": f"W/{tag}, {tag}"})
    assert response["ETag"] == tag


def test_failed_if_match_on_get_is_412(http):
    response = http("GET", "/page/", {"If-Match": '"stale"'})
    assert response.status_code == 412
    assert response["ETag"] == body_tag(ORIGINAL_CONTENT)


def test_if_match_current_tag_on_get_is_200(http):
    tag = http("GET", "/page/")["ETag"]
    for header in (tag, "*"):
        response = http("GET", "/page/", {"If-Match": header})
        assert response.status_code == 200


def test_weak_if_match_never_matches(http):
    tag = http("GET", "/page/")["ETag"]
    assert http("GET", "/page/", {"If-Match": f"W/{tag}"}).status_code == 412


def test_failed_if_unmodified_since_on_get_is_412(http):
    response = http(
        "GET",
        "/with-last-modified/",
        {"If-Unmodified-Since": "Fri, 31 Dec 2021 00:00:00 GMT"},
    )
    assert response.status_code == 412
    assert response["Last-Modified"] == "Sat, 01 Jan 2022 00:00:00 GMT"


def test_304_closes_the_discarded_file(http, tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"data")
    STATE["file"] = str(path)
    first = http("GET", "/file/")
    assert b"".join(first.streaming_content) == b"data"
    opened: list[Any] = []
    real_open = open

    def tracking_open(*args: Any, **kwargs: Any) -> Any:
        handle = real_open(*args, **kwargs)
        opened.append(handle)
        return handle

    urls_middleware.open = tracking_open  # type: ignore[attr-defined]
    try:
        response = http("GET", "/file/", {"If-None-Match": first["ETag"]})
    finally:
        del urls_middleware.open  # type: ignore[attr-defined]
    assert response.status_code == 304
    assert len(opened) == 1
    assert opened[0].closed


# If-Range


def test_stale_if_range_gets_the_full_200(http):
    response = http("GET", "/ranged/", {"Range": "bytes=0-9", "If-Range": '"range-v1"'})
    assert response.status_code == 200
    assert response.content.decode() == ORIGINAL_CONTENT
    assert "Content-Range" not in response


def test_current_if_range_keeps_the_partial(http):
    response = http("GET", "/ranged/", {"Range": "bytes=0-9", "If-Range": '"range-v2"'})
    assert response.status_code == 206
    assert response.content.decode() == ORIGINAL_CONTENT[:10]


def test_range_without_if_range_keeps_the_partial(http):
    assert http("GET", "/ranged/", {"Range": "bytes=0-9"}).status_code == 206


def test_if_range_on_a_partial_without_validator_is_served_from_the_full_200(http):
    # The view's own 206 has no validator to match If-Range, so the full 200 is fetched; its
    # content tag is the one If-Range names, so the middleware serves the range of it.
    tag = http("GET", "/ranged-untagged/")["ETag"]
    response = http("GET", "/ranged-untagged/", {"Range": "bytes=0-9", "If-Range": tag})
    assert response.status_code == 206
    assert response.content.decode() == ORIGINAL_CONTENT[:10]
    assert response["Content-Range"] == f"bytes 0-9/{len(ORIGINAL_CONTENT.encode())}"
    assert response["ETag"] == tag


def test_if_range_date_is_never_strong_enough_without_last_modified(http):
    response = http(
        "GET",
        "/ranged/",
        {"Range": "bytes=0-9", "If-Range": "Sat, 01 Jan 2022 00:00:00 GMT"},
    )
    assert response.status_code == 200


# The 428 policy


@override_settings(CONDITIONAL_REQUIRE_PRECONDITION=True)
def test_unguarded_write_gets_428_before_the_view(http):
    for method in ("PUT", "PATCH", "DELETE"):
        response = http(method, "/resource/", data="overwritten")
        assert response.status_code == 428
        assert b"If-Match" in response.content
    assert STATE["writes"] == 0
    assert STATE["content"] == ORIGINAL_CONTENT


@override_settings(CONDITIONAL_REQUIRE_PRECONDITION=True)
def test_428_says_which_header_in_text_too(http):
    response = http("PUT", "/resource/", {"Accept": "text/plain"})
    assert response.status_code == 428
    assert response["Content-Type"].startswith("text/plain")
    assert "If-Match or If-Unmodified-Since" in response.content.decode()


@override_settings(CONDITIONAL_REQUIRE_PRECONDITION=True)
def test_guarded_write_passes_the_policy(http):
    for header in ("If-Match", "If-Unmodified-Since"):
        value = "*" if header == "If-Match" else "Sat, 01 Jan 2022 00:00:00 GMT"
        response = http("PUT", "/resource/", {header: value}, data="new")
        assert response.status_code == 200
    assert STATE["writes"] == 2


@override_settings(CONDITIONAL_REQUIRE_PRECONDITION=True)
def test_policy_leaves_safe_methods_and_post_alone(http):
    assert http("GET", "/resource/").status_code == 200
    assert http("POST", "/resource/", data="x").status_code == 200


@override_settings(
    CONDITIONAL_REQUIRE_PRECONDITION={"methods": ["post", "PUT"], "paths": [r"^/api/"]}
)
def test_policy_methods_and_paths(http):
    assert http("POST", "/api/resource/", data="x").status_code == 428
    assert http("PUT", "/api/resource/", data="x").status_code == 428
    assert http("DELETE", "/api/resource/").status_code == 204
    assert http("PUT", "/resource/", data="x").status_code == 200
    assert STATE["writes"] == 2


@override_settings(
    CONDITIONAL_REQUIRE_PRECONDITION=True, CONDITIONAL_SKIP_PATHS=["/api/"]
)
def test_policy_applies_on_skipped_paths(http):
    assert http("PUT", "/api/resource/").status_code == 428


@override_settings(CONDITIONAL_REQUIRE_PRECONDITION=True)
def test_policy_on_an_async_view(http):
    assert http("PUT", "/aresource/", data="x").status_code == 428
    assert STATE["writes"] == 0


# GET first


@override_settings(CONDITIONAL_PRECHECK_UNSAFE=True)
def test_precheck_refuses_a_stale_write_without_running_it(http):
    response = http("PUT", "/resource/", {"If-Match": '"stale"'}, data="lost update")
    assert response.status_code == 412
    assert response["ETag"] == body_tag(ORIGINAL_CONTENT)
    assert STATE["writes"] == 0
    assert STATE["content"] == ORIGINAL_CONTENT


@override_settings(CONDITIONAL_PRECHECK_UNSAFE=True)
def test_precheck_lets_a_current_write_through(http):
    tag = http("GET", "/resource/")["ETag"]
    response = http("PUT", "/resource/", {"If-Match": tag}, data="second version")
    assert response.status_code == 200
    assert STATE["content"] == "second version"
    # The first writer's tag is now stale.
    again = http("PUT", "/resource/", {"If-Match": tag}, data="third version")
    assert again.status_code == 412
    assert STATE["content"] == "second version"


@override_settings(CONDITIONAL_PRECHECK_UNSAFE=True)
def test_precheck_on_an_async_view(http):
    response = http("PUT", "/aresource/", {"If-Match": '"stale"'}, data="x")
    assert response.status_code == 412
    assert STATE["writes"] == 0


@override_settings(CONDITIONAL_PRECHECK_UNSAFE=True)
def test_precheck_if_unmodified_since(http):
    response = http(
        "PUT",
        "/with-last-modified/",
        {"If-Unmodified-Since": "Fri, 31 Dec 2021 00:00:00 GMT"},
        data="x",
    )
    assert response.status_code == 412
    assert response["Last-Modified"] == "Sat, 01 Jan 2022 00:00:00 GMT"


@override_settings(CONDITIONAL_PRECHECK_UNSAFE=True)
def test_precheck_if_none_match_star_refuses_to_overwrite(http):
    response = http("PUT", "/resource/", {"If-None-Match": "*"}, data="x")
    assert response.status_code == 412
    assert STATE["writes"] == 0


@override_settings(CONDITIONAL_PRECHECK_UNSAFE=True)
def test_precheck_skips_guarded_views(http):
    response = http("PUT", "/guarded/", {"If-Match": '"stale"'}, data="x")
    assert response.status_code == 200
    assert STATE["writes"] == 1


@override_settings(CONDITIONAL_PRECHECK_UNSAFE=True)
def test_precheck_lets_the_write_decide_when_the_get_is_not_2xx(http):
    response = http("PUT", "/forbidden-get/", {"If-Match": '"stale"'}, data="x")
    assert response.status_code == 200
    assert STATE["writes"] == 1


@override_settings(CONDITIONAL_PRECHECK_UNSAFE=True)
def test_precheck_needs_preconditions_to_run_a_get(http):
    assert http("PUT", "/resource/", data="x").status_code == 200
    # If-Modified-Since only applies to GET and HEAD (§13.1.3).
    since = {"If-Modified-Since": "Sat, 01 Jan 2022 00:00:00 GMT"}
    assert http("PUT", "/resource/", since, data="x").status_code == 200
    assert STATE["gets"] == 0
    assert STATE["writes"] == 2


@override_settings(CONDITIONAL_PRECHECK_UNSAFE=True, CONDITIONAL_SKIP_PATHS=["/api/"])
def test_precheck_skips_skipped_paths_and_unknown_urls(http):
    assert http("PUT", "/api/resource/", {"If-Match": '"stale"'}).status_code == 200
    assert http("PUT", "/nowhere/", {"If-Match": '"stale"'}).status_code == 404
    assert STATE["gets"] == 0


@override_settings(CONDITIONAL_PRECHECK_UNSAFE=False)
def test_without_precheck_a_stale_write_runs(http):
    response = http("PUT", "/resource/", {"If-Match": '"stale"'}, data="x")
    assert response.status_code == 200
    assert STATE["writes"] == 1


def test_get_twin_drops_the_writes_content_and_preconditions(rf):
    request = rf.put(
        "/resource/?q=1",
        data="payload",
        content_type="text/plain",
        headers={"If-Match": '"x"', "Range": "bytes=0-1", "X-Kept": "yes"},
    )
    assert request.headers["If-Match"] == '"x"'  # fills the cached headers
    twin = get_twin(request)
    assert twin.method == "GET"
    assert twin.META["REQUEST_METHOD"] == "GET"
    assert "HTTP_IF_MATCH" not in twin.META
    assert "HTTP_IF_MATCH" not in twin.__dict__["environ"]
    assert request.environ["HTTP_IF_MATCH"] == '"x"'
    assert "HTTP_RANGE" not in twin.META
    assert "CONTENT_LENGTH" not in twin.META
    assert "If-Match" not in twin.headers
    assert twin.headers["X-Kept"] == "yes"
    assert twin.GET["q"] == "1"
    assert twin.body == b""
    assert request.body == b"payload"
    assert request.method == "PUT"


# Beside Django's middleware


@override_settings(MIDDLEWARE=[GZIP, SESSION, MW])
def test_gzip_outside_weakens_the_tag_and_the_weak_tag_still_matches(http):
    gz = {"Accept-Encoding": "gzip"}
    first = http("GET", "/page/", gz)
    assert first["Content-Encoding"] == "gzip"
    assert first["ETag"] == f"W/{body_tag(ORIGINAL_CONTENT)}"
    assert (
        http("GET", "/page/", gz)["ETag"] == first["ETag"]
    )  # stable: the plain body is hashed
    response = http("GET", "/page/", {**gz, "If-None-Match": first["ETag"]})
    assert response.status_code == 304
    assert response["ETag"] == first["ETag"]
    assert response.content == b""
    plain = http("GET", "/page/", {"If-None-Match": first["ETag"]})
    assert plain.status_code == 304


@override_settings(MIDDLEWARE=[MW, GZIP])
def test_gzip_inside_is_the_wrong_order(http):
    # What W003 warns about: GZip adds random bytes, so the hash of the compressed body changes.
    # Two responses may draw the same padding length: among ten, some tags differ.
    gz = {"Accept-Encoding": "gzip"}
    assert len({http("GET", "/page/", gz)["ETag"] for _ in range(10)}) > 1


@pytest.mark.parametrize(
    "stack", [[COMMON, SESSION, MW], [SESSION, MW, COMMON]], ids=["outside", "inside"]
)
def test_common_middleware_adds_no_content_length_to_the_304(http, stack):
    with override_settings(MIDDLEWARE=stack):
        tag = http("GET", "/page/")["ETag"]
        assert http("GET", "/page/")["Content-Length"] == str(len(ORIGINAL_CONTENT))
        response = http("GET", "/page/", {"If-None-Match": tag})
    assert response.status_code == 304
    assert "Content-Length" not in response


@pytest.mark.parametrize(
    "stack", [[SESSION, MW], [MW, SESSION]], ids=["session-outside", "session-inside"]
)
def test_session_vary_cookie_and_cookies_are_kept_on_the_304(http, stack):
    with override_settings(MIDDLEWARE=stack):
        tag = http("GET", "/cookie/")["ETag"]
        response = http("GET", "/cookie/", {"If-None-Match": tag})
    assert response.status_code == 304
    assert "Cookie" in response["Vary"]
    assert response.cookies["flavour"].value == "oat"
    assert "sessionid" in response.cookies


@override_settings(
    MIDDLEWARE=[SESSION, MW, LOCALE],
    LANGUAGES=[("en", "English"), ("de", "German")],
    LANGUAGE_CODE="en",
)
def test_locale_middleware_vary_is_kept_and_languages_get_their_own_tags(http):
    english = http("GET", "/localized/", {"Accept-Language": "en"})
    german = http("GET", "/localized/", {"Accept-Language": "de"})
    assert english.content != german.content
    assert english["ETag"] != german["ETag"]
    response = http(
        "GET", "/localized/", {"Accept-Language": "de", "If-None-Match": german["ETag"]}
    )
    assert response.status_code == 304
    assert "Accept-Language" in response["Vary"]
    stale = http(
        "GET",
        "/localized/",
        {"Accept-Language": "de", "If-None-Match": english["ETag"]},
    )
    assert stale.status_code == 200


@override_settings(
    MIDDLEWARE=[UPDATE_CACHE, GZIP, SESSION, MW, COMMON, FETCH_CACHE],
    CACHE_MIDDLEWARE_SECONDS=30,
    CACHE_MIDDLEWARE_KEY_PREFIX="mw-test",
)
def test_cache_middleware_serves_the_cached_200_and_the_304(http):
    from django.core.cache import cache

    cache.clear()
    first = http("GET", "/page/")
    assert first.status_code == 200
    tag = first["ETag"]
    STATE["content"] = "Changed, but the cache still serves the old page."
    cached = http("GET", "/page/")
    assert cached.content.decode() == ORIGINAL_CONTENT
    assert cached["ETag"] == tag
    response = http("GET", "/page/", {"If-None-Match": tag})
    assert response.status_code == 304
    assert "max-age=30" in response["Cache-Control"]
    assert "Expires" in response
    cache.clear()


# Sync and async in one class


def test_one_class_is_sync_and_async():
    def sync_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("x")

    async def async_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("x")

    assert not iscoroutinefunction(ConditionalGetMiddleware(sync_view))
    assert iscoroutinefunction(ConditionalGetMiddleware(async_view))
    assert ConditionalGetMiddleware.sync_capable
    assert ConditionalGetMiddleware.async_capable


def test_async_middleware_answers_304_directly(rf):
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("async body")

    middleware = ConditionalGetMiddleware(view)
    tag = body_tag("async body")
    request = rf.get("/page/", headers={"If-None-Match": tag})
    response = async_to_sync(middleware)(request)
    assert response.status_code == 304
    assert response["ETag"] == tag


def test_async_client_runs_the_async_path(async_client, monkeypatch):
    calls: list[str] = []
    original = ConditionalGetMiddleware.__acall__

    async def counting(self: ConditionalGetMiddleware, request: HttpRequest) -> Any:
        calls.append(request.path)
        return await original(self, request)

    monkeypatch.setattr(ConditionalGetMiddleware, "__acall__", counting)
    response = async_to_sync(async_client.get)("/apage/")
    assert response["ETag"] == body_tag(ORIGINAL_CONTENT)
    assert calls == ["/apage/"]


def test_replacing_a_response_does_not_finish_the_request(rf):
    from django.core.signals import request_finished

    finished: list[object] = []

    def on_finished(**kwargs: Any) -> None:
        finished.append(kwargs)

    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("body")

    request_finished.connect(on_finished)
    try:
        response = ConditionalGetMiddleware(view)(
            rf.get("/", headers={"If-None-Match": body_tag("body")})
        )
    finally:
        request_finished.disconnect(on_finished)
    assert response.status_code == 304
    assert finished == []


CODED_GZIP = "django_conditional.compression.GZipMiddleware"


@override_settings(MIDDLEWARE=[CODED_GZIP, SESSION, MW])
def test_coding_suffixed_gzip_outside_keeps_tags_strong(http):
    gz = {"Accept-Encoding": "gzip"}
    first = http("GET", "/page/", gz)
    coded = first["ETag"]
    assert first["Content-Encoding"] == "gzip"
    assert coded == body_tag(ORIGINAL_CONTENT)[:-1] + '-gzip"'
    response = http("GET", "/page/", {**gz, "If-None-Match": coded})
    assert response.status_code == 304
    assert response["ETag"] == coded
    assert http("GET", "/page/", {**gz, "If-Match": coded}).status_code == 200


@override_settings(
    MIDDLEWARE=[CODED_GZIP, SESSION, MW], CONDITIONAL_PRECHECK_UNSAFE=True
)
def test_coding_suffixed_tag_guards_a_write_with_get_first(http):
    coded = http("GET", "/resource/", {"Accept-Encoding": "gzip"})["ETag"]
    assert coded.endswith('-gzip"')
    response = http("PUT", "/resource/", {"If-Match": coded}, data="new version")
    assert response.status_code == 200
    assert STATE["content"] == "new version"
    stale = http("PUT", "/resource/", {"If-Match": coded}, data="lost update")
    assert stale.status_code == 412
    assert STATE["content"] == "new version"


def test_if_match_star_holds_for_a_page_without_etag(http):
    # §13.1.1: "*" is true when a current representation exists, with or without a tag.
    response = http("GET", "/no-store/", {"If-Match": "*"})
    assert response.status_code == 200
    assert "ETag" not in response
    assert http("GET", "/no-store/", {"If-Match": '"x"'}).status_code == 412


def test_matching_head_of_a_view_that_skips_its_body_gets_304(http):
    tag = http("GET", "/head-special/")["ETag"]
    response = http("HEAD", "/head-special/", {"If-None-Match": tag})
    assert response.status_code == 304
    assert response["ETag"] == tag


def test_content_sources_without_a_tag():
    from django.http import FileResponse

    from django_conditional.sources.content import file_etag, response_etag

    assert response_etag(HttpResponse(b"x")) == content_etag(b"x")  # CONDITIONAL_HASH
    assert file_etag(HttpResponse(b"x")) is None
    assert file_etag(FileResponse(iter([b"chunk"]))) is None  # no file to stat
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb"), os.fdopen(read_end, "rb") as pipe:
        assert file_etag(FileResponse(pipe)) is None  # not a regular file


def test_head_keeps_no_tag_when_the_get_is_not_200(rf):
    def view(request: HttpRequest) -> HttpResponse:
        if request.method == "HEAD":
            return HttpResponse(b"")
        return HttpResponse("gone", status=404)

    response = ConditionalGetMiddleware(view)(rf.head("/"))
    assert response.status_code == 200
    assert "ETag" not in response


def test_head_copies_the_validators_a_get_sets_itself(rf):
    def view(request: HttpRequest) -> HttpResponse:
        if request.method == "HEAD":
            return HttpResponse(b"")
        response = HttpResponse("body")
        response.headers["Last-Modified"] = "Sat, 01 Jan 2022 00:00:00 GMT"
        return response

    response = ConditionalGetMiddleware(view)(rf.head("/"))
    assert response["Last-Modified"] == "Sat, 01 Jan 2022 00:00:00 GMT"
    assert "ETag" not in response
