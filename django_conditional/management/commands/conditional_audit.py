"""``manage.py conditional_audit URL... [--urlconf [MODULE]] [--base-url URL]``: check the site's
own views the way REDbot would (``django_conditional.audit``); a table, exit status 1 on problems.

Without ``--base-url`` the requests go through Django's test client, in this process, against the
configured database; each unsafe check runs in a transaction that is rolled back. With
``--base-url`` they go over HTTP to a live site, and unsafe methods are only sent with ``--unsafe``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, transaction
from django.test import Client

from django_conditional import audit
from django_conditional.conf import conf
from django_conditional.urlwalk import routes


def _rolled_back(step: Callable[[], None]) -> None:
    with transaction.atomic(using=DEFAULT_DB_ALIAS):
        step()
        transaction.set_rollback(True, using=DEFAULT_DB_ALIAS)


def _policy(method: str, path: str) -> bool:
    policy = conf.REQUIRE_PRECONDITION
    return policy is not None and policy.applies(method, path)


class Command(BaseCommand):
    help = (
        "Replay REDbot's validator checks against URLs of this site (validators, 304s, HEAD, "
        "Vary, 412 and 428 for writes); prints a table and exits with status 1 on problems."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("urls", nargs="*", help="Paths to check, e.g. /articles/.")
        parser.add_argument(
            "--urlconf",
            nargs="?",
            const="",
            default=None,
            help="Also check every URL pattern without parameters of this URLconf "
            "(default: ROOT_URLCONF).",
        )
        parser.add_argument(
            "--base-url",
            help="Send the requests over HTTP to this live site instead of the test client.",
        )
        parser.add_argument(
            "--method",
            default="PUT",
            help="The unsafe method the 412/428 checks send (default PUT).",
        )
        parser.add_argument(
            "--unsafe",
            action="store_true",
            help="With --base-url: send the unsafe checks too (they write if the site "
            "does not refuse them).",
        )
        parser.add_argument(
            "-H",
            "--header",
            action="append",
            default=[],
            metavar="NAME:VALUE",
            help="A header sent with every request (repeatable), e.g. credentials.",
        )
        parser.add_argument(
            "--safe-only",
            action="store_true",
            help="Send no unsafe request at all.",
        )

    def _urls(self, options: dict[str, Any]) -> list[str]:
        urls = list(options["urls"])
        urlconf = options["urlconf"]
        if urlconf is not None and urlconf.startswith("/"):
            urls.append(urlconf)  # a path after a bare --urlconf, not a module
            urlconf = ""
        if urlconf is not None:
            urlconf = urlconf or settings.ROOT_URLCONF
            urls += [r.path for r in routes(urlconf) if r.path is not None]
        if not urls:
            raise CommandError("Name URLs to check, or pass --urlconf.")
        return list(dict.fromkeys(urls))

    def _headers(self, given: list[str]) -> dict[str, str]:
        headers = {}
        for item in given:
            name, colon, value = item.partition(":")
            if not colon or not name.strip():
                raise CommandError(f"--header {item!r}: expected NAME:VALUE.")
            headers[name.strip()] = value.strip()
        return headers

    def handle(self, *args: Any, **options: Any) -> None:
        urls = self._urls(options)
        base_url = options["base_url"]
        unsafe: str | None = options["method"]
        if options["safe_only"] or (base_url and not options["unsafe"]):
            unsafe = None
        if base_url:
            fetch, guard = audit.http_fetch(base_url), None
        else:
            fetch, guard = audit.client_fetch(Client()), _rolled_back
        fetch = audit.with_headers(fetch, self._headers(options["header"]))
        findings: list[audit.Finding] = []
        for url in urls:
            findings += audit.audit(
                fetch, url, unsafe=unsafe, policy=_policy, unsafe_guard=guard
            )
        self.stdout.write(audit.table(findings))
        found = audit.problems(findings)
        if found:
            raise CommandError(
                f"{len(found)} problem(s) in {len({f.url for f in found})} URL(s).",
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS(f"{len(urls)} URL(s): no problem."))
