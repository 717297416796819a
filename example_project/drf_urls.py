"""The DRF pages of the demo (only when Django REST framework is installed: ``[drf]`` extra)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from example_project.blog.api import ArticleViewSet

router = SimpleRouter()
router.register("articles", ArticleViewSet, basename="drf-article")

urlpatterns: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="drf-schema"),
    path("", include(router.urls)),
]
