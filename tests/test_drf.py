"""The DRF face through DRF's APIClient: every action and outcome, headers asserted, 304s with no
query and no serializer, refusals through DRF's exception handling (tests/drf_views.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from rest_framework.test import APIClient

from django_conditional import versions
from tests.drf_views import HANDLED, SERIALIZED
from tests.testapp.models import Article, Author, Country, Tag
from tests.versioned_support import clear_version_cache

pytestmark = [
    pytest.mark.urls("tests.urls_drf"),
    pytest.mark.django_db(transaction=True),
]
JSON: dict[str, Any] = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def fresh():
    clear_version_cache()
    SERIALIZED.clear()
    HANDLED.clear()
    yield
    clear_version_cache()


@pytest.fixture
def ada():
    return Author.objects.create(name="Ada")


@pytest.fixture
def article(ada):
    return Article.objects.create(author=ada, title="ada one", body="first")


@pytest.fixture
def client():
    return APIClient()


@pytest.fixture
def writer(client):
    user = User.objects.create_user("writer")
    client.force_authenticate(user)
    return client


def problem(response):
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["status"] == response.status_code
    assert {"type", "title", "detail"} <= set(body)
    return body


# -- reads -----------------------------------------------------------------------------------


def test_retrieve_200_then_304_with_no_query_and_no_serializer(
    client, article, django_assert_num_queries
):
    url = f"/articles/{article.pk}/"
    first = client.get(url, **JSON)
    assert first.status_code == 200
    etag = first["ETag"]
    assert etag.startswith('"') and "." in etag
    assert first.json()["etag"] == etag  # the field names the same representation
    assert "Accept" in first["Vary"] and "Accept-Language" in first["Vary"]
    SERIALIZED.clear()
    with django_assert_num_queries(0):
        again = client.get(url, HTTP_IF_NONE_MATCH=etag, **JSON)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert "Accept" in again["Vary"]
    assert SERIALIZED["article"] == 0
    head = client.head(url, HTTP_IF_NONE_MATCH=etag, **JSON)
    assert head.status_code == 304


def test_list_200_then_304_with_no_query_and_no_serializer(
    client, article, django_assert_num_queries
):
    first = client.get("/articles/", **JSON)
    assert first.status_code == 200
    SERIALIZED.clear()
    with django_assert_num_queries(0):
        again = client.get("/articles/", HTTP_IF_NONE_MATCH=first["ETag"], **JSON)
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    assert SERIALIZED["article"] == 0


def test_a_change_is_a_200_with_a_new_tag(client, article):
    url = f"/articles/{article.pk}/"
    etag = client.get(url, **JSON)["ETag"]
    Article.objects.filter(pk=article.pk).update(title="changed")
    response = client.get(url, HTTP_IF_NONE_MATCH=etag, **JSON)
    assert response.status_code == 200
    assert response["ETag"] != etag
    assert response.json()["title"] == "changed"


def test_a_failed_if_match_on_a_read_is_a_412_problem(client, article):
    response = client.get(f"/articles/{article.pk}/", HTTP_IF_MATCH='"old"', **JSON)
    assert response.status_code == 412
    assert problem(response)["precondition"] == "If-Match"
    assert response["ETag"] == client.get(f"/articles/{article.pk}/", **JSON)["ETag"]


def test_json_and_the_browsable_api_never_share_a_tag(client, article):
    url = f"/articles/{article.pk}/"
    as_json = client.get(url + "?format=json")
    as_html = client.get(url, HTTP_ACCEPT="text/html")
    assert as_json.status_code == as_html.status_code == 200
    assert as_html["Content-Type"].startswith("text/html")
    assert as_json["ETag"] != as_html["ETag"]
    # Each tag revalidates its own representation only.
    crossed = client.get(
        url, HTTP_ACCEPT="text/html", HTTP_IF_NONE_MATCH=as_json["ETag"]
    )
    assert crossed.status_code == 200
    assert (
        client.get(url + "?format=json", HTTP_IF_NONE_MATCH=as_json["ETag"]).status_code
        == 304
    )
    html_again = client.get(
        url, HTTP_ACCEPT="text/html", HTTP_IF_NONE_MATCH=as_html["ETag"]
    )
    assert html_again.status_code == 304
    # ?format=json and Accept: application/json are one representation.
    assert client.get(url, **JSON)["ETag"] == as_json["ETag"]


def test_api_versions_and_languages_never_share_a_tag(client, article):
    url = f"/versioned/{article.pk}/"
    v1 = client.get(url + "?version=1", **JSON)["ETag"]
    v2 = client.get(url + "?version=2", **JSON)["ETag"]
    assert v1 != v2
    assert (
        client.get(url + "?version=2", HTTP_IF_NONE_MATCH=v1, **JSON).status_code == 200
    )
    with override_settings(
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.locale.LocaleMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        LANGUAGES=[("en", "English"), ("fr", "French")],
        USE_I18N=True,
    ):
        localised = APIClient()  # a client loads the middleware on its first request
        url = f"/articles/{article.pk}/"
        en = localised.get(url, HTTP_ACCEPT_LANGUAGE="en", **JSON)
        fr = localised.get(url, HTTP_ACCEPT_LANGUAGE="fr", **JSON)
        assert fr["Content-Language"] == "fr"
        assert en["ETag"] != fr["ETag"]
        crossed = localised.get(
            url, HTTP_ACCEPT_LANGUAGE="fr", HTTP_IF_NONE_MATCH=en["ETag"], **JSON
        )
        assert crossed.status_code == 200


def test_list_pages_never_share_a_tag(client, ada):
    for number in range(4):
        Article.objects.create(author=ada, title=f"a{number}")
    page1 = client.get("/articles/", **JSON)
    page2 = client.get("/articles/?page=2", **JSON)
    assert [len(p.json()["results"]) for p in (page1, page2)] == [2, 2]
    assert page1["ETag"] != page2["ETag"]
    assert (
        client.get(
            "/articles/?page=2", HTTP_IF_NONE_MATCH=page1["ETag"], **JSON
        ).status_code
        == 200
    )
    assert (
        client.get(
            "/articles/?page=2", HTTP_IF_NONE_MATCH=page2["ETag"], **JSON
        ).status_code
        == 304
    )


def test_a_bump_changes_the_list_tag_and_that_items_etag_only(client, ada):
    created = [Article.objects.create(author=ada, title=f"a{n}") for n in range(2)]
    before = client.get("/articles/", **JSON)
    tags = {item["id"]: item["etag"] for item in before.json()["results"]}
    assert len(set(tags.values())) == 2
    for item in created:  # each item's etag is its own URL's ETag
        assert client.get(f"/articles/{item.pk}/", **JSON)["ETag"] == tags[item.pk]
    Article.objects.filter(pk=created[0].pk).update(title="bumped")
    after = client.get("/articles/", HTTP_IF_NONE_MATCH=before["ETag"], **JSON)
    assert after.status_code == 200
    assert after["ETag"] != before["ETag"]
    new_tags = {item["id"]: item["etag"] for item in after.json()["results"]}
    assert new_tags[created[0].pk] != tags[created[0].pk]
    assert new_tags[created[1].pk] == tags[created[1].pk]


def test_a_page_of_item_tags_is_one_store_read(client, ada, monkeypatch):
    for number in range(2):
        Article.objects.create(author=ada, title=f"a{number}")
    calls = []
    original = versions.read

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(versions, "read", counted)
    response = client.get("/articles/", **JSON)
    assert response.status_code == 200
    # One read for the list's own tag, one for the page's item tags (two keys at once).
    assert len(calls) == 2
    assert len(list(calls[1][0])) == 2


def test_a_slug_lookup_costs_one_query_per_304(client, django_assert_num_queries):
    tag = Tag.objects.create(name="Python", slug="python")
    first = client.get("/tags/python/", **JSON)
    assert first.status_code == 200
    assert first.json()["etag"] == first["ETag"]
    with django_assert_num_queries(1):
        again = client.get("/tags/python/", HTTP_IF_NONE_MATCH=first["ETag"], **JSON)
    assert again.status_code == 304
    tag.name = "Py"
    tag.save()
    assert (
        client.get(
            "/tags/python/", HTTP_IF_NONE_MATCH=first["ETag"], **JSON
        ).status_code
        == 200
    )
    assert client.get("/tags/missing/", **JSON).status_code == 404


# -- who may get a 304 ------------------------------------------------------------------------


def test_no_304_for_an_unauthenticated_caller(client, article):
    user = User.objects.create_user("reader")
    client.force_authenticate(user)
    etag = client.get(f"/private/{article.pk}/", **JSON)["ETag"]
    list_etag = client.get("/private/", **JSON)["ETag"]
    client.force_authenticate(None)
    refused = client.get(f"/private/{article.pk}/", HTTP_IF_NONE_MATCH=etag, **JSON)
    assert refused.status_code in (401, 403)
    assert "ETag" not in refused
    assert client.get(
        "/private/", HTTP_IF_NONE_MATCH=list_etag, **JSON
    ).status_code in (401, 403)
    assert client.get(
        f"/private/{article.pk}/", HTTP_IF_MATCH='"x"', **JSON
    ).status_code in (401, 403)


def test_no_304_for_a_caller_the_object_permission_refuses(client, article):
    ada_user = User.objects.create_user("ada")
    client.force_authenticate(ada_user)
    url = f"/owned/{article.pk}/"
    etag = client.get(url, **JSON)["ETag"]
    assert client.get(url, HTTP_IF_NONE_MATCH=etag, **JSON).status_code == 304
    client.force_authenticate(User.objects.create_user("bob"))
    refused = client.get(url, HTTP_IF_NONE_MATCH=etag, **JSON)
    assert refused.status_code == 403
    assert "ETag" not in refused


def test_no_304_for_a_throttled_caller(client, article):
    url = f"/throttled/{article.pk}/"
    etag = client.get(url, **JSON)["ETag"]
    assert client.get(url, HTTP_IF_NONE_MATCH=etag, **JSON).status_code == 304
    throttled = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_X_THROTTLE_ME="1", **JSON)
    assert throttled.status_code == 429


def test_per_user_views_tag_each_user_apart(client, article):
    url = f"/per-user/{article.pk}/"
    anonymous = client.get(url, **JSON)
    client.force_authenticate(User.objects.create_user("one"))
    one = client.get(url, **JSON)
    client.force_authenticate(User.objects.create_user("two"))
    two = client.get(url, **JSON)
    assert len({anonymous["ETag"], one["ETag"], two["ETag"]}) == 3
    assert "private" in two["Cache-Control"]
    assert {"Authorization", "Cookie"} <= {v.strip() for v in two["Vary"].split(",")}
    assert client.get(url, HTTP_IF_NONE_MATCH=one["ETag"], **JSON).status_code == 200
    not_modified = client.get(url, HTTP_IF_NONE_MATCH=two["ETag"], **JSON)
    assert not_modified.status_code == 304
    assert "private" in not_modified["Cache-Control"]


# -- writes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [("put", {"title": "new", "body": "b"}), ("patch", {"title": "new"})],
)
def test_update_with_the_current_tag_is_a_200_with_the_new_etag(
    writer, article, method, body
):
    url = f"/articles/{article.pk}/"
    etag = writer.get(url, **JSON)["ETag"]
    if method == "put":
        body = {**body, "author": article.author_id}
    response = getattr(writer, method)(
        url, body, format="json", HTTP_IF_MATCH=etag, **JSON
    )
    assert response.status_code == 200
    assert response["ETag"] != etag
    assert response.json()["etag"] == response["ETag"]
    assert response.json()["title"] == "new"
    fresh = writer.get(url, HTTP_IF_NONE_MATCH=response["ETag"], **JSON)
    assert fresh.status_code == 304


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_stale_if_match_is_a_412_problem_with_the_current_etag(
    writer, article, method
):
    url = f"/articles/{article.pk}/"
    current = writer.get(url, **JSON)["ETag"]
    response = getattr(writer, method)(
        url, {"title": "lost"}, format="json", HTTP_IF_MATCH='"stale.0"', **JSON
    )
    assert response.status_code == 412
    body = problem(response)
    assert body["precondition"] == "If-Match"
    assert response["ETag"] == current
    assert Article.objects.get(pk=article.pk).title == "ada one"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_write_without_a_precondition_is_a_428_problem(writer, article, method):
    url = f"/articles/{article.pk}/"
    current = writer.get(url, **JSON)["ETag"]
    response = getattr(writer, method)(url, {"title": "blind"}, format="json", **JSON)
    assert response.status_code == 428
    assert problem(response)["required"] == ["If-Match"]
    assert response["ETag"] == current
    assert Article.objects.filter(pk=article.pk, title="ada one").exists()


def test_428_policy_per_action(writer, article):
    url = f"/per-action/{article.pk}/"
    assert (
        writer.put(
            url, {"title": "x", "author": article.author_id}, format="json"
        ).status_code
        == 428
    )
    patched = writer.patch(url, {"title": "unconditional"}, format="json", **JSON)
    assert patched.status_code == 200
    assert "ETag" in patched
    assert writer.delete(url).status_code == 204


def test_destroy_with_the_current_tag_is_a_204_then_412(writer, article):
    url = f"/articles/{article.pk}/"
    etag = writer.get(url, **JSON)["ETag"]
    response = writer.delete(url, HTTP_IF_MATCH=etag)
    assert response.status_code == 204
    assert "ETag" not in response
    assert not Article.objects.filter(pk=article.pk).exists()
    assert writer.get(url, **JSON).status_code == 404
    again = writer.delete(url, HTTP_IF_MATCH=etag, **JSON)
    assert again.status_code == 412
    problem(again)


def test_the_list_items_etag_is_a_valid_if_match(writer, article):
    item = writer.get("/articles/", **JSON).json()["results"][0]
    response = writer.patch(
        f"/articles/{item['id']}/",
        {"title": "via list"},
        format="json",
        HTTP_IF_MATCH=item["etag"],
    )
    assert response.status_code == 200


def test_the_browsable_apis_tag_guards_a_json_write(writer, article):
    url = f"/articles/{article.pk}/"
    html_tag = writer.get(url, HTTP_ACCEPT="text/html")["ETag"]
    response = writer.patch(
        url, {"title": "x"}, format="json", HTTP_IF_MATCH=html_tag, **JSON
    )
    assert response.status_code == 200


def test_writes_need_authentication_before_preconditions(client, article):
    url = f"/articles/{article.pk}/"
    response = client.patch(
        url, {"title": "x"}, format="json", HTTP_IF_MATCH='"stale"', **JSON
    )
    assert response.status_code in (401, 403)
    assert "ETag" not in response
    assert client.patch(url, {"title": "x"}, format="json", **JSON).status_code in (
        401,
        403,
    )


def test_refusals_go_through_the_projects_exception_handler(writer, article):
    url = f"/articles/{article.pk}/"
    with override_settings(
        REST_FRAMEWORK={
            "EXCEPTION_HANDLER": "tests.drf_views.recording_exception_handler",
            "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        }
    ):
        failed = writer.patch(
            url, {"title": "x"}, format="json", HTTP_IF_MATCH='"old"', **JSON
        )
        required = writer.patch(url, {"title": "x"}, format="json", **JSON)
    assert [type(exc).__name__ for exc in HANDLED] == [
        "PreconditionFailed",
        "PreconditionRequired",
    ]
    assert (
        failed.status_code == 412
        and failed["X-Project-Handler"] == "PreconditionFailed"
    )
    assert (
        required.status_code == 428
        and required["X-Project-Handler"] == "PreconditionRequired"
    )
    assert "ETag" in failed
    problem(failed)
    problem(required)


def test_create_with_if_none_match_star_is_a_201_with_etag_and_location(writer, ada):
    response = writer.post(
        "/articles/",
        {"title": "made", "body": "b", "author": ada.pk},
        format="json",
        HTTP_IF_NONE_MATCH="*",
        **JSON,
    )
    assert response.status_code == 201
    pk = response.json()["id"]
    assert response["Location"] == f"http://testserver/articles/{pk}/"
    assert response["ETag"] == response.json()["etag"]
    again = writer.get(f"/articles/{pk}/", HTTP_IF_NONE_MATCH=response["ETag"], **JSON)
    assert again.status_code == 304
    assert (
        writer.post(
            "/articles/", {"title": "plain", "author": ada.pk}, format="json"
        ).status_code
        == 201
    )


def test_create_refuses_if_match_the_new_object_cannot_satisfy(writer, ada):
    response = writer.post(
        "/articles/",
        {"title": "x", "author": ada.pk},
        format="json",
        HTTP_IF_MATCH="*",
        **JSON,
    )
    assert response.status_code == 412
    problem(response)
    assert not Article.objects.filter(title="x").exists()


def test_create_with_if_none_match_star_refuses_an_existing_client_named_object(client):
    Country.objects.create(code="fr", name="France")
    taken = client.post(
        "/countries/",
        {"code": "fr", "name": "Again"},
        format="json",
        HTTP_IF_NONE_MATCH="*",
        **JSON,
    )
    assert taken.status_code == 412
    assert problem(taken)["precondition"] == "If-None-Match"
    created = client.post(
        "/countries/",
        {"code": "it", "name": "Italy"},
        format="json",
        HTTP_IF_NONE_MATCH="*",
        **JSON,
    )
    assert created.status_code == 201
    assert created["Location"] == "http://testserver/countries/it/"
    assert (
        client.get(
            "/countries/it/", HTTP_IF_NONE_MATCH=created["ETag"], **JSON
        ).status_code
        == 304
    )


def test_function_views(writer, article, django_assert_num_queries):
    url = f"/function/{article.pk}/"
    first = writer.get(url, **JSON)
    assert first.status_code == 200
    with django_assert_num_queries(0):
        assert (
            writer.get(url, HTTP_IF_NONE_MATCH=first["ETag"], **JSON).status_code == 304
        )
    assert SERIALIZED["function"] == 1
    assert writer.put(url, {"title": "x"}, format="json", **JSON).status_code == 428
    stale = writer.put(
        url, {"title": "x"}, format="json", HTTP_IF_MATCH='"old"', **JSON
    )
    assert stale.status_code == 412
    problem(stale)
    done = writer.put(
        url, {"title": "x"}, format="json", HTTP_IF_MATCH=first["ETag"], **JSON
    )
    assert done.status_code == 200
    assert done["ETag"] != first["ETag"]


def test_options_and_unknown_methods_are_not_conditional(writer, article):
    url = f"/articles/{article.pk}/"
    assert writer.options(url, HTTP_IF_MATCH='"stale"', **JSON).status_code == 200
    assert (
        writer.post(url, {}, format="json", HTTP_IF_MATCH='"stale"').status_code == 405
    )


# -- packaging --------------------------------------------------------------------------------


def test_the_package_imports_nothing_from_drf_until_asked():
    code = (
        "import sys, django_conditional, django_conditional.versioned_views\n"
        "print(any(m.split('.')[0] in ('rest_framework', 'drf_spectacular') for m in sys.modules))\n"
    )
    env_code = "import django; from django.conf import settings; settings.configure(); django.setup()\n"
    out = subprocess.run(
        [sys.executable, "-c", env_code + code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
