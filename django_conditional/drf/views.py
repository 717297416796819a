"""``ConditionalAPIMixin``: DRF views and viewsets validated by resource versions.

DRF's ``dispatch`` runs ``initial()`` (content negotiation, versioning, authentication,
permissions, throttling) and then the handler. The mixin's ``initial()`` wraps that handler in
the core's shell: ``flow.conditional_view`` for GET and HEAD (a 304 or 412 from the versions,
before ``get_object()`` and the serializer run), ``writes.guard`` for unsafe methods (the 428
policy, then the locked check and the handler in one transaction, then the new ``ETag``). So a
caller refused by authentication, permissions or throttling never gets a 304 or a 412, and a
412 or 428 is an exception that DRF's exception handling (the project's handler included) renders.

Object-level permissions (a permission class overriding ``has_object_permission``) need the
object: on detail routes the mixin then runs ``get_object()`` before answering, so a 304 costs
the object's query instead of none. A view whose ``get_queryset()`` is its access check (scoped
to the requester) sets ``conditional_check_object = True`` for the same (RFC 9110 §13.2.1: no
304 or 412, hence no validator, for an object the requester may not read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model
from django.http import HttpResponseBase
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from django_conditional import versions, writes
from django_conditional.flow import conditional_view
from django_conditional.preconditions import SAFE_METHODS
from django_conditional.resources import CollectionOf, ObjectOf
from django_conditional.responses import PROBLEM_JSON
from django_conditional.store.keys import bounded_key
from django_conditional.versioned_views import Declared, ValidatorFunc

from .exceptions import ConditionalProblem
from .resources import ObjectByLookup, item_keys
from .sources import APISource, CreateSource

if TYPE_CHECKING:
    from rest_framework.generics import GenericAPIView

    _Base = GenericAPIView
else:
    _Base = object

__all__ = ["ConditionalAPIMixin", "RequirePolicy"]

# A 428 policy (see ``writes.RequirePrecondition``), or one per action: {"update": True, ...}.
RequirePolicy = writes.RequirePrecondition | Mapping[str, writes.RequirePrecondition]


def object_level(permission: object) -> bool:
    """Whether ``permission`` (composed ones included) checks objects, not only requests."""
    operands = [getattr(permission, name, None) for name in ("op1", "op2")]
    if operands[0] is not None:  # DRF's AND, OR, NOT
        return any(object_level(op) for op in operands if op is not None)
    method = getattr(type(permission), "has_object_permission", None)
    return method is not None and method is not BasePermission.has_object_permission


class ConditionalAPIMixin(_Base):  # type: ignore[type-arg]
    """Answer conditional requests to a DRF view from resource versions (see the module docstring).

    Class attributes, in DRF's style:

    - ``conditional_resources``: what a detail route shows (default: the queryset's model,
      object named by the lookup kwarg); ``conditional_list_resources``: what a list route shows
      (default: the model's collection). Or override ``get_conditional_resources()``.
    - ``conditional_vary``: request headers the representation depends on besides what DRF
      negotiates (renderer, version, language); ``conditional_per_user``: per-user responses.
    - ``conditional_last_modified``: ``(request, *args, **kwargs) -> datetime`` (may query).
    - ``conditional_headers``: headers of the 200 that the 304s sent without the view carry.
    - ``require_precondition``: the 428 policy, or a mapping action -> policy.
    - ``conditional_check_object``: on detail routes, run ``get_object()`` (its 404 or 403)
      before any precondition: None (default) when a permission checks objects, True always,
      False never.
    - ``conditional_write_etag``: False when the stored data is not what the responses to
      writes describe (no ``ETag`` on them, RFC 9110 §9.3.4).
    """

    conditional_resources: ClassVar[Declared | None] = None
    conditional_list_resources: ClassVar[Declared | None] = None
    conditional_vary: ClassVar[Sequence[str]] = ()
    conditional_per_user: ClassVar[bool] = False
    conditional_last_modified: ClassVar[ValidatorFunc | None] = None
    conditional_headers: ClassVar[Mapping[str, str] | None] = None
    require_precondition: ClassVar[RequirePolicy] = None
    conditional_check_object: ClassVar[bool | None] = None
    conditional_write_etag: ClassVar[bool] = True

    # -- configuration --

    def _conditional_model(self) -> type[Model]:
        queryset = getattr(self, "queryset", None)
        model = getattr(queryset, "model", None)
        if model is None and hasattr(self, "get_queryset"):
            model = getattr(self.get_queryset(), "model", None)
        if model is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs conditional_resources, or a queryset "
                "to derive them from."
            )
        return model  # type: ignore[no-any-return]

    def _lookup_kwarg(self) -> str:
        lookup_field = getattr(self, "lookup_field", "pk")
        return getattr(self, "lookup_url_kwarg", None) or lookup_field

    def conditional_is_detail(self) -> bool:
        """Whether this route shows one object (a viewset's ``detail``, else a lookup kwarg)."""
        detail = getattr(self, "detail", None)
        if detail is not None:
            return bool(detail)
        return self._lookup_kwarg() in getattr(self, "kwargs", {})

    def get_conditional_object_resources(self) -> Declared:
        """What one object's own URL shows (detail routes, ``ETagField``, a created object)."""
        if self.conditional_resources is not None:
            return self.conditional_resources
        model = self._conditional_model()
        field = getattr(self, "lookup_field", "pk")
        if field == "pk" or (
            model._meta.pk is not None and field == model._meta.pk.name
        ):
            return (ObjectOf(model, url_kwarg=self._lookup_kwarg()),)
        return (ObjectByLookup(model, field, self._lookup_kwarg()),)

    def get_conditional_resources(self) -> Declared:
        """What this route shows: the object's resources on detail routes, else the list's."""
        if self.conditional_is_detail():
            return self.get_conditional_object_resources()
        if self.conditional_list_resources is not None:
            return self.conditional_list_resources
        return (CollectionOf(self._conditional_model()),)

    def get_require_precondition(self) -> writes.RequirePrecondition:
        policy = self.require_precondition
        if isinstance(policy, Mapping):
            action = (
                getattr(self, "action", None) or (self.request.method or "").lower()
            )
            return policy.get(action)
        return policy

    def conditional_view_id(self) -> str:
        cls = type(self)
        action = getattr(self, "action", None) or (self.request.method or "").lower()
        return f"{cls.__module__}.{cls.__qualname__}:{action}"

    def conditional_creating(self) -> bool:
        """Whether this request creates an object (``create``, or POST to a list route)."""
        action = getattr(self, "action", None)
        if action is not None:
            return bool(action == "create")
        return self.request.method == "POST" and hasattr(self, "perform_create")

    def conditional_source(self, *, query: bool = True) -> APISource:
        options: dict[str, Any] = {
            "vary": self.conditional_vary,
            "per_user": self.conditional_per_user,
            "last_modified": type(self).conditional_last_modified,
            "view_id": self.conditional_view_id(),
        }
        if query and self.conditional_creating():
            return CreateSource(self.conditional_target_exists, **options)
        resources = (
            self.get_conditional_resources()
            if query
            else self.get_conditional_object_resources()
        )
        return APISource(resources, query=query, **options)

    def conditional_target_exists(self, request: Any) -> bool:
        """For ``create``: whether the request names (by the lookup field) an existing object."""
        data = request.data
        field = getattr(self, "lookup_field", "pk")
        pk = self._conditional_model()._meta.pk
        name = pk.name if field == "pk" and pk is not None else field
        if not isinstance(data, Mapping) or data.get(name) in (None, ""):
            return False
        return bool(self.get_queryset().filter(**{field: data[name]}).exists())

    # -- the request --

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        method = request.method
        if method not in SAFE_METHODS and not writes.is_write(method):
            return
        name = method.lower()
        handler = getattr(self, name, None)
        if handler is None or name not in self.http_method_names:
            return  # DRF answers 405
        if self.conditional_checks_object():
            self.get_object()  # 404 or 403 before any 304 or 412
        setattr(self, name, self._conditional_handler(handler))

    def conditional_checks_object(self) -> bool:
        """Whether ``get_object()`` runs before preconditions (``conditional_check_object``)."""
        if not self.conditional_is_detail() or not hasattr(self, "get_object"):
            return False
        if self.conditional_check_object is not None:
            return self.conditional_check_object
        return any(object_level(permission) for permission in self.get_permissions())

    def _conditional_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        source = self.conditional_source()

        def view(request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response: HttpResponseBase = handler(request, *args, **kwargs)
            return response

        read = conditional_view(view, source, headers=self.conditional_headers)
        return writes.guard(
            view,
            read,
            source,
            self.get_require_precondition(),
            write_etag=self.conditional_write_etag,
        )

    def handle_exception(self, exc: Exception) -> Response:
        response: Response = super().handle_exception(exc)
        if (
            isinstance(exc, ConditionalProblem)
            and response.status_code == exc.status_code
        ):
            for name, value in exc.headers.items():
                response.headers.setdefault(name, value)
            renderer = getattr(self.request, "accepted_renderer", None)
            if "json" in getattr(renderer, "media_type", ""):
                response.content_type = PROBLEM_JSON
        return response

    # -- per-item tags --

    def conditional_etags(self, items: Iterable[Any]) -> list[str | None]:
        """The ``ETag`` each item's own URL gives this request's representation: one store read
        for all of them (``ETagField``)."""
        objects = list(items)
        resources = self.get_conditional_object_resources()
        source = self.conditional_source(query=False)
        field = getattr(self, "lookup_field", "pk")
        lookup = self._lookup_kwarg()
        per_item = [
            item_keys(resources, self.request, self.kwargs, lookup, obj, field)
            for obj in objects
        ]
        every = [key for keys in per_item for key in keys]
        # Inside a write's transaction the cache still holds the versions before it: read the
        # rows the write path has locked (and bumped), as its new ETag is read.
        # The HTTP method, not the Browsable API's clone of the request for its PUT form.
        http_request = getattr(self.request, "_request", self.request)
        writing = http_request.method not in SAFE_METHODS
        found = versions.lock(every) if writing else versions.read(every).versions
        tags = []
        for keys in per_item:
            mine = {key: found[key] for key in map(bounded_key, keys)}
            etag = source.validators(mine, self.request, None).etag
            tags.append(None if etag is None else str(etag))
        return tags

    def conditional_created_etag(self, instance: Model) -> str | None:
        """The ``ETag`` of a just created object, read inside the write's transaction."""
        resources = self.get_conditional_object_resources()
        field = getattr(self, "lookup_field", "pk")
        lookup = self._lookup_kwarg()
        keys = item_keys(resources, self.request, self.kwargs, lookup, instance, field)
        etag = self.conditional_source(query=False).current_etag(
            self.request, versions.lock(keys)
        )
        return None if etag is None else str(etag)
