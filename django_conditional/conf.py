"""Every ``CONDITIONAL_*`` setting, read live in one place (so ``override_settings`` just works)."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, f"CONDITIONAL_{name}", default)


class Settings:
    @property
    def MAX_LIST_MEMBERS(self) -> int:
        """How many members of an entity-tag list are read; the rest are ignored (CPU guard)."""
        value: int = _setting("MAX_LIST_MEMBERS", 100)
        return value

    @property
    def CACHE_ALIAS(self) -> str:
        """The cache (``CACHES`` alias) holding resource versions and remembered headers."""
        value: str = _setting("CACHE_ALIAS", "default")
        return value

    @property
    def KEY_PREFIX(self) -> str:
        """Prefix of every cache key this app writes."""
        value: str = _setting("KEY_PREFIX", "conditional")
        return value

    @property
    def REMEMBER_HEADERS(self) -> bool:
        """Remember the headers a view sets on its 200 so a 304 or 412 sent without running it carries them."""
        value: bool = _setting("REMEMBER_HEADERS", True)
        return value

    @property
    def REMEMBER_HEADERS_TIMEOUT(self) -> int:
        """Seconds remembered headers live in the cache."""
        value: int = _setting("REMEMBER_HEADERS_TIMEOUT", 24 * 60 * 60)
        return value


conf = Settings()
