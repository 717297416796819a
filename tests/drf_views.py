"""DRF views of the DRF tests (tests/urls_drf.py), on the test app's tracked models.

``SERIALIZED`` counts serialised articles, so tests can prove a 304 never ran the serializer.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any, ClassVar

from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import (
    AllowAny,
    BasePermission,
    IsAuthenticated,
    IsAuthenticatedOrReadOnly,
)
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.versioning import QueryParameterVersioning
from rest_framework.views import exception_handler

from django_conditional.drf import (
    ConditionalModelViewSet,
    ConditionalReadOnlyModelViewSet,
    ETagField,
    conditional,
)
from django_conditional.drf.views import RequirePolicy
from django_conditional.resources import ObjectOf
from tests.testapp.models import Article, Country, Document, Tag

SERIALIZED: Counter[str] = Counter()
HANDLED: list[Exception] = []


class ArticleSerializer(serializers.ModelSerializer):
    etag = ETagField()

    class Meta:
        model = Article
        fields = ["id", "title", "body", "author", "etag"]

    def to_representation(self, instance: Any) -> Any:
        SERIALIZED["article"] += 1
        return super().to_representation(instance)


class TwoPerPage(PageNumberPagination):
    page_size = 2


class ArticleViewSet(ConditionalModelViewSet):
    queryset = Article.objects.all()
    serializer_class = ArticleSerializer
    pagination_class = TwoPerPage
    permission_classes = [IsAuthenticatedOrReadOnly]
    require_precondition: ClassVar[RequirePolicy] = True

    def perform_update(self, serializer: Any) -> None:
        # The gunicorn test widens the window between the check and the write.
        delay = float(os.environ.get("DRF_TEST_WRITE_DELAY", "0") or 0)
        if delay:
            time.sleep(delay)
        super().perform_update(serializer)


class PerActionViewSet(ArticleViewSet):
    """428 for PUT only; PATCH and DELETE may be unconditional."""

    require_precondition = {"update": True, "partial_update": False}


class PrivateArticleViewSet(ConditionalReadOnlyModelViewSet):
    queryset = Article.objects.all()
    serializer_class = ArticleSerializer
    permission_classes = [IsAuthenticated]


class TitleStartsWithOwner(BasePermission):
    """Object level: a user may read the articles whose title starts with their username."""

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return bool(obj.title.startswith(request.user.username))


class OwnedArticleViewSet(ConditionalReadOnlyModelViewSet):
    queryset = Article.objects.all()
    serializer_class = ArticleSerializer
    permission_classes = [IsAuthenticated & TitleStartsWithOwner]


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = ["id", "title"]


class OwnDocumentViewSet(ConditionalModelViewSet):
    """Scoped by ``get_queryset()`` alone, no object permission: ``conditional_check_object``."""

    serializer_class = DocumentSerializer
    permission_classes = [AllowAny]
    conditional_check_object = True

    def get_queryset(self) -> Any:
        return Document.objects.filter(owner_id=getattr(self.request.user, "pk", None))


class NormalisingArticleViewSet(ConditionalModelViewSet):
    """Stores titles upper-cased: its writes answer without an ETag (RFC 9110 §9.3.4)."""

    queryset = Article.objects.all()
    serializer_class = ArticleSerializer
    permission_classes = [AllowAny]
    conditional_write_etag = False

    def perform_update(self, serializer: Any) -> None:
        serializer.save(title=serializer.validated_data["title"].upper())

    def perform_create(self, serializer: Any) -> None:
        serializer.save(title=serializer.validated_data["title"].upper())


class PerUserViewSet(ConditionalReadOnlyModelViewSet):
    queryset = Article.objects.all()
    serializer_class = ArticleSerializer
    permission_classes = [AllowAny]
    conditional_per_user = True


class VersionedViewSet(ConditionalReadOnlyModelViewSet):
    queryset = Article.objects.all()
    serializer_class = ArticleSerializer
    permission_classes = [AllowAny]
    versioning_class = QueryParameterVersioning


class RefuseMarked(BaseThrottle):
    def allow_request(self, request: Any, view: Any) -> bool:
        return "HTTP_X_THROTTLE_ME" not in request.META


class ThrottledViewSet(ConditionalReadOnlyModelViewSet):
    queryset = Article.objects.all()
    serializer_class = ArticleSerializer
    permission_classes = [AllowAny]
    throttle_classes = [RefuseMarked]


class TagSerializer(serializers.ModelSerializer):
    etag = ETagField()

    class Meta:
        model = Tag
        fields = ["id", "name", "slug", "etag"]


class TagBySlugViewSet(ConditionalReadOnlyModelViewSet):
    queryset = Tag.objects.all()
    serializer_class = TagSerializer
    permission_classes = [AllowAny]
    lookup_field = "slug"


class CountrySerializer(serializers.ModelSerializer):
    class Meta:
        model = Country
        fields = ["code", "name"]


class CountryViewSet(ConditionalModelViewSet):
    """Client-named objects: ``If-None-Match: *`` on create refuses an existing code."""

    queryset = Country.objects.all()
    serializer_class = CountrySerializer
    permission_classes = [AllowAny]


@conditional(ObjectOf(Article), require_precondition=True)
@api_view(["GET", "PUT"])
def article_function(request: Any, pk: int) -> Response:
    SERIALIZED["function"] += 1
    article = Article.objects.get(pk=pk)
    if request.method == "PUT":
        article.title = request.data.get("title", article.title)
        article.save()
    return Response({"id": article.pk, "title": article.title})


def recording_exception_handler(exc: Exception, context: Any) -> Any:
    """A project's handler: records what it saw and marks the response."""
    HANDLED.append(exc)
    response = exception_handler(exc, context)
    if response is not None:
        response.headers["X-Project-Handler"] = type(exc).__name__
    return response
