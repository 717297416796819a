"""Validators that survive compression (issue: GZip weakens strong tags and breaks If-Match)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
from django.test import Client, override_settings

from django_conditional.compression import GZipMiddleware, coded_etag
from tests import urls_compression

pytestmark = pytest.mark.urls("tests.urls_compression")
OURS = ["django_conditional.compression.GZipMiddleware"]
DJANGOS = ["django.middleware.gzip.GZipMiddleware"]
GZIP = {"accept_encoding": "gzip, deflate, br"}


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    urls_compression.STATE["version"] = 1
    yield


@override_settings(MIDDLEWARE=OURS)
def test_compressed_response_keeps_a_strong_tag_marked_with_its_coding(
    client: Client,
) -> None:
    response = client.get("/doc/", headers=GZIP)
    assert response["Content-Encoding"] == "gzip"
    assert response["ETag"] == '"v1-gzip"'
    assert gzip.decompress(response.content).startswith(b"version 1")
    identity = client.get("/doc/")
    assert "Content-Encoding" not in identity
    assert identity["ETag"] == '"v1"'  # a strong tag differs between encodings


@override_settings(MIDDLEWARE=OURS)
def test_if_match_with_the_compressed_tag_succeeds_until_the_resource_changes(
    client: Client,
) -> None:
    tag = client.get("/doc/", headers=GZIP)["ETag"]
    assert client.put("/doc/", headers={"if_match": tag, **GZIP}).status_code == 204
    stale = client.put("/doc/", headers={"if_match": tag, **GZIP})
    assert stale.status_code == 412
    # The 412 carries the current validator (coded when the short problem body compressed
    # smaller, which Django's random gzip padding decides), and a retry with it succeeds.
    assert stale["ETag"] in {'"v2"', '"v2-gzip"'}
    retry = client.put("/doc/", headers={"if_match": stale["ETag"], **GZIP})
    assert retry.status_code == 204


@override_settings(MIDDLEWARE=OURS)
def test_revalidation_of_the_compressed_representation(client: Client) -> None:
    tag = client.get("/doc/", headers=GZIP)["ETag"]
    response = client.get("/doc/", headers={"if_none_match": tag, **GZIP})
    assert response.status_code == 304
    assert response["ETag"] == '"v1-gzip"'
    # The gzip tag never validates an identity request, nor the identity tag a changed resource.
    assert client.get("/doc/", headers={"if_none_match": tag}).status_code == 200
    urls_compression.STATE["version"] = 2
    assert (
        client.get("/doc/", headers={"if_none_match": tag, **GZIP}).status_code == 200
    )


@override_settings(MIDDLEWARE=OURS)
def test_identity_revalidation_keeps_the_identity_tag(client: Client) -> None:
    response = client.get("/doc/", headers={"if_none_match": '"v1"', **GZIP})
    assert response.status_code == 304
    assert response["ETag"] == '"v1"'


@override_settings(MIDDLEWARE=[])
def test_proxy_style_suffix_is_recognised_for_writes(client: Client) -> None:
    # A proxy (Apache mod_deflate) compressed the response and appended "-gzip" itself.
    assert client.put("/doc/", headers={"if_match": '"v1-gzip"'}).status_code == 204
    assert client.put("/doc/", headers={"if_match": '"v1-gzip"'}).status_code == 412


@override_settings(MIDDLEWARE=DJANGOS)
def test_djangos_gzip_weakens_the_tag_and_if_match_then_fails(client: Client) -> None:
    # Why the compression module exists: a write guarded by the tag Django's GZip gives fails.
    tag = client.get("/doc/", headers=GZIP)["ETag"]
    assert tag == 'W/"v1"'
    assert client.put("/doc/", headers={"if_match": tag, **GZIP}).status_code == 412


def test_coded_etag() -> None:
    assert coded_etag('"v1"') == '"v1-gzip"'
    assert coded_etag('W/"v1"') is None
    assert coded_etag("v1") is None


@override_settings(MIDDLEWARE=OURS)
def test_small_and_uncompressed_responses_are_left_alone(client: Client) -> None:
    middleware = GZipMiddleware(lambda request: None)  # type: ignore[arg-type]
    from django.http import HttpResponse
    from django.test import RequestFactory

    small = HttpResponse("tiny")
    small["ETag"] = '"s"'
    request = RequestFactory().get("/", headers=GZIP)
    assert middleware.process_response(request, small)["ETag"] == '"s"'
    untagged = HttpResponse("x" * 500)
    assert "ETag" not in middleware.process_response(request, untagged)
