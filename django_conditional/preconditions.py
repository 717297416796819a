"""RFC 9110 preconditions (§13), pure: header strings and validators in, an outcome out.

Nothing here reads a request, a setting or the database, so every rule is tested alone.

Malformed input, by the RFC's robustness principle and in the direction that never loses data:
a list member that is not a valid entity-tag (no quotes, lowercase ``w/``, a bare ``W/``, a ``*``
inside a list, control characters) is skipped and matches nothing; empty members are ignored
(§5.6.1.2). So a malformed ``If-None-Match`` never yields a 304 and a malformed ``If-Match``
never lets a write through. Members past ``max_members`` are not read, with the same effect.
A date that is not exactly one valid HTTP-date is ignored (§13.1.3, §13.1.4).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Literal

from django_conditional.httpdate import parse_http_date
from django_conditional.validators import ETag, Validators, is_opaque_tag

ANY: Final = "*"
DEFAULT_MAX_MEMBERS: Final = 100
# Content-codings a compressor or proxy may append to a strong tag ("v3" -> "v3-gzip"), as
# django_conditional.compression.GZipMiddleware and Apache's mod_deflate do.
CONTENT_CODINGS: Final = ("gzip", "br", "zstd", "deflate")
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
# §13.2.1: methods that neither select nor modify a representation ignore preconditions.
IGNORING_METHODS: Final = frozenset({"CONNECT", "OPTIONS", "TRACE"})
_OWS: Final = " \t"

EntityTags = tuple[ETag, ...] | Literal["*"]


class Outcome(enum.Enum):
    PROCEED = "proceed"
    NOT_MODIFIED = "not-modified"
    PRECONDITION_FAILED = "precondition-failed"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of §13.2.2: what to answer, which header decided it, and whether a Range may be honoured."""

    outcome: Outcome
    decided_by: str | None = None
    range_allowed: bool = True


PROCEED: Final = Evaluation(Outcome.PROCEED)


