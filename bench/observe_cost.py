"""What the decision records (#20) cost on the 304 paths: ``python bench/observe_cost.py [--on]``.

Times ``versioned-304`` and ``mw-1k-app-304`` (and the floor) through the WSGI handler, as
``bench/inprocess.py`` does; ``--on`` connects a ``decision_made`` receiver first (every decision
is then built and sent). Run it with the package of two trees on ``PYTHONPATH`` (before and
after a change) to compare the path with nothing listening; SQLite and LocMemCache.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # PYTHONPATH first


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.benchproject.settings")
    os.environ.setdefault(
        "BENCH_SQLITE_PATH", "/tmp/django-conditional-observe.sqlite3"
    )
    import django

    django.setup()
    import django_conditional
    from bench import inprocess

    seen: list[object] = []
    if "--on" in argv:
        from django_conditional.signals import decision_made

        def receiver(decision: object, **kwargs: object) -> None:
            seen.append(decision)
            seen.clear()

        decision_made.connect(receiver, weak=False)
    inprocess.seed()
    names = {"floor", "versioned-304", "mw-1k-app-304"}
    cases = [
        case
        for case in inprocess.page_cases() + inprocess.middleware_cases(True)
        if case.name in names
    ]
    client = inprocess.Client()
    etags = client.etags(cases)
    rounds = int(os.environ.get("ROUNDS", "7"))
    timed = inprocess.time_cases(client, cases, etags, rounds=rounds, number=2000)
    result = {
        "package": str(Path(django_conditional.__file__).parent),
        "observed": "--on" in argv,
        **{name: round(timed[name]["cpu_us"], 2) for name in sorted(timed)},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
