from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BlogConfig(AppConfig):
    name = "example_project.blog"
    label = "blog"
    verbose_name = _("Blog")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_conditional import track
        from example_project.blog.models import Article, Author, Comment, Tag

        # Every save/delete/m2m change bumps the object's version and its model's collection.
        track(Author)
        track(Tag)
        track(Article)
        # A new, edited or deleted comment also bumps its article (as Rails' `touch: true`).
        track(Comment, parents=("article",))
