"""Settings of the tiny project: no database, cookie sessions, the middleware in Django's documented order."""

from __future__ import annotations

SECRET_KEY = "django-insecure-middleware-server-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django_conditional.middleware.ConditionalGetMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "tests.middlewareproject.urls"
DATABASES: dict[str, dict[str, str]] = {}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
USE_TZ = True
CONDITIONAL_REQUIRE_PRECONDITION = {
    "methods": ["PUT", "DELETE"],
    "paths": [r"^/article/"],
}
