"""Hostile conditional headers through every stack (issue 8, item 1): never a 500, bounded time.

Every malformed value goes through the whole request handling (the content-hash middleware in
front of the drop-in decorator, the versioned decorator, undecorated pages and the example
project's JSON API; sync and async handlers) and must get the RFC's answer: the malformed member
or field is ignored (preconditions.py's documented robustness rules: a malformed ``If-None-Match``
never yields a 304, a malformed ``If-Match`` never lets a write through, an invalid date is
ignored), or a clear 4xx. Raw bytes (invalid UTF-8, repeated fields) go over sockets in
test_raw_sockets.py, since the test client cannot send them.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import django
import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission, User
from django.core.cache import caches
from django.test import AsyncClient, Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_conditional.conf import conf
from django_conditional.httpdate import format_http_date, parse_http_date
from django_conditional.models import ResourceVersion
from django_conditional.preconditions import (
    ConditionalHeaders,
    Outcome,
    evaluate,
    parse_entity_tags,
)
from django_conditional.validators import ETag, Validators
from example_project.blog.factories import ArticleFactory
from tests import urls_hostile
from tests.testapp.models import Article, Author

pytestmark = [pytest.mark.urls("tests.urls_hostile"), pytest.mark.django_db]

FULL_STACK = [
    # Outermost, as Django documents: compressed bodies keep strong, coding-suffixed tags.
    "django_conditional.compression.GZipMiddleware",
    "django_conditional.middleware.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
LM = format_http_date(urls_hostile.LAST_MODIFIED)  # Mon, 01 Jan 2024 12:00:00 GMT
OK = "2xx"
HEADER_KEYS = {
    "If-Match": "HTTP_IF_MATCH",
    "If-None-Match": "HTTP_IF_NONE_MATCH",
    "If-Modified-Since": "HTTP_IF_MODIFIED_SINCE",
    "If-Unmodified-Since": "HTTP_IF_UNMODIFIED_SINCE",
    "If-Range": "HTTP_IF_RANGE",
    "Range": "HTTP_RANGE",
    "Accept-Encoding": "HTTP_ACCEPT_ENCODING",
}


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # "{pk}" is replaced by the object's pk
    is_async: bool
    has_etag: bool = True
    has_date: bool = True
    api: bool = (
        False  # the example JSON API: Basic auth, PATCH with JSON, If-Match required
    )


ENDPOINTS = [
    Endpoint("drop", "/drop/", False),
    Endpoint("drop-async", "/drop-async/", True),
    Endpoint("mw", "/mw/", False, has_date=False),
    Endpoint("mw-async", "/mw-async/", True, has_date=False),
    Endpoint("mw-dated", "/mw-dated/", False, has_etag=False),
    Endpoint("versioned", "/versioned/{pk}/", False),
    Endpoint("versioned-async", "/versioned-async/{pk}/", True),
    Endpoint("api", "/api/articles/{pk}/", False, api=True),
    Endpoint("api-async", "/api/articles/{pk}/", True, api=True),
]


@dataclass(frozen=True)
class Case:
    """One hostile value, with the answers of an endpoint that has both an ETag and a date.

    ``{tag}`` in ``value`` is the endpoint's current opaque-tag, ``{lm}`` its Last-Modified.
    ``get``/``put``: the status of GET and of a write; ``OK`` is any 2xx (the write ran).
    """

    id: str
    header: str
    value: str
    get: int
    put: int | str

    @property
    def about_dates(self) -> bool:
        return self.header in {"If-Modified-Since", "If-Unmodified-Since"}


def inm(id: str, value: str, matches: bool) -> Case:
    return Case(
        f"inm-{id}",
        "If-None-Match",
        value,
        304 if matches else 200,
        412 if matches else OK,
    )


def im(id: str, value: str, matches: bool) -> Case:
    return Case(
        f"im-{id}", "If-Match", value, 200 if matches else 412, OK if matches else 412
    )


def ims(id: str, value: str, honoured: bool) -> Case:
    return Case(f"ims-{id}", "If-Modified-Since", value, 304 if honoured else 200, OK)


def ius(id: str, value: str, honoured: bool) -> Case:
    return Case(
        f"ius-{id}",
        "If-Unmodified-Since",
        value,
        412 if honoured else 200,
        412 if honoured else OK,
    )


WIDE_02 = "\uff10\uff12".encode().decode("latin-1")
WIDE_31 = "\uff13\uff11".encode().decode("latin-1")
# Dates after Last-Modified for If-Modified-Since (a misparse would wrongly give 304) and before
# it for If-Unmodified-Since (a misparse would wrongly give 412): a wrong form must be ignored.
WRONG_DATES = [
    ("two-digit-year", "Tue, 02 Jan 30 00:00:00 GMT", "Sun, 31 Dec 23 00:00:00 GMT"),
    ("pst", "Tue, 02 Jan 2030 00:00:00 PST", "Sun, 31 Dec 2023 00:00:00 PST"),
    ("utc", "Tue, 02 Jan 2030 00:00:00 UTC", "Sun, 31 Dec 2023 00:00:00 UTC"),
    (
        "numeric-zone",
        "Tue, 02 Jan 2030 00:00:00 +0000",
        "Sun, 31 Dec 2023 00:00:00 +0000",
    ),
    ("lowercase-gmt", "Tue, 02 Jan 2030 00:00:00 gmt", "Sun, 31 Dec 2023 00:00:00 gmt"),
    ("day-32", "Tue, 32 Jan 2030 00:00:00 GMT", "Sun, 32 Dec 2023 00:00:00 GMT"),
    ("february-30", "Sat, 30 Feb 2030 00:00:00 GMT", "Thu, 30 Feb 2023 00:00:00 GMT"),
    ("hour-24", "Tue, 02 Jan 2030 24:00:00 GMT", "Sun, 31 Dec 2023 24:00:00 GMT"),
    ("minute-60", "Tue, 02 Jan 2030 00:60:00 GMT", "Sun, 31 Dec 2023 00:60:00 GMT"),
    ("second-61", "Tue, 02 Jan 2030 00:00:61 GMT", "Sun, 31 Dec 2023 00:00:61 GMT"),
    ("month-name", "Tue, 02 Foo 2030 00:00:00 GMT", "Sun, 31 Foo 2023 00:00:00 GMT"),
    ("year-0", "Sat, 01 Jan 0000 00:00:00 GMT", "Sat, 01 Jan 0000 00:00:00 GMT"),
    ("year-10000", "Sat, 01 Jan 10000 00:00:00 GMT", "Sat, 01 Jan 10000 00:00:00 GMT"),
    (
        "list-of-dates",
        "Tue, 02 Jan 2030 00:00:00 GMT, Wed, 03 Jan 2030 00:00:00 GMT",
        "Sun, 31 Dec 2023 00:00:00 GMT, Sat, 30 Dec 2023 00:00:00 GMT",
    ),
    ("negative-epoch", "-1", "-1"),
    ("very-negative-epoch", "-62135596800", "-62135596800"),
    ("epoch-seconds", "1893456000", "1700000000"),
    ("iso-8601", "2030-01-02T00:00:00Z", "2023-12-31T00:00:00Z"),
    ("empty", "", ""),
    ("blank", "   ", "   "),
    ("no-day-name", "02 Jan 2030 00:00:00 GMT", "31 Dec 2023 00:00:00 GMT"),
    (
        "control-char",
        "Tue, 02 Jan 2030 00:00:00 GMT\x01",
        "Sun, 31 Dec 2023 00:00:00 GMT\x01",
    ),
    # Full-width digits as a server decodes their UTF-8 bytes (ISO-8859-1).
    (
        "utf8-digits",
        f"Tue, {WIDE_02} Jan 2030 00:00:00 GMT",
        f"Sun, {WIDE_31} Dec 2023 00:00:00 GMT",
    ),
    (
        "long",
        "Tue, 02 Jan 2030 00:00:00 GMT" + " " * 5000,
        "Sun, 31 Dec 2023 00:00:00 GMT" + " " * 5000,
    ),
    ("huge", "9" * 65536, "9" * 65536),
]

CASES = [
    # Entity-tag lists (If-None-Match): a malformed member matches nothing.
    inm("valid", '"{tag}"', True),
    inm("weak", 'W/"{tag}"', True),
    inm("missing-quotes", "{tag}", False),
    inm("unbalanced-open", '"{tag}', False),
    inm("unbalanced-close", '{tag}"', False),
    inm("unbalanced-in-list", '"{tag}, "other"', False),
    inm("w-alone", "W/", False),
    inm("w-alone-then-valid", 'W/, "{tag}"', True),
    inm("lowercase-w", 'w/"{tag}"', False),
    inm("embedded-comma", '"x,{tag}"', False),
    inm("list", '"x", "{tag}"', True),
    inm("embedded-space", '"{tag} "', False),
    inm("spaces-around", '   "{tag}"   ', True),
    inm("control-char", '"{tag}\x01"', False),
    inm("nul", '"{tag}\x00"', False),
    inm("control-then-valid", '"\x7f", "{tag}"', True),
    inm("non-ascii", '"é{tag}"', False),
    inm("non-ascii-then-valid", '"é", "{tag}"', True),
    inm("star", "*", True),
    inm("star-then-tag", '*, "{tag}"', True),
    inm("star-then-other", '*, "other"', False),
    inm("tag-then-star", '"other", *', False),
    inm("empty", "", False),
    inm("only-commas", ", , ,,", False),
    inm("blank", "   ", False),
    inm("tag-glued-to-tag", '"{tag}""{tag}"', False),
    inm("trailing-garbage", '"{tag}"x', False),
    # If-Match: a malformed member never lets a write through.
    im("valid", '"{tag}"', True),
    im("weak", 'W/"{tag}"', False),
    im("missing-quotes", "{tag}", False),
    im("unbalanced", '"{tag}', False),
    im("w-alone", "W/", False),
    im("lowercase-w", 'w/"{tag}"', False),
    im("embedded-comma", '"x,{tag}"', False),
    im("list", '"x", "{tag}"', True),
    im("embedded-space", '" {tag}"', False),
    im("control-char", '"\x1b{tag}"', False),
    im("non-ascii", '"ÿ{tag}"', False),
    im("star", "*", True),
    im("star-then-other", '*, "other"', False),
    im("star-then-tag", '*, "{tag}"', True),
    im("empty", "", False),
    im("only-commas", ",,,", False),
    # Dates: valid forms are honoured, every wrong form is ignored.
    ims("valid-later", "Tue, 02 Jan 2024 00:00:00 GMT", True),
    ims("valid-equal", "{lm}", True),
    ims("valid-earlier", "Sun, 31 Dec 2023 00:00:00 GMT", False),
    ims("rfc850", "Tuesday, 02-Jan-24 00:00:00 GMT", True),
    ims("asctime", "Tue Jan  2 00:00:00 2024", True),
    *(ims(name, later, False) for name, later, _ in WRONG_DATES),
    ius("valid-earlier", "Sun, 31 Dec 2023 00:00:00 GMT", True),
    ius("valid-equal", "{lm}", False),
    ius("rfc850-earlier", "Sunday, 31-Dec-23 00:00:00 GMT", True),
    *(ius(name, earlier, False) for name, _, earlier in WRONG_DATES),
]


def _applies(case: Case, endpoint: Endpoint) -> bool:
    # mw-dated has no ETag: it is there for the dates only.
    return endpoint.has_etag or case.about_dates


PARAMS = [
    pytest.param(case, endpoint, id=f"{endpoint.name}:{case.id}")
    for case in CASES
    for endpoint in ENDPOINTS
    if _applies(case, endpoint)
]


def expected(case: Case, endpoint: Endpoint, method: str) -> int | str:
    get, put = case.get, case.put
    if case.about_dates and not endpoint.has_date:
        get, put = 200, OK  # §13.1.3, §13.1.4: no modification date, nothing to compare
    if method in {"GET", "HEAD"}:
        return get
    if endpoint.api and case.header not in {"If-Match", "If-Unmodified-Since"}:
        return 428  # the API requires If-Match (RFC 6585 §3) before anything else
    if (
        endpoint.api
        and case.header == "If-Unmodified-Since"
        and parse_http_date(case.value.replace("{lm}", LM)) is None
    ):
        # A date the server must ignore makes no precondition: the write is refused as unconditional.
        return 428
    return put


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    caches[conf.CACHE_ALIAS].clear()
    urls_hostile.WRITES.clear()
    urls_hostile.READS.clear()
    with override_settings(
        MIDDLEWARE=FULL_STACK,
        CONDITIONAL_PRECHECK_UNSAFE=True,
        ALLOWED_HOSTS=["testserver"],
    ):
        yield
    caches[conf.CACHE_ALIAS].clear()


@pytest.fixture
def objects() -> dict[str, Any]:
    """The objects the pages show, made on first use (most cases need none)."""
    return _LazyObjects()


class _LazyObjects(dict[str, Any]):
    def __missing__(self, name: str) -> Any:
        if name == "article":
            author = Author.objects.create(name="hostile")
            self[name] = Article.objects.create(
                author=author, title="original", body="text"
            )
        elif name == "blog_article":
            self[name] = ArticleFactory()
            # Its Last-Modified is when its version rows last changed: the date the cases assume.
            ResourceVersion.objects.update(updated_at=urls_hostile.LAST_MODIFIED)
            user = User.objects.create_user("demo", password="demo")
            user.user_permissions.add(
                Permission.objects.get(
                    codename="change_article", content_type__app_label="blog"
                )
            )
        else:
            raise KeyError(name)
        return self[name]


BASIC = "Basic " + base64.b64encode(b"demo:demo").decode()


def send(
    endpoint: Endpoint,
    objects: dict[str, Any],
    method: str,
    headers: dict[str, str] | None = None,
) -> Any:
    """The response of the full stack to ``method`` on ``endpoint`` with extra request headers."""
    path = endpoint.path
    if "{pk}" in path:
        path = path.format(pk=objects["blog_article" if endpoint.api else "article"].pk)
    extra = dict(headers or {})
    body = b""
    content_type = "application/octet-stream"
    if method not in {"GET", "HEAD"} and endpoint.api:
        method = "PATCH"
        body = b'{"title": "patched by a hostile test"}'
        content_type = "application/json"
        extra["HTTP_AUTHORIZATION"] = BASIC
    # HTTP_IF_NONE_MATCH -> If-None-Match: both clients turn ``headers`` into their own form.
    named = {key[5:].replace("_", "-").title(): value for key, value in extra.items()}
    if endpoint.is_async:
        client = AsyncClient()

        async def go() -> Any:
            return await client.generic(method, path, body, content_type, headers=named)

        return async_to_sync(go)()
    return Client().generic(method, path, body, content_type, headers=named)


def current_tag(endpoint: Endpoint, objects: dict[str, Any]) -> str:
    response = send(endpoint, objects, "GET")
    assert response.status_code == 200
    etag = ETag.from_header_value(response["ETag"])
    return etag.tag


def check(response: Any, want: int | str) -> None:
    status = response.status_code
    assert status != 500
    if want == OK:
        assert 200 <= status < 300, (status, getattr(response, "content", b"")[:300])
    else:
        assert status == want, (status, getattr(response, "content", b"")[:300])
    if status == 304:
        assert response.content == b""


def _render(case: Case, endpoint: Endpoint, objects: dict[str, Any]) -> str:
    if "{tag}" in case.value:
        return case.value.replace("{tag}", current_tag(endpoint, objects))
    return case.value.replace("{lm}", LM)


@pytest.mark.parametrize(("case", "endpoint"), PARAMS)
def test_get(case: Case, endpoint: Endpoint, objects: dict[str, Any]) -> None:
    value = _render(case, endpoint, objects)
    response = send(endpoint, objects, "GET", {HEADER_KEYS[case.header]: value})
    check(response, expected(case, endpoint, "GET"))


@pytest.mark.parametrize(("case", "endpoint"), PARAMS)
def test_write(case: Case, endpoint: Endpoint, objects: dict[str, Any]) -> None:
    value = _render(case, endpoint, objects)
    before = dict(urls_hostile.WRITES)
    response = send(endpoint, objects, "PUT", {HEADER_KEYS[case.header]: value})
    want = expected(case, endpoint, "PUT")
    check(response, want)
    if not endpoint.api:
        wrote = urls_hostile.WRITES.get(endpoint.name, 0) - before.get(endpoint.name, 0)
        assert wrote == (1 if want == OK else 0)


HEAD_CASES = [
    c
    for c in CASES
    if c.id
    in {
        "inm-valid",
        "inm-lowercase-w",
        "inm-star-then-tag",
        "im-weak",
        "ims-valid-later",
        "ims-pst",
    }
]


@pytest.mark.parametrize(
    ("case", "endpoint"),
    [
        pytest.param(c, e, id=f"{e.name}:{c.id}")
        for c in HEAD_CASES
        for e in ENDPOINTS
        if _applies(c, e)
    ],
)
def test_head_answers_as_get(
    case: Case, endpoint: Endpoint, objects: dict[str, Any]
) -> None:
    value = _render(case, endpoint, objects)
    response = send(endpoint, objects, "HEAD", {HEADER_KEYS[case.header]: value})
    check(response, expected(case, endpoint, "HEAD"))
    assert response.content == b""


# Writes: what makes a write conditional ------------------------------------------------------


@pytest.mark.parametrize("name", ["drop", "versioned"])
def test_decorated_views_are_not_checked_again_by_the_get_first_middleware(
    name: str, objects: dict[str, Any]
) -> None:
    """A decorated view evaluates its preconditions before it runs (atomically, when versioned):
    the middleware's CONDITIONAL_PRECHECK_UNSAFE must not run a GET of it first."""
    endpoint = next(e for e in ENDPOINTS if e.name == name)
    tag = current_tag(endpoint, objects)
    urls_hostile.READS.clear()
    check(send(endpoint, objects, "PUT", {"HTTP_IF_MATCH": f'"{tag}"'}), OK)
    assert urls_hostile.WRITES.get(name) == 1
    assert urls_hostile.READS.get(name, 0) == 0


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.api], ids=lambda e: e.name
)
def test_if_none_match_alone_does_not_satisfy_the_if_match_requirement(
    endpoint: Endpoint, objects: dict[str, Any]
) -> None:
    tag = current_tag(endpoint, objects)
    check(send(endpoint, objects, "PUT", {"HTTP_IF_NONE_MATCH": f'"{tag}"'}), 428)


