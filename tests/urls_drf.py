"""URLs of the DRF tests (and of the gunicorn DRF test server)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from tests import drf_views

router = SimpleRouter()
router.register("articles", drf_views.ArticleViewSet, basename="article")
router.register("per-action", drf_views.PerActionViewSet, basename="per-action")
router.register("private", drf_views.PrivateArticleViewSet, basename="private")
router.register("owned", drf_views.OwnedArticleViewSet, basename="owned")
router.register("documents", drf_views.OwnDocumentViewSet, basename="document")
router.register(
    "normalising", drf_views.NormalisingArticleViewSet, basename="normalising"
)
router.register("per-user", drf_views.PerUserViewSet, basename="per-user")
router.register("versioned", drf_views.VersionedViewSet, basename="versioned")
router.register("throttled", drf_views.ThrottledViewSet, basename="throttled")
router.register("tags", drf_views.TagBySlugViewSet, basename="tag")
router.register("countries", drf_views.CountryViewSet, basename="country")

urlpatterns: list[URLPattern | URLResolver] = [
    path("function/<int:pk>/", drf_views.article_function),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("", include(router.urls)),
]
