"""HTTP-date (RFC 9110 §5.6.7): parse the three forms strictly, without regular expressions."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import formatdate

_DAY_NAMES = frozenset({"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"})
_DAY_NAMES_LONG = frozenset(
    {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "Jan",
            "Feb",
            "Mar",
            "Apr",
            "May",
            "Jun",
            "Jul",
            "Aug",
            "Sep",
            "Oct",
            "Nov",
            "Dec",
        ),
        1,
    )
}
# Longer than any valid HTTP-date by a margin; anything longer is not a date.
_MAX_LENGTH = 64


def _digits(text: str, count: int) -> int | None:
    if len(text) == count and text.isascii() and text.isdigit():
        return int(text)
    return None


def _time_of_day(text: str) -> tuple[int, int, int] | None:
    parts = text.split(":")
    if len(parts) != 3:
        return None
    hour, minute, second = (_digits(part, 2) for part in parts)
    if hour is None or minute is None or second is None:
        return None
    return hour, minute, second


def _build(year: int | None, month: str, day: int | None, time: str) -> datetime | None:
    clock = _time_of_day(time)
    if year is None or day is None or clock is None or month not in _MONTHS:
        return None
    try:
        return datetime(year, _MONTHS[month], day, *clock, tzinfo=timezone.utc)
    except (
        ValueError
    ):  # out-of-range field: day 31 of a 30-day month, hour 24, year 0...
        return None


def _imf_fixdate(fields: list[str]) -> datetime | None:
    # IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT
    day_name, day, month, year, time, zone = fields
    if day_name[:-1] not in _DAY_NAMES or day_name[-1] != "," or zone != "GMT":
        return None
    return _build(_digits(year, 4), month, _digits(day, 2), time)


def _rfc850_date(fields: list[str], now_year: int) -> datetime | None:
    # rfc850-date = day-name-l "," SP date2 SP time-of-day SP GMT; date2 = day "-" month "-" 2DIGIT
    day_name, date2, time, zone = fields
    if day_name[:-1] not in _DAY_NAMES_LONG or day_name[-1] != "," or zone != "GMT":
        return None
    parts = date2.split("-")
    if len(parts) != 3:
        return None
    day, month, short_year = parts
    year = _digits(short_year, 2)
    if year is not None:
        # §5.6.7: a two-digit year more than 50 years in the future is in the past century.
        year += now_year - now_year % 100
        if year > now_year + 50:
            year -= 100
    return _build(year, month, _digits(day, 2), time)


def _asctime_date(fields: list[str]) -> datetime | None:
    # asctime-date = day-name SP date3 SP time-of-day SP year; date3 = month SP ( 2DIGIT / ( SP DIGIT ) )
    day_name, month, day, time, year = fields
    if day_name not in _DAY_NAMES:
        return None
    day_number = _digits(day, 1) if len(day) == 1 else _digits(day, 2)
    return _build(_digits(year, 4), month, day_number, time)


def parse_http_date(
    value: str | None, *, now_year: int | None = None
) -> datetime | None:
    """The moment an HTTP-date names, as an aware UTC datetime, or None when the value is not one.

    Accepts IMF-fixdate and the obsolete RFC 850 and asctime forms (§5.6.7). Anything else,
    including a list of dates, another time zone than GMT, or an out-of-range field, is invalid.
    """
    if value is None or len(value) > _MAX_LENGTH:
        return None
    fields = value.split()
    if len(fields) == 6:
        return _imf_fixdate(fields)
    if len(fields) == 4:
        return _rfc850_date(fields, now_year or datetime.now(timezone.utc).year)
    if len(fields) == 5:
        return _asctime_date(fields)
    return None


def format_http_date(moment: datetime) -> str:
    """``moment`` as an IMF-fixdate."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return formatdate(moment.timestamp(), usegmt=True)