@pytest.mark.parametrize(
    "value", ["yesterday", "", "Sun, 31 Dec 2023 00:00:00 PST", "-1"]
)
@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.api], ids=lambda e: e.name
)
def test_an_invalid_if_unmodified_since_does_not_satisfy_the_428_policy(
    endpoint: Endpoint, objects: dict[str, Any], value: str
) -> None:
    """§13.1.4 makes the server ignore an invalid date: the write would run unconditionally."""
    article = objects["blog_article"]
    title = article.title
    check(send(endpoint, objects, "PUT", {"HTTP_IF_UNMODIFIED_SINCE": value}), 428)
    article.refresh_from_db()
    assert article.title == title


@pytest.mark.parametrize("path", ["/required/{pk}/", "/required-async/{pk}/"])
def test_if_unmodified_since_does_not_satisfy_the_policy_of_an_undated_resource(
    path: str, objects: dict[str, Any]
) -> None:
    """A versioned view without ``last_modified``: §13.1.4 ignores any date, so only If-Match guards."""
    article = objects["article"]
    endpoint = Endpoint("required", path, "async" in path, has_date=False)
    response = send(
        endpoint,
        objects,
        "PUT",
        {"HTTP_IF_UNMODIFIED_SINCE": "Sun, 31 Dec 2023 00:00:00 GMT"},
    )
    check(response, 428)
    assert response.json()["required"] == ["If-Match"]
    article.refresh_from_db()
    assert article.title == "original"
    assert urls_hostile.WRITES == {}
    tag = current_tag(endpoint, objects)
    check(send(endpoint, objects, "PUT", {"HTTP_IF_MATCH": f'"{tag}"'}), OK)
    article.refresh_from_db()
    assert article.title == "renamed 1"


