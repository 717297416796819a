"""Byte ranges through the middleware (RFC 9110 §14, §15.3.7, §15.5.17), sync and async stacks."""

from __future__ import annotations

import email.parser
import gzip
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings

from django_conditional.compression import GZipMiddleware
from tests.urls_middleware import STATE

pytestmark = pytest.mark.urls("tests.urls_middleware")

MW = "django_conditional.middleware.ConditionalGetMiddleware"
SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
OUR_GZIP = "django_conditional.compression.GZipMiddleware"
DETERMINISTIC_GZIP = "tests.test_byteranges.DeterministicGZip"
ORIGINAL_CONTENT = STATE["content"]
BODY = ORIGINAL_CONTENT.encode()
Fetch = Callable[..., Any]


class DeterministicGZip(GZipMiddleware):
    max_random_bytes = 0


@pytest.fixture(autouse=True)
def _state() -> Iterator[None]:
    STATE.update(content=ORIGINAL_CONTENT, writes=0, gets=0, file=None)
    with override_settings(
        MIDDLEWARE=[SESSION, MW],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    ):
        yield
    STATE.update(content=ORIGINAL_CONTENT, writes=0, gets=0, file=None)


@pytest.fixture(params=["sync", "async"])
def http(request: pytest.FixtureRequest, client: Any, async_client: Any) -> Fetch:
    def fetch(method: str, path: str, headers: dict[str, str] | None = None) -> Any:
        if request.param == "sync":
            return client.generic(method, path, headers=headers or {})

        async def fetch_async() -> Any:
            return await async_client.generic(method, path, headers=headers or {})

        return async_to_sync(fetch_async)()

    return fetch


def body_of(response: Any) -> bytes:
    if not response.streaming:
        return bytes(response.content)
    if getattr(response, "is_async", False):

        async def collect() -> bytes:
            return b"".join([chunk async for chunk in response.streaming_content])

        return async_to_sync(collect)()
    return b"".join(response.streaming_content)


def parts(response: Any, body: bytes | None = None) -> list[tuple[str, str, bytes]]:
    """(Content-Type, Content-Range, data) of each part of a multipart/byteranges 206."""
    raw = f"Content-Type: {response['Content-Type']}\r\n\r\n".encode() + (
        body_of(response) if body is None else body
    )
    message: Any = email.parser.BytesParser().parsebytes(raw)
    assert message.is_multipart()
    return [
        (part["Content-Type"], part["Content-Range"], part.get_payload(decode=True))
        for part in message.get_payload()
    ]


# Advertising and the single range


def test_a_rangeable_200_says_accept_ranges(http):
    for method in ("GET", "HEAD"):
        response = http(method, "/page/")
        assert response.status_code == 200
        assert response["Accept-Ranges"] == "bytes"


