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
from contextvars import ContextVar
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

    @classmethod
    def _visible(cls) -> Visible:
        if (
            cls.version_visible is None
            and cls.is_version_visible is VersionedMixin.is_version_visible
        ):
            return None
        return _current_is_visible

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

    @classmethod
    def _built_per_request(cls) -> bool:
        # What the view is built from is computed per instance: no wrapper can be shared.
        return (
            cls.get_version_resources is not VersionedMixin.get_version_resources
            or cls.get_version_last_modified
            is not VersionedMixin.get_version_last_modified
        )

    def _checked_view(self) -> Callable[..., Any]:
        """The versioned view around this class's handler: built once per class (it reaches the
        instance of the request through ``_current``), or per request when the resources or
        ``Last-Modified`` come from overridden methods."""
        cls = type(self)
        built = cls.__dict__.get("_conditional_checked")
        if built is not None:
            return cast(Callable[..., Any], built)
        view = _async_handler if getattr(cls, "view_is_async", False) else _handler
        # One identity per class, for the headers remembered from its 200s.
        view_id = f"{cls.__module__}.{cls.__qualname__}"
        checked: Callable[..., Any] = versioned_view(
            view,
            self.get_version_resources(),
            vary=self.version_vary,
            per_user=self.version_per_user,
            last_modified=self.get_version_last_modified(),
            require_precondition=self.require_precondition,
            headers=self.version_headers,
            view_id=view_id,
            visible=cls._visible(),
            write_etag=self.version_write_etag,
            visible_by_state=self.version_visible_by_state,
            repeat_answers=not cls._built_per_request(),
        )
        if not cls._built_per_request():
            setattr(cls, "_conditional_checked", checked)  # noqa: B010 (not inherited)
        return checked

    def dispatch(
        self, request: HttpRequest, *args: object, **kwargs: object
    ) -> HttpResponseBase:
        method = (request.method or "").lower()
        if method not in self.http_method_names or not hasattr(self, method):
            refused: HttpResponseBase = super().dispatch(request, *args, **kwargs)
            return refused  # 405
        checked = self._checked_view()
        if getattr(type(self), "view_is_async", False):
            # A coroutine, which ``as_view``'s async view awaits: the instance is set inside it.
            return cast(
                HttpResponseBase, _run_async(self, checked, request, args, kwargs)
            )
        token = _current.set(self)
        try:
            response: HttpResponseBase = checked(request, *args, **kwargs)
        finally:
            _current.reset(token)
        return response


# The instance serving the current request (thread- and task-local), for the shared wrapper.
_current: ContextVar[VersionedMixin] = ContextVar("django_conditional_view")


def _handler(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
    response: HttpResponseBase = super(VersionedMixin, _current.get()).dispatch(
        request, *args, **kwargs
    )
    return response


async def _async_handler(
    request: HttpRequest, *args: object, **kwargs: object
) -> HttpResponseBase:
    handle: Callable[..., Any] = super(VersionedMixin, _current.get()).dispatch
    response: HttpResponseBase = await handle(request, *args, **kwargs)
    return response


def _current_is_visible(
    request: HttpRequest, *args: object, **kwargs: object
) -> bool | HttpResponseBase:
    return _current.get().is_version_visible()


async def _run_async(
    view: VersionedMixin,
    checked: Callable[..., Any],
    request: HttpRequest,
    args: Args,
    kwargs: Kwargs,
) -> HttpResponseBase:
    token = _current.set(view)
    try:
        response: HttpResponseBase = await checked(request, *args, **kwargs)
    finally:
        _current.reset(token)
    return response
