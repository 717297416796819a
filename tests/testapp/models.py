"""Models used only by the test suite.

Tracked: ``Author`` (int pk) <- ``Article`` (int pk, parent ``author``, named collection
``by_author``, m2m ``tags``, ``TrackedManager``) <- ``Comment`` (parent ``article``, ``TrackedManager``);
``Tag`` (UUID pk, the other side of ``Article.tags``); ``Country`` (string pk).
``Review`` (nullable and ``to_field`` parents), ``Category`` (a self-referencing parent);
``Page`` (tracked) and its multi-table child ``SpecialPage`` (not tracked itself).
``Place`` (named collection ``by_city``) and its multi-table child ``Restaurant``, tracked itself
(parent ``chef``, a named collection read from its parent row's ``city``); ``Book`` (unique ``isbn``,
parent ``author``, named collection ``by_author``: upserts).
``Document`` (owner-only: its views answer 404 to anyone but its owner).
Not tracked: ``Note`` (a control: its changes bump nothing).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.conf import settings
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
    slug = models.SlugField(unique=True, null=True, blank=True)

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


class Page(models.Model):
    """Tracked; ``SpecialPage`` inherits from it (multi-table) without being tracked itself."""

    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title


class SpecialPage(Page):
    banner = models.CharField(max_length=100, blank=True)


class Review(models.Model):
    """Parents through a nullable ForeignKey and a ForeignKey to a non-pk field (``to_field``)."""

    article = models.ForeignKey(
        Article,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reviews",
    )
    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, to_field="slug", null=True, blank=True
    )
    stars = models.PositiveSmallIntegerField(default=3)

    def __str__(self) -> str:
        return f"{self.stars} stars"


class Category(models.Model):
    """A tree: a category bumps its ancestors (cycles are cut)."""

    name = models.CharField(max_length=50)
    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="children",
    )

    def __str__(self) -> str:
        return self.name


class Place(models.Model):
    name = models.CharField(max_length=100)
    city = models.CharField(max_length=50, blank=True)

    objects = TrackedManager()

    def __str__(self) -> str:
        return self.name


class Restaurant(Place):
    """Its representation includes its ``Place`` row: a change to that row changes it."""

    chef = models.ForeignKey(
        Author,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="restaurants",
    )
    stars = models.PositiveSmallIntegerField(default=0)

    objects: ClassVar[models.Manager[Restaurant]] = TrackedManager()


class Book(models.Model):
    isbn = models.CharField(max_length=20, unique=True)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=200)

    objects = TrackedManager()

    def __str__(self) -> str:
        return self.title


class Document(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents"
    )
    title = models.CharField(max_length=200)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title


def articles_by_author(article: Any) -> str:
    return collection_key(Article, "by_author", author=article.author_id)


track(Author)
track(Tag)
track(Country)
track(Article, parents=("author",), collections=[articles_by_author])
track(Comment, parents=("article",))
track(Page)
track(Review, parents=("article", "tag"))
track(Category, parents=("parent",))
track(Document)


def places_by_city(place: Any) -> str:
    return collection_key(Place, "by_city", city=place.city)


def restaurants_by_city(restaurant: Any) -> str:
    return collection_key(Restaurant, "by_city", city=restaurant.city)


def books_by_author(book: Any) -> str:
    return collection_key(Book, "by_author", author=book.author_id)


track(Place, collections=[places_by_city])
track(Restaurant, parents=("chef",), collections=[restaurants_by_city])
track(Book, parents=("author",), collections=[books_by_author])


class LateAuthorProxy(Author):
    """Defined after ``track(Author)`` ran (``class_prepared``)."""

    class Meta:
        proxy = True
