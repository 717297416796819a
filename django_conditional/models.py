"""One row per versioned resource: an object of a tracked model, or a collection of them."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class ResourceVersion(models.Model):
    """The version of a resource, addressed by the store's string key (``versions.object_key`` etc.).

    ``version`` only ever grows in absolute value; a negative value means the object was deleted.
    ``content_type``, ``object_pk`` and ``name`` restate what the key says, for the admin and queries.
    """

    class Kind(models.TextChoices):
        OBJECT = "object", _("object")
        COLLECTION = "collection", _("collection")

    key = models.CharField(
        _("key"),
        max_length=255,
        unique=True,
        help_text=_(
            'The version store\'s key, e.g. "o:blog.article:42" or "c:blog.article".'
        ),
    )
    kind = models.CharField(
        _("kind"), max_length=10, choices=Kind.choices, default=Kind.OBJECT
    )
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        verbose_name=_("content type"),
        help_text=_("The model of the object or collection, when the key names one."),
    )
    object_pk = models.CharField(
        _("object primary key"),
        max_length=255,
        blank=True,
        help_text=_(
            "The primary key of the object, as text (integer, UUID and string keys)."
        ),
    )
    name = models.CharField(
        _("collection name"),
        max_length=255,
        blank=True,
        help_text=_(
            'A named collection and its parameters, e.g. "by_author:author=7"; empty for a whole table.'
        ),
    )
    version = models.BigIntegerField(
        _("version"),
        default=0,
        help_text=_(
            "Grows by one on every change; negative once the object is deleted."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("resource version")
        verbose_name_plural = _("resource versions")
        ordering = ["key"]
        indexes = [
            models.Index(
                fields=["content_type", "object_pk"],
                name="dj_conditional_rv_object",
            ),
            models.Index(
                fields=["kind", "content_type"], name="dj_conditional_rv_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} @ {self.version}"

    @property
    def exists(self) -> bool:
        """False once the object was deleted (its version went negative)."""
        return self.version >= 0

    def get_object(self) -> Any:
        """The tracked object this row versions, or None (a collection, a deleted object, an unknown model)."""
        content_type = self.content_type
        if self.kind != "object" or content_type is None:
            return None
        model = content_type.model_class()
        if model is None:
            return None
        try:
            pk = model._meta.pk.to_python(self.object_pk)
        except (ValidationError, ValueError):  # not a valid pk for this model
            return None
        return model._base_manager.filter(pk=pk).first()
