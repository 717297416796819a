"""The articles through Django REST framework: ``/drf/articles/`` and ``/drf/articles/<pk>/``.

The same data and rules as the JSON API in ``views``: reads are public and answer 304 from the
versions (no query, no serializer); writes need HTTP Basic credentials (demo/demo, DEMO ONLY, see
``auth``) with the model permission, and on an article a current ``If-Match`` (428 without one,
412 when stale, as problem details); every list item carries its own ``etag`` for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import serializers
from rest_framework.authentication import BasicAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import DjangoModelPermissionsOrAnonReadOnly

from django_conditional.drf import ConditionalModelViewSet, ETagField
from example_project.blog.models import Article, Tag
from example_project.blog.views import (
    API_LIST_RESOURCES,
    DETAIL_RESOURCES,
    PAGE_SIZE,
)

if TYPE_CHECKING:
    ArticleSerializerBase = serializers.ModelSerializer[Article]
else:
    ArticleSerializerBase = serializers.ModelSerializer


class ArticleSerializer(ArticleSerializerBase):
    url = serializers.HyperlinkedIdentityField(view_name="drf-article-detail")
    author_name = serializers.CharField(source="author.name", read_only=True)
    tags = serializers.SlugRelatedField(
        many=True, slug_field="name", queryset=Tag.objects.all(), required=False
    )
    etag = ETagField()

    class Meta:
        model = Article
        fields = [
            "id",
            "url",
            "etag",
            "title",
            "body",
            "author",
            "author_name",
            "tags",
            "published",
            "created_at",
            "updated_at",
        ]


class ArticlePagination(PageNumberPagination):
    page_size = PAGE_SIZE


class ArticleViewSet(ConditionalModelViewSet):
    """Articles. PUT replaces one, PATCH changes the fields it sends, DELETE removes it: each
    with the article's current ``If-Match`` (its ``ETag``, or the ``etag`` of a list item)."""

    queryset = Article.objects.select_related("author").prefetch_related("tags")
    serializer_class = ArticleSerializer
    pagination_class = ArticlePagination
    authentication_classes = [BasicAuthentication]  # DEMO ONLY: see auth
    permission_classes = [DjangoModelPermissionsOrAnonReadOnly]
    # What the representations show: an article (its tags and comments bump it), author names
    # and tag names; a list page shows every article.
    conditional_resources = DETAIL_RESOURCES
    conditional_list_resources = API_LIST_RESOURCES
    require_precondition = True  # 428 for PUT, PATCH and DELETE without If-Match

    def get_queryset(self) -> Any:
        return super().get_queryset().order_by("-created_at", "-pk")
