"""Whether a version read may be used again: what proves it, and the check.

A read the process-local copy answered whole (``store.local``) is proven by the copy's names and
raw values, the server and the epoch it was trusted against. While all of these are unchanged,
and nothing this process wrote failed (``store.cache.untrusted``), the same read would return the
same now, so anything computed from it alone may be used again (``answers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django_conditional import fastcache
from django_conditional.store import cache as store_cache
from django_conditional.store import epoch, local

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

__all__ = ["Proof", "unchanged"]


@dataclass(frozen=True, slots=True, eq=False)
class Proof:
    """A read the local copy answered whole: the server and epoch trusted, the copy's proof."""

    server: str | None
    epoch: int
    read: local.Proof
    backend: (
        BaseCache  # the version cache read (any setting change forgets every proof)
    )


def unchanged(proof: Proof) -> bool:
    """Whether the read ``proof`` proves would return the same now (same server and epoch, nothing
    distrusted, the local copy's raw values unchanged: ``store.local.holds``)."""
    if store_cache.untrusted:
        return False
    backend = proof.backend
    server = fastcache.server_id(backend)
    return (
        server == proof.server
        and epoch.believed(server) == proof.epoch
        and local.holds(backend, proof.read)
    )
