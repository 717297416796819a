"""Automatic bumps: every way a tracked object can change moves its version and its ETag."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction

import django_conditional
from django_conditional import tracking, versions
from django_conditional.conf import conf
from django_conditional.models import ResourceVersion
from django_conditional.signals import version_bumped
from django_conditional.sources.versions import version_etag
from django_conditional.tracking import TrackedQuerySet, batch, track, tracked
from tests.testapp.models import (
    Article,
    Author,
    AuthorProxy,
    Category,
    Comment,
    Country,
    LateAuthorProxy,
    Note,
    Page,
    Review,
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


def etag(*keys: str) -> str:
    return str(version_etag(versions.get_many(keys)))


def v(key: str) -> int:
    return versions.get(key)


@pytest.fixture
def author(commit):
    with commit():
        return Author.objects.create(name="Ann")


@pytest.fixture
def article(commit, author):
    with commit():
        return Article.objects.create(author=author, title="One")


def by_author(author_id) -> str:
    return ck(Article, "by_author", author=author_id)


# ---------------------------------------------------------------------------------------------
# save / delete


def test_create_bumps_object_and_collection(author):
    assert v(ok(author)) == 1
    assert v(ck(Author)) == 1


def test_save_changes_the_etag(commit, author):
    before = etag(ok(author))
    with commit():
        author.name = "Bob"
        author.save()
    assert v(ok(author)) == 2
    assert etag(ok(author)) != before


def test_delete_marks_deleted_and_bumps_collection(commit, author):
    pk = author.pk
    before = etag(ok(Author, pk), ck(Author))
    with commit():
        author.delete()
    assert v(ok(Author, pk)) == -2
    assert v(ck(Author)) == 2
    assert etag(ok(Author, pk), ck(Author)) != before


def test_int_uuid_and_string_pks(commit):
    with commit():
        tag = Tag.objects.create(name="t")
        country = Country.objects.create(code="fr", name="France")
    assert isinstance(tag.pk, uuid.UUID)
    assert v(ok(Tag, tag.pk)) == 1
    assert v(ok(Tag, str(tag.pk))) == 1
    assert v(ok(Country, "fr")) == 1
    with commit():
        country.delete()
    assert v(ok(Country, "fr")) == -2


def test_untracked_model_bumps_nothing(commit):
    with commit():
        note = Note.objects.create(text="x")
        note.delete()
    assert not ResourceVersion.objects.exists()


def test_proxies_are_tracked(commit, author):
    with commit():
        proxy = AuthorProxy.objects.get(pk=author.pk)
        proxy.name = "via proxy"
        proxy.save()
    assert v(ok(author)) == 2
    with commit():
        late = LateAuthorProxy.objects.get(pk=author.pk)
        late.save()
    assert v(ok(author)) == 3
    assert ok(late) == ok(author)


def test_multi_table_child_bumps_its_tracked_parent_model(commit):
    with commit():
        special = SpecialPage.objects.create(title="t", banner="b")
    assert v(ok(Page, special.pk)) == 1
    assert v(ck(Page)) == 1
    assert v(ok(special)) == 1  # the child's own keys too
    assert v(ck(SpecialPage)) == 1
    before = etag(ok(Page, special.pk), ck(Page))
    with commit():
        special.banner = "changed"
        special.save()
    assert v(ok(Page, special.pk)) == 2
    assert etag(ok(Page, special.pk), ck(Page)) != before
    pk = special.pk
    with commit():
        special.delete()
    assert v(ok(Page, pk)) < 0
    assert v(ok(SpecialPage, pk)) < 0


def test_multi_table_parent_alone(commit):
    with commit():
        page = Page.objects.create(title="p")
    assert v(ok(page)) == 1
    assert v(ck(SpecialPage)) == 0


def test_named_collection_and_parent_on_create(article, author):
    assert v(ok(article)) == 1
    assert v(ck(Article)) == 1
    assert v(by_author(author.pk)) == 1
    assert v(ok(author)) == 2  # created, then touched by its article
    assert v(ck(Author)) == 2


def test_moving_between_collections_bumps_both(commit, article, author):
    with commit():
        other = Author.objects.create(name="Other")
    old_etag = etag(by_author(author.pk))
    new_etag = etag(by_author(other.pk))
    with commit():
        article.author = other
        article.save()
    assert v(by_author(author.pk)) == 2
    assert v(by_author(other.pk)) == 1
    assert v(ok(author)) == 3  # the old parent is touched too
    assert etag(by_author(author.pk)) != old_etag
    assert etag(by_author(other.pk)) != new_etag


def test_child_bumps_parent_recursively(commit, article, author):
    article_before = etag(ok(article))
    author_before = v(ok(author))
    with commit():
        comment = Comment.objects.create(article=article, body="hi")
    assert v(ok(comment)) == 1
    assert v(ck(Comment)) == 1
    assert v(ok(article)) == 2
    assert v(by_author(author.pk)) == 2  # the parent's own named collection
    assert v(ok(author)) == author_before + 1  # the grandparent
    assert etag(ok(article)) != article_before


def test_save_with_update_fields_skips_the_old_row_query(
    commit, article, django_assert_num_queries
):
    with commit():
        comment = Comment.objects.create(article=article, body="hi")
    comment = Comment.objects.get(pk=comment.pk)  # its article is not loaded
    # UPDATE comment, the article read for its named collection and grandparent, the upsert;
    # no read of the old comment row, since its parent field is not saved.
    with commit(), django_assert_num_queries(3):
        comment.body = "edited"
        comment.save(update_fields=["body"])
    assert v(ok(comment)) == 2


def test_moving_a_child_bumps_both_parents(commit, article, author):
    with commit():
        comment = Comment.objects.create(article=article, body="hi")
        second = Article.objects.create(author=author, title="Two")
    first_version = v(ok(article))
    with commit():
        comment.article = second
        comment.save(update_fields=["article"])
    assert v(ok(article)) == first_version + 1
    assert v(ok(second)) == 2


def test_deleting_a_parent_cascades(commit, article):
    with commit():
        comment = Comment.objects.create(article=article, body="hi")
    comment_key, article_key = ok(comment), ok(article)
    with commit():
        article.delete()
    assert v(comment_key) < 0
    assert v(article_key) < 0


def test_nullable_parent(commit):
    with commit():
        review = Review.objects.create(stars=5)
    assert v(ok(review)) == 1
    assert (
        ResourceVersion.objects.filter(key__startswith="o:testapp.article").count() == 0
    )


def test_parent_through_a_to_field_foreign_key(commit):
    with commit():
        tag = Tag.objects.create(name="t", slug="python")
        review = Review.objects.create(tag=tag)
    assert v(ok(tag)) == 2  # created, then touched by its review
    with commit():
        review = Review.objects.get(pk=review.pk)  # the tag is not loaded: read by slug
        review.stars = 1
        review.save()
    assert v(ok(tag)) == 3
    with commit():
        Review.objects.filter(pk=review.pk).update(stars=2)  # default manager: no bump
        Tag.objects.filter(pk=tag.pk).update(slug="renamed")
        review = Review.objects.get(pk=review.pk)
        review.save(
            update_fields=["stars"]
        )  # no tag "python" now: only the tag table is bumped
        Tag.objects.filter(pk=tag.pk).update(slug="python")
    assert v(ok(tag)) == 3
    assert v(ck(Tag)) == 4


def test_a_cached_parent_that_no_longer_matches_is_not_used(commit, article, author):
    with commit():
        other = Author.objects.create(name="Other")
        comment = Comment.objects.create(article=article, body="x")
    second = Article.objects.create(author=other, title="Two")
    comment.article_id = second.pk  # the cached ``comment.article`` is now stale
    with commit():
        comment.save()
    assert v(by_author(other.pk)) == 2  # read from the database, not the stale cache


def test_ancestors_are_bumped_and_cycles_cut(commit):
    with commit():
        root = Category.objects.create(name="root")
        child = Category.objects.create(name="child", parent=root)
        leaf = Category.objects.create(name="leaf", parent=child)
    assert v(ok(root)) == 3  # itself, then each descendant
    Category.objects.filter(pk=root.pk).update(parent=leaf)  # a cycle, behind its back
    with commit():
        leaf = Category.objects.get(pk=leaf.pk)
        leaf.save()
    assert v(ok(root)) == 4
    assert v(ok(child)) == 3
    assert v(ok(leaf)) == 2


def test_a_parent_deleted_in_the_same_transaction(commit, article):
    with commit():
        comment = Comment.objects.create(article=article, body="x")
    comment = Comment.objects.get(pk=comment.pk)
    with commit(), transaction.atomic():
        Article.objects.filter(pk=article.pk)._raw_delete(using="default")
        comment.save()  # its article is gone: the article's own keys are bumped anyway
        Comment.objects.filter(pk=comment.pk)._raw_delete(using="default")
    assert v(ok(article)) == 3


def test_a_row_deleted_behind_our_back_before_save(commit, article):
    with commit():
        other = Author.objects.create(name="Other")
    Article.objects.filter(pk=article.pk)._raw_delete(using="default")
    with commit():
        article.author = other
        article.save()  # no old row: inserted again, the new keys are bumped
    assert v(by_author(other.pk)) == 1


# ---------------------------------------------------------------------------------------------
# many-to-many, from both sides


@pytest.fixture
def tag(commit):
    with commit():
        return Tag.objects.create(name="django")


def test_m2m_add_forward(commit, article, tag):
    before = etag(ok(article), ok(tag))
    with commit():
        article.tags.add(tag)
    assert v(ok(article)) == 2
    assert v(ok(tag)) == 2
    assert v(ck(Tag)) == 2
    assert etag(ok(article), ok(tag)) != before


def test_m2m_add_reverse(commit, article, tag):
    with commit():
        tag.articles.add(article)
    assert v(ok(article)) == 2
    assert v(ok(tag)) == 2
    assert v(by_author(article.author_id)) == 2


def test_m2m_remove_both_sides(commit, article, tag):
    with commit():
        article.tags.add(tag)
    with commit():
        article.tags.remove(tag)
    assert (v(ok(article)), v(ok(tag))) == (3, 3)
    with commit():
        tag.articles.add(article)
    with commit():
        tag.articles.remove(article)
    assert (v(ok(article)), v(ok(tag))) == (5, 5)


def test_m2m_clear_forward_bumps_the_removed_side(commit, article, tag):
    with commit():
        other = Tag.objects.create(name="other")
        untouched = Tag.objects.create(name="untouched")
        article.tags.add(tag, other)
    before = etag(ok(tag), ok(other))
    with commit():
        article.tags.clear()
    assert v(ok(tag)) == 3
    assert v(ok(other)) == 3
    assert v(ok(untouched)) == 1
    assert v(ok(article)) == 3
    assert etag(ok(tag), ok(other)) != before


def test_m2m_clear_reverse_bumps_the_articles(commit, article, tag, author):
    with commit():
        second = Article.objects.create(author=author, title="Two")
        tag.articles.add(article, second)
    article_version, second_version = v(ok(article)), v(ok(second))
    with commit():
        tag.articles.clear()
    assert v(ok(article)) == article_version + 1
    assert v(ok(second)) == second_version + 1
    assert not article.tags.exists()


def test_m2m_between_untracked_models_is_ignored(commit, django_assert_num_queries):
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.create(name="g")
    permission = Permission.objects.first()
    with commit():
        group.permissions.add(permission)
        group.permissions.clear()
    assert not ResourceVersion.objects.exists()


def test_m2m_set_bumps(commit, article, tag):
    with commit():
        article.tags.set([tag])
    with commit():
        article.tags.set([])
    assert v(ok(tag)) == 3


# ---------------------------------------------------------------------------------------------
# Bulk paths (TrackedQuerySet)


def test_queryset_update_bumps_every_row(commit, author):
    with commit():
        a1 = Article.objects.create(author=author, title="a")
        a2 = Article.objects.create(author=author, title="b")
        a3 = Article.objects.create(author=author, title="c")
    before = etag(ok(a1), ok(a2))
    collection_before = v(ck(Article))
    with commit():
        assert Article.objects.filter(title__in=["a", "b"]).update(body="x") == 2
    assert (v(ok(a1)), v(ok(a2)), v(ok(a3))) == (2, 2, 1)
    assert v(ck(Article)) == collection_before + 1
    assert etag(ok(a1), ok(a2)) != before
    assert Article.objects.filter(body="x").count() == 2


def test_queryset_update_moving_collections(commit, article, author):
    with commit():
        other = Author.objects.create(name="Other")
    with commit():
        Article.objects.filter(pk=article.pk).update(author=other)
    assert v(by_author(author.pk)) == 2
    assert v(by_author(other.pk)) == 1
    assert v(ok(other)) == 2


def test_queryset_update_of_nothing(commit):
    with commit():
        assert Article.objects.filter(title="none").update(body="x") == 0
    assert not ResourceVersion.objects.exists()


def test_bulk_create(commit, author):
    collection_before = v(ck(Article))
    with commit():
        created = Article.objects.bulk_create(
            [Article(author=author, title=str(i)) for i in range(3)]
        )
    for obj in created:
        assert v(ok(obj)) == 1
    assert v(ck(Article)) == collection_before + 1
    assert v(by_author(author.pk)) == 1


def test_bulk_update(commit, author):
    with commit():
        other = Author.objects.create(name="Other")
        a1 = Article.objects.create(author=author, title="a")
        a2 = Article.objects.create(author=author, title="b")
    before = etag(ok(a1), ok(a2), by_author(author.pk))
    a1.title, a2.author = "A", other
    with commit():
        assert Article.objects.bulk_update([a1, a2], ["title", "author"]) == 2
    assert (v(ok(a1)), v(ok(a2))) == (2, 2)
    assert v(by_author(author.pk)) == 3  # a2 left it
    assert v(by_author(other.pk)) == 1  # a2 joined it
    assert etag(ok(a1), ok(a2), by_author(author.pk)) != before


def test_queryset_delete_batches_and_cascades(
    commit, author, django_assert_max_num_queries
):
    with commit():
        articles = [
            Article.objects.create(author=author, title=str(i)) for i in range(3)
        ]
        comments = [Comment.objects.create(article=a, body="c") for a in articles]
    before = etag(ck(Article), *(ok(a) for a in articles))
    with commit():
        deleted, _ = Article.objects.filter(author=author).delete()
    assert deleted == 6
    for obj in [*articles, *comments]:
        assert v(ok(obj)) < 0
    assert etag(ck(Article), *(ok(a) for a in articles)) != before


def test_plain_queryset_delete_of_a_tracked_model_is_covered(commit, author):
    # Author uses the default manager: post_delete is sent for every row since it has receivers.
    with commit():
        Author.objects.all().delete()
    assert v(ok(author)) < 0


def test_tracked_queryset_works_for_untracked_models(commit):
    note = Note.objects.create(text="x")
    with commit():
        assert TrackedQuerySet(Note).filter(pk=note.pk).update(text="y") == 1
    assert v(ok(note)) == 1
    assert v(ck(Note)) == 1


# ---------------------------------------------------------------------------------------------
# Raw SQL, transactions, signal


def test_raw_sql_with_bump(commit, author):
    before = etag(ok(author))
    table = connection.ops.quote_name(Author._meta.db_table)
    with commit():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET name = %s WHERE id = %s", ["raw", author.pk]
            )
        django_conditional.bump(ok(author), ck(Author))
    assert etag(ok(author)) != before
    assert v(ok(author)) == 2


def test_rolled_back_save_leaves_the_etag(commit, author):
    before = etag(ok(author), ck(Author))
    with commit(), pytest.raises(RuntimeError), transaction.atomic():
        author.name = "rolled back"
        author.save()
        Author.objects.create(name="also rolled back")
        raise RuntimeError
    assert etag(ok(author), ck(Author)) == before
    assert ResourceVersion.objects.get(key=ok(author)).version == 1


def test_version_bumped_fires_on_save(commit, author):
    received = []

    def receiver(keys, versions, **kwargs):
        received.append(versions)

    version_bumped.connect(receiver)
    try:
        with commit():
            author.save()
    finally:
        version_bumped.disconnect(receiver)
    assert received == [{ok(author): 2, ck(Author): 2}]


def test_batch_collects_and_nests(commit, author, django_assert_num_queries):
    with commit(), batch(), batch():
        author.name = "x"
        author.save()
        author.save()
        note = Note.objects.create(text="n")
    assert v(ok(author)) == 2  # one bump for the batch
    assert not ResourceVersion.objects.filter(key=ok(note)).exists()


def test_batch_keeps_a_deleted_object_deleted(commit, article):
    with commit():
        comment = Comment.objects.create(article=article, body="hi")
    keys = ok(article), ok(comment)
    with commit(), batch():
        article.delete()  # its comment's delete touches it too, in the same batch
    assert v(keys[0]) < 0
    assert v(keys[1]) < 0


def test_batch_rolls_back_with_its_block(commit, author):
    with commit(), pytest.raises(RuntimeError), batch():
        author.save()
        raise RuntimeError
    assert v(ok(author)) == 1


# ---------------------------------------------------------------------------------------------
# Registration


def test_track_registry():
    article_tracking = tracked(Article)
    assert article_tracking is not None
    assert article_tracking.parents == ("author",)
    assert tracked(AuthorProxy) is tracked(Author)
    assert tracked(Note) is None


def test_track_rejects_typos_and_non_foreign_keys():
    with pytest.raises(ImproperlyConfigured):
        track(Note, parents=("nope",))
    with pytest.raises(ImproperlyConfigured):
        track(Note, parents=("text",))
    assert tracked(Note) is None


def test_track_rejects_proxies():
    with pytest.raises(ImproperlyConfigured):
        track(AuthorProxy)


def test_track_and_untrack(commit):
    assert track(Note) is Note
    try:
        with commit():
            note = Note.objects.create(text="x")
        assert v(ok(note)) == 1
    finally:
        tracking.untrack(Note)
    tracking.untrack(Note)  # twice is fine
    with commit():
        note.save()
    assert v(ok(note)) == 1


def test_collections_may_return_none_or_several(commit):
    calls = []

    def several(note):
        calls.append(note.pk)
        return [ck(Note, "a"), ck(Note, "b")] if note.text == "x" else None

    track(Note, collections=[several])
    try:
        with commit():
            note = Note.objects.create(text="x")
        assert (v(ck(Note, "a")), v(ck(Note, "b"))) == (1, 1)
        with commit():
            note.text = "y"
            note.save()  # the old row (text x) still names a and b
        assert (v(ck(Note, "a")), v(ck(Note, "b"))) == (2, 2)
        with commit():
            note.save()  # neither the old nor the new row names them
        assert (v(ck(Note, "a")), v(ck(Note, "b"))) == (2, 2)
    finally:
        tracking.untrack(Note)


def test_lazy_package_exports():
    assert django_conditional.track is track
    assert django_conditional.bump is versions.bump
    with pytest.raises(AttributeError):
        django_conditional.nope  # noqa: B018


def test_abstract_models_are_rejected():
    class Base(models.Model):
        class Meta:
            abstract = True
            app_label = "testapp"

    with pytest.raises(ImproperlyConfigured):
        track(Base)  # type: ignore[type-abstract]
