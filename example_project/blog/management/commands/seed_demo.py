"""Fill the demo with authors, tags, ~50 articles and comments, and the demo users. Idempotent."""

from __future__ import annotations

import random
from typing import Any

import factory.random
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from example_project.blog.factories import (
    ArticleFactory,
    AuthorFactory,
    CommentFactory,
    TagFactory,
)
from example_project.blog.models import Article, Author, Tag

TAG_NAMES = ("django", "http", "caching", "performance", "python", "rfc9110", "web")
AUTHORS = (
    ("Ada Lovelace", "ada@example.com"),
    ("Tim Berners-Lee", "tim@example.com"),
    ("Roy Fielding", "roy@example.com"),
    ("Grace Hopper", "grace@example.com"),
    ("Guido van Rossum", "guido@example.com"),
)
DEMO_PERMISSIONS = ("add_article", "change_article", "delete_article")


class Command(BaseCommand):
    help = (
        "Seed the demo blog (authors, tags, articles, comments) and the users admin/admin "
        "(superuser) and demo/demo (may add, change and delete articles). Running it again "
        "creates nothing new."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--articles",
            type=int,
            default=50,
            help="How many articles the demo should hold (default 50).",
        )
        parser.add_argument(
            "--seed", type=int, default=9110, help="Random seed (default 9110)."
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        seed: int = options["seed"]
        factory.random.reseed_random(seed)
        rng = random.Random(seed)

        self._users()
        tags = [TagFactory(name=name) for name in TAG_NAMES]
        authors = [AuthorFactory(name=name, email=email) for name, email in AUTHORS]

        missing = max(0, options["articles"] - Article.objects.count())
        for _ in range(missing):
            article = ArticleFactory(
                author=rng.choice(authors), tags=rng.sample(tags, k=rng.randint(1, 3))
            )
            for _ in range(rng.randint(0, 4)):
                CommentFactory(article=article)

        self.stdout.write(
            f"seed_demo: {Author.objects.count()} authors, {Tag.objects.count()} tags, "
            f"{Article.objects.count()} articles ({missing} new); users admin/admin and demo/demo."
        )

    def _users(self) -> None:
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", "admin")
        demo = User.objects.filter(username="demo").first()
        if demo is None:
            demo = User.objects.create_user("demo", "demo@example.com", "demo")
        demo.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="blog", codename__in=DEMO_PERMISSIONS
            )
        )
