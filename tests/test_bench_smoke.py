"""The benchmark's code cannot rot: its in-process part runs (a few requests per case), and its
wrk parsing, ratios, targets and report work on that output. The gunicorn load is `make bench`'s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import load, run

ROOT = Path(__file__).resolve().parent.parent

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:40000/floor/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.02ms  14.20ms   90.00%
    Req/Sec     1.90k   100.00     2.00k    80.00%
  Latency Distribution
     50%    1.95ms
     75%    2.30ms
     90%    2.90ms
     99%  850.00us
  1900 requests in 1.00s, 300.00KB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:   1893.52
Transfer/sec:    299.10KB
"""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench-smoke")
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("BENCH_")
    }
    env.update(
        BENCH_SQLITE_PATH=str(tmp / "bench.sqlite3"),
        DJANGO_SETTINGS_MODULE="bench.benchproject.settings",
        PYTHONPATH=str(ROOT),
    )
    if os.environ.get(
        "REDIS_URL"
    ):  # the suite's Redis run: the Redis micro-benchmarks too
        env["BENCH_REDIS_URL"] = os.environ["REDIS_URL"]
    output = tmp / "smoke.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.worker", "--smoke", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(output.read_text())
    return result


def test_every_case_answers_its_status(smoke):
    statuses = {name: count["status"] for name, count in smoke["counts"].items()}
    assert statuses == smoke["expected"]
    assert {"versioned-304", "django-cache-304", "django-db-304", "floor"} <= set(
        statuses
    )


def test_the_page_is_realistic(smoke):
    assert 15_000 < smoke["page_bytes"] < 30_000


def test_counts_are_measured(smoke):
    counts = smoke["counts"]
    assert counts["versioned-304"]["queries"] == 0
    # One read, or none on Redis where the local version cache answers (issue 16).
    assert counts["versioned-304"]["cache"] == 1 or os.environ.get("REDIS_URL")
    assert counts["versioned-304"]["cache"] <= 1, counts["versioned-304"]
    assert counts["django-db-304"]["queries"] == 1
    assert counts["django-db-304"]["cache"] == 0
    assert counts["django-cache-304"]["queries"] == 0
    assert counts["django-cache-304"]["cache"] == 1
    assert counts["full-200"]["queries"] == 1
    assert counts["floor"] == {"status": 200, "queries": 0, "cache": 0}
    assert counts["floor-read"] == {"status": 200, "queries": 0, "cache": 1}
    assert counts["floor-304"] == {"status": 304, "queries": 0, "cache": 1}


def test_inprocess_timings_and_ratios(smoke):
    timings = smoke["inprocess"]
    assert timings["floor"]["ratio"] == 1.0
    for name, timing in timings.items():
        assert timing["us"] > 0 and timing["cpu_us"] >= 0, name
    # The full page renders a template of 50 rows: slower than the floor by far.
    assert timings["full-200"]["us"] > 5 * timings["floor"]["us"]
    assert set(smoke["engine"]) >= {
        "evaluate (If-None-Match hit)",
        "parse_entity_tags (1 tag)",
    }


