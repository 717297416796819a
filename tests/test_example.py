"""The example project: seed_demo, and every URL of the demo (200, 304, 412, 428, Basic auth)."""

from __future__ import annotations

import base64
import http.client
import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db.models import F
from django.test import Client

from django_conditional.models import ResourceVersion
from example_project import settings as example_settings
from example_project.blog.factories import (
    ArticleFactory,
    AuthorFactory,
    CommentFactory,
    TagFactory,
)
from example_project.blog.management.commands.seed_demo import AUTHORS, TAG_NAMES
from example_project.blog.models import Article, Author, Comment, Tag
from example_project.blog.testing import SERVERS, demo_server, reset_version_cache
from tests.versioned_support import count_cache_calls

pytestmark = pytest.mark.urls("example_project.urls")


@pytest.fixture(autouse=True)
def example_middleware(settings):
    """The example project's middleware stack (content-hash middleware, CSRF...)."""
    settings.MIDDLEWARE = list(example_settings.MIDDLEWARE)


@pytest.fixture(autouse=True)
def fresh_cache():
    reset_version_cache()
    yield
    reset_version_cache()


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


DEMO = basic("demo", "demo")


@pytest.fixture
def demo_user(db) -> User:
    call_command("seed_demo", "--articles", "0", stdout=StringIO())
    user: User = User.objects.get(username="demo")
    return user


def api(
    client: Client,
    method: str,
    path: str,
    body: Any = None,
    *,
    auth: str | None = DEMO,
    **headers: str,
) -> Any:
    if auth is not None:
        headers["authorization"] = auth
    data = "" if body is None else json.dumps(body)
    return client.generic(
        method, path, data, content_type="application/json", headers=headers
    )


# seed_demo ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_seed_demo_fills_the_demo_and_is_idempotent():
    out = StringIO()
    call_command("seed_demo", stdout=out)

    assert Article.objects.count() == 50
    assert Author.objects.count() == len(AUTHORS)
    assert set(Tag.objects.values_list("name", flat=True)) == set(TAG_NAMES)
    assert Comment.objects.exists()
    assert all(article.tags.exists() for article in Article.objects.all())
    assert "50 articles (50 new)" in out.getvalue()
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password("admin")
    demo = User.objects.get(username="demo")
    assert demo.check_password("demo") and not demo.is_staff
    assert demo.has_perms(
        ["blog.add_article", "blog.change_article", "blog.delete_article"]
    )
    assert not demo.has_perm("blog.delete_author")
    counts = (
        Article.objects.count(),
        Comment.objects.count(),
        Author.objects.count(),
        Tag.objects.count(),
        User.objects.count(),
    )

    again = StringIO()
    call_command("seed_demo", stdout=again)

    assert "(0 new)" in again.getvalue()
    assert counts == (
        Article.objects.count(),
        Comment.objects.count(),
        Author.objects.count(),
        Tag.objects.count(),
        User.objects.count(),
    )


