from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from django_conditional.validators import ETag, Validators, sanitize_opaque_tag, to_utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"abc"', ETag("abc")),
        ('W/"abc"', ETag("abc", weak=True)),
        ("abc", ETag("abc")),  # unquoted, as Django's quote_etag accepts
        ('""', ETag("")),
        ("W/abc", ETag("W/abc")),  # not a weak tag: Django quotes the whole value
        ('"a"b"', ETag("%22a%22b%22")),
        ("a b", ETag("a%20b")),
        ("100%", ETag("100%")),
        ("a b%", ETag("a%20b%25")),
        ("é", ETag("é")),  # obs-text is allowed
        ("ŧ", ETag("%C5%A7")),  # not latin-1: encoded
    ],
)
def test_from_header_value(value: str, expected: ETag) -> None:
    assert ETag.from_header_value(value) == expected


def test_str() -> None:
    assert str(ETag("x")) == '"x"'
    assert str(ETag("x", weak=True)) == 'W/"x"'


def test_comparisons_rfc_9110_table() -> None:
    # RFC 9110 §8.8.3.2 example table.
    weak_1, weak_2, strong_1 = ETag("1", True), ETag("2", True), ETag("1")
    assert not weak_1.strong_match(weak_1) and weak_1.weak_match(weak_1)
    assert not weak_1.strong_match(weak_2) and not weak_1.weak_match(weak_2)
    assert not weak_1.strong_match(strong_1) and weak_1.weak_match(strong_1)
    assert strong_1.strong_match(strong_1) and strong_1.weak_match(strong_1)


def test_sanitize_keeps_valid_tags() -> None:
    tag = "abc!#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"
    assert sanitize_opaque_tag(tag) is tag


def test_to_utc() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5, 678)
    assert to_utc(naive) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    plus_two = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert to_utc(plus_two) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_validators_of() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=timezone.utc)
    assert Validators.of('"a"') == Validators(ETag("a"), None, exists=True)
    assert Validators.of(ETag("a")).etag == ETag("a")
    assert Validators.of(last_modified=moment) == Validators(
        None, moment.replace(microsecond=0), exists=True, changed_within_second=True
    )
    whole = moment.replace(microsecond=0)
    assert not Validators.of(last_modified=whole).changed_within_second
    assert Validators.of() == Validators(None, None, exists=False)
