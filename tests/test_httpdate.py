from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from django_conditional.httpdate import format_http_date, parse_http_date

UTC = timezone.utc
SUNDAY = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime
        "Sun Nov 06 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT ",
    ],
)
def test_the_three_forms(value: str) -> None:
    assert parse_http_date(value, now_year=2026) == SUNDAY


def test_future_date_is_valid() -> None:
    assert parse_http_date("Tue, 21 Nov 2050 08:00:00 GMT") == datetime(
        2050, 11, 21, 8, tzinfo=UTC
    )


def test_pre_epoch_date() -> None:
    moment = parse_http_date("Thu, 01 Jan 1953 00:00:00 GMT")
    assert moment is not None and moment.timestamp() < 0


@pytest.mark.parametrize(
    ("value", "year"),
    [
        ("Sunday, 06-Nov-94 08:49:37 GMT", 1994),
        ("Monday, 06-Nov-26 08:49:37 GMT", 2026),
        ("Monday, 06-Nov-76 08:49:37 GMT", 2076),
        ("Monday, 06-Nov-77 08:49:37 GMT", 1977),
    ],
)
def test_rfc850_two_digit_year_fifty_year_rule(value: str, year: int) -> None:
    moment = parse_http_date(value, now_year=2026)
    assert moment is not None and moment.year == year


def test_rfc850_uses_the_current_year_by_default() -> None:
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == SUNDAY


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "Sun, 06 Nov 94 08:49:37 GMT",  # two-digit year in IMF-fixdate
        "Sun, 06 Nov 1994 08:49:37 UTC",  # another zone
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nov 1994 08:49:37 gmt",  # case-sensitive
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun 06 Nov 1994 08:49:37 GMT",  # missing comma
        "Sunday, 06 Nov 1994 08:49:37 GMT",  # long day name in IMF-fixdate
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",  # out of range day
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sun, 06 Nov 1994 08:49:37:00 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sun, 06 Nov 10000 08:49:37 GMT",  # year 10000
        "Sun, 06 Nov -994 08:49:37 GMT",
        "Sun, 06 Nov １９９４ 08:49:37 GMT",  # non-ASCII digits
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",  # a list
        "Sun, 06 Nov 1994 08:49:37 GMT Sun",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 UTC",
        "Sun, 06-Nov-94 08:49:37 GMT",  # short day name in RFC 850
        "Sunday 06-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov 08:49:37 GMT",
        "Sunday, 6-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-9x 08:49:37 GMT",
        "Sux Nov  6 08:49:37 1994",
        "Sun Nov 123 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  x 08:49:37 1994",
        "Sun, 06 Nov 1994 08:49:37 GMT" + " " * 100,
        "1994-11-06T08:49:37Z",
        "784111777",
    ],
)
def test_invalid_dates_are_none(value: str | None) -> None:
    assert parse_http_date(value, now_year=2026) is None


def test_overlong_value_is_rejected_without_parsing() -> None:
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT" + "," * 10_000) is None


def test_format_round_trips() -> None:
    assert format_http_date(SUNDAY) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date(format_http_date(SUNDAY)) == SUNDAY


def test_format_naive_is_utc_and_other_zones_convert() -> None:
    assert (
        format_http_date(SUNDAY.replace(tzinfo=None)) == "Sun, 06 Nov 1994 08:49:37 GMT"
    )
    paris = SUNDAY.astimezone(timezone(timedelta(hours=1)))
    assert format_http_date(paris) == "Sun, 06 Nov 1994 08:49:37 GMT"
