"""Strong entity-tags from resource versions (RFC 9110 §8.8.3).

A representation built from versioned resources changes only when one of them is bumped, when a
request header it varies on takes another value, or when the code or templates that render it
change. ``version_etag`` hashes exactly those three things, so two representations that may differ
never share an entity-tag, and a deploy never answers 304 to a validator of the old code.

The deploy salt is, in order: the ``CONDITIONAL_DEPLOY_SALT`` setting; the ``CONDITIONAL_DEPLOY_SALT``
environment variable (set it to the release id or commit sha in the deploy); else a hash computed
once per process of the package versions of installed apps that live in site-packages and of the
*contents* of every other installed app's Python files, templates and compiled translations, plus
the ``TEMPLATES`` ``DIRS`` and the Python files of the project package (the one holding the
settings module and the root URLconf). Contents, not modification times, so every worker and every host of
one deploy agree, and any change to the code or templates of the site changes it.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
import threading
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from django_conditional.conf import conf
from django_conditional.validators import ETag

__all__ = ["version_etag", "version_tag", "deploy_salt", "auto_deploy_salt"]

ENV_VAR = "CONDITIONAL_DEPLOY_SALT"
_MAX_FILES = 50_000  # a guard against an app pointing at a huge tree
_SKIP_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        ".tox",
        ".mypy_cache",
    }
)

_auto_salt: str | None = None
_auto_lock = threading.Lock()
_seeded: tuple[str, Any] | None = (
    None  # (salt, blake2b hasher fed with it): copied per ETag
)


def version_etag(versions: Mapping[str, int], vary: Sequence[str | None] = ()) -> ETag:
    """A strong ETag for a representation built from ``versions`` (``versions.get_many``'s answer)
    and varying on the request header values ``vary`` (e.g. ``Accept-Language``, the user id)."""
    return ETag(
        _tag(
            _salt(),
            tuple(sorted(versions.items())),
            tuple(v or "" for v in vary),
        )
    )


def version_tag(versions: Mapping[str, int]) -> str:
    """The opaque-tag of ``version_etag(versions)``, remembered per salt and versions.

    A pure function of its inputs: the same versions always give the same tag, so a remembered
    tag is never stale (a bumped version is another input). What a request names is bounded.
    """
    return _remembered_tag(_salt(), tuple(sorted(versions.items())))


def _salt() -> str:
    return conf.DEPLOY_SALT or _auto_salt or deploy_salt()


@lru_cache(maxsize=4096)
def _remembered_tag(salt: str, items: tuple[tuple[str, int], ...]) -> str:
    return _tag(salt, items, ())


def _tag(salt: str, items: tuple[tuple[str, int], ...], vary: tuple[str, ...]) -> str:
    global _seeded
    seeded = _seeded
    if seeded is None or seeded[0] != salt:
        seeded = (salt, hashlib.blake2b(salt.encode(), digest_size=16))
        _seeded = seeded
    hasher = seeded[1].copy()
    # NUL separates fields: it can occur neither in a header value nor in a store key.
    parts = [f"\0{key}\0{version}" for key, version in items]
    parts.append("\0\0")
    parts.extend(f"{len(value)}:{value}" for value in vary)
    hasher.update("".join(parts).encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()


def deploy_salt() -> str:
    """The salt of this deploy (see the module docstring)."""
    configured = conf.DEPLOY_SALT
    if configured:
        return configured
    global _auto_salt
    if _auto_salt is None:
        with _auto_lock:
            if _auto_salt is None:
                _auto_salt = os.environ.get(ENV_VAR) or auto_deploy_salt()
    return _auto_salt


def _site_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(
        {
            os.path.realpath(paths[name]) + os.sep
            for name in ("purelib", "platlib")
            if name in paths
        }
    )


def _distribution_versions() -> dict[str, str]:
    from importlib.metadata import packages_distributions, version

    found: dict[str, str] = {}
    for top, dists in packages_distributions().items():
        labels = []
        for dist in dists:
            try:
                labels.append(f"{dist}=={version(dist)}")
            except Exception:  # pragma: no cover - broken metadata
                labels.append(dist)
        found[top] = ",".join(sorted(labels))
    return found


def _package_dir(name: str) -> str | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.realpath(next(iter(spec.submodule_search_locations)))


def _files(root: Path, suffixes: tuple[str, ...] | None) -> Iterator[Path]:
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for filename in sorted(filenames):
            if suffixes is None or filename.endswith(suffixes):
                yield Path(directory, filename)


def auto_deploy_salt() -> str:
    """Hash of what renders the site: installed apps (versions or contents) and template dirs."""
    from django.apps import apps
    from django.conf import settings

    from django_conditional import __version__

    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(f"django-conditional=={__version__}\0".encode())
    site_dirs = _site_dirs()
    dist_versions: dict[str, str] | None = None
    roots: list[tuple[Path, tuple[str, ...] | None]] = []
    for app in apps.get_app_configs():
        path = os.path.realpath(app.path)
        if path.startswith(site_dirs):
            if dist_versions is None:
                dist_versions = _distribution_versions()
            top = app.name.partition(".")[0]
            hasher.update(f"{app.name}:{dist_versions.get(top, '?')}\0".encode())
        else:
            roots.append((Path(path), (".py", ".mo")))
            roots.append((Path(path, "templates"), None))
    for backend in getattr(settings, "TEMPLATES", []):
        for directory in backend.get("DIRS", []):
            roots.append((Path(directory), None))
    # The project package (settings, URLconf, views outside any app).
    for module in {settings.SETTINGS_MODULE, getattr(settings, "ROOT_URLCONF", None)}:
        if isinstance(module, str) and module:
            package = _package_dir(module.partition(".")[0])
            if package is not None and not package.startswith(site_dirs):
                roots.append((Path(package), (".py", ".mo")))
    count = 0
    seen: set[Path] = set()
    for root, suffixes in roots:
        for file in _files(root, suffixes):
            if file in seen:
                continue
            seen.add(file)
            count += 1
            if count > _MAX_FILES:
                break
            try:
                content = file.read_bytes()
            except OSError:
                continue
            hasher.update(f"{file.relative_to(root)}\0{len(content)}\0".encode())
            hasher.update(content)
    return hasher.hexdigest()


def _reset() -> None:
    """Forget the computed salt (tests)."""
    global _auto_salt, _seeded
    _auto_salt = None
    _seeded = None
    _remembered_tag.cache_clear()
