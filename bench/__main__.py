"""Run every benchmark present: ``python -m bench [NAME ...]``.

``rebuild`` (read-model rebuild vs raw read), ``throughput`` (HTTP writes vs
pgbench, reads vs a bare endpoint, in-process commands, memory, profiles)
``history`` (load time by history length), ``verify`` (audit chain
verification vs a raw scan), ``keyflood`` (one key's writes while another
key floods reads) and ``lists`` (the lists at 100,000 accounts against the
balance read). ``python -m bench keyflood`` (or ``lists``) runs that one alone. Each starts its own
throwaway PostgreSQL unless ``LEDGER_BENCH_DATABASE_URL`` is set.
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ("rebuild", "verify", "throughput", "history", "keyflood", "lists")


def main(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(f"usage: python -m bench [{' | '.join(BENCHMARKS)} ...]  (default: all)")
        return 0
    unknown = [name for name in argv if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; one of {', '.join(BENCHMARKS)}")
        return 2
    names = argv or list(BENCHMARKS)
    for name in names:
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        module.main()
        print(f"bench {name}: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