def test_a_single_range_is_a_206_with_content_range(http):
    full = http("GET", "/page/")
    response = http("GET", "/page/", {"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert response.content == BODY[:10]
    assert response["Content-Range"] == f"bytes 0-9/{len(BODY)}"
    assert response["Content-Length"] == "10"
    assert response["ETag"] == full["ETag"]
    assert response["Content-Type"] == full["Content-Type"]


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [("0-0", 0, 0), ("-1", -1, -1), ("-5", -5, -1), ("500-", 500, -1), ("10-", 10, -1)],
)
def test_first_suffix_and_open_ranges(http, spec, first, last):
    length = len(BODY)
    start = first % length
    end = last % length
    response = http("GET", "/page/", {"Range": f"bytes={spec}"})
    assert response.status_code == 206
    assert response.content == BODY[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{length}"


def test_a_suffix_longer_than_the_body_is_the_whole_body(http):
    response = http("GET", "/page/", {"Range": "bytes=-100000"})
    assert response.status_code == 206
    assert response.content == BODY
    assert response["Content-Range"] == f"bytes 0-{len(BODY) - 1}/{len(BODY)}"


# Several ranges


def test_several_ranges_are_multipart_byteranges(http):
    response = http("GET", "/page/", {"Range": "bytes=0-4, 20-29,-3"})
    assert response.status_code == 206
    assert response["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert "Content-Range" not in response
    assert int(response["Content-Length"]) == len(body_of(response))
    length = len(BODY)
    assert parts(response) == [
        ("text/html; charset=utf-8", f"bytes 0-4/{length}", BODY[0:5]),
        ("text/html; charset=utf-8", f"bytes 20-29/{length}", BODY[20:30]),
        (
            "text/html; charset=utf-8",
            f"bytes {length - 3}-{length - 1}/{length}",
            BODY[-3:],
        ),
    ]


# Unsatisfiable, ignored


@pytest.mark.parametrize("spec", ["-0", "100000-", "100000-200000, -0"])
def test_unsatisfiable_is_416_with_the_length(http, spec):
    response = http("GET", "/page/", {"Range": f"bytes={spec}"})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(BODY)}"


@pytest.mark.parametrize(
    "value",
    [
        "bytes=5-1",
        "items=0-1",
        "bytes=0-9,5-14,8-20",  # three overlapping ranges
        "bytes=" + ",".join(f"{n}-{n}" for n in range(51)),  # 51 ranges
    ],
)
def test_invalid_or_abusive_range_is_ignored(http, value):
    response = http("GET", "/page/", {"Range": value})
    assert response.status_code == 200
    assert response.content == BODY


def test_only_get_is_ranged(http):
    head = http("HEAD", "/page/", {"Range": "bytes=0-9"})
    assert head.status_code == 200
    post = http("POST", "/resource/", {"Range": "bytes=0-3"})
    assert post.status_code == 200
    assert post.content == b"written"


def test_what_cannot_be_ranged_is_left_alone(http):
    streaming = http("GET", "/streaming/", {"Range": "bytes=0-3"})
    assert streaming.status_code == 200
    assert "Accept-Ranges" not in streaming
    refused = http("GET", "/refuses-ranges/", {"Range": "bytes=0-3"})
    assert refused.status_code == 200
    assert refused["Accept-Ranges"] == "none"
    assert http("GET", "/not-found/", {"Range": "bytes=0-3"}).status_code == 404


def test_empty_body_is_sent_whole(http):
    assert http("GET", "/empty/", {"Range": "bytes=-1"}).status_code == 200


# If-Range (§13.1.5) and preconditions first (§13.2.2)


def test_if_range_with_the_current_strong_tag_gets_the_range(http):
    tag = http("GET", "/page/")["ETag"]
    response = http("GET", "/page/", {"Range": "bytes=0-9", "If-Range": tag})
    assert response.status_code == 206


@pytest.mark.parametrize(
    "if_range", ['"stale"', "W/{tag}", "Sat, 01 Jan 2022 00:00:00 GMT"]
)
def test_if_range_that_does_not_hold_gets_the_full_200(http, if_range):
    tag = http("GET", "/page/")["ETag"]
    value = if_range.format(tag=tag)
    response = http("GET", "/page/", {"Range": "bytes=0-9", "If-Range": value})
    assert response.status_code == 200
    assert response.content == BODY


def test_if_range_with_the_exact_last_modified_gets_the_range(http):
    date = "Sat, 01 Jan 2022 00:00:00 GMT"
    exact = http(
        "GET", "/with-last-modified/", {"Range": "bytes=0-9", "If-Range": date}
    )
    assert exact.status_code == 206
    other = "Sat, 01 Jan 2022 00:00:01 GMT"
    later = http(
        "GET", "/with-last-modified/", {"Range": "bytes=0-9", "If-Range": other}
    )
    assert later.status_code == 200


def test_preconditions_come_before_ranges(http):
    tag = http("GET", "/page/")["ETag"]
    assert (
        http("GET", "/page/", {"Range": "bytes=0-9", "If-None-Match": tag}).status_code
        == 304
    )
    assert (
        http("GET", "/page/", {"Range": "bytes=0-9", "If-Match": '"x"'}).status_code
        == 412
    )
    assert (
        http("GET", "/page/", {"Range": "bytes=-0", "If-None-Match": tag}).status_code
        == 304
    )


# The 206 keeps the 200's headers


def test_the_206_keeps_the_headers_of_the_200(http):
    full = http("GET", "/cached/")
    partial = http("GET", "/cached/", {"Range": "bytes=1-2"})
    assert partial.status_code == 206
    for name in (
        "Cache-Control",
        "ETag",
        "Vary",
        "Content-Location",
        "Content-Language",
        "Content-Type",
        "Accept-Ranges",
    ):
        assert partial[name] == full[name], name
    assert "Expires" in partial


def test_the_206_keeps_the_cookies(http):
    partial = http("GET", "/cookie/", {"Range": "bytes=1-2"})
    assert partial.status_code == 206
    assert partial.cookies["flavour"].value == "oat"


# Files: seeks, streaming


@pytest.fixture
def big_file(tmp_path: Path) -> bytes:
    data = os.urandom(300_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    STATE["file"] = str(path)
    return data


def test_a_file_range_is_streamed_from_a_seek(http, big_file):
    response = http("GET", "/file/", {"Range": "bytes=100000-199999"})
    assert response.status_code == 206
    assert response.streaming
    assert response["Content-Length"] == "100000"
    assert response["Content-Range"] == f"bytes 100000-199999/{len(big_file)}"
    assert body_of(response) == big_file[100000:200000]


def test_several_file_ranges(http, big_file):
    response = http("GET", "/file/", {"Range": "bytes=0-0,-70000,150000-150009"})
    assert response.status_code == 206
    assert response.streaming
    raw = body_of(response)
    assert int(response["Content-Length"]) == len(raw)
    got = parts(response, raw)
    assert [data for _, _, data in got] == [
        big_file[:1],
        big_file[-70000:],
        big_file[150000:150010],
    ]


def test_a_file_resumed_from_the_middle(http, big_file):
    head = http("GET", "/file/", {"Range": "bytes=0-149999"})
    tail = http("GET", "/file/", {"Range": "bytes=150000-"})
    assert body_of(head) + body_of(tail) == big_file


def test_an_unsatisfiable_file_range_closes_the_file(http, big_file):
    response = http("GET", "/file/", {"Range": f"bytes={len(big_file)}-"})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(big_file)}"


def test_a_file_handed_over_mid_way_is_ranged_from_there(http):
    response = http("GET", "/memory-file/", {"Range": "bytes=2-5"})
    assert response.status_code == 206
    assert body_of(response) == BODY[2:6]


# Compression: ranges of the coded bytes, or none


GZ = {"Accept-Encoding": "gzip"}


def test_deterministic_compression_ranges_the_coded_bytes(http):
    with override_settings(MIDDLEWARE=[DETERMINISTIC_GZIP, SESSION, MW]):
        full = http("GET", "/page/", GZ)
        assert full["Content-Encoding"] == "gzip"
        assert full["Accept-Ranges"] == "bytes"
        coded = full.content
        tag = full["ETag"]
        assert tag.endswith('-gzip"')
        partial = http("GET", "/page/", {"Range": "bytes=10-", "If-Range": tag, **GZ})
        assert partial.status_code == 206
        assert partial["Content-Encoding"] == "gzip"
        assert partial["Content-Range"] == f"bytes 10-{len(coded) - 1}/{len(coded)}"
        assert coded[:10] + partial.content == coded
        assert gzip.decompress(coded[:10] + partial.content) == BODY
        # The identity tag does not name the coded bytes: the full (coded) 200.
        identity = tag.removesuffix('-gzip"') + '"'
        whole = http(
            "GET", "/page/", {"Range": "bytes=10-", "If-Range": identity, **GZ}
        )
        assert whole.status_code == 200


def test_padded_compression_is_sent_whole_and_identity_is_ranged(http):
    with override_settings(MIDDLEWARE=[OUR_GZIP, SESSION, MW]):
        compressed = http("GET", "/page/", {"Range": "bytes=0-9", **GZ})
        assert compressed.status_code == 200
        assert compressed["Content-Encoding"] == "gzip"
        assert "Accept-Ranges" not in compressed
        identity = http("GET", "/page/", {"Range": "bytes=0-9"})
        assert identity.status_code == 206
        assert identity.content == BODY[:10]


def test_djangos_gzip_gets_no_range_to_compress(http):
    with override_settings(
        MIDDLEWARE=["django.middleware.gzip.GZipMiddleware", SESSION, MW]
    ):
        compressed = http("GET", "/page/", {"Range": "bytes=0-9", **GZ})
        assert compressed.status_code == 200
        assert gzip.decompress(compressed.content) == BODY
        assert http("GET", "/page/", {"Range": "bytes=0-9"}).status_code == 206
