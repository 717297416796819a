from __future__ import annotations

from django.urls import path, register_converter

from example_project.blog import views


class PrimaryKeyConverter:
    """A positive integer that fits a 64-bit column: a longer one is a 404, never a database
    overflow (which Django < 5.0 lets through as a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(PrimaryKeyConverter, "pk")

app_name = "blog"

urlpatterns = [
    path("articles/", views.article_list, name="article-list"),
    path("articles/<pk:pk>/", views.article_detail, name="article-detail"),
    path("about/", views.about, name="about"),
    path("api/articles/", views.api_article_list, name="api-article-list"),
    path("api/articles/<pk:pk>/", views.api_article, name="api-article"),
]
