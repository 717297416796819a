"""``VersionedMixin`` on DetailView, ListView, UpdateView, DeleteView and plain (sync, async) View."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client

from django_conditional import versions
from django_conditional.resources import CollectionOf, ObjectOf
from tests.testapp.models import Article
from tests.testapp.views import CALLS
from tests.versioned_support import count_cache_calls, run_async

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.urls_versioned"),
    pytest.mark.usefixtures("clean_versions"),
]


def test_detail_view_304_without_query_or_rendering(
    client, article, django_assert_num_queries
):
    path = f"/cbv/articles/{article.pk}/"
    first = client.get(path)
    assert first.status_code == 200
    assert first.content == b"One"
    assert "Accept-Language" in first.headers["Vary"]
    with django_assert_num_queries(0), count_cache_calls() as cache_calls:
        second = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 304
    assert cache_calls.round_trips == 1
    assert CALLS["ArticleDetail"] == 1


def test_detail_view_default_resource_is_the_object(client, article):
    path = f"/cbv/articles/{article.pk}/"
    decorated = client.get(f"/articles/{article.pk}/").headers["ETag"]
    # Same versions, same variant: the mixin and the decorator agree on the tag.
    assert client.get(path).headers["ETag"] == decorated


def test_detail_view_etag_follows_the_object(
    client, article, django_capture_on_commit_callbacks
):
    path = f"/cbv/articles/{article.pk}/"
    before = client.get(path).headers["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        Article.objects.create(author=article.author, title="Other")
    assert client.get(path).headers["ETag"] == before  # another object
    with django_capture_on_commit_callbacks(execute=True):
        article.title = "Two"
        article.save()
    changed = client.get(path)
    assert changed.headers["ETag"] != before
    assert changed.content == b"Two"


def test_list_view_default_resource_is_the_collection(
    client, article, django_capture_on_commit_callbacks
):
    path = "/cbv/articles/"
    first = client.get(path)
    assert first.content == b"One"
    assert client.get(path, headers={"If-None-Match": first["ETag"]}).status_code == 304
    with django_capture_on_commit_callbacks(execute=True):
        Article.objects.create(author=article.author, title="Two")
    second = client.get(path, headers={"If-None-Match": first["ETag"]})
    assert second.status_code == 200
    assert second.content == b"One, Two"
    assert CALLS["ArticleList"] == 2


def test_update_view_get_304_and_post_checked(
    client, article, django_capture_on_commit_callbacks
):
    path = f"/cbv/articles/{article.pk}/edit/"
    form = client.get(path)
    assert form.status_code == 200
    assert b'name="title"' in form.content
    tag = form.headers["ETag"]
    assert client.get(path, headers={"If-None-Match": tag}).status_code == 304
    refused = client.post(path, {"title": "Mine"}, headers={"If-Match": '"stale"'})
    assert refused.status_code == 412
    assert Article.objects.get(pk=article.pk).title == "One"
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(path, {"title": "Mine"}, headers={"If-Match": tag})
    assert done.status_code == 302
    assert Article.objects.get(pk=article.pk).title == "Mine"
    assert client.get(path, headers={"If-None-Match": tag}).status_code == 200


def test_update_view_plain_form_post_still_works(client, article):
    # Browsers send no If-Match with a form: without a 428 policy the post goes through.
    response = client.post(f"/cbv/articles/{article.pk}/edit/", {"title": "Form"})
    assert response.status_code == 302
    assert Article.objects.get(pk=article.pk).title == "Form"


def test_delete_view(client, article, django_capture_on_commit_callbacks):
    path = f"/cbv/articles/{article.pk}/delete/"
    tag = client.get(f"/cbv/articles/{article.pk}/").headers["ETag"]
    assert client.post(path, headers={"If-Match": '"stale"'}).status_code == 412
    assert Article.objects.filter(pk=article.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path, headers={"If-Match": tag})
    assert response.status_code == 302
    assert not Article.objects.filter(pk=article.pk).exists()
    assert versions.get(versions.object_key(Article, article.pk)) < 0


def test_plain_view_with_declared_resources(
    client, article, django_capture_on_commit_callbacks, django_assert_num_queries
):
    path = f"/cbv/authors/{article.author_id}/"
    first = client.get(path)
    assert first.content == b"One"
    with django_assert_num_queries(0):
        assert (
            client.get(path, headers={"If-None-Match": first["ETag"]}).status_code
            == 304
        )
    with django_capture_on_commit_callbacks(execute=True):
        Article.objects.create(author=article.author, title="Two")
    assert client.get(path, headers={"If-None-Match": first["ETag"]}).status_code == 200
    assert CALLS["AuthorArticles"] == 2


def test_async_view_get_and_put(article, django_assert_num_queries):
    client = AsyncClient()
    path = f"/cbv/async/{article.pk}/"
    first = run_async(client.get)(path)
    assert first.status_code == 200
    assert first.content == b"One"
    with django_assert_num_queries(0), count_cache_calls() as cache_calls:
        second = run_async(client.get)(path, headers={"If-None-Match": first["ETag"]})
    assert second.status_code == 304
    assert cache_calls.round_trips == 1
    assert CALLS["AsyncArticle"] == 1
    # require_precondition = True on the class.
    missing = run_async(client.put)(path, '{"title": "x"}', "application/json")
    assert missing.status_code == 428
    stale = run_async(client.put)(
        path, '{"title": "x"}', "application/json", headers={"If-Match": '"old"'}
    )
    assert stale.status_code == 412
    assert CALLS["AsyncArticle.put"] == 0
    done = run_async(client.put)(
        path,
        '{"title": "Async"}',
        "application/json",
        headers={"If-Match": first["ETag"]},
    )
    assert done.status_code == 200
    assert done.content == b"Async"
    assert done.headers["ETag"] != first["ETag"]
    assert Article.objects.get(pk=article.pk).title == "Async"


def test_per_user_class_attribute(article):
    ada = User.objects.create_user("ada", password="x")
    path = f"/cbv/private/{article.pk}/"
    anonymous = Client().get(path)
    client = Client()
    client.force_login(ada)
    logged_in = client.get(path)
    assert anonymous.headers["ETag"] != logged_in.headers["ETag"]
    assert logged_in.headers["Vary"] == "Cookie"
    assert "private" in logged_in.headers["Cache-Control"]


def test_method_not_allowed_is_not_versioned(client, article):
    response = client.put(f"/cbv/articles/{article.pk}/", headers={"If-Match": '"x"'})
    assert response.status_code == 405


def test_plain_view_without_resources_is_a_configuration_error(client):
    with pytest.raises(ImproperlyConfigured, match="version_resources"):
        client.get("/cbv/unversioned/")


def test_default_resources(rf):
    from tests.testapp import views

    listing = views.ArticleListByQueryset()
    (resource,) = listing.get_version_resources()
    assert isinstance(resource, CollectionOf) and resource.model is Article
    detail = views.ArticleDetail()
    (resource,) = detail.get_version_resources()
    assert isinstance(resource, ObjectOf) and resource.url_kwarg == "pk"
    with pytest.raises(ImproperlyConfigured, match="model or queryset"):
        views.DetailWithoutModel().get_version_resources()


def test_visible_by_state_asks_once_per_version(
    rf, article, django_capture_on_commit_callbacks
):
    # ``version_visible_by_state``: the class's check is remembered per version of the object.
    from django.views.generic import DetailView

    from django_conditional import visibility
    from django_conditional.mixins import VersionedMixin

    asked: list[int] = []

    def published(request, pk):
        asked.append(pk)
        return True

    class Page(VersionedMixin, DetailView):
        model = Article
        template_name = "unused.html"
        version_visible = published
        version_visible_by_state = True

        def get(self, request, *args, **kwargs):
            from django.http import HttpResponse

            return HttpResponse(b"page")

    visibility.forget()
    view = Page.as_view()
    etag = view(rf.get("/"), pk=article.pk).headers["ETag"]
    for _ in range(2):
        assert (
            view(
                rf.get("/", headers={"if-none-match": etag}), pk=article.pk
            ).status_code
            == 304
        )
    assert asked == [article.pk]
    with django_capture_on_commit_callbacks(execute=True):
        article.title = "Changed"
        article.save()
    assert (
        view(rf.get("/", headers={"if-none-match": etag}), pk=article.pk).status_code
        == 200
    )
    assert asked == [article.pk, article.pk]


def test_the_versioned_wrapper_is_built_once_per_class(client, article, monkeypatch):
    # Issue 16: no wrapper rebuilt per request; each class keeps its own (never a parent's).
    from django_conditional import mixins, versioned_views
    from tests.testapp import views

    built: list[object] = []
    original = versioned_views.versioned_view

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(mixins, "versioned_view", counting)
    monkeypatch.delattr(views.ArticleDetail, "_conditional_checked", raising=False)
    path = f"/cbv/articles/{article.pk}/"
    etag = client.get(path).headers["ETag"]
    for _ in range(3):
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert len(built) == 1
    assert "_conditional_checked" in views.ArticleDetail.__dict__
