"""System checks for misconfiguration, with stable ids ``django_conditional.E0xx`` / ``W0xx``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

from django_conditional.conf import conf


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_settings(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if not _is_positive_int(conf.MAX_LIST_MEMBERS):
        errors.append(
            Error(
                "CONDITIONAL_MAX_LIST_MEMBERS must be a positive integer.",
                id="django_conditional.E001",
            )
        )
    if conf.CACHE_ALIAS not in settings.CACHES:
        errors.append(
            Error(
                f"CONDITIONAL_CACHE_ALIAS names {conf.CACHE_ALIAS!r}, which is not in CACHES.",
                hint="Set it to one of the aliases of the CACHES setting.",
                id="django_conditional.E002",
            )
        )
    if not isinstance(conf.KEY_PREFIX, str) or not conf.KEY_PREFIX:
        errors.append(
            Error(
                "CONDITIONAL_KEY_PREFIX must be a non-empty string.",
                id="django_conditional.E003",
            )
        )
    if not _is_positive_int(conf.REMEMBER_HEADERS_TIMEOUT):
        errors.append(
            Error(
                "CONDITIONAL_REMEMBER_HEADERS_TIMEOUT must be a positive integer (seconds).",
                id="django_conditional.E004",
            )
        )
    return errors


def register_checks() -> None:
    register(Tags.compatibility)(check_settings)
