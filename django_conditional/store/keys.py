"""Version-store keys: cheap string building, no database query.

``object_key(Article, 42) == "o:blog.article:42"``, ``collection_key(Article) == "c:blog.article"``,
``collection_key(Article, "by_author", author=7) == "c:blog.article:by_author:author=7"``.

Every key is safe for every cache backend and for the database column: characters outside
``[A-Za-z0-9_.~@+-]`` are percent-encoded (so a key is ASCII without spaces or control
characters), and a key longer than ``MAX_KEY_LENGTH`` keeps its first ``_HASHED_HEAD`` characters
followed by ``#`` and the 32 hex digits of its BLAKE2b-128 digest (memcached refuses keys over 250
bytes; the column holds 255). So building a key never fails after data was written.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import suppress
from typing import Final
from urllib.parse import quote, unquote

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

__all__ = ["object_key", "collection_key", "parse_key", "bounded_key", "MAX_KEY_LENGTH"]

MAX_KEY_LENGTH: Final = 160
_HASHED_HEAD: Final = MAX_KEY_LENGTH - 33
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.~@+\-]")
_UNPRINTABLE: Final = re.compile(r"[^\x21-\x7e]")


def _model_of(model_or_instance: object) -> type[models.Model]:
    model = (
        model_or_instance
        if isinstance(model_or_instance, type)
        else type(model_or_instance)
    )
    if not issubclass(model, models.Model):
        raise TypeError(f"expected a model or an instance, not {model_or_instance!r}")
    # A proxy shares the rows, hence the versions, of its concrete model.
    concrete: type[models.Model] = model._meta.concrete_model  # type: ignore[assignment]
    return concrete


def _text(value: object) -> str:
    text = value if type(value) is str else str(value)
    return quote(text, safe="") if _UNSAFE.search(text) else text


def bounded_key(key: str) -> str:
    """``key`` safe for every backend: spaces, control and non-ASCII characters percent-encoded,
    then hashed when longer than ``MAX_KEY_LENGTH``. Idempotent, and the identity for the keys
    ``object_key`` and ``collection_key`` build short."""
    if _UNPRINTABLE.search(key):
        key = "".join(quote(c, safe="") if _UNPRINTABLE.match(c) else c for c in key)
    if len(key) <= MAX_KEY_LENGTH:
        return key
    digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return f"{key[:_HASHED_HEAD]}#{digest}"


def _normalised(field: models.Field[object, object], value: object) -> object:
    """``value`` as ``field`` holds it ("42" and 42 name one row); unchanged when invalid."""
    target = getattr(field, "target_field", None) if field.is_relation else field
    if target is None or type(value) is not str:
        return value
    with suppress(ValidationError, TypeError, ValueError):
        return target.to_python(value)
    return value


def object_key(model_or_instance: object, pk: object = None) -> str:
    """The key of one object: ``"o:<app_label>.<model_name>:<pk>"``.

    With an instance, its pk is used unless ``pk`` is given. A pk given as text is normalised by the
    model's pk field (``"42"`` and ``42``, or a UUID's two spellings, give one key).
    """
    model = _model_of(model_or_instance)
    if pk is None:
        if isinstance(model_or_instance, type):
            raise TypeError("object_key(Model, pk) needs a pk")
        pk = getattr(model_or_instance, "pk", None)
        if pk is None:
            raise ValueError("object_key() of an unsaved instance")
    elif model._meta.pk is not None:
        pk = _normalised(model._meta.pk, pk)
    return bounded_key(f"o:{model._meta.label_lower}:{_text(pk)}")


def _param(model: type[models.Model], name: str, value: object) -> str:
    # A parameter named after a field is normalised by it: "/by-author/01/" is author 1.
    with suppress(FieldDoesNotExist):
        value = _normalised(model._meta.get_field(name), value)  # type: ignore[arg-type]
    return _text(value)


def collection_key(model: object, name: str | None = None, **params: object) -> str:
    """The key of a model's whole table (``"c:blog.article"``) or of a named collection in it.

    ``collection_key(Article, "by_author", author=7) == "c:blog.article:by_author:author=7"``;
    several parameters are sorted by name and joined with ``,``. A parameter named after a field
    of the model is normalised by that field (``author="07"`` and ``author=7`` give one key).
    """
    concrete = _model_of(model)
    label = concrete._meta.label_lower
    if name is None:
        if params:
            raise TypeError("collection_key() parameters need a collection name")
        return f"c:{label}"
    if params:
        args = ",".join(
            f"{_text(k)}={_param(concrete, k, params[k])}" for k in sorted(params)
        )
        return bounded_key(f"c:{label}:{_text(name)}:{args}")
    return bounded_key(f"c:{label}:{_text(name)}")


def parse_key(key: str) -> tuple[str, str | None, str, str]:
    """``(kind, model label or None, object pk, collection name)`` that a key names.

    The pk of a hashed key is its readable head only (for display).
    """
    kind, _, rest = key.partition(":")
    label, _, tail = rest.partition(":")
    if kind == "o" and label and tail:
        return "object", label, unquote(tail), ""
    if kind == "c" and label:
        return "collection", label, "", tail
    return "collection", None, "", key
