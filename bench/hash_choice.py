"""Which hash for the middleware's content ETags: time each candidate on 1 KB, 20 KB and 200 KB bodies.

Run: ``.venv/bin/python bench/hash_choice.py``. Prints µs per body (median of 7 repeats) and the
speed relative to md5, the hash Django's ConditionalGetMiddleware uses.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import timeit
from collections.abc import Callable

SIZES = {"1 KB": 1024, "20 KB": 20 * 1024, "200 KB": 200 * 1024}


def candidates() -> dict[str, Callable[[bytes], str]]:
    found: dict[str, Callable[[bytes], str]] = {
        "md5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
        "sha1": lambda b: hashlib.sha1(b, usedforsecurity=False).hexdigest(),
        "sha256": lambda b: hashlib.sha256(b).hexdigest(),
        "blake2b-128": lambda b: hashlib.blake2b(b, digest_size=16).hexdigest(),
    }
    try:
        import xxhash
    except ImportError:
        print("xxhash not installed: xxh3_128 not measured")
    else:
        found["xxh3_128"] = lambda b: xxhash.xxh3_128_hexdigest(b)
        found["xxh64"] = lambda b: xxhash.xxh64_hexdigest(b)
    return found


def measure(func: Callable[[bytes], str], body: bytes) -> float:
    timer = timeit.Timer(lambda: func(body))
    number, _ = timer.autorange()
    runs = timer.repeat(repeat=7, number=number)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    funcs = candidates()
    print(f"{'hash':<12}" + "".join(f"{size:>22}" for size in SIZES))
    baseline: dict[str, float] = {}
    rows = []
    for name, func in funcs.items():
        cells = []
        for size, length in SIZES.items():
            micros = measure(func, os.urandom(length))
            if name == "md5":
                baseline[size] = micros
            cells.append((micros, baseline[size] / micros))
        rows.append((name, cells))
    for name, cells in rows:
        print(
            f"{name:<12}"
            + "".join(f"{micros:>11.2f} µs {ratio:>6.1f}x" for micros, ratio in cells)
        )


if __name__ == "__main__":
    main()
