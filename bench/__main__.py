"""Run every benchmark present: ``python -m bench [NAME ...]``.

``rebuild`` (read-model rebuild vs raw read), ``throughput`` (HTTP writes vs
pgbench, reads vs a bare endpoint, in-process commands, memory, profiles)
``history`` (load time by history length), ``verify`` (audit chain
verification vs a raw scan) and ``lists`` (the lists at 100,000 accounts
against the balance read). Each starts its own
throwaway PostgreSQL unless ``LEDGER_BENCH_DATABASE_URL`` is set.
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ("rebuild", "verify", "throughput", "history", "lists")


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    for name in names:
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        module.main()
        print(f"bench {name}: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
