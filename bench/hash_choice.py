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


def once(func: Callable[[bytes], str], body: bytes, number: int) -> float:
    """µs per call over ``number`` calls."""
    return timeit.timeit(lambda: func(body), number=number) / number * 1e6


def main(rounds: int = 15) -> None:
    """Interleave the hashes within each round; report the best µs and the median per-round ratio to md5.

    The machine's load moves absolute times from run to run; the ratios, measured side by side
    in one round, move much less.
    """
    funcs = candidates()
    bodies = {size: os.urandom(length) for size, length in SIZES.items()}
    micros: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for size, body in bodies.items():
            number = max(20, 2_000_000 // (len(body) + 1000))
            timed = {name: once(func, body, number) for name, func in funcs.items()}
            for name, value in timed.items():
                micros.setdefault((name, size), []).append(value)
                ratios.setdefault((name, size), []).append(timed["md5"] / value)
    print(
        f"{rounds} interleaved rounds: best µs per body (the least disturbed by other load), "
        "speed-up over md5 (ratio of the bests), [median of the per-round ratios]"
    )
    print(f"{'hash':<12}" + "".join(f"{size:>29}" for size in SIZES))
    for name in funcs:
        cells = "".join(
            f"{min(micros[name, size]):>9.2f} µs "
            f"{min(micros['md5', size]) / min(micros[name, size]):>6.1f}x "
            f"[{statistics.median(ratios[name, size]):>5.1f}x]"
            for size in SIZES
        )
        print(f"{name:<12}{cells}")


if __name__ == "__main__":
    main()
