"""Admin for resource versions: see what is tracked, and bump versions by hand.

Versions are never edited as numbers: the form is read-only and every bump goes through
``versions.bump`` (atomic in the database, cache written on commit), as the tracking does.
Rows cannot be added or deleted: deleting one would reset a version to 0 and could make an old
ETag valid again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_conditional import versions
from django_conditional.models import ResourceVersion
from django_conditional.tracking import tracked

if TYPE_CHECKING:
    _Base = admin.ModelAdmin[ResourceVersion]
else:  # ModelAdmin is not subscriptable at run time
    _Base = admin.ModelAdmin


def _bump_rows(rows: Iterable[ResourceVersion]) -> int:
    """Bump each row's key through the version store; deleted objects stay deleted."""
    live = [row.key for row in rows if row.version >= 0]
    gone = [row.key for row in rows if row.version < 0]
    if live:
        versions.bump(*live)
    if gone:
        versions.bump(*gone, deleted=True)
    return len(live) + len(gone)


@admin.register(ResourceVersion)
class ResourceVersionAdmin(_Base):
    list_display = ["key", "model_label", "target", "kind", "version", "updated_at"]
    list_display_links = ["key"]
    list_filter = ["kind", ("content_type", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["key", "object_pk", "name"]
    date_hierarchy = "updated_at"
    readonly_fields = [
        "key",
        "kind",
        "content_type",
        "object_pk",
        "name",
        "version",
        "updated_at",
    ]
    list_select_related = ["content_type"]
    ordering = ["-updated_at"]
    actions = ["bump_selected", "bump_collections"]
    change_list_template = "admin/django_conditional/resourceversion/change_list.html"

    @admin.display(description=_("model"), ordering="content_type__model")
    def model_label(self, obj: ResourceVersion) -> str:
        model = obj.content_type.model_class() if obj.content_type else None
        if model is None:
            return obj.content_type.name if obj.content_type else "-"
        return str(model._meta.verbose_name)

    @admin.display(description=_("object or collection"))
    def target(self, obj: ResourceVersion) -> str:
        """The object, linked to its own change page when its model has one here."""
        if obj.object_pk is None or obj.object_pk == "":
            return str(obj.name or _("(all)"))
        model = obj.content_type.model_class() if obj.content_type else None
        label = f"#{obj.object_pk}"
        if obj.version < 0:
            return f"{label} ({_('deleted')})"
        if model is None or not self.admin_site.is_registered(model):
            return label
        opts = model._meta
        try:
            url = reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                args=[obj.object_pk],
            )
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, object] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_bump": self.has_change_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: ResourceVersion | None = None
    ) -> bool:
        return False

    @admin.action(description=_("Bump selected versions"), permissions=["change"])
    def bump_selected(
        self, request: HttpRequest, queryset: QuerySet[ResourceVersion]
    ) -> None:
        count = _bump_rows(queryset)
        self.message_user(
            request,
            ngettext(
                "Bumped %(count)d version: its ETags change.",
                "Bumped %(count)d versions: their ETags change.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(
        description=_("Bump the whole collection of the selected rows' models"),
        permissions=["change"],
    )
    def bump_collections(
        self, request: HttpRequest, queryset: QuerySet[ResourceVersion]
    ) -> None:
        content_types = ContentType.objects.filter(
            pk__in=queryset.values("content_type")
        )
        self._bump_models(request, content_types)

    def _bump_models(
        self, request: HttpRequest, content_types: Iterable[ContentType]
    ) -> None:
        models = [ct.model_class() for ct in content_types]
        keys = [versions.collection_key(model) for model in models if model is not None]
        if keys:
            versions.bump(*keys)
        self.message_user(
            request,
            _("Bumped the collection of %(models)s.")
            % {
                "models": ", ".join(
                    str(model._meta.verbose_name_plural)
                    for model in models
                    if model is not None
                )
                or "-"
            },
            messages.SUCCESS if keys else messages.WARNING,
        )

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta
        return [
            path(
                "bump-collection/",
                self.admin_site.admin_view(self.bump_collection_view),
                name=f"{opts.app_label}_{opts.model_name}_bump_collection",
            ),
            *super().get_urls(),
        ]

    def bump_collection_view(self, request: HttpRequest) -> HttpResponse:
        """Pick a model and bump its whole collection (every list of it revalidates)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        choices = self._model_choices()
        if request.method == "POST":
            chosen = [
                ct for ct, _label in choices if str(ct.pk) == request.POST.get("model")
            ]
            if chosen:
                self._bump_models(request, chosen)
                opts = self.model._meta
                return HttpResponseRedirect(
                    reverse(
                        f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
                    )
                )
            self.message_user(request, _("Choose a model."), messages.ERROR)
        context: dict[str, object] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Bump a model's collection"),
            "choices": choices,
        }
        return TemplateResponse(
            request,
            "admin/django_conditional/resourceversion/bump_collection.html",
            context,
        )

    def _model_choices(self) -> list[tuple[ContentType, str]]:
        """Tracked models and models that have versions, with their labels, by label."""
        models = {m for m in apps.get_models() if tracked(m) is not None}
        for ct in ContentType.objects.filter(
            pk__in=ResourceVersion.objects.values("content_type")
        ):
            model = ct.model_class()
            if model is not None:
                models.add(model)
        content_types = ContentType.objects.get_for_models(*models)
        return sorted(
            ((content_types[model], model._meta.label) for model in models),
            key=lambda choice: choice[1],
        )
