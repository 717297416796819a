"""The pure engine: every step and branch of RFC 9110 §13.1 and §13.2.2."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from django_conditional.preconditions import (
    ANY,
    ConditionalHeaders,
    Evaluation,
    Outcome,
    accepts_coding,
    evaluate,
    parse_entity_tags,
)
from django_conditional.validators import ETag, Validators

UTC = timezone.utc
LAST_MODIFIED = datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
BEFORE = "Thu, 19 Nov 2026 08:00:00 GMT"
EXACT = "Fri, 20 Nov 2026 08:00:00 GMT"
AFTER = "Sat, 21 Nov 2026 08:00:00 GMT"
STRONG = Validators(ETag("v1"), LAST_MODIFIED)
WEAK = Validators(ETag("v1", weak=True), LAST_MODIFIED)
NO_ETAG = Validators(None, LAST_MODIFIED)
NO_DATE = Validators(ETag("v1"), None)
MISSING = Validators(None, None, exists=False)

PROCEED = Evaluation(Outcome.PROCEED)
NOT_MODIFIED_INM = Evaluation(Outcome.NOT_MODIFIED, "If-None-Match")
NOT_MODIFIED_IMS = Evaluation(Outcome.NOT_MODIFIED, "If-Modified-Since")
FAILED_IM = Evaluation(Outcome.PRECONDITION_FAILED, "If-Match")
FAILED_IUS = Evaluation(Outcome.PRECONDITION_FAILED, "If-Unmodified-Since")
FAILED_INM = Evaluation(Outcome.PRECONDITION_FAILED, "If-None-Match")
NO_RANGE = Evaluation(Outcome.PROCEED, "If-Range", range_allowed=False)


def run(method: str, validators: Validators = STRONG, **headers: str) -> Evaluation:
    return evaluate(method, ConditionalHeaders(**headers), validators, now=NOW)


# --- Parsing entity-tag lists -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*", ANY),
        ("  *\t", ANY),
        ('"a"', (ETag("a"),)),
        ('W/"a"', (ETag("a", True),)),
        ('"a", W/"b" ,"c"', (ETag("a"), ETag("b", True), ETag("c"))),
        (
            '"a,b", "c"',
            (ETag("a,b"), ETag("c")),
        ),  # a comma inside quotes is part of the tag
        ('"", "a"', (ETag(""), ETag("a"))),
        (', , "a",, ,"b",', (ETag("a"), ETag("b"))),  # empty list elements (§5.6.1.2)
        ("", ()),
        ("   ", ()),
        (",,,", ()),
        ("abc", ()),  # missing quotes
        ('"abc', ()),  # unbalanced quote
        ('abc"', ()),
        ('"abc", "d', (ETag("abc"),)),
        ("W/", ()),  # W/ alone
        ('w/"abc"', ()),  # lowercase w/
        ('W/ "abc"', ()),
        ('"a" "b"', ()),
        ('"a"x, "b"', (ETag("b"),)),
        ('"a b", "c"', (ETag("c"),)),  # space is not an etagc
        ('"a\x01", "c"', (ETag("c"),)),  # control character
        ('"a\x7f", "c"', (ETag("c"),)),
        ('"é", "c"', (ETag("é"), ETag("c"))),  # obs-text (latin-1 decoded bytes)
        ('"ŧ"', ()),  # beyond latin-1 cannot come from a header
        ('*, "a"', (ETag("a"),)),  # "*" mixed with tags is not a valid list member
        ('"a", *', (ETag("a"),)),
    ],
)
def test_parse_entity_tags(value: str, expected: object) -> None:
    assert parse_entity_tags(value) == expected


def test_parse_caps_list_members() -> None:
    value = ", ".join(f'"t{i}"' for i in range(10_000))
    assert parse_entity_tags(value, max_members=3) == (
        ETag("t0"),
        ETag("t1"),
        ETag("t2"),
    )
    assert len(parse_entity_tags(value, max_members=10_000)) == 10_000


def test_malformed_members_count_towards_the_cap() -> None:
    assert parse_entity_tags('x, y, "a"', max_members=2) == ()


# --- Step 1: If-Match (strong comparison, "*") -----------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"])
def test_if_match_passes_with_strong_match(method: str) -> None:
    assert run(method, if_match='"v1"') == PROCEED
    assert run(method, if_match='"x", "v1"') == PROCEED


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_if_match_fails_with_412(method: str) -> None:
    assert run(method, if_match='"v2"') == FAILED_IM


def test_if_match_uses_strong_comparison_both_ways() -> None:
    assert run("PUT", if_match='W/"v1"') == FAILED_IM  # weak in the request
    assert run("PUT", WEAK, if_match='"v1"') == FAILED_IM  # weak current tag
    assert run("PUT", WEAK, if_match='W/"v1"') == FAILED_IM


def test_if_match_star() -> None:
    assert run("PUT", if_match="*") == PROCEED
    assert run("PUT", NO_ETAG, if_match="*") == PROCEED  # exists without an ETag
    assert run("PUT", MISSING, if_match="*") == FAILED_IM


def test_if_match_without_current_etag_fails() -> None:
    assert run("PUT", NO_ETAG, if_match='"v1"') == FAILED_IM


def test_if_match_malformed_or_empty_never_lets_a_write_through() -> None:
    assert run("PUT", if_match="v1") == FAILED_IM
    assert run("PUT", if_match="") == FAILED_IM


# --- Step 2: If-Unmodified-Since -----------------------------------------------------------


def test_if_unmodified_since() -> None:
    assert run("PUT", if_unmodified_since=AFTER) == PROCEED
    assert (
        run("PUT", if_unmodified_since=EXACT) == PROCEED
    )  # equal is "not modified since"
    assert run("PUT", if_unmodified_since=BEFORE) == FAILED_IUS
    assert run("GET", if_unmodified_since=BEFORE) == FAILED_IUS


def test_if_unmodified_since_ignored_when_if_match_present() -> None:
    assert run("PUT", if_match='"v1"', if_unmodified_since=BEFORE) == PROCEED


def test_if_unmodified_since_ignored_without_modification_date() -> None:
    assert run("PUT", NO_DATE, if_unmodified_since=BEFORE) == PROCEED


@pytest.mark.parametrize(
    "value", ["garbage", f"{BEFORE}, {BEFORE}", "Thu, 19 Nov 26 08:00:00 GMT", ""]
)
def test_if_unmodified_since_ignored_when_invalid(value: str) -> None:
    assert run("PUT", if_unmodified_since=value) == PROCEED


# --- Step 3: If-None-Match (weak comparison, "*") --------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_none_match_gives_304_for_get_and_head(method: str) -> None:
    assert run(method, if_none_match='"v1"') == NOT_MODIFIED_INM


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH"])
def test_if_none_match_gives_412_for_other_methods(method: str) -> None:
    assert run(method, if_none_match='"v1"') == FAILED_INM


def test_if_none_match_uses_weak_comparison_both_ways() -> None:
    assert run("GET", if_none_match='W/"v1"') == NOT_MODIFIED_INM
    assert run("GET", WEAK, if_none_match='"v1"') == NOT_MODIFIED_INM
    assert run("GET", WEAK, if_none_match='W/"v1"') == NOT_MODIFIED_INM


def test_if_none_match_list() -> None:
    assert run("GET", if_none_match='"a", , W/"v1" ,"b"') == NOT_MODIFIED_INM
    assert run("GET", if_none_match='"a", "b"') == PROCEED


def test_if_none_match_star() -> None:
    assert run("GET", if_none_match="*") == NOT_MODIFIED_INM
    assert (
        run("GET", NO_ETAG, if_none_match="*") == NOT_MODIFIED_INM
    )  # exists without ETag
    assert run("PUT", if_none_match="*") == FAILED_INM
    assert run("PUT", MISSING, if_none_match="*") == PROCEED  # create-only PUT


def test_if_none_match_without_current_etag_passes() -> None:
    assert run("GET", NO_ETAG, if_none_match='"v1"') == PROCEED


def test_if_none_match_malformed_never_gives_304() -> None:
    assert run("GET", if_none_match="v1") == PROCEED
    assert run("GET", if_none_match='w/"v1"') == PROCEED
    assert run("GET", if_none_match="") == PROCEED


def test_if_none_match_after_passing_if_match() -> None:
    assert run("GET", if_match='"v1"', if_none_match='"v1"') == NOT_MODIFIED_INM


# --- Step 4: If-Modified-Since (GET and HEAD only) -------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_modified_since(method: str) -> None:
    assert run(method, if_modified_since=EXACT) == NOT_MODIFIED_IMS
    assert run(method, if_modified_since=AFTER) == NOT_MODIFIED_IMS
    assert run(method, if_modified_since=BEFORE) == PROCEED


def test_if_modified_since_in_the_future_gives_304() -> None:
    # The MDN example: a date far in the future is still a valid date.
    assert (
        run("GET", if_modified_since="Tue, 21 Nov 2050 08:00:00 GMT")
        == NOT_MODIFIED_IMS
    )


def test_if_modified_since_obsolete_forms() -> None:
    assert (
        run("GET", if_modified_since="Friday, 20-Nov-26 08:00:00 GMT")
        == NOT_MODIFIED_IMS
    )
    assert run("GET", if_modified_since="Fri Nov 20 08:00:00 2026") == NOT_MODIFIED_IMS


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_if_modified_since_ignored_for_other_methods(method: str) -> None:
    assert run(method, if_modified_since=AFTER) == PROCEED


def test_if_modified_since_ignored_when_if_none_match_present() -> None:
    assert run("GET", if_none_match='"other"', if_modified_since=AFTER) == PROCEED


@pytest.mark.parametrize(
    "value", ["garbage", f"{AFTER}, {AFTER}", "Sat, 21 Nov 2026 08:00:00 UTC"]
)
def test_if_modified_since_ignored_when_invalid(value: str) -> None:
    assert run("GET", if_modified_since=value) == PROCEED


def test_if_modified_since_ignored_without_modification_date() -> None:
    assert run("GET", NO_DATE, if_modified_since=AFTER) == PROCEED


def test_sub_second_modification_is_not_hidden() -> None:
    # A resource changed half a second after the date the client holds has been modified.
    moment = LAST_MODIFIED + timedelta(milliseconds=500)
    validators = Validators(None, moment)
    assert run("GET", validators, if_modified_since=EXACT) == PROCEED


# --- Step 5: If-Range (§13.1.5) ---------------------------------------------------------------


def test_if_range_strong_etag_match_allows_range() -> None:
    assert run("GET", if_range='"v1"', range="bytes=0-9") == PROCEED


def test_if_range_mismatch_or_weak_ignores_range() -> None:
    assert run("GET", if_range='"v2"', range="bytes=0-9") == NO_RANGE
    assert (
        run("GET", if_range='W/"v1"', range="bytes=0-9") == NO_RANGE
    )  # weak never matches
    assert run("GET", WEAK, if_range='"v1"', range="bytes=0-9") == NO_RANGE
    assert run("GET", NO_ETAG, if_range='"v1"', range="bytes=0-9") == NO_RANGE
    assert run("GET", if_range='"v1', range="bytes=0-9") == NO_RANGE


def test_if_range_date_must_match_exactly() -> None:
    assert run("GET", if_range=EXACT, range="bytes=0-9") == PROCEED
    assert run("GET", if_range=AFTER, range="bytes=0-9") == NO_RANGE
    assert run("GET", if_range="garbage", range="bytes=0-9") == NO_RANGE
    assert run("GET", NO_DATE, if_range=EXACT, range="bytes=0-9") == NO_RANGE


def test_if_range_date_must_be_a_strong_validator() -> None:
    # §8.8.2.2: a Last-Modified less than a second old is weak.
    fresh = Validators(None, NOW)
    assert (
        run("GET", fresh, if_range="Tue, 24 Nov 2026 12:00:00 GMT", range="bytes=0-9")
        == NO_RANGE
    )


def test_if_range_ignored_without_range_or_for_other_methods() -> None:
    assert run("GET", if_range='"v2"') == PROCEED
    assert run("HEAD", if_range='"v2"', range="bytes=0-9") == PROCEED
    assert run("PUT", if_range='"v2"', range="bytes=0-9") == PROCEED


def test_if_range_uses_the_clock_by_default() -> None:
    headers = ConditionalHeaders(if_range=EXACT, range="bytes=0-9")
    assert evaluate("GET", headers, STRONG) == PROCEED


def test_if_range_after_a_passing_precondition() -> None:
    assert run("GET", if_match='"v1"', if_range='"v0"', range="bytes=0-1") == NO_RANGE


# --- Order and methods (§13.2.1, §13.2.2) ---------------------------------------------------


def test_if_match_is_evaluated_before_if_none_match() -> None:
    assert run("GET", if_match='"v2"', if_none_match='"v1"') == FAILED_IM


def test_if_unmodified_since_is_evaluated_before_if_none_match() -> None:
    assert run("GET", if_unmodified_since=BEFORE, if_none_match='"v1"') == FAILED_IUS


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "CONNECT"])
def test_methods_that_select_no_representation_ignore_preconditions(
    method: str,
) -> None:
    assert run(method, if_match='"v2"', if_none_match='"v1"') == PROCEED


def test_no_headers_proceeds() -> None:
    assert run("GET") == PROCEED


def test_from_meta_and_any_precondition() -> None:
    meta = {
        "HTTP_IF_MATCH": '"a"',
        "HTTP_IF_NONE_MATCH": '"b"',
        "HTTP_IF_MODIFIED_SINCE": EXACT,
        "HTTP_IF_UNMODIFIED_SINCE": AFTER,
        "HTTP_IF_RANGE": '"c"',
        "HTTP_RANGE": "bytes=0-1",
    }
    headers = ConditionalHeaders.from_meta(meta)
    assert headers == ConditionalHeaders('"a"', '"b"', EXACT, AFTER, '"c"', "bytes=0-1")
    assert headers.any_precondition
    assert not ConditionalHeaders.from_meta({"HTTP_IF_RANGE": '"c"'}).any_precondition
    for field in (
        "if_match",
        "if_none_match",
        "if_modified_since",
        "if_unmodified_since",
    ):
        assert ConditionalHeaders(**{field: "x"}).any_precondition


# --- Content-coding suffixes (compressors and proxies: "v1" -> "v1-gzip") -------------------


def test_if_match_recognises_a_coding_suffix() -> None:
    assert run("PUT", if_match='"v1-gzip"') == PROCEED
    assert run("PUT", if_match='"v1-br"') == PROCEED
    assert run("PUT", if_match='"v0-gzip"') == FAILED_IM
    assert run("PUT", if_match='"v1gzip"') == FAILED_IM
    assert run("PUT", if_match='W/"v1-gzip"') == FAILED_IM  # still strong comparison
    assert run("PUT", WEAK, if_match='"v1-gzip"') == FAILED_IM


def test_if_none_match_coding_suffix_only_for_requests_that_get_that_coding() -> None:
    gzip = "gzip, deflate"
    assert (
        run("GET", if_none_match='"v1-gzip"', accept_encoding=gzip) == NOT_MODIFIED_INM
    )
    assert (
        run("GET", if_none_match='W/"v1-gzip"', accept_encoding=gzip)
        == NOT_MODIFIED_INM
    )
    assert run("GET", if_none_match='"v1-gzip"') == PROCEED  # identity request
    assert run("GET", if_none_match='"v1-br"', accept_encoding=gzip) == PROCEED
    assert run("GET", if_none_match='"v0-gzip"', accept_encoding=gzip) == PROCEED
    assert (
        run("GET", NO_ETAG, if_none_match='"v1-gzip"', accept_encoding=gzip) == PROCEED
    )


@pytest.mark.parametrize(
    ("accept_encoding", "accepted"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0.001", True),
        ("*", True),
        ("*;q=0", False),
        ("br, *", True),
        ("*, gzip;q=0", False),
        ("identity", False),
    ],
)
def test_accepts_coding(accept_encoding: str | None, accepted: bool) -> None:
    assert accepts_coding(accept_encoding, "gzip", 100) is accepted


def test_accepts_coding_reads_at_most_max_members() -> None:
    assert not accepts_coding("br, " * 10 + "gzip", "gzip", 5)


# --- Parsed once: Preconditions ----------------------------------------------------------------


def test_preconditions_parse_every_field_once() -> None:
    from django_conditional.preconditions import Preconditions

    parsed = Preconditions.parse(
        ConditionalHeaders(
            if_match='"a", W/"b"',
            if_none_match="*",
            if_modified_since=EXACT,
            if_unmodified_since="garbage",
            if_range=EXACT,
            range="bytes=0-1",
        )
    )
    assert parsed.if_match == (ETag("a"), ETag("b", weak=True))
    assert parsed.if_none_match == ANY
    assert parsed.if_modified_since == LAST_MODIFIED
    assert parsed.if_unmodified_since is None  # invalid: ignored (§13.1.4)
    assert parsed.if_range == LAST_MODIFIED and parsed.has_if_range
    assert parsed.any and parsed.any_precondition
    stripped = parsed.without_range()
    assert stripped.range is None and not stripped.has_if_range
    assert Preconditions.parse(ConditionalHeaders(if_range='"x"')).if_range == ETag("x")
    assert Preconditions.parse(ConditionalHeaders(if_range="W/")).if_range is None
    only_range = Preconditions.parse(ConditionalHeaders(if_range='"x"'))
    assert only_range.any and not only_range.any_precondition
    assert not Preconditions.parse(ConditionalHeaders()).any
    # Parsed headers evaluate exactly as raw ones.
    assert evaluate("GET", parsed, STRONG, now=NOW) == run(
        "GET",
        if_match='"a", W/"b"',
        if_none_match="*",
        if_modified_since=EXACT,
        if_unmodified_since="garbage",
    )


def test_from_meta_reads_non_text_values_as_text() -> None:
    headers = ConditionalHeaders.from_meta({"HTTP_IF_NONE_MATCH": 42})
    assert headers.if_none_match == "42"


def test_if_unmodified_since_fails_when_the_change_was_inside_the_named_second() -> (
    None
):
    """Two changes within one second look alike to a date: only If-Match tells them apart."""
    precise = Validators.of(ETag("v2"), LAST_MODIFIED.replace(microsecond=500_000))
    assert precise.changed_within_second
    assert run("PUT", precise, if_unmodified_since=EXACT) == FAILED_IUS
    assert run("PUT", precise, if_unmodified_since=AFTER) == PROCEED
    # A whole-second modification time is taken as given (the source's own precision).
    assert run("PUT", STRONG, if_unmodified_since=EXACT) == PROCEED
