"""The decision record: what one conditional decision compared, read and answered.

A ``Watch`` follows one decision in the shared paths (``flow``, ``writes``, ``middleware``) and
turns into one frozen ``Decision`` when the answer is known. Nothing here is built unless
something listens (``observe.watch`` returns None otherwise).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from time import perf_counter
from typing import Any, Final, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections
from django.http import HttpRequest

from django_conditional.httpdate import format_http_date
from django_conditional.preconditions import Evaluation, Outcome
from django_conditional.validators import Validators

_T = TypeVar("_T")

PRECONDITION_REQUIRED: Final = "precondition-required"
# The request headers a decision reads, as ``request.META`` names them.
CONDITIONAL_HEADERS: Final = (
    ("If-Match", "HTTP_IF_MATCH"),
    ("If-None-Match", "HTTP_IF_NONE_MATCH"),
    ("If-Modified-Since", "HTTP_IF_MODIFIED_SINCE"),
    ("If-Unmodified-Since", "HTTP_IF_UNMODIFIED_SINCE"),
    ("If-Range", "HTTP_IF_RANGE"),
    ("Range", "HTTP_RANGE"),
)


@dataclass(frozen=True, slots=True)
class Decision:
    """One conditional decision.

    ``outcome`` is ``"not-modified"`` (304), ``"precondition-failed"`` (412),
    ``"precondition-required"`` (428) or ``"proceed"`` (the view ran); ``decided_by`` the header
    that decided it (None: no precondition applied). ``etag`` and ``last_modified`` are the
    current validators the request was compared with; ``keys`` and ``versions`` what the version
    store was asked and answered. ``round_trips`` counts the cache reads the shell asked for (one
    per version read, one more when remembered headers were loaded apart); ``queries`` the
    database queries spent deciding;
    ``local_cache`` whether a process-local version cache answered (None: there is none).
    ``duration`` is the time spent deciding, in seconds (the view's own time excluded).
    """

    face: str
    view: str
    method: str
    path: str
    outcome: str
    status: int
    decided_by: str | None = None
    conditions: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    keys: tuple[str, ...] = ()
    versions: Mapping[str, int] = field(default_factory=dict)
    round_trips: int = 0
    queries: int | None = None
    local_cache: bool | None = None
    duration: float = 0.0

    @property
    def label(self) -> str:
        """``"304 If-None-Match"``, ``"200"``: the status and the deciding precondition."""
        return (
            f"{self.status} {self.decided_by}" if self.decided_by else str(self.status)
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values only (JSON-serialisable): for logs, the toolbar's store, exporters."""
        values = asdict(self)
        values["conditions"] = dict(self.conditions)
        values["versions"] = dict(self.versions)
        values["keys"] = list(self.keys)
        values["label"] = self.label
        return values


def _conditions(request: HttpRequest) -> dict[str, str]:
    meta = request.META
    return {name: meta[key] for name, key in CONDITIONAL_HEADERS if key in meta}


class _Queries:
    """Counts the queries run on this thread's connections inside ``counting``."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: Any,
    ) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


# Async views: their queries run in ``sync_to_async`` threads, on those threads' connections,
# not on the ones the event loop sees. A wrapper on those connections counts for the context that
# set this (contexts follow ``sync_to_async`` calls), so concurrent requests count apart.
_context_counter: ContextVar[_Queries | None] = ContextVar(
    "django_conditional_queries", default=None
)


def _count_for_context(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    counter = _context_counter.get()
    if counter is not None:
        counter.count += 1
    return execute(sql, params, many, context)


def _hook_thread_connections() -> None:
    for alias in connections:
        wrappers = connections[alias].execute_wrappers
        if _count_for_context not in wrappers:
            wrappers.append(_count_for_context)


@contextmanager
def counting(counter: _Queries) -> Iterator[None]:
    wrapped = [connections[alias] for alias in connections]
    for connection in wrapped:
        connection.execute_wrappers.append(counter)
    try:
        yield
    finally:
        for connection in wrapped:
            connection.execute_wrappers.remove(counter)


class Watch:
    """One decision being followed: filled by the path that decides, closed by ``decision``."""

    __slots__ = (
        "request",
        "sender",
        "face",
        "view",
        "started",
        "evaluation",
        "validators",
        "keys",
        "versions",
        "round_trips",
        "queries",
        "duration",
        "outcome",
        "local_hits",
    )

    def __init__(self, request: HttpRequest, sender: type, view: str) -> None:
        self.request = request
        self.sender = sender
        self.face = sender.__name__
        self.view = view
        self.started = perf_counter()
        self.evaluation: Evaluation | None = None
        self.validators: Validators | None = None
        self.keys: tuple[str, ...] = ()
        self.versions: Mapping[str, int] = {}
        self.round_trips = 0
        self.queries: int | None = None
        self.duration = 0.0
        self.outcome: str | None = None
        self.local_hits: int | None = None

    def counted(self, func: Callable[..., _T], *args: Any) -> _T:
        """``func(*args)``, counting the queries it runs on this thread."""
        counter = _Queries()
        with counting(counter):
            result = func(*args)
        self.queries = (self.queries or 0) + counter.count
        return result

    async def acounted(self, func: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """``await func(*args)``, counting the queries its ``sync_to_async`` calls run (one
        thread hop first, while something listens: the hook on the sync thread's connections)."""
        await sync_to_async(_hook_thread_connections)()
        counter = _Queries()
        token = _context_counter.set(counter)
        try:
            result = await func(*args)
        finally:
            _context_counter.reset(token)
        self.queries = (self.queries or 0) + counter.count
        return result

    def read(
        self, keys: Sequence[str], versions: Mapping[str, int], round_trips: int
    ) -> None:
        """What the version store was asked and answered."""
        self.keys = tuple(keys)
        self.versions = versions
        self.round_trips += round_trips

    def decided(
        self,
        evaluation: Evaluation | None,
        validators: Validators | None,
        outcome: str | None = None,
    ) -> None:
        """The evaluation (None: the request carried no precondition) against ``validators``."""
        self.evaluation = evaluation
        self.validators = validators
        self.outcome = outcome
        self.duration = perf_counter() - self.started

    def decision(self, status: int, local_cache: bool | None = None) -> Decision:
        if not self.duration:
            self.duration = perf_counter() - self.started
        evaluation, validators = self.evaluation, self.validators
        outcome = self.outcome or (
            evaluation.outcome.value if evaluation else Outcome.PROCEED.value
        )
        etag = validators.etag if validators else None
        modified = validators.last_modified if validators else None
        request = self.request
        return Decision(
            face=self.face,
            view=self.view,
            method=request.method or "GET",
            path=request.path,
            outcome=outcome,
            status=status,
            decided_by=evaluation.decided_by if evaluation else None,
            conditions=_conditions(request),
            etag=None if etag is None else str(etag),
            last_modified=None if modified is None else format_http_date(modified),
            keys=self.keys,
            versions=dict(self.versions),
            round_trips=self.round_trips,
            queries=self.queries,
            local_cache=local_cache,
            duration=self.duration,
        )
