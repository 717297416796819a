"""The read path every face shares: resolve validators, evaluate, answer early or run the view.

A ``ValidatorSource`` says where a view's validators come from (functions, resource versions);
``conditional_view`` wraps a view so that, before it runs, its preconditions are evaluated against
them and a 304 or 412 is sent without running it. The logic lives in the sync helpers
``_before`` and ``_after``; the sync and async views are shells that only add the I/O (Django's
own shape in ``django.views.decorators.http``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase

from django_conditional import observe, remembered
from django_conditional.calls import Args, Kwargs, acall, call
from django_conditional.conf import conf
from django_conditional.evaluation import answer, evaluate_request, request_for_view
from django_conditional.preconditions import SAFE_METHODS, Evaluation, Outcome
from django_conditional.request import preconditions
from django_conditional.responses import (
    precondition_failed,
    precondition_required,
    validator_headers,
)
from django_conditional.validators import Validators

View = TypeVar("View", bound=Callable[..., Any])
# Set on views that evaluate preconditions before acting: the middleware's GET-first check has
# nothing to add (``wraps`` carries it outwards).
GUARDED_VIEW_ATTRIBUTE = "conditional_guarded"
# A view's access check, run before its preconditions (RFC 9110 §13.2.1):
# ``(request, *args, **kwargs) -> bool | HttpResponseBase``, sync or async.
Visible = Callable[..., object] | None


@dataclass(frozen=True, slots=True)
class Resolved:
    """A view's current validators, and the headers its 200 carries when the source knows them.

    ``remembered_headers`` None means "not fetched yet": a 304 then loads them. ``base_headers``
    go on every early answer, under the remembered ones (the source's own ``Vary``, ``private``).
    """

    validators: Validators
    remembered_headers: Mapping[str, str] | None = None
    base_headers: Mapping[str, str] = field(default_factory=dict)
    # The version keys behind the validators, when the source has them (cache-tag headers),
    # and the versions read for them.
    keys: Sequence[str] = ()
    versions: Mapping[str, int] = field(default_factory=dict)
    # What the validators were made from, when a 304 from them may be sent again (``answers``).
    proof: object = None


class ValidatorSource:
    """Where a view's validators come from. Subclasses give ``resolve`` (and ``aresolve``)."""

    view_id: str = ""

    def resolve(self, request: HttpRequest, args: Args, kwargs: Kwargs) -> Resolved:
        raise NotImplementedError

    async def aresolve(
        self, request: HttpRequest, args: Args, kwargs: Kwargs
    ) -> Resolved:
        return await sync_to_async(self.resolve)(request, args, kwargs)

    # The two refusals, overridable by a face (the DRF one raises its framework's exceptions).

    def precondition_failed(
        self, request: HttpRequest, decided_by: str | None, validators: Validators
    ) -> HttpResponseBase:
        """The 412 answer (RFC 9457 problem details)."""
        return precondition_failed(request, decided_by, validators)

    def precondition_required(
        self, request: HttpRequest, required: Sequence[str], validators: Validators
    ) -> HttpResponseBase:
        """The 428 answer (RFC 6585 §3)."""
        return precondition_required(request, required, validators)

    def finish(
        self, request: HttpRequest, response: HttpResponseBase, resolved: Resolved
    ) -> None:
        """Stamp the validators on a successful GET or HEAD, as Django's ``condition`` does."""
        if request.method in SAFE_METHODS and 200 <= response.status_code < 300:
            for name, value in validator_headers(resolved.validators).items():
                response.headers.setdefault(name, value)


@dataclass(frozen=True, slots=True)
class _Step:
    """What ``_before`` decided: an early answer, or the request the view runs with; and the
    key of remembered headers still to load for a 304 (None: nothing to load)."""

    early: HttpResponseBase | None
    request: HttpRequest
    load_key: str | None = None
    evaluation: Evaluation | None = None


def _headers_key(view_id: str, request: HttpRequest, resolved: Resolved) -> str:
    token = remembered.validator_token(resolved.validators)
    return remembered.headers_key(view_id, request, token)


def _before(
    request: HttpRequest,
    source: ValidatorSource,
    resolved: Resolved,
    declared: Mapping[str, str],
    loaded: Mapping[str, str] | None = None,
) -> _Step:
    if not preconditions(request).any:
        return _Step(None, request)
    evaluation = evaluate_request(request, resolved.validators)
    if evaluation.outcome is Outcome.PRECONDITION_FAILED:
        failed = source.precondition_failed(
            request, evaluation.decided_by, resolved.validators
        )
        return _Step(failed, request, None, evaluation)
    remembered_headers = resolved.remembered_headers
    if remembered_headers is None and loaded is not None:
        remembered_headers = loaded
    if (
        evaluation.outcome is Outcome.NOT_MODIFIED
        and remembered_headers is None
        and conf.REMEMBER_HEADERS
    ):
        key = _headers_key(source.view_id, request, resolved)
        return _Step(None, request, key, evaluation)
    # The 304 carries the source's own headers, then the remembered ones, then the declared.
    headers = {**resolved.base_headers, **(remembered_headers or {}), **declared}
    early = answer(request, evaluation, resolved.validators, headers)
    return _Step(early, request_for_view(request, evaluation), None, evaluation)


def _after(
    request: HttpRequest,
    response: HttpResponseBase,
    source: ValidatorSource,
    resolved: Resolved,
) -> str | None:
    """Finish the response; the key to remember its headers at (None: nothing to remember)."""
    source.finish(request, response, resolved)
    if (
        conf.REMEMBER_HEADERS
        and request.method in SAFE_METHODS
        and 200 <= response.status_code < 300
    ):
        return _headers_key(source.view_id, request, resolved)
    return None


_PROVEN = "_conditional_proven"


def _prove(
    request: HttpRequest, resolved: Resolved, step: _Step, first: _Step, watch: object
) -> None:
    # A 304 made from the first read alone, unobserved: ``answers`` may send it again.
    early = step.early
    if (
        resolved.proof is not None
        and step is first
        and watch is None
        and early is not None
        and early.status_code == 304
    ):
        request.__dict__[_PROVEN] = resolved.proof


def proven(request: HttpRequest) -> object:
    """What the 304 just made for ``request`` was made from (None: it may not be sent again)."""
    return request.__dict__.pop(_PROVEN, None)


def _observed(
    watch: observe.Watch, resolved: Resolved, step: _Step, loaded: bool
) -> None:
    # What the decision read and compared (``observe``; only while something listens).
    reads = (1 if resolved.keys else 0) + (1 if loaded else 0)
    watch.read(resolved.keys, resolved.versions, reads)
    watch.decided(step.evaluation, resolved.validators)


def _seen(result: object) -> HttpResponseBase | bool:
    return result if isinstance(result, HttpResponseBase) else bool(result)


def visible_first(view: View, checked: View, visible: Visible) -> View:
    """Run the access check ``visible`` before ``checked`` (``view`` behind its preconditions).

    RFC 9110 §13.2.1: preconditions are ignored where the answer without them would be other
    than 2xx or 412. ``visible`` returns True (the requester may read the resource: ``checked``
    runs), False (``view`` runs unconditioned and answers its own 404 or 403, with no validator)
    or a response (sent as is). So a 304 or 412 never tells a requester who may not read the
    resource its validators, nor whether it exists.
    """
    if visible is None:
        return checked

    if iscoroutinefunction(checked):

        async def _async_view(
            request: HttpRequest, *args: object, **kwargs: object
        ) -> HttpResponseBase:
            seen = _seen(await acall(visible, request, args, kwargs))
            if isinstance(seen, HttpResponseBase):
                return seen
            run = checked if seen else view
            response: HttpResponseBase = await run(request, *args, **kwargs)
            return response

        return cast(View, wraps(checked)(_async_view))

    def _view(
        request: HttpRequest, *args: object, **kwargs: object
    ) -> HttpResponseBase:
        seen = _seen(call(visible, request, args, kwargs))
        if isinstance(seen, HttpResponseBase):
            return seen
        run = checked if seen else view
        response: HttpResponseBase = run(request, *args, **kwargs)
        return response

    return cast(View, wraps(checked)(_view))


def is_guarded(view: object) -> bool:
    """Whether ``view`` evaluates preconditions itself: decorated, or a guarded class's ``as_view``."""
    return bool(
        getattr(view, GUARDED_VIEW_ATTRIBUTE, False)
        or getattr(getattr(view, "view_class", None), GUARDED_VIEW_ATTRIBUTE, False)
    )


def _guarded(wrapper: Any) -> Any:
    wrapper.conditional_guarded = True
    return wrapper


def conditional_view(
    view: View,
    source: ValidatorSource,
    *,
    headers: Mapping[str, str] | None = None,
    visible: Visible = None,
) -> View:
    """Wrap ``view`` so its preconditions are answered from ``source`` before it runs.

    ``headers`` declares headers of the view's 200 (``Cache-Control``, ``Vary``...) for the 304s
    sent without running it; with ``CONDITIONAL_REMEMBER_HEADERS`` those the view sets are also
    remembered from its last 200. Decorators applied outside this one act on the 304 anyway.
    ``visible`` is the view's access check, run first (see ``visible_first``).
    """
    declared = dict(headers or {})
    if not source.view_id:
        source.view_id = remembered.view_id(view)
    shell = _async_shell if iscoroutinefunction(view) else _sync_shell
    return visible_first(
        view, cast(View, _guarded(shell(view, source, declared))), visible
    )


def _async_shell(
    view: View, source: ValidatorSource, declared: Mapping[str, str]
) -> Callable[..., Any]:
    @wraps(view)
    async def _async_view(
        request: HttpRequest, *args: object, **kwargs: object
    ) -> HttpResponseBase:
        watch = observe.watch(request, source, source.view_id)
        resolved = await observe.acounted(watch, source.aresolve, request, args, kwargs)
        step = first = _before(request, source, resolved, declared)
        if step.load_key is not None:
            loaded = await remembered.arecall(step.load_key)
            step = _before(request, source, resolved, declared, loaded)
        if watch is not None:
            _observed(watch, resolved, step, first is not step)
        _prove(request, resolved, step, first, watch)
        if step.early is not None:
            return observe.finish(watch, step.early)
        response: HttpResponseBase = await view(step.request, *args, **kwargs)
        key = _after(request, response, source, resolved)
        if key is not None:
            await remembered.aremember(key, response)
        return observe.finish(watch, response)

    return _async_view


def _sync_shell(
    view: View, source: ValidatorSource, declared: Mapping[str, str]
) -> Callable[..., Any]:
    @wraps(view)
    def _view(
        request: HttpRequest, *args: object, **kwargs: object
    ) -> HttpResponseBase:
        watch = observe.watch(request, source, source.view_id)
        resolved = observe.counted(watch, source.resolve, request, args, kwargs)
        step = first = _before(request, source, resolved, declared)
        if step.load_key is not None:
            loaded = remembered.recall(step.load_key)
            step = _before(request, source, resolved, declared, loaded)
        if watch is not None:
            _observed(watch, resolved, step, first is not step)
        _prove(request, resolved, step, first, watch)
        if step.early is not None:
            return observe.finish(watch, step.early)
        response: HttpResponseBase = view(step.request, *args, **kwargs)
        key = _after(request, response, source, resolved)
        if key is not None:
            remembered.remember(key, response)
        return observe.finish(watch, response)

    return _view


__all__ = [
    "Args",
    "Kwargs",
    "Resolved",
    "ValidatorSource",
    "Visible",
    "acall",
    "call",
    "conditional_view",
    "is_guarded",
    "proven",
    "visible_first",
]
