"""Back-office writers for the load oracle: data changed without the HTTP API.

Run by ``bench/load_oracle.py`` in a process of its own with the server's settings. For the given
number of seconds it changes the given articles by every path that must bump their versions:
a save with an explicit primary key (an UPDATE through a new instance), an upsert
(``bulk_create(update_conflicts=True)``), a move to another author, and an edit of an author (the
parent model, which every article page shows). After each commit it prints one JSON line:
``{"kind", "ids", "all", "started", "committed"}`` (``time.monotonic()``, comparable across
processes on Linux); ``all`` is true when every article's representation changed.
"""

from __future__ import annotations

import json
import random
import sys
import time


def _fresh(model: type, pk: int, title: str) -> object:
    # A new instance naming an existing row: Django saves it with an UPDATE.
    row = model._default_manager.get(pk=pk)  # type: ignore[attr-defined]
    values = {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields}  # type: ignore[attr-defined]
    values["title"] = title
    return model(**values)


def main(seconds: float, ids: list[int], seed: int) -> None:
    import django

    django.setup()
    from django.db import transaction

    from example_project.blog.models import Article, Author

    rng = random.Random(seed)
    authors = list(Author.objects.values_list("pk", flat=True))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kind = rng.choice(["explicit-pk", "upsert", "move", "author"])
        pk = rng.choice(ids)
        title = f"backdoor-{kind}-{time.monotonic_ns()}"
        started = time.monotonic()
        with transaction.atomic():
            if kind == "explicit-pk":
                _fresh(Article, pk, title).save()  # type: ignore[attr-defined]
            elif kind == "upsert":
                Article.objects.bulk_create(
                    [_fresh(Article, pk, title)],
                    update_conflicts=True,
                    unique_fields=["id"],
                    update_fields=["title"],
                )
            elif kind == "move":
                article = Article.objects.get(pk=pk)
                article.author_id = rng.choice(authors)
                article.title = title
                article.save()
            else:
                author = Author.objects.get(pk=rng.choice(authors))
                author.bio = title
                author.save()
        committed = time.monotonic()
        record = {
            "kind": kind,
            "ids": [pk],
            "all": kind == "author",
            "started": started,
            "committed": committed,
        }
        print(json.dumps(record), flush=True)
        time.sleep(rng.uniform(0.01, 0.05))


if __name__ == "__main__":
    main(float(sys.argv[1]), [int(v) for v in sys.argv[2].split(",")], int(sys.argv[3]))
