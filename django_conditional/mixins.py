"""Class-based views validated by resource versions: the ``versioned`` decorator, as a mixin.

::

    class ArticleDetail(VersionedMixin, DetailView):
        model = Article                      # resources default to Obj(Article, pk_url_kwarg)

    class ArticleList(VersionedMixin, ListView):
        model = Article                      # resources default to CollectionOf(Article)
        version_vary = ("Accept", "Accept-Language")

    class ArticleComments(VersionedMixin, View):
        version_resources = (ObjectOf(Article), CollectionOf(Comment, "by_article", article="pk"))

        async def get(self, request, pk): ...

``is_version_visible()`` (or a ``version_visible`` function) is the view's access check, run before
any precondition (RFC 9110 §13.2.1): an owner-only document answers others its own 404, never a
304 or 412 carrying the owner's validators.

``dispatch`` goes through the same core as ``@versioned`` (``conditional_view`` and the atomic write
guard), so GET/HEAD get 304/412 before the handler runs, and unsafe methods lock and check first;
sync and async views both work. ``setup()`` has run, so ``get_version_resources`` may read
``self.kwargs`` or ``self.request``; it must not query the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model
from django.http import HttpRequest, HttpResponseBase

from django_conditional.flow import Args, Kwargs, Visible
from django_conditional.resources import CollectionOf, ObjectOf, Resource
from django_conditional.versioned_views import (
    ValidatorFunc,
    VersionedSource,
    versioned_view,
)
from django_conditional.writes import RequirePrecondition

if TYPE_CHECKING:
    from django.views import View

    _Base = View
else:
    _Base = object


class VersionedMixin(_Base):
    """Answer preconditions from the versions of ``version_resources`` before the handler runs.

    Defaults: for a ``ListView`` (``MultipleObjectMixin``), the collection of its model; for a view
    with ``model`` and ``pk_url_kwarg`` (``DetailView``, ``UpdateView``, ``DeleteView``), the object
    named by the URL. Views that select by slug, or plain ``View`` subclasses, declare
    ``version_resources``.
    """

    # The middleware's GET-first check has nothing to add (``as_view().view_class`` carries it).
    conditional_guarded: ClassVar[bool] = True
    version_resources: ClassVar[Sequence[Resource | Callable[..., object]] | None] = (
        None
    )
    version_vary: ClassVar[Sequence[str]] = ("Accept", "Accept-Language")
    version_per_user: ClassVar[bool] = False
    version_last_modified: ClassVar[ValidatorFunc | None] = None
    version_headers: ClassVar[Mapping[str, str] | None] = None
    require_precondition: ClassVar[RequirePrecondition] = None
    # ``(request, *args, **kwargs) -> bool | HttpResponse``, or override ``is_version_visible``.
    version_visible: ClassVar[Visible] = None
    # The check depends only on data the resources version: remembered per state (``visibility``).
    version_visible_by_state: ClassVar[bool] = False
    version_write_etag: ClassVar[bool] = True

    def _version_model(self) -> type[Model]:
        model = getattr(self, "model", None)
        if model is None:
            queryset = getattr(self, "queryset", None)
            model = getattr(queryset, "model", None)
        if model is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs version_resources, or a model or queryset "
                "to derive them from."
            )
        return model  # type: ignore[no-any-return]

    def get_version_resources(self) -> Sequence[Resource | Callable[..., object]]:
        """The resources this view shows; by default derived from the generic view's model."""
        if self.version_resources is not None:
            return self.version_resources
        from django.views.generic.detail import SingleObjectMixin
        from django.views.generic.list import MultipleObjectMixin

        if isinstance(self, MultipleObjectMixin):
            return (CollectionOf(self._version_model()),)
        if isinstance(self, SingleObjectMixin):
            return (ObjectOf(self._version_model(), url_kwarg=self.pk_url_kwarg),)
        raise ImproperlyConfigured(
            f"{type(self).__name__} must set version_resources "
            "(ObjectOf(Model), CollectionOf(Model) or key functions)."
        )

    def get_version_last_modified(self) -> ValidatorFunc | None:
        func = type(self).version_last_modified
        return func

    def is_version_visible(self) -> bool | HttpResponseBase:
        """The access check run before preconditions (after ``setup()``): True, False (the
        handler runs unconditioned and answers its own 404 or 403) or a response to send."""
        func = type(self).version_visible
        if func is None:
            return True
        result = func(self.request, *self.args, **self.kwargs)
        return cast("bool | HttpResponseBase", result)

    def _visible(self) -> Visible:
        if (
            type(self).version_visible is None
            and type(self).is_version_visible is VersionedMixin.is_version_visible
        ):
            return None

        def visible(
            request: HttpRequest, *args: object, **kwargs: object
        ) -> bool | HttpResponseBase:
            return self.is_version_visible()

        return visible

    @classmethod
    def conditional_source_for(
        cls, request: HttpRequest, args: Args, kwargs: Kwargs
    ) -> VersionedSource:
        """The source a GET of this view with ``args`` and ``kwargs`` reads: a 201 whose
        ``Location`` names this view gets the ``ETag`` of the created resource from it."""
        view = cls()
        view.setup(request, *args, **kwargs)
        return VersionedSource(
            view.get_version_resources(),
            vary=cls.version_vary,
            per_user=cls.version_per_user,
            last_modified=view.get_version_last_modified(),
        )

    def dispatch(
        self, request: HttpRequest, *args: object, **kwargs: object
    ) -> HttpResponseBase:
        handle: Callable[..., Any] = super().dispatch
        method = (request.method or "").lower()
        if method not in self.http_method_names or not hasattr(self, method):
            refused: HttpResponseBase = handle(request, *args, **kwargs)  # 405
            return refused
        cls = type(self)
        view: Callable[..., Any]
        if getattr(cls, "view_is_async", False):

            async def async_view(
                request: HttpRequest, *args: object, **kwargs: object
            ) -> HttpResponseBase:
                response: HttpResponseBase = await handle(request, *args, **kwargs)
                return response

            view = async_view
        else:

            def sync_view(
                request: HttpRequest, *args: object, **kwargs: object
            ) -> HttpResponseBase:
                response: HttpResponseBase = handle(request, *args, **kwargs)
                return response

            view = sync_view

        # One identity per class, for the headers remembered from its 200s.
        view.__module__ = cls.__module__
        view.__qualname__ = cls.__qualname__
        checked: Callable[..., Any] = versioned_view(
            view,
            self.get_version_resources(),
            vary=self.version_vary,
            per_user=self.version_per_user,
            last_modified=self.get_version_last_modified(),
            require_precondition=self.require_precondition,
            headers=self.version_headers,
            visible=self._visible(),
            write_etag=self.version_write_etag,
            visible_by_state=self.version_visible_by_state,
        )
        # For an async view this is a coroutine, which ``as_view``'s async view awaits.
        result: HttpResponseBase = checked(request, *args, **kwargs)
        return result
