"""Every write path bumps every key it affects, old and new (SQLite and PostgreSQL).

Each test names the path; together with ``test_tracking.py`` they cover saves, raw saves
(``loaddata``), upserts, bulk updates, related managers, multi-table inheritance, savepoints inside
``batch()`` and two concurrent transactions moving one row.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models.signals import pre_save

from django_conditional import tracking, versions
from django_conditional.conf import conf
from django_conditional.models import ResourceVersion
from django_conditional.tracking import TrackedQuerySet, batch
from tests.testapp.models import (
    Article,
    Author,
    Book,
    Comment,
    Note,
    Page,
    Place,
    Restaurant,
    SpecialPage,
    Tag,
)

pytestmark = pytest.mark.django_db

ok = versions.object_key
ck = versions.collection_key


@pytest.fixture(autouse=True)
def _clean_cache():
    caches[conf.CACHE_ALIAS].clear()
    versions.clear_local_state()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """``with commit(): ...`` runs the block and then its on-commit callbacks, as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def v(key: str) -> int:
    return versions.get(key)


def vs(*keys: str) -> dict[str, int]:
    return {key: v(key) for key in keys}


def assert_all_bumped(before: dict[str, int]) -> None:
    after = vs(*before)
    stale = [key for key in before if abs(after[key]) <= abs(before[key])]
    assert not stale, f"not bumped: {stale}"


def articles_by(author_id: Any) -> str:
    return ck(Article, "by_author", author=author_id)


def books_by(author_id: Any) -> str:
    return ck(Book, "by_author", author=author_id)


def restaurants_in(city: str) -> str:
    return ck(Restaurant, "by_city", city=city)


def places_in(city: str) -> str:
    return ck(Place, "by_city", city=city)


@pytest.fixture
def authors(commit):
    with commit():
        return Author.objects.create(name="Ann"), Author.objects.create(name="Bob")


@pytest.fixture
def article(commit, authors):
    with commit():
        return Article.objects.create(author=authors[0], title="One")


def write_fixture(tmp_path, records: list[dict[str, Any]]) -> str:
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(records))
    return str(path)


# ---------------------------------------------------------------------------------------------
# Saves with an explicit primary key, raw saves (loaddata)


def test_explicit_pk_save_over_an_existing_row_bumps_the_old_parent(
    commit, article, authors
):
    ann, bob = authors
    before = vs(articles_by(ann.pk), ok(ann), articles_by(bob.pk), ok(bob), ok(article))
    with commit():
        Article(pk=article.pk, author=bob, title="moved").save()
    assert_all_bumped(before)


def test_loaddata_over_existing_rows_bumps_the_old_parent(
    commit, article, authors, tmp_path
):
    ann, bob = authors
    fixture = write_fixture(
        tmp_path,
        [
            {
                "model": "testapp.article",
                "pk": article.pk,
                "fields": {
                    "author": bob.pk,
                    "title": "from a fixture",
                    "body": "",
                    "updated_at": "2024-01-01T00:00:00Z",
                    "tags": [],
                },
            }
        ],
    )
    before = vs(articles_by(ann.pk), ok(ann), articles_by(bob.pk), ok(bob), ok(article))
    with commit():
        call_command("loaddata", fixture, verbosity=0)
    assert Article.objects.get(pk=article.pk).author_id == bob.pk
    assert_all_bumped(before)


# ---------------------------------------------------------------------------------------------
# Upserts (bulk_create with update_conflicts / ignore_conflicts)


@pytest.fixture
def book(commit, authors):
    with commit():
        return Book.objects.create(isbn="111", author=authors[0], title="First")


