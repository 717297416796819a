"""``manage.py bump_versions app_label.Model [pk ...] [--collection]``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from django_conditional import versions
from example_project.blog.factories import ArticleFactory
from example_project.blog.models import Article
from example_project.blog.testing import reset_version_cache

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_cache():
    reset_version_cache()
    yield
    reset_version_cache()


def bump(*args: str) -> str:
    out = StringIO()
    call_command("bump_versions", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_bumps_the_objects_named_by_primary_key():
    first, second, untouched = ArticleFactory.create_batch(3)
    keys = [versions.object_key(a) for a in (first, second, untouched)]
    before = versions.get_many(keys)

    output = bump("blog.Article", str(first.pk), str(second.pk))

    after = versions.get_many(keys)
    assert after[keys[0]] == before[keys[0]] + 1
    assert after[keys[1]] == before[keys[1]] + 1
    assert after[keys[2]] == before[keys[2]]
    assert f"{keys[0]} -> version {after[keys[0]]}" in output
    collection = versions.collection_key(Article)
    assert collection not in output


def test_collection_flag_also_bumps_the_whole_collection():
    article = ArticleFactory.create()
    keys = [versions.object_key(article), versions.collection_key(Article)]
    before = versions.get_many(keys)

    bump("blog.Article", str(article.pk), "--collection")

    after = versions.get_many(keys)
    assert after == {key: before[key] + 1 for key in keys}


def test_without_primary_keys_the_collection_is_bumped():
    key = versions.collection_key(Article)
    before = versions.get(key)

    output = bump(
        "blog.article"
    )  # the model name is case-insensitive, as apps.get_model

    assert versions.get(key) == before + 1
    assert output.strip() == f"{key} -> version {before + 1}"


def test_the_bump_reaches_the_cache_so_every_worker_sees_it():
    article = ArticleFactory.create()
    key = versions.object_key(article)
    cached_before = versions.get(key)  # fills the cache

    bump("blog.Article", str(article.pk))

    # get_many answers from the cache when it holds the key: the command updated it on commit.
    assert versions.get_many([key]) == {key: cached_before + 1}


@pytest.mark.parametrize("label", ["blog.Nope", "nope.Article", "Article", "a.b.c"])
def test_unknown_model_is_a_clear_error(label):
    with pytest.raises(CommandError, match=r"Unknown model .*app_label\.ModelName"):
        bump(label)


def test_unknown_primary_key_is_a_clear_error_and_bumps_nothing():
    article = ArticleFactory.create()
    key = versions.object_key(article)
    before = versions.get(key)
    missing = article.pk + 1000

    with pytest.raises(
        CommandError, match=rf"No blog\.Article with primary key {missing}\b"
    ):
        bump("blog.Article", str(article.pk), str(missing))

    assert versions.get(key) == before


def test_invalid_primary_key_is_a_clear_error():
    with pytest.raises(CommandError, match="'abc' is not a valid primary key"):
        bump("blog.Article", "abc")


def test_warns_that_a_local_memory_cache_is_private_to_the_process(settings):
    ArticleFactory.create()
    settings.CACHES = {
        **settings.CACHES,
        "local": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "bump-versions-test",
        },
        "shared": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    settings.CONDITIONAL_CACHE_ALIAS = "local"
    err = StringIO()
    call_command("bump_versions", "blog.Article", stdout=StringIO(), stderr=err)
    assert "local-memory cache" in err.getvalue()

    settings.CONDITIONAL_CACHE_ALIAS = "shared"
    quiet = StringIO()
    call_command("bump_versions", "blog.Article", stdout=StringIO(), stderr=quiet)
    assert quiet.getvalue() == ""
