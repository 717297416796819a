from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings

from example_project.env import REDIS_BACKENDS


@pytest.fixture
def clean_versions() -> Iterator[None]:
    """An empty version cache and no recorded view calls, before and after the test."""
    from tests.testapp.views import CALLS
    from tests.versioned_support import clear_version_cache

    clear_version_cache()
    CALLS.clear()
    yield
    clear_version_cache()


@pytest.fixture
def article(db: None, django_capture_on_commit_callbacks: Any) -> Any:
    """One article by one author, committed (so their versions are bumped and cached)."""
    from tests.testapp.models import Article, Author

    with django_capture_on_commit_callbacks(execute=True):
        author = Author.objects.create(name="Ada")
        created: Article = Article.objects.create(
            author=author, title="One", body="first"
        )
    # Changed some seconds ago: its Last-Modified is sent at once (a date is withheld while the
    # second of its change lasts). The base manager updates without bumping.
    earlier = created.updated_at - timedelta(seconds=5)
    Article._base_manager.filter(pk=created.pk).update(updated_at=earlier)
    created.updated_at = earlier
    return created


@pytest.fixture
def postgres_available() -> None:
    """Skip unless the suite runs on PostgreSQL (DATABASE_URL=postgres://...)."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip(
            "needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
        )


@pytest.fixture
def redis_available() -> None:
    """Skip unless the default cache is Redis (REDIS_URL=redis://...) and it answers."""
    if settings.CACHES["default"]["BACKEND"] not in REDIS_BACKENDS.values():
        pytest.skip("needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0")
    from django.core.cache import cache

    try:
        cache.get("django-conditional-ping")
    except Exception as exc:  # the redis client raises its own ConnectionError family
        pytest.skip(f"Redis at {os.environ.get('REDIS_URL')} does not answer: {exc}")


@pytest.fixture
def redis_process(tmp_path: Any) -> Iterator[Any]:
    """A redis-server of the test's own (``tests.test_store_faults.Redis``), stopped after."""
    from tests.test_store_faults import REDIS_SERVER, Redis

    if REDIS_SERVER is None:
        pytest.skip("needs redis-server on the PATH")
    started = Redis(tmp_path / "redis")
    started.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def local_store(redis_process: Any, transactional_db: None) -> Iterator[Any]:
    """The default cache on ``redis_process`` with the local version cache on, a lease that lasts, no writer's wait (unless a test
    asks): what a test sees depends on invalidations only."""
    from django.core.cache import caches
    from django.test import override_settings

    from django_conditional import versions
    from django_conditional.store import local
    from tests.test_store_faults import caches_for

    with override_settings(
        CACHES=caches_for(redis_process.url),
        CONDITIONAL_LOCAL_CACHE=True,
        CONDITIONAL_LEASE_SECONDS=3600.0,  # a lease that never runs out in a test
        CONDITIONAL_WRITE_FENCE=False,
    ):
        versions.clear_local_state()
        # Django's own RedisCache on plain TCP passes the capability check on every supported
        # Django (6.1 adds driver_info to the pool's options: it once turned the cache off).
        assert local.is_on(caches["default"]), (
            "the local version cache turned itself off"
        )
        yield redis_process


def find_chromium() -> str | None:
    """The system Chromium that Playwright drives (scripts/ensure-chromium installs it; never downloaded)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path of a system Chromium for ``playwright.chromium.launch(executable_path=..., args=["--no-sandbox"])``."""
    path = find_chromium()
    if path is None:
        pytest.skip("needs a system Chromium: run scripts/ensure-chromium as root")
    return path


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Skip tests marked ``postgres``, ``redis`` or ``browser`` when the service or the browser is missing."""
    on_postgres = (
        settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    )
    on_redis = settings.CACHES["default"]["BACKEND"] in REDIS_BACKENDS.values()
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL: set DATABASE_URL=postgres://..."
    )
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://...")
    has_chromium = find_chromium() is not None
    skip_browser = pytest.mark.skip(
        reason="needs a system Chromium: run scripts/ensure-chromium as root"
    )
    for item in items:
        if not has_chromium and item.get_closest_marker("browser"):
            item.add_marker(skip_browser)
        if not on_postgres and item.get_closest_marker("postgres"):
            item.add_marker(skip_pg)
        if not on_redis and item.get_closest_marker("redis"):
            item.add_marker(skip_redis)
