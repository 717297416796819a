"""Settings of the benchmark project (bench/run.py sets the environment).

``BENCH_DATABASE_URL`` (postgres://...) selects PostgreSQL, else SQLite at ``BENCH_SQLITE_PATH``;
``BENCH_REDIS_URL`` (redis://...) selects Django's ``RedisCache``, else ``LocMemCache``.
The user's own ``DATABASE_URL`` / ``REDIS_URL`` are never read here: run.py decides.
"""

from __future__ import annotations

import os

from example_project.env import cache_from_env, database_from_env

SECRET_KEY = "django-insecure-bench-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_conditional",
    "bench.benchproject.pages",
]

# A small, realistic stack; no sessions, so a 304 touches no session machinery either way.
MIDDLEWARE = [
    "django_conditional.early.EarlyAnswerMiddleware",  # as the example project: see its settings
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "bench.benchproject.urls"
WSGI_APPLICATION = "bench.benchproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    },
]

DATABASES = {
    "default": database_from_env(
        os.environ.get("BENCH_SQLITE_PATH", "/tmp/django-conditional-bench.sqlite3"),
        {"DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "")},
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = (
        60  # persistent connections, as a real site has
    )

CACHES = {
    "default": {
        **cache_from_env({"REDIS_URL": os.environ.get("BENCH_REDIS_URL", "")}),
        "KEY_PREFIX": "bench",
    }
}

CONDITIONAL_KEY_PREFIX = "bench-conditional"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_conditional": {"handlers": ["console"], "level": "WARNING"}},
}
