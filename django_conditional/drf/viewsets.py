"""Ready-made conditional viewsets and generic views, the ``create`` mixin, and ``@conditional``
for ``@api_view`` functions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import Model
from rest_framework import generics, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from django_conditional.resources import Resource, as_resources
from django_conditional.versioned_views import ValidatorFunc

from .views import ConditionalAPIMixin, RequirePolicy

if TYPE_CHECKING:
    _CreateBase = ConditionalAPIMixin
else:
    _CreateBase = object

__all__ = [
    "ConditionalCreateModelMixin",
    "ConditionalGenericViewSet",
    "ConditionalModelViewSet",
    "ConditionalReadOnlyModelViewSet",
    "ConditionalRetrieveUpdateDestroyAPIView",
    "ConditionalListCreateAPIView",
    "conditional",
]


class ConditionalCreateModelMixin(_CreateBase):
    """``create`` answering 201 with the new object's ``ETag`` and ``Location``.

    Compose it before DRF's ``CreateModelMixin`` (the ready-made classes here do). The ``ETag``
    is the one ``GET`` of the object's URL gives the same representation, read inside the
    write's transaction; ``Location`` is the serializer's ``url`` field, else the router's
    ``<basename>-detail`` route, else the model's ``get_absolute_url()``.
    """

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)  # type: ignore[attr-defined]
        data = serializer.data
        headers = dict(self.get_success_headers(data))  # type: ignore[attr-defined]
        instance = serializer.instance
        if isinstance(instance, Model):
            location = self.get_created_location(instance)
            if location is not None:
                headers.setdefault("Location", location)
            etag = (
                self.conditional_created_etag(instance)
                if self.conditional_write_etag
                else None
            )
            if etag is not None:
                headers["ETag"] = etag
        return Response(data, status=status.HTTP_201_CREATED, headers=headers)

    def get_created_location(self, instance: Model) -> str | None:
        lookup = getattr(instance, getattr(self, "lookup_field", "pk"))
        basename = getattr(self, "basename", None)
        if basename is not None:
            name = f"{basename}-detail"
            namespace = (
                self.request.resolver_match and self.request.resolver_match.namespace
            )
            if namespace:
                name = f"{namespace}:{name}"
            kwargs = {**self.kwargs, self._lookup_kwarg(): lookup}
            try:
                return str(reverse(name, kwargs=kwargs, request=self.request))
            except Exception:  # no such route: fall back to the model's own URL
                pass
        absolute = getattr(instance, "get_absolute_url", None)
        if absolute is None:
            return None
        return self.request.build_absolute_uri(absolute())


class ConditionalModelViewSet(
    ConditionalCreateModelMixin,
    ConditionalAPIMixin,
    viewsets.ModelViewSet,  # type: ignore[type-arg]
):
    """``ModelViewSet`` with conditional requests on every action."""


class ConditionalReadOnlyModelViewSet(
    ConditionalAPIMixin,
    viewsets.ReadOnlyModelViewSet,  # type: ignore[type-arg]
):
    """``ReadOnlyModelViewSet`` with 304s on ``list`` and ``retrieve``."""


class ConditionalGenericViewSet(
    ConditionalAPIMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    """A base to compose with DRF's model mixins (and ``ConditionalCreateModelMixin``)."""


class ConditionalListCreateAPIView(
    ConditionalCreateModelMixin,
    ConditionalAPIMixin,
    generics.ListCreateAPIView,  # type: ignore[type-arg]
):
    """``ListCreateAPIView`` with conditional requests."""


class ConditionalRetrieveUpdateDestroyAPIView(
    ConditionalAPIMixin,
    generics.RetrieveUpdateDestroyAPIView,  # type: ignore[type-arg]
):
    """``RetrieveUpdateDestroyAPIView`` with conditional requests."""


def conditional(
    *resources: Resource | Callable[..., Any],
    vary: Sequence[str] = (),
    per_user: bool = False,
    last_modified: ValidatorFunc | None = None,
    require_precondition: RequirePolicy = None,
    headers: Mapping[str, str] | None = None,
) -> Callable[[Any], Any]:
    """For function views: apply it *above* ``@api_view``::

        @conditional(ObjectOf(Article), require_precondition=True)
        @api_view(["GET", "PUT"])
        def article(request, pk): ...

    The view keeps DRF's order: negotiation, authentication, permissions and throttling run
    first, then the preconditions, then the function.
    """
    declared = as_resources(resources)

    def decorator(view: Any) -> Any:
        cls = getattr(view, "cls", None)
        if not (isinstance(cls, type) and issubclass(cls, APIView)):
            raise TypeError("@conditional goes above @api_view (on a DRF view).")
        attributes = {
            "conditional_resources": declared,
            "conditional_list_resources": declared,
            "conditional_vary": tuple(vary),
            "conditional_per_user": per_user,
            "conditional_last_modified": last_modified,
            "conditional_headers": headers,
            "require_precondition": require_precondition,
            "__module__": cls.__module__,
            "__qualname__": getattr(view, "__qualname__", cls.__qualname__),
        }
        wrapped: Any = type(cls.__name__, (ConditionalAPIMixin, cls), attributes)
        return wrapped.as_view(**getattr(view, "initkwargs", {}))

    return decorator
