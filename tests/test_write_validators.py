"""Issue 17: the validators of a write's answer.

A 201 carries the created resource's ``ETag`` (RFC 9110 §15.3.2: "validator fields ... convey the
current validators for a new representation created by the request"), the one a GET of its
``Location`` gives, never the collection's; and a write answers with an ``ETag`` only when its
response describes the stored state as it will be served (§9.3.4).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.testapp.models import Article

pytestmark = pytest.mark.urls("tests.urls_versioned")


@pytest.fixture(autouse=True)
def _clean(clean_versions: None) -> Iterator[None]:
    yield


def send(client: Client, method: str, path: str, data: Any, **headers: str) -> Any:
    return client.generic(
        method, path, json.dumps(data), content_type="application/json", headers=headers
    )


def create(client: Client, article: Article, at: str = "") -> Any:
    query = f"?at={at}" if at else ""
    data = {"author": article.author_id, "title": "Created"}
    response = send(client, "POST", f"/articles/{query}", data)
    assert response.status_code == 201, response.content
    return response


def path_of(location: str) -> str:
    return "/" + location.split("/", 3)[3]


@pytest.mark.parametrize("at", ["", "cbv"])
def test_a_201_carries_the_etag_a_get_of_its_location_gives(
    client, article, django_capture_on_commit_callbacks, at
):
    with django_capture_on_commit_callbacks(execute=True):
        created = create(client, article, at)
    location = path_of(created.headers["Location"])
    fetched = client.get(location)
    assert fetched.status_code == 200
    assert created.headers["ETag"] == fetched.headers["ETag"]
    assert created.headers["ETag"] != client.get("/articles/").headers["ETag"]


def test_a_put_to_the_location_with_the_201s_etag_succeeds(
    client, article, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = create(client, article)
    location = path_of(created.headers["Location"])
    with django_capture_on_commit_callbacks(execute=True):
        updated = send(
            client,
            "PUT",
            location,
            {"title": "Edited"},
            **{"If-Match": created.headers["ETag"]},
        )
    assert updated.status_code == 200
    assert Article.objects.get(pk=created.json()["id"]).title == "Edited"


def test_a_201_whose_location_is_no_versioned_view_gets_no_etag(
    client, article, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = create(client, article, "elsewhere")
    assert "ETag" not in created.headers  # not the collection's


def test_a_view_that_stores_otherwise_answers_writes_without_etag(
    client, article, django_capture_on_commit_callbacks
):
    path = f"/stored-otherwise/{article.pk}/"
    current = client.get(path).headers["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        written = send(client, "PUT", path, {"title": "loud"}, **{"If-Match": current})
    assert written.status_code == 200
    assert "ETag" not in written.headers
    assert client.get(path).headers["ETag"] != current  # reads are tagged as before


@pytest.mark.parametrize(("sent", "tagged"), [(" padded ", False), ("clean", True)])
def test_a_response_marked_transformed_gets_no_etag(
    client, article, django_capture_on_commit_callbacks, sent, tagged
):
    path = f"/sometimes-transformed/{article.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        written = send(client, "PUT", path, {"title": sent})
    assert written.status_code == 200
    assert ("ETag" in written.headers) is tagged
    if tagged:
        assert written.headers["ETag"] == client.get(path).headers["ETag"]


def test_a_202_describes_no_stored_state_and_gets_no_etag(
    client, article, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        accepted = send(client, "POST", f"/accepted/{article.pk}/", {})
    assert accepted.status_code == 202
    assert "ETag" not in accepted.headers
