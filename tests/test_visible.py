"""Issue 17, RFC 9110 §13.2.1: no precondition, and no validator, where the answer without them
would be other than 2xx or 412.

An owner-only document (``tests.testapp.views``) answers 404 to anyone else. Declared with
``visible=`` (``versioned``, the drop-in ``etag``) or ``is_version_visible``/``version_visible``
(``VersionedMixin``), that 404 is what a precondition gets too: never a 412 with the owner's
``ETag``, a 304 with its ``Last-Modified``, a 428, nor an answer that tells an existing document
from one that never existed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client

from django_conditional.flow import visible_first
from tests.testapp.models import Document
from tests.testapp.views import CALLS

pytestmark = pytest.mark.urls("tests.urls_versioned")

FUTURE = "Tue, 21 Nov 2090 08:00:00 GMT"
PAST = "Thu, 01 Jan 2015 00:00:00 GMT"
# Every face of the owner-only document: versioned (sync, async), the drop-in etag, the mixin
# (is_version_visible, version_visible).
PAGES = [
    "/documents/{}/",
    "/async-documents/{}/",
    "/dropin-documents/{}/",
    "/cbv/documents/{}/",
    "/cbv/documents-by-function/{}/",
]
# Pages that take writes (the class-based ones answer GET only); those with a 428 policy.
WRITABLE = ["/documents/{}/", "/async-documents/{}/", "/dropin-documents/{}/"]
REQUIRING = ["/documents/{}/", "/async-documents/{}/"]
VALIDATORS = ("ETag", "Last-Modified")


@pytest.fixture(autouse=True)
def _clean(clean_versions: None) -> Iterator[None]:
    yield


@pytest.fixture
def owner(db: None) -> User:
    user: User = User.objects.create_user("owner", password="owner")
    return user


@pytest.fixture
def document(owner: User, django_capture_on_commit_callbacks: Any) -> Document:
    with django_capture_on_commit_callbacks(execute=True):
        created: Document = Document.objects.create(owner=owner, title="Secret")
    return created


@pytest.fixture
def stranger(db: None) -> Client:
    User.objects.create_user("stranger", password="stranger")
    client = Client()
    assert client.login(username="stranger", password="stranger")
    return client


def request(client: Client, method: str, path: str, **headers: str) -> Any:
    body = json.dumps({"title": "Mine now"})
    return client.generic(
        method, path, body, content_type="application/json", headers=headers
    )


def assert_the_views_404(response: Any) -> None:
    assert response.status_code == 404
    for name in VALIDATORS:
        assert name not in response.headers


@pytest.mark.parametrize("page", WRITABLE)
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_if_match_from_an_anonymous_client_is_the_views_404_not_a_412(
    client, document, page, method
):
    response = request(client, method, page.format(document.pk), **{"If-Match": '"x"'})
    assert_the_views_404(response)
    assert Document.objects.get(pk=document.pk).title == "Secret"


@pytest.mark.parametrize("page", PAGES)
def test_if_match_on_a_get_from_a_stranger_is_the_views_404(stranger, document, page):
    response = request(stranger, "GET", page.format(document.pk), **{"If-Match": '"x"'})
    assert_the_views_404(response)


@pytest.mark.parametrize("page", PAGES)
def test_a_future_if_modified_since_is_no_304_with_the_last_modified(
    client, document, page
):
    path = page.format(document.pk)
    response = request(client, "GET", path, **{"If-Modified-Since": FUTURE})
    assert_the_views_404(response)


@pytest.mark.parametrize("page", PAGES)
def test_if_none_match_star_is_no_304_for_a_stranger(stranger, document, page):
    path = page.format(document.pk)
    assert_the_views_404(request(stranger, "GET", path, **{"If-None-Match": "*"}))


@pytest.mark.parametrize("page", REQUIRING)
def test_the_428_policy_comes_after_the_access_check(client, document, page):
    assert_the_views_404(request(client, "PUT", page.format(document.pk)))
    assert Document.objects.get(pk=document.pk).title == "Secret"


CONDITIONS = [
    ("GET", {}),
    ("GET", {"If-Match": '"x"'}),
    ("GET", {"If-Match": "*"}),
    ("GET", {"If-None-Match": "*"}),
    ("GET", {"If-None-Match": '"x"'}),
    ("GET", {"If-Modified-Since": FUTURE}),
    ("GET", {"If-Unmodified-Since": PAST}),
    ("HEAD", {"If-Modified-Since": FUTURE}),
    ("PUT", {}),
    ("PUT", {"If-Match": '"x"'}),
    ("PUT", {"If-Unmodified-Since": PAST}),
    ("PUT", {"If-None-Match": "*"}),
    ("DELETE", {"If-Match": "*"}),
]


ALIKE = [
    (page, method, headers)
    for page in PAGES
    for method, headers in CONDITIONS
    if page in WRITABLE or method in ("GET", "HEAD")
]


@pytest.mark.parametrize(("page", "method", "headers"), ALIKE)
def test_an_existing_document_and_one_that_never_existed_answer_alike(
    client, document, page, method, headers
):
    existing = request(client, method, page.format(document.pk), **headers)
    missing = request(client, method, page.format(document.pk + 1000), **headers)
    assert existing.status_code == missing.status_code == 404
    assert existing.content == missing.content
    assert sorted(existing.headers) == sorted(missing.headers)
    for name in VALIDATORS:
        assert name not in existing.headers


# -- the owner still gets every conditional answer ---------------------------------------------


@pytest.fixture
def as_owner(owner: User) -> Client:
    client = Client()
    assert client.login(username="owner", password="owner")
    return client


@pytest.mark.parametrize("page", PAGES)
def test_the_owner_gets_validators_and_304s(as_owner, document, page):
    path = page.format(document.pk)
    first = as_owner.get(path)
    assert first.status_code == 200
    assert "ETag" in first.headers
    assert "Last-Modified" in first.headers or page.startswith("/dropin")
    calls = sum(CALLS.values())
    again = as_owner.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["ETag"] == first.headers["ETag"]
    assert sum(CALLS.values()) == calls  # the view did not run


def test_the_owner_gets_412_and_428(as_owner, document):
    path = f"/documents/{document.pk}/"
    assert request(as_owner, "PUT", path).status_code == 428
    stale = request(as_owner, "PUT", path, **{"If-Match": '"x"'})
    assert stale.status_code == 412
    assert "ETag" in stale.headers
    current = as_owner.get(path).headers["ETag"]
    written = request(as_owner, "PUT", path, **{"If-Match": current})
    assert written.status_code == 200
    assert Document.objects.get(pk=document.pk).title == "Mine now"


# -- visible_first on its own ------------------------------------------------------------------


def _plain(request: Any) -> HttpResponse:
    return HttpResponse("unconditioned")


def _checked(request: Any) -> HttpResponse:
    return HttpResponse("checked")


@pytest.mark.parametrize(
    ("verdict", "body", "status"),
    [
        (True, b"checked", 200),
        (False, b"unconditioned", 200),
        (HttpResponse("go away", status=403), b"go away", 403),
    ],
)
def test_visible_first_runs_what_the_check_says(rf, verdict, body, status):
    view = visible_first(_plain, _checked, lambda request: verdict)
    response = view(rf.get("/"))
    assert (response.status_code, response.content) == (status, body)


def test_visible_first_without_a_check_is_the_checked_view():
    assert visible_first(_plain, _checked, None) is _checked
