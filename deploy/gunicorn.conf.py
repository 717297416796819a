"""gunicorn settings of the example project in production (``gunicorn -c deploy/gunicorn.conf.py
example_project.wsgi``); the tests behind nginx and Varnish start it this way.

Environment: ``GUNICORN_BIND`` (``127.0.0.1:8000``: only the proxy talks to it), ``GUNICORN_WORKERS``
(2 per core is usual; more than one needs ``REDIS_URL``, since versions must be shared by every
worker), ``GUNICORN_THREADS``, ``GUNICORN_WORKER_CLASS`` (``sync`` / ``gthread``, or
``uvicorn_worker.UvicornWorker`` from the ``uvicorn-worker`` package with
``example_project.asgi:application``).
"""

from __future__ import annotations

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
timeout = 30
graceful_timeout = 20
# Behind nginx: keep the proxy's keep-alive connections a little longer than nginx does.
keepalive = 75
# nginx sets X-Forwarded-*; gunicorn only trusts them from the proxy's address.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
loglevel = "warning"