def test_upsert_moving_an_existing_row_bumps_old_and_new_parents(commit, book, authors):
    ann, bob = authors
    before = vs(
        ok(book), books_by(ann.pk), ok(ann), books_by(bob.pk), ok(bob), ck(Book)
    )
    with commit():
        Book.objects.bulk_create(
            [
                Book(isbn="111", author=bob, title="Moved"),
                Book(isbn="222", author=bob, title="New"),
            ],
            update_conflicts=True,
            unique_fields=["isbn"],
            update_fields=["author", "title"],
        )
    assert_all_bumped(before)
    new = Book.objects.get(isbn="222")
    assert v(ok(new)) == 1


def test_upsert_of_objects_whose_pk_is_not_the_rows(commit):
    # A UUID pk is set on the instance: the conflicting row keeps its own pk, which Django does
    # not copy back. That row's key must be bumped, not the instance's.
    with commit():
        existing = Tag.objects.create(name="py", slug="python")
    before = vs(ok(existing), ck(Tag))
    with commit():
        tags: TrackedQuerySet[Tag] = TrackedQuerySet(Tag)
        tags.bulk_create(
            [Tag(name="Python", slug="python")],
            update_conflicts=True,
            unique_fields=["slug"],
            update_fields=["name"],
        )
    assert Tag.objects.get(pk=existing.pk).name == "Python"
    assert_all_bumped(before)


def test_ignore_conflicts_bumps_the_rows_it_inserted(commit, book, authors):
    ann, bob = authors
    with commit():
        created = Book.objects.bulk_create(
            [
                Book(isbn="111", author=bob, title="ignored"),
                Book(isbn="333", author=bob, title="inserted"),
            ],
            ignore_conflicts=True,
        )
    assert [obj.pk for obj in created] == [None, None]  # no ids back from the database
    inserted = Book.objects.get(isbn="333")
    assert v(ok(inserted)) == 1
    assert v(books_by(bob.pk)) == 1
    assert Book.objects.get(isbn="111").author_id == ann.pk


# ---------------------------------------------------------------------------------------------
# bulk_update, related managers


def test_related_manager_update_bumps_old_and_new_parents(commit, article, authors):
    ann, bob = authors
    before = vs(articles_by(ann.pk), ok(ann), articles_by(bob.pk), ok(bob), ok(article))
    with commit():
        assert ann.articles.update(author=bob) == 1
    assert_all_bumped(before)


def test_bulk_update_bumps_old_and_new_parents(commit, book, authors):
    ann, bob = authors
    before = vs(ok(book), books_by(ann.pk), ok(ann), books_by(bob.pk), ok(bob))
    book.author = bob
    with commit():
        Book.objects.bulk_update([book], ["author"])
    assert_all_bumped(before)


# ---------------------------------------------------------------------------------------------
# Multi-table inheritance: the child's representation includes its parent row


@pytest.fixture
def restaurant(commit, authors):
    with commit():
        return Restaurant.objects.create(name="Chez", city="Paris", chef=authors[0])


def restaurant_keys(restaurant: Restaurant, *cities: str) -> list[str]:
    return [
        ok(Restaurant, restaurant.pk),
        ck(Restaurant),
        ok(Place, restaurant.pk),
        ck(Place),
        ok(Author, restaurant.chef_id),
        *(restaurants_in(city) for city in cities),
        *(places_in(city) for city in cities),
    ]


def test_saving_the_parent_row_bumps_the_child(commit, restaurant):
    before = vs(*restaurant_keys(restaurant, "Paris", "Lyon"))
    with commit():
        place = Place.objects.get(pk=restaurant.pk)
        place.city = "Lyon"
        place.save()
    assert_all_bumped(before)


def test_updating_the_parent_rows_bumps_the_children(commit, restaurant):
    before = vs(*restaurant_keys(restaurant, "Paris", "Lyon"))
    with commit():
        assert Place.objects.filter(city="Paris").update(city="Lyon") == 1
    assert_all_bumped(before)


