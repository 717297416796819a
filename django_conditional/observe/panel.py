"""A django-debug-toolbar panel: the conditional decisions behind the page (extra ``debug``).

Add ``"django_conditional.observe.panel.ConditionalPanel"`` to ``DEBUG_TOOLBAR_PANELS``. While the
toolbar handles a request the panel listens to ``decision_made`` and keeps the decisions made for
that request; they are stored with the toolbar's other panels, so API calls are shown too, through
the toolbar's history panel.
"""

from __future__ import annotations

from typing import Any

from debug_toolbar.panels import Panel
from django.http import HttpRequest, HttpResponseBase
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_conditional.observe.record import Decision
from django_conditional.signals import decision_made


class ConditionalPanel(Panel):
    """Each decision: outcome, the precondition that decided it, validators, keys and versions,
    round trips and queries, and whether the local version cache answered."""

    title = _("Conditional requests")
    template = "django_conditional/panel.html"
    is_async = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decisions: list[dict[str, Any]] = []

    def _receive(
        self, sender: object, decision: Decision, request: HttpRequest, **kwargs: Any
    ) -> None:
        # Receivers are global: keep only the decisions about the toolbar's own request.
        if request is getattr(self.toolbar.request, "_request", self.toolbar.request):
            self.decisions.append(decision.as_dict())

    def enable_instrumentation(self) -> None:
        decision_made.connect(self._receive, weak=False, dispatch_uid=id(self))

    def disable_instrumentation(self) -> None:
        decision_made.disconnect(dispatch_uid=id(self))

    @property
    def nav_subtitle(self) -> str:
        stats = self.get_stats()  # type: ignore[no-untyped-call]
        decisions = stats.get("decisions", [])
        if not decisions:
            return str(_("no decision"))
        labels = ", ".join(decision["label"] for decision in decisions)
        count = ngettext("%(n)d decision", "%(n)d decisions", len(decisions))
        return f"{count % {'n': len(decisions)}}: {labels}"

    def generate_stats(self, request: HttpRequest, response: HttpResponseBase) -> None:
        self.record_stats({"decisions": list(self.decisions)})  # type: ignore[no-untyped-call]
