"""Models used only by the test suite.

Tracked: ``Author`` (int pk) <- ``Article`` (int pk, parent ``author``, named collection
``by_author``, m2m ``tags``, ``TrackedManager``) <- ``Comment`` (parent ``article``, ``TrackedManager``);
``Tag`` (UUID pk, the other side of ``Article.tags``); ``Country`` (string pk).
Not tracked: ``Note`` (a control: its changes bump nothing).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models

from django_conditional.tracking import TrackedManager, track
from django_conditional.versions import collection_key


class Author(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class AuthorProxy(Author):
    """Defined before ``track(Author)`` runs: its signals must be tracked too."""

    class Meta:
        proxy = True


class Tag(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name


class Article(models.Model):
    author = models.ForeignKey(
        Author, on_delete=models.CASCADE, related_name="articles"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="articles")
    updated_at = models.DateTimeField(auto_now=True)

    objects = TrackedManager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title


class Comment(models.Model):
    article = models.ForeignKey(
        Article, on_delete=models.CASCADE, related_name="comments"
    )
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TrackedManager()

    def __str__(self) -> str:
        return self.body[:30]


class Country(models.Model):
    code = models.CharField(max_length=8, primary_key=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Note(models.Model):
    text = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.text


def articles_by_author(article: Any) -> str:
    return collection_key(Article, "by_author", author=article.author_id)


track(Author)
track(Tag)
track(Country)
track(Article, parents=("author",), collections=[articles_by_author])
track(Comment, parents=("article",))


class LateAuthorProxy(Author):
    """Defined after ``track(Author)`` ran (``class_prepared``)."""

    class Meta:
        proxy = True
