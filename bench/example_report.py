"""Issue 16's targets on the example project's own pages (``bench/example.py``), for RESULTS.md."""

from __future__ import annotations

import statistics
from typing import Any

# Version reads a 304 of each page makes (the detail page's published check shares its read).
READS = {"detail-304": 1, "list-304": 1}


def ratio(result: dict[str, Any], numerator: str, denominator: str) -> float:
    """Median over rounds of rps(numerator) / rps(denominator), both of the same round."""
    runs = result.get("load", {})
    if numerator not in runs or denominator not in runs:
        return float("nan")
    return float(
        statistics.median(
            a["rps"] / b["rps"]
            for a, b in zip(runs[numerator], runs[denominator], strict=True)
            if b["rps"] > 0
        )
    )


def own_code_us(result: dict[str, Any], case: str) -> float:
    """In process: the 304's CPU minus the server's part. Answered early (before the middleware:
    cheaper than the floor), that part is Django's handler with one middleware answering at once;
    else the floor's CPU and the 304's store reads."""
    found = result["inprocess"]
    cpu = found["timed"][case]["cpu_us"]
    floor = found["timed"]["floor"]["cpu_us"]
    if "handler_cpu_us" in found and cpu < floor:
        return float(cpu - found["handler_cpu_us"])
    return float(cpu - floor - READS[case] * found["read_cpu_us"])


