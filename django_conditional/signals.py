"""Public signals of django-conditional."""

from __future__ import annotations

from django.dispatch import Signal

# Sent once per ``versions.bump()`` call, after the transaction that bumped commits (never on a
# rollback), once the cache holds the new versions.
# Arguments: "sender" (the ResourceVersion model), "keys" (tuple of the keys bumped, in order),
# "versions" (dict key -> committed version; negative for a deleted object).
# Receivers run after the commit: an exception they raise is logged, not propagated.
version_bumped = Signal()
