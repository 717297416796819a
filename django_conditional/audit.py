"""A conformance kit for a site's own views: what REDbot checks of validators, replayed per URL.

``audit(fetch, url)`` sends a handful of requests through ``fetch`` (the test client, or HTTP to a
live site) and returns one ``Finding`` per check: ``ok``, ``problem`` or ``skip`` (not
applicable). The checks, each reported at most once per URL:

- ``NO_VALIDATOR``: a cacheable 200 to GET with neither ``ETag`` nor ``Last-Modified``;
- ``INM_NOT_304`` / ``IMS_NOT_304``: ``If-None-Match`` with the current tag, or
  ``If-Modified-Since`` with the current date, not answered 304 (RFC 9110 §13.1.2, §13.1.3);
- ``MISSING_HDRS_304``: a 304 without a header the 200 carried that it must keep (§15.4.5);
- ``HEAD_MISMATCH``: HEAD answered with another status or other validators than GET (§9.3.2);
- ``ETAG_BODY_CHANGED``: two GETs, other bytes, the same strong tag (§8.8.3);
- ``VARY_ETAG_DOESNT_CHANGE``: another value of a header named in ``Vary`` gives other bytes
  under the same strong tag;
- ``IF_MATCH_IGNORED``: an unsafe request whose ``If-Match`` names no current tag was carried
  out (2xx) instead of refused with 412 (§13.1.1);
- ``PRECONDITION_NOT_REQUIRED``: the site's 428 policy (``CONDITIONAL_REQUIRE_PRECONDITION``)
  covers the unsafe request, yet it was carried out without a precondition (RFC 6585 §3).

The unsafe checks send real writes when the site does not refuse them: run them against a test
database (the command wraps each in a transaction it rolls back) or a site you may break.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

OK: Final = "ok"
PROBLEM: Final = "problem"
SKIP: Final = "skip"
# A tag no representation has: If-Match with it must fail.
NO_SUCH_TAG: Final = '"django-conditional-audit-no-such-tag"'
# §15.4.5: what a 304 keeps of the 200 (Date aside: the server sets it on every answer).
KEPT_BY_304: Final = ("Cache-Control", "Content-Location", "ETag", "Expires", "Vary")
# Another value for each header a representation commonly varies on.
ALTERNATIVES: Final = {
    "accept": "application/json",
    "accept-language": "de",
    "accept-encoding": "gzip",
}


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: its status, headers (names in lower case) and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


Fetch = Callable[[str, str, Mapping[str, str]], Reply]
Policy = Callable[[str, str], bool]


@dataclass(frozen=True, slots=True)
class Finding:
    url: str
    check: str
    result: str
    detail: str = ""


def client_fetch(client: Any) -> Fetch:
    """``fetch`` through a ``django.test.Client``."""

    def fetch(method: str, url: str, headers: Mapping[str, str]) -> Reply:
        response = client.generic(method, url, headers=dict(headers))
        body = (
            b"".join(response.streaming_content)
            if response.streaming
            else response.content
        )
        found = {name.lower(): value for name, value in response.items()}
        return Reply(response.status_code, found, body)

    return fetch


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer to report, not to follow


def http_fetch(base_url: str, timeout: float = 10.0) -> Fetch:
    """``fetch`` over HTTP to a live site at ``base_url`` (``https://staging.example``)."""
    opener = urllib.request.build_opener(_NoRedirect)
    base = base_url.rstrip("/")

    def fetch(method: str, url: str, headers: Mapping[str, str]) -> Reply:
        request = urllib.request.Request(
            base + url, method=method, headers=dict(headers)
        )
        try:
            with opener.open(request, timeout=timeout) as answer:
                status, found, body = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:  # 304, 4xx, 5xx
            status, found, body = error.code, error.headers, error.read()
        return Reply(status, {k.lower(): v for k, v in found.items()}, body)

    return fetch


def with_headers(fetch: Fetch, extra: Mapping[str, str]) -> Fetch:
    """``fetch`` sending ``extra`` headers (credentials...) with every request."""
    if not extra:
        return fetch
    return lambda method, url, headers: fetch(method, url, {**extra, **headers})


def _strong(tag: str | None) -> bool:
    return tag is not None and not tag.startswith("W/")


def _no_store(reply: Reply) -> bool:
    parts = (reply.header("Cache-Control") or "").lower().split(",")
    return any(part.strip() == "no-store" for part in parts)


class _Run:
    """The checks of one URL against its first GET."""

    def __init__(self, fetch: Fetch, url: str, get: Reply) -> None:
        self.fetch, self.url, self.get = fetch, url, get
        self.findings: list[Finding] = []
        self.kept_checked = False

    def note(self, check: str, result: str, detail: str = "") -> None:
        self.findings.append(Finding(self.url, check, result, detail))

    def revalidate(self, check: str, header: str, value: str) -> None:
        reply = self.fetch("GET", self.url, {header: value})
        if reply.status != 304:
            self.note(check, PROBLEM, f"{header}: {value} answered {reply.status}")
            return
        self.note(check, OK, f"{header} answered 304")
        if not self.kept_checked:
            self.kept_checked = True
            missing = [
                name
                for name in KEPT_BY_304
                if self.get.header(name) and not reply.header(name)
            ]
            detail = "the 304 lacks " + ", ".join(missing) if missing else ""
            self.note("MISSING_HDRS_304", PROBLEM if missing else OK, detail)

    def head(self) -> None:
        reply = self.fetch("HEAD", self.url, {})
        differs = [
            name
            for name in ("ETag", "Last-Modified")
            if reply.header(name) != self.get.header(name)
        ]
        if reply.status != self.get.status:
            differs.insert(0, f"status {reply.status}")
        detail = "HEAD differs from GET: " + ", ".join(differs) if differs else ""
        self.note("HEAD_MISMATCH", PROBLEM if differs else OK, detail)

    def same_tag_other_bytes(self, headers: Mapping[str, str]) -> bool:
        reply = self.fetch("GET", self.url, headers)
        tag = self.get.header("ETag")
        return (
            reply.status == self.get.status
            and _strong(tag)
            and reply.header("ETag") == tag
            and reply.body != self.get.body
        )

    def stable_tag(self) -> None:
        if self.same_tag_other_bytes({}):
            self.note(
                "ETAG_BODY_CHANGED",
                PROBLEM,
                "two GETs: other bytes, the same strong tag",
            )
        else:
            self.note("ETAG_BODY_CHANGED", OK)

    def vary(self) -> None:
        named = [
            name.strip().lower()
            for name in (self.get.header("Vary") or "").split(",")
            if name.strip() and name.strip() not in ("*", "Cookie", "cookie")
        ]
        for name in named:
            value = ALTERNATIVES.get(name, "x-django-conditional-audit")
            if self.same_tag_other_bytes({name: value}):
                detail = f"{name}: {value} gives other bytes under the same strong tag"
                self.note("VARY_ETAG_DOESNT_CHANGE", PROBLEM, detail)
                return
        if named:
            self.note("VARY_ETAG_DOESNT_CHANGE", OK)


def _unsafe(run: _Run, method: str, policy: Policy | None) -> None:
    refused = run.fetch(method, run.url, {"If-Match": NO_SUCH_TAG})
    if 200 <= refused.status < 300:
        detail = f"{method} with If-Match: {NO_SUCH_TAG} answered {refused.status}"
        run.note("IF_MATCH_IGNORED", PROBLEM, detail)
        return
    if refused.status != 412:
        run.note("IF_MATCH_IGNORED", SKIP, f"{method} answered {refused.status}")
        return
    run.note("IF_MATCH_IGNORED", OK, f"{method} with a stale If-Match answered 412")
    if policy is None or not policy(method, urlsplit(run.url).path):
        return
    plain = run.fetch(method, run.url, {})
    if plain.status == 428:
        run.note("PRECONDITION_NOT_REQUIRED", OK, f"{method} alone answered 428")
    else:
        detail = f"the 428 policy covers {method} here; without a precondition it answered {plain.status}"
        run.note("PRECONDITION_NOT_REQUIRED", PROBLEM, detail)


def audit(
    fetch: Fetch,
    url: str,
    *,
    unsafe: str | None = None,
    policy: Policy | None = None,
    unsafe_guard: Callable[[Callable[[], None]], None] | None = None,
) -> list[Finding]:
    """Every check of ``url`` (see the module docstring). ``unsafe`` names the unsafe method to
    check (None: no write is sent); ``policy(method, path)`` says whether the site requires a
    precondition there; ``unsafe_guard(step)`` runs the unsafe step (in a transaction...)."""
    get = fetch("GET", url, {})
    run = _Run(fetch, url, get)
    if get.status != 200:
        run.note("GET", SKIP, f"GET answered {get.status}")
    elif _no_store(get):
        run.note("GET", SKIP, "Cache-Control: no-store (no validator expected)")
    elif not (get.header("ETag") or get.header("Last-Modified")):
        run.note("NO_VALIDATOR", PROBLEM, "a 200 with neither ETag nor Last-Modified")
    else:
        run.note(
            "NO_VALIDATOR", OK, get.header("ETag") or get.header("Last-Modified") or ""
        )
        etag, modified = get.header("ETag"), get.header("Last-Modified")
        if etag:
            run.revalidate("INM_NOT_304", "If-None-Match", etag)
        if modified:
            run.revalidate("IMS_NOT_304", "If-Modified-Since", modified)
        run.head()
        run.stable_tag()
        run.vary()
    if unsafe is not None:
        method = unsafe.upper()

        def step() -> None:
            _unsafe(run, method, policy)

        if unsafe_guard is None:
            step()
        else:
            unsafe_guard(step)
    return run.findings


def problems(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.result == PROBLEM]


def table(findings: list[Finding]) -> str:
    """The findings as a plain-text table: URL, check, result, detail."""
    rows = [("URL", "check", "result", "detail")]
    rows += [(f.url, f.check, f.result.upper(), f.detail) for f in findings]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(
            cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)
        )
        + ("  " + row[3] if row[3] else "")
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)
