from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoConditionalConfig(AppConfig):
    name = "django_conditional"
    verbose_name = _("Conditional requests")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_conditional import checks

        checks.register_checks()
