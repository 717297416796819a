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
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Final

from django_conditional.httpdate import parse_http_date
from django_conditional.validators import (
    ANY,
    DEFAULT_MAX_MEMBERS,
    EntityTags,
    ETag,
    Validators,
    accepts_coding,
    decoded_tag,
    member_tag,
    parse_entity_tags,
)

# Content-codings a compressor or proxy may append to a strong tag ("v3" -> "v3-gzip"), as
# django_conditional.compression.GZipMiddleware and Apache's mod_deflate do.
CONTENT_CODINGS: Final = ("gzip", "br", "zstd", "deflate")
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
# §13.2.1: methods that neither select nor modify a representation ignore preconditions.
IGNORING_METHODS: Final = frozenset({"CONNECT", "OPTIONS", "TRACE"})
_OWS: Final = " \t"
__all__ = [
    "ANY",
    "CONTENT_CODINGS",
    "ConditionalHeaders",
    "EntityTags",
    "Evaluation",
    "Outcome",
    "PROCEED",
    "Preconditions",
    "SAFE_METHODS",
    "IGNORING_METHODS",
    "accepts_coding",
    "decoded_tag",
    "evaluate",
    "if_range_holds",
    "parse_entity_tags",
    "weakened_if_match",
]


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
    def from_meta(cls, meta: Mapping[str, object]) -> ConditionalHeaders:
        """Read the fields from a WSGI/ASGI ``request.META``."""
        get = meta.get
        return cls(
            _text(get("HTTP_IF_MATCH")),
            _text(get("HTTP_IF_NONE_MATCH")),
            _text(get("HTTP_IF_MODIFIED_SINCE")),
            _text(get("HTTP_IF_UNMODIFIED_SINCE")),
            _text(get("HTTP_IF_RANGE")),
            _text(get("HTTP_RANGE")),
            _text(get("HTTP_ACCEPT_ENCODING")),
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


def _text(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


IfRange = ETag | datetime | None


@dataclass(frozen=True, slots=True)
class Preconditions:
    """The conditional header fields of one request, parsed once (``Preconditions.parse``).

    Lists are ``"*"`` or the valid entity-tags in order; dates are None when absent or invalid
    (§13.1.3, §13.1.4 ignore an invalid date). ``if_range`` is the tag or date of a present
    If-Range, None when it is absent or malformed (``has_if_range`` tells them apart: a malformed
    one never matches, §13.1.5). ``range`` and ``accept_encoding`` stay raw: they are read rarely.
    """

    if_match: EntityTags | None = None
    if_none_match: EntityTags | None = None
    if_modified_since: datetime | None = None
    if_unmodified_since: datetime | None = None
    if_range: IfRange = None
    has_if_range: bool = False
    range: str | None = None
    accept_encoding: str | None = None
    max_members: int = DEFAULT_MAX_MEMBERS

    @classmethod
    def parse(
        cls, headers: ConditionalHeaders, max_members: int = DEFAULT_MAX_MEMBERS
    ) -> Preconditions:
        """Parse every field of ``headers``; members past ``max_members`` are not read."""
        return cls(
            _tags(headers.if_match, max_members),
            _tags(headers.if_none_match, max_members),
            parse_http_date(headers.if_modified_since),
            parse_http_date(headers.if_unmodified_since),
            _if_range(headers.if_range),
            headers.if_range is not None,
            headers.range,
            headers.accept_encoding,
            max_members,
        )

    @property
    def any_precondition(self) -> bool:
        """Whether any of the four preconditions of §13.2.2 is present (a date only when valid)."""
        return not (
            self.if_match is None
            and self.if_none_match is None
            and self.if_modified_since is None
            and self.if_unmodified_since is None
        )

    @property
    def any(self) -> bool:
        """Whether anything here can change the answer: a precondition or an If-Range."""
        return self.has_if_range or self.any_precondition

    def without_range(self) -> Preconditions:
        """These preconditions for a request whose Range is to be ignored (a failed If-Range)."""
        return replace(self, range=None, if_range=None, has_if_range=False)


def _tags(value: str | None, max_members: int) -> EntityTags | None:
    return None if value is None else parse_entity_tags(value, max_members)


def _if_range(value: str | None) -> IfRange:
    if value is None:
        return None
    candidate = value.strip(_OWS)
    if candidate.startswith(('"', "W/")):
        return member_tag(candidate, 0, len(candidate))
    return parse_http_date(candidate)


def _if_match_passes(
    tags: EntityTags, validators: Validators, accept_weakened: bool
) -> bool:
    # §13.1.1: "*" is true when a current representation exists; else strong comparison.
    # A tag a client got through a compressor ("v3-gzip") names the same state of the resource.
    # ``accept_weakened``: W/"v3" stands for "v3" (a proxy weakened it; see ``evaluate``).
    if tags == ANY:
        return validators.exists
    current = validators.etag
    if current is None:
        return False
    for tag in tags:
        if accept_weakened and tag.weak:
            tag = ETag(tag.tag)
        if tag.strong_match(current):
            return True
        decoded = decoded_tag(tag, CONTENT_CODINGS)
        if decoded is not None and decoded.strong_match(current):
            return True
    return False


def weakened_if_match(tags: EntityTags | None, validators: Validators) -> ETag | None:
    """The weak member of an ``If-Match`` that names the current strong tag (``W/"v3"`` while
    ``"v3"`` is current): what a proxy that compresses (nginx's ``gzip``) sends back. None if none."""
    current = validators.etag
    if not tags or tags == ANY or current is None or current.weak:
        return None
    for tag in tags:
        if tag.weak and _if_match_passes((tag,), validators, True):
            return tag
    return None


def _if_none_match_passes(
    tags: EntityTags, validators: Validators, conditions: Preconditions
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
                conditions.accept_encoding,
                tag.tag[len(decoded.tag) + 1 :],
                conditions.max_members,
            )
        ):
            return False
    return True


def _unmodified_since_passes(date: datetime, validators: Validators) -> bool:
    # §13.1.4, with one refinement against lost updates: a date cannot tell two changes within
    # one second apart, so when the resource is known to have changed inside the second the
    # date names (a sub-second modification time), the client may hold an older state: fail.
    last_modified = validators.last_modified
    assert last_modified is not None
    if last_modified > date:
        return False
    return not (validators.changed_within_second and last_modified == date)


def _if_range_passes(
    conditions: Preconditions, validators: Validators, now: datetime
) -> bool:
    # §13.1.5: an entity-tag must match strongly; a date must exactly match a strong Last-Modified.
    value = conditions.if_range
    if isinstance(value, ETag):
        return validators.etag is not None and value.strong_match(validators.etag)
    last_modified = validators.last_modified
    if value is None or last_modified is None:
        return False
    # §8.8.2.2: a Last-Modified is strong only when at least one second old.
    return value == last_modified and (now - last_modified).total_seconds() >= 1


def evaluate(
    method: str,
    headers: Preconditions | ConditionalHeaders,
    validators: Validators,
    *,
    max_members: int = DEFAULT_MAX_MEMBERS,
    now: datetime | None = None,
    accept_weakened: bool = False,
) -> Evaluation:
    """Evaluate the preconditions of a request in the order of RFC 9110 §13.2.2.

    ``headers`` are parsed preconditions (raw ``ConditionalHeaders`` are parsed here, reading at
    most ``max_members`` list members). The caller must only act on the result when the response
    without preconditions would be 2xx or 412 (§13.2.1). HEAD is evaluated as GET.
    ``accept_weakened``: If-Match takes ``W/"x"`` for ``"x"`` when ``"x"`` is current (a tag a proxy
    weakened; only for tags that name the resource's state whatever the coding, as version tags do).
    """
    if method in IGNORING_METHODS:
        return PROCEED
    conditions = (
        headers
        if isinstance(headers, Preconditions)
        else Preconditions.parse(headers, max_members)
    )
    safe = method in SAFE_METHODS
    last_modified = validators.last_modified

    # Step 1: If-Match; Step 2: If-Unmodified-Since when If-Match is absent.
    if conditions.if_match is not None:
        if not _if_match_passes(conditions.if_match, validators, accept_weakened):
            return Evaluation(Outcome.PRECONDITION_FAILED, "If-Match")
    elif (
        conditions.if_unmodified_since is not None
        and last_modified is not None
        and not _unmodified_since_passes(conditions.if_unmodified_since, validators)
    ):
        return Evaluation(Outcome.PRECONDITION_FAILED, "If-Unmodified-Since")

    # Step 3: If-None-Match; Step 4: If-Modified-Since for GET/HEAD when If-None-Match is absent.
    if conditions.if_none_match is not None:
        if not _if_none_match_passes(conditions.if_none_match, validators, conditions):
            outcome = Outcome.NOT_MODIFIED if safe else Outcome.PRECONDITION_FAILED
            return Evaluation(outcome, "If-None-Match")
    elif (
        safe
        and conditions.if_modified_since is not None
        and last_modified is not None
        and last_modified <= conditions.if_modified_since
    ):
        return Evaluation(Outcome.NOT_MODIFIED, "If-Modified-Since")

    # Step 5: If-Range, for GET with Range only.
    if method == "GET" and not if_range_holds(conditions, validators, now):
        return Evaluation(Outcome.PROCEED, "If-Range", range_allowed=False)
    return PROCEED


def if_range_holds(
    conditions: Preconditions, validators: Validators, now: datetime | None = None
) -> bool:
    """Whether a ``Range`` of a GET may be honoured as far as ``If-Range`` goes (§13.1.5):
    true without Range or If-Range, else the strong match of the tag or the exact date."""
    if conditions.range is None or not conditions.has_if_range:
        return True
    moment = now if now is not None else datetime.now(timezone.utc)
    return _if_range_passes(conditions, validators, moment)
