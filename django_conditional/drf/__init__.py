"""Django REST framework integration: conditional requests for views, viewsets and ``@api_view``.

Install with ``pip install "django-conditional[drf]"``. Importing this package imports DRF (and,
when installed, registers the drf-spectacular extension); ``import django_conditional`` alone
never does. See ``docs/drf.md``::

    from django_conditional.drf import ConditionalModelViewSet, ETagField

    class ArticleViewSet(ConditionalModelViewSet):
        queryset = Article.objects.all()
        serializer_class = ArticleSerializer        # with  etag = ETagField()
        require_precondition = True                 # 428 for PUT, PATCH, DELETE without If-Match
"""

from __future__ import annotations

from importlib.util import find_spec

from .exceptions import ConditionalProblem, PreconditionFailed, PreconditionRequired
from .fields import ETagField
from .resources import ObjectByLookup
from .sources import APISource
from .views import ConditionalAPIMixin
from .viewsets import (
    ConditionalCreateModelMixin,
    ConditionalGenericViewSet,
    ConditionalListCreateAPIView,
    ConditionalModelViewSet,
    ConditionalReadOnlyModelViewSet,
    ConditionalRetrieveUpdateDestroyAPIView,
    conditional,
)

if find_spec("drf_spectacular") is not None:
    from . import schema  # noqa: F401  (registers the OpenAPI extension)

__all__ = [
    "APISource",
    "ConditionalAPIMixin",
    "ConditionalCreateModelMixin",
    "ConditionalGenericViewSet",
    "ConditionalListCreateAPIView",
    "ConditionalModelViewSet",
    "ConditionalProblem",
    "ConditionalReadOnlyModelViewSet",
    "ConditionalRetrieveUpdateDestroyAPIView",
    "ETagField",
    "ObjectByLookup",
    "PreconditionFailed",
    "PreconditionRequired",
    "conditional",
]
