"""Settings of the example project served by ``make demo``: SQLite and the local-memory cache by default."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

from example_project.env import cache_from_env, database_from_env

BASE_DIR = Path(__file__).resolve().parent.parent

# Never use this key outside the local demo: set DJANGO_SECRET_KEY in any real deployment.
INSECURE_DEMO_SECRET_KEY = (
    "django-insecure-demo-key-for-django-conditional-example-project-only"
)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", INSECURE_DEMO_SECRET_KEY)

DEBUG = os.environ.get("DJANGO_DEBUG", "1").lower() in {"1", "true", "yes", "on"}

ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_conditional",
    "example_project.blog",
]
# The DRF pages (/drf/), with the ``[drf]`` extra installed.
if find_spec("rest_framework") is not None and find_spec("drf_spectacular") is not None:
    INSTALLED_APPS += ["rest_framework", "drf_spectacular"]
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "django-conditional demo API",
    "VERSION": "1.0.0",
}

MIDDLEWARE = [
    # First: a versioned page's repeated 304 is sent again before the rest of this stack runs,
    # while the store read it came from still holds (docs/local-cache.md, "Early 304s").
    "django_conditional.early.EarlyAnswerMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Compresses with strong tags kept strong ("v3-gzip", not W/"v3"), so If-Match survives it:
    # let the application compress rather than a proxy in front of it (docs/deployment.md).
    "django_conditional.compression.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Content-hash ETags and 304s for every page that has no validator of its own (/about/).
    "django_conditional.middleware.ConditionalGetMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"

# DJANGO_SQLITE_PATH moves the demo database (the tests serve the demo from a temporary one).
DATABASES = {
    "default": database_from_env(
        sqlite_path=os.environ.get("DJANGO_SQLITE_PATH") or BASE_DIR / "db.sqlite3"
    )
}
# Persistent connections: a 304 from the cache costs no query, but a miss or a write should not
# pay a new connection each time; the health check drops a connection the server closed.
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("DJANGO_CONN_MAX_AGE", "60"))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
CACHES = {"default": cache_from_env()}
# Without REDIS_URL the versions live in the local-memory cache, which only a single process may use
# (`make demo`'s runserver, or one gunicorn/uvicorn worker): set REDIS_URL for more workers.
if not os.environ.get("REDIS_URL", "").strip():
    SILENCED_SYSTEM_CHECKS = ["django_conditional.W010"]

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