def test_report_from_results(smoke):
    # A synthetic load section from the in-process figures exercises ratios, targets and report.
    loads = {
        name: [
            {
                "rps": 1e6 / timing["us"],
                "p50_ms": 1.0,
                "p99_ms": 2.0,
                "requests": 10,
                "errors": 0,
            }
        ]
        * 3
        for name, timing in smoke["inprocess"].items()
    }
    result = {
        "name": "smoke",
        "database": "SQLite",
        "cache": "LocMemCache",
        "rounds": 3,
        "duration": 1.0,
        "number": 20,
        "notes": ["synthetic"],
        "load_generator": "none",
        "counts": smoke["counts"],
        "inprocess": smoke["inprocess"],
        "load": loads,
        "load_summary": {
            name: {"rps": runs[0]["rps"], "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0}
            for name, runs in loads.items()
        },
        "profiles": {"versioned-304": "bench/profiles/smoke-versioned-304.txt"},
    }
    ratio = run.load_ratio(result, "versioned-304", "floor")
    assert ratio == pytest.approx(
        smoke["inprocess"]["floor"]["us"] / smoke["inprocess"]["versioned-304"]["us"]
    )
    targets = run.targets(result)
    texts = [target.text for target in targets]
    assert any("0.8x the floor" in text for text in texts)
    assert any(
        "zero DB queries" in text and target.passed
        for text, target in zip(texts, targets, strict=True)
    ), [(t.text, t.value) for t in targets if "zero DB" in t.text]
    text = run.report([result], ["PostgreSQL + Redis: not here"], 1.0)
    assert "## smoke: SQLite + LocMemCache" in text
    assert "| versioned-304 | 304 |" in text
    assert "Not run: PostgreSQL + Redis: not here" in text
    assert ("PASS" in text) and ("| #9 |" in text)


def test_wrk_output_parsed():
    parsed = load.parse_wrk(WRK_OUTPUT)
    assert parsed.rps == pytest.approx(1893.52)
    assert parsed.p50_ms == pytest.approx(1.95)
    assert parsed.p99_ms == pytest.approx(0.85)
    assert parsed.requests == 1900
    assert (
        parsed.errors == 5 + 2
    )  # non-2xx/3xx and timeouts; read errors are the server's closes
    with pytest.raises(RuntimeError):
        load.parse_wrk("garbage")


def test_wrk_script_quotes_headers():
    script = load._lua("PUT", {"If-Match": '"a\\b"'}, b"x=1")
    assert 'wrk.method = "PUT"' in script
    assert 'wrk.body = "x=1"' in script
    assert 'wrk.headers["If-Match"] = "\\"a\\\\b\\""' in script


def _example_result() -> dict[str, Any]:
    """What ``bench/example.py`` returns, in the shape its report reads (made-up figures)."""
    from bench import example

    names = [name for name, _, _ in example.PAGES]
    rps = {
        "floor": 1000.0,
        "detail-200": 30.0,
        "django-detail-304": 500.0,
        "bare-304": 1800.0,
    }

    def run_of(name: str) -> dict[str, Any]:
        return {"rps": rps.get(name, 900.0), "cpu_us": {"gunicorn": 100.0}}

    counted = {
        name: {
            "requests": 100,
            "errors": 0,
            "transactions_per_request": 0.0 if name.endswith("304") else 4.0,
            "sessions_per_request": 0.0,
            "redis_commands_per_request": 0.02,
            "local_hits": 95,
            "local_round_trips": 5,
            "without_round_trip": 0.95,
        }
        for name in example.COUNTED
    }
    keep_alive = {
        name: [{"rps": 2.0 * run_of(name)["rps"], "cpu_us": {"gunicorn": 50.0}}] * 2
        for name in example.KEEP_ALIVE
    }
    keep_alive["detail-200"] = [{"rps": 40.0, "cpu_us": {"gunicorn": 900.0}}] * 2
    return {
        "rounds": 2,
        "duration": 2.0,
        "load": {name: [run_of(name), run_of(name)] for name in [*names, "bare-304"]},
        "keepalive": {"load": keep_alive},
        "counted": counted,
        "inprocess": {
            "timed": {
                name: {"cpu_us": 150.0 if name.startswith("floor") else 170.0}
                for name in names
            },
            "read_cpu_us": 5.0,
        },
    }


@pytest.mark.django_db
def test_the_handler_floor_is_measured_through_django():
    from bench import example

    assert 0 < example._handler_floor() < 10_000


def test_example_report_targets_and_section():
    from bench import example_report

    result = _example_result()
    rows = {
        text: (value, passed) for text, value, passed in example_report.targets(result)
    }
    assert rows["detail page version 304 >= 0.85x the floor (rps)"] == ("0.90", True)
    assert rows["detail page version 304 >= 25x its full 200 (rps), sync workers"] == (
        "30.00",
        True,
    )
    # Each server's ratios are of its own runs: 1800 / 40 with keep-alive.
    assert rows[
        "detail page version 304 >= 25x its full 200 (rps), gthread workers (keep-alive)"
    ] == ("45.00", True)
    own = rows["detail-304: the 304's own code <= 20 µs of CPU in process"]
    assert own == ("15 µs", True)  # 170 - 150 - one read of 5
    assert rows["list-304: the 304's own code <= 20 µs of CPU in process"] == (
        "15 µs",
        True,
    )
    text = "\n".join(example_report.section(result))
    assert "### Targets (issue 16)" in text and "| api-list-304 |" in text
    assert "It runs at 60.00x the detail page's 200 and 1.80x the floor" in text
    assert "| bare-304 | 1800 | 1.80 | 100 | nan |" in text  # under load only
    assert "### The same site on gthread workers (keep-alive)" in text
    assert "| detail-200 | 40 | 0.02 | 1.00 | 900 |" in text
    # Answered early (cheaper than the floor): its CPU minus the handler's floor.
    result["inprocess"]["timed"]["detail-304"]["cpu_us"] = 100.0
    result["inprocess"]["handler_cpu_us"] = 90.0
    assert example_report.own_code_us(result, "detail-304") == 10.0
    result["counted"]["list-304"]["transactions_per_request"] = 0.01
    failed = [t for t, _, passed in example_report.targets(result) if not passed]
    assert failed == [
        "list-304: 0 database transactions and 0 connections per 304 (pg_stat_database)"
    ]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_redis_micro_benchmarks_run(smoke):
    read = smoke["version_read"]
    assert read["fast path in use"] == 1.0
    assert read["CPU: PING on a kept connection"] > 0
