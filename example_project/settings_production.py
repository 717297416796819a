"""Production settings of the example project: what a site behind gunicorn, nginx and a shared
cache changes (docs/deployment.md walks through each). Everything comes from the environment:

``DJANGO_SECRET_KEY`` (required), ``DJANGO_ALLOWED_HOSTS`` (comma-separated), ``DATABASE_URL`` and
``REDIS_URL`` (``example_project.env``; Redis for every site with more than one worker process),
``DJANGO_CONN_MAX_AGE`` (seconds a database connection is kept, 60), ``CONDITIONAL_DEPLOY_SALT``
(the release id: every ETag of the old code dies with the deploy),
``CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH`` (1 behind a proxy that compresses and weakens tags),
``CONDITIONAL_SURROGATE_KEY_HEADERS`` (comma-separated: ``xkey``, ``Surrogate-Key``, ``Cache-Tag``)
and ``VARNISH_PURGE_URLS`` (comma-separated: purges through ``VarnishPurge``).

Serve it with ``gunicorn -c deploy/gunicorn.conf.py example_project.wsgi`` (or uvicorn workers for
``example_project.asgi``) behind nginx (``deploy/nginx/``) or Varnish (``deploy/varnish/``).
"""

from __future__ import annotations

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import DATABASES, MIDDLEWARE


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _words(name: str) -> list[str]:
    return [w.strip() for w in os.environ.get(name, "").split(",") if w.strip()]


DEBUG = False
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
ALLOWED_HOSTS = _words("DJANGO_ALLOWED_HOSTS") or ["localhost", "127.0.0.1"]

# nginx terminates TLS and says so; trust the header only because nginx always sets it.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = False

DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("DJANGO_CONN_MAX_AGE", "60"))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# The application compresses (strong tags stay strong); see the nginx snippets for the proxy side.
assert "django_conditional.compression.GZipMiddleware" in MIDDLEWARE

CONDITIONAL_DEPLOY_SALT = os.environ.get("CONDITIONAL_DEPLOY_SALT") or None
CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH = _flag("CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH")
CONDITIONAL_SURROGATE_KEY_HEADERS = _words("CONDITIONAL_SURROGATE_KEY_HEADERS")
if _words("VARNISH_PURGE_URLS"):
    CONDITIONAL_PURGE_BACKEND = "django_conditional.purge.varnish.VarnishPurge"
    CONDITIONAL_PURGE_OPTIONS = {"urls": _words("VARNISH_PURGE_URLS"), "timeout": 2.0}
    CONDITIONAL_PURGE_TIMEOUT = 3.0

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django": {"handlers": ["console"], "level": "WARNING"},
        # Purge failures, weakened tags, cache faults: one warning each, never a failed request.
        "django_conditional": {"handlers": ["console"], "level": "WARNING"},
    },
}
