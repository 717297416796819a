"""A tiny project served by gunicorn in the middleware's server tests (tests/test_middleware_server.py)."""
