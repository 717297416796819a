"""Issue 17 on the DRF face: the access check before preconditions (RFC 9110 §13.2.1) for a view
scoped by ``get_queryset()`` (``conditional_check_object``), and writes without an ``ETag`` when
the stored data is not what was sent (§9.3.4, ``conditional_write_etag``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.testapp.models import Article, Author, Document
from tests.versioned_support import clear_version_cache

pytestmark = [pytest.mark.urls("tests.urls_drf"), pytest.mark.django_db]

FUTURE = "Tue, 21 Nov 2090 08:00:00 GMT"


@pytest.fixture(autouse=True)
def fresh() -> Any:
    clear_version_cache()
    yield
    clear_version_cache()


@pytest.fixture
def document() -> Document:
    owner = User.objects.create_user("owner")
    created: Document = Document.objects.create(owner=owner, title="Secret")
    return created


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("get", {"HTTP_IF_NONE_MATCH": "*"}),
        ("get", {"HTTP_IF_MATCH": '"x"'}),
        ("get", {"HTTP_IF_MODIFIED_SINCE": FUTURE}),
        ("put", {"HTTP_IF_MATCH": '"x"'}),
        ("delete", {"HTTP_IF_MATCH": '"x"'}),
    ],
)
def test_a_scoped_queryset_answers_its_404_before_preconditions(
    document, method, headers
):
    client = APIClient()
    existing = getattr(client, method)(
        f"/documents/{document.pk}/", {"title": "x"}, format="json", **headers
    )
    missing = getattr(client, method)(
        f"/documents/{document.pk + 1000}/", {"title": "x"}, format="json", **headers
    )
    assert existing.status_code == missing.status_code == 404
    assert "ETag" not in existing.headers
    assert existing.content == missing.content
    assert Document.objects.get(pk=document.pk).title == "Secret"


def test_the_owner_still_gets_304(document):
    client = APIClient()
    client.force_authenticate(document.owner)
    first = client.get(f"/documents/{document.pk}/")
    assert first.status_code == 200
    again = client.get(
        f"/documents/{document.pk}/", HTTP_IF_NONE_MATCH=first.headers["ETag"]
    )
    assert again.status_code == 304


def test_writes_of_a_transforming_view_answer_without_etag():
    author = Author.objects.create(name="Ada")
    client = APIClient()
    created = client.post(
        "/normalising/",
        {"title": "quiet", "body": "", "author": author.pk},
        format="json",
    )
    assert created.status_code == 201
    assert "ETag" not in created.headers
    url = f"/normalising/{created.json()['id']}/"
    current = client.get(url).headers["ETag"]
    updated = client.put(
        url,
        {"title": "still quiet", "body": "", "author": author.pk},
        format="json",
        HTTP_IF_MATCH=current,
    )
    assert updated.status_code == 200
    assert "ETag" not in updated.headers
    assert Article.objects.get(pk=created.json()["id"]).title == "STILL QUIET"
