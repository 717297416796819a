"""Views for the versioned-view, mixin and write tests (tests/urls_versioned.py).

``CALLS`` counts how often each view body ran, so tests can prove a 304/412/428 never ran it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.utils.http import http_date
from django.views import View
from django.views.generic import DeleteView, DetailView, ListView, UpdateView

from django_conditional.decorators import condition, etag, versioned
from django_conditional.mixins import VersionedMixin
from django_conditional.resources import CollectionOf, ObjectOf
from django_conditional.versioned_views import FROM_VERSIONS
from django_conditional.versions import object_key
from django_conditional.writes import transformed
from tests.testapp.models import Article, Author, Comment, Document

CALLS: Counter[str] = Counter()
# Seconds a write view sleeps after reading the row, to widen the race window of concurrency tests.
WRITE_DELAY = {"seconds": 0.0}


def _payload(article: Article) -> dict[str, Any]:
    return {"id": article.pk, "title": article.title, "body": article.body}


def _apply(article: Article, request: HttpRequest) -> None:
    data = json.loads(request.body or b"{}")
    article.title = data.get("title", article.title)
    article.body = data.get("body", article.body)


def _article_view(name: str, request: HttpRequest, pk: int) -> HttpResponseBase:
    CALLS[name] += 1
    try:
        article = Article.objects.get(pk=pk)
    except Article.DoesNotExist:
        raise Http404("no such article") from None
    if request.method in ("PUT", "PATCH", "POST"):
        if WRITE_DELAY["seconds"]:
            time.sleep(WRITE_DELAY["seconds"])
        _apply(article, request)
        article.save()
        return JsonResponse(_payload(article))
    if request.method == "DELETE":
        article.delete()
        return HttpResponse(status=204)
    return JsonResponse(_payload(article))


@versioned(ObjectOf(Article))
def article(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _article_view("article", request, pk)


@versioned(ObjectOf(Article), require_precondition=True)
def article_required(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _article_view("article_required", request, pk)


@versioned(ObjectOf(Article), require_precondition=False)
def article_never_required(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _article_view("article_never_required", request, pk)


@versioned(ObjectOf(Article), per_user=True)
def article_private(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _article_view("article_private", request, pk)


@versioned(ObjectOf(Article), vary=())
def article_plain(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _article_view("article_plain", request, pk)


def _updated_at(request: HttpRequest, pk: int) -> datetime | None:
    found: datetime | None = (
        Article.objects.filter(pk=pk).values_list("updated_at", flat=True).first()
    )
    return found


@versioned(ObjectOf(Article), last_modified=FROM_VERSIONS)
def article_bumped_at(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _article_view("article_bumped_at", request, pk)


@versioned(ObjectOf(Article), last_modified=_updated_at)
def article_dated(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _article_view("article_dated", request, pk)


@versioned(ObjectOf(Article), last_modified=_updated_at)
def article_dated_expiring(request: HttpRequest, pk: int) -> HttpResponseBase:
    response = _article_view("article_dated_expiring", request, pk)
    response.headers["Cache-Control"] = "max-age=60"
    response.headers["Expires"] = http_date(time.time() + 60)
    return response


@versioned(ObjectOf(Article), headers={"Cache-Control": "max-age=5"})
def article_declared(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _article_view("article_declared", request, pk)


@versioned(ObjectOf(Article))
def article_cache_control(request: HttpRequest, pk: int) -> HttpResponseBase:
    response = _article_view("article_cache_control", request, pk)
    response.headers["Cache-Control"] = "max-age=60"
    return response


@versioned(ObjectOf(Article))
async def aarticle(request: HttpRequest, pk: int) -> HttpResponseBase:
    CALLS["aarticle"] += 1
    try:
        found = await Article.objects.aget(pk=pk)
    except Article.DoesNotExist:
        raise Http404("no such article") from None
    if request.method in ("PUT", "PATCH", "POST"):
        _apply(found, request)
        await found.asave()
        if request.GET.get("fail"):
            raise RuntimeError("the view failed after saving")
        return JsonResponse(_payload(found))
    if request.method == "DELETE":
        await found.adelete()
        return HttpResponse(status=204)
    return JsonResponse(_payload(found))


@versioned(ObjectOf(Article), per_user=True)
async def aarticle_private(request: HttpRequest, pk: int) -> HttpResponseBase:
    CALLS["aarticle_private"] += 1
    return HttpResponse(f"article {pk}")


def _author_page_keys(request: HttpRequest, author_pk: int) -> list[str]:
    return [object_key(Author, author_pk)]


@versioned(
    _author_page_keys,
    CollectionOf(Article, "by_author", author="author_pk"),
    CollectionOf(Comment),
)
def author_page(request: HttpRequest, author_pk: int) -> HttpResponseBase:
    CALLS["author_page"] += 1
    titles = list(
        Article.objects.filter(author_id=author_pk).values_list("title", flat=True)
    )
    return JsonResponse({"titles": titles})


def many_keys(request: HttpRequest, count: int) -> list[str]:
    return [object_key(Article, index) for index in range(1, count + 1)]


@versioned(many_keys)
def many(request: HttpRequest, count: int) -> HttpResponseBase:
    CALLS["many"] += 1
    return HttpResponse(f"{count} articles")


@versioned(many_keys)
async def amany(request: HttpRequest, count: int) -> HttpResponseBase:
    CALLS["amany"] += 1
    return HttpResponse(f"{count} articles")


async def _akeys(request: HttpRequest, pk: int) -> list[str]:
    return [object_key(Article, pk)]


@versioned(_akeys)
async def article_async_keys(request: HttpRequest, pk: int) -> HttpResponseBase:
    CALLS["article_async_keys"] += 1
    return HttpResponse("ok")


@versioned(ObjectOf(Article))
def article_noop(request: HttpRequest, pk: int) -> HttpResponseBase:
    # A write that changes nothing (validates, then declines): no new version, no ETag.
    CALLS["article_noop"] += 1
    return JsonResponse({"changed": False})


@versioned(ObjectOf(Article))
def article_savepoints(request: HttpRequest, pk: int) -> HttpResponseBase:
    if request.method == "GET":
        return JsonResponse({"title": Article.objects.get(pk=pk).title})
    # One change kept (its savepoint released), a later one rolled back with its savepoint: the
    # write's ETag is the kept change's.
    article = Article.objects.get(pk=pk)
    with transaction.atomic():
        article.title = "kept"
        article.save()
    try:
        with transaction.atomic():
            article.title = "rolled back"
            article.save()
            raise ValueError("undone")
    except ValueError:
        pass
    return JsonResponse({"title": "kept"})


@versioned(ObjectOf(Article))
def article_set_rollback(request: HttpRequest, pk: int) -> HttpResponseBase:
    if request.method == "GET":
        return JsonResponse({"title": Article.objects.get(pk=pk).title})
    # Writes, then declines by marking the transaction for rollback: nothing commits, no ETag.
    article = Article.objects.get(pk=pk)
    article.title = "never committed"
    article.save()
    transaction.set_rollback(True)
    return JsonResponse({"changed": False})


@versioned(ObjectOf(Article), require_precondition=("post",))
def article_post_required(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _article_view("article_post_required", request, pk)


@versioned(ObjectOf(Article, url_kwarg="article_pk"))
def wrong_kwarg(request: HttpRequest, pk: int) -> HttpResponseBase:
    return HttpResponse("never")


# Class-based views ----------------------------------------------------------------------------


class _Text:
    def render_to_response(
        self, context: dict[str, Any], **kwargs: Any
    ) -> HttpResponseBase:
        CALLS[type(self).__name__] += 1
        return HttpResponse(self.text(context))

    def text(self, context: dict[str, Any]) -> str:
        raise NotImplementedError


class ArticleDetail(VersionedMixin, _Text, DetailView):  # type: ignore[misc]
    model = Article

    def text(self, context: dict[str, Any]) -> str:
        return str(context["object"].title)


class ArticleList(VersionedMixin, _Text, ListView):  # type: ignore[misc]
    model = Article

    def text(self, context: dict[str, Any]) -> str:
        return ", ".join(a.title for a in context["object_list"])


class ArticleUpdate(VersionedMixin, _Text, UpdateView):  # type: ignore[misc]
    model = Article
    fields = ["title"]
    success_url = "/done/"

    def text(self, context: dict[str, Any]) -> str:
        return str(context["form"].as_div())


class ArticleDelete(VersionedMixin, DeleteView):
    model = Article
    success_url = "/done/"


class PrivateArticleDetail(ArticleDetail):
    version_per_user = True
    version_vary = ()


class AuthorArticles(VersionedMixin, View):
    version_resources = (
        ObjectOf(Author, url_kwarg="author_pk"),
        CollectionOf(Article, "by_author", author="author_pk"),
    )

    def get(self, request: HttpRequest, author_pk: int) -> HttpResponseBase:
        CALLS["AuthorArticles"] += 1
        return HttpResponse(
            ", ".join(
                Article.objects.filter(author_id=author_pk).values_list(
                    "title", flat=True
                )
            )
        )


class AsyncArticle(VersionedMixin, View):
    version_resources = (ObjectOf(Article),)
    require_precondition = True

    async def get(self, request: HttpRequest, pk: int) -> HttpResponseBase:
        CALLS["AsyncArticle"] += 1
        found = await Article.objects.aget(pk=pk)
        return HttpResponse(found.title)

    async def put(self, request: HttpRequest, pk: int) -> HttpResponseBase:
        CALLS["AsyncArticle.put"] += 1
        found = await Article.objects.aget(pk=pk)
        _apply(found, request)
        await found.asave()
        return HttpResponse(found.title)


class ArticleListByQueryset(VersionedMixin, ListView):
    queryset = Article.objects.filter(title__startswith="O")


class DetailWithoutModel(VersionedMixin, DetailView):
    pass


class Unversioned(VersionedMixin, View):
    def get(self, request: HttpRequest) -> HttpResponseBase:
        return HttpResponse("never")


# Drop-in decorators with validator functions that use the ORM, on async views: an
# ``async def`` etag_func awaits the async ORM; a plain one must run off the event loop.


async def _title_etag_async(request: HttpRequest, pk: int) -> str | None:
    title = await Article.objects.filter(pk=pk).values_list("title", flat=True).afirst()
    return None if title is None else f"title-{title}"


def _title_etag_sync(request: HttpRequest, pk: int) -> str | None:
    title = Article.objects.filter(pk=pk).values_list("title", flat=True).first()
    return None if title is None else f"title-{title}"


@condition(etag_func=_title_etag_async)
async def dropin_async_func(request: HttpRequest, pk: int) -> HttpResponse:
    CALLS["dropin_async_func"] += 1
    return HttpResponse("async etag_func")


@condition(etag_func=_title_etag_sync)
async def dropin_sync_func(request: HttpRequest, pk: int) -> HttpResponse:
    CALLS["dropin_sync_func"] += 1
    return HttpResponse("sync etag_func")


# Owner-only documents (RFC 9110 §13.2.1): anyone but the owner gets the view's own 404, the same
# for a document that exists and one that never existed; never a 304, 412 or 428 with validators.


def own_document(request: HttpRequest, pk: int) -> bool:
    """The access check the views run first (``visible=``); the views check again inside."""
    user_pk = getattr(request.user, "pk", None)
    return bool(Document.objects.filter(pk=pk, owner_id=user_pk).exists())


async def aown_document(request: HttpRequest, pk: int) -> bool:
    # ``request.user`` is lazy and may query: off the event loop (``auser`` is Django 5.0+).
    return await sync_to_async(own_document)(request, pk)


def _document_modified(request: HttpRequest, pk: int) -> datetime | None:
    found: datetime | None = (
        Document.objects.filter(pk=pk).values_list("updated_at", flat=True).first()
    )
    return found


def _document_payload(document: Document) -> dict[str, Any]:
    return {"id": document.pk, "title": document.title}


def _document_view(name: str, request: HttpRequest, pk: int) -> HttpResponseBase:
    CALLS[name] += 1
    user_pk = getattr(request.user, "pk", None)
    try:
        document = Document.objects.get(pk=pk, owner_id=user_pk)
    except Document.DoesNotExist:
        raise Http404("no such document") from None
    if request.method in ("PUT", "PATCH"):
        document.title = json.loads(request.body or b"{}").get("title", document.title)
        document.save()
    elif request.method == "DELETE":
        document.delete()
        return HttpResponse(status=204)
    return JsonResponse(_document_payload(document))


@versioned(
    ObjectOf(Document),
    last_modified=_document_modified,
    require_precondition=True,
    visible=own_document,
)
def document(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _document_view("document", request, pk)


@versioned(
    ObjectOf(Document),
    last_modified=_document_modified,
    require_precondition=True,
    visible=aown_document,
)
async def adocument(request: HttpRequest, pk: int) -> HttpResponseBase:
    CALLS["adocument"] += 1
    user_pk = await sync_to_async(lambda: getattr(request.user, "pk", None))()
    found = await Document.objects.filter(pk=pk, owner_id=user_pk).afirst()
    if found is None:
        raise Http404("no such document")
    return JsonResponse(_document_payload(found))


def _document_etag(request: HttpRequest, pk: int) -> str | None:
    title = Document.objects.filter(pk=pk).values_list("title", flat=True).first()
    return None if title is None else f"title-{title}"


@etag(_document_etag, visible=own_document)
def dropin_document(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _document_view("dropin_document", request, pk)


class DocumentDetail(VersionedMixin, _Text, DetailView):  # type: ignore[misc]
    model = Document
    version_last_modified = _document_modified

    def get_queryset(self) -> Any:
        return Document.objects.filter(owner_id=getattr(self.request.user, "pk", None))

    def is_version_visible(self) -> bool | HttpResponseBase:
        return bool(self.get_queryset().filter(pk=self.kwargs["pk"]).exists())

    def text(self, context: dict[str, Any]) -> str:
        return str(context["object"].title)


class DocumentByFunction(DocumentDetail):
    """The same check declared as a function (``version_visible``)."""

    version_visible = own_document
    is_version_visible = VersionedMixin.is_version_visible


# Writes that create (RFC 9110 §15.3.2) or transform (§9.3.4) -------------------------------


@versioned(CollectionOf(Article))
def article_collection(request: HttpRequest) -> HttpResponseBase:
    """POST creates an article: 201, ``Location`` (``?at=cbv``: the class-based detail view;
    ``?at=elsewhere``: a URL that is no versioned view), and the ETag the write path adds."""
    CALLS["article_collection"] += 1
    if request.method != "POST":
        return JsonResponse([_payload(a) for a in Article.objects.all()], safe=False)
    data = json.loads(request.body or b"{}")
    created = Article.objects.create(
        author_id=data["author"], title=data.get("title", ""), body=data.get("body", "")
    )
    prefix = {"cbv": "/cbv/articles/", "elsewhere": "/nowhere/"}.get(
        request.GET.get("at", ""), "/articles/"
    )
    response = JsonResponse(_payload(created), status=201)
    response.headers["Location"] = request.build_absolute_uri(f"{prefix}{created.pk}/")
    return response


@versioned(ObjectOf(Article), write_etag=False)
def article_stored_otherwise(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Stores the title upper-cased: its writes answer without an ETag (§9.3.4)."""
    CALLS["article_stored_otherwise"] += 1
    found = Article.objects.get(pk=pk)
    if request.method == "PUT":
        found.title = json.loads(request.body)["title"].upper()
        found.save()
    return JsonResponse(_payload(found))


@versioned(ObjectOf(Article))
def article_sometimes_transformed(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Marks the one response whose write changed what was sent (``transformed``)."""
    found = Article.objects.get(pk=pk)
    title = json.loads(request.body or b"{}").get("title", found.title)
    found.title = title.strip()
    found.save()
    response = JsonResponse(_payload(found))
    return transformed(response) if found.title != title else response


@versioned(ObjectOf(Article))
def article_accepted(request: HttpRequest, pk: int) -> HttpResponseBase:
    """A write answered 202 (queued): its response describes no stored state."""
    Article.objects.filter(pk=pk).update(title="queued")
    Article.objects.get(pk=pk).save()
    return HttpResponse(status=202)