# HTML pages ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_article_list_200_then_304_then_200_after_a_change(client):
    ArticleFactory.create(title="First article")

    first = client.get("/articles/")
    assert first.status_code == 200
    assert b"First article" in first.content
    etag = first.headers["ETag"]
    assert "max-age=60" in first.headers["Cache-Control"]
    assert "Expires" in first.headers
    assert "Accept-Language" in first.headers["Vary"]

    again = client.get("/articles/", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    for name in ("Cache-Control", "Expires", "Vary"):
        assert again.headers[name] == first.headers[name] or name == "Expires"
    assert "Expires" in again.headers

    ArticleFactory.create(title="Second article")
    changed = client.get("/articles/", headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert b"Second article" in changed.content
    assert changed.headers["ETag"] != etag


@pytest.mark.django_db(transaction=True)
def test_article_list_304_costs_no_database_query(client, django_assert_num_queries):
    ArticleFactory.create_batch(3)
    etag = client.get("/articles/").headers["ETag"]
    with django_assert_num_queries(0):
        assert (
            client.get("/articles/", headers={"if-none-match": etag}).status_code == 304
        )


@pytest.mark.django_db(transaction=True)
def test_article_detail_304_costs_no_database_query(client, django_assert_num_queries):
    # Issue 16: Last-Modified from the versions' bump times, the published check remembered
    # per version of the article (visible_by_state); the first revalidation may still ask.
    article = ArticleFactory.create()
    url = f"/articles/{article.pk}/"
    etag = client.get(url).headers["ETag"]
    client.get(url, headers={"if-none-match": etag})
    with django_assert_num_queries(0), count_cache_calls() as calls:
        again = client.get(url, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert "Last-Modified" in again.headers
    # The published check's read is the decision's read: one per request.
    assert calls.round_trips == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("unpublish", ["save", "update", "delete"])
def test_a_remembered_published_check_never_outlives_the_article_state(
    client, unpublish
):
    # The published answer is remembered per version: unpublishing (a save, a queryset update,
    # a delete) bumps the article, so the next revalidation asks again and gets the 404.
    article = ArticleFactory.create()
    url = f"/articles/{article.pk}/"
    etag = client.get(url).headers["ETag"]
    assert client.get(url, headers={"if-none-match": etag}).status_code == 304
    if unpublish == "save":
        article.published = False
        article.save()
    elif unpublish == "update":
        Article.objects.filter(pk=article.pk).update(published=False)
    else:
        article.delete()
    hidden = client.get(url, headers={"if-none-match": etag})
    assert hidden.status_code == 404
    for name in ("ETag", "Last-Modified"):
        assert name not in hidden.headers


@pytest.mark.django_db(transaction=True)
def test_article_list_pages(client):
    ArticleFactory.create_batch(12)
    second = client.get("/articles/", {"page": 2})
    assert second.status_code == 200
    assert b"Page 2 of 2" in second.content


@pytest.mark.django_db(transaction=True)
def test_article_detail_304_and_a_new_comment_changes_it(client):
    article = ArticleFactory.create(title="Detailed", tags=[TagFactory.create()])
    url = f"/articles/{article.pk}/"

    first = client.get(url)
    assert first.status_code == 200
    assert b"Detailed" in first.content
    etag = first.headers["ETag"]
    assert "Accept-Language" in first.headers["Vary"]
    assert "max-age=60" in first.headers["Cache-Control"]

    again = client.get(url, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.headers["ETag"] == etag
    assert "Accept-Language" in again.headers["Vary"]
    assert "max-age=60" in again.headers["Cache-Control"]
    assert "Expires" in again.headers

    CommentFactory.create(article=article, body="A brand new comment")
    changed = client.get(url, headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert b"A brand new comment" in changed.content
    assert changed.headers["ETag"] != etag


@pytest.mark.django_db(transaction=True)
def test_article_detail_if_modified_since(client):
    article = ArticleFactory.create()
    url = f"/articles/{article.pk}/"
    first = client.get(url)
    last_modified = first.headers["Last-Modified"]

    future = client.get(
        url, headers={"if-modified-since": "Tue, 21 Nov 2050 08:00:00 GMT"}
    )
    same = client.get(url, headers={"if-modified-since": last_modified})
    past = client.get(
        url, headers={"if-modified-since": "Thu, 01 Jan 2015 00:00:00 GMT"}
    )

    assert (future.status_code, future.content) == (304, b"")
    assert future.headers["ETag"] == first.headers["ETag"]
    assert future.headers["Last-Modified"] == last_modified
    assert same.status_code == 304
    assert past.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_article_detail_differs_by_accept_language(client):
    article = ArticleFactory.create()
    url = f"/articles/{article.pk}/"
    english = client.get(url, headers={"accept-language": "en"})
    french = client.get(url, headers={"accept-language": "fr"})
    assert english.headers["ETag"] != french.headers["ETag"]
    cross = client.get(
        url,
        headers={"accept-language": "fr", "if-none-match": english.headers["ETag"]},
    )
    assert cross.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_renaming_an_author_changes_the_detail(client):
    author = AuthorFactory.create(name="Old Name")
    article = ArticleFactory.create(author=author)
    url = f"/articles/{article.pk}/"
    etag = client.get(url).headers["ETag"]

    author.name = "New Name"
    author.save()

    changed = client.get(url, headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert b"New Name" in changed.content


@pytest.mark.django_db(transaction=True)
def test_article_detail_404s(client):
    hidden = ArticleFactory.create(published=False)
    assert client.get(f"/articles/{hidden.pk}/").status_code == 404
    assert client.get(f"/articles/{hidden.pk + 1000}/").status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "headers",
    [
        {"if-none-match": "*"},
        {"if-match": '"x"'},
        {"if-modified-since": "Tue, 21 Nov 2090 08:00:00 GMT"},
        {"if-unmodified-since": "Thu, 01 Jan 2015 00:00:00 GMT"},
    ],
)
def test_a_draft_is_a_404_like_a_missing_article_whatever_the_preconditions(
    client, headers
):
    # RFC 9110 §13.2.1: no 304 or 412 (with the draft's validators) where the page is a 404.
    draft = ArticleFactory.create(published=False)
    hidden = client.get(f"/articles/{draft.pk}/", headers=headers)
    missing = client.get(f"/articles/{draft.pk + 1000}/", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content
    for name in ("ETag", "Last-Modified"):
        assert name not in hidden.headers


@pytest.mark.django_db(transaction=True)
def test_html_pages_refuse_writes(client):
    article = ArticleFactory.create()
    assert client.post("/articles/").status_code == 405
    assert client.delete(f"/articles/{article.pk}/").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_home_200_then_304(client):
    first = client.get("/")
    assert first.status_code == 200
    again = client.get("/", headers={"if-none-match": first.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.django_db(transaction=True)
def test_about_is_validated_by_the_content_hash_middleware(client):
    first = client.get("/about/")
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"')  # strong
    again = client.get("/about/", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.headers["ETag"] == etag
    head = client.head("/about/", headers={"if-none-match": etag})
    assert head.status_code == 304
    stale = client.get("/about/", headers={"if-none-match": '"stale"'})
    assert stale.status_code == 200


# JSON API: reads --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_api_list_200_then_304(client):
    ArticleFactory.create_batch(3)
    first = client.get("/api/articles/")
    assert first.status_code == 200
    assert first.json()["count"] == 3
    again = client.get(
        "/api/articles/", headers={"if-none-match": first.headers["ETag"]}
    )
    assert again.status_code == 304


@pytest.mark.django_db(transaction=True)
def test_api_detail_200_then_304(client):
    article = ArticleFactory.create(tags=[TagFactory.create(name="http")])
    first = client.get(f"/api/articles/{article.pk}/")
    assert first.status_code == 200
    document = first.json()
    assert document["title"] == article.title
    assert document["tags"] == ["http"]
    assert document["author"] == article.author_id
    again = client.get(
        f"/api/articles/{article.pk}/",
        headers={"if-none-match": first.headers["ETag"]},
    )
    assert again.status_code == 304
    assert client.get(f"/api/articles/{article.pk + 1000}/").status_code == 404


# JSON API: writes -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_api_writes_need_basic_auth(client, demo_user):
    article = ArticleFactory.create()
    url = f"/api/articles/{article.pk}/"
    etag = client.get(url).headers["ETag"]
    for method, path in (("POST", "/api/articles/"), ("PUT", url), ("DELETE", url)):
        # No credentials: 401, even with a current If-Match (auth comes before preconditions).
        response = api(client, method, path, {}, auth=None, if_match=etag)
        assert response.status_code == 401, method
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        wrong = api(client, method, path, {}, auth=basic("demo", "nope"))
        assert wrong.status_code == 401, method
    garbage = api(client, "PUT", url, {}, auth="Basic !!!")
    assert garbage.status_code == 401
    article.refresh_from_db()
    assert Article.objects.filter(pk=article.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_api_writes_need_the_permission(client, demo_user):
    User.objects.create_user("reader", password="reader")
    article = ArticleFactory.create()
    response = api(
        client,
        "DELETE",
        f"/api/articles/{article.pk}/",
        auth=basic("reader", "reader"),
        if_match=client.get(f"/api/articles/{article.pk}/").headers["ETag"],
    )
    assert response.status_code == 403
    assert Article.objects.filter(pk=article.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_api_post_creates_and_returns_the_new_etag(demo_user):
    client = Client(enforce_csrf_checks=True)  # the API is CSRF exempt: Basic auth only
    author = AuthorFactory.create()
    TagFactory.create(name="django")

    response = api(
        client,
        "POST",
        "/api/articles/",
        {"title": "Posted", "body": "Body", "author": author.pk, "tags": ["django"]},
    )

    assert response.status_code == 201, response.content
    document = response.json()
    assert document["title"] == "Posted"
    assert document["tags"] == ["django"]
    assert response.headers["Location"].endswith(f"/api/articles/{document['id']}/")
    fetched = client.get(f"/api/articles/{document['id']}/")
    assert fetched.headers["ETag"] == response.headers["ETag"]
    assert client.get("/api/articles/").headers["ETag"] != response.headers["ETag"]


@pytest.mark.django_db(transaction=True)
def test_api_put_to_the_location_with_the_201s_etag_succeeds(client, demo_user):
    # RFC 9110 §15.3.2: the 201's ETag is the created article's, good for If-Match at Location.
    author = AuthorFactory.create()
    document = {"title": "Posted", "body": "Body", "author": author.pk}
    created = api(client, "POST", "/api/articles/", document)
    assert created.status_code == 201, created.content
    location = "/" + created.headers["Location"].split("/", 3)[3]

    edited = {**document, "title": "Edited"}
    updated = api(client, "PUT", location, edited, if_match=created.headers["ETag"])

    assert updated.status_code == 200, updated.content
    assert Article.objects.get(pk=created.json()["id"]).title == "Edited"


@pytest.mark.django_db(transaction=True)
def test_api_post_with_a_stale_if_match_on_the_collection_is_412(client, demo_user):
    author = AuthorFactory.create()
    etag = client.get("/api/articles/").headers["ETag"]
    ArticleFactory.create()  # the collection changes meanwhile
    document = {"title": "Late", "body": "Body", "author": author.pk}

    stale = api(client, "POST", "/api/articles/", document, if_match=etag)

    assert stale.status_code == 412
    assert not Article.objects.filter(title="Late").exists()
    fresh = client.get("/api/articles/").headers["ETag"]
    created = api(client, "POST", "/api/articles/", document, if_match=fresh)
    assert created.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_admin_is_served(client, demo_user):
    login = client.get("/admin/")
    assert login.status_code == 302
    assert "/admin/login/" in login.headers["Location"]
    assert client.login(username="admin", password="admin")
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"Resource versions" in index.content
    assert b"Articles" in index.content


@pytest.mark.django_db(transaction=True)
def test_api_post_validates(client, demo_user):
    invalid = api(client, "POST", "/api/articles/", {"title": ""})
    assert invalid.status_code == 400
    assert {"title", "body", "author"} <= set(invalid.json()["errors"])
    not_json = client.post(
        "/api/articles/",
        "{nope",
        content_type="application/json",
        headers={"authorization": DEMO},
    )
    assert not_json.status_code == 400
    form = client.post(
        "/api/articles/", {"title": "x"}, headers={"authorization": DEMO}
    )
    assert form.status_code == 400
    assert Article.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_api_put_lost_update_tour(client, demo_user):
    article = ArticleFactory.create(title="Before")
    url = f"/api/articles/{article.pk}/"
    etag = client.get(url).headers["ETag"]
    document = {"title": "After", "body": "New body", "author": article.author_id}

    required = api(client, "PUT", url, document)
    assert required.status_code == 428
    assert "If-Match" in required.json()["detail"]

    stale = api(client, "PUT", url, document, if_match='"not-the-current-tag"')
    assert stale.status_code == 412
    article.refresh_from_db()
    assert article.title == "Before"

    done = api(client, "PUT", url, document, if_match=etag)
    assert done.status_code == 200, done.content
    assert done.json()["title"] == "After"
    new_etag = done.headers["ETag"]
    assert new_etag != etag
    assert client.get(url).headers["ETag"] == new_etag
    article.refresh_from_db()
    assert article.title == "After"

    lost = api(client, "PUT", url, {**document, "title": "Lost"}, if_match=etag)
    assert lost.status_code == 412
    article.refresh_from_db()
    assert article.title == "After"


@pytest.mark.django_db(transaction=True)
def test_api_if_unmodified_since_guards_writes_too(client, demo_user):
    article = ArticleFactory.create(title="Before")
    url = f"/api/articles/{article.pk}/"
    # Bumped some seconds ago, with the bump's sub-second time kept.
    ResourceVersion.objects.update(updated_at=F("updated_at") - timedelta(seconds=5))
    reset_version_cache()
    page = client.get(url)
    last_modified = page.headers["Last-Modified"]

    stale = api(
        client,
        "PATCH",
        url,
        {"title": "Stale"},
        if_unmodified_since="Thu, 01 Jan 2015 00:00:00 GMT",
    )
    assert stale.status_code == 412
    later = api(
        client,
        "PATCH",
        url,
        {"title": "After"},
        if_unmodified_since="Fri, 01 Jan 2100 00:00:00 GMT",
    )
    assert later.status_code == 200
    # The date of the last change names a second in which it changed: another change in that
    # second would share it, so it cannot prove the client saw the latest one. 412, with the
    # ETag to send in If-Match.
    ambiguous = api(
        client, "PATCH", url, {"title": "Again"}, if_unmodified_since=last_modified
    )
    assert ambiguous.status_code == 412
    assert ambiguous.headers["ETag"] == later.headers["ETag"]
    article.refresh_from_db()
    assert article.title == "After"


@pytest.mark.django_db(transaction=True)
def test_api_patch_changes_only_what_it_sends(client, demo_user):
    tag = TagFactory.create(name="caching")
    article = ArticleFactory.create(title="Keep", body="Old", tags=[tag])
    url = f"/api/articles/{article.pk}/"
    etag = client.get(url).headers["ETag"]

    assert api(client, "PATCH", url, {"body": "New"}).status_code == 428
    assert (
        api(client, "PATCH", url, {"body": "New"}, if_match='"stale"').status_code
        == 412
    )
    done = api(client, "PATCH", url, {"body": "New"}, if_match=etag)

    assert done.status_code == 200, done.content
    assert done.json()["body"] == "New"
    assert done.json()["title"] == "Keep"
    assert done.json()["tags"] == ["caching"]
    assert done.headers["ETag"] not in {etag, ""}
    invalid = api(
        client, "PATCH", url, {"author": 99999}, if_match=done.headers["ETag"]
    )
    assert invalid.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_api_delete_needs_a_current_if_match(client, demo_user):
    article = ArticleFactory.create()
    url = f"/api/articles/{article.pk}/"
    etag = client.get(url).headers["ETag"]

    assert api(client, "DELETE", url).status_code == 428
    assert api(client, "DELETE", url, if_match='"stale"').status_code == 412
    assert Article.objects.filter(pk=article.pk).exists()

    assert api(client, "DELETE", url, if_match=etag).status_code == 204
    assert not Article.objects.filter(pk=article.pk).exists()
    assert client.get(url).status_code == 404
    # A deleted resource has no current representation: If-Match fails.
    assert api(client, "DELETE", url, if_match=etag).status_code == 412


@pytest.mark.django_db(transaction=True)
def test_api_unknown_method(client):
    assert client.generic("OPTIONS", "/api/articles/").status_code == 405


# Real servers -----------------------------------------------------------------------------


def _http(
    base: str, method: str, path: str, body: Any = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        data = None if body is None else json.dumps(body).encode()
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if data is not None:
            sent["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.server
@pytest.mark.parametrize("kind", SERVERS)
def test_demo_serves_conditional_requests_under(kind, tmp_path):
    with demo_server(tmp_path, kind) as server:
        tags = {}
        for path in ("/", "/articles/", "/articles/1/", "/about/", "/api/articles/1/"):
            status, headers, _ = _http(server.url, "GET", path)
            assert status == 200, (path, server.log())
            tags[path] = headers["ETag"]
            status, again, body = _http(
                server.url, "GET", path, If_None_Match=tags[path]
            )
            assert (status, body) == (304, b""), path
            assert again["ETag"] == tags[path]

        patch = {"title": f"Changed under {kind}"}
        path = "/api/articles/1/"
        status, _, _ = _http(server.url, "PATCH", path, patch, Authorization=DEMO)
        assert status == 428
        status, changed, _ = _http(
            server.url, "PATCH", path, patch, Authorization=DEMO, If_Match=tags[path]
        )
        assert status == 200
        assert changed["ETag"] != tags[path]
        status, _, _ = _http(
            server.url, "PATCH", path, patch, Authorization=DEMO, If_Match=tags[path]
        )
        assert status == 412
        status, headers, body = _http(
            server.url, "GET", "/articles/1/", If_None_Match=tags["/articles/1/"]
        )
        assert status == 200
        assert headers["ETag"] != tags["/articles/1/"]
        assert f"Changed under {kind}".encode() in body
