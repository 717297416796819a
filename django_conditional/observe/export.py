"""Where decisions go besides the signal and the log: ``Server-Timing``, Prometheus, OpenTelemetry.

prometheus_client and opentelemetry-api are optional: each is imported on first use, and a
missing one is skipped (``CONDITIONAL_METRICS`` feeds whichever is installed).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Final

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase

from django_conditional.conf import conf
from django_conditional.observe.record import Decision

COUNTER_NAME: Final = "conditional_outcomes"
SPAN_PREFIX: Final = "conditional."
# Fetch metadata values of a request from this origin, or from none (a typed URL, a bookmark).
_OWN_SITE: Final = frozenset({"same-origin", "none"})
_missing: Final = object()
_loaded: dict[str, Any] = {}


def _optional(module: str) -> Any:
    found = _loaded.get(module, _missing)
    if found is _missing:
        try:
            found = import_module(module)
        except ImportError:
            found = None
        _loaded[module] = found
    return found


def _own_origin(request: HttpRequest, origin: str) -> bool:
    try:
        return origin == f"{request.scheme}://{request.get_host()}"
    except DisallowedHost:
        return False


def timing_allowed(request: HttpRequest) -> bool:
    """Whether the response may carry ``Server-Timing``: a request from this site (no ``Origin``
    but its own, ``Sec-Fetch-Site`` absent, ``same-origin`` or ``none``), or from an origin
    listed in ``CONDITIONAL_SERVER_TIMING_ORIGINS`` (``"*"``: any)."""
    headers = request.headers
    origin = headers.get("Origin")
    fetched_from = headers.get("Sec-Fetch-Site")
    allowed = conf.SERVER_TIMING_ORIGINS
    if "*" in allowed or (origin is not None and origin in allowed):
        return True
    if fetched_from is not None and fetched_from not in _OWN_SITE:
        return False
    return origin is None or _own_origin(request, origin)


def timing_entry(decision: Decision) -> str:
    """``cond;desc="304 If-None-Match";dur=0.123`` (milliseconds, the W3C Server Timing syntax)."""
    return f'cond;desc="{decision.label}";dur={decision.duration * 1000:.3f}'


def server_timing(
    request: HttpRequest, response: HttpResponseBase, decision: Decision
) -> None:
    if not timing_allowed(request):
        return
    entry = timing_entry(decision)
    existing = response.headers.get("Server-Timing")
    response.headers["Server-Timing"] = f"{existing}, {entry}" if existing else entry


def _counter() -> Any:
    counter = _loaded.get(COUNTER_NAME)
    if counter is None:
        prometheus = _optional("prometheus_client")
        if prometheus is None:
            return None
        # Once per process, on the default registry (as django-prometheus' own counters).
        counter = prometheus.Counter(
            COUNTER_NAME,
            "Conditional request decisions by outcome, deciding precondition and view.",
            ["outcome", "precondition", "view"],
        )
        _loaded[COUNTER_NAME] = counter
    return counter


def span_attributes(decision: Decision) -> dict[str, Any]:
    """The decision as OpenTelemetry attributes (``conditional.*``; no None values)."""
    values = {
        "outcome": decision.outcome,
        "status": decision.status,
        "precondition": decision.decided_by,
        "view": decision.view,
        "face": decision.face,
        "etag": decision.etag,
        "last_modified": decision.last_modified,
        "keys": list(decision.keys),
        "round_trips": decision.round_trips,
        "queries": decision.queries,
        "local_cache": decision.local_cache,
    }
    return {SPAN_PREFIX + k: v for k, v in values.items() if v is not None}


def metrics(decision: Decision) -> None:
    counter = _counter()
    if counter is not None:
        counter.labels(
            outcome=decision.outcome,
            precondition=decision.decided_by or "",
            view=decision.view or decision.face,
        ).inc()
    trace = _optional("opentelemetry.trace")
    if trace is not None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(span_attributes(decision))