@pytest.mark.parametrize("value", ["yesterday", "", "Sun, 31 Dec 2023 00:00:00 PST"])
@override_settings(CONDITIONAL_REQUIRE_PRECONDITION=True)
def test_the_middleware_policy_ignores_an_invalid_if_unmodified_since(
    value: str, objects: dict[str, Any]
) -> None:
    endpoint = next(e for e in ENDPOINTS if e.name == "mw-dated")
    check(send(endpoint, objects, "PUT", {"HTTP_IF_UNMODIFIED_SINCE": value}), 428)
    assert urls_hostile.WRITES.get("mw-dated", 0) == 0
    # A valid date is a precondition the GET-first check evaluates against Last-Modified.
    check(send(endpoint, objects, "PUT", {"HTTP_IF_UNMODIFIED_SINCE": LM}), OK)
    check(
        send(
            endpoint,
            objects,
            "PUT",
            {"HTTP_IF_UNMODIFIED_SINCE": "Sun, 31 Dec 2023 00:00:00 GMT"},
        ),
        412,
    )
    assert urls_hostile.WRITES["mw-dated"] == 1


# Huge values --------------------------------------------------------------------------------

HUGE = 64 * 1024


def _huge_list(first: str, last: str) -> str:
    """About 64 KB of entity-tags: ``first``, filler members, then ``last``."""
    filler = ", ".join(f'"filler-{n:05d}"' for n in range(HUGE // 15))
    return f"{first}, {filler}, {last}"


def test_parsing_64_kb_of_tags_is_bounded() -> None:
    # CPU time of this process: a bound on the work, whatever else the machine runs.
    value = _huge_list('"a"', '"b"')
    assert len(value) >= HUGE
    started = time.process_time()
    for _ in range(3):
        parse_entity_tags(value, conf.MAX_LIST_MEMBERS)
    elapsed = (time.process_time() - started) / 3
    assert elapsed < 0.05, f"{elapsed * 1000:.1f} ms to parse a 64 KB header"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param('"' + "a" * HUGE + '"', id="one-64kb-tag"),
        pytest.param('"' + "a" * HUGE, id="unclosed-64kb-tag"),
        pytest.param("W/" * (HUGE // 2), id="64kb-of-W/"),
        pytest.param('"' * HUGE, id="64kb-of-quotes"),
        pytest.param("," * HUGE, id="64kb-of-commas"),
        pytest.param(" " * HUGE + '"a"', id="64kb-of-spaces"),
        pytest.param('"a",' * (HUGE // 4), id="16k-members"),
        pytest.param("\x01" * HUGE, id="64kb-of-controls"),
        pytest.param("é" * HUGE, id="64kb-of-latin-1"),
    ],
)
def test_pathological_64_kb_values_parse_in_bounded_time(value: str) -> None:
    validators = Validators(ETag("a"), None)
    started = time.process_time()
    for header in ("if_match", "if_none_match", "if_range"):
        headers = ConditionalHeaders(**{header: value, "range": "bytes=0-1"})
        evaluate("GET", headers, validators, max_members=conf.MAX_LIST_MEMBERS)
    for header in ("if_modified_since", "if_unmodified_since"):
        headers = ConditionalHeaders(**{header: value})
        evaluate("GET", headers, Validators(None, urls_hostile.LAST_MODIFIED))
    headers = ConditionalHeaders(if_none_match='"a-gzip"', accept_encoding=value)
    evaluate("GET", headers, validators, max_members=conf.MAX_LIST_MEMBERS)
    elapsed = time.process_time() - started
    # Linear work is about 15 ms here; a quadratic parser would take minutes. The bound leaves
    # room for a loaded CI machine (this is a guard against blow-ups, not a benchmark).
    assert elapsed < 0.5, f"{elapsed * 1000:.1f} ms for six 64 KB headers"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_64_kb_if_none_match_matches_when_the_tag_comes_first(
    endpoint: Endpoint, objects: dict[str, Any]
) -> None:
    if not endpoint.has_etag:
        pytest.skip("no ETag")
    tag = current_tag(endpoint, objects)
    started = time.perf_counter()
    response = send(
        endpoint, objects, "GET", {"HTTP_IF_NONE_MATCH": _huge_list(f'"{tag}"', '"z"')}
    )
    elapsed = time.perf_counter() - started
    check(response, 304)
    assert elapsed < 1.0


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_members_past_the_cap_are_not_read(
    endpoint: Endpoint, objects: dict[str, Any]
) -> None:
    """10,000 members, the matching one last: past CONDITIONAL_MAX_LIST_MEMBERS, so no match."""
    if not endpoint.has_etag:
        pytest.skip("no ETag")
    tag = current_tag(endpoint, objects)
    members = ", ".join(f'"m{n}"' for n in range(9_999))
    value = f'{members}, "{tag}"'
    started = time.perf_counter()
    check(send(endpoint, objects, "GET", {"HTTP_IF_NONE_MATCH": value}), 200)
    # The same list in If-Match never lets the write through.
    check(send(endpoint, objects, "PUT", {"HTTP_IF_MATCH": value}), 412)
    assert time.perf_counter() - started < 2.0


@override_settings(CONDITIONAL_MAX_LIST_MEMBERS=10_001)
def test_the_cap_is_a_setting(objects: dict[str, Any]) -> None:
    endpoint = ENDPOINTS[0]
    tag = current_tag(endpoint, objects)
    members = ", ".join(f'"m{n}"' for n in range(9_999))
    check(
        send(endpoint, objects, "GET", {"HTTP_IF_NONE_MATCH": f'{members}, "{tag}"'}),
        304,
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_a_huge_date_is_ignored(endpoint: Endpoint, objects: dict[str, Any]) -> None:
    value = "Tue, 02 Jan 2030 00:00:00 GMT" * 2000
    check(send(endpoint, objects, "GET", {"HTTP_IF_MODIFIED_SINCE": value}), 200)


# If-Range and Range -------------------------------------------------------------------------

RANGE_CASES = [
    ('"{tag}"', 206),
    ('W/"{tag}"', 200),  # §13.1.5: a weak tag never validates a range
    ('w/"{tag}"', 200),
    ("{tag}", 200),
    ('"{tag}", "x"', 200),  # If-Range takes one validator, not a list
    ('"{tag}', 200),
    ("{lm}", 206),
    ("Tue, 02 Jan 2024 00:00:00 GMT", 200),  # a date must match exactly
    ("Mon, 01 Jan 2024 12:00:00 PST", 200),
    ("Mon, 01 Jan 24 12:00:00 GMT", 200),
    ("", 200),
    ("*", 200),
    ("\x00", 200),
    ('"' * HUGE, 200),
]


@pytest.mark.parametrize(("value", "status"), RANGE_CASES)
def test_if_range(value: str, status: int) -> None:
    header = value.replace("{tag}", urls_hostile.TAG).replace("{lm}", LM)
    response = Client().get(
        "/range/", headers={"Range": "bytes=0-9", "If-Range": header}
    )
    assert response.status_code == status
    body = urls_hostile.BODY.encode()
    assert response.content == (body[:10] if status == 206 else body)


@pytest.mark.parametrize(
    "value",
    [
        "bytes=abc",
        "bytes=9-0",
        "bytes=-",
        "bytes=0-1,2-3",
        "items=0-1",
        "",
        "bytes=" + "9" * 5000,
        "\x00",
    ],
)
def test_malformed_range_with_if_range_is_never_a_500(value: str) -> None:
    response = Client().get(
        "/range/", headers={"Range": value, "If-Range": f'"{urls_hostile.TAG}"'}
    )
    assert response.status_code in {200, 206, 416}


# Accept-Encoding, which decides whether a coding-suffixed tag ("v1-gzip") matches -------------


@pytest.mark.parametrize(
    ("accept_encoding", "status"),
    [
        ("gzip", 304),
        ("GZIP", 304),
        ("*", 304),
        ("gzip;q=0", 200),
        ("gzip;q=0.000", 200),
        ("gzip;q=", 200),
        ("gzip;q=abc", 304),
        ("identity", 200),
        ("", 200),
        (";;;,,,", 200),
        ("br, " * 20_000 + "gzip", 200),  # past the member cap
        ("\x00gzip", 200),
    ],
)
def test_accept_encoding_decides_coded_tags(accept_encoding: str, status: int) -> None:
    response = Client().get(
        "/drop/",
        headers={
            "If-None-Match": f'"{urls_hostile.TAG}-gzip"',
            "Accept-Encoding": accept_encoding,
        },
    )
    assert response.status_code == status


# Property-based fuzzing through the HTTP stacks ------------------------------------------------

# Header text as a WSGI server gives it: any latin-1 character (bytes decoded as ISO-8859-1).
latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=60)
raw_bytes_as_latin1 = st.binary(max_size=60).map(lambda data: data.decode("latin-1"))
TAG_LIKE = st.sampled_from(
    [
        '"{tag}"',
        'W/"{tag}"',
        '"{tag}-gzip"',
        "*",
        '"other"',
        "{tag}",
        ", ",
        '"',
        "W/",
        'w/"{tag}"',
    ]
)
fragment = TAG_LIKE | latin1 | raw_bytes_as_latin1
header_value = st.lists(fragment, max_size=5).map("".join)
date_value = st.sampled_from(
    [LM, "Tue, 02 Jan 2030 00:00:00 GMT", "Sun, 31 Dec 2023 00:00:00 GMT", ""]
) | st.builds(
    lambda a, b: a + b,
    st.sampled_from([LM, "Tuesday, 02-Jan-30 00:00:00 GMT", ""]),
    latin1,
)
FUZZED = {
    "HTTP_IF_MATCH": header_value,
    "HTTP_IF_NONE_MATCH": header_value,
    "HTTP_IF_MODIFIED_SINCE": date_value,
    "HTTP_IF_UNMODIFIED_SINCE": date_value,
    "HTTP_IF_RANGE": header_value | date_value,
    "HTTP_RANGE": st.sampled_from(["bytes=0-9", "bytes=0-"]) | latin1,
    "HTTP_ACCEPT_ENCODING": st.sampled_from(["gzip", "br;q=0", "*"]) | latin1,
}
fuzzed_headers = st.fixed_dictionaries({}, optional=FUZZED)
FUZZ_ENDPOINTS = [e for e in ENDPOINTS if not e.api] + [
    Endpoint("range", "/range/", False)
]


def _oracle_allows_304(meta: dict[str, str], tag: str | None, has_date: bool) -> bool:
    """Whether a 304 is allowed: If-None-Match holds a valid tag weakly matching (or a lone ``*``;
    or the tag with ``-gzip`` when gzip may be accepted), or, without If-None-Match,
    If-Modified-Since is one valid date not before Last-Modified."""
    if "HTTP_IF_NONE_MATCH" in meta:
        value = meta["HTTP_IF_NONE_MATCH"]
        if value.strip(" \t") == "*":
            return True
        # A member equal to the exact quoted tag, optionally W/, as its own list element.
        quoted = {f'"{tag}"'}
        accept_encoding = meta.get("HTTP_ACCEPT_ENCODING", "").lower()
        if "gzip" in accept_encoding or "*" in accept_encoding:
            quoted.add(f'"{tag}-gzip"')  # the compressed representation's tag
        members = [m.strip(" \t").removeprefix("W/") for m in value.split(",")]
        return tag is not None and any(m in quoted for m in members)
    if "HTTP_IF_MODIFIED_SINCE" in meta and has_date:
        date = parse_http_date(meta["HTTP_IF_MODIFIED_SINCE"])
        return date is not None and date >= urls_hostile.LAST_MODIFIED
    return False


@pytest.mark.parametrize("endpoint", FUZZ_ENDPOINTS, ids=lambda e: e.name)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzed_conditional_headers_never_give_a_500_nor_a_wrong_304(
    endpoint: Endpoint, objects: dict[str, Any], data: st.DataObject
) -> None:
    tag = current_tag(endpoint, objects) if endpoint.has_etag else None
    meta = data.draw(fuzzed_headers)
    meta = {key: value.replace("{tag}", tag or "x") for key, value in meta.items()}
    method = data.draw(st.sampled_from(["GET", "HEAD", "PUT"]))
    response = send(endpoint, objects, method, meta)
    assert response.status_code in {200, 204, 206, 304, 412, 416}, response.status_code
    if response.status_code == 304:
        assert method in {"GET", "HEAD"}
        assert _oracle_allows_304(meta, tag, endpoint.has_date), meta
    if response.status_code == 412:
        assert any(
            key in meta
            for key in (
                "HTTP_IF_MATCH",
                "HTTP_IF_UNMODIFIED_SINCE",
                "HTTP_IF_NONE_MATCH",
            )
        )


def test_the_engine_outcome_never_depends_on_member_order_past_garbage() -> None:
    """Garbage before a valid member never hides it (a skipped member does not end the list)."""
    validators = Validators(ETag("v1"), None)
    for garbage in ['w/"v1"', "\x00", '"a b"', "W/", "abc", "é"]:
        headers = ConditionalHeaders(if_none_match=f'{garbage}, "v1"')
        assert evaluate("GET", headers, validators).outcome is Outcome.NOT_MODIFIED, (
            garbage
        )


def test_a_first_write_with_the_last_modified_it_was_given_is_told_to_use_if_match(
    objects: dict[str, Any],
) -> None:
    """Where Last-Modified is the time of the versions' last bump, kept to the millisecond, the
    date names a second in which the resource changed, so If-Unmodified-Since with it cannot prove
    the client saw every change of that second: 412 names the precondition and carries the ETag,
    and If-Match with it succeeds. Rows lock() creates never move Last-Modified."""
    for endpoint in (e for e in ENDPOINTS if e.api):
        page = send(endpoint, objects, "GET")
        response = send(
            endpoint,
            objects,
            "PUT",
            {"HTTP_IF_UNMODIFIED_SINCE": page["Last-Modified"]},
        )
        if (
            response.status_code == 412
        ):  # a date kept to the millisecond (FROM_VERSIONS)
            assert json.loads(response.content)["precondition"] == "If-Unmodified-Since"
            assert response["ETag"] == page["ETag"]
            response = send(endpoint, objects, "PUT", {"HTTP_IF_MATCH": page["ETag"]})
        check(response, OK)  # a date in whole seconds: §13.1.4 as written


@pytest.mark.skipif(
    django.VERSION < (5, 0),
    reason="Django < 5.0 raises OverflowError/DataError on an out-of-range integer lookup "
    "in the view's own get_object_or_404 (Django ticket #27397, fixed in 5.0)",
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "path",
    [
        "/versioned/99999999999999999999999/",  # past any integer column
        "/versioned-async/99999999999999999999999/",
        "/versioned/0/",
    ],
)
def test_a_primary_key_out_of_range_is_a_404(path: str, method: str) -> None:
    """A URL naming no object: the view's lookup finds nothing, and a write's lock leaves no row
    behind (the 404 rolls the write's transaction back)."""
    headers = {"If-Match": "*", "If-None-Match": '"x"', "Authorization": BASIC}
    response = Client().generic(method, path, headers=headers)
    assert response.status_code in {401, 404, 412}, response.status_code
    assert ResourceVersion.objects.filter(object_pk__startswith="9999").count() == 0


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "path",
    ["/api/articles/99999999999999999999999/", "/articles/99999999999999999999999/"],
)
def test_the_example_answers_404_to_a_primary_key_out_of_range(
    path: str, method: str
) -> None:
    # On every Django: the example's URL converter bounds the pk before any lookup.
    headers = {"If-Match": "*", "If-None-Match": '"x"', "Authorization": BASIC}
    response = Client().generic(method, path, headers=headers)
    assert response.status_code == 404
    assert ResourceVersion.objects.filter(object_pk__startswith="9999").count() == 0
