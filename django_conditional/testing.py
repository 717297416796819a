"""Test helpers: the ``conditional_audit`` checks as an assertion for a site's own test suite.

::

    from django_conditional.testing import assert_conditional

    def test_article_page_is_conditional(client, article):
        assert_conditional(client, f"/articles/{article.pk}/")

Or with pytest, ``pytest_plugins = ["django_conditional.testing"]`` in ``conftest.py`` gives the
fixture ``conditional_audit`` (``conditional_audit("/articles/1/")``, the test ``client``'s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django_conditional import audit

__all__ = ["assert_conditional", "conditional_audit"]


def assert_conditional(
    client: Any,
    url: str,
    *,
    unsafe: str | None = "PUT",
    require_precondition: bool | None = None,
) -> list[audit.Finding]:
    """Run every check of ``django_conditional.audit`` on ``url`` through ``client`` (a
    ``django.test.Client``); ``AssertionError`` listing the problems, else the findings.

    ``unsafe`` is the method of the 412 check (None: no write is sent; the test database takes
    the write a broken view would carry out). ``require_precondition``: whether the 428 policy
    covers the unsafe method here (None: read ``CONDITIONAL_REQUIRE_PRECONDITION``).
    """
    from django_conditional.conf import conf

    def policy(method: str, path: str) -> bool:
        if require_precondition is not None:
            return require_precondition
        found = conf.REQUIRE_PRECONDITION
        return found is not None and found.applies(method, path)

    findings = audit.audit(
        audit.client_fetch(client), url, unsafe=unsafe, policy=policy
    )
    found = audit.problems(findings)
    if found:
        raise AssertionError(
            f"{url} is not conditional as it should be:\n"
            + "\n".join(f"  {f.check}: {f.detail}" for f in found)
        )
    return findings


try:
    import pytest
except ImportError:  # pragma: no cover - the helper works without pytest
    pass
else:

    @pytest.fixture
    def conditional_audit(client: Any) -> Callable[..., list[audit.Finding]]:
        """``conditional_audit(url, **options)``: ``assert_conditional`` with the test client."""

        def check(url: str, **options: Any) -> list[audit.Finding]:
            return assert_conditional(client, url, **options)

        return check
