"""factory-boy factories for the demo blog: ``seed_demo`` and the test suite use these same ones."""

from __future__ import annotations

from typing import Any

import factory
from django.utils.text import slugify

from example_project.blog.models import Article, Author, Comment, Tag


class AuthorFactory(factory.django.DjangoModelFactory[Author]):
    class Meta:
        model = Author
        django_get_or_create = ("email",)

    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"author{n}@example.com")
    bio = factory.Faker("paragraph", nb_sentences=2)


class TagFactory(factory.django.DjangoModelFactory[Tag]):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")
    slug = factory.LazyAttribute(lambda tag: slugify(tag.name))


def _set_tags(article: Article, create: bool, extracted: Any, **kwargs: Any) -> None:
    if create and extracted:
        article.tags.set(extracted)


class ArticleFactory(factory.django.DjangoModelFactory[Article]):
    class Meta:
        model = Article
        skip_postgeneration_save = True

    title = factory.Faker("sentence", nb_words=6)
    body = factory.Faker("paragraph", nb_sentences=8)
    author = factory.SubFactory(AuthorFactory)
    published = True

    # ArticleFactory(tags=[t1, t2]) sets them through the m2m manager (so m2m_changed bumps).
    tags = factory.PostGeneration(_set_tags)


class CommentFactory(factory.django.DjangoModelFactory[Comment]):
    class Meta:
        model = Comment

    article = factory.SubFactory(ArticleFactory)
    name = factory.Faker("first_name")
    body = factory.Faker("sentence", nb_words=12)
