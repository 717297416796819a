"""Why this answer: one ``Decision`` per conditional decision, for whoever listens.

The shared paths (``flow``, ``writes``, ``middleware``) ask ``watch(request, sender)`` for a
``Watch`` before deciding; it is None unless something listens, and then they do nothing more
(one call, a few attribute reads). Listening means any of:

- a receiver of ``django_conditional.signals.decision_made`` (the debug-toolbar panel connects
  one for the requests it shows);
- the logger ``django_conditional.decisions`` enabled for DEBUG (one structured record each,
  ``extra={"conditional": decision.as_dict()}``);
- ``CONDITIONAL_SERVER_TIMING`` (a ``Server-Timing: cond;desc="304 If-None-Match";dur=0.12``
  header, same-origin requests only unless ``CONDITIONAL_SERVER_TIMING_ORIGINS`` allows others);
- ``CONDITIONAL_METRICS`` (``conditional_outcomes_total`` with prometheus_client, span attributes
  with OpenTelemetry, for whichever is installed).

``finish(watch, response)`` turns the watch into its ``Decision``, hands it to each of them and
returns ``response``. A request observed by a view is not observed again by the middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponseBase

from django_conditional.conf import conf
from django_conditional.observe import export
from django_conditional.observe.record import (
    PRECONDITION_REQUIRED,
    Decision,
    Watch,
)
from django_conditional.preconditions import Evaluation
from django_conditional.signals import decision_made
from django_conditional.store import cache as store_cache
from django_conditional.store import local
from django_conditional.validators import Validators

__all__ = [
    "PRECONDITION_REQUIRED",
    "Decision",
    "Watch",
    "acounted",
    "answered",
    "counted",
    "finish",
    "listening",
    "watch",
]

logger = logging.getLogger("django_conditional.decisions")
_errors = logging.getLogger("django_conditional")
_OBSERVED: Final = "_django_conditional_observed"
_Response = TypeVar("_Response", bound=HttpResponseBase)
_T = TypeVar("_T")


# Whether a setting turns observation on (``CONDITIONAL_SERVER_TIMING``, ``CONDITIONAL_METRICS``),
# read once and forgotten when a setting changes: the check runs on every request.
_configured: list[bool] = []


def _forget(*, setting: str, **kwargs: object) -> None:
    if setting.startswith("CONDITIONAL_"):
        _configured.clear()


setting_changed.connect(_forget, dispatch_uid="django_conditional.observe")


def _settings_on() -> bool:
    if not _configured:
        _configured.append(bool(conf.SERVER_TIMING or conf.METRICS))
    return _configured[0]


def listening() -> bool:
    """Whether anything would receive a decision (see the module docstring)."""
    return bool(
        decision_made.receivers
        or (_configured[0] if _configured else _settings_on())
        or logger.isEnabledFor(logging.DEBUG)
    )


def watch(
    request: HttpRequest, sender: object, view: str = "", *, once: bool = False
) -> Watch | None:
    """A ``Watch`` for the decision about to be made on ``request`` by ``sender`` (an instance
    or class), or None when nothing listens. ``once``: None too if a view already observed it."""
    if not (
        decision_made.receivers
        or (_configured[0] if _configured else _settings_on())
        or logger.isEnabledFor(logging.DEBUG)
    ):
        return None  # the hot path: ``listening()`` inlined
    request = getattr(
        request, "_request", request
    )  # the HttpRequest under a DRF Request
    if once and request.__dict__.get(_OBSERVED):
        return None
    cls = sender if isinstance(sender, type) else type(sender)
    found = Watch(request, cls, view)
    found.local_hits = _hits()
    return found


def counted(watch: Watch | None, func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args)``, its queries counted for ``watch`` when a decision is watched."""
    return func(*args) if watch is None else watch.counted(func, *args)


async def acounted(
    watch: Watch | None, func: Callable[..., Awaitable[_T]], *args: Any
) -> _T:
    """``counted`` for async code (queries of its ``sync_to_async`` calls included)."""
    return await (func(*args) if watch is None else watch.acounted(func, *args))


def _hits() -> int | None:
    # Reads the process-local version cache answered so far (None: it is off for this cache).
    try:
        if not local.is_on(store_cache.cache()):
            return None
        return int(local.stats()["hits"])
    except Exception:  # counters are best effort
        return None


def finish(watch: Watch | None, response: _Response) -> _Response:
    """Close ``watch`` (if any) with ``response``'s status; hand the decision out."""
    if watch is None:
        return response
    before, after = watch.local_hits, _hits()
    local = None if before is None or after is None else after > before
    decision = watch.decision(response.status_code, local)
    request = watch.request
    request.__dict__[_OBSERVED] = True
    if decision_made.receivers:
        for receiver, result in decision_made.send_robust(
            sender=watch.sender, decision=decision, request=request
        ):
            if isinstance(result, Exception):
                _errors.error(
                    "django_conditional: decision_made receiver %r raised",
                    receiver,
                    exc_info=result,
                )
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s: %s (%s, %s)",
            decision.method,
            decision.path,
            decision.label,
            decision.face,
            decision.view or "-",
            extra={"conditional": decision.as_dict()},
        )
    if conf.METRICS:
        export.metrics(decision)
    if conf.SERVER_TIMING:
        export.server_timing(request, response, decision)
    return response


def answered(
    request: HttpRequest,
    sender: object,
    response: _Response,
    evaluation: Evaluation | None = None,
    validators: Validators | None = None,
) -> _Response:
    """Observe a decision made in one step (the middleware's 428 and GET-first 412); the
    outcome is ``response``'s (a 428 is ``"precondition-required"``)."""
    found = watch(request, sender)
    if found is not None:
        outcome = PRECONDITION_REQUIRED if response.status_code == 428 else None
        found.decided(evaluation, validators, outcome)
    return finish(found, response)