def _servers(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The runs of each server: sync workers, then gthread workers with keep-alive (if run)."""
    found = [("sync workers", result)]
    if "keepalive" in result:
        found.append(("gthread workers (keep-alive)", result["keepalive"]))
    return found


def targets(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, passed) for each of issue 16's figures on the example's pages."""
    rows: list[tuple[str, str, bool]] = []

    def at_least(text: str, value: float, minimum: float) -> None:
        rows.append((text, f"{value:.2f}", value >= minimum))

    for page in ("detail", "list"):
        at_least(
            f"{page} page version 304 >= 0.85x the floor (rps)",
            ratio(result, f"{page}-304", "floor"),
            0.85,
        )
    for server, measured in _servers(result):
        at_least(
            f"detail page version 304 >= 25x its full 200 (rps), {server}",
            ratio(measured, "detail-304", "detail-200"),
            25,
        )
        at_least(
            "detail page version 304 >= 1.5x Django's condition() + RedisCache 304 "
            f"(rps), {server}",
            ratio(measured, "detail-304", "django-detail-304"),
            1.5,
        )
    counted = result["counted"]
    for case in ("detail-304", "list-304", "api-detail-304", "api-list-304"):
        found = counted[case]
        rows.append(
            (
                f"{case}: 0 database transactions and 0 connections per 304 (pg_stat_database)",
                f"{found['transactions_per_request']:.4f} transactions, "
                f"{found['sessions_per_request']:.4f} connections per request",
                found["transactions_per_request"] == 0
                and found["sessions_per_request"] == 0,
            )
        )
        rows.append(
            (
                f"{case}: >= 90% of the 304s make no network round trip (counted at the "
                "tracking connection)",
                f"{found['without_round_trip']:.1%} (Redis commands per request: "
                f"{found['redis_commands_per_request']:.3f})",
                found["without_round_trip"] >= 0.9,
            )
        )
    for case in ("detail-304", "list-304"):
        own = own_code_us(result, case)
        rows.append(
            (
                f"{case}: the 304's own code <= 20 µs of CPU in process",
                f"{own:.0f} µs",
                own <= 20,
            )
        )
    return rows


def _show(counted: dict[str, Any], key: str, style: str) -> str:
    return format(counted[key], style) if key in counted else ""


def section(result: dict[str, Any]) -> list[str]:
    timed = result["inprocess"]["timed"]
    lines = [
        "",
        "## example: the example project's own pages (PostgreSQL + Redis, local version cache on)",
        "",
        "`bench/example.py`: `example_project.settings` as it deploys (its middleware, "
        "`CONN_MAX_AGE`, the local version cache with its lease and write fence), PostgreSQL (a "
        "database of the run's own) and a redis-server of the run's own, gunicorn with 2 sync "
        f"workers, wrk -t1 -c4; {result['rounds']} rounds of {result['duration']:g} s per case, "
        'cases shuffled per round. `floor` is `HttpResponse(b"")` beside the site\'s URLs (the '
        "same middleware); `django-detail-304` is the article page behind Django's `condition()` "
        "with its version read from the site's `RedisCache`. Then each 304 case alone: "
        "transactions and connections from `pg_stat_database` (the database's sessions ended "
        "before, the workers restarted after, so every backend's counters are flushed), Redis "
        "commands from the server's `INFO`, and the round trips of the workers' tracking "
        "connections from their own counters. `detail-200` is the control: it does show "
        "transactions.",
        "",
        "### Targets (issue 16)",
        "",
        "| target | measured | result |",
        "|---|---|---|",
    ]
    lines += [
        f"| {text} | {value} | {'PASS' if passed else 'MISS'} |"
        for text, value, passed in targets(result)
    ]
    lines += ["", "### Cases", ""]
    lines += [
        "| case | rps (median) | rps / floor | gunicorn CPU µs / request | "
        "in-process CPU µs | transactions / request | Redis commands / request | "
        "304s without a round trip |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in result["load"].items():
        counted = result["counted"].get(name, {})
        cpu = statistics.median(r["cpu_us"].get("gunicorn", float("nan")) for r in runs)
        in_process = timed[name]["cpu_us"] if name in timed else float("nan")
        lines.append(
            f"| {name} | {statistics.median(r['rps'] for r in runs):.0f} | "
            f"{ratio(result, name, 'floor'):.2f} | {cpu:.0f} | "
            f"{in_process:.0f} | {_show(counted, 'transactions_per_request', '.4f')} | "
            f"{_show(counted, 'redis_commands_per_request', '.3f')} | "
            f"{_show(counted, 'without_round_trip', '.1%')} |"
        )
    lines += [
        "",
        f"In process, one version read of the detail page's keys (local copy) costs "
        f"{result['inprocess']['read_cpu_us']:.1f} µs of CPU; each 304 computed reads once (the "
        "detail page's published check and its decision share the read). A 304 answered early "
        "(`EarlyAnswerMiddleware`, before the middleware: cheaper than the floor) costs its CPU "
        "minus Django's handler serving a request a first middleware answers at once "
        f"({result['inprocess'].get('handler_cpu_us', float('nan')):.1f} µs): that is its own "
        "code; a 304 computed in the view costs its CPU minus the floor's and its read. Profile: "
        "[example-detail-304.txt](profiles/example-detail-304.txt).",
    ]
    if "keepalive" in result:
        lines += _keep_alive_section(result["keepalive"])
    if "bare-304" in result["load"]:
        lines += [
            "",
            "The bound of any answer made inside gunicorn's sync workers (one connection per "
            "request, no keep-alive): `bare-304` is a WSGI callable that answers before Django "
            "(`bench/example.py`, `WSGI`). It runs at "
            f"{ratio(result, 'bare-304', 'detail-200'):.2f}x the detail page's 200 and "
            f"{ratio(result, 'bare-304', 'floor'):.2f}x the floor; the version 304 runs at "
            f"{ratio(result, 'detail-304', 'bare-304'):.2f}x `bare-304`.",
        ]
    return lines


def _keep_alive_section(measured: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "### The same site on gthread workers (keep-alive)",
        "",
        "2 gunicorn gthread workers (4 threads each, `--keep-alive 5`), the same wrk runs: "
        "wrk's connections stay open, so no request pays a TCP connection and the accept of a "
        "sync worker. Same rounds, same shuffling; the ratios are of this server's own runs.",
        "",
        "| case | rps (median) | rps / floor | rps / detail-200 | gunicorn CPU µs / request |",
        "|---|---|---|---|---|",
    ]
    for name, runs in measured["load"].items():
        cpu = statistics.median(r["cpu_us"].get("gunicorn", float("nan")) for r in runs)
        lines.append(
            f"| {name} | {statistics.median(r['rps'] for r in runs):.0f} | "
            f"{ratio(measured, name, 'floor'):.2f} | "
            f"{ratio(measured, name, 'detail-200'):.2f} | {cpu:.0f} |"
        )
    return lines
