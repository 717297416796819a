"""Property: after every committed write, each version key moved if the data it covers moved.

Random sequences of writes over a few rows (creates, saves with an explicit pk, moves between
parents, queryset and related-manager updates, upserts, ``bulk_update``, deletes, many-to-many
changes from both sides), each inside ``batch()`` or not, inside a savepoint that may roll back or
not. After each step a "content fingerprint" is computed from the database for every key (an
object's row, with what touches it: its many-to-many links, its children; a named collection's or
a table's rows) and checked against the versions:

- a fingerprint that changed has a version that changed (no stale 304);
- an existing row's object version is positive; a row that existed and is gone has a negative one.

Each example runs in a savepoint rolled back at its end (fast, on SQLite and PostgreSQL), its
steps' on-commit callbacks run as a commit would run them; the cache is cleared between examples.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

import pytest
from django.core.cache import caches
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from django_conditional import versions
from django_conditional.conf import conf
from django_conditional.tracking import batch
from tests.testapp.models import Article, Author, Book, Tag

pytestmark = pytest.mark.django_db

ok = versions.object_key
ck = versions.collection_key

ARTICLES = (101, 102, 103)
ISBNS = ("b1", "b2", "b3")

OPS = (
    "create",
    "save_pk",
    "move",
    "qs_update",
    "related_update",
    "upsert",
    "ignore",
    "bulk_update",
    "delete",
    "qs_delete",
    "delete_book",
    "m2m_add",
    "m2m_remove",
    "m2m_clear",
    "m2m_reverse_add",
    "m2m_reverse_clear",
)

step = st.tuples(
    st.sampled_from(OPS),
    st.integers(0, 2),  # which article / isbn
    st.integers(0, 2),  # which author
    st.integers(0, 1),  # which tag
    st.booleans(),  # inside batch()
    st.booleans(),  # inside a savepoint
    st.booleans(),  # which rolls back
)


class _Rollback(Exception):
    pass


def _article(index: int) -> Article | None:
    found: Article | None = Article.objects.filter(pk=ARTICLES[index]).first()
    return found


def _book_ops(op: str, a: int, author: Author, c: int) -> None:
    obj = Book(isbn=ISBNS[a], author=author, title=f"{op}{c}")
    if op == "upsert":
        Book.objects.bulk_create(
            [obj],
            update_conflicts=True,
            unique_fields=["isbn"],
            update_fields=["author", "title"],
        )
    elif op == "ignore":
        Book.objects.bulk_create([obj], ignore_conflicts=True)
    elif op == "delete_book":
        Book.objects.filter(isbn=ISBNS[a]).delete()


def _m2m_ops(op: str, article: Article | None, tag: Tag) -> None:
    if op == "m2m_reverse_clear":
        tag.articles.clear()
    elif article is None:
        return
    elif op == "m2m_add":
        article.tags.add(tag)
    elif op == "m2m_remove":
        article.tags.remove(tag)
    elif op == "m2m_clear":
        article.tags.clear()
    elif op == "m2m_reverse_add":
        tag.articles.add(article)


def _article_ops(op: str, a: int, author: Author, other: Author) -> None:
    article = _article(a)
    if op == "create" and article is None:
        Article.objects.create(pk=ARTICLES[a], author=author, title="created")
    elif op == "save_pk":
        Article(pk=ARTICLES[a], author=author, title=f"saved by {author.pk}").save()
    elif op == "move" and article is not None:
        article.author = author
        article.save()
    elif op == "qs_update":
        Article.objects.filter(author=other).update(author=author)
    elif op == "related_update":
        other.articles.update(title=f"related {author.pk}")
    elif op == "bulk_update":
        objs = list(Article.objects.filter(pk__in=ARTICLES[: a + 1]))
        for obj in objs:
            obj.author, obj.body = author, f"bulk {author.pk}"
        if objs:
            Article.objects.bulk_update(objs, ["author", "body"])
    elif op == "delete" and article is not None:
        article.delete()
    elif op == "qs_delete":
        Article.objects.filter(author=author).delete()


def _run(op: str, a: int, b: int, c: int, world: dict[str, Any]) -> None:
    authors, tags = world["authors"], world["tags"]
    if op in ("upsert", "ignore", "delete_book"):
        _book_ops(op, a, authors[b], c)
    elif op.startswith("m2m"):
        _m2m_ops(op, _article(a), tags[c])
    else:
        _article_ops(op, a, authors[b], authors[(b + 1) % 3])


def _seed(world: dict[str, Any]) -> None:
    """Two articles (one tagged) and a book to start from, so short sequences move rows."""
    authors, tags = world["authors"], world["tags"]
    Article.objects.create(pk=ARTICLES[0], author=authors[0], title="first")
    Article.objects.create(pk=ARTICLES[1], author=authors[1], title="second")
    Article.objects.get(pk=ARTICLES[0]).tags.add(tags[0])
    Book.objects.create(isbn=ISBNS[0], author=authors[0], title="book")


def _fingerprints(world: dict[str, Any]) -> dict[str, Any]:
    """Per key, what the key covers, read from the database now."""
    links: dict[Any, list[str]] = defaultdict(list)
    linked: dict[str, list[Any]] = defaultdict(list)
    for article_id, tag_id in Article.tags.through.objects.values_list(
        "article_id", "tag_id"
    ):
        links[article_id].append(str(tag_id))
        linked[str(tag_id)].append(article_id)
    articles = {
        pk: (pk, author_id, title, body, tuple(sorted(links[pk])))
        for pk, author_id, title, body in Article.objects.values_list(
            "pk", "author_id", "title", "body"
        )
    }
    books = {
        row[0]: row
        for row in Book.objects.values_list("pk", "isbn", "author_id", "title")
    }
    world["books_seen"].update(books)
    fp: dict[str, Any] = {
        ck(Article): sorted(articles.values()),
        ck(Book): sorted(books.values()),
    }
    for pk in ARTICLES:
        fp[ok(Article, pk)] = articles.get(pk)
    for pk in world["books_seen"]:
        fp[ok(Book, pk)] = books.get(pk)
    for author in world["authors"]:
        mine = sorted(row for row in articles.values() if row[1] == author.pk)
        theirs = sorted(row for row in books.values() if row[2] == author.pk)
        fp[ck(Article, "by_author", author=author.pk)] = mine
        fp[ck(Book, "by_author", author=author.pk)] = theirs
        fp[ok(author)] = (author.pk, mine, theirs)
    fp[ck(Author)] = [fp[ok(author)] for author in world["authors"]]
    for tag in world["tags"]:
        fp[ok(tag)] = (str(tag.pk), sorted(linked[str(tag.pk)]))
    fp[ck(Tag)] = [fp[ok(tag)] for tag in world["tags"]]
    return fp


def _check(
    before: dict[str, Any], after: dict[str, Any], world: dict[str, Any]
) -> None:
    current = versions.get_many(after)
    previous = world["versions"]
    stale = [
        key
        for key in after
        if after[key] != before.get(key) and current[key] == previous.get(key, 0)
    ]
    assert not stale, f"data changed, version did not: {stale}"
    for key, value in after.items():
        if not key.startswith("o:"):
            continue
        if value is not None:
            assert current[key] > 0, f"existing row {key} has version {current[key]}"
        elif key in world["existed"]:
            assert current[key] < 0, f"deleted row {key} has version {current[key]}"
    world["existed"].update(key for key, value in after.items() if value is not None)
    world["versions"] = current


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(
    steps=[
        ("create", 0, 0, 0, False, False, False),
        ("m2m_add", 0, 0, 0, False, False, False),
        ("delete", 0, 0, 0, False, False, False),
    ]
)
@given(steps=st.lists(step, min_size=1, max_size=8))
def test_versions_move_whenever_the_data_they_cover_moves(
    steps: list[tuple[str, int, int, int, bool, bool, bool]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    caches[conf.CACHE_ALIAS].clear()
    versions.clear_local_state()
    commit = lambda: django_capture_on_commit_callbacks(execute=True)  # noqa: E731
    with transaction.atomic():
        with commit():
            world: dict[str, Any] = {
                "authors": [Author.objects.create(name=f"a{i}") for i in range(3)],
                "tags": [Tag.objects.create(name=f"t{i}") for i in range(2)],
                "books_seen": {},
                "existed": set(),
                "versions": {},
            }
            _seed(world)
        before = _fingerprints(world)
        _check(before, before, world)
        for op, a, b, c, in_batch, savepoint, rollback in steps:
            with commit(), batch() if in_batch else contextlib.nullcontext():
                try:
                    with (
                        transaction.atomic() if savepoint else contextlib.nullcontext()
                    ):
                        _run(op, a, b, c, world)
                        if savepoint and rollback:
                            raise _Rollback
                except _Rollback:
                    pass
            after = _fingerprints(world)
            _check(before, after, world)
            before = after
        transaction.set_rollback(True)
