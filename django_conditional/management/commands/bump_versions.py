"""``manage.py bump_versions app_label.Model [pk ...] [--collection]``: bump versions from deploy scripts.

Use it after a change the ORM did not see (raw SQL, a data migration, a restored backup): every
ETag built from the bumped versions changes, so no client gets a stale 304.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Model

from django_conditional import versions
from django_conditional.conf import conf


class Command(BaseCommand):
    help = (
        "Bump the versions of objects of a model (by primary key) and/or of the model's whole "
        "collection, so every ETag built from them changes. Without primary keys the "
        "collection is bumped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="The model, as app_label.ModelName.")
        parser.add_argument(
            "pks", nargs="*", help="Primary keys of the objects to bump."
        )
        parser.add_argument(
            "--collection",
            action="store_true",
            help="Also bump the model's collection (implied when no primary key is given).",
        )

    def handle(self, *args: object, **options: Any) -> None:
        model = self._model(options["model"])
        pks: list[str] = options["pks"]
        keys = [versions.object_key(model, pk) for pk in self._existing(model, pks)]
        if options["collection"] or not pks:
            keys.append(versions.collection_key(model))
        versions.bump(*keys)
        current = versions.get_many(keys)
        for key in keys:
            self.stdout.write(f"{key} -> version {current[key]}")
        if isinstance(caches[conf.CACHE_ALIAS], LocMemCache):
            self.stderr.write(
                "Warning: the version cache is a local-memory cache, private to this process: "
                "running server processes keep the versions they cached until they restart. "
                "Use a shared cache (Redis, Memcached, database) in production."
            )

    def _model(self, label: str) -> type[Model]:
        try:
            return apps.get_model(label)
        except (LookupError, ValueError):
            raise CommandError(
                f"Unknown model {label!r}: give it as app_label.ModelName (e.g. blog.Article)."
            ) from None

    def _existing(self, model: type[Model], pks: list[str]) -> list[Any]:
        """The primary keys converted to the model's type; CommandError unless they all exist."""
        pk_field = model._meta.pk
        assert pk_field is not None
        values: dict[str, object] = {}
        for raw in pks:
            try:
                values[raw] = pk_field.to_python(raw)
            except ValidationError:
                raise CommandError(
                    f"{raw!r} is not a valid primary key for {model._meta.label}."
                ) from None
        found = set(
            model._default_manager.filter(pk__in=list(values.values())).values_list(
                "pk", flat=True
            )
        )
        missing = [raw for raw, value in values.items() if value not in found]
        if missing:
            raise CommandError(
                f"No {model._meta.label} with primary key {', '.join(missing)}."
            )
        return list(values.values())
