"""Precise purges: cache-tag headers within CDN limits, one purge per committed transaction, and
purge backends that fail, hang or cannot connect never failing a write."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from django.db import transaction
from django.test import override_settings

from django_conditional import purge, versions
from django_conditional.purge.tags import (
    MAX_HEADER_BYTES,
    MAX_TAG_BYTES,
    digest_tag,
    header_value,
    purge_tags,
    separator,
    tag,
)
from django_conditional.purge.varnish import PurgeFailed, VarnishPurge, _chunks
from example_project.serving import free_port
from tests.testapp.models import Article

CALLS: list[list[str]] = []


class Recorder:
    """A purge backend class that records what it is asked to purge."""

    def __init__(self, label: str = "") -> None:
        self.label = label

    def purge(self, tags: Sequence[str]) -> None:
        CALLS.append(list(tags))


def raising(tags: Sequence[str]) -> None:
    raise RuntimeError("the CDN said no")


def slow(tags: Sequence[str]) -> None:
    time.sleep(1.0)
    CALLS.append(list(tags))


@pytest.fixture(autouse=True)
def _calls() -> Iterator[None]:
    CALLS.clear()
    purge._pending.__dict__.clear()
    yield
    CALLS.clear()
    purge._pending.__dict__.clear()


# ---------------------------------------------------------------------------------------------
# Tags and their headers


def test_a_safe_key_is_its_own_tag_and_any_other_is_its_digest() -> None:
    assert tag("o:blog.article:42") == "o:blog.article:42"
    comma = "c:blog.article:by:a=1,b=2"  # a comma separates Cache-Tag and xkey values
    assert tag(comma) == digest_tag(comma)
    assert tag("x" * (MAX_TAG_BYTES + 1)) == digest_tag("x" * (MAX_TAG_BYTES + 1))
    assert tag("x" * MAX_TAG_BYTES) == "x" * MAX_TAG_BYTES
    assert digest_tag("a") != digest_tag("b") and len(digest_tag("a")) == 18
    assert separator("Cache-Tag") == "," and separator("Surrogate-Key") == " "


def test_a_purge_names_both_forms_of_every_key() -> None:
    assert purge_tags(["o:a:1", "o:a:1", "c:a"]) == [
        "o:a:1",
        digest_tag("o:a:1"),
        "c:a",
        digest_tag("c:a"),
    ]


def test_a_header_that_would_be_too_long_lists_digests_never_cut_keys() -> None:
    keys = [f"o:blog.article:{n:04d}-{'x' * 40}" for n in range(600)]
    value = header_value(keys)
    assert value is not None and len(value.encode()) <= MAX_HEADER_BYTES
    assert value.split(" ") == [digest_tag(key) for key in keys]
    # Every tag in the header is one a purge of its key names.
    named = set(purge_tags(keys))
    assert all(item in named for item in value.split(" "))


def test_a_header_that_cannot_fit_is_not_written() -> None:
    keys = [f"o:blog.article:{n}" for n in range(MAX_HEADER_BYTES // 18 + 1)]
    assert header_value(keys) is None


@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions")
@override_settings(CONDITIONAL_SURROGATE_KEY_HEADERS=["Surrogate-Key", "Cache-Tag"])
def test_versioned_responses_list_their_version_keys(client, article) -> None:
    response = client.get(f"/articles/{article.pk}/")
    assert response.status_code == 200
    key = versions.object_key(Article, article.pk)
    assert response["Surrogate-Key"] == key
    assert response["Cache-Tag"] == key
    many = client.get("/many/3/")
    assert many["Surrogate-Key"].split(" ") == [
        versions.object_key(Article, n) for n in (1, 2, 3)
    ]
    assert many["Cache-Tag"].split(",") == many["Surrogate-Key"].split(" ")


@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions")
@override_settings(CONDITIONAL_SURROGATE_KEY_HEADERS="xkey")
def test_too_many_keys_keep_the_response_out_of_shared_caches(client, db) -> None:
    response = client.get("/many/1000/")
    assert response.status_code == 200
    assert "xkey" not in response
    assert "private" in response["Cache-Control"]


@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions")
def test_no_headers_by_default(client, article) -> None:
    response = client.get(f"/articles/{article.pk}/")
    assert not any(name in response for name in ("Surrogate-Key", "Cache-Tag", "xkey"))


# ---------------------------------------------------------------------------------------------
# One purge per transaction, after the commit


@pytest.mark.django_db(transaction=True)
@override_settings(CONDITIONAL_PURGE_BACKEND="tests.test_purge.Recorder")
def test_one_purge_per_committed_transaction_with_every_key() -> None:
    with transaction.atomic():
        versions.bump("o:blog.article:1")
        versions.bump("c:blog.article", "o:blog.article:2")
        assert CALLS == []  # nothing before the commit
    assert [
        purge_tags(["c:blog.article", "o:blog.article:1", "o:blog.article:2"])
    ] == CALLS


@pytest.mark.django_db(transaction=True)
@override_settings(CONDITIONAL_PURGE_BACKEND="tests.test_purge.Recorder")
def test_keys_of_a_rolled_back_savepoint_are_purged_too_and_a_rollback_purges_nothing() -> (
    None
):
    with transaction.atomic():
        versions.bump("o:blog.article:1")
        try:
            with transaction.atomic():
                versions.bump("o:blog.article:2")
                raise ValueError
        except ValueError:
            pass
    assert [purge_tags(["o:blog.article:1", "o:blog.article:2"])] == CALLS
    CALLS.clear()
    try:
        with transaction.atomic():
            versions.bump("o:blog.article:3")
            raise ValueError
    except ValueError:
        pass
    assert CALLS == []


@pytest.mark.django_db(transaction=True)
def test_no_backend_collects_nothing() -> None:
    versions.bump("o:blog.article:1")
    assert not getattr(purge._pending, "by_db", None)


# ---------------------------------------------------------------------------------------------
# A failing purge never fails a write


def _put_through_view(client, article, caplog):
    path = f"/articles/{article.pk}/"
    current = client.get(path)["ETag"]
    with caplog.at_level(logging.WARNING, logger="django_conditional"):
        response = client.put(
            path,
            json.dumps({"title": "Two"}),
            content_type="application/json",
            headers={"If-Match": current},
        )
    assert response.status_code == 200
    assert Article.objects.get(pk=article.pk).title == "Two"
    return [r.getMessage() for r in caplog.records if "purge" in r.getMessage()]


@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_versions")
@override_settings(CONDITIONAL_PURGE_BACKEND="tests.test_purge.raising")
def test_a_raising_backend_is_logged(client, article, caplog) -> None:
    messages = _put_through_view(client, article, caplog)
    assert any("failed (RuntimeError: the CDN said no)" in m for m in messages)


@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_versions")
@override_settings(
    CONDITIONAL_PURGE_BACKEND="tests.test_purge.slow", CONDITIONAL_PURGE_TIMEOUT=0.05
)
def test_a_slow_backend_is_logged_and_left_to_finish(client, article, caplog) -> None:
    messages = _put_through_view(client, article, caplog)
    assert any("still running" in m for m in messages)


@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_versions")
def test_an_unreachable_varnish_is_logged(client, article, caplog) -> None:
    options = {"urls": [f"http://127.0.0.1:{free_port()}/"], "timeout": 2.0}
    with override_settings(
        CONDITIONAL_PURGE_BACKEND="django_conditional.purge.varnish.VarnishPurge",
        CONDITIONAL_PURGE_OPTIONS=options,
    ):
        messages = _put_through_view(client, article, caplog)
    assert any("PurgeFailed" in m and "ConnectionRefused" in m for m in messages)


@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_versions")
@override_settings(CONDITIONAL_PURGE_BACKEND="tests.no_such_module.Purge")
def test_a_backend_that_cannot_be_loaded_is_logged(client, article, caplog) -> None:
    messages = _put_through_view(client, article, caplog)
    assert any("could not be loaded" in m for m in messages)


@override_settings(
    CONDITIONAL_PURGE_BACKEND="tests.test_purge.Recorder",
    CONDITIONAL_PURGE_OPTIONS={"label": "a"},
)
def test_a_backend_class_is_instantiated_once_with_its_options() -> None:
    first = purge.backend()
    assert first is not None and first == purge.backend()
    assert first.__self__.label == "a"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# The Varnish backend's requests


class _Recording(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str]] = []
    status = 200

    def do_PURGE(self) -> None:  # noqa: N802 (the method's name)
        type(self).seen.append((self.command, self.path, self.headers["xkey-purge"]))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def purge_server() -> Iterator[tuple[str, type[_Recording]]]:
    handler = type("Handler", (_Recording,), {"seen": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_varnish_purge_splits_long_tag_lists_into_requests(purge_server) -> None:
    url, handler = purge_server
    tags = [f"o:blog.article:{n}" for n in range(200)]
    VarnishPurge([url], max_header_bytes=1000).purge(tags)
    sent = [value.split(" ") for _, _, value in handler.seen]
    assert len(sent) > 1 and all(len(" ".join(s)) <= 1000 for s in sent)
    assert [item for chunk in sent for item in chunk] == tags
    assert {command for command, _, _ in handler.seen} == {"PURGE"}


def test_varnish_purge_raises_on_a_refusal(purge_server) -> None:
    url, handler = purge_server
    handler.status = 403
    with pytest.raises(PurgeFailed, match="403"):
        VarnishPurge(url).purge(["o:a:1"])


def test_chunks_keep_an_oversized_tag_whole() -> None:
    assert list(_chunks(["a" * 50, "b"], 10)) == ["a" * 50, "b"]