@dataclass(frozen=True, slots=True)
class ConditionalHeaders:
    """The raw values of the conditional request header fields (None when absent)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_unmodified_since: str | None = None
    if_range: str | None = None
    range: str | None = None
    accept_encoding: str | None = None

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> ConditionalHeaders:
        """Read the fields from a WSGI/ASGI ``request.META``."""
        get = meta.get
        return cls(
            get("HTTP_IF_MATCH"),
            get("HTTP_IF_NONE_MATCH"),
            get("HTTP_IF_MODIFIED_SINCE"),
            get("HTTP_IF_UNMODIFIED_SINCE"),
            get("HTTP_IF_RANGE"),
            get("HTTP_RANGE"),
            get("HTTP_ACCEPT_ENCODING"),
        )

    @property
    def any_precondition(self) -> bool:
        """Whether any of the four preconditions of §13.2.2 is present."""
        return not (
            self.if_match is None
            and self.if_none_match is None
            and self.if_modified_since is None
            and self.if_unmodified_since is None
        )


def _member_tag(value: str, start: int, end: int) -> ETag | None:
    """The entity-tag spelled exactly by ``value[start:end]`` (already stripped), or None."""
    weak = value.startswith("W/", start, end)
    if weak:
        start += 2
    if end - start < 2 or value[start] != '"' or value[end - 1] != '"':
        return None
    tag = value[start + 1 : end - 1]
    return ETag(tag, weak) if is_opaque_tag(tag) else None


def parse_entity_tags(value: str, max_members: int = DEFAULT_MAX_MEMBERS) -> EntityTags:
    """Parse ``"*" / #entity-tag`` (§13.1.1, §13.1.2) in one linear pass.

    Returns ``"*"`` or the valid entity-tags in order. Commas inside quotes belong to the tag.
    """
    stripped = value.strip(_OWS)
    if stripped == ANY:
        return ANY
    if "," not in stripped and max_members > 0:
        # One member (a revalidation's usual header): the loop below would read it the same way.
        single = _member_tag(stripped, 0, len(stripped)) if stripped else None
        return () if single is None else (single,)
    tags: list[ETag] = []
    length = len(value)
    position = 0
    members = 0
    while position < length and members < max_members:
        # Skip whitespace and empty list elements.
        while position < length and value[position] in " \t,":
            position += 1
        if position >= length:
            break
        members += 1
        start = position
        if value.startswith("W/", position):
            position += 2
        if position < length and value[position] == '"':
            closing = value.find('"', position + 1)
            position = length if closing == -1 else closing + 1
        # The member runs to the next comma outside quotes.
        comma = value.find(",", position)
        end = length if comma == -1 else comma
        stop = end
        while value[stop - 1] in _OWS:
            stop -= 1
        tag = _member_tag(value, start, stop)
        if tag is not None:
            tags.append(tag)
        position = end + 1
    return tuple(tags)


def accepts_coding(accept_encoding: str | None, coding: str, max_members: int) -> bool:
    """Whether an ``Accept-Encoding`` value accepts ``coding`` (RFC 9110 §12.5.3), ``*`` included."""
    if not accept_encoding:
        return False
    star = False
    for member in accept_encoding.split(",", max_members)[:max_members]:
        name, _, parameters = member.partition(";")
        name = name.strip(_OWS).lower()
        if name != coding and name != "*":
            continue
        weight = parameters.strip(_OWS).lower()
        accepted = (
            not weight.startswith("q=") or weight[2:].strip(_OWS).rstrip("0.") != ""
        )
        if name == coding:
            return accepted
        star = accepted
    return star


def decoded_tag(tag: ETag, codings: tuple[str, ...]) -> ETag | None:
    """The tag of the identity representation when ``tag`` carries a content-coding suffix."""
    for coding in codings:
        if tag.tag.endswith(coding) and tag.tag[-len(coding) - 1 : -len(coding)] == "-":
            return ETag(tag.tag[: -len(coding) - 1], tag.weak)
    return None


def _if_match_passes(
    tags: EntityTags, validators: Validators, codings: tuple[str, ...]
) -> bool:
    # §13.1.1: "*" is true when a current representation exists; else strong comparison.
    # A tag a client got through a compressor ("v3-gzip") names the same state of the resource.
    if tags == ANY:
        return validators.exists
    current = validators.etag
    if current is None:
        return False
    for tag in tags:
        if tag.strong_match(current):
            return True
        decoded = decoded_tag(tag, codings)
        if decoded is not None and decoded.strong_match(current):
            return True
    return False


def _if_none_match_passes(
    tags: EntityTags,
    validators: Validators,
    headers: ConditionalHeaders,
    max_members: int,
) -> bool:
    # §13.1.2: "*" is false when a current representation exists; else weak comparison.
    # "v3-gzip" matches the identity tag "v3" only when this request would get gzip, so
    # revalidations of the compressed and the identity representation never cross.
    if tags == ANY:
        return not validators.exists
    current = validators.etag
    if current is None:
        return True
    for tag in tags:
        if tag.weak_match(current):
            return False
        decoded = decoded_tag(tag, CONTENT_CODINGS)
        if (
            decoded is not None
            and decoded.weak_match(current)
            and accepts_coding(
                headers.accept_encoding, tag.tag[len(decoded.tag) + 1 :], max_members
            )
        ):
            return False
    return True


def _unmodified_since(value: str, last_modified: datetime) -> bool | None:
    """§13.1.4 and §13.1.3 share this: True when not modified since the date, None when the date is invalid."""
    date = parse_http_date(value)
    if date is None:
        return None
    return last_modified <= date


def _if_range_passes(value: str, validators: Validators, now: datetime) -> bool:
    # §13.1.5: an entity-tag must match strongly; a date must exactly match a strong Last-Modified.
    candidate = value.strip(_OWS)
    if candidate.startswith(('"', "W/")):
        tag = _member_tag(candidate, 0, len(candidate))
        return (
            tag is not None
            and validators.etag is not None
            and tag.strong_match(validators.etag)
        )
    date = parse_http_date(candidate)
    last_modified = validators.last_modified
    if date is None or last_modified is None:
        return False
    # §8.8.2.2: a Last-Modified is strong only when at least one second old.
    return date == last_modified and (now - last_modified).total_seconds() >= 1


def evaluate(
    method: str,
    headers: ConditionalHeaders,
    validators: Validators,
    *,
    max_members: int = DEFAULT_MAX_MEMBERS,
    now: datetime | None = None,
) -> Evaluation:
    """Evaluate the preconditions of a request in the order of RFC 9110 §13.2.2.

    The caller must only act on the result when the response without preconditions would be
    2xx or 412 (§13.2.1). HEAD is evaluated as GET.
    """
    if method in IGNORING_METHODS:
        return PROCEED
    safe = method in SAFE_METHODS
    last_modified = validators.last_modified

    # Step 1: If-Match; Step 2: If-Unmodified-Since when If-Match is absent.
    if headers.if_match is not None:
        if not _if_match_passes(
            parse_entity_tags(headers.if_match, max_members),
            validators,
            CONTENT_CODINGS,
        ):
            return Evaluation(Outcome.PRECONDITION_FAILED, "If-Match")
    elif (
        headers.if_unmodified_since is not None
        and last_modified is not None
        and _unmodified_since(headers.if_unmodified_since, last_modified) is False
    ):
        return Evaluation(Outcome.PRECONDITION_FAILED, "If-Unmodified-Since")

    # Step 3: If-None-Match; Step 4: If-Modified-Since for GET/HEAD when If-None-Match is absent.
    if headers.if_none_match is not None:
        if not _if_none_match_passes(
            parse_entity_tags(headers.if_none_match, max_members),
            validators,
            headers,
            max_members,
        ):
            outcome = Outcome.NOT_MODIFIED if safe else Outcome.PRECONDITION_FAILED
            return Evaluation(outcome, "If-None-Match")
    elif (
        safe
        and headers.if_modified_since is not None
        and last_modified is not None
        and _unmodified_since(headers.if_modified_since, last_modified)
    ):
        return Evaluation(Outcome.NOT_MODIFIED, "If-Modified-Since")

    # Step 5: If-Range, for GET with Range only.
    if method == "GET" and headers.range is not None and headers.if_range is not None:
        moment = now if now is not None else datetime.now(timezone.utc)
        if not _if_range_passes(headers.if_range, validators, moment):
            return Evaluation(Outcome.PROCEED, "If-Range", range_allowed=False)
    return PROCEED
