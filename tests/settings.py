"""Settings for the test suite: SQLite in memory and LocMemCache unless DATABASE_URL / REDIS_URL say otherwise."""

from __future__ import annotations

from importlib.util import find_spec

from example_project.env import cache_from_env, database_from_env

SECRET_KEY = "django-insecure-tests-only"

DEBUG = False

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_conditional",
    "tests.testapp",
    "example_project.blog",
]
# The DRF tests (tests/test_drf*.py), with the ``[drf]`` extra installed.
if find_spec("rest_framework") is not None and find_spec("drf_spectacular") is not None:
    INSTALLED_APPS += ["rest_framework", "drf_spectacular"]
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_env()}
CACHES = {"default": cache_from_env()}

USE_TZ = True
TIME_ZONE = "UTC"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The test runner is one process: a local-memory version cache is shared by all its requests.
SILENCED_SYSTEM_CHECKS = ["django_conditional.W010"]

# The suite checks the one-read path (round trips counted at redis-py); the local version cache
# has tests of its own (tests/test_local_cache*.py), which turn it on.
CONDITIONAL_LOCAL_CACHE = False
