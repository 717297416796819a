"""Public signals of django-conditional."""

from __future__ import annotations

from django.dispatch import Signal

# Sent once per ``versions.bump()`` call, after the transaction that bumped commits (never on a
# rollback), once the cache holds the new versions.
# Arguments: "sender" (the ResourceVersion model), "keys" (tuple of the keys bumped, in order),
# "versions" (dict key -> committed version; negative for a deleted object).
# Receivers run after the commit: an exception they raise is logged, not propagated.
version_bumped = Signal()

# Sent once per conditional decision (``django_conditional.observe``): a versioned or decorated
# view's read (304, 412 or "run the view"), a write's precondition check (412, 428 or "write"), the
# middleware's answer on a content-hashed page. Only built and sent while something listens.
# Arguments: "sender" (the class that decided: the view's validator source, or the middleware),
# "decision" (an ``observe.Decision``), "request" (the ``HttpRequest``).
decision_made = Signal()