def test_loading_the_parent_row_bumps_the_child(commit, restaurant, tmp_path):
    fixture = write_fixture(
        tmp_path,
        [
            {
                "model": "testapp.place",
                "pk": restaurant.pk,
                "fields": {"name": "Chez", "city": "Lyon"},
            }
        ],
    )
    before = vs(*restaurant_keys(restaurant, "Paris", "Lyon"))
    with commit():
        call_command("loaddata", fixture, verbosity=0)
    assert_all_bumped(before)


def test_deleting_through_the_parent_row(commit, restaurant):
    before = vs(*restaurant_keys(restaurant, "Paris"))
    with commit():
        Place.objects.get(pk=restaurant.pk).delete()
    assert_all_bumped(before)
    assert v(ok(Restaurant, restaurant.pk)) < 0
    assert v(ok(Place, restaurant.pk)) < 0


def test_an_untracked_child_of_a_tracked_parent(commit):
    with commit():
        special = SpecialPage.objects.create(title="t", banner="b")
    before = vs(ok(SpecialPage, special.pk), ck(SpecialPage), ok(Page, special.pk))
    with commit():
        page = Page.objects.get(pk=special.pk)
        page.title = "changed through the parent"
        page.save()
    assert_all_bumped(before)


# ---------------------------------------------------------------------------------------------
# Savepoints inside batch()


def test_a_delete_rolled_back_in_a_savepoint_of_a_batch_is_not_a_delete(
    commit, authors
):
    ann = authors[0]
    key = ok(ann)
    with commit(), batch():
        with pytest.raises(RuntimeError), transaction.atomic():
            Author.objects.get(pk=ann.pk).delete()
            raise RuntimeError
        Author.objects.filter(pk=ann.pk).update(name="still here")
    assert Author.objects.filter(pk=ann.pk).exists()
    assert v(key) >= 1


def test_a_create_rolled_back_in_a_savepoint_of_a_batch_stays_deleted(commit, authors):
    ann = authors[0]
    pk = ann.pk
    with commit():
        ann.delete()
    with commit(), batch(), pytest.raises(RuntimeError), transaction.atomic():
        Author.objects.create(pk=pk, name="back")
        raise RuntimeError
    assert not Author.objects.filter(pk=pk).exists()
    assert v(ok(Author, pk)) < 0


def test_deleted_then_recreated_in_one_batch_is_live(commit, article, authors):
    pk = article.pk
    with commit(), batch():
        article.delete()
        Article.objects.create(pk=pk, author=authors[1], title="again")
    assert v(ok(Article, pk)) > 0


# ---------------------------------------------------------------------------------------------
# many-to-many reaches parents and named collections, from both sides


def test_m2m_changes_reach_the_parents_from_both_sides(commit, article, authors):
    ann = authors[0]
    with commit():
        tag = Tag.objects.create(name="t")
    for change in (
        lambda: article.tags.add(tag),
        lambda: tag.articles.remove(article),
        lambda: tag.articles.add(article),
        lambda: tag.articles.clear(),
        lambda: article.tags.set([tag]),
        lambda: article.tags.clear(),
    ):
        before = vs(ok(article), ok(tag), ok(ann), articles_by(ann.pk), ck(Tag))
        with commit():
            change()
        assert_all_bumped(before)


def test_deleting_a_row_bumps_its_many_to_many_partners(commit, article, authors):
    ann = authors[0]
    with commit():
        tag, other = Tag.objects.create(name="t"), Tag.objects.create(name="o")
        article.tags.add(tag, other)
    before = vs(ok(tag), ok(other), ck(Tag))
    with commit():
        article.delete()  # its links go without m2m_changed
    assert_all_bumped(before)
    with commit():
        second = Article.objects.create(author=ann, title="2")
        second.tags.add(tag)
    before = vs(ok(second), ok(ann), articles_by(ann.pk), ck(Article))
    with commit():
        tag.delete()  # from the other side
    assert_all_bumped(before)


