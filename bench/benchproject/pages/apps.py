from __future__ import annotations

from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "bench.benchproject.pages"
    label = "pages"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bench.benchproject.pages.models import Row
        from django_conditional import track

        track(Row)
