"""Purge Varnish by cache tags: an HTTP ``PURGE`` carrying the tags in a header, for a VCL that
hands them to the xkey vmod of varnish-modules (``xkey.purge``; see ``deploy/varnish/default.vcl``).

``CONDITIONAL_PURGE_BACKEND = "django_conditional.purge.varnish.VarnishPurge"`` and
``CONDITIONAL_PURGE_OPTIONS = {"urls": ["http://127.0.0.1:6081/"]}`` (every Varnish of the site).
The responses carry ``xkey`` headers: ``CONDITIONAL_SURROGATE_KEY_HEADERS = ["xkey"]``.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

__all__ = ["PurgeFailed", "VarnishPurge"]


class PurgeFailed(RuntimeError):
    """A Varnish did not confirm a purge (unreachable, or an answer other than 200)."""


def _chunks(tags: Sequence[str], limit: int) -> Iterator[str]:
    # Each request's header stays under ``limit`` bytes (Varnish: http_req_hdr_len, 8 KB).
    chunk: list[str] = []
    size = 0
    for tag in tags:
        if chunk and size + len(tag) + 1 > limit:
            yield " ".join(chunk)
            chunk, size = [], 0
        chunk.append(tag)
        size += len(tag) + 1
    if chunk:
        yield " ".join(chunk)


class VarnishPurge:
    """Send ``PURGE`` with ``<header>: tag tag ...`` to each of ``urls``.

    ``soft=True`` sends the header ``xkey-softpurge`` by default instead (objects kept stale,
    for grace). Every Varnish is tried; a failure of any raises ``PurgeFailed`` at the end.
    """

    def __init__(
        self,
        urls: Sequence[str] = ("http://127.0.0.1:6081/",),
        *,
        header: str | None = None,
        soft: bool = False,
        timeout: float = 2.0,
        max_header_bytes: int = 7000,
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.header = header or ("xkey-softpurge" if soft else "xkey-purge")
        self.timeout = timeout
        self.max_header_bytes = max_header_bytes

    def _purge_one(self, url: str, value: str) -> None:
        parts = urlsplit(url)
        connection_class = (
            http.client.HTTPSConnection
            if parts.scheme == "https"
            else http.client.HTTPConnection
        )
        connection = connection_class(
            parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout
        )
        try:
            connection.request("PURGE", parts.path or "/", headers={self.header: value})
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise PurgeFailed(f"{url} answered {response.status} {response.reason}")

    def purge(self, tags: Sequence[str]) -> None:
        failures: list[str] = []
        for url in self.urls:
            for value in _chunks(tags, self.max_header_bytes):
                try:
                    self._purge_one(url, value)
                except (OSError, http.client.HTTPException, PurgeFailed) as exc:
                    failures.append(f"{url}: {type(exc).__name__}: {exc}")
                    break
        if failures:
            raise PurgeFailed("; ".join(failures))
