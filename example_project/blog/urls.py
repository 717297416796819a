from __future__ import annotations

from django.urls import path

from example_project.blog import views

app_name = "blog"

urlpatterns = [
    path("articles/", views.article_list, name="article-list"),
    path("articles/<int:pk>/", views.article_detail, name="article-detail"),
    path("about/", views.about, name="about"),
    path("api/articles/", views.api_article_list, name="api-article-list"),
    path("api/articles/<int:pk>/", views.api_article, name="api-article"),
]
