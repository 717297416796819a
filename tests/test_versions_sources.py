"""Validators from versions (version_etag, the deploy salt) and from timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from asgiref.sync import async_to_sync
from django.apps import apps
from django.core.cache import caches

from django_conditional import versions
from django_conditional.conf import conf
from django_conditional.sources import timestamps
from django_conditional.sources import versions as version_source
from django_conditional.sources.versions import (
    auto_deploy_salt,
    deploy_salt,
    version_etag,
)
from django_conditional.validators import ETag
from tests.testapp.models import Article, Author


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv(version_source.ENV_VAR, raising=False)
    version_source._reset()
    caches[conf.CACHE_ALIAS].clear()
    yield
    version_source._reset()


VALUES = {"o:blog.article:1": 3, "c:blog.article": 7}


def test_version_etag_is_strong_and_deterministic():
    tag = version_etag(VALUES)
    assert isinstance(tag, ETag)
    assert not tag.weak
    assert tag == version_etag(dict(reversed(VALUES.items())))
    assert len(tag.tag) == 32
    assert str(tag) == f'"{tag.tag}"'


def test_every_version_counts():
    base = version_etag(VALUES)
    assert version_etag({**VALUES, "c:blog.article": 8}) != base
    assert version_etag({**VALUES, "o:blog.article:1": -3}) != base  # deleted
    assert version_etag({"o:blog.article:1": 3}) != base
    assert version_etag({**VALUES, "o:blog.article:2": 0}) != base


def test_keys_and_values_cannot_be_confused():
    assert version_etag({"a": 11}) != version_etag({"a1": 1})
    assert version_etag({}, ["ab", "c"]) != version_etag({}, ["a", "bc"])
    assert version_etag({}, ["x"]) != version_etag({"x": 0})


def test_vary_values_change_the_etag():
    english = version_etag(VALUES, ["en", "text/html"])
    assert version_etag(VALUES, ["fr", "text/html"]) != english
    assert version_etag(VALUES, ["en", "application/json"]) != english
    assert version_etag(VALUES, ["en", "text/html"]) == english
    assert version_etag(VALUES, ["user:1"]) != version_etag(VALUES, ["user:2"])
    assert version_etag(VALUES, [None]) == version_etag(VALUES, [""])
    assert version_etag(VALUES, ["caf\udce9"]) == version_etag(VALUES, ["caf\udce9"])


def test_deploy_salt_setting_changes_every_etag(settings):
    settings.CONDITIONAL_DEPLOY_SALT = "release-1"
    first = [version_etag(VALUES), version_etag({}), version_etag(VALUES, ["en"])]
    assert deploy_salt() == "release-1"
    settings.CONDITIONAL_DEPLOY_SALT = "release-2"
    second = [version_etag(VALUES), version_etag({}), version_etag(VALUES, ["en"])]
    assert all(a != b for a, b in zip(first, second, strict=True))
    settings.CONDITIONAL_DEPLOY_SALT = "release-1"
    assert version_etag(VALUES) == first[0]


def test_deploy_salt_from_the_environment(monkeypatch):
    monkeypatch.setenv(version_source.ENV_VAR, "sha-abc")
    assert deploy_salt() == "sha-abc"
    with_env = version_etag(VALUES)
    version_source._reset()
    monkeypatch.setenv(version_source.ENV_VAR, "sha-def")
    assert version_etag(VALUES) != with_env


def test_auto_salt_is_computed_once(monkeypatch):
    calls: list[int] = []

    def auto() -> str:
        calls.append(1)
        return "auto"

    monkeypatch.setattr(version_source, "auto_deploy_salt", auto)
    version_etag(VALUES)
    version_etag(VALUES)
    assert deploy_salt() == "auto"
    assert calls == [1]


def test_auto_salt_follows_templates(settings, tmp_path, monkeypatch):
    # Only the template dir: other sessions may be editing the source tree meanwhile.
    monkeypatch.setattr(apps, "get_app_configs", lambda: [])
    template = tmp_path / "page.html"
    template.write_text("<p>{{ article.title }}</p>")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"ignored")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, tmp_path]}]
    first = auto_deploy_salt()
    assert first == auto_deploy_salt()  # deterministic: every worker agrees
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"still ignored")
    assert auto_deploy_salt() == first
    template.write_text("<p>{{ article.title|upper }}</p>")
    assert auto_deploy_salt() != first
    template.chmod(0)
    try:
        unreadable = auto_deploy_salt()  # an unreadable file is skipped, not fatal
    finally:
        template.chmod(0o644)
    assert isinstance(unreadable, str)


def test_auto_salt_includes_this_package_source(monkeypatch):
    # django_conditional runs from the source tree here: its code is hashed, not its version.
    first = auto_deploy_salt()
    monkeypatch.setattr(version_source, "_MAX_FILES", 0)
    assert auto_deploy_salt() != first


def test_site_packages_apps_count_by_version(monkeypatch):
    first = auto_deploy_salt()
    monkeypatch.setattr(
        version_source,
        "_distribution_versions",
        lambda: {"django": "Django==0.0.1"},
    )
    assert auto_deploy_salt() != first


# ---------------------------------------------------------------------------------------------
# Timestamps


@pytest.mark.django_db
def test_instance_and_latest_modified():
    author = Author.objects.create(name="a")
    old = Article.objects.create(author=author, title="old")
    new = Article.objects.create(author=author, title="new")
    moment = datetime(2024, 5, 1, 12, 30, 15, 999, tzinfo=timezone.utc)
    Article.objects.filter(pk=old.pk).update(updated_at=moment - timedelta(days=1))
    Article.objects.filter(pk=new.pk).update(updated_at=moment)
    new.refresh_from_db()
    assert timestamps.instance_modified(new) == moment.replace(microsecond=0)
    assert timestamps.latest_modified(Article.objects.all()) == moment.replace(
        microsecond=0
    )
    assert timestamps.latest_modified(
        Article.objects.filter(pk=old.pk), "updated_at"
    ) == (moment - timedelta(days=1)).replace(microsecond=0)
    assert timestamps.latest_modified(Article.objects.none()) is None
    assert async_to_sync(timestamps.alatest_modified)(
        Article.objects.all()
    ) == moment.replace(microsecond=0)


def test_instance_modified_naive_and_empty():
    author = Author(name="a")
    author.updated_at = None  # type: ignore[attr-defined]
    assert timestamps.instance_modified(author) is None
    author.updated_at = datetime(2024, 1, 1, 10, 0, 0)  # type: ignore[attr-defined]
    assert timestamps.instance_modified(author) == datetime(
        2024, 1, 1, 10, tzinfo=timezone.utc
    )
    with pytest.raises(TypeError):
        timestamps.instance_modified(author, "name")


@pytest.mark.django_db
def test_versions_modified_moves_on_delete(django_capture_on_commit_callbacks):
    key = versions.collection_key(Article)
    assert timestamps.versions_modified([key]) is None
    author = Author.objects.create(name="a")
    article = Article.objects.create(author=author, title="t")
    first = timestamps.versions_modified([key])
    assert first is not None
    article.delete()
    after = timestamps.versions_modified([key])
    assert after is not None
    assert after >= first
    assert async_to_sync(timestamps.aversions_modified)([key]) == after


def test_auto_salt_follows_the_project_package(settings, tmp_path, monkeypatch):
    package = tmp_path / "salt_project"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "urls.py").write_text("urlpatterns = []\n")
    views = package / "views.py"
    views.write_text("def page(request): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(apps, "get_app_configs", lambda: [])
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": []}]
    settings.ROOT_URLCONF = "salt_project.urls"
    first = auto_deploy_salt()
    views.write_text("def page(request): return 1\n")
    assert auto_deploy_salt() != first
    settings.ROOT_URLCONF = "no_such_module_anywhere.urls"  # skipped, not fatal
    assert isinstance(auto_deploy_salt(), str)


@pytest.mark.django_db(transaction=True)
def test_versions_modified_costs_no_query_once_cached(django_assert_num_queries):
    # Issue 16: the bump time is kept with the version in the cache, read in the same round trip.
    key = versions.collection_key(Article)
    Article.objects.create(author=Author.objects.create(name="a"), title="t")
    first = timestamps.versions_modified([key])  # a miss may read the database and fill
    with django_assert_num_queries(0):
        assert timestamps.versions_modified([key]) == first
        assert async_to_sync(timestamps.aversions_modified)([key]) == first
