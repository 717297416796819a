"""The demo's pages and JSON API, each answering conditional requests.

- ``/articles/`` and ``/articles/<pk>/``: HTML validated *before* the view runs from resource
  versions (``@versioned``); a 304 costs no database query. The detail page checks that the
  article is published first (``visible=``: an unpublished or missing article is the view's 404
  whatever the preconditions, RFC 9110 §13.2.1); the answer depends only on the article, so it
  is remembered per version (``visible_by_state``) and asked again after a bump. Its
  ``Last-Modified`` is the time of the last bump, read with the versions.
- ``/api/articles/`` and ``/api/articles/<pk>/``: JSON; writes need HTTP Basic credentials
  (demo only, see ``auth``) and, on an article, ``If-Match`` (428 without it, 412 when stale),
  checked and written atomically against the locked version rows. A POST answers 201 with the
  ``Location`` of the new article and its ``ETag`` (the write path reads it inside the write's
  transaction from the view at ``Location``), ready for a PUT with ``If-Match``.
- ``/about/``: a plain view; the content-hash middleware gives it its ETag and 304s.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_response_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from django_conditional.resources import CollectionOf, ObjectOf, Resource
from django_conditional.versioned_views import FROM_VERSIONS, versioned
from example_project.blog.auth import basic_auth_required
from example_project.blog.forms import ArticleForm, article_document
from example_project.blog.models import Article, Author, Comment, Tag

PAGE_SIZE = 10
# Browsers and shared caches may reuse a page for a minute, then revalidate it (and get a 304).
MAX_AGE = 60
HTML_VARY = ("Accept-Language",)
# Declared for the 304s sent without running a view, in case the headers the view set on its
# last 200 (remembered in the cache, Expires included) are not in the cache.
HTML_HEADERS = {"Cache-Control": f"max-age={MAX_AGE}"}

# What each representation shows, hence which versions validate it. An article's object version
# is bumped by its own changes, its tags (m2m) and its comments (``track(Comment, parents=...)``);
# authors and tag names appear on every page, so their collections are included.
LIST_RESOURCES: tuple[Resource, ...] = (
    CollectionOf(Article),
    CollectionOf(Author),
    CollectionOf(Tag),
    CollectionOf(Comment),
)
DETAIL_RESOURCES: tuple[Resource, ...] = (
    ObjectOf(Article),
    CollectionOf(Author),
    CollectionOf(Tag),
)
API_LIST_RESOURCES: tuple[Resource, ...] = (
    CollectionOf(Article),
    CollectionOf(Author),
    CollectionOf(Tag),
)
API_WRITE_PERMISSIONS = {
    "POST": "blog.add_article",
    "PUT": "blog.change_article",
    "PATCH": "blog.change_article",
    "DELETE": "blog.delete_article",
}


def _published(request: HttpRequest, pk: int) -> bool:
    """The detail page's access check, run before its preconditions: a draft or a missing
    article is the view's 404, never a 304 or 412 telling that it exists. One query, run once per
    version of the article (``visible_by_state``: it reads nothing the article's version does not
    cover, and asks nothing of the requester)."""
    return bool(Article.objects.filter(pk=pk, published=True).exists())


def _articles() -> QuerySet[Article]:
    articles: QuerySet[Article] = Article.objects.select_related(
        "author"
    ).prefetch_related("tags")
    return articles


def _cache_for_a_minute(response: HttpResponse) -> HttpResponse:
    # Cache-Control: max-age and Expires; remembered by the decorator for the 304s it sends.
    patch_response_headers(response, cache_timeout=MAX_AGE)
    return response


# HTML ---------------------------------------------------------------------------------------


@require_safe
@versioned(*LIST_RESOURCES, vary=HTML_VARY, headers=HTML_HEADERS)
def article_list(request: HttpRequest) -> HttpResponse:
    articles = (
        _articles()
        .filter(published=True)
        .annotate(comment_count=Count("comments"))
        .order_by("-created_at", "-pk")  # a GROUP BY query ignores Meta.ordering
    )
    page = Paginator(articles, PAGE_SIZE).get_page(request.GET.get("page"))
    response = render(request, "blog/article_list.html", {"page_obj": page})
    return _cache_for_a_minute(response)


@require_safe
@versioned(
    *DETAIL_RESOURCES,
    vary=HTML_VARY,
    # Last-Modified: when one of the page's versions was last bumped, read with them (no query).
    # Not the article's updated_at: a new comment or a renamed tag changes the page too.
    last_modified=FROM_VERSIONS,
    headers=HTML_HEADERS,
    visible=_published,
    visible_by_state=True,
)
def article_detail(request: HttpRequest, pk: int) -> HttpResponse:
    article = get_object_or_404(_articles(), pk=pk, published=True)
    comments = list(article.comments.all())
    response = render(
        request,
        "blog/article_detail.html",
        {"article": article, "comments": comments},
    )
    return _cache_for_a_minute(response)


@require_safe
def about(request: HttpRequest) -> HttpResponse:
    """No decorator: ``django_conditional.middleware.ConditionalGetMiddleware`` hashes the body."""
    return render(request, "blog/about.html")


# JSON API -----------------------------------------------------------------------------------


class BadRequest(Exception):
    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(errors)
        self.errors = errors


def _json_body(request: HttpRequest) -> dict[str, Any]:
    content_type = request.content_type or ""
    if content_type not in {"application/json", "application/merge-patch+json"}:
        raise BadRequest({"content_type": ["Send application/json."]})
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest({"body": [f"Invalid JSON: {exc}"]}) from None
    if not isinstance(data, dict):
        raise BadRequest({"body": ["Send a JSON object."]})
    return data


def _form_data(data: dict[str, Any]) -> dict[str, Any]:
    # ModelForm reads a BooleanField's absence as False: the API defaults ``published`` to true.
    return {**data, "published": bool(data.get("published", True))}


def _save(form: ArticleForm) -> Article:
    article = form.save()
    return _articles().get(pk=article.pk)


def _errors(errors: dict[str, Any]) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=400)


@csrf_exempt  # Basic auth only, never a session cookie: there is no CSRF to forge.
@require_http_methods(["GET", "HEAD", "POST"])
@basic_auth_required(API_WRITE_PERMISSIONS)
@versioned(*API_LIST_RESOURCES, vary=(), require_precondition=False)
def api_article_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            form = ArticleForm(_form_data(_json_body(request)))
        except BadRequest as exc:
            return _errors(exc.errors)
        if not form.is_valid():
            return _errors(form.errors.get_json_data())
        article = _save(form)
        # The write path adds the ETag of the article at Location (RFC 9110 §15.3.2).
        response = JsonResponse(article_document(article), status=201)
        response.headers["Location"] = request.build_absolute_uri(
            f"/api/articles/{article.pk}/"
        )
        return response
    articles = [article_document(article) for article in _articles()]
    return JsonResponse({"count": len(articles), "results": articles})


@csrf_exempt  # Basic auth only, never a session cookie: there is no CSRF to forge.
@require_http_methods(["GET", "HEAD", "PUT", "PATCH", "DELETE"])
@basic_auth_required(API_WRITE_PERMISSIONS)
@versioned(
    *DETAIL_RESOURCES,
    vary=(),
    # Last-Modified: when one of the page's versions was last bumped, read with them (no query).
    # Not the article's updated_at: a new comment or a renamed tag changes the page too.
    last_modified=FROM_VERSIONS,
    require_precondition=True,
)
def api_article(request: HttpRequest, pk: int) -> HttpResponse:
    """One article. PUT replaces it (``tags`` default to none, ``published`` to true), PATCH
    changes the fields it sends, DELETE removes it; each needs a current ``If-Match``."""
    article = get_object_or_404(_articles(), pk=pk)
    if request.method == "DELETE":
        article.delete()
        return HttpResponse(status=204)
    if request.method in {"PUT", "PATCH"}:
        try:
            sent = _json_body(request)
        except BadRequest as exc:
            return _errors(exc.errors)
        if request.method == "PATCH":
            current = article_document(article)
            sent = {
                name: sent.get(name, current[name]) for name in ArticleForm.Meta.fields
            }
        form = ArticleForm(_form_data(sent), instance=article)
        if not form.is_valid():
            return _errors(form.errors.get_json_data())
        article = _save(form)
    return JsonResponse(article_document(article))
