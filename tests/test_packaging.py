"""The package installs, declares what it supports, and ships without pending migrations."""

from __future__ import annotations

import configparser
import http.client
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

import django_conditional
from example_project.env import cache_from_env, database_from_env
from example_project.serving import free_port, listening, stop, wait_until

ROOT = Path(__file__).resolve().parent.parent


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def _requirements(value: str) -> list[str]:
    return [line.strip() for line in value.strip().splitlines() if line.strip()]


@pytest.mark.django_db
def test_no_missing_migrations():
    out = StringIO()
    # --check exits with status 1 when a model change lacks a migration.
    call_command(
        "makemigrations",
        "django_conditional",
        "--check",
        "--dry-run",
        stdout=out,
        stderr=out,
    )
    assert "No changes detected" in out.getvalue()


def test_example_project_passes_system_checks():
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}
    }
    env["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified" in result.stdout


def test_setup_cfg_declares_supported_versions():
    cfg = _setup_cfg()
    assert cfg["options"]["python_requires"].strip() == ">=3.10"
    requires = _requirements(cfg["options"]["install_requires"])
    assert "Django>=4.2" in requires
    classifiers = _requirements(cfg["metadata"]["classifiers"])
    for django_version in ("4.2", "5.2", "6.0"):
        assert f"Framework :: Django :: {django_version}" in classifiers
    for python_version in ("3.10", "3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {python_version}" in classifiers
    assert "Typing :: Typed" in classifiers


def test_installed_metadata_matches_setup_cfg():
    meta = metadata.metadata("django-conditional")
    assert meta["Requires-Python"] == ">=3.10"
    requires = metadata.requires("django-conditional") or []
    assert "Django>=4.2" in requires
    assert meta["Version"] == _setup_cfg()["metadata"]["version"].strip()


def test_version_attribute_matches_metadata():
    assert django_conditional.__version__ == metadata.version("django-conditional")


def test_py_typed_marker_is_present():
    assert (Path(django_conditional.__file__).parent / "py.typed").is_file()


def test_wheel_ships_package_data_and_no_test_code(tmp_path):
    # Build a real wheel from a copy of the sources, so that parallel runs never share build/ or *.egg-info.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("django_conditional", "tests", "example_project"):
        shutil.copytree(
            ROOT / package,
            source / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    dist = tmp_path / "dist"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(dist),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = dist.glob("django_conditional-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "django_conditional/py.typed" in names
    assert "django_conditional/__init__.py" in names
    top_level = {name.split("/", 1)[0] for name in names}
    assert not top_level & {"tests", "example_project", "bench"}, sorted(top_level)
    migrations = ROOT / "django_conditional" / "migrations"
    if migrations.is_dir():
        assert "django_conditional/migrations/__init__.py" in names


class TestDatabaseFromEnv:
    def test_sqlite_in_memory_by_default(self):
        assert database_from_env(environ={}) == {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": ":memory:",
        }

    def test_sqlite_file_when_a_path_is_given(self, tmp_path):
        db = database_from_env(sqlite_path=tmp_path / "db.sqlite3", environ={})
        assert db["NAME"] == str(tmp_path / "db.sqlite3")

    def test_postgres_url(self):
        db = database_from_env(
            environ={
                "DATABASE_URL": "postgres://us%40er:p%3Ass@db.example:6543/my%20db"
            }
        )
        assert db == {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "my db",
            "USER": "us@er",
            "PASSWORD": "p:ss",
            "HOST": "db.example",
            "PORT": "6543",
        }

    def test_postgres_url_without_credentials_or_port(self):
        db = database_from_env(environ={"DATABASE_URL": "postgresql://127.0.0.1/test"})
        assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
            "",
            "",
            "127.0.0.1",
            "",
            "test",
        )

    def test_test_database_name(self):
        db = database_from_env(
            environ={
                "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
                "TEST_DATABASE_NAME": "test_x",
            }
        )
        assert db["TEST"] == {"NAME": "test_x"}
        assert "TEST" not in database_from_env(
            environ={"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"}
        )

    def test_test_database_name_leaves_sqlite_in_memory(self):
        # A named SQLite test database is a file in the working directory, shared by parallel runs.
        assert "TEST" not in database_from_env(environ={"TEST_DATABASE_NAME": "test_x"})

    @pytest.mark.parametrize(
        "url", ["mysql://root@127.0.0.1/test", "postgres://127.0.0.1:5432/"]
    )
    def test_rejects_unusable_urls(self, url):
        with pytest.raises(ValueError):
            database_from_env(environ={"DATABASE_URL": url})


class TestCacheFromEnv:
    def test_locmem_by_default(self):
        assert (
            cache_from_env(environ={})["BACKEND"]
            == "django.core.cache.backends.locmem.LocMemCache"
        )

    def test_redis_url(self):
        cache = cache_from_env(environ={"REDIS_URL": "redis://127.0.0.1:6379/3"})
        assert cache == {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/3",
        }

    def test_rejects_other_schemes(self):
        with pytest.raises(ValueError):
            cache_from_env(environ={"REDIS_URL": "memcached://127.0.0.1:11211"})

    def test_django_redis_on_request(self):
        environ = {"REDIS_URL": "redis://h/1", "REDIS_CACHE_BACKEND": "django-redis"}
        assert (
            cache_from_env(environ=environ)["BACKEND"]
            == "django_redis.cache.RedisCache"
        )
        with pytest.raises(ValueError, match="REDIS_CACHE_BACKEND"):
            cache_from_env(environ={**environ, "REDIS_CACHE_BACKEND": "memcached"})


@pytest.mark.postgres
@pytest.mark.django_db
def test_suite_runs_on_postgresql_when_database_url_is_set():
    from django.db import connection

    assert connection.vendor == "postgresql"
    expected = (
        os.environ.get("TEST_DATABASE_NAME") or "test_" + database_from_env()["NAME"]
    )
    assert connection.settings_dict["NAME"] == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone() == (expected,)


@pytest.mark.redis
def test_suite_caches_in_redis_when_redis_url_is_set(redis_available):
    from django.core.cache import cache, caches
    from django.utils.module_loading import import_string

    from example_project.env import REDIS_BACKENDS

    backend = REDIS_BACKENDS[os.environ.get("REDIS_CACHE_BACKEND") or "django"]
    assert type(caches["default"]) is import_string(backend)
    cache.set("django-conditional-packaging-probe", "yes", 30)
    try:
        assert cache.get("django-conditional-packaging-probe") == "yes"
    finally:
        cache.delete("django-conditional-packaging-probe")


def _request(
    port: int, method: str, headers: dict[str, str]
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, "/", headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.mark.server
def test_demo_answers_with_an_etag_and_a_304(tmp_path):
    """What `make demo` does (migrate, seed_demo when it exists, runserver), then `curl -I` twice."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["DJANGO_SQLITE_PATH"] = str(tmp_path / "demo.sqlite3")
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    has_seed = subprocess.run(
        [*manage, "help", "seed_demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    if has_seed.returncode == 0:
        subprocess.run(
            [*manage, "seed_demo"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: listening(port), server, what="runserver")
        first = _request(port, "HEAD", {})
        assert first.status == 200
        tag = first.getheader("ETag")
        assert tag
        again = _request(port, "HEAD", {"If-None-Match": tag})
        assert again.status == 304
        assert again.getheader("ETag") == tag
        changed = _request(port, "GET", {"If-None-Match": '"not-the-current-tag"'})
        assert changed.status == 200
    finally:
        stop(server, timeout=10)
        if server.stderr is not None:
            server.stderr.close()