def test_a_comment_moving_between_articles_reaches_both_authors(commit, authors):
    ann, bob = authors
    with commit():
        first = Article.objects.create(author=ann, title="1")
        second = Article.objects.create(author=bob, title="2")
        comment = Comment.objects.create(article=first, body="c")
    before = vs(ok(first), ok(second), ok(ann), ok(bob), articles_by(ann.pk))
    with commit():
        Comment.objects.filter(pk=comment.pk).update(article=second)
    assert_all_bumped(before)


# ---------------------------------------------------------------------------------------------
# A bump never raises once the data was written


def test_a_collection_function_that_raises_does_not_fail_the_save(commit, caplog):
    def broken(note: Note) -> str:
        raise ZeroDivisionError

    tracking.track(Note, collections=[broken])
    try:
        with commit(), caplog.at_level(logging.ERROR, logger="django_conditional"):
            note = Note.objects.create(text="x")
            note.text = "y"
            note.save()
        assert v(ok(note)) == 2
        assert v(ck(Note)) == 2
        assert "collections" in caplog.text
    finally:
        tracking.untrack(Note)


def test_an_oversized_collection_key_does_not_fail_the_save(commit, caplog):
    tracking.track(Note, collections=[lambda note: "c:testapp.note:" + "x" * 300])
    try:
        with commit(), caplog.at_level(logging.ERROR, logger="django_conditional"):
            note = Note.objects.create(text="x")
        assert v(ok(note)) == 1
        assert v(ck(Note)) == 1
    finally:
        tracking.untrack(Note)


# ---------------------------------------------------------------------------------------------
# Two concurrent transactions moving one row (PostgreSQL)


def _snapshot(article_pk: int, author_pks: list[int]) -> tuple[int, dict[int, int]]:
    """The article's author and each author's collection version, as this transaction sees them
    (from the database, not the cache)."""
    author_id = Article.objects.values_list("author_id", flat=True).get(pk=article_pk)
    rows = dict(
        ResourceVersion.objects.filter(
            key__in=[articles_by(pk) for pk in author_pks]
        ).values_list("key", "version")
    )
    return author_id, {pk: rows.get(articles_by(pk), 0) for pk in author_pks}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_moves_of_one_row_bump_every_collection_it_left(postgres_available):
    ann = Author.objects.create(name="Ann")
    bob = Author.objects.create(name="Bob")
    cid = Author.objects.create(name="Cid")
    article = Article.objects.create(author=ann, title="contended")
    pks = [ann.pk, bob.pk, cid.pk]
    snapshots = [_snapshot(article.pk, pks)]
    first_read = threading.Event()
    second_done = threading.Event()
    errors: list[BaseException] = []

    def pause_first(sender: Any, instance: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "first":
            first_read.set()  # the old row is read: let the second move run meanwhile
            second_done.wait(timeout=1.5)  # it cannot finish while the row is locked

    def move(to: Author) -> None:
        try:
            with transaction.atomic():
                obj = Article.objects.get(pk=article.pk)
                obj.author = to
                obj.save()
                snapshots.append(_snapshot(article.pk, pks))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            if threading.current_thread().name == "second":
                second_done.set()
            connection.close()

    pre_save.connect(pause_first, sender=Article, dispatch_uid="test.pause_first")
    try:
        first = threading.Thread(target=move, args=(bob,), name="first")
        second = threading.Thread(target=move, args=(cid,), name="second")
        first.start()
        assert first_read.wait(timeout=10)
        second.start()
        first.join(timeout=20)
        second.join(timeout=20)
    finally:
        pre_save.disconnect(sender=Article, dispatch_uid="test.pause_first")
    assert not errors
    snapshots.append(_snapshot(article.pk, pks))
    # Whenever the article entered or left an author's collection between two committed states,
    # that collection's version differs between them: no stale 304 for any of them.
    for i, (author_a, versions_a) in enumerate(snapshots):
        for author_b, versions_b in snapshots[i + 1 :]:
            for pk in pks:
                if (author_a == pk) != (author_b == pk):
                    assert versions_a[pk] != versions_b[pk], (pk, snapshots)
