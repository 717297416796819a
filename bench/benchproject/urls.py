"""URLs of the benchmark project; bench/run.py names its cases after them."""

from __future__ import annotations

from typing import Any

from django.urls import path

from bench.benchproject.pages import views

urlpatterns: list[Any] = [
    path("page/full/", views.full_page),
    path("page/django-db/", views.django_db_page),
    path("page/django-cache/", views.django_cache_page),
    path("page/versioned/", views.versioned_page),
    path("floor/", views.floor),
    path("floor-b/", views.floor),
    path("floor-read/", views.floor_read),
    path("floor-304/", views.floor_304),
    path("body/<str:size>/plain/", views.body_view),
    path("body/<str:size>/django/", views.django_middleware_body),
    path("rows/<int:pk>/django/", views.django_write),
    path("rows/<int:pk>/app/", views.app_write),
]
if views.app_middleware_body is not None:
    urlpatterns.append(path("body/<str:size>/app/", views.app_middleware_body))
